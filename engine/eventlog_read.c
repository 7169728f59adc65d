/*
 * eventlog_read.c - reading the event log: readers (offset order), lookups
 * by id, queries by type and time, bounds, waiting for appends, statistics.
 *
 * Every read is an LMDB read transaction: it never blocks a writer and sees
 * the log as of its start, whichever process commits. A reader keeps one
 * transaction and renews it per call, so a follower's poll costs a renew
 * and a seek. A query merges one cursor per type over the type index (keys
 * sort by (time, offset) within a type) and fetches each result by offset.
 */
#include "eventlog_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct sl_eventlog_reader {
    sl_eventlog *log;
    MDB_txn *txn;     /* reset between reads when nothing is borrowed */
    MDB_cursor *cur;
    int live;         /* txn is renewed: the last events read are borrowed from it */
    uint64_t next;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* ------------------------------------------------------------ readers */

int sl_eventlog_reader_open(sl_eventlog *log, uint64_t offset, sl_eventlog_reader **out)
{
    sl_eventlog_reader *r = calloc(1, sizeof *r);
    *out = NULL;
    if (!r)
        return -ENOMEM;
    r->log = log;
    r->next = offset;
    int rc = mdb_txn_begin(log->e->env, NULL, MDB_RDONLY, &r->txn);
    if (rc == 0 && (rc = mdb_cursor_open(r->txn, log->e->events, &r->cur)) != 0)
        mdb_txn_abort(r->txn);
    if (rc != 0) {
        free(r);
        return evlog_rc(rc);
    }
    mdb_txn_reset(r->txn);
    *out = r;
    return 0;
}

void sl_eventlog_reader_close(sl_eventlog_reader **rp)
{
    sl_eventlog_reader *r = rp ? *rp : NULL;
    if (!r)
        return;
    mdb_cursor_close(r->cur);
    mdb_txn_abort(r->txn);
    free(r);
    *rp = NULL;
}

void sl_eventlog_reader_release(sl_eventlog_reader *r)
{
    if (r->live)
        mdb_txn_reset(r->txn);
    r->live = 0;
}

uint64_t sl_eventlog_reader_offset(const sl_eventlog_reader *r) { return r->next; }

void sl_eventlog_reader_seek(sl_eventlog_reader *r, uint64_t offset)
{
    sl_eventlog_reader_release(r);
    r->next = offset;
}

int sl_eventlog_reader_next(sl_eventlog_reader *r, sl_eventlog_event *evs, size_t max)
{
    sl_eventlog_reader_release(r);
    int rc = mdb_txn_renew(r->txn);
    if (rc == 0)
        rc = mdb_cursor_renew(r->txn, r->cur);
    if (rc != 0)
        return evlog_rc(rc);
    r->live = 1;
    uint8_t kb[8];
    evlog_put64(kb, r->next);
    MDB_val k = {8, kb}, v;
    size_t n = 0;
    rc = max ? mdb_cursor_get(r->cur, &k, &v, MDB_SET_RANGE) : MDB_NOTFOUND;
    while (rc == 0) {
        if (k.mv_size != 8 || evlog_decode(sl__be64(k.mv_data), &v, &evs[n]) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        r->next = evs[n].offset + 1;
        if (++n == max)
            break;
        rc = mdb_cursor_get(r->cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        sl_eventlog_reader_release(r);
        return evlog_rc(rc);
    }
    if (n == 0)
        sl_eventlog_reader_release(r); /* nothing borrowed: let LMDB reuse pages */
    return (int)n;
}

/* ------------------------------------------------------------ bounds, waiting */

/* First offset held (== next when empty) and next offset, in txn. */
static int bounds_in(evlog_env *e, MDB_txn *txn, uint64_t *first, uint64_t *next)
{
    uint64_t bytes;
    int rc = sl__evlog_state(e, txn, next, &bytes);
    if (rc != 0)
        return rc;
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, e->events, &c)) != 0)
        return evlog_rc(rc);
    MDB_val k, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND) {
        *first = *next;
        return 0;
    }
    if (rc != 0)
        return evlog_rc(rc);
    if (k.mv_size != 8)
        return MDB_CORRUPTED;
    *first = sl__be64(k.mv_data);
    return 0;
}

int sl_eventlog_bounds(sl_eventlog *log, uint64_t *first, uint64_t *next)
{
    MDB_txn *txn;
    uint64_t f, n;
    int rc = sl__evlog_read_begin(log->e, &txn);
    if (rc != 0)
        return rc;
    rc = bounds_in(log->e, txn, &f, &n);
    mdb_txn_abort(txn);
    if (rc == 0) {
        if (first)
            *first = f;
        if (next)
            *next = n;
    }
    return rc;
}

