/*
 * metrics.h - what the engine measures while a pipeline runs, and its two
 * renderings for the admin endpoint (docs/operations.md): Prometheus text
 * (`/metrics`) and one JSON document (`/api/pipeline`) that `sluice top`,
 * `sluice graph --from` and the dashboard read.
 *
 * Writers and readers: every value here has ONE writer (an instance's stage
 * thread, or the main thread for checkpoints), which adds with a relaxed
 * load and store - a plain add, no locked instruction on the hot path. The
 * admin thread reads with relaxed loads. A scrape may therefore see one
 * value a little newer than another (a histogram's count and its buckets,
 * say); each value is itself whole. The one value with many writers is a
 * stage's count of batches sent to it (one fetch_add per batch sent).
 *
 * Cost: events in/out/errors and named counters are always counted (they
 * were before the endpoint existed). The timing measures - the batch
 * duration histogram (two clock reads per batch per operator) - run only
 * when the pipeline has an `admin:` block; time blocked on a full queue is
 * measured only when a send would block. docs/benchmarks.md has the figures.
 */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/msgpack.h"

/* Batch duration buckets: 1 us * 4^k for k = 0 .. SL_HIST_BOUNDS-1 (1 us .. 4.2 s), then +Inf. */
#define SL_HIST_BOUNDS 12

typedef struct sl_hist {
    _Atomic uint64_t bucket[SL_HIST_BOUNDS + 1]; /* not cumulative; the last is +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
} sl_hist;

/* Single writer: a relaxed load and store, which compiles to a plain add. */
static inline void sl__metric_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Record one duration (single writer). */
static inline void sl__hist_add(sl_hist *h, int64_t ns)
{
    /* the smallest k with ns <= 1000 * 4^k: q = ceil(ns / 1000) - 1 has 2k-1 or 2k bits */
    uint64_t q = ns > 0 ? ((uint64_t)ns - 1) / 1000 : 0;
    unsigned k = q ? (unsigned)((64 - __builtin_clzll(q) + 1) / 2) : 0;
    if (k > SL_HIST_BOUNDS)
        k = SL_HIST_BOUNDS;
    sl__metric_add(&h->bucket[k], 1);
    sl__metric_add(&h->count, 1);
    sl__metric_add(&h->sum_ns, (uint64_t)ns);
}

/* Upper bound of bucket k in seconds (k < SL_HIST_BOUNDS). */
double sl__hist_bound(unsigned k);

/* The duration below which a fraction q of the recorded ones fall (bucket upper bound),
 * in seconds; 0 when nothing was recorded. */
double sl__hist_quantile(const sl_hist *h, double q);

#define SL_MAX_GAUGES 8

/* A value an operator sets (state size, entries); single writer. */
typedef struct sl_gauge {
    const char *name;   /* borrowed from the operator (a literal) */
    _Atomic int64_t v;
} sl_gauge;

typedef struct sl_runtime sl_runtime;
typedef struct sl_inst sl_inst;

/* What one read of the admin thread sees of one operator instance. */
typedef struct sl_inst_view {
    const sl_inst *in;
    uint64_t n_in, n_out, n_err;
    uint64_t blocked_ns;  /* waiting on full downstream queues */
    uint64_t batches;     /* batches processed (timed) ... */
    uint64_t busy_ns;     /* ... and the time they took */
    int64_t wm;           /* watermark (INT64_MIN none yet, INT64_MAX ended) */
    int head_of_queue;    /* it heads a stage that receives over a queue ... */
    uint64_t queue;       /* ... and this many batches wait in it */
} sl_inst_view;

/* A view of every instance, operators in pipeline order; free() it. NULL: out of memory. */
sl_inst_view *sl__metrics_collect(sl_runtime *rt, size_t *n);
void sl__metrics_view(const sl_inst *in, sl_inst_view *v);
/* An operator's named counter (0 if it has none; *found set to 1 if it has, may be NULL). */
uint64_t sl__metrics_counter(const sl_inst *in, const char *name, int *found);
/* dedup's measured bloom false-positive rate, or -1 when it has counted no checks. */
double sl__metrics_bloom_fp(const sl_inst *in);
/* Whether the instance's operator has an output port of that name. */
int sl__metrics_has_port(const sl_inst *in, const char *port);

/* Append the runtime's metrics in the Prometheus text format (version 0.0.4). 0 or -1 (memory). */
int sl__metrics_prometheus(sl_runtime *rt, sl_wbuf *out);

/* Append the pipeline's graph and current metrics as one JSON object. 0 or -1 (memory). */
int sl__metrics_json(sl_runtime *rt, sl_wbuf *out);

/* "1.23M", "45.6k", "789": a count or rate in at most 6 characters, for people. */
void sl_metrics_human(char *buf, size_t n, double v);

#endif
