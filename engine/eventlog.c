/*
 * eventlog.c - the event log's environment, appends with group commit, and
 * retention (the layout is in eventlog_internal.h, the contract in eventlog.h).
 *
 * Group commit: an appender queues its request; whoever finds no write in
 * flight becomes the writer and stores every queued request in one write
 * transaction; whoever finds its request committed and no sync in flight
 * syncs, which makes durable every commit made before the sync began. The
 * writer of group n+1 runs while group n syncs. All of it is one mutex and
 * one condition variable; nothing runs in a thread of its own.
 *
 * The environment is opened MDB_NOSYNC (or MDB_NOMETASYNC, opts.ordered_sync):
 * commits only write to the page cache and durability comes from
 * mdb_env_sync. Per event a write transaction does one lookup-and-insert in
 * ids (MDB_NOOVERWRITE tells a duplicate), one insert at the end of events
 * (MDB_APPEND|MDB_RESERVE: the event is copied once, into the page) and one
 * insert in type_time; nothing is allocated.
 *
 * LMDB forbids opening one environment twice in a process (its locks are
 * per process), so handles on one directory share an evlog_env found in a
 * process-wide list by device and inode.
 */
#include "eventlog_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "timefmt.h"

#define DEFAULT_MAP_SIZE (64ull << 30)
#define RETAIN_EVERY_NS 1000000000ll /* age retention runs at most this often */
#define RETAIN_MAX 65536             /* events removed per transaction */

static pthread_mutex_t envs_lock = PTHREAD_MUTEX_INITIALIZER;
static evlog_env *envs;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A forked child must not use its parent's environments (LMDB's rule): it opens its own. */
static void forget_envs(void)
{
    envs = NULL;
    pthread_mutex_init(&envs_lock, NULL);
}

static void at_fork(void) { pthread_atfork(NULL, NULL, forget_envs); }

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

const char *sl_eventlog_strerror(int rc)
{
    if (rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE)
        return mdb_strerror(rc);
    return strerror(rc < 0 ? -rc : rc);
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* ------------------------------------------------------------ the environment */

int sl__evlog_state(evlog_env *e, MDB_txn *txn, uint64_t *next, uint64_t *bytes)
{
    MDB_val k = {5, "state"}, v;
    int rc = mdb_get(txn, e->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *next = *bytes = 0;
        return 0;
    }
    if (rc != 0)
        return evlog_rc(rc);
    if (v.mv_size != 16)
        return MDB_CORRUPTED;
    *next = sl__be64(v.mv_data);
    *bytes = sl__be64((const uint8_t *)v.mv_data + 8);
    return 0;
}

int sl__evlog_read_begin(evlog_env *e, MDB_txn **txn)
{
    return evlog_rc(mdb_txn_begin(e->env, NULL, MDB_RDONLY, txn));
}

/*
 * Open (and with `create`, initialise) the databases. Readers open them in a
 * read transaction, so a log that is not there is not made by looking at it.
 */
static int open_dbs(evlog_env *e, int create, char *err, size_t errlen)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(e->env, NULL, create ? 0 : MDB_RDONLY, &txn);
    if (rc != 0) {
        snprintf(err, errlen, "event log '%s': %s", e->path, mdb_strerror(rc));
        return evlog_rc(rc);
    }
    unsigned f = create ? MDB_CREATE : 0;
    rc = mdb_dbi_open(txn, "meta", 0, &e->meta);
    if (rc == MDB_NOTFOUND && create) {
        /* only a fresh environment becomes a log: one holding anything is somebody else's */
        MDB_dbi main_db;
        MDB_stat ms;
        if ((rc = mdb_dbi_open(txn, NULL, 0, &main_db)) == 0 &&
            (rc = mdb_stat(txn, main_db, &ms)) == 0)
            rc = ms.ms_entries ? MDB_NOTFOUND : mdb_dbi_open(txn, "meta", MDB_CREATE, &e->meta);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        if (rc == MDB_NOTFOUND)
            snprintf(err, errlen, "'%s' is an LMDB environment but not an event log", e->path);
        else
            snprintf(err, errlen, "event log '%s': %s", e->path, mdb_strerror(rc));
        return rc == MDB_NOTFOUND ? -EINVAL : evlog_rc(rc);
    }
    MDB_val k = {6, "format"}, v;
    rc = mdb_get(txn, e->meta, &k, &v);
    if (rc == MDB_NOTFOUND && create) {
        /* a fresh environment: the rest is created below with the format record */
        v.mv_data = EVLOG_FORMAT;
        v.mv_size = sizeof EVLOG_FORMAT - 1;
        rc = mdb_put(txn, e->meta, &k, &v, 0);
    } else if (rc == 0 && (v.mv_size != sizeof EVLOG_FORMAT - 1 ||
                           memcmp(v.mv_data, EVLOG_FORMAT, v.mv_size) != 0)) {
        mdb_txn_abort(txn);
        snprintf(err, errlen, "event log '%s' has format '%.*s'; this sluice reads '%s'", e->path,
                 (int)(v.mv_size > 64 ? 64 : v.mv_size), (const char *)v.mv_data, EVLOG_FORMAT);
        return -EINVAL;
    }
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        snprintf(err, errlen, "'%s' is an LMDB environment but not an event log", e->path);
        return -EINVAL;
    }
    if (rc == 0 && (rc = mdb_dbi_open(txn, "events", f, &e->events)) == 0 &&
        (rc = mdb_dbi_open(txn, "ids", f, &e->ids)) == 0 &&
        (rc = mdb_dbi_open(txn, "type_time", f, &e->type_time)) == 0)
        rc = mdb_txn_commit(txn); /* a read transaction's commit keeps its handles open */
    else
        mdb_txn_abort(txn);
    if (rc != 0) {
        snprintf(err, errlen, "event log '%s': %s", e->path,
                 rc == MDB_NOTFOUND ? "databases missing (damaged)" : mdb_strerror(rc));
        return evlog_rc(rc);
    }
    return 0;
}