int sl_eventlog_wait(sl_eventlog *log, uint64_t offset, int64_t timeout_ns)
{
    evlog_env *e = log->e;
    int64_t deadline = mono_ns() + (timeout_ns > 0 ? timeout_ns : 0);
    for (;;) {
        pthread_mutex_lock(&e->mu);
        uint64_t gen = e->commit_gen;
        pthread_mutex_unlock(&e->mu);
        uint64_t next;
        int rc = sl_eventlog_bounds(log, NULL, &next);
        if (rc != 0)
            return rc;
        if (next > offset)
            return 1;
        if (mono_ns() >= deadline)
            return 0;
        struct timespec ts = {deadline / 1000000000ll, deadline % 1000000000ll};
        pthread_mutex_lock(&e->mu);
        int timed_out = 0;
        while (gen == e->commit_gen && !timed_out)
            timed_out = pthread_cond_timedwait(&e->cv, &e->mu, &ts) == ETIMEDOUT;
        pthread_mutex_unlock(&e->mu);
        if (timed_out) { /* one last look: another process may have appended */
            if ((rc = sl_eventlog_bounds(log, NULL, &next)) != 0)
                return rc;
            return next > offset;
        }
    }
}

/* ------------------------------------------------------------ by id */

int sl_eventlog_get(sl_eventlog *log, const char *id, size_t idlen, sl_eventlog_event *ev,
                    sl_wbuf *copy)
{
    evlog_env *e = log->e;
    if (idlen == 0 || idlen > SL_EVENTLOG_MAX_ID)
        return 1; /* never stored */
    MDB_txn *txn;
    int rc = sl__evlog_read_begin(e, &txn);
    if (rc != 0)
        return rc;
    MDB_val k = {idlen, (void *)id}, v;
    rc = mdb_get(txn, e->ids, &k, &v);
    if (rc == 0 && v.mv_size != 8)
        rc = MDB_CORRUPTED;
    if (rc == 0) {
        uint64_t off = sl__be64(v.mv_data);
        MDB_val ek = {8, v.mv_data};
        rc = mdb_get(txn, e->events, &ek, &v);
        if (rc == 0 && (rc = evlog_decode(off, &v, ev)) == 0) {
            sl_wbuf_reset(copy);
            if (sl_wbuf_append(copy, ev->data, ev->len) != 0)
                rc = ENOMEM;
            else
                ev->data = copy->data;
        }
    }
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return 1;
    return evlog_rc(rc);
}

/* ------------------------------------------------------------ queries */

/* One type's cursor over the type index, positioned on its next result. */
typedef struct tcur {
    MDB_cursor *c;
    const char *type;
    size_t tlen;
    int live;
    const uint8_t *suffix; /* the current key's (time, offset) bytes */
} tcur;

typedef struct qstate {
    int desc;
    uint8_t lo[16], hi[16]; /* (time, offset) bytes: lo inclusive, hi exclusive */
    int has_hi;
} qstate;

/* Whether the cursor's current key (rc from the last move) is a result of this type. */
static int check(tcur *t, const qstate *q, int rc, const MDB_val *k)
{
    t->live = 0;
    if (rc != 0 || k->mv_size != t->tlen + EVLOG_SUFFIX ||
        (t->tlen && memcmp(k->mv_data, t->type, t->tlen) != 0) ||
        ((const uint8_t *)k->mv_data)[t->tlen] != 0)
        return 0;
    const uint8_t *s = (const uint8_t *)k->mv_data + t->tlen + 1;
    if (memcmp(s, q->lo, 16) < 0 || (q->has_hi && memcmp(s, q->hi, 16) >= 0))
        return 0;
    t->suffix = s;
    t->live = 1;
    return 1;
}

static void position(tcur *t, const qstate *q, uint8_t *kb)
{
    MDB_val k, v;
    int rc;
    memcpy(kb, t->type, t->tlen);
    if (!q->desc) {
        kb[t->tlen] = 0;
        memcpy(kb + t->tlen + 1, q->lo, 16);
        k = (MDB_val){t->tlen + EVLOG_SUFFIX, kb};
        rc = mdb_cursor_get(t->c, &k, &v, MDB_SET_RANGE);
    } else {
        if (q->has_hi) { /* the last key below (type, hi) */
            kb[t->tlen] = 0;
            memcpy(kb + t->tlen + 1, q->hi, 16);
            k = (MDB_val){t->tlen + EVLOG_SUFFIX, kb};
        } else { /* the last key of this type: just below "type\x01" */
            kb[t->tlen] = 1;
            k = (MDB_val){t->tlen + 1, kb};
        }
        rc = mdb_cursor_get(t->c, &k, &v, MDB_SET_RANGE);
        rc = mdb_cursor_get(t->c, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);
    }
    check(t, q, rc, &k);
}

