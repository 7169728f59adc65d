/*
 * aggregate.c - `aggregate`: windowed aggregation in event time.
 *
 *   windows: [{tumbling: 1m}, {hopping: 1h, every: 5m}, {session: 30s}]
 *   group_by: [[], [status], [customerId]]       grouping sets; [] = all events
 *   where: amount > 0
 *   allowed_lateness: 0s
 *   memory: 128MiB
 *   compute: {orders: count(), revenue: sum(amount), p95: percentile(amount, 0.95)}
 *
 * Per event: `where`, then every group key and every compute argument is
 * evaluated first (an error sends the event to `errors` and nothing is
 * counted: all or nothing); then, for every window spec and grouping set,
 * each window the event falls in is looked up (or made) in the table
 * (agg_table.c) and its accumulators are updated. Sessions: the event's
 * [t, t + gap) merges with the group's sessions it overlaps.
 *
 * Firing: a window fires when the watermark reaches its end (one event per
 * group that saw an event; empty windows emit nothing) and is kept until
 * end + allowed_lateness, so that a late event within that bound updates it;
 * such a window is re-emitted with "update": true once per batch that
 * changed it. An event too late for one of its windows leaves by `late`
 * (once, naming the windows it missed) and still counts in its other
 * windows. Beyond the memory budget, the coldest windows' partial results
 * move to LMDB (agg_spill.c), which also keeps snapshots for checkpoints.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"

static const sl_param params[] = {
    {"windows", SL_PARAM_LIST, NULL, 1, "[{tumbling: 1m}, {hopping: 1h, every: 5m}, {session: 30s}]",
     NULL},
    {"group_by", SL_PARAM_LIST, "[[]]", 0, "grouping sets of expressions; [] = all events", NULL},
    {"compute", SL_PARAM_MAP, NULL, 1, "name -> count() | sum(x) | min(x) | max(x) | avg(x) | "
                                       "count_distinct(x) | percentile(x, q) | first(x) | last(x)", NULL},
    {"where", SL_PARAM_EXPR, NULL, 0, "only events for which this holds are aggregated", NULL},
    {"allowed_lateness", SL_PARAM_DURATION, "0s", 0, "how long a fired window still takes late events", NULL},
    {"memory", SL_PARAM_SIZE, "128MiB", 0, "window state kept in memory; beyond it the coldest "
                                           "windows spill to LMDB under state_dir", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "late", "errors", NULL};

/* --------------------------------------------------------------- setup */

static int parse_windows(sl_ctx *ctx, aggregate *a)
{
    const sl_host *h = ctx->host;
    const sl_node *list = h->param(ctx, "windows");
    if (h->node_len(list) == 0 || h->node_len(list) > AGG_MAX_SPECS) {
        h->config_error(ctx, list, "'windows' lists 1 to %d windows", AGG_MAX_SPECS);
        return -1;
    }
    for (size_t i = 0; i < h->node_len(list); i++) {
        const sl_node *w = h->node_at(list, i);
        window_spec *s = &a->specs[a->n_specs++];
        const sl_node *t = h->node_get(w, "tumbling"), *hop = h->node_get(w, "hopping");
        const sl_node *every = h->node_get(w, "every"), *ses = h->node_get(w, "session");
        size_t want = t ? 1 : hop ? 2 : ses ? 1 : 0;
        if (h->node_kind(w) != SL_NODE_MAP || !want || (t && hop) || (hop && !every) ||
            (ses && (t || hop)) || h->node_len(w) != want) {
            h->config_error(ctx, w, "a window is {tumbling: D}, {hopping: D, every: S} or "
                                    "{session: GAP}");
            return -1;
        }
        const sl_node *size = t ? t : hop ? hop : ses;
        if (h->node_duration(size, &s->size) != 0 || s->size <= 0) {
            h->config_error(ctx, size, "invalid %s '%s' (expected a duration like 1m)",
                            ses ? "session gap" : "window size",
                            h->node_str(size) ? h->node_str(size) : "");
            return -1;
        }
        s->session = ses != NULL;
        s->every = s->size;
        if (hop && (h->node_duration(every, &s->every) != 0 || s->every <= 0 ||
                    s->every > s->size || s->size % s->every != 0)) {
            h->config_error(ctx, every, "'every' must be a duration that divides the window size");
            return -1;
        }
        s->text = h->node_str(size);
    }
    return 0;
}