static void env_free(evlog_env *e)
{
    if (e->env)
        mdb_env_close(e->env);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e->path);
    free(e);
}

static evlog_env *env_new(const char *dir, const sl_eventlog_opts *o, char *err, size_t errlen,
                          int *rcp)
{
    evlog_env *e = calloc(1, sizeof *e);
    pthread_condattr_t ca;
    if (!e || !(e->path = strdup(dir))) {
        free(e);
        snprintf(err, errlen, "out of memory");
        *rcp = -ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* sl_eventlog_wait's deadlines */
    pthread_cond_init(&e->cv, &ca);
    pthread_condattr_destroy(&ca);
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | (o->ordered_sync ? MDB_NOMETASYNC : MDB_NOSYNC);
    int rc;
    if ((rc = mdb_env_create(&e->env)) != 0 ||
        (rc = mdb_env_set_mapsize(e->env, o->map_size ? o->map_size : DEFAULT_MAP_SIZE)) != 0 ||
        (rc = mdb_env_set_maxdbs(e->env, 8)) != 0 ||
        (rc = mdb_env_set_maxreaders(e->env, 512)) != 0 ||
        (rc = mdb_env_open(e->env, dir, flags, 0666)) != 0) {
        if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
            snprintf(err, errlen, "'%s/data.mdb' is not an event log (%s)", dir, mdb_strerror(rc));
        else
            snprintf(err, errlen, "event log '%s': %s", dir, mdb_strerror(rc));
        *rcp = rc == MDB_INVALID ? -EINVAL : evlog_rc(rc);
        if (e->env)
            mdb_env_close(e->env);
        e->env = NULL;
        env_free(e);
        return NULL;
    }
    int dead;
    mdb_reader_check(e->env, &dead); /* slots of readers that died (kill -9) */
    if ((*rcp = open_dbs(e, o->create, err, errlen)) != 0) {
        env_free(e);
        return NULL;
    }
    return e;
}

int sl_eventlog_open(const char *dir, const sl_eventlog_opts *opts, sl_eventlog **out, char *err,
                     size_t errlen)
{
    sl_eventlog_opts o = {0};
    if (opts)
        o = *opts;
    *out = NULL;
    struct stat st;
    char data[4200];
    int rc;
    if (o.create && (rc = make_dirs(dir)) != 0) {
        snprintf(err, errlen, "event log '%s': cannot create the directory: %s", dir,
                 strerror(-rc));
        return rc;
    }
    if (stat(dir, &st) != 0) {
        rc = -errno;
        snprintf(err, errlen, "no event log at '%s' (%s)", dir, strerror(-rc));
        return rc;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "no event log at '%s' (not a directory)", dir);
        return -ENOTDIR;
    }
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    if (!o.create && access(data, F_OK) != 0) {
        snprintf(err, errlen, "no event log at '%s' (no data.mdb in it)", dir);
        return -ENOENT;
    }
    sl_eventlog *log = calloc(1, sizeof *log);
    if (!log || !(log->dir = strdup(dir))) {
        free(log);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    pthread_once(&atfork_once, at_fork);
    pthread_mutex_lock(&envs_lock);
    evlog_env *e = envs;
    while (e && !(e->dev == st.st_dev && e->ino == st.st_ino))
        e = e->next;
    rc = 0;
    if (e) {
        e->refs++;
    } else if ((e = env_new(dir, &o, err, errlen, &rc))) {
        e->dev = st.st_dev;
        e->ino = st.st_ino;
        e->refs = 1;
        e->next = envs;
        envs = e;
    }
    pthread_mutex_unlock(&envs_lock);
    if (!e) {
        free(log->dir);
        free(log);
        return rc;
    }
    log->e = e;
    if (o.max_age_ns > 0 || o.max_bytes > 0) {
        pthread_mutex_lock(&e->mu);
        e->max_age_ns = o.max_age_ns;
        e->max_bytes = o.max_bytes;
        pthread_mutex_unlock(&e->mu);
    }
    *out = log;
    return 0;
}

void sl_eventlog_close(sl_eventlog **logp)
{
    sl_eventlog *log = logp ? *logp : NULL;
    if (!log)
        return;
    pthread_mutex_lock(&envs_lock);
    evlog_env *e = log->e;
    if (--e->refs == 0) {
        evlog_env **pp = &envs;
        while (*pp != e)
            pp = &(*pp)->next;
        *pp = e->next;
        env_free(e);
    }
    pthread_mutex_unlock(&envs_lock);
    free(log->dir);
    free(log);
    *logp = NULL;
}

const char *sl_eventlog_dir(const sl_eventlog *log) { return log->dir; }

/* ------------------------------------------------------------ one event */

typedef struct fields {
    const char *id, *type;
    uint32_t idlen, typelen;
    int has_time;
    int64_t time;
} fields;

/* Find id, type and time at the top of a msgpack map. Returns NULL, or why it is refused. */
static const char *scan_event(const uint8_t *p, size_t len, fields *f)
{
    const uint8_t *end = p + len;
    sl_mp_val m, k, v;
    memset(f, 0, sizeof *f);
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP)
        return "not a msgpack map";
    for (uint32_t i = 0; i < m.v.n; i++) {
        if (sl_mp_read(&p, end, &k) != 0)
            return "malformed msgpack";
        if (k.type != SL_MP_STR || k.v.str.len < 2 || k.v.str.len > 4) {
            if ((k.type == SL_MP_MAP || k.type == SL_MP_ARRAY) && k.v.n)
                return "a map key that is a map or an array";
            if (sl_mp_skip(&p, end) != 0)
                return "malformed msgpack";
            continue;
        }
        const uint8_t *at = p;
        if (sl_mp_skip(&p, end) != 0)
            return "malformed msgpack";
        if (k.v.str.len == 2 && memcmp(k.v.str.ptr, "id", 2) == 0) {
            if (sl_mp_read(&at, end, &v) != 0 || v.type != SL_MP_STR)
                return "'id' is not a string";
            f->id = v.v.str.ptr;
            f->idlen = v.v.str.len;
        } else if (k.v.str.len == 4 && memcmp(k.v.str.ptr, "type", 4) == 0) {
            if (sl_mp_read(&at, end, &v) != 0 || v.type != SL_MP_STR)
                return "'type' is not a string";
            f->type = v.v.str.ptr;
            f->typelen = v.v.str.len;
        } else if (k.v.str.len == 4 && memcmp(k.v.str.ptr, "time", 4) == 0) {
            if (sl_mp_read(&at, end, &v) != 0)
                return "malformed msgpack";
            if (v.type == SL_MP_EXT) {
                if (sl_mp_timestamp_ns(&v, &f->time) != 0)
                    return "'time' is not a valid timestamp";
            } else if (v.type == SL_MP_INT) {
                f->time = v.v.i;
            } else if (v.type == SL_MP_UINT && v.v.u <= INT64_MAX) {
                f->time = (int64_t)v.v.u;
            } else if (v.type == SL_MP_STR) {
                if (sl_time_parse(v.v.str.ptr, v.v.str.len, &f->time) != 0)
                    return "'time' is not RFC 3339 text";
            } else if (v.type != SL_MP_NIL) {
                return "'time' is not a timestamp";
            }
            f->has_time = v.type != SL_MP_NIL;
        }
    }
    if (p != end)
        return "bytes after the event's map";
    if (!f->id)
        return "no 'id'";
    if (f->idlen == 0)
        return "'id' is empty";
    if (f->idlen > SL_EVENTLOG_MAX_ID)
        return "'id' is longer than 480 bytes";
    if (f->typelen > SL_EVENTLOG_MAX_TYPE)
        return "'type' is longer than 256 bytes";
    if (f->type && memchr(f->type, 0, f->typelen))
        return "'type' holds a NUL byte";
    return NULL;
}

