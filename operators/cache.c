/*
 * cache.c - `cache`: the gateway's response cache, request side
 * (docs/gateway/cache.md).
 *
 *   ttl: 60s               lifetime of a stored 200 (max-age / s-maxage shorten it)
 *   negative_ttl: 0s       lifetime of a stored 404 / 410 (0: not stored)
 *   max_entries, max_bytes, max_object
 *   vary_scope: true       the key holds the consumer's scopes
 *   vary_consumer: false   the key holds the consumer
 *   paths: [...]           path patterns cached, e.g. /apis and /apis/ then a star (default: all)
 *   gzip: {min_size: 512, level: 6}
 *   invalidate_on_write: true
 *
 * A GET or HEAD request to a cached path is looked up under its key
 * (cache_http.c: path, sorted query, scopes). A fresh entry answers it at
 * once on `hits` (304 when If-None-Match matches, the gzip form when
 * accepted, `age`, `x-cache: HIT`); otherwise it leaves by `out` towards
 * the endpoints with `cache: {hit: false, gen}`, the mark `cache.store`
 * looks for on the way back. Anything else leaves by `out` untouched.
 *
 * The table is shared with `cache.store` (cache_table.c), registered under
 * this operator's name; the configuration is the table's. The clock is the
 * request's own `time` (the wall clock when it has none), as `ratelimit`'s.
 * A hit takes the table's lock shared, one hash lookup, and copies the
 * request and the stored response into a reused buffer: no allocation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "diag.h"
#include "hash.h"

#define NS 1000000000ll
#define MAX_PATHS 256
#define MAX_TTL_NS (366ll * 86400 * NS)

static const sl_param params[] = {
    {"ttl", SL_PARAM_DURATION, "60s", 0,
     "lifetime of a stored 200 response (a response's max-age or s-maxage can only shorten it)",
     NULL},
    {"negative_ttl", SL_PARAM_DURATION, "0s", 0,
     "lifetime of a stored 404 or 410 response; 0: they are not stored", NULL},
    {"max_entries", SL_PARAM_INT, "100000", 0, "responses kept (1 to 2^26)", NULL},
    {"max_bytes", SL_PARAM_SIZE, "256MiB", 0,
     "memory the stored responses may take (keys, headers, bodies, gzip forms, index)", NULL},
    {"max_object", SL_PARAM_SIZE, NULL, 0,
     "largest entry stored (key, headers, body and its gzip form); default 1MiB or max_bytes / "
     "8 if smaller",
     NULL},
    {"vary_scope", SL_PARAM_BOOL, "true", 0,
     "the key holds the consumer's scopes (sorted): consumers with other scopes get their own "
     "entries",
     NULL},
    {"vary_consumer", SL_PARAM_BOOL, "false", 0,
     "the key holds the consumer: for responses that depend on who asks", NULL},
    {"paths", SL_PARAM_LIST, NULL, 0,
     "path patterns cached (exact, or a trailing * for any rest); default: every path", NULL},
    {"gzip", SL_PARAM_ANY, "{min_size: 512, level: 6}", 0,
     "gzip bodies of min_size bytes or more for clients that accept it, compressed once when "
     "stored: {min_size, level 1-9}, or false",
     NULL},
    {"invalidate_on_write", SL_PARAM_BOOL, "true", 0,
     "a successful POST, PUT, PATCH or DELETE removes the entries of its path (RFC 9111 4.4)",
     NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "hits", "errors", NULL};

typedef struct pattern {
    const char *s;
    size_t len;
    int prefix;
} pattern;

typedef struct counts {
    uint64_t hits, misses, bypass, not_modified, gzip_served;
} counts;

typedef struct cache_op {
    sl_cache_table *t;
    int attached;
    cache_cfg cfg;
    pattern *paths;
    size_t n_paths;
    int hits_port, errors_port, report; /* report: instance 0 sets the table's gauges */
    sl_wbuf key, out, mark;
    counts c;
} cache_op;

/* {"hit": true}: the mark of an answer from the cache */
static const uint8_t hit_mark[] = {0x81, 0xa3, 'h', 'i', 't', 0xc3};

/* ------------------------------------------------------------ configuration */