/* The distinct types in the index, as NUL-terminated strings back to back in *buf. */
static int all_types(evlog_env *e, MDB_txn *txn, sl_wbuf *buf, size_t *n)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, e->type_time, &c);
    if (rc != 0)
        return evlog_rc(rc);
    uint8_t kb[SL_EVENTLOG_MAX_TYPE + 2];
    MDB_val k, v;
    *n = 0;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0) {
        const uint8_t *z = memchr(k.mv_data, 0, k.mv_size);
        size_t tlen = z ? (size_t)(z - (const uint8_t *)k.mv_data) : k.mv_size;
        if (!z || tlen > SL_EVENTLOG_MAX_TYPE) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (sl_wbuf_append(buf, k.mv_data, tlen) != 0 || sl_wbuf_append(buf, "", 1) != 0) {
            rc = ENOMEM;
            break;
        }
        (*n)++;
        memcpy(kb, k.mv_data, tlen); /* the next type starts at or after "type\x01" */
        kb[tlen] = 1;
        k = (MDB_val){tlen + 1, kb};
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : evlog_rc(rc);
}

int64_t sl_eventlog_query_run(sl_eventlog *log, const sl_eventlog_query *qq, sl_eventlog_visit visit,
                              void *arg)
{
    evlog_env *e = log->e;
    qstate q = {.desc = qq->desc};
    if (qq->from_ns > qq->to_ns)
        return -EINVAL;
    MDB_txn *txn;
    int rc = sl__evlog_read_begin(e, &txn);
    if (rc != 0)
        return rc;
    sl_wbuf names = {0};
    tcur *cur = NULL;
    size_t nt = 0;
    int64_t count = 0;
    uint8_t kb[SL_EVENTLOG_MAX_TYPE + EVLOG_SUFFIX], ob[8];

    evlog_suffix(q.lo, qq->from_ns, 0);
    q.has_hi = qq->to_ns != INT64_MAX;
    if (q.has_hi)
        evlog_suffix(q.hi, qq->to_ns, 0);
    if (qq->has_after) { /* resume after (its time, its offset) in this order */
        MDB_val k = {8, ob}, v;
        sl_eventlog_event ev = {.time_ns = qq->after_time_ns};
        evlog_put64(ob, qq->after);
        if (!qq->after_has_time && ((rc = mdb_get(txn, e->events, &k, &v)) != 0 ||
                                    (rc = evlog_decode(qq->after, &v, &ev)) != 0)) {
            rc = rc == MDB_NOTFOUND ? -ENOENT : evlog_rc(rc);
            goto out;
        }
        uint8_t s[16];
        if (!q.desc) {
            if (qq->after == UINT64_MAX) { /* (a made-up cursor) the next key is (time + 1, 0) */
                if (ev.time_ns == INT64_MAX)
                    goto out; /* nothing after it */
                evlog_suffix(s, ev.time_ns + 1, 0);
            } else {
                evlog_suffix(s, ev.time_ns, qq->after + 1);
            }
            if (memcmp(s, q.lo, 16) > 0)
                memcpy(q.lo, s, 16);
        } else {
            evlog_suffix(s, ev.time_ns, qq->after);
            if (!q.has_hi || memcmp(s, q.hi, 16) < 0)
                memcpy(q.hi, s, 16);
            q.has_hi = 1;
        }
    }

    if (qq->n_types == 0) {
        if ((rc = all_types(e, txn, &names, &nt)) != 0)
            goto out;
    } else {
        for (size_t i = 0; i < qq->n_types; i++) {
            size_t len = strlen(qq->types[i]);
            int seen = 0;
            for (size_t j = 0; j < i && !seen; j++)
                seen = strcmp(qq->types[j], qq->types[i]) == 0;
            if (seen || len > SL_EVENTLOG_MAX_TYPE)
                continue; /* a type too long was never stored */
            if (sl_wbuf_append(&names, qq->types[i], len + 1) != 0) {
                rc = -ENOMEM;
                goto out;
            }
            nt++;
        }
    }
    if (nt && !(cur = calloc(nt, sizeof *cur))) {
        rc = -ENOMEM;
        goto out;
    }
    const char *p = (const char *)names.data;
    for (size_t i = 0; i < nt; i++) {
        cur[i].type = p;
        cur[i].tlen = strlen(p);
        p += cur[i].tlen + 1;
        if ((rc = mdb_cursor_open(txn, e->type_time, &cur[i].c)) != 0) {
            rc = evlog_rc(rc);
            goto out;
        }
        position(&cur[i], &q, kb);
    }

    while (!qq->limit || (uint64_t)count < qq->limit) {
        tcur *best = NULL;
        for (size_t i = 0; i < nt; i++) /* a few types: a linear pick beats a heap */
            if (cur[i].live &&
                (!best || (memcmp(cur[i].suffix, best->suffix, 16) < 0) != q.desc))
                best = &cur[i];
        if (!best)
            break;
        uint64_t off = sl__be64(best->suffix + 8);
        int64_t t = (int64_t)(sl__be64(best->suffix) ^ (1ull << 63));
        MDB_val k = {8, ob}, v;
        sl_eventlog_event ev;
        evlog_put64(ob, off);
        if ((rc = mdb_get(txn, e->events, &k, &v)) != 0 || (rc = evlog_decode(off, &v, &ev)) != 0) {
            rc = evlog_rc(rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc); /* an index entry without event */
            goto out;
        }
        ev.time_ns = t;
        count++;
        if (visit(arg, &ev) != 0)
            break;
        rc = mdb_cursor_get(best->c, &k, &v, q.desc ? MDB_PREV : MDB_NEXT);
        check(best, &q, rc, &k);
    }
    rc = 0;
out:
    for (size_t i = 0; cur && i < nt; i++)
        if (cur[i].c)
            mdb_cursor_close(cur[i].c);
    free(cur);
    sl_wbuf_fini(&names);
    mdb_txn_abort(txn);
    return rc != 0 ? rc : count;
}

