/*
 * eventlog_internal.h - what eventlog.c (opening, appending, retention) and
 * eventlog_read.c (readers, get, query, stats) share: the per-directory
 * environment, the on-disk layout and its key codecs. Not an API.
 *
 * Layout (one LMDB environment per log directory, four named databases):
 *   events     be64 offset -> be64 append_ns, be64 time_ns, msgpack event
 *   ids        id bytes -> be64 offset
 *   type_time  type bytes, 0, be64(time_ns ^ 1<<63), be64 offset -> (empty)
 *              (events without a type are indexed under the empty type)
 *   meta       "format" -> FORMAT; "state" -> be64 next_offset, be64 bytes
 * The flipped sign bit makes the time bytes sort as signed numbers, so one
 * type's keys sort by (time, offset) and a time range is one key range.
 */
#ifndef SL_EVENTLOG_INTERNAL_H
#define SL_EVENTLOG_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <sys/types.h>

#include "eventlog.h"

#define EVLOG_FORMAT "sluice-eventlog 1"
#define EVLOG_HEAD 16      /* value header: append_ns, time_ns */
#define EVLOG_SUFFIX 17    /* type_time key after the type: 0, time, offset */

/* One queued append request; lives on its caller's stack until it returns. */
typedef struct evlog_req {
    const uint8_t *const *evs;
    const size_t *lens;
    size_t n;
    sl_eventlog_result *results;
    uint64_t seq;
    int rc;          /* appended count, or a negative code */
    int committed;
    struct evlog_req *next;
} evlog_req;

/* The environment of one directory, shared by every handle on it in this process. */
typedef struct evlog_env {
    struct evlog_env *next; /* in the process-wide list */
    dev_t dev;
    ino_t ino;
    int refs;
    char *path;             /* the directory as first opened */
    MDB_env *env;
    MDB_dbi events, ids, type_time, meta;

    pthread_mutex_t mu;     /* everything below */
    pthread_cond_t cv;      /* commits, syncs and their end: every waiter re-checks */
    evlog_req *q_head, *q_tail;
    int writing, syncing;
    uint64_t next_seq, committed_seq, durable_seq;
    int sync_err;           /* a failed sync: sticky, appends are refused */
    uint64_t commit_gen;    /* bumped on every commit (sl_eventlog_wait) */
    int64_t max_age_ns;
    uint64_t max_bytes;
    int64_t last_retain_ns; /* monotonic */
    uint64_t appends, duplicates, invalid, commits, fsyncs, removed;
} evlog_env;

struct sl_eventlog {
    evlog_env *e;
    char *dir;
};

static inline void evlog_put64(uint8_t *p, uint64_t x)
{
    for (int i = 7; i >= 0; i--, x >>= 8)
        p[i] = (uint8_t)x;
}

/* The 16 bytes after a type's 0 byte: sort as (time, offset). */
static inline void evlog_suffix(uint8_t *p, int64_t t, uint64_t off)
{
    evlog_put64(p, (uint64_t)t ^ (1ull << 63));
    evlog_put64(p + 8, off);
}

/* Decode an events value. Returns 0, or MDB_CORRUPTED if it is too short. */
static inline int evlog_decode(uint64_t off, const MDB_val *v, sl_eventlog_event *ev)
{
    if (v->mv_size < EVLOG_HEAD)
        return MDB_CORRUPTED;
    const uint8_t *p = v->mv_data;
    ev->offset = off;
    ev->append_ns = (int64_t)sl__be64(p);
    ev->time_ns = (int64_t)sl__be64(p + 8);
    ev->data = p + EVLOG_HEAD;
    ev->len = v->mv_size - EVLOG_HEAD;
    return 0;
}

/* Begin a read transaction (negative code on error). */
int sl__evlog_read_begin(evlog_env *e, MDB_txn **txn);
/* next_offset and stored bytes as of txn. */
int sl__evlog_state(evlog_env *e, MDB_txn *txn, uint64_t *next, uint64_t *bytes);
/* LMDB code -> our negative code. */
static inline int evlog_rc(int rc) { return rc > 0 ? -rc : rc; }

#endif
