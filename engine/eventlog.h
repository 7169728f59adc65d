/*
 * eventlog.h - the durable event log: an append-only store of msgpack events
 * in a directory of its own (an LMDB environment, not the pipeline's state),
 * with an index by `id` and one by (`type`, `time`). sink.log writes it,
 * source.log reads it, `sluice log` inspects it, and the HTTP gateway will
 * both publish to it and query it (docs/eventlog.md).
 *
 * Offsets are dense (0, 1, 2, ...), increasing, never reused. An event is a
 * msgpack map with a string `id` (required), a string `type` (optional) and a
 * `time` (optional: msgpack timestamp, integer ns or RFC 3339 text; the
 * append time otherwise). Appending an id that is already stored is skipped
 * and reported as a duplicate, with the stored event's offset.
 *
 * Durability: commits do not fsync; an append returns (sl_eventlog_append)
 * only once a sync covers its commit. Appenders in several threads share
 * syncs (group commit: the first to find no write in flight writes every
 * queued request in one transaction, and one sync covers every commit made
 * before it started). No thread of its own.
 *
 * Threads: every function may be called from any thread on one handle, except
 * that a reader is used by one thread at a time, and close comes after every
 * other call has returned. Processes: several processes may open one log;
 * LMDB serialises writers, readers never block and see each commit as it
 * lands. Opening one directory twice in a process returns handles on one
 * shared environment (LMDB forbids two in a process).
 *
 * Errors: functions returning int give 0 (or a count) on success and a
 * negative number on error: a negated errno or an LMDB code (MDB_MAP_FULL,
 * MDB_CORRUPTED, ...); sl_eventlog_strerror covers both.
 */
#ifndef SL_EVENTLOG_H
#define SL_EVENTLOG_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/msgpack.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_eventlog sl_eventlog;
typedef struct sl_eventlog_reader sl_eventlog_reader;

/* Longest `id` and `type` accepted (LMDB keys are at most 511 bytes). */
#define SL_EVENTLOG_MAX_ID 480
#define SL_EVENTLOG_MAX_TYPE 256

typedef struct sl_eventlog_opts {
    int create;          /* make the directory and an empty log if there is none */
    uint64_t map_size;   /* address space reserved for the file; 0: 64 GiB */
    /* retention, run by this process after its commits; 0: keep everything */
    int64_t max_age_ns;  /* remove events appended longer ago than this */
    uint64_t max_bytes;  /* remove the oldest events while stored bytes exceed this */
    /*
     * Nonzero: each commit syncs its data pages before it writes its root
     * (LMDB's MDB_NOMETASYNC), so that even a power loss in the middle of a
     * commit cannot leave a root pointing at unwritten pages; costs a second
     * fsync per group. Zero (MDB_NOSYNC): one fsync per group; docs/eventlog.md
     * says what that risks. Taken from the first open of a directory.
     */
    int ordered_sync;
} sl_eventlog_opts;

/* An event read from the log. `data` is borrowed (see the call that filled it). */
typedef struct sl_eventlog_event {
    uint64_t offset;
    int64_t time_ns;    /* event time: its `time`, or the append time */
    int64_t append_ns;  /* wall clock when it was appended */
    const uint8_t *data;
    size_t len;
} sl_eventlog_event;

/*
 * Open the log in directory `dir` (opts may be NULL: open an existing log with
 * defaults). Returns 0 and *out, or a negative code with a sentence in `err`
 * (never NULL): no log there, not an event log, a corrupt file, ...
 * A second open of the same directory in this process shares the first's
 * environment; its retention settings (when nonzero) replace the earlier ones.
 */
int sl_eventlog_open(const char *dir, const sl_eventlog_opts *opts, sl_eventlog **out, char *err,
                     size_t errlen);
/* Close; accepts NULL and sets *logp to NULL. Readers of it must be closed first. */
void sl_eventlog_close(sl_eventlog **logp);

/* The directory the log was opened with (borrowed, lives as long as the handle). */
const char *sl_eventlog_dir(const sl_eventlog *log);

/* ---------------------------------------------------------------- appending */

enum {
    SL_EVENTLOG_APPENDED = 0,  /* stored at `offset` */
    SL_EVENTLOG_DUPLICATE = 1, /* its id was stored already, at `offset`; skipped */
    SL_EVENTLOG_INVALID = 2    /* not stored: `why` says what is wrong with it */
};

typedef struct sl_eventlog_result {
    uint64_t offset;
    int status;        /* SL_EVENTLOG_* */
    const char *why;   /* SL_EVENTLOG_INVALID: a static sentence; otherwise NULL */
} sl_eventlog_result;

/*
 * Append n events (evs[i], lens[i] bytes of msgpack; borrowed) and return once
 * they are durable (committed and synced). results[i] receives each event's
 * outcome. Events are stored in the order given; a duplicate inside the same
 * call is caught too. Returns the number appended (not counting duplicates and
 * invalid events), or a negative code if nothing of this call was stored (the
 * log is full: MDB_MAP_FULL; a write error) or its sync failed (then the
 * events may or may not be there after a crash; the handle refuses further
 * appends). Thread-safe: concurrent appenders share commits and syncs.
 */
int sl_eventlog_append(sl_eventlog *log, const uint8_t *const *evs, const size_t *lens, size_t n,
                       sl_eventlog_result *results);

