/*
 * state.h - the pipeline's state: one LMDB environment under state_dir,
 * opened on first use, with named databases per operator instance
 * ("<operator>#<instance>" and "<operator>#<instance>/<name>").
 *
 * The host's kv_* functions (sluice/operator.h) are implemented here.
 * Commits do not fsync (MDB_NOSYNC): state between checkpoints may be lost
 * in a crash anyway, and a checkpoint syncs explicitly (kv_sync).
 */
#ifndef SL_STATE_H
#define SL_STATE_H

#include <stdint.h>

#include "sluice/operator.h"

typedef struct sl_state sl_state;

/* The state of a pipeline at `dir`, for at most `max_dbs` named databases; NULL if out of memory. */
sl_state *sl__state_new(const char *dir, unsigned max_dbs);
void sl__state_free(sl_state **sp);

/* Per instance: its open transaction (if any) and databases. */
typedef struct sl_inst_state {
    void *txn;          /* MDB_txn * */
    int write;
    sl_kv **dbs;
    size_t n_dbs;
} sl_inst_state;

/* Abort an open transaction and free the instance's handles. */
void sl__inst_state_release(sl_inst_state *is);

sl_kv *sl__kv_open(sl_ctx *ctx, const char *name);
int sl__kv_begin(sl_ctx *ctx, int write);
int sl__kv_commit(sl_ctx *ctx);
void sl__kv_abort(sl_ctx *ctx);
int sl__kv_get(sl_ctx *ctx, sl_kv *db, const void *key, size_t klen, const void **val,
               size_t *vlen);
int sl__kv_put(sl_ctx *ctx, sl_kv *db, const void *key, size_t klen, const void *val, size_t vlen);
int sl__kv_del(sl_ctx *ctx, sl_kv *db, const void *key, size_t klen);
int sl__kv_scan(sl_ctx *ctx, sl_kv *db, const void *from, size_t flen, sl_kv_visit visit,
                void *arg);
int sl__kv_clear(sl_ctx *ctx, sl_kv *db);
uint64_t sl__kv_count(sl_ctx *ctx, sl_kv *db);
int sl__kv_sync(sl_ctx *ctx);

/*
 * The engine's side (checkpoints, engine/checkpoint.c). All on the main thread.
 * Errors are logged with the state_dir; functions return 0 or -1
 * (record_get: 1 when the record is absent).
 */
void sl__state_set_fresh(sl_state *s); /* remove what the directory holds when opening it */
const char *sl__state_dir(const sl_state *s);
int sl__state_open(sl_state *s);
/* Engine record `key` (database "sluice") into out, in a read transaction of its own. */
int sl__state_record_get(sl_state *s, const char *key, sl_wbuf *out);
/* A checkpoint's transaction: instance transactions begun meanwhile nest in it;
 * commit syncs the environment to disk before it returns. */
int sl__state_ckpt_begin(sl_state *s);
int sl__state_ckpt_put(sl_state *s, const char *key, const void *val, size_t len);
int sl__state_ckpt_commit(sl_state *s);
void sl__state_ckpt_abort(sl_state *s);
/* Bytes of the environment in use (its highest page), 0 before it is open. */
uint64_t sl__state_bytes(sl_state *s);

#endif