/* ------------------------------------------------------------ statistics */

int sl_eventlog_stats_get(sl_eventlog *log, sl_eventlog_stats *st)
{
    evlog_env *e = log->e;
    memset(st, 0, sizeof *st);
    MDB_txn *txn;
    int rc = sl__evlog_read_begin(e, &txn);
    if (rc != 0)
        return rc;
    MDB_stat ms;
    MDB_envinfo info;
    MDB_cursor *c = NULL;
    MDB_val k, v;
    sl_eventlog_event ev;
    sl_wbuf names = {0};
    size_t nt = 0;
    if ((rc = sl__evlog_state(e, txn, &st->next_offset, &st->bytes)) != 0 ||
        (rc = bounds_in(e, txn, &st->first_offset, &st->next_offset)) != 0)
        goto out;
    if ((rc = evlog_rc(mdb_stat(txn, e->events, &ms))) != 0)
        goto out;
    st->count = ms.ms_entries;
    if ((rc = evlog_rc(mdb_cursor_open(txn, e->events, &c))) != 0)
        goto out;
    for (int last = 0; last < 2 && st->count; last++) {
        rc = mdb_cursor_get(c, &k, &v, last ? MDB_LAST : MDB_FIRST);
        if (rc != 0 || k.mv_size != 8 || (rc = evlog_decode(sl__be64(k.mv_data), &v, &ev)) != 0) {
            rc = evlog_rc(rc ? rc : MDB_CORRUPTED);
            goto out;
        }
        *(last ? &st->newest_append_ns : &st->oldest_append_ns) = ev.append_ns;
        *(last ? &st->last_time_ns : &st->first_time_ns) = ev.time_ns;
    }
    if ((rc = all_types(e, txn, &names, &nt)) != 0)
        goto out;
    st->types = nt;
    mdb_env_info(e->env, &info);
    MDB_stat es;
    mdb_env_stat(e->env, &es);
    st->map_size = info.me_mapsize;
    st->used_bytes = (uint64_t)(info.me_last_pgno + 1) * es.ms_psize;
    char path[4200];
    struct stat fs;
    snprintf(path, sizeof path, "%s/data.mdb", log->dir);
    if (stat(path, &fs) == 0)
        st->file_bytes = (uint64_t)fs.st_size;
    pthread_mutex_lock(&e->mu);
    st->appends = e->appends;
    st->duplicates = e->duplicates;
    st->invalid = e->invalid;
    st->commits = e->commits;
    st->fsyncs = e->fsyncs;
    st->removed = e->removed;
    pthread_mutex_unlock(&e->mu);
out:
    if (c)
        mdb_cursor_close(c);
    sl_wbuf_fini(&names);
    mdb_txn_abort(txn);
    return rc;
}