/* ------------------------------------------------------------ writing */

/* Type-index key of an event: type, 0, time, offset. */
static size_t tt_key(uint8_t *k, const char *type, size_t tlen, int64_t t, uint64_t off)
{
    if (tlen)
        memcpy(k, type, tlen);
    k[tlen] = 0;
    evlog_suffix(k + tlen + 1, t, off);
    return tlen + EVLOG_SUFFIX;
}

/*
 * Remove the oldest events (offset order) while they are older than the age
 * limit or the log holds more bytes than allowed, at most `max` of them.
 * *bytes is the stored total, kept up to date. Returns the number removed or
 * a negative code.
 */
static int64_t retain_in_txn(evlog_env *e, MDB_txn *txn, int64_t now, int64_t max_age,
                             uint64_t max_bytes, uint64_t *bytes, int64_t max)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, e->events, &c);
    if (rc != 0)
        return evlog_rc(rc);
    MDB_val k, v;
    int64_t removed = 0;
    uint8_t key[SL_EVENTLOG_MAX_TYPE + EVLOG_SUFFIX];
    /* always the first record: a cursor just past a deletion is LMDB's subtle case */
    while (removed < max && (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0) {
        sl_eventlog_event ev;
        if (k.mv_size != 8 || evlog_decode(sl__be64(k.mv_data), &v, &ev) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        int old = max_age > 0 && ev.append_ns < now - max_age;
        int over = max_bytes > 0 && *bytes > max_bytes;
        if (!old && !over)
            break;
        fields f;
        if (scan_event(ev.data, ev.len, &f) != NULL) {
            rc = MDB_CORRUPTED;
            break;
        }
        MDB_val ik = {f.idlen, (void *)f.id};
        MDB_val tk = {tt_key(key, f.type, f.typelen, ev.time_ns, ev.offset), key};
        if ((rc = mdb_del(txn, e->ids, &ik, NULL)) != 0 && rc != MDB_NOTFOUND)
            break;
        if ((rc = mdb_del(txn, e->type_time, &tk, NULL)) != 0 && rc != MDB_NOTFOUND)
            break;
        *bytes -= *bytes >= v.mv_size ? v.mv_size : *bytes;
        if ((rc = mdb_cursor_del(c, 0)) != 0)
            break;
        removed++;
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return evlog_rc(rc);
    return removed;
}

static int put_state(evlog_env *e, MDB_txn *txn, uint64_t next, uint64_t bytes)
{
    uint8_t s[16];
    evlog_put64(s, next);
    evlog_put64(s + 8, bytes);
    MDB_val k = {5, "state"}, v = {16, s};
    return mdb_put(txn, e->meta, &k, &v, 0);
}

typedef struct group_counts {
    uint64_t appended, duplicates, invalid, removed;
} group_counts;

/* Store one request's events in txn; *next and *bytes advance. Returns 0 or an LMDB code. */
static int write_req(evlog_env *e, MDB_txn *txn, evlog_req *r, int64_t now, uint64_t *next,
                     uint64_t *bytes, group_counts *gc)
{
    uint8_t key[SL_EVENTLOG_MAX_TYPE + EVLOG_SUFFIX], off_be[8];
    int appended = 0;
    for (size_t i = 0; i < r->n; i++) {
        sl_eventlog_result *res = &r->results[i];
        fields f;
        res->why = scan_event(r->evs[i], r->lens[i], &f);
        if (res->why) {
            res->status = SL_EVENTLOG_INVALID;
            res->offset = 0;
            gc->invalid++;
            continue;
        }
        uint64_t off = *next;
        evlog_put64(off_be, off);
        MDB_val ik = {f.idlen, (void *)f.id}, iv = {8, off_be};
        int rc = mdb_put(txn, e->ids, &ik, &iv, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) { /* iv now holds the stored offset */
            res->status = SL_EVENTLOG_DUPLICATE;
            res->offset = iv.mv_size == 8 ? sl__be64(iv.mv_data) : 0;
            gc->duplicates++;
            continue;
        }
        if (rc != 0)
            return rc;
        int64_t t = f.has_time ? f.time : now;
        MDB_val ek = {8, off_be}, ev = {EVLOG_HEAD + r->lens[i], NULL};
        if ((rc = mdb_put(txn, e->events, &ek, &ev, MDB_APPEND | MDB_RESERVE)) != 0)
            return rc;
        uint8_t *dst = ev.mv_data;
        evlog_put64(dst, (uint64_t)now);
        evlog_put64(dst + 8, (uint64_t)t);
        memcpy(dst + EVLOG_HEAD, r->evs[i], r->lens[i]);
        MDB_val tk = {tt_key(key, f.type, f.typelen, t, off), key}, tv = {0, NULL};
        if ((rc = mdb_put(txn, e->type_time, &tk, &tv, 0)) != 0)
            return rc;
        res->status = SL_EVENTLOG_APPENDED;
        res->offset = off;
        res->why = NULL;
        *next = off + 1;
        *bytes += EVLOG_HEAD + r->lens[i];
        appended++;
    }
    r->rc = appended;
    gc->appended += (uint64_t)appended;
    return 0;
}

/*
 * One write transaction for a group of requests (the caller is the writer,
 * without the mutex). Retention runs in the same transaction when it is due.
 * Returns 0 or a negative code (then nothing of the group is stored).
 */
static int write_group(evlog_env *e, evlog_req *list, int64_t max_age, uint64_t max_bytes,
                       int retain_due, group_counts *gc)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(e->env, NULL, 0, &txn);
    if (rc != 0)
        return evlog_rc(rc);
    uint64_t next, bytes;
    int64_t now = wall_ns();
    if ((rc = sl__evlog_state(e, txn, &next, &bytes)) != 0)
        goto err;
    for (evlog_req *r = list; r; r = r->next)
        if ((rc = write_req(e, txn, r, now, &next, &bytes, gc)) != 0)
            goto err;
    if (retain_due || (max_bytes > 0 && bytes > max_bytes)) {
        int64_t n = retain_in_txn(e, txn, now, retain_due ? max_age : 0, max_bytes, &bytes,
                                  RETAIN_MAX);
        if (n < 0) {
            rc = (int)n;
            goto err;
        }
        gc->removed = (uint64_t)n;
    }
    if ((rc = put_state(e, txn, next, bytes)) != 0)
        goto err;
    return evlog_rc(mdb_txn_commit(txn));
err:
    mdb_txn_abort(txn);
    return evlog_rc(rc);
}

/* Become the writer of everything queued (called and returns with e->mu held). */
static void lead_write(evlog_env *e)
{
    evlog_req *list = e->q_head;
    e->q_head = e->q_tail = NULL;
    e->writing = 1;
    int64_t now = mono_ns();
    int retain_due = e->max_age_ns > 0 && now - e->last_retain_ns >= RETAIN_EVERY_NS;
    if (retain_due)
        e->last_retain_ns = now;
    int64_t max_age = e->max_age_ns;
    uint64_t max_bytes = e->max_bytes;
    pthread_mutex_unlock(&e->mu);

    group_counts gc = {0};
    int rc = write_group(e, list, max_age, max_bytes, retain_due, &gc);

    pthread_mutex_lock(&e->mu);
    uint64_t last = 0;
    for (evlog_req *r = list; r; r = r->next) {
        if (rc != 0)
            r->rc = rc;
        r->committed = 1;
        last = r->seq;
    }
    if (rc == 0) {
        e->commits++;
        e->appends += gc.appended;
        e->duplicates += gc.duplicates;
        e->invalid += gc.invalid;
        e->removed += gc.removed;
    }
    if (last > e->committed_seq)
        e->committed_seq = last;
    e->writing = 0;
    e->commit_gen++;
    pthread_cond_broadcast(&e->cv);
}

/* Sync every commit made so far (called and returns with e->mu held). */
static void lead_sync(evlog_env *e)
{
    uint64_t target = e->committed_seq;
    e->syncing = 1;
    pthread_mutex_unlock(&e->mu);
    int rc = mdb_env_sync(e->env, 1);
    pthread_mutex_lock(&e->mu);
    e->syncing = 0;
    e->fsyncs++;
    if (rc != 0)
        e->sync_err = evlog_rc(rc); /* after a failed fsync nothing is known: stop appending */
    else if (target > e->durable_seq)
        e->durable_seq = target;
    pthread_cond_broadcast(&e->cv);
}

/* Wait (with e->mu held) until seq is durable, syncing when nobody else is. */
static int wait_durable(evlog_env *e, uint64_t seq)
{
    for (;;) {
        if (e->durable_seq >= seq)
            return 0;
        if (e->sync_err)
            return e->sync_err;
        if (!e->syncing && e->committed_seq >= seq)
            lead_sync(e);
        else
            pthread_cond_wait(&e->cv, &e->mu);
    }
}

static int submit(sl_eventlog *log, const uint8_t *const *evs, const size_t *lens, size_t n,
                  sl_eventlog_result *results, int durable, uint64_t *seq)
{
    evlog_env *e = log->e;
    evlog_req r = {evs, lens, n, results, 0, 0, 0, NULL};
    pthread_mutex_lock(&e->mu);
    if (e->sync_err) {
        int rc = e->sync_err;
        pthread_mutex_unlock(&e->mu);
        return rc;
    }
    r.seq = ++e->next_seq;
    if (e->q_tail)
        e->q_tail->next = &r;
    else
        e->q_head = &r;
    e->q_tail = &r;
    while (!r.committed) {
        if (!e->writing)
            lead_write(e); /* takes our request along with the others queued */
        else
            pthread_cond_wait(&e->cv, &e->mu);
    }
    int rc = r.rc;
    if (rc >= 0 && durable) {
        int s = wait_durable(e, r.seq);
        if (s != 0)
            rc = s;
    }
    pthread_mutex_unlock(&e->mu);
    if (seq)
        *seq = r.seq;
    return rc;
}

int sl_eventlog_append(sl_eventlog *log, const uint8_t *const *evs, const size_t *lens, size_t n,
                       sl_eventlog_result *results)
{
    return submit(log, evs, lens, n, results, 1, NULL);
}

int sl_eventlog_append_async(sl_eventlog *log, const uint8_t *const *evs, const size_t *lens,
                             size_t n, sl_eventlog_result *results, uint64_t *seq)
{
    return submit(log, evs, lens, n, results, 0, seq);
}

int sl_eventlog_sync(sl_eventlog *log, uint64_t seq)
{
    evlog_env *e = log->e;
    pthread_mutex_lock(&e->mu);
    int rc = wait_durable(e, seq);
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int64_t sl_eventlog_retain(sl_eventlog *log)
{
    evlog_env *e = log->e;
    pthread_mutex_lock(&e->mu);
    int64_t max_age = e->max_age_ns;
    uint64_t max_bytes = e->max_bytes;
    pthread_mutex_unlock(&e->mu);
    if (max_age <= 0 && max_bytes == 0)
        return 0;
    int64_t total = 0;
    for (;;) {
        MDB_txn *txn;
        uint64_t next, bytes;
        int rc = mdb_txn_begin(e->env, NULL, 0, &txn);
        if (rc != 0)
            return evlog_rc(rc);
        int64_t n = 0;
        if ((rc = sl__evlog_state(e, txn, &next, &bytes)) != 0 ||
            (n = retain_in_txn(e, txn, wall_ns(), max_age, max_bytes, &bytes, RETAIN_MAX)) < 0 ||
            (n > 0 && (rc = put_state(e, txn, next, bytes)) != 0)) {
            mdb_txn_abort(txn);
            return n < 0 ? n : evlog_rc(rc);
        }
        if ((rc = mdb_txn_commit(txn)) != 0)
            return evlog_rc(rc);
        if (n > 0 && (rc = mdb_env_sync(e->env, 1)) != 0)
            return evlog_rc(rc);
        pthread_mutex_lock(&e->mu);
        e->removed += (uint64_t)n;
        if (n > 0)
            e->fsyncs++;
        e->commit_gen++;
        pthread_mutex_unlock(&e->mu);
        total += n;
        if (n < RETAIN_MAX)
            return total;
    }
}
