/*
 * runtime.h - run a loaded pipeline: operator instances on stage threads,
 * ZeroMQ inproc edges between stages, end of stream and shutdown.
 *
 * Life cycle: sl_runtime_new initialises every operator instance (init, on
 * this thread) and wires the sockets; sl_runtime_run calls each instance's
 * start hook, starts one thread per stage instance, and waits - handling
 * SIGINT/SIGTERM itself with sigtimedwait, so no code runs in a signal
 * handler - until every stage has drained, then joins them.
 *
 * Shutdown: the first SIGINT/SIGTERM (or sl_runtime_stop) asks sources to
 * stop; everything already emitted drains through the graph and sinks
 * flush, as at a normal end of stream. A pipeline that takes checkpoints
 * instead takes one more and stops right after it, open windows left open
 * for the next run to continue (engine/checkpoint.h). An operator error, or
 * a second signal, stops at once: the ZeroMQ context is shut down so that
 * every blocked send or receive returns, and the run fails.
 */
#ifndef SL_RUNTIME_H
#define SL_RUNTIME_H

#include <stdint.h>
#include <stdio.h>

#include "diag.h"
#include "pipeline.h"

typedef struct sl_runtime sl_runtime;

typedef struct sl_run_opts {
    int fusion;          /* chain operators into stages (default 1) */
    int progress;        /* print per-operator rates on stderr once a second */
    int hwm;             /* batches queued per edge before senders block (default 8) */
    int handle_signals;  /* block and wait for SIGINT/SIGTERM in sl_runtime_run (default 1) */
    /*
     * Nonzero: restore every stateful instance from this checkpoint before
     * start. (The checkpoint issue drives these from barriers; tests use them.)
     */
    uint64_t restore_id;
    /*
     * Nonzero: at the end of the input, do not flush (no watermark at
     * +infinity): snapshot every stateful instance as this checkpoint
     * instead, as a "stop with savepoint" does.
     */
    uint64_t snapshot_id;
    /* With checkpoints: discard what state_dir holds and start from empty state. */
    int fresh;
} sl_run_opts;

void sl_run_opts_default(sl_run_opts *o);

/*
 * Build a runtime: plan stages, create instances (calling each operator's
 * init; configuration errors go to d with file:line:col), create sockets.
 * Returns 0, SL_ECONFIG (see d), or a negative errno.
 * `p` is borrowed and must outlive the runtime.
 */
int sl_runtime_new(const sl_pipeline *p, const sl_run_opts *opts, sl_diag *d, sl_runtime **out);

/*
 * Run to completion. Returns 0 when every source ended (or a graceful stop
 * drained), SL_EOPERATOR if an operator failed, SL_EINTERRUPTED on a hard
 * stop. Call once.
 */
int sl_runtime_run(sl_runtime *rt);

/* Ask for a graceful stop; thread-safe, may be called from any thread. */
void sl_runtime_stop(sl_runtime *rt);

/* Per operator totals (summed over instances), for progress and tests. */
typedef struct sl_op_stats {
    const char *name;
    uint64_t in, out, errors;
} sl_op_stats;

/* Fill up to n entries (one per operator, pipeline order); returns the count. */
size_t sl_runtime_stats(sl_runtime *rt, sl_op_stats *out, size_t n);

void sl_runtime_destroy(sl_runtime **rtp);

#endif