/* The output name of a group key: a field path's last segment, else the text. */
static const char *key_name(const char *text)
{
    const char *dot = strrchr(text, '.');
    const char *last = dot ? dot + 1 : text;
    for (const char *p = text; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.'))
            return text;
    return last;
}

static int add_key(sl_ctx *ctx, group_set *g, const sl_node *k)
{
    const sl_host *h = ctx->host;
    if (g->n_keys == AGG_MAX_KEYS) {
        h->config_error(ctx, k, "a grouping set has at most %d keys", AGG_MAX_KEYS);
        return -1;
    }
    const sl_node *expr = k;
    const char *name;
    if (h->node_kind(k) == SL_NODE_MAP && h->node_len(k) == 1) {
        name = h->node_key(k, 0);
        expr = h->node_at(k, 0);
    } else if (h->node_kind(k) == SL_NODE_SCALAR) {
        name = key_name(h->node_str(k));
    } else {
        h->config_error(ctx, k, "a group key is an expression or {name: expression}");
        return -1;
    }
    g->names[g->n_keys] = name;
    g->texts[g->n_keys] = h->node_str(expr);
    g->keys[g->n_keys] = h->expr_compile(ctx, expr, NULL, NULL);
    return g->keys[g->n_keys++] ? 0 : -1;
}

static int parse_groups(sl_ctx *ctx, aggregate *a)
{
    const sl_host *h = ctx->host;
    const sl_node *list = h->param(ctx, "group_by");
    if (!list || h->node_len(list) == 0) {
        a->n_sets = 1; /* everything in one group */
        return 0;
    }
    int nested = h->node_kind(h->node_at(list, 0)) == SL_NODE_SEQ;
    if (!nested) { /* group_by: [status, customerId] is one grouping set */
        a->n_sets = 1;
        for (size_t i = 0; i < h->node_len(list); i++)
            if (add_key(ctx, &a->sets[0], h->node_at(list, i)) != 0)
                return -1;
        return 0;
    }
    if (h->node_len(list) > AGG_MAX_SETS) {
        h->config_error(ctx, list, "at most %d grouping sets", AGG_MAX_SETS);
        return -1;
    }
    for (size_t i = 0; i < h->node_len(list); i++) {
        const sl_node *set = h->node_at(list, i);
        if (h->node_kind(set) != SL_NODE_SEQ) {
            h->config_error(ctx, set, "group_by is a list of grouping sets like [[], [status]]");
            return -1;
        }
        group_set *g = &a->sets[a->n_sets++];
        for (size_t j = 0; j < h->node_len(set); j++)
            if (add_key(ctx, g, h->node_at(set, j)) != 0)
                return -1;
    }
    return 0;
}

static int agg_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    aggregate *a = calloc(1, sizeof *a);
    if (!a)
        return SL_ERROR;
    *state = a;
    a->wm = INT64_MIN;
    a->late_port = h->port(ctx, "late");
    a->errors_port = h->port(ctx, "errors");
    h->node_duration(h->param(ctx, "allowed_lateness"), &a->lateness);
    if (a->lateness < 0) {
        h->config_error(ctx, h->param(ctx, "allowed_lateness"), "allowed_lateness must not be negative");
        return SL_ERROR;
    }
    h->node_size(h->param(ctx, "memory"), &a->budget);
    a->fired_upto = a->purged_upto = INT64_MIN;
    const sl_node *where = h->param(ctx, "where");
    if (where && !(a->where = h->expr_compile(ctx, where, NULL, NULL)))
        return SL_ERROR;
    int bad = parse_windows(ctx, a) != 0;
    bad |= parse_groups(ctx, a) != 0;
    const sl_node *comp = h->param(ctx, "compute");
    if (h->node_len(comp) == 0 || h->node_len(comp) > AGG_MAX_COMPUTES) {
        h->config_error(ctx, comp, "'compute' names 1 to %d results", AGG_MAX_COMPUTES);
        return SL_ERROR;
    }
    for (size_t i = 0; i < h->node_len(comp); i++) {
        const sl_node *v = h->node_at(comp, i);
        const char *k = h->node_key(comp, i);
        if (!strcmp(k, "window") || !strcmp(k, "group") || !strcmp(k, "time") || !strcmp(k, "update")) {
            h->config_error(ctx, v, "'%s' is a name the output already uses", k);
            bad = 1;
            continue;
        }
        if (h->node_kind(v) != SL_NODE_SCALAR ||
            agg_compute_parse(ctx, v, k, h->node_str(v), &a->comp[a->n_comp]) != 0) {
            if (h->node_kind(v) != SL_NODE_SCALAR)
                h->config_error(ctx, v, "a compute is a call like sum(amount)");
            bad = 1;
            continue;
        }
        agg_fn fn = a->comp[a->n_comp].fn;
        a->var_mem |= fn == AGG_COUNT_DISTINCT || fn == AGG_PERCENTILE || fn == AGG_FIRST ||
                      fn == AGG_LAST;
        a->n_comp++;
    }
    return bad ? SL_ERROR : SL_OK;
}

