/*
 * aggregate.c - `aggregate`: windowed aggregation in event time.
 *
 *   windows: [{tumbling: 1m}, {hopping: 1h, every: 5m}]
 *   group_by: [[], [status], [customerId]]       grouping sets; [] = all events
 *   where: amount > 0
 *   allowed_lateness: 0s
 *   compute: {orders: count(), revenue: sum(amount), p95: percentile(amount, 0.95)}
 *
 * Per event: `where`, then every group key and every compute argument is
 * evaluated first (an error sends the event to `errors` and nothing is
 * counted: all or nothing); then, for every window spec and grouping set,
 * each window the event falls in is looked up (or made) in a hash table
 * keyed by (spec, set, window start, group values as msgpack) and its
 * accumulators are updated.
 *
 * Firing: a window [start, end) fires when the watermark reaches end (one
 * event per group that saw an event; empty windows emit nothing) and is
 * kept until end + allowed_lateness, so that a late event within that bound
 * updates it; such a window is re-emitted with "update": true once per
 * batch that changed it. An event too late for one of its windows leaves
 * by `late` (once, naming the windows it missed) and still counts in its
 * other windows. Windows are found by a min-heap on (time, entry).
 *
 * State lives in memory (a table entry per group and window, sketches
 * allocated per group, never per event). Session windows and LMDB state are
 * not built yet (docs/operators.md says so).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg_compute.h"
#include "sluice/operator.h"

#define MAX_SPECS 8
#define MAX_SETS 8
#define MAX_KEYS 8
#define MAX_COMPUTES 32

typedef struct window_spec {
    int64_t size, every; /* tumbling: every == size */
    const char *text;    /* "1m", for messages */
} window_spec;

typedef struct group_set {
    const sl_expr *keys[MAX_KEYS];
    const char *names[MAX_KEYS];
    size_t n_keys;
} group_set;

typedef struct entry {
    uint32_t next;       /* hash chain (index + 1; 0 ends) */
    uint32_t spec, set;
    int64_t start, end;
    uint64_t hash;
    uint8_t *key;        /* the group's values, msgpack back to back (owned) */
    uint32_t key_len;
    uint8_t fired, dirty;
    agg_acc acc[];
} entry;

typedef struct heap_item {
    int64_t at;          /* when the watermark reaching it matters */
    uint32_t idx;
    uint8_t purge;       /* 0: fire at end, 1: free at end + lateness */
} heap_item;

typedef struct aggregate {
    window_spec specs[MAX_SPECS];
    size_t n_specs;
    group_set sets[MAX_SETS];
    size_t n_sets;
    agg_compute comp[MAX_COMPUTES];
    size_t n_comp;
    const sl_expr *where;
    int64_t lateness;
    int late_port, errors_port;
    int64_t wm;
    /* the table */
    entry **entries;
    size_t n_entries, cap_entries;
    uint32_t *free_list;
    size_t n_free;
    uint32_t *buckets;   /* index + 1 */
    size_t n_buckets;
    size_t live;
    heap_item *heap;
    size_t n_heap, cap_heap;
    uint32_t *dirty;     /* entries updated after firing, re-emitted at batch end */
    size_t n_dirty, cap_dirty;
    /* per event scratch */
    sl_wbuf keys[MAX_SETS];
    sl_wbuf args;
    size_t arg_off[MAX_COMPUTES + 1];
    sl_wbuf out;
    char detail[256];
} aggregate;