/*
 * As sl_eventlog_append, but return once the events are committed (visible to
 * readers) and not yet durable; *seq receives a number to pass to
 * sl_eventlog_sync, which returns 0 once everything committed up to it is
 * durable (it may sync, or wait for a sync in flight).
 */
int sl_eventlog_append_async(sl_eventlog *log, const uint8_t *const *evs, const size_t *lens,
                             size_t n, sl_eventlog_result *results, uint64_t *seq);
int sl_eventlog_sync(sl_eventlog *log, uint64_t seq);

/*
 * Apply the retention settings now (appenders also run it after commits, at
 * most once a second). Returns the number of events removed, or a negative code.
 */
int64_t sl_eventlog_retain(sl_eventlog *log);

/* ------------------------------------------------------------------ reading */

/*
 * The offsets the log holds now: [*first, *next) (equal when it is empty;
 * *next is the offset the next append gets). Either pointer may be NULL.
 */
int sl_eventlog_bounds(sl_eventlog *log, uint64_t *first, uint64_t *next);

/*
 * Wait until the log holds an event at offset >= `offset` or `timeout_ns`
 * passed. Appends made through this process wake the waiter at once; those
 * of other processes are noticed when the timeout ends (callers poll with it).
 * Returns 1 if such an event exists, 0 if not, or a negative code.
 */
int sl_eventlog_wait(sl_eventlog *log, uint64_t offset, int64_t timeout_ns);

/*
 * A reader: a position in the log and a read transaction. Each call to next
 * sees every commit made before it.
 */
int sl_eventlog_reader_open(sl_eventlog *log, uint64_t offset, sl_eventlog_reader **out);
void sl_eventlog_reader_close(sl_eventlog_reader **rp);
/*
 * Read up to max events at the reader's offset or after it, in offset order,
 * into evs, and move past them. Returns how many (0 at the end), or a negative
 * code. The events' data are borrowed until the next call on this reader,
 * sl_eventlog_reader_release or close. The first event's offset is above the
 * reader's when retention removed the events between (the caller sees the gap).
 */
int sl_eventlog_reader_next(sl_eventlog_reader *r, sl_eventlog_event *evs, size_t max);
/* End the borrow of the last events read (lets LMDB reuse pages while a reader idles). */
void sl_eventlog_reader_release(sl_eventlog_reader *r);
/* The offset the next read starts from; and moving it. */
uint64_t sl_eventlog_reader_offset(const sl_eventlog_reader *r);
void sl_eventlog_reader_seek(sl_eventlog_reader *r, uint64_t offset);

/*
 * The event with this id: copied into *copy (reset first) and described by
 * *ev (ev->data points into copy). Returns 0, 1 if there is none, or a
 * negative code.
 */
int sl_eventlog_get(sl_eventlog *log, const char *id, size_t idlen, sl_eventlog_event *ev,
                    sl_wbuf *copy);

/* A query by type(s) and event-time range, ordered by (time, offset). */
typedef struct sl_eventlog_query {
    const char *const *types; /* n_types type names (NUL-terminated); none: every type */
    size_t n_types;
    int64_t from_ns, to_ns;   /* event time in [from_ns, to_ns); INT64_MIN/INT64_MAX: open */
    int has_after;            /* a cursor: continue after the event at offset `after` */
    uint64_t after;           /* (the last one of the previous page, in this order) */
    uint64_t limit;           /* at most this many events; 0: no limit */
    int desc;                 /* newest first */
    /*
     * With has_after: nonzero when `after_time_ns` is the cursor event's time
     * (as the visit saw it). The query then resumes after (after_time_ns,
     * after) without looking the event up, so the cursor stays valid after
     * retention removed its event (the gateway's cursors); zero: the event
     * must still be in the log (-ENOENT otherwise).
     */
    int after_has_time;
    int64_t after_time_ns;
} sl_eventlog_query;

/* Called for each result in order; ev->data is borrowed for the call. Nonzero stops. */
typedef int (*sl_eventlog_visit)(void *arg, const sl_eventlog_event *ev);

/*
 * Run a query. Returns the number of events visited, or a negative code:
 * -ENOENT when the cursor's event is gone (removed by retention) and the
 * cursor has no time (after_has_time), -EINVAL for a bad query.
 */
int64_t sl_eventlog_query_run(sl_eventlog *log, const sl_eventlog_query *q, sl_eventlog_visit visit,
                              void *arg);

typedef struct sl_eventlog_stats {
    uint64_t count;          /* events held */
    uint64_t first_offset;   /* == next_offset when empty */
    uint64_t next_offset;    /* offsets ever assigned */
    uint64_t bytes;          /* stored event bytes (msgpack + 16-byte header each) */
    uint64_t file_bytes;     /* size of data.mdb on disk */
    uint64_t used_bytes;     /* pages in use inside it */
    uint64_t map_size;
    int64_t oldest_append_ns, newest_append_ns; /* 0 when empty */
    int64_t first_time_ns, last_time_ns;        /* event times of the first and last events */
    uint64_t types;          /* distinct event types (counted by a walk of the index) */
    /* this process, since the directory was opened */
    uint64_t appends, duplicates, invalid, commits, fsyncs, removed;
} sl_eventlog_stats;

/* Fill *st. Walks the type index (one seek per distinct type). Returns 0 or a negative code. */
int sl_eventlog_stats_get(sl_eventlog *log, sl_eventlog_stats *st);

/* Text for a code returned above (negated errno or LMDB code); never NULL. */
const char *sl_eventlog_strerror(int rc);

#ifdef __cplusplus
}
#endif

#endif