static int unknown_keys(sl_ctx *ctx, const sl_node *m, const char *what, const char *const *allowed)
{
    const sl_host *h = ctx->host;
    int bad = 0;
    for (size_t i = 0; i < h->node_len(m); i++) {
        const char *k = h->node_key(m, i);
        const char *const *p = allowed;
        while (*p && strcmp(*p, k) != 0)
            p++;
        if (*p) continue;
        const char *hint = sl_suggest(k, allowed);
        if (hint)
            h->config_error(ctx, h->node_at(m, i), "%s: unknown key '%s' (did you mean '%s'?)",
                            what, k, hint);
        else
            h->config_error(ctx, h->node_at(m, i),
                            "%s: unknown key '%s' (expected min_size, level)", what, k);
        bad++;
    }
    return bad;
}

static int read_gzip(sl_ctx *ctx, cache_cfg *cfg)
{
    static const char *const keys[] = {"min_size", "level", NULL};
    const sl_host *h = ctx->host;
    const sl_node *g = h->param(ctx, "gzip");
    cfg->gzip_level = 6;
    cfg->gzip_min = 512;
    if (h->node_kind(g) == SL_NODE_SCALAR) {
        int on = 0;
        if (h->node_bool(g, &on) != 0 || on) {
            h->config_error(ctx, g, "'gzip' is a map {min_size, level} or false");
            return -1;
        }
        cfg->gzip_level = 0;
        return 0;
    }
    if (h->node_kind(g) != SL_NODE_MAP) {
        h->config_error(ctx, g, "'gzip' is a map {min_size, level} or false");
        return -1;
    }
    int bad = unknown_keys(ctx, g, "gzip", keys) != 0;
    const sl_node *n = h->node_get(g, "min_size");
    if (n && h->node_size(n, &cfg->gzip_min) != 0) {
        h->config_error(ctx, n, "gzip.min_size must be a size (512, 1KiB)");
        bad = 1;
    }
    n = h->node_get(g, "level");
    int64_t level = 6;
    if (n && (h->node_int(n, &level) != 0 || level < 0 || level > 9)) {
        h->config_error(ctx, n, "gzip.level must be 1 (fastest) to 9 (smallest), or 0 for no gzip");
        bad = 1;
    }
    cfg->gzip_level = (int)level;
    return bad ? -1 : 0;
}

static int read_paths(cache_op *c, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    const sl_node *list = h->param(ctx, "paths");
    if (!list) return 0;
    size_t n = h->node_len(list);
    if (n == 0 || n > MAX_PATHS) {
        h->config_error(ctx, list, "'paths' holds 1 to %d patterns", MAX_PATHS);
        return -1;
    }
    if (!(c->paths = calloc(n, sizeof *c->paths))) return -1;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const sl_node *x = h->node_at(list, i);
        const char *s = h->node_kind(x) == SL_NODE_SCALAR ? h->node_str(x) : NULL;
        const char *star = s ? strchr(s, '*') : NULL;
        size_t len = s ? strlen(s) : 0;
        if (!s || s[0] != '/' || (star && star != s + len - 1) || strchr(s, '?')) {
            h->config_error(ctx, x,
                            "a path pattern starts with '/', has no '?', and at most a trailing "
                            "'*' (matching any rest)");
            bad = 1;
            continue;
        }
        c->paths[i] = (pattern){s, star ? len - 1 : len, star != NULL};
    }
    c->n_paths = n;
    return bad ? -1 : 0;
}

static int read_config(cache_op *c, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    cache_cfg *cfg = &c->cfg;
    int bad = 0;
    const sl_node *n = h->param(ctx, "ttl");
    if (h->node_duration(n, &cfg->ttl_ns) != 0 || cfg->ttl_ns < NS || cfg->ttl_ns > MAX_TTL_NS) {
        h->config_error(ctx, n, "'ttl' must be between 1s and 366d");
        bad = 1;
    }
    n = h->param(ctx, "negative_ttl");
    if (h->node_duration(n, &cfg->negative_ttl_ns) != 0 || cfg->negative_ttl_ns < 0 ||
        cfg->negative_ttl_ns > cfg->ttl_ns) {
        h->config_error(ctx, n, "'negative_ttl' must be between 0 and ttl");
        bad = 1;
    }
    n = h->param(ctx, "max_entries");
    int64_t me = 0;
    if (h->node_int(n, &me) != 0 || me < 1 || me > (int64_t)CACHE_MAX_ENTRIES) {
        h->config_error(ctx, n, "'max_entries' must be between 1 and %u", CACHE_MAX_ENTRIES);
        bad = 1;
    }
    cfg->max_entries = (uint64_t)me;
    n = h->param(ctx, "max_bytes");
    if (h->node_size(n, &cfg->max_bytes) != 0 || cfg->max_bytes < 65536 ||
        cfg->max_bytes > (1ull << 40)) {
        h->config_error(ctx, n, "'max_bytes' must be between 64KiB and 1TiB");
        bad = 1;
    }
    n = h->param(ctx, "max_object");
    cfg->max_object = cfg->max_bytes / 8 < (1u << 20) ? cfg->max_bytes / 8 : (1u << 20);
    if (n && (h->node_size(n, &cfg->max_object) != 0 || cfg->max_object < 1 ||
              cfg->max_object > cfg->max_bytes / 2 || cfg->max_object > UINT32_MAX / 4)) {
        h->config_error(ctx, n, "'max_object' must be between 1 byte and max_bytes / 2 (and 1GiB)");
        bad = 1;
    }
    static const char *const bools[] = {"vary_scope", "vary_consumer", "invalidate_on_write"};
    int *dst[] = {&cfg->vary_scope, &cfg->vary_consumer, &cfg->invalidate_on_write};
    for (int i = 0; i < 3; i++)
        h->node_bool(h->param(ctx, bools[i]), dst[i]); /* checked by the engine */
    if (read_gzip(ctx, cfg) != 0) bad = 1;
    if (read_paths(c, ctx) != 0) bad = 1;
    return bad ? -1 : 0;
}

