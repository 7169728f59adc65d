/*
 * metrics_json.c - the pipeline's graph and current metrics as one JSON
 * document (`/api/pipeline`), for `sluice top`, `sluice graph --from` and the
 * dashboard. Counters are cumulative; a reader takes two documents and
 * divides by the difference of `uptime_s` for rates. The shape is documented
 * in docs/operations.md.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "instance.h"
#include "json.h"
#include "metrics.h"

#define RELAXED memory_order_relaxed

typedef struct jw {
    sl_wbuf *o;
    int bad;
} jw;

static void raw(jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void raw(jw *w, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        w->bad = 1;
    else
        w->bad |= sl_wbuf_append(w->o, buf, (size_t)n);
}

static void str(jw *w, const char *s) { w->bad |= sl_json_write_string(w->o, s, strlen(s)); }

/* `"key":` */
static void key(jw *w, const char *k)
{
    str(w, k);
    raw(w, ":");
}

static void num(jw *w, double d)
{
    if (d != d || d == 1.0 / 0.0 || d == -1.0 / 0.0)
        raw(w, "null"); /* JSON has no infinities */
    else
        w->bad |= sl_json_write_double(w->o, d);
}

/* A watermark in Unix milliseconds, or null before the first and after the end. */
static void watermark(jw *w, int64_t wm)
{
    if (wm == INT64_MIN || wm == INT64_MAX)
        raw(w, "null");
    else
        raw(w, "%" PRId64, wm / 1000000);
}

static void named(jw *w, const sl_inst *in)
{
    key(w, "counters");
    raw(w, "{");
    size_t n = atomic_load_explicit(&in->n_counters, memory_order_acquire);
    for (size_t k = 0; k < n; k++) {
        raw(w, k ? "," : "");
        key(w, in->counters[k].name);
        raw(w, "%" PRIu64, atomic_load_explicit(&in->counters[k].v, RELAXED));
    }
    raw(w, "},");
    key(w, "gauges");
    raw(w, "{");
    n = atomic_load_explicit(&in->n_gauges, memory_order_acquire);
    for (size_t k = 0; k < n; k++) {
        raw(w, k ? "," : "");
        key(w, in->gauges[k].name);
        raw(w, "%" PRId64, atomic_load_explicit(&in->gauges[k].v, RELAXED));
    }
    raw(w, "}");
}

static void instance(jw *w, const sl_inst_view *v, int64_t now_wall)
{
    const sl_inst *in = v->in;
    raw(w, "{\"subtask\":%" PRIu32 ",\"stage\":%zu,\"in\":%" PRIu64 ",\"out\":%" PRIu64
           ",\"errors\":%" PRIu64 ",\"backpressure_s\":",
        in->index, (size_t)(in->stage - in->rt->stages), v->n_in, v->n_out, v->n_err);
    num(w, (double)v->blocked_ns / 1e9);
    raw(w, ",\"batches\":%" PRIu64 ",\"busy_s\":", v->batches);
    num(w, (double)v->busy_ns / 1e9);
    raw(w, ",\"batch_p50_s\":");
    num(w, sl__hist_quantile(&in->batch_ns, 0.5));
    raw(w, ",\"batch_p99_s\":");
    num(w, sl__hist_quantile(&in->batch_ns, 0.99));
    raw(w, ",\"queue\":");
    if (v->head_of_queue)
        raw(w, "%" PRIu64, v->queue);
    else
        raw(w, "null");
    raw(w, ",\"watermark_ms\":");
    watermark(w, v->wm);
    raw(w, ",\"watermark_lag_s\":");
    if (v->wm == INT64_MIN || v->wm == INT64_MAX)
        raw(w, "null");
    else
        num(w, (double)(now_wall - v->wm) / 1e9);
    raw(w, ",");
    named(w, in);
    raw(w, "}");
}