/* -------------------------------------------------------------- output */

int agg_emit_entry(aggregate *a, sl_ctx *ctx, const entry *e, int update)
{
    sl_wbuf *w = &a->out;
    const group_set *g = &a->sets[e->set];
    sl_wbuf_reset(w);
    int bad = sl_mp_write_map(w, (uint32_t)(3 + a->n_comp + (update ? 1 : 0)));
    bad |= sl_mp_write_cstr(w, "window") | sl_mp_write_map(w, 2);
    bad |= sl_mp_write_cstr(w, "start") | sl_mp_write_timestamp(w, e->start);
    bad |= sl_mp_write_cstr(w, "end") | sl_mp_write_timestamp(w, e->end);
    bad |= sl_mp_write_cstr(w, "group") | sl_mp_write_map(w, (uint32_t)g->n_keys);
    const uint8_t *k = e->key, *kend = e->key + e->key_len;
    for (size_t i = 0; i < g->n_keys; i++) {
        const uint8_t *v = k;
        bad |= sl_mp_write_cstr(w, g->names[i]) | sl_mp_skip(&k, kend);
        bad |= sl_wbuf_append(w, v, (size_t)(k - v));
    }
    for (size_t c = 0; c < a->n_comp; c++)
        bad |= sl_mp_write_cstr(w, a->comp[c].name) | agg_acc_write(&a->comp[c], &e->acc[c], w);
    bad |= sl_mp_write_cstr(w, "time") | sl_mp_write_timestamp(w, e->end);
    if (update)
        bad |= sl_mp_write_cstr(w, "update") | sl_mp_write_bool(w, 1);
    if (bad)
        return SL_ERROR;
    return ctx->host->emit(ctx, 0, w->data, w->len) == 0 ? SL_OK : SL_ERROR;
}

/* ----------------------------------------------------------- per event */

static int64_t floor_div(int64_t x, int64_t d)
{
    int64_t q = x / d;
    return (x % d != 0 && (x < 0) != (d < 0)) ? q - 1 : q;
}

static int drop(aggregate *a, sl_ctx *ctx, int port, const char *reason, const uint8_t *ev,
                size_t len)
{
    ctx->host->count(ctx, port == a->late_port ? "late" : "eval_errors", 1);
    return ctx->host->emit_drop(ctx, port, reason, a->detail, ev, len, NULL, 0) == 0 ? SL_OK
                                                                                    : SL_ERROR;
}


/* Add the event's values (evaluated into a->args) to e's accumulators. */
static int accumulate(aggregate *a, sl_ctx *ctx, entry *e, uint32_t idx, int64_t t)
{
    for (size_t c = 0; c < a->n_comp; c++) {
        const char *why = "";
        int r = agg_acc_add(&a->comp[c], &e->acc[c], a->args.data + a->arg_off[c],
                            a->arg_off[c + 1] - a->arg_off[c], t, &why);
        if (r == -2)
            return SL_ERROR;
        if (r < 0) {
            ctx->host->count(ctx, "bad_values", 1);
            ctx->host->log(ctx, SL_LOG_WARN, "compute '%s': the value %s; skipped",
                           a->comp[c].name, why);
        }
    }
    if (a->var_mem)
        agg_account(a, e);
    e->ref = 1;
    e->changed = 1;
    if (e->fired && agg_mark_dirty(a, e, idx) != 0)
        return SL_ERROR;
    return SL_OK;
}