static int cache_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    cache_op *c = calloc(1, sizeof *c);
    if (!c) return SL_ERROR;
    *state = c;
    c->hits_port = h->port(ctx, "hits");
    c->errors_port = h->port(ctx, "errors");
    c->report = h->instance(ctx, NULL) == 0;
    if (read_config(c, ctx) != 0) return SL_ERROR;
    c->t = sl_cache_table_acquire(h->name(ctx), 1, NULL);
    if (!c->t) {
        h->log(ctx, SL_LOG_ERROR, "out of memory for the cache table");
        return SL_ERROR;
    }
    sl_cache_table_attach(c->t, &c->cfg);
    c->attached = 1;
    return SL_OK;
}

/* ------------------------------------------------------------ data path */

static int path_cached(const cache_op *c, const cache_str *p)
{
    if (!c->n_paths) return 1;
    for (size_t i = 0; i < c->n_paths; i++) {
        const pattern *x = &c->paths[i];
        if (x->prefix ? p->n >= x->len && memcmp(p->p, x->s, x->len) == 0
                      : p->n == x->len && memcmp(p->p, x->s, x->len) == 0)
            return 1;
    }
    return 0;
}

static int is_method(const cache_str *m, const char *s, uint32_t n)
{
    return m->n == n && memcmp(m->p, s, n) == 0;
}

/* The mark of a miss: {"hit": false, "gen": g} into c->mark. */
static int write_miss_mark(cache_op *c, uint64_t gen)
{
    sl_wbuf_reset(&c->mark);
    return sl_mp_write_map(&c->mark, 2) | sl_mp_write_str(&c->mark, "hit", 3) |
                   sl_mp_write_bool(&c->mark, false) | sl_mp_write_str(&c->mark, "gen", 3) |
                   sl_mp_write_uint(&c->mark, gen)
               ? -1
               : 0;
}

/*
 * Answer r from entry e if it is fresh for r: 1 (answered into c->out), 0
 * (not fresh enough: a miss). Called with the table's lock held.
 */
static int answer_hit(cache_op *c, const cache_req *r, cache_entry *e, int64_t now,
                      const cache_cc *cc, int *err)
{
    if (now >= e->expires_ns) return 0;
    int64_t age = now > e->stored_ns ? (now - e->stored_ns) / NS : 0;
    if (cc->max_age_set && age > cc->max_age) return 0; /* the client wants it younger */
    unsigned flags = CACHE_ANSWER_HIT;
    int gz = e->resp.gz && r->ae.n && cache_accepts_gzip(r->ae.p, r->ae.n);
    if (gz) flags |= CACHE_ANSWER_GZIP;
    if (r->inm.n && e->resp.etag) {
        char tag[CACHE_ETAG_MAX + 8];
        size_t tn = cache_etag_variant(&e->resp, gz, tag, sizeof tag);
        if (tn && cache_inm_match(r->inm.p, r->inm.n, tag, tn)) flags |= CACHE_ANSWER_304;
    }
    sl_wbuf_reset(&c->out);
    if (cache_write_answer(&c->out, r, &e->resp, flags, age, hit_mark, sizeof hit_mark) != 0) {
        *err = 1;
        return 0;
    }
    sl_cache_entry_touch(e);
    c->c.hits++;
    if (flags & CACHE_ANSWER_304)
        c->c.not_modified++;
    else if (gz)
        c->c.gzip_served++;
    return 1;
}

