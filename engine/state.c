/*
 * state.c - the pipeline's LMDB environment and the host's kv_* functions.
 *
 * The environment opens on the first kv_open (from an operator's start or
 * restore, on the main thread), so pipelines without state never touch
 * state_dir. A lock file held with flock keeps a second sluice process off
 * the same state_dir. Named databases are opened under a mutex: LMDB wants
 * mdb_dbi_open serialised.
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "instance.h"

/* Address space reserved for the map; the file only grows as pages are written. */
#define MAP_SIZE (64ull << 30)

struct sl_state {
    char *dir;
    unsigned max_dbs;
    pthread_mutex_t lock;
    MDB_env *env;
    int lock_fd;
    int failed; /* opening failed once: don't retry for every instance */
    int fresh;  /* discard what the directory holds when opening it (run --fresh) */
    /* checkpoint in progress (main thread): instance transactions nest in it */
    MDB_txn *ckpt_txn;
    MDB_dbi engine_dbi; /* the engine's own records ("sluice"), valid once opened */
    int engine_dbi_ok;
};

struct sl_kv {
    MDB_dbi dbi;
    char *name;
};

sl_state *sl__state_new(const char *dir, unsigned max_dbs)
{
    sl_state *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir ? dir : "state"))) {
        free(s);
        return NULL;
    }
    s->max_dbs = max_dbs;
    s->lock_fd = -1;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

void sl__state_free(sl_state **sp)
{
    sl_state *s = *sp;
    if (!s)
        return;
    if (s->env)
        mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s);
    *sp = NULL;
}

static sl_inst *inst_of(sl_ctx *ctx) { return (sl_inst *)ctx; }

static void fail(sl_ctx *ctx, const char *what, int rc)
{
    sl__log(inst_of(ctx)->def->name, SL_LOG_ERROR, "state: %s: %s", what,
            rc > 0 || rc < -30000 ? mdb_strerror(rc) : strerror(rc < 0 ? -rc : rc));
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return errno;
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return errno;
    return 0;
}

/*
 * A data file shorter than the pages its root says are in use was cut (a copy
 * that stopped, a full disk): LMDB would read past its end and die of SIGBUS.
 */
static int check_size(sl_state *s, const char *op)
{
    MDB_envinfo info;
    MDB_stat st;
    struct stat fst;
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", s->dir);
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0 ||
        stat(path, &fst) != 0)
        return 0; /* nothing to compare with: let LMDB judge */
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((uint64_t)fst.st_size >= need)
        return 0;
    sl__log(op, SL_LOG_ERROR,
            "state_dir '%s': data.mdb holds %lld bytes but its pages reach %llu: the file was "
            "cut short (the state is corrupt: move the directory away, or run with --fresh to "
            "start from empty state)",
            s->dir, (long long)fst.st_size, (unsigned long long)need);
    return -1;
}