/* Note a window the event came too late for, in the `late` detail. */
static void missed(aggregate *a, size_t *n, size_t *dl, const window_spec *w, int64_t start)
{
    if ((*n)++ == 0)
        *dl = (size_t)snprintf(a->detail, sizeof a->detail, "too late for window");
    if (*dl < sizeof a->detail)
        *dl += (size_t)snprintf(a->detail + *dl, sizeof a->detail - *dl, " %s@%" PRId64, w->text,
                                start);
}

/*
 * Sessions: the event's [t, t + gap) joins every session of its group that it
 * overlaps (at most two: sessions are disjoint and at least gap long), or
 * starts a new one. Returns SL_OK, SL_ERROR, or 1 when it is too late.
 */
static int session_event(aggregate *a, sl_ctx *ctx, uint32_t sp, uint32_t s, int64_t t, int64_t wm)
{
    const window_spec *w = &a->specs[sp];
    const uint8_t *key = a->keys[s].data;
    size_t klen = a->keys[s].len;
    int64_t end = t > INT64_MAX - w->size ? INT64_MAX : t + w->size;
    uint32_t found[4];
    size_t n = 0;
    uint64_t hv = agg_hash(sp, s, INT64_MIN, key, klen);
    for (uint32_t i = a->n_buckets ? a->buckets[hv & (a->n_buckets - 1)] : 0; i;
         i = a->entries[i - 1]->next) {
        entry *e = a->entries[i - 1];
        if (e->hash == hv && e->spec == sp && e->set == s && e->key_len == klen &&
            (klen == 0 || memcmp(e->key, key, klen) == 0) && e->start < end && t < e->end &&
            n < sizeof found / sizeof *found)
            found[n++] = i - 1;
    }
    uint32_t idx;
    entry *e;
    if (n == 0) {
        if (wm != INT64_MIN && end <= wm - a->lateness)
            return 1;
        if (!(e = agg_insert(a, sp, s, t, end, key, klen, &idx)))
            return SL_ERROR;
    } else {
        idx = found[0];
        e = a->entries[idx];
        for (size_t k = 1; k < n; k++) { /* the event bridges two sessions: one now */
            entry *o = a->entries[found[k]];
            for (size_t c = 0; c < a->n_comp; c++)
                if (agg_acc_merge(&a->comp[c], &e->acc[c], &o->acc[c], o->start < e->start) != 0)
                    return SL_ERROR;
            e->start = o->start < e->start ? o->start : e->start;
            e->end = o->end > e->end ? o->end : e->end;
            e->fired |= o->fired;
            agg_release(a, found[k]);
        }
        if (t < e->start)
            e->start = t;
        if (end > e->end)
            e->end = end; /* its heap item moves when popped (aggregate's fire loop) */
    } /* (accumulate recounts the memory, which only var_mem computes change) */
    return accumulate(a, ctx, e, idx, t);
}

