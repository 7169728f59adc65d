/*
 * metrics_prom.c - the runtime's metrics in the Prometheus text format
 * (version 0.0.4) for `/metrics`.
 *
 * Names and labels are documented in docs/operations.md. Every operator
 * instance is one series: {pipeline, operator, type, subtask} ("subtask", as
 * Flink calls it, not "instance": Prometheus gives every scraped series an
 * `instance` label of its own). Families appear even when empty, so a
 * dashboard's queries do not depend on which operators a pipeline has.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "instance.h"
#include "json.h"
#include "metrics.h"

#define RELAXED memory_order_relaxed

static double seconds(int64_t ns) { return (double)ns / 1e9; }

static int put(sl_wbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(sl_wbuf *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || sl_wbuf_reserve(o, (size_t)n + 1) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf((char *)o->data + o->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
    return 0;
}

/* A label value: backslash, double quote and newline escaped (text format 0.0.4). */
static int put_label(sl_wbuf *o, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (sl_wbuf_append(o, e ? e : s, e ? 2 : 1) != 0)
            return -1;
    }
    return 0;
}

typedef struct prom {
    sl_runtime *rt;
    sl_wbuf *o;
    int bad;
} prom;

static void family(prom *m, const char *name, const char *type, const char *help)
{
    m->bad |= put(m->o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* `name{pipeline="..",operator="..",type="..",subtask="N"` (no closing brace). */
static void series(prom *m, const char *name, const sl_inst *in)
{
    m->bad |= put(m->o, "%s{pipeline=\"", name);
    m->bad |= put_label(m->o, m->rt->p->name);
    m->bad |= put(m->o, "\",operator=\"");
    m->bad |= put_label(m->o, in->def->name);
    m->bad |= put(m->o, "\",type=\"");
    m->bad |= put_label(m->o, in->def->op->name);
    m->bad |= put(m->o, "\",subtask=\"%" PRIu32 "\"", in->index);
}

static void sample_u(prom *m, const char *name, const sl_inst *in, uint64_t v)
{
    series(m, name, in);
    m->bad |= put(m->o, "} %" PRIu64 "\n", v);
}

/* " value\n": the shortest text that reads back as the same double */
static void value(prom *m, double v)
{
    m->bad |= put(m->o, " ");
    m->bad |= sl_json_write_double(m->o, v);
    m->bad |= put(m->o, "\n");
}

static void sample_d(prom *m, const char *name, const sl_inst *in, double v)
{
    series(m, name, in);
    m->bad |= put(m->o, "}");
    value(m, v);
}

static void pipeline_sample(prom *m, const char *name, double v)
{
    m->bad |= put(m->o, "%s{pipeline=\"", name);
    m->bad |= put_label(m->o, m->rt->p->name);
    m->bad |= put(m->o, "\"}");
    value(m, v);
}

/* Every instance of the pipeline, operators in pipeline order. */
#define FOR_EACH_INST(rt, in)                                                                  \
    for (size_t o_ = 0; o_ < (rt)->p->n_ops; o_++)                                             \
        for (uint32_t i_ = 0; i_ < (rt)->p->ops[o_].parallelism; i_++)                         \
            for (const sl_inst *in = &(rt)->by_op[o_][i_]; in; in = NULL)

static void histograms(prom *m)
{
    const char *name = "sluice_operator_batch_duration_seconds";
    family(m, name, "histogram",
           "Time an operator spent processing one input batch (its own, fused consumers "
           "excluded).");
    FOR_EACH_INST(m->rt, in) {
        if (!in->def->op->process)
            continue;
        uint64_t cum = 0;
        for (unsigned k = 0; k <= SL_HIST_BOUNDS; k++) {
            cum += atomic_load_explicit(&in->batch_ns.bucket[k], RELAXED);
            series(m, "sluice_operator_batch_duration_seconds_bucket", in);
            if (k < SL_HIST_BOUNDS)
                m->bad |= put(m->o, ",le=\"%g\"} %" PRIu64 "\n", sl__hist_bound(k), cum);
            else
                m->bad |= put(m->o, ",le=\"+Inf\"} %" PRIu64 "\n", cum);
        }
        /* the count is the +Inf bucket, read once above: the two always agree */
        sample_d(m, "sluice_operator_batch_duration_seconds_sum", in,
                 seconds((int64_t)atomic_load_explicit(&in->batch_ns.sum_ns, RELAXED)));
        sample_u(m, "sluice_operator_batch_duration_seconds_count", in, cum);
    }
}

static void named_counters(prom *m)
{
    family(m, "sluice_operator_custom_total", "counter",
           "An operator's own counters (dedup duplicates, late events, ...), by name.");
    FOR_EACH_INST(m->rt, in) {
        size_t n = atomic_load_explicit(&in->n_counters, memory_order_acquire);
        for (size_t k = 0; k < n; k++) {
            series(m, "sluice_operator_custom_total", in);
            m->bad |= put(m->o, ",counter=\"");
            m->bad |= put_label(m->o, in->counters[k].name);
            m->bad |= put(m->o, "\"} %" PRIu64 "\n",
                          atomic_load_explicit(&in->counters[k].v, RELAXED));
        }
    }
}

/* Gauges the operators set: state_bytes and state_entries by name, the rest generic. */
static void operator_gauges(prom *m, const char *which, const char *name, const char *help)
{
    family(m, name, "gauge", help);
    FOR_EACH_INST(m->rt, in) {
        size_t n = atomic_load_explicit(&in->n_gauges, memory_order_acquire);
        for (size_t k = 0; k < n; k++) {
            const char *g = in->gauges[k].name;
            int64_t v = atomic_load_explicit(&in->gauges[k].v, RELAXED);
            int named = strcmp(g, "state_bytes") == 0 || strcmp(g, "state_entries") == 0;
            if (which && strcmp(g, which) == 0) {
                series(m, name, in);
                m->bad |= put(m->o, "} %" PRId64 "\n", v);
            } else if (!which && !named) {
                series(m, name, in);
                m->bad |= put(m->o, ",gauge=\"");
                m->bad |= put_label(m->o, g);
                m->bad |= put(m->o, "\"} %" PRId64 "\n", v);
            }
        }
    }
}

static void checkpoints(prom *m, int64_t now_wall)
{
    sl_ckpt *c = &m->rt->ckpt;
    if (!c->interval_ns)
        return;
    uint64_t id = atomic_load_explicit(&c->pub.id, RELAXED);
    int64_t wall = atomic_load_explicit(&c->pub.wall_ns, RELAXED);
    family(m, "sluice_checkpoints_total", "counter", "Checkpoints completed by this run.");
    pipeline_sample(m, "sluice_checkpoints_total",
                    (double)atomic_load_explicit(&c->pub.count, RELAXED));
    family(m, "sluice_checkpoint_interval_seconds", "gauge", "The configured interval.");
    pipeline_sample(m, "sluice_checkpoint_interval_seconds", seconds(c->interval_ns));
    if (id == 0)
        return; /* nothing to restore from yet: no age, no duration */
    family(m, "sluice_checkpoint_last_id", "gauge", "Id of the last complete checkpoint.");
    pipeline_sample(m, "sluice_checkpoint_last_id", (double)id);
    family(m, "sluice_checkpoint_last_timestamp_seconds", "gauge",
           "When the last complete checkpoint completed (Unix time).");
    pipeline_sample(m, "sluice_checkpoint_last_timestamp_seconds", seconds(wall));
    family(m, "sluice_checkpoint_age_seconds", "gauge",
           "Time since the last complete checkpoint: what a crash now would replay.");
    pipeline_sample(m, "sluice_checkpoint_age_seconds", seconds(now_wall - wall));
    family(m, "sluice_checkpoint_last_duration_seconds", "gauge",
           "How long the pipeline stood still for the last checkpoint (barriers to release).");
    pipeline_sample(m, "sluice_checkpoint_last_duration_seconds",
                    seconds(atomic_load_explicit(&c->pub.pause_ns, RELAXED)));
    family(m, "sluice_checkpoint_last_write_seconds", "gauge",
           "Of that: snapshots, commit and fsync.");
    pipeline_sample(m, "sluice_checkpoint_last_write_seconds",
                    seconds(atomic_load_explicit(&c->pub.write_ns, RELAXED)));
}

int sl__metrics_prometheus(sl_runtime *rt, sl_wbuf *out)
{
    prom m = {.rt = rt, .o = out};
    size_t n = 0;
    sl_inst_view *v = sl__metrics_collect(rt, &n);
    if (!v)
        return -1;
    int64_t now_wall = sl__wallclock();

    family(&m, "sluice_info", "gauge", "The pipeline and the engine's version.");
    m.bad |= put(out, "sluice_info{pipeline=\"");
    m.bad |= put_label(out, rt->p->name);
    m.bad |= put(out, "\",version=\"%s\"} 1\n", SL_VERSION);
    family(&m, "sluice_uptime_seconds", "gauge", "Time since the pipeline started running.");
    pipeline_sample(&m, "sluice_uptime_seconds", seconds(sl__monotonic() - rt->started_ns));

    family(&m, "sluice_operator_events_in_total", "counter", "Events an operator received.");
    for (size_t i = 0; i < n; i++)
        sample_u(&m, "sluice_operator_events_in_total", v[i].in, v[i].n_in);
    family(&m, "sluice_operator_events_out_total", "counter", "Events an operator emitted.");
    for (size_t i = 0; i < n; i++)
        sample_u(&m, "sluice_operator_events_out_total", v[i].in, v[i].n_out);
    family(&m, "sluice_operator_errors_total", "counter",
           "Events an operator rejected (sent to an error port or dropped with a reason).");
    for (size_t i = 0; i < n; i++)
        sample_u(&m, "sluice_operator_errors_total", v[i].in, v[i].n_err);
    if (rt->timing)
        histograms(&m);
    family(&m, "sluice_operator_backpressure_seconds_total", "counter",
           "Time an operator waited because a downstream queue was full.");
    for (size_t i = 0; i < n; i++)
        sample_d(&m, "sluice_operator_backpressure_seconds_total", v[i].in,
                 seconds((int64_t)v[i].blocked_ns));
    family(&m, "sluice_operator_input_queue_batches", "gauge",
           "Batches waiting in the input queue of the stage this operator heads.");
    for (size_t i = 0; i < n; i++)
        if (v[i].head_of_queue)
            sample_u(&m, "sluice_operator_input_queue_batches", v[i].in, v[i].queue);
    family(&m, "sluice_operator_watermark_seconds", "gauge",
           "An operator's event-time watermark (Unix time); absent before the first.");
    for (size_t i = 0; i < n; i++)
        if (v[i].wm != INT64_MIN && v[i].wm != INT64_MAX)
            sample_d(&m, "sluice_operator_watermark_seconds", v[i].in, seconds(v[i].wm));
    family(&m, "sluice_operator_watermark_lag_seconds", "gauge",
           "Wall-clock time minus the watermark: how far event time is behind.");
    for (size_t i = 0; i < n; i++)
        if (v[i].wm != INT64_MIN && v[i].wm != INT64_MAX)
            sample_d(&m, "sluice_operator_watermark_lag_seconds", v[i].in,
                     seconds(now_wall - v[i].wm));
    family(&m, "sluice_operator_late_events_total", "counter",
           "Events that arrived after their window or join horizon closed (the late port).");
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        uint64_t late = sl__metrics_counter(v[i].in, "late", &found);
        if (found || sl__metrics_has_port(v[i].in, "late"))
            sample_u(&m, "sluice_operator_late_events_total", v[i].in, late);
    }
    family(&m, "sluice_dedup_duplicates_total", "counter", "Events dedup found to be repeats.");
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].in->def->op->name, "dedup") == 0)
            sample_u(&m, "sluice_dedup_duplicates_total", v[i].in,
                     sl__metrics_counter(v[i].in, "duplicates", NULL));
    family(&m, "sluice_dedup_bloom_false_positive_ratio", "gauge",
           "Measured bloom filter false-positive rate (exact lookups that found nothing).");
    for (size_t i = 0; i < n; i++) {
        double r = strcmp(v[i].in->def->op->name, "dedup") == 0 ? sl__metrics_bloom_fp(v[i].in) : -1;
        if (r >= 0)
            sample_d(&m, "sluice_dedup_bloom_false_positive_ratio", v[i].in, r);
    }
    named_counters(&m);
    operator_gauges(&m, "state_bytes", "sluice_operator_state_bytes",
                    "Memory an operator's state holds (window tables, join buffer, dedup filter).");
    operator_gauges(&m, "state_entries", "sluice_operator_state_entries",
                    "Entries in an operator's state (groups, buffered events, keys).");
    operator_gauges(&m, NULL, "sluice_operator_gauge", "Other levels an operator reports.");
    family(&m, "sluice_state_store_bytes", "gauge",
           "Bytes in use in the pipeline's LMDB state store under state_dir.");
    pipeline_sample(&m, "sluice_state_store_bytes", (double)sl__state_bytes(rt->state));
    checkpoints(&m, now_wall);
    free(v);
    return m.bad ? -1 : 0;
}