/* Open the environment (caller holds s->lock); `op` names who asked, in messages. */
static int open_env(sl_state *s, const char *op)
{
    int rc = make_dirs(s->dir);
    if (rc != 0) {
        sl__log(op, SL_LOG_ERROR, "state_dir '%s': cannot create it: %s", s->dir, strerror(rc));
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/sluice.lock", s->dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (s->lock_fd < 0) {
        sl__log(op, SL_LOG_ERROR, "state_dir '%s': %s", s->dir, strerror(errno));
        return -1;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        sl__log(op, SL_LOG_ERROR, "state_dir '%s' is in use by another sluice process%s", s->dir,
                errno == EWOULDBLOCK ? "" : strerror(errno));
        return -1;
    }
    if (s->fresh) { /* only once the lock is ours: nobody else is using these files */
        static const char *const files[] = {"data.mdb", "lock.mdb"};
        for (size_t i = 0; i < 2; i++) {
            snprintf(path, sizeof path, "%s/%s", s->dir, files[i]);
            if (unlink(path) != 0 && errno != ENOENT) {
                sl__log(op, SL_LOG_ERROR, "state_dir '%s': cannot remove %s: %s", s->dir,
                        files[i], strerror(errno));
                return -1;
            }
        }
        s->fresh = 0;
    }
    if ((rc = mdb_env_create(&s->env)) != 0 || (rc = mdb_env_set_mapsize(s->env, MAP_SIZE)) != 0 ||
        (rc = mdb_env_set_maxdbs(s->env, s->max_dbs)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, 256)) != 0 ||
        (rc = mdb_env_open(s->env, s->dir, MDB_NOTLS | MDB_NOSYNC | MDB_NORDAHEAD, 0666)) != 0) {
        int corrupt = rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED;
        sl__log(op, SL_LOG_ERROR, "state_dir '%s': opening the LMDB environment: %s%s", s->dir,
                mdb_strerror(rc),
                corrupt ? " (the state is corrupt or not sluice's: move the directory away, "
                          "or run with --fresh to start from empty state)"
                        : "");
        if (s->env)
            mdb_env_close(s->env);
        s->env = NULL;
        return -1;
    }
    if (check_size(s, op) != 0) {
        mdb_env_close(s->env);
        s->env = NULL;
        return -1;
    }
    return 0;
}

/* Open the environment once; 0 or -1 (logged). */
static int ensure_env(sl_state *s, const char *op)
{
    pthread_mutex_lock(&s->lock);
    int ok = !s->failed && (s->env || open_env(s, op) == 0);
    if (!ok)
        s->failed = 1;
    pthread_mutex_unlock(&s->lock);
    return ok ? 0 : -1;
}

sl_kv *sl__kv_open(sl_ctx *ctx, const char *name)
{
    sl_inst *in = inst_of(ctx);
    sl_state *s = in->rt->state;
    sl_kv *kv = calloc(1, sizeof *kv);
    sl_kv **dbs = realloc(in->kv.dbs, (in->kv.n_dbs + 1) * sizeof *dbs);
    if (dbs)
        in->kv.dbs = dbs;
    if (!kv || !dbs ||
        asprintf(&kv->name, "%s#%u%s%s", in->def->name, in->index, name && *name ? "/" : "",
                 name ? name : "") < 0) {
        free(kv);
        sl__log(in->def->name, SL_LOG_ERROR, "state: out of memory");
        return NULL;
    }
    int ok = ensure_env(s, in->def->name) == 0;
    pthread_mutex_lock(&s->lock);
    MDB_txn *txn = NULL;
    int rc = 0;
    /* during a checkpoint (main thread) the database is made inside its transaction */
    if (ok && ((rc = mdb_txn_begin(s->env, s->ckpt_txn, 0, &txn)) != 0 ||
               (rc = mdb_dbi_open(txn, kv->name, MDB_CREATE, &kv->dbi)) != 0 ||
               (rc = mdb_txn_commit(txn)) != 0)) {
        if (txn && rc != 0)
            mdb_txn_abort(txn);
        fail(ctx, kv->name, rc);
        ok = 0;
    }
    pthread_mutex_unlock(&s->lock);
    if (!ok) {
        free(kv->name);
        free(kv);
        return NULL;
    }
    in->kv.dbs[in->kv.n_dbs++] = kv;
    return kv;
}

int sl__kv_begin(sl_ctx *ctx, int write)
{
    sl_inst *in = inst_of(ctx);
    if (in->kv.txn) {
        sl__log(in->def->name, SL_LOG_ERROR, "state: a transaction is already open");
        return -1;
    }
    if (!in->rt->state->env) {
        sl__log(in->def->name, SL_LOG_ERROR, "state: kv_begin before kv_open");
        return -1;
    }
    MDB_txn *txn, *parent = in->rt->state->ckpt_txn;
    /* in a snapshot the instance's transaction is a child of the checkpoint's */
    int rc = mdb_txn_begin(in->rt->state->env, parent, write || parent ? 0 : MDB_RDONLY, &txn);
    if (rc != 0) {
        fail(ctx, "begin", rc);
        return -1;
    }
    in->kv.txn = txn;
    in->kv.write = write;
    return 0;
}

