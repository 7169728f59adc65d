/*
 * dedup.h - the dedup operator's state, shared by dedup.c (configuration,
 * the data path, generations), dedup_store.c (pending records and LMDB) and
 * dedup_checkpoint.c (snapshot and restore). Design: docs/dedup.md.
 */
#ifndef SL_DEDUP_H
#define SL_DEDUP_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bloom.h"
#include "sluice/operator.h"
#include "timefmt.h"

#define N_LIVE 4  /* generations in the ring at most */
#define N_SLOTS 6 /* databases g0..g5: the ring, and dropped ones kept until the next snapshot */
#define KEY_INLINE 440 /* keys up to this many bytes are their own LMDB key */
#define KEY_LONG 448   /* longer ones: their first KEY_INLINE bytes + 8 bytes of hash */
#define VAL_HEAD 12    /* a value: time (8 bytes), epoch (4), then a long key's full bytes */
#define MIN_SLOTS 16
#define MIN_ARENA 1024
#define AHEAD 8 /* events between a prefetch and the decision that uses it */
#define FLUSH_CHUNK 4096 /* records per write transaction of a flush (docs/dedup.md) */
#define MMAP_MIN (2u << 20) /* blocks this big come straight from the kernel (big_alloc) */
#define REC_HEAD 12 /* a pending record: time (8 bytes), key length | REPLACES (4), the key */
#define REPLACES 0x80000000u /* in a record's length: it replaces a stored record */
#define OFF_MASK 0x7fffffffu /* the arena offset */

/* A key no msgpack value starts with (0xc1 is unused): a database's generation number. */
#define DEDUP_MARKER ((const uint8_t *)"\xc1")


/*
 * The pending records live in the arena in arrival order (REC_HEAD, then the key); the table
 * indexes them by hash. A flush walks the arena in order (no random access), and keys that
 * grow with time (sequence numbers, ULIDs, the generator's ids) are then already in LMDB's
 * order: no sort.
 */

/* A slot of the pending table; len 0: free. */
typedef struct slot {
    uint64_t hash;
    uint32_t off, len; /* the record's offset in the arena, its key's length */
} slot;

/*
 * A pending record as a flush sorts it, written over the table (no longer needed then): `a`,
 * 8 bytes of its key big-endian from where the flush's keys start to differ, decides most
 * comparisons.
 */
typedef struct rec {
    uint64_t a;
    uint32_t off, len; /* the record's offset in the arena, its key's length */
} rec;
_Static_assert(sizeof(rec) <= sizeof(slot), "a flush sorts its records in the table's place");

enum { G_FREE, G_LIVE, G_RETIRED }; /* retired: dropped, its database kept until a snapshot */

typedef struct gen {
    sl_bloom bloom;   /* allocated on first use of the slot, kept (cleared) after */
    sl_kv *db;        /* "g<slot>" */
    int state;
    uint64_t seq;     /* the generation's number (its database's marker record) */
    int64_t opened;   /* watermark when it opened; INT64_MIN: none seen yet */
    int64_t max_time; /* latest record time; INT64_MIN: no record */
    uint64_t records; /* keys recorded in it */
    uint64_t stored;  /* records written to db (nonzero: lookups go there too) */
} gen;

enum { ST_PASS, ST_DUP, ST_ERR };

/* What phase 1 learns about event i of a batch, and phase 2 decides. */
typedef struct ev_info {
    uint64_t hash;
    int64_t t, t0;     /* its time; a duplicate's first time */
    uint32_t off, len; /* its key in d->keys */
    int status;
} ev_info;

typedef struct counts {
    uint64_t events, dups, checks, hits, fps, lookups, expired, dropped, rotations, flushes,
        key_errors, reclaimed;
} counts;

typedef struct dedup {
    const sl_expr *key;
    const char *key_text;
    uint64_t capacity, budget;
    double error_rate;
    int64_t horizon;
    int dup_port, err_port;

    gen gens[N_SLOTS];
    uint8_t order[N_LIVE]; /* live slots, oldest first; the last is the current one */
    uint32_t n_live;
    sl_kv *meta_db, *undo_db;
    uint64_t next_seq;
    int64_t wm;
    uint32_t epoch;        /* records written now carry it; a snapshot moves it on */
    int restored, warned_full, warned_capacity;

    slot *slots;           /* the pending table, of the current generation */
    uint32_t cap, used;
    uint8_t *arena;
    size_t arena_len, arena_cap;

    ev_info *ev;
    size_t ev_cap;
    sl_wbuf keys;          /* the batch's keys, back to back */
    sl_wbuf extra;         /* a duplicate's {first_time: t0} */
    uint8_t dbkey[KEY_LONG], cmp[2][KEY_LONG];
    sl_wbuf dbval, undo;
    int reading;           /* an LMDB read transaction is open */
    counts c, sent;        /* totals; what host->count has been given */
} dedup;

/* ------------------------------------------------ shared by dedup*.c */

static inline uint32_t max_used(uint64_t cap) { return (uint32_t)(cap * 3 / 4); }

static inline uint32_t home(uint64_t hash, uint32_t cap)
{
    return (uint32_t)(((hash & 0xffffffffu) * cap) >> 32);
}

static inline int64_t rec_time(const dedup *d, uint32_t off)
{
    int64_t t;
    memcpy(&t, d->arena + off, 8);
    return t;
}

static inline void put_seq(uint8_t out[8], uint64_t seq) { memcpy(out, &seq, 8); }

/* dedup.c */
int dedup_open_dbs(dedup *d, sl_ctx *ctx);
int dedup_bloom_ready(dedup *d, sl_ctx *ctx, gen *g);
void dedup_report_counts(dedup *d, sl_ctx *ctx);

/* dedup_store.c: the pending table, its flushes into LMDB, and LMDB lookups */
void dedup_big_free(void *p, size_t bytes);
int64_t dedup_pending_find(const dedup *d, uint64_t hash, const uint8_t *key, uint32_t len);
void dedup_pending_put(dedup *d, uint64_t hash, int64_t t, const uint8_t *key, uint32_t len,
                       uint32_t replaces);
void dedup_end_read(dedup *d, sl_ctx *ctx);
int dedup_flush_in_txn(dedup *d, sl_ctx *ctx, uint32_t chunk);
int dedup_flush(dedup *d, sl_ctx *ctx);
int dedup_make_room(dedup *d, sl_ctx *ctx, uint32_t len);
int dedup_stored_find(dedup *d, sl_ctx *ctx, gen *g, const uint8_t *key, uint32_t len,
                      uint64_t hash, int64_t *t0);

/* dedup_checkpoint.c */
int dedup_snapshot(void *state, sl_ctx *ctx, uint64_t id);
int dedup_restore(void *state, sl_ctx *ctx, uint64_t id);

#endif