static int one_event(aggregate *a, sl_ctx *ctx, const uint8_t *ev, size_t len, int64_t wm)
{
    const sl_host *h = ctx->host;
    if (a->where) {
        int r = h->expr_bool(ctx, a->where, &ev, &len, 1);
        if (r == 0)
            return SL_OK;
        if (r < 0) {
            snprintf(a->detail, sizeof a->detail, "where: %s", h->expr_error(ctx));
            return drop(a, ctx, a->errors_port, "eval_error", ev, len);
        }
    }
    const uint8_t *p = ev;
    sl_mp_val tv;
    int64_t t;
    if (sl_mp_map_find(&p, ev + len, "time", 4) != 1 || sl_mp_read(&p, ev + len, &tv) != 0 ||
        sl_mp_timestamp_ns(&tv, &t) != 0) {
        snprintf(a->detail, sizeof a->detail, "no event time (a 'time' timestamp)");
        return drop(a, ctx, a->errors_port, "eval_error", ev, len);
    }
    /* every key and argument first: all or nothing */
    for (size_t s = 0; s < a->n_sets; s++) {
        sl_wbuf_reset(&a->keys[s]);
        for (size_t k = 0; k < a->sets[s].n_keys; k++)
            if (h->expr_value(ctx, a->sets[s].keys[k], &ev, &len, 1, &a->keys[s]) != 0) {
                snprintf(a->detail, sizeof a->detail, "group key '%s': %s", a->sets[s].names[k],
                         h->expr_error(ctx));
                return drop(a, ctx, a->errors_port, "eval_error", ev, len);
            }
    }
    sl_wbuf_reset(&a->args);
    for (size_t c = 0; c < a->n_comp; c++) {
        a->arg_off[c] = a->args.len;
        if (a->comp[c].arg && h->expr_value(ctx, a->comp[c].arg, &ev, &len, 1, &a->args) != 0) {
            snprintf(a->detail, sizeof a->detail, "compute '%s': %s", a->comp[c].name,
                     h->expr_error(ctx));
            return drop(a, ctx, a->errors_port, "eval_error", ev, len);
        }
    }
    a->arg_off[a->n_comp] = a->args.len;
    size_t n_missed = 0, dl = 0;
    for (uint32_t sp = 0; sp < a->n_specs; sp++) {
        const window_spec *w = &a->specs[sp];
        if (w->session) {
            for (uint32_t s = 0; s < a->n_sets; s++) {
                int r = session_event(a, ctx, sp, s, t, wm);
                if (r == SL_ERROR)
                    return SL_ERROR;
                if (r == 1 && s == 0) /* every set alike: once per spec */
                    missed(a, &n_missed, &dl, w, t);
            }
            continue;
        }
        int64_t last = floor_div(t, w->every) * w->every; /* latest window start holding t */
        for (int64_t start = last; start > t - w->size; start -= w->every) {
            int64_t end = start + w->size;
            if (wm != INT64_MIN && end <= wm - a->lateness) { /* gone: too late for it */
                missed(a, &n_missed, &dl, w, start);
                continue;
            }
            for (uint32_t s = 0; s < a->n_sets; s++) {
                uint32_t idx;
                entry *e = agg_find(a, sp, s, start, a->keys[s].data, a->keys[s].len, &idx);
                if (!e) {
                    if (!(e = agg_insert(a, sp, s, start, end, a->keys[s].data, a->keys[s].len,
                                         &idx)))
                        return SL_ERROR;
                    /* a window past its end but within lateness, new in memory: it
                     * fired already if LMDB held part of it then */
                    e->fired = e->assumed = a->db_any && end <= a->fired_upto;
                }
                if (accumulate(a, ctx, e, idx, t) != SL_OK)
                    return SL_ERROR;
            }
        }
    }
    return n_missed ? drop(a, ctx, a->late_port, "late", ev, len) : SL_OK;
}

/* Re-emit the windows that changed after firing (their full result, LMDB parts folded in). */
static int emit_updates(aggregate *a, sl_ctx *ctx)
{
    if (a->db_any && agg_spill_promote(a, ctx, a->dirty, a->n_dirty) != SL_OK)
        return SL_ERROR;
    for (size_t i = 0; i < a->n_dirty; i++) {
        entry *e = a->entries[a->dirty[i]];
        if (!e || !e->dirty || !e->fired) /* merged into another session; first firing after all */
            continue;
        e->dirty = 0;
        if (agg_emit_entry(a, ctx, e, 1) != SL_OK)
            return SL_ERROR;
    }
    a->n_dirty = 0;
    return SL_OK;
}

/* State gauges (docs/operations.md): windows held in memory, and their bytes. */
static void report_state(const aggregate *a, sl_ctx *ctx)
{
    ctx->host->gauge(ctx, "state_entries", (int64_t)a->live);
    ctx->host->gauge(ctx, "state_bytes", (int64_t)a->mem);
}

