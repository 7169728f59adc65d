/*
 * host.c - the services table (sl_host) every operator instance calls:
 * parameters, identity, emit, drop envelopes, time, logging, counters.
 *
 * emit is the hot path: it copies the event into each consumer edge's
 * builder (one memcpy per consumer, no allocation once warm), hashes the key
 * for keyed edges, and flushes a builder that reached the batch limits.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "expr.h"
#include "instance.h"
#include "log.h"

int64_t sl__monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t sl__wallclock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline sl_inst *inst_of(sl_ctx *ctx) { return (sl_inst *)(void *)ctx; }

/* ---------------------------------------------------------- parameters */

static const sl_node *h_param(sl_ctx *ctx, const char *name)
{
    return sl_node_get(inst_of(ctx)->def->node, name);
}

static sl_node_kind h_node_kind(const sl_node *n) { return n->kind; }
static const char *h_node_str(const sl_node *n) { return n->kind == SL_NODE_SCALAR ? n->str : NULL; }

static int h_node_int(const sl_node *n, int64_t *out)
{
    return n->kind == SL_NODE_SCALAR ? sl_parse_int(n->str, out) : -1;
}

static int h_node_double(const sl_node *n, double *out)
{
    return n->kind == SL_NODE_SCALAR ? sl_parse_double(n->str, out) : -1;
}

static int h_node_bool(const sl_node *n, int *out)
{
    return n->kind == SL_NODE_SCALAR ? sl_parse_bool(n->str, out) : -1;
}

static int h_node_duration(const sl_node *n, int64_t *ns)
{
    return n->kind == SL_NODE_SCALAR ? sl_parse_duration(n->str, ns) : -1;
}

static int h_node_size(const sl_node *n, uint64_t *bytes)
{
    return n->kind == SL_NODE_SCALAR ? sl_parse_size(n->str, bytes) : -1;
}

static size_t h_node_len(const sl_node *n) { return n->kind == SL_NODE_SCALAR ? 0 : n->n; }

static const sl_node *h_node_at(const sl_node *n, size_t i)
{
    return n->kind != SL_NODE_SCALAR && i < n->n ? n->items[i] : NULL;
}

static const char *h_node_key(const sl_node *n, size_t i)
{
    return n->kind == SL_NODE_MAP && i < n->n ? n->keys[i] : NULL;
}

static const sl_node *h_node_get(const sl_node *n, const char *key) { return sl_node_get(n, key); }

static void h_config_error(sl_ctx *ctx, const sl_node *at, const char *fmt, ...)
{
    sl_inst *in = inst_of(ctx);
    va_list ap;
    va_start(ap, fmt);
    if (in->rt->diag) {
        const sl_node *n = at ? at : in->def->node;
        sl_diag_vadd(in->rt->diag, n->file, n->line, n->col, fmt, ap);
    } else {
        sl__vlog(in->def->name, SL_LOG_ERROR, fmt, ap);
    }
    va_end(ap);
}

/* ------------------------------------------------------------ identity */

static const char *h_name(sl_ctx *ctx) { return inst_of(ctx)->def->name; }

static uint32_t h_instance(sl_ctx *ctx, uint32_t *count)
{
    sl_inst *in = inst_of(ctx);
    if (count)
        *count = in->def->parallelism;
    return in->index;
}

static int h_port(sl_ctx *ctx, const char *port)
{
    const sl_opdef *d = inst_of(ctx)->def;
    for (size_t i = 0; i < d->n_ports; i++)
        if (strcmp(d->ports[i], port) == 0)
            return (int)i;
    return -1;
}

static int h_port_connected(sl_ctx *ctx, int port)
{
    sl_inst *in = inst_of(ctx);
    return port >= 0 && (size_t)port < in->n_ports && in->ports[port].n_edges > 0;
}

/* ----------------------------------------------------------- data path */