int sl__kv_commit(sl_ctx *ctx)
{
    sl_inst *in = inst_of(ctx);
    MDB_txn *txn = in->kv.txn;
    in->kv.txn = NULL;
    int rc = txn ? mdb_txn_commit(txn) : EINVAL;
    if (rc != 0) {
        fail(ctx, "commit", rc);
        return -1;
    }
    return 0;
}

void sl__kv_abort(sl_ctx *ctx)
{
    sl_inst *in = inst_of(ctx);
    if (in->kv.txn)
        mdb_txn_abort(in->kv.txn);
    in->kv.txn = NULL;
}

static MDB_txn *txn_of(sl_ctx *ctx, int write)
{
    sl_inst *in = inst_of(ctx);
    if (!in->kv.txn || (write && !in->kv.write)) {
        sl__log(in->def->name, SL_LOG_ERROR, "state: no %stransaction open",
                write ? "write " : "");
        return NULL;
    }
    return in->kv.txn;
}

int sl__kv_get(sl_ctx *ctx, sl_kv *db, const void *key, size_t klen, const void **val, size_t *vlen)
{
    MDB_txn *txn = txn_of(ctx, 0);
    if (!txn)
        return -1;
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(txn, db->dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 1;
    if (rc != 0) {
        fail(ctx, "get", rc);
        return -1;
    }
    *val = v.mv_data;
    *vlen = v.mv_size;
    return 0;
}

int sl__kv_put(sl_ctx *ctx, sl_kv *db, const void *key, size_t klen, const void *val, size_t vlen)
{
    MDB_txn *txn = txn_of(ctx, 1);
    if (!txn)
        return -1;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int rc = mdb_put(txn, db->dbi, &k, &v, 0);
    if (rc != 0) {
        fail(ctx, "put", rc);
        return -1;
    }
    return 0;
}

int sl__kv_del(sl_ctx *ctx, sl_kv *db, const void *key, size_t klen)
{
    MDB_txn *txn = txn_of(ctx, 1);
    if (!txn)
        return -1;
    MDB_val k = {klen, (void *)key};
    int rc = mdb_del(txn, db->dbi, &k, NULL);
    if (rc == MDB_NOTFOUND)
        return 1;
    if (rc != 0) {
        fail(ctx, "del", rc);
        return -1;
    }
    return 0;
}

int sl__kv_scan(sl_ctx *ctx, sl_kv *db, const void *from, size_t flen, sl_kv_visit visit, void *arg)
{
    MDB_txn *txn = txn_of(ctx, 0);
    if (!txn)
        return -1;
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, db->dbi, &c);
    if (rc != 0) {
        fail(ctx, "cursor", rc);
        return -1;
    }
    MDB_val k = {flen, (void *)from}, v;
    rc = mdb_cursor_get(c, &k, &v, flen ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0) {
        int r = visit(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        if (r & SL_KV_DELETE) {
            if (!inst_of(ctx)->kv.write) {
                rc = EACCES;
                break;
            }
            if ((rc = mdb_cursor_del(c, 0)) != 0)
                break;
            /* LMDB leaves the cursor on the record after the deleted one, and the
             * next MDB_NEXT returns that record rather than skipping it */
        }
        if (r & SL_KV_STOP)
            break;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        fail(ctx, "scan", rc);
        return -1;
    }
    return 0;
}

int sl__kv_clear(sl_ctx *ctx, sl_kv *db)
{
    MDB_txn *txn = txn_of(ctx, 1);
    if (!txn)
        return -1;
    int rc = mdb_drop(txn, db->dbi, 0);
    if (rc != 0) {
        fail(ctx, "clear", rc);
        return -1;
    }
    return 0;
}

uint64_t sl__kv_count(sl_ctx *ctx, sl_kv *db)
{
    sl_inst *in = inst_of(ctx);
    MDB_stat st;
    if (!in->kv.txn || mdb_stat(in->kv.txn, db->dbi, &st) != 0)
        return 0;
    return st.ms_entries;
}

int sl__kv_sync(sl_ctx *ctx)
{
    sl_state *s = inst_of(ctx)->rt->state;
    if (s->ckpt_txn)
        return 0; /* the checkpoint's commit syncs */
    int rc = s->env ? mdb_env_sync(s->env, 1) : 0;
    if (rc != 0) {
        fail(ctx, "sync", rc);
        return -1;
    }
    return 0;
}

void sl__inst_state_release(sl_inst_state *is)
{
    if (is->txn)
        mdb_txn_abort(is->txn);
    is->txn = NULL;
    for (size_t i = 0; i < is->n_dbs; i++) {
        free(is->dbs[i]->name);
        free(is->dbs[i]);
    }
    free(is->dbs);
    is->dbs = NULL;
    is->n_dbs = 0;
}

/* ------------------------------------------------- the engine's own use */

void sl__state_set_fresh(sl_state *s) { s->fresh = 1; }
const char *sl__state_dir(const sl_state *s) { return s->dir; }

int sl__state_open(sl_state *s) { return ensure_env(s, NULL); }

static int engine_db(sl_state *s, MDB_txn *txn)
{
    if (s->engine_dbi_ok)
        return 0;
    int rc = mdb_dbi_open(txn, "sluice", MDB_CREATE, &s->engine_dbi);
    if (rc == 0)
        s->engine_dbi_ok = 1;
    return rc;
}

static int engine_fail(sl_state *s, const char *what, int rc)
{
    sl__log(NULL, SL_LOG_ERROR, "state_dir '%s': %s: %s", s->dir, what, mdb_strerror(rc));
    return -1;
}

int sl__state_record_get(sl_state *s, const char *key, sl_wbuf *out)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return engine_fail(s, "reading the checkpoint record", rc);
    rc = mdb_dbi_open(txn, "sluice", 0, &dbi);
    MDB_val k = {strlen(key), (void *)key}, v;
    if (rc == 0)
        rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0) {
        sl_wbuf_reset(out);
        rc = sl_wbuf_append(out, v.mv_data, v.mv_size) == 0 ? 0 : ENOMEM;
    }
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return 1;
    return rc == 0 ? 0 : engine_fail(s, "reading the checkpoint record", rc);
}

