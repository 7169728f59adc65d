/*
 * admin_client.h - reading a running engine's admin endpoint (engine/admin.h)
 * for `sluice top` and `sluice graph --from`: one HTTP GET of /api/pipeline,
 * summed per operator, and rates between two such samples.
 */
#ifndef SLUICE_ADMIN_CLIENT_H
#define SLUICE_ADMIN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h" /* sl_metrics_human */

/* One operator, its instances summed. */
typedef struct sl_op_sample {
    char name[64], type[64];
    uint32_t parallelism;
    int source, sink;
    uint64_t in, out, errors;
    double busy_s, backpressure_s; /* cumulative, summed over instances */
    int64_t queue;                 /* batches waiting at its input; -1: it has no queue */
    int has_wm;
    double wm_lag_s;               /* the largest lag of its instances */
    int64_t state_entries, state_bytes; /* -1 when it reports none */
    uint64_t late;
} sl_op_sample;

typedef struct sl_sample {
    char pipeline[128];
    double uptime_s;
    int timing;                    /* batch durations measured (busy_s meaningful) */
    uint64_t state_bytes;
    int has_ckpt;
    uint64_t ckpt_count, ckpt_last;
    double ckpt_age_s, ckpt_pause_s; /* age < 0: none yet */
    sl_op_sample *ops;
    size_t n_ops;
} sl_sample;

/*
 * GET http://ADDR/api/pipeline (ADDR: "host:port" or "http://host:port") and
 * fill s. Returns 0, or -1 with a reason in err (cannot connect, not a sluice
 * admin endpoint, malformed answer). Free with sl_sample_fini.
 */
int sl_admin_fetch(const char *addr, sl_sample *s, char *err, size_t errlen);
void sl_sample_fini(sl_sample *s);

/* Per-second rates of one operator between samples a (older) and b. */
typedef struct sl_op_rates {
    double in, out, errors;
    double busy, backpressure; /* fractions of one instance's time, averaged over instances */
} sl_op_rates;

/* Rates of operator `name` of b since a (zeros if it is not in a, or no time passed). */
void sl_sample_rates(const sl_sample *a, const sl_sample *b, size_t op, sl_op_rates *r);

/*
 * The operator that limits throughput, or -1: among operators busy at least
 * 50% of the time, the busiest one whose own output is not held back by
 * backpressure (a slow consumer further down would be the one to blame).
 */
long sl_sample_bottleneck(const sl_sample *a, const sl_sample *b);

#endif
