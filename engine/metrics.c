/*
 * metrics.c - reading what the runtime measures (metrics.h) from the admin
 * thread: one consistent-enough view per instance, histogram quantiles, the
 * counters operators name. metrics_prom.c and metrics_json.c render it.
 * Reads only atomics and what does not change while the pipeline runs (its
 * definition, the plan).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "instance.h"
#include "metrics.h"

#define RELAXED memory_order_relaxed

double sl__hist_bound(unsigned k) { return 1e-6 * (double)(1ull << (2 * k)); }

double sl__hist_quantile(const sl_hist *h, double q)
{
    uint64_t total = 0, b[SL_HIST_BOUNDS + 1];
    for (unsigned k = 0; k <= SL_HIST_BOUNDS; k++)
        total += b[k] = atomic_load_explicit(&h->bucket[k], RELAXED);
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)total), seen = 0;
    for (unsigned k = 0; k < SL_HIST_BOUNDS; k++) {
        seen += b[k];
        if (seen >= want)
            return sl__hist_bound(k);
    }
    return INFINITY;
}

void sl__metrics_view(const sl_inst *in, sl_inst_view *v)
{
    v->in = in;
    v->n_in = atomic_load_explicit(&in->n_in, RELAXED);
    v->n_out = atomic_load_explicit(&in->n_out, RELAXED);
    v->n_err = atomic_load_explicit(&in->n_err, RELAXED);
    v->blocked_ns = atomic_load_explicit(&in->blocked_ns, RELAXED);
    v->wm = atomic_load_explicit(&in->wm_pub, RELAXED);
    v->batches = atomic_load_explicit(&in->batch_ns.count, RELAXED);
    v->busy_ns = atomic_load_explicit(&in->batch_ns.sum_ns, RELAXED);
    const sl_stage *s = in->stage;
    v->head_of_queue = s->pull && s->insts[0] == in;
    v->queue = 0;
    if (v->head_of_queue) {
        uint64_t recv = atomic_load_explicit(&s->q_recv, RELAXED);
        uint64_t sent = atomic_load_explicit(&s->q_sent, RELAXED);
        v->queue = sent > recv ? sent - recv : 0; /* read apart: never below zero */
    }
}

uint64_t sl__metrics_counter(const sl_inst *in, const char *name, int *found)
{
    size_t n = atomic_load_explicit(&in->n_counters, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (strcmp(in->counters[i].name, name) == 0) {
            if (found)
                *found = 1;
            return atomic_load_explicit(&in->counters[i].v, RELAXED);
        }
    return 0;
}

/*
 * The bloom filter's false-positive rate as measured: of the queries about
 * keys a generation did not hold (checks - true hits), how many it answered
 * "maybe". -1 when dedup has not counted any.
 */
double sl__metrics_bloom_fp(const sl_inst *in)
{
    int found = 0;
    uint64_t checks = sl__metrics_counter(in, "bloom_checks", &found);
    uint64_t hits = sl__metrics_counter(in, "bloom_hits", NULL), fps = sl__metrics_counter(in, "bloom_false_positives", NULL);
    if (!found || hits < fps || checks < hits - fps)
        return -1;
    uint64_t negatives = checks - (hits - fps);
    return negatives ? (double)fps / (double)negatives : 0;
}

int sl__metrics_has_port(const sl_inst *in, const char *port)
{
    for (size_t k = 0; k < in->def->n_ports; k++)
        if (strcmp(in->def->ports[k], port) == 0)
            return 1;
    return 0;
}

sl_inst_view *sl__metrics_collect(sl_runtime *rt, size_t *n)
{
    size_t total = 0;
    for (size_t o = 0; o < rt->p->n_ops; o++)
        total += rt->p->ops[o].parallelism;
    sl_inst_view *v = calloc(total ? total : 1, sizeof *v);
    if (!v)
        return NULL;
    size_t k = 0;
    for (size_t o = 0; o < rt->p->n_ops; o++)
        for (uint32_t i = 0; i < rt->p->ops[o].parallelism; i++)
            sl__metrics_view(&rt->by_op[o][i], &v[k++]);
    *n = k;
    return v;
}

void sl_metrics_human(char *buf, size_t n, double v)
{
    if (v >= 1e9)
        snprintf(buf, n, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, n, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, n, "%.1fk", v / 1e3);
    else
        snprintf(buf, n, "%.0f", v);
}