static inline void bump(_Atomic uint64_t *c, uint64_t n)
{
    /* single writer: a relaxed load+store is a plain add, no locked instruction */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static int h_emit(sl_ctx *ctx, int port, const void *ev, size_t len)
{
    sl_inst *in = inst_of(ctx);
    if (port < 0 || (size_t)port >= in->n_ports)
        return -1;
    bump(&in->n_out, 1);
    if (in->def->wm_enabled) { /* a source with a watermark: the latest event time */
        const uint8_t *p = ev, *end = p + len;
        sl_mp_val t;
        int64_t ns;
        if (sl_mp_map_find(&p, end, "time", 4) == 1 && sl_mp_read(&p, end, &t) == 0 &&
            sl_mp_timestamp_ns(&t, &ns) == 0 && ns > in->max_event_ns)
            in->max_event_ns = ns;
        in->last_event_ns = 0; /* active: the stage stamps the time after this call */
        /* the watermark moves with each event, so the batch holding it carries it */
        int64_t bound = in->def->wm_bound_ns;
        int64_t wm = in->max_event_ns < INT64_MIN + bound ? INT64_MIN : in->max_event_ns - bound;
        if (wm > in->wm_out && sl__stage_advance(in->stage, wm) != 0) {
            sl__fail(in->rt);
            return -1;
        }
    }
    sl_out_port *op = &in->ports[port];
    const sl_pipeline *p = in->rt->p;
    for (size_t j = 0; j < op->n_edges; j++) {
        sl_out_edge *e = &op->edges[j];
        uint32_t bi = 0;
        if (e->kind == SL_EDGE_KEYED)
            bi = (uint32_t)(sl__key_hash(ev, len, e->key) % e->n_b);
        sl_builder *b = &e->b[bi];
        int was_empty = b->count == 0;
        if (sl_builder_append(b, ev, len, 0) != 0) {
            sl__log(in->def->name, SL_LOG_ERROR, "out of memory queueing an event");
            sl__fail(in->rt);
            return -1;
        }
        if (was_empty && e->kind != SL_EDGE_FUSED)
            b->first_ns = sl__monotonic();
        if (b->count >= p->batch_max_events || b->data.len >= p->batch_max_bytes) {
            if (sl__edge_flush_one(in, e, bi) != 0) {
                sl__fail(in->rt);
                return -1;
            }
        }
    }
    return 0;
}

static int h_emit_drop(sl_ctx *ctx, int port, const char *reason, const char *detail,
                       const void *original, size_t original_len, const void *extra_map,
                       size_t extra_len)
{
    sl_inst *in = inst_of(ctx);
    bump(&in->n_err, 1);
    if (!h_port_connected(ctx, port))
        return 0;
    sl_wbuf *w = &in->scratch;
    sl_wbuf_reset(w);
    uint32_t extra_n = 0;
    const uint8_t *extra_body = NULL;
    size_t extra_body_len = 0;
    if (extra_map && extra_len) {
        const uint8_t *x = extra_map;
        sl_mp_val v;
        if (sl_mp_read(&x, x + extra_len, &v) == 0 && v.type == SL_MP_MAP) {
            extra_n = v.v.n;
            extra_body = x;
            extra_body_len = extra_len - (size_t)(x - (const uint8_t *)extra_map);
        }
    }
    int bad = sl_mp_write_map(w, 5 + extra_n);
    bad |= sl_mp_write_cstr(w, "reason") | sl_mp_write_cstr(w, reason);
    bad |= sl_mp_write_cstr(w, "operator") | sl_mp_write_cstr(w, in->def->name);
    bad |= sl_mp_write_cstr(w, "detail") | sl_mp_write_cstr(w, detail ? detail : "");
    bad |= sl_mp_write_cstr(w, "time") | sl_mp_write_timestamp(w, sl__wallclock());
    bad |= sl_mp_write_cstr(w, "original");
    if (original && original_len)
        bad |= sl_wbuf_append(w, original, original_len);
    else
        bad |= sl_mp_write_nil(w);
    if (extra_body_len)
        bad |= sl_wbuf_append(w, extra_body, extra_body_len);
    if (bad)
        return -1;
    /* the envelope is counted as an error, not as output */
    int rc = h_emit(ctx, port, w->data, w->len);
    atomic_store_explicit(&in->n_out, atomic_load_explicit(&in->n_out, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    return rc;
}

/* ------------------------------------------------------------ time etc. */

static int64_t h_now(sl_ctx *ctx) { return sl__wallclock(); }
static int64_t h_monotonic(sl_ctx *ctx) { return sl__monotonic(); }
static void h_timer_set(sl_ctx *ctx, int64_t at_ns) { inst_of(ctx)->timer_at = at_ns; }

static int h_stopping(sl_ctx *ctx)
{
    sl_runtime *rt = inst_of(ctx)->rt;
    return atomic_load(&rt->failed) ? 2 : atomic_load(&rt->stop) ? 1 : 0;
}

static void h_log(sl_ctx *ctx, sl_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__vlog(inst_of(ctx)->def->name, level, fmt, ap);
    va_end(ap);
}

static void h_count(sl_ctx *ctx, const char *counter, uint64_t n)
{
    sl_inst *in = inst_of(ctx);
    size_t k = atomic_load_explicit(&in->n_counters, memory_order_relaxed);
    for (size_t i = 0; i < k; i++)
        if (in->counters[i].name == counter || strcmp(in->counters[i].name, counter) == 0) {
            bump(&in->counters[i].v, n);
            return;
        }
    if (k < SL_MAX_COUNTERS) {
        in->counters[k].name = counter;
        atomic_store_explicit(&in->counters[k].v, n, memory_order_relaxed);
        /* release: the admin thread that sees the count sees the name */
        atomic_store_explicit(&in->n_counters, k + 1, memory_order_release);
    }
}

static void h_gauge(sl_ctx *ctx, const char *gauge, int64_t value)
{
    sl_inst *in = inst_of(ctx);
    size_t k = atomic_load_explicit(&in->n_gauges, memory_order_relaxed);
    for (size_t i = 0; i < k; i++)
        if (in->gauges[i].name == gauge || strcmp(in->gauges[i].name, gauge) == 0) {
            atomic_store_explicit(&in->gauges[i].v, value, memory_order_relaxed);
            return;
        }
    if (k < SL_MAX_GAUGES) {
        in->gauges[k].name = gauge;
        atomic_store_explicit(&in->gauges[k].v, value, memory_order_relaxed);
        atomic_store_explicit(&in->n_gauges, k + 1, memory_order_release);
    }
}

/* ---------------------------------------------------------- expressions */

static sl_expr *h_expr_compile(sl_ctx *ctx, const sl_node *at, const char *text,
                               const char *const *vars)
{
    sl_inst *in = inst_of(ctx);
    const sl_node *where = at ? at : in->def->node;
    if (!text)
        text = at && at->kind == SL_NODE_SCALAR ? at->str : NULL;
    if (!text) {
        h_config_error(ctx, where, "expected an expression");
        return NULL;
    }
    sl_expr *e = NULL;
    sl_expr_error err;
    if (sl_expr_compile(text, strlen(text), vars, &e, &err) != 0) {
        int line, col;
        sl_node_text_pos(where, at && at->str == text ? err.offset : 0, &line, &col);
        if (in->rt->diag)
            sl_diag_add(in->rt->diag, where->file, line, col, "%s", err.msg);
        else
            sl__log(in->def->name, SL_LOG_ERROR, "%s:%d:%d: %s", where->file, line, col, err.msg);
        return NULL;
    }
    sl_expr **list = realloc(in->exprs, (in->n_exprs + 1) * sizeof *list);
    if (!list || (!in->vm && !(in->vm = sl_expr_vm_new()))) {
        if (list)
            in->exprs = list;
        sl_expr_destroy(&e);
        return NULL;
    }
    in->exprs = list;
    list[in->n_exprs++] = e;
    return e;
}

static int h_expr_bool(sl_ctx *ctx, const sl_expr *e, const uint8_t *const *docs,
                       const size_t *lens, size_t n_docs)
{
    return sl_expr_eval_bool(e, inst_of(ctx)->vm, docs, lens, n_docs);
}

static int h_expr_value(sl_ctx *ctx, const sl_expr *e, const uint8_t *const *docs,
                        const size_t *lens, size_t n_docs, sl_wbuf *out)
{
    return sl_expr_eval_msgpack(e, inst_of(ctx)->vm, docs, lens, n_docs, out);
}

static const char *h_expr_error(sl_ctx *ctx)
{
    sl_inst *in = inst_of(ctx);
    return in->vm ? sl_expr_vm_error(in->vm) : "";
}

static size_t h_expr_terms(sl_ctx *ctx, const sl_expr *e) { return sl_expr_and_terms(e); }

static const sl_expr *h_expr_term(sl_ctx *ctx, const sl_expr *e, size_t i)
{
    return sl_expr_and_term(e, i);
}

static int64_t h_checkpoint_last(sl_ctx *ctx)
{
    const sl_ckpt *c = &inst_of(ctx)->rt->ckpt;
    return c->interval_ns ? (int64_t)c->last : -1;
}

void sl__inst_release(sl_inst *in)
{
    for (size_t i = 0; i < in->n_exprs; i++)
        sl_expr_destroy(&in->exprs[i]);
    free(in->exprs);
    in->exprs = NULL;
    in->n_exprs = 0;
    sl_expr_vm_destroy(&in->vm);
    sl_wbuf_fini(&in->scratch);
    sl__inst_state_release(&in->kv);
}

const sl_host sl__host = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_host),
    .param = h_param,
    .node_kind = h_node_kind,
    .node_str = h_node_str,
    .node_int = h_node_int,
    .node_double = h_node_double,
    .node_bool = h_node_bool,
    .node_duration = h_node_duration,
    .node_size = h_node_size,
    .node_len = h_node_len,
    .node_at = h_node_at,
    .node_key = h_node_key,
    .node_get = h_node_get,
    .config_error = h_config_error,
    .name = h_name,
    .instance = h_instance,
    .port = h_port,
    .emit = h_emit,
    .port_connected = h_port_connected,
    .emit_drop = h_emit_drop,
    .now = h_now,
    .monotonic = h_monotonic,
    .timer_set = h_timer_set,
    .stopping = h_stopping,
    .log = h_log,
    .count = h_count,
    .expr_compile = h_expr_compile,
    .expr_bool = h_expr_bool,
    .expr_value = h_expr_value,
    .expr_error = h_expr_error,
    .expr_terms = h_expr_terms,
    .expr_term = h_expr_term,
    .kv_open = sl__kv_open,
    .kv_begin = sl__kv_begin,
    .kv_commit = sl__kv_commit,
    .kv_abort = sl__kv_abort,
    .kv_get = sl__kv_get,
    .kv_put = sl__kv_put,
    .kv_del = sl__kv_del,
    .kv_scan = sl__kv_scan,
    .kv_clear = sl__kv_clear,
    .kv_count = sl__kv_count,
    .kv_sync = sl__kv_sync,
    .checkpoint_last = h_checkpoint_last,
    .field_get = sl__field_get,
    .field_set = sl__field_set,
    .gauge = h_gauge,
};