static int agg_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    aggregate *a = state;
    int64_t wm = b->watermark > a->wm ? b->watermark : a->wm; /* a restored one may be ahead */
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        if (one_event(a, ctx, ev, len, wm) != SL_OK)
            return SL_ERROR;
    }
    if (a->n_dirty && emit_updates(a, ctx) != SL_OK)
        return SL_ERROR;
    if (a->mem > a->budget && agg_spill_evict(a, ctx) != SL_OK)
        return SL_ERROR;
    report_state(a, ctx);
    return SL_OK;
}

static int agg_watermark(void *state, sl_ctx *ctx, int64_t wm)
{
    aggregate *a = state;
    if (wm <= a->wm)
        return SL_OK;
    a->wm = wm;
    if (a->db_any && agg_spill_fire(a, ctx, wm) != SL_OK)
        return SL_ERROR;
    while (a->n_heap && a->heap[0].at <= wm) {
        heap_item it = agg_heap_pop(a);
        entry *e = a->entries[it.idx];
        if (!e)
            continue;
        int64_t due = agg_due(a, e);
        if (due != it.at) {
            /* a session that grew moves on; other mismatches are stale items */
            if (a->specs[e->spec].session && due > it.at && agg_heap_push(a, due, it.idx) != 0)
                return SL_ERROR;
            continue;
        }
        if (!e->fired) {
            if (agg_emit_entry(a, ctx, e, 0) != SL_OK)
                return SL_ERROR;
            e->fired = 1;
            e->dirty = 0;
            int64_t gone = agg_due(a, e);
            if (gone > wm) {
                if (agg_heap_push(a, gone, it.idx) != 0)
                    return SL_ERROR;
                continue;
            }
        }
        agg_release(a, it.idx);
    }
    a->fired_upto = wm;
    if (agg_heap_compact(a) != 0)
        return SL_ERROR;
    report_state(a, ctx);
    return SL_OK;
}

static int agg_start(void *state, sl_ctx *ctx)
{
    aggregate *a = state;
    if (a->restored)
        return SL_OK;
    return agg_spill_open(a, ctx) == SL_OK ? agg_spill_reset(a, ctx) : SL_ERROR;
}

static int agg_snapshot(void *state, sl_ctx *ctx, uint64_t id)
{
    return agg_spill_snapshot(state, ctx, id);
}

static int agg_restore(void *state, sl_ctx *ctx, uint64_t id)
{
    aggregate *a = state;
    if (agg_spill_open(a, ctx) != SL_OK || agg_spill_restore(a, ctx, id) != SL_OK)
        return SL_ERROR;
    a->restored = 1;
    return SL_OK;
}

static int agg_finish(void *state, sl_ctx *ctx)
{
    aggregate *a = state;
    if (a->evictions)
        ctx->host->log(ctx, SL_LOG_INFO, "%" PRIu64 " windows' partial results spilled to LMDB "
                                         "in %" PRIu64 " evictions (memory: %" PRIu64 " bytes)",
                       a->spilled, a->evictions, a->budget);
    return SL_OK;
}

static void agg_destroy(void *state)
{
    aggregate *a = state;
    if (!a)
        return;
    for (size_t i = 0; i < a->n_entries; i++)
        if (a->entries[i]) {
            for (size_t c = 0; c < a->n_comp; c++)
                agg_acc_fini(&a->comp[c], &a->entries[i]->acc[c]);
            free(a->entries[i]);
        }
    free(a->entries);
    free(a->free_list);
    free(a->buckets);
    free(a->heap);
    free(a->dirty);
    for (size_t s = 0; s < AGG_MAX_SETS; s++)
        sl_wbuf_fini(&a->keys[s]);
    sl_wbuf_fini(&a->args);
    sl_wbuf_fini(&a->out);
    sl_wbuf_fini(&a->dbkey);
    sl_wbuf_fini(&a->dbval);
    free(a);
}

const sl_operator sl_op_aggregate = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "aggregate",
    .summary = "Windowed aggregation in event time: count, sum, avg, min, max, distinct, percentiles",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .key_param = "group_by",
    .init = agg_init,
    .start = agg_start,
    .process = agg_process,
    .on_watermark = agg_watermark,
    .finish = agg_finish,
    .destroy = agg_destroy,
    .snapshot = agg_snapshot,
    .restore = agg_restore,
};