int sl__state_ckpt_begin(sl_state *s)
{
    int rc = mdb_txn_begin(s->env, NULL, 0, &s->ckpt_txn);
    if (rc == 0 && (rc = engine_db(s, s->ckpt_txn)) != 0) {
        mdb_txn_abort(s->ckpt_txn);
        s->ckpt_txn = NULL;
    }
    if (rc != 0) {
        s->ckpt_txn = NULL;
        return engine_fail(s, "beginning a checkpoint", rc);
    }
    return 0;
}

int sl__state_ckpt_put(sl_state *s, const char *key, const void *val, size_t len)
{
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)val};
    int rc = mdb_put(s->ckpt_txn, s->engine_dbi, &k, &v, 0);
    return rc == 0 ? 0 : engine_fail(s, "writing the checkpoint record", rc);
}

int sl__state_ckpt_commit(sl_state *s)
{
    MDB_txn *txn = s->ckpt_txn;
    s->ckpt_txn = NULL;
    int rc = mdb_txn_commit(txn);
    if (rc != 0)
        return engine_fail(s, "committing a checkpoint", rc);
    rc = mdb_env_sync(s->env, 1);
    return rc == 0 ? 0 : engine_fail(s, "syncing a checkpoint", rc);
}

void sl__state_ckpt_abort(sl_state *s)
{
    if (s->ckpt_txn)
        mdb_txn_abort(s->ckpt_txn);
    s->ckpt_txn = NULL;
}

uint64_t sl__state_bytes(sl_state *s)
{
    MDB_envinfo info;
    MDB_stat st;
    if (!s->env || mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
        return 0;
    return ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
}
