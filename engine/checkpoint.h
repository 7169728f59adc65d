/*
 * checkpoint.h - the checkpoint coordinator (docs/checkpoints.md).
 *
 * Every `checkpoint.interval` the main thread asks the sources for barrier n.
 * Each source stage flushes, sends BARRIER n on every output channel and
 * parks; every other stage aligns (BARRIER n from each live input channel),
 * flushes, forwards BARRIER n and parks (engine/barrier.c). Once every stage
 * is parked at n or has ended, nothing is in flight anywhere: the main thread
 * calls snapshot(n) on every stateful instance inside ONE LMDB write
 * transaction that also holds the checkpoint record (id, operators, source
 * watermarks), commits and fsyncs it, then releases the stages, which call
 * checkpoint_done(n) (transactional sinks publish) and go on. A crash
 * therefore leaves either checkpoint n or n-1, never part of one.
 *
 * At start, sl__ckpt_recover restores the last complete checkpoint of
 * state_dir, refusing a pipeline whose stateful operators no longer match it.
 */
#ifndef SL_CHECKPOINT_H
#define SL_CHECKPOINT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct sl_runtime sl_runtime;
typedef struct sl_stage sl_stage;

typedef struct sl_ckpt {
    int64_t interval_ns;    /* 0: the pipeline takes no checkpoints */
    pthread_mutex_t mu;     /* guards the fields marked (mu) */
    pthread_cond_t cv;      /* parked stages wait here for the release */
    int sync_ok;            /* mu and cv were initialised */
    _Atomic uint64_t want;  /* the checkpoint sources are asked to start; 0: none yet */
    uint32_t parked;        /* (mu) stages parked at `want` or ended */
    uint64_t released;      /* (mu) stages parked at a barrier <= released go on */
    int halt;               /* (mu) ... or stop instead (a signal asked for a stop) */
    uint64_t last;          /* last complete checkpoint (the restored one at first) */
    int in_progress;        /* main thread: `want` was asked for and is not complete */
    int halt_after;         /* main thread: stop once the checkpoint in progress completes */
    int64_t next_at;        /* monotonic time the next one is due */
    int64_t begun_at;       /* when `want` was asked for */
    /* measurements, logged at the end of the run */
    uint64_t count;
    int64_t total_ns, max_ns;       /* asked -> released (the pause of the pipeline) */
    int64_t snapshot_ns;            /* of which: snapshots, commit and fsync */
    uint64_t bytes;                 /* state_dir's largest size after one */
    /* the same, published for the admin thread (engine/metrics.c) */
    struct {
        _Atomic uint64_t id, count;  /* the last complete checkpoint; completed this run */
        _Atomic int64_t wall_ns;     /* when it completed (restored: when it was taken) */
        _Atomic int64_t pause_ns;    /* how long the pipeline stood still for it */
        _Atomic int64_t write_ns;    /* of which: snapshots, commit and fsync */
        _Atomic uint64_t bytes;      /* state_dir in use after it */
    } pub;
} sl_ckpt;

/* Set up from the pipeline's `checkpoint:` block. 0 or -errno. */
int sl__ckpt_init(sl_runtime *rt);
void sl__ckpt_fini(sl_runtime *rt);

/*
 * Before start: open state_dir and, if it holds a complete checkpoint,
 * restore every instance it has state for. Returns 0, or SL_ESTATE after
 * logging why the state cannot be used (naming the operator, suggesting
 * --fresh).
 */
int sl__ckpt_recover(sl_runtime *rt);

/*
 * Main thread, between waits: start a checkpoint when one is due, complete
 * the one in progress when every stage is parked. Returns 0 or an error
 * (the pipeline then fails). `*wait_ns` is lowered to when it next needs to run.
 */
int sl__ckpt_tick(sl_runtime *rt, int64_t now, int64_t *wait_ns);

/* A graceful stop was asked for: take a checkpoint now, then halt the stages. */
void sl__ckpt_request_halt(sl_runtime *rt);

/* After the stages ended cleanly: the final checkpoint (and publication). */
int sl__ckpt_final(sl_runtime *rt);

/* Wake everyone waiting on the coordinator (a failure). */
void sl__ckpt_wake(sl_runtime *rt);

/* Log the checkpoints' count, pause and size at the end of a run. */
void sl__ckpt_report(sl_runtime *rt);

/* ---- the stage side (barrier.c) ---- */

/* A source stage, between produce calls: inject and park if a barrier is wanted. */
int sl__barrier_poll_source(sl_stage *s);
/* A receiving stage got BARRIER id on channel ch. */
int sl__barrier_received(sl_stage *s, uint32_t ch, uint64_t id);
/* Whether data on channel ch is out of protocol (after its barrier, before alignment). */
int sl__barrier_blocked(const sl_stage *s, uint32_t ch);
/* An input channel ended: it may have been the last one to align. */
int sl__barrier_channel_done(sl_stage *s);
/* Checkpoint id is complete: checkpoint_done on each of the stage's operators (those that have it). */
int sl__stage_checkpoint_done(sl_stage *s, uint64_t id);
/* The stage's thread is about to end (it no longer takes part in checkpoints). */
void sl__barrier_stage_ended(sl_stage *s);

#endif