static int handle(cache_op *c, sl_ctx *ctx, const uint8_t *ev, size_t len)
{
    const sl_host *h = ctx->host;
    cache_req r;
    if (cache_req_read(ev, len, &r) != 0 || !r.method.n || !r.path_is_str)
        return h->emit_drop(ctx, c->errors_port, "malformed",
                            "not a request event (a map with method and path strings)", ev, len,
                            NULL, 0);
    if (r.response.v)
        return h->emit_drop(ctx, c->errors_port, "answered",
                            "the request already has a response (wire answers to respond, not "
                            "to cache)",
                            ev, len, NULL, 0);
    const char *why = NULL;
    int head = is_method(&r.method, "HEAD", 4);
    if (!(head || is_method(&r.method, "GET", 3)) || !path_cached(c, &r.path)) {
        c->c.bypass++;
        return h->emit(ctx, 0, ev, len);
    }
    int k = cache_key(&r, &c->cfg, &c->key, &(size_t){0}, &why);
    if (k < 0) goto oom;
    if (k > 0) {
        c->c.bypass++;
        return h->emit(ctx, 0, ev, len);
    }
    int64_t now = r.has_time ? r.time_ns : h->now(ctx);
    cache_cc cc;
    cache_cc_parse(r.cc.p, r.cc.n, &cc);
    uint64_t gen = sl_cache_table_gen(c->t); /* before the lookup: see cache_table.c */
    if (!cc.no_store && !cc.no_cache) {
        uint64_t hash = sl_hash_bytes(c->key.data, c->key.len);
        int err = 0, hit = 0;
        sl_cache_table_rdlock(c->t);
        cache_entry *e = sl_cache_table_find(c->t, hash, c->key.data, c->key.len);
        if (e) hit = answer_hit(c, &r, e, now, &cc, &err);
        sl_cache_table_unlock(c->t);
        if (err) goto oom;
        if (hit) return h->emit(ctx, c->hits_port, c->out.data, c->out.len);
    }
    c->c.misses++;
    sl_wbuf_reset(&c->out);
    if (write_miss_mark(c, gen) != 0 ||
        cache_write_marked(&c->out, &r, c->mark.data, c->mark.len) != 0)
        goto oom;
    return h->emit(ctx, 0, c->out.data, c->out.len);
oom:
    h->log(ctx, SL_LOG_ERROR, "out of memory answering a request of %zu bytes", len);
    return -1;
}

static void flush_metrics(cache_op *c, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    counts *n = &c->c;
    if (n->hits) h->count(ctx, "hits", n->hits);
    if (n->misses) h->count(ctx, "misses", n->misses);
    if (n->bypass) h->count(ctx, "bypass", n->bypass);
    if (n->not_modified) h->count(ctx, "not_modified", n->not_modified);
    if (n->gzip_served) h->count(ctx, "gzip_served", n->gzip_served);
    memset(n, 0, sizeof *n);
    if (c->report) {
        uint64_t entries, bytes;
        sl_cache_table_stats(c->t, &entries, &bytes);
        h->gauge(ctx, "state_entries", (int64_t)entries);
        h->gauge(ctx, "state_bytes", (int64_t)(bytes + c->key.cap + c->out.cap + c->mark.cap));
    }
}

static int cache_process(void *state, sl_ctx *ctx, int input, const sl_batch *batch)
{
    cache_op *c = state;
    (void)input;
    int rc = SL_OK;
    for (uint32_t i = 0; i < batch->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(batch, i, &len);
        if (handle(c, ctx, ev, len) != 0) {
            rc = SL_ERROR;
            break;
        }
    }
    flush_metrics(c, ctx);
    return rc;
}

static void cache_destroy(void *state)
{
    cache_op *c = state;
    if (!c) return;
    if (c->attached) sl_cache_table_detach(c->t);
    sl_cache_table_release(&c->t);
    free(c->paths);
    sl_wbuf_fini(&c->key);
    sl_wbuf_fini(&c->out);
    sl_wbuf_fini(&c->mark);
    free(c);
}

const sl_operator sl_op_cache = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "cache",
    .summary = "Gateway response cache, request side: GET/HEAD answered from the table shared "
               "with cache.store (ETag/304, gzip, age); misses marked and sent on",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .init = cache_init,
    .process = cache_process,
    .destroy = cache_destroy,
};