static const sl_param params[] = {
    {"windows", SL_PARAM_LIST, NULL, 1, "[{tumbling: 1m}, {hopping: 1h, every: 5m}]", NULL},
    {"group_by", SL_PARAM_LIST, "[[]]", 0, "grouping sets of expressions; [] = all events", NULL},
    {"compute", SL_PARAM_MAP, NULL, 1, "name -> count() | sum(x) | min(x) | max(x) | avg(x) | "
                                       "count_distinct(x) | percentile(x, q) | first(x) | last(x)", NULL},
    {"where", SL_PARAM_EXPR, NULL, 0, "only events for which this holds are aggregated", NULL},
    {"allowed_lateness", SL_PARAM_DURATION, "0s", 0, "how long a fired window still takes late events", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "late", "errors", NULL};

/* --------------------------------------------------------------- setup */

static int parse_windows(sl_ctx *ctx, aggregate *a)
{
    const sl_host *h = ctx->host;
    const sl_node *list = h->param(ctx, "windows");
    if (h->node_len(list) == 0 || h->node_len(list) > MAX_SPECS) {
        h->config_error(ctx, list, "'windows' lists 1 to %d windows", MAX_SPECS);
        return -1;
    }
    for (size_t i = 0; i < h->node_len(list); i++) {
        const sl_node *w = h->node_at(list, i);
        window_spec *s = &a->specs[a->n_specs++];
        const sl_node *t = h->node_get(w, "tumbling"), *hop = h->node_get(w, "hopping");
        const sl_node *every = h->node_get(w, "every");
        if (h->node_kind(w) == SL_NODE_MAP && h->node_get(w, "session")) {
            h->config_error(ctx, w, "session windows are not built yet (tumbling and hopping are)");
            return -1;
        }
        size_t want = t ? 1 : hop ? 2 : 0;
        if (h->node_kind(w) != SL_NODE_MAP || !want || (t && hop) || (hop && !every) ||
            h->node_len(w) != want) {
            h->config_error(ctx, w, "a window is {tumbling: D} or {hopping: D, every: S}");
            return -1;
        }
        const sl_node *size = t ? t : hop;
        if (h->node_duration(size, &s->size) != 0 || s->size <= 0) {
            h->config_error(ctx, size, "invalid window size '%s' (expected a duration like 1m)",
                            h->node_str(size) ? h->node_str(size) : "");
            return -1;
        }
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
    if (g->n_keys == MAX_KEYS) {
        h->config_error(ctx, k, "a grouping set has at most %d keys", MAX_KEYS);
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
    if (h->node_len(list) > MAX_SETS) {
        h->config_error(ctx, list, "at most %d grouping sets", MAX_SETS);
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
    const sl_node *where = h->param(ctx, "where");
    if (where && !(a->where = h->expr_compile(ctx, where, NULL, NULL)))
        return SL_ERROR;
    int bad = parse_windows(ctx, a) != 0;
    bad |= parse_groups(ctx, a) != 0;
    const sl_node *comp = h->param(ctx, "compute");
    if (h->node_len(comp) == 0 || h->node_len(comp) > MAX_COMPUTES) {
        h->config_error(ctx, comp, "'compute' names 1 to %d results", MAX_COMPUTES);
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
        a->n_comp++;
    }
    return bad ? SL_ERROR : SL_OK;
}

/* --------------------------------------------------------------- table */

static uint64_t hash_key(uint32_t spec, uint32_t set, int64_t start, const uint8_t *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ ((uint64_t)spec << 40 | (uint64_t)set << 32);
    h = (h ^ (uint64_t)start) * 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 0x100000001b3ull;
    h ^= h >> 32;
    return h * 0xd6e8feb86659fd93ull;
}

static int grow_buckets(aggregate *a)
{
    size_t n = a->n_buckets ? a->n_buckets * 2 : 1024;
    uint32_t *b = calloc(n, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < a->n_entries; i++) {
        entry *e = a->entries[i];
        if (!e) /* a freed slot */
            continue;
        size_t bi = e->hash & (n - 1);
        e->next = b[bi];
        b[bi] = (uint32_t)i + 1;
    }
    free(a->buckets);
    a->buckets = b;
    a->n_buckets = n;
    return 0;
}

static int heap_push(aggregate *a, int64_t at, uint32_t idx, int purge)
{
    if (a->n_heap == a->cap_heap) {
        size_t cap = a->cap_heap ? a->cap_heap * 2 : 256;
        heap_item *h = realloc(a->heap, cap * sizeof *h);
        if (!h)
            return -1;
        a->heap = h;
        a->cap_heap = cap;
    }
    size_t i = a->n_heap++;
    heap_item it = {at, idx, (uint8_t)purge};
    while (i > 0 && a->heap[(i - 1) / 2].at > at) {
        a->heap[i] = a->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    a->heap[i] = it;
    return 0;
}

static heap_item heap_pop(aggregate *a)
{
    heap_item top = a->heap[0], last = a->heap[--a->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= a->n_heap)
            break;
        if (c + 1 < a->n_heap && a->heap[c + 1].at < a->heap[c].at)
            c++;
        if (a->heap[c].at >= last.at)
            break;
        a->heap[i] = a->heap[c];
        i = c;
    }
    if (a->n_heap)
        a->heap[i] = last;
    return top;
}

/* The entry of (spec, set, start, key), made if new; NULL when out of memory. */
static entry *lookup(aggregate *a, uint32_t spec, uint32_t set, int64_t start, const uint8_t *key,
                     size_t key_len, uint32_t *idx_out)
{
    uint64_t hv = hash_key(spec, set, start, key, key_len);
    if (a->n_buckets) {
        for (uint32_t i = a->buckets[hv & (a->n_buckets - 1)]; i; i = a->entries[i - 1]->next) {
            entry *e = a->entries[i - 1];
            if (e->hash == hv && e->spec == spec && e->set == set && e->start == start &&
                e->key_len == key_len && (key_len == 0 || memcmp(e->key, key, key_len) == 0)) {
                *idx_out = i - 1;
                return e;
            }
        }
    }
    if (a->live + 1 > a->n_buckets / 2 && grow_buckets(a) != 0)
        return NULL;
    entry *e = calloc(1, sizeof *e + a->n_comp * sizeof(agg_acc));
    if (!e || (key_len && !(e->key = malloc(key_len)))) {
        free(e);
        return NULL;
    }
    uint32_t idx;
    if (a->n_free) {
        idx = a->free_list[--a->n_free];
    } else {
        if (a->n_entries == a->cap_entries) {
            size_t cap = a->cap_entries ? a->cap_entries * 2 : 1024;
            entry **p = realloc(a->entries, cap * sizeof *p);
            uint32_t *f = realloc(a->free_list, cap * sizeof *f);
            if (p)
                a->entries = p;
            if (f)
                a->free_list = f;
            if (!p || !f) {
                free(e->key);
                free(e);
                return NULL;
            }
            a->cap_entries = cap;
        }
        idx = (uint32_t)a->n_entries++;
    }
    e->spec = spec;
    e->set = set;
    e->start = start;
    e->end = start + a->specs[spec].size;
    e->hash = hv;
    if (key_len)
        memcpy(e->key, key, key_len);
    e->key_len = (uint32_t)key_len;
    for (size_t c = 0; c < a->n_comp; c++)
        agg_acc_init(&a->comp[c], &e->acc[c]);
    size_t bi = hv & (a->n_buckets - 1);
    e->next = a->buckets[bi];
    a->buckets[bi] = idx + 1;
    a->entries[idx] = e;
    a->live++;
    if (heap_push(a, e->end, idx, 0) != 0)
        return NULL;
    *idx_out = idx;
    return e;
}

static void release(aggregate *a, uint32_t idx)
{
    entry *e = a->entries[idx];
    uint32_t *link = &a->buckets[e->hash & (a->n_buckets - 1)];
    while (*link != idx + 1)
        link = &a->entries[*link - 1]->next;
    *link = e->next;
    for (size_t c = 0; c < a->n_comp; c++)
        agg_acc_fini(&a->comp[c], &e->acc[c]);
    free(e->key);
    free(e);
    a->entries[idx] = NULL;
    a->free_list[a->n_free++] = idx;
    a->live--;
}

/* -------------------------------------------------------------- output */

static int emit_entry(aggregate *a, sl_ctx *ctx, const entry *e, int update)
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
    size_t missed = 0, dl = 0;
    for (uint32_t sp = 0; sp < a->n_specs; sp++) {
        const window_spec *w = &a->specs[sp];
        int64_t last = floor_div(t, w->every) * w->every; /* latest window start holding t */
        for (int64_t start = last; start > t - w->size; start -= w->every) {
            int64_t end = start + w->size;
            if (wm != INT64_MIN && end <= wm - a->lateness) { /* gone: too late for it */
                if (missed++ == 0)
                    dl = (size_t)snprintf(a->detail, sizeof a->detail, "too late for window");
                if (dl < sizeof a->detail)
                    dl += (size_t)snprintf(a->detail + dl, sizeof a->detail - dl, " %s@%" PRId64,
                                           w->text, start);
                continue;
            }
            for (uint32_t s = 0; s < a->n_sets; s++) {
                uint32_t idx;
                entry *e = lookup(a, sp, s, start, a->keys[s].data, a->keys[s].len, &idx);
                if (!e)
                    return SL_ERROR;
                for (size_t c = 0; c < a->n_comp; c++) {
                    const char *why = "";
                    int r = agg_acc_add(&a->comp[c], &e->acc[c], a->args.data + a->arg_off[c],
                                        a->arg_off[c + 1] - a->arg_off[c], t, &why);
                    if (r == -2)
                        return SL_ERROR;
                    if (r < 0) {
                        h->count(ctx, "bad_values", 1);
                        h->log(ctx, SL_LOG_WARN, "compute '%s': the value %s; skipped",
                               a->comp[c].name, why);
                    }
                }
                if (e->fired && !e->dirty) {
                    e->dirty = 1;
                    if (a->n_dirty == a->cap_dirty) {
                        size_t cap = a->cap_dirty ? a->cap_dirty * 2 : 64;
                        uint32_t *d = realloc(a->dirty, cap * sizeof *d);
                        if (!d)
                            return SL_ERROR;
                        a->dirty = d;
                        a->cap_dirty = cap;
                    }
                    a->dirty[a->n_dirty++] = idx;
                }
            }
        }
    }
    return missed ? drop(a, ctx, a->late_port, "late", ev, len) : SL_OK;
}

static int agg_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    aggregate *a = state;
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        if (one_event(a, ctx, ev, len, b->watermark) != SL_OK)
            return SL_ERROR;
    }
    /* windows that fired and took late events since: their updated results */
    for (size_t i = 0; i < a->n_dirty; i++) {
        entry *e = a->entries[a->dirty[i]];
        e->dirty = 0;
        if (emit_entry(a, ctx, e, 1) != SL_OK)
            return SL_ERROR;
    }
    a->n_dirty = 0;
    return SL_OK;
}

static int agg_watermark(void *state, sl_ctx *ctx, int64_t wm)
{
    aggregate *a = state;
    a->wm = wm;
    while (a->n_heap && a->heap[0].at <= wm) {
        heap_item it = heap_pop(a);
        entry *e = a->entries[it.idx];
        if (!e)
            continue;
        if (!it.purge) {
            if (emit_entry(a, ctx, e, 0) != SL_OK)
                return SL_ERROR;
            e->fired = 1;
            int64_t gone = e->end > INT64_MAX - a->lateness ? INT64_MAX : e->end + a->lateness;
            if (gone > wm) {
                if (heap_push(a, gone, it.idx, 1) != 0)
                    return SL_ERROR;
                continue;
            }
        }
        release(a, it.idx);
    }
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
            free(a->entries[i]->key);
            free(a->entries[i]);
        }
    free(a->entries);
    free(a->free_list);
    free(a->buckets);
    free(a->heap);
    free(a->dirty);
    for (size_t s = 0; s < MAX_SETS; s++)
        sl_wbuf_fini(&a->keys[s]);
    sl_wbuf_fini(&a->args);
    sl_wbuf_fini(&a->out);
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
    .process = agg_process,
    .on_watermark = agg_watermark,
    .destroy = agg_destroy,
};