static void op_definition(jw *w, const sl_pipeline *p, const sl_opdef *d)
{
    key(w, "name");
    str(w, d->name);
    raw(w, ",");
    key(w, "type");
    str(w, d->op->name);
    raw(w, ",\"parallelism\":%" PRIu32 ",\"source\":%s,\"sink\":%s,", d->parallelism,
        d->op->flags & SL_OP_SOURCE ? "true" : "false",
        d->op->flags & SL_OP_SINK ? "true" : "false");
    key(w, "ports");
    raw(w, "[");
    for (size_t k = 0; k < d->n_ports; k++) {
        raw(w, k ? "," : "");
        str(w, d->ports[k]);
    }
    raw(w, "],");
    key(w, "inputs");
    raw(w, "[");
    for (size_t k = 0; k < d->n_inputs; k++) {
        const sl_input *in = &d->inputs[k];
        const sl_opdef *from = &p->ops[in->from];
        raw(w, k ? ",{" : "{");
        key(w, "from");
        str(w, from->name);
        raw(w, ",");
        key(w, "port");
        str(w, from->ports[in->port]);
        raw(w, ",");
        key(w, "slot");
        const char *const *slots = d->op->inputs;
        str(w, slots ? slots[in->slot] : "input");
        raw(w, "}");
    }
    raw(w, "]");
}

static void checkpoint(jw *w, sl_runtime *rt, int64_t now_wall)
{
    sl_ckpt *c = &rt->ckpt;
    key(w, "checkpoint");
    if (!c->interval_ns) {
        raw(w, "null");
        return;
    }
    uint64_t id = atomic_load_explicit(&c->pub.id, RELAXED);
    int64_t wall = atomic_load_explicit(&c->pub.wall_ns, RELAXED);
    raw(w, "{\"interval_s\":");
    num(w, (double)c->interval_ns / 1e9);
    raw(w, ",\"count\":%" PRIu64 ",\"last_id\":%" PRIu64 ",\"last_ms\":",
        atomic_load_explicit(&c->pub.count, RELAXED), id);
    if (id)
        raw(w, "%" PRId64 ",\"age_s\":", wall / 1000000);
    else
        raw(w, "null,\"age_s\":null");
    if (id)
        num(w, (double)(now_wall - wall) / 1e9);
    raw(w, ",\"last_pause_s\":");
    num(w, (double)atomic_load_explicit(&c->pub.pause_ns, RELAXED) / 1e9);
    raw(w, ",\"last_write_s\":");
    num(w, (double)atomic_load_explicit(&c->pub.write_ns, RELAXED) / 1e9);
    raw(w, ",\"state_bytes\":%" PRIu64 "}", atomic_load_explicit(&c->pub.bytes, RELAXED));
}

int sl__metrics_json(sl_runtime *rt, sl_wbuf *out)
{
    jw w = {.o = out};
    const sl_pipeline *p = rt->p;
    size_t n = 0;
    sl_inst_view *v = sl__metrics_collect(rt, &n);
    if (!v)
        return -1;
    int64_t now_wall = sl__wallclock();
    raw(&w, "{");
    key(&w, "pipeline");
    str(&w, p->name);
    raw(&w, ",");
    key(&w, "file");
    str(&w, p->file ? p->file : "");
    raw(&w, ",");
    key(&w, "version");
    str(&w, SL_VERSION);
    raw(&w, ",\"now_ms\":%" PRId64 ",\"uptime_s\":", now_wall / 1000000);
    num(&w, (double)(sl__monotonic() - rt->started_ns) / 1e9);
    raw(&w, ",\"timing\":%s,\"stages\":%zu,\"state_bytes\":%" PRIu64 ",",
        rt->timing ? "true" : "false", rt->n_stages, sl__state_bytes(rt->state));
    checkpoint(&w, rt, now_wall);
    raw(&w, ",\"operators\":[");
    size_t k = 0;
    for (size_t o = 0; o < p->n_ops; o++) {
        raw(&w, o ? ",{" : "{");
        op_definition(&w, p, &p->ops[o]);
        raw(&w, ",\"instances\":[");
        for (uint32_t i = 0; i < p->ops[o].parallelism; i++, k++) {
            raw(&w, i ? "," : "");
            instance(&w, &v[k], now_wall);
        }
        raw(&w, "]}");
    }
    raw(&w, "]}");
    free(v);
    return w.bad ? -1 : 0;
}
