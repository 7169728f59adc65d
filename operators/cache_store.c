/*
 * cache_store.c - `cache.store`: the gateway's response cache, response
 * side (docs/gateway/cache.md).
 *
 *   cache: cached          the `cache` operator whose table this fills
 *                          (default: the only one in the process)
 *   input: [catalog.answered, events.answered, catalog.invalidate]
 *
 * Every answered request on `input` leaves by `out` (towards respond):
 *   - a GET or HEAD answered 200 gets an ETag (the endpoint's, or one made
 *     from the body's SHA-256) and, when its If-None-Match matches, becomes
 *     a 304;
 *   - a body of gzip.min_size bytes or more is compressed once (when it is
 *     stored, or when the client accepts gzip) and sent compressed to
 *     clients that accept it, with `vary: accept-encoding`;
 *   - a response to a request `cache` marked as a miss is stored when
 *     Cache-Control and the rules of docs/gateway/cache.md allow, and gets
 *     `x-cache: MISS`;
 *   - a successful POST/PUT/PATCH/DELETE removes the entries of its path
 *     (invalidate_on_write).
 * Other responses pass untouched. Events of type `cache.invalidate`
 * without a response, {"keys": [paths], "prefixes": [prefixes]}, remove
 * entries (cache_table.c says how, exactly and without a scan). They share
 * the input with the responses (every declared input slot must be wired,
 * and a pipeline without invalidations should not need a dummy wire); an
 * invalidation that overtakes a response computed before the write it
 * reports is caught by the table's invalidation count, not by order.
 *
 * The store's work (ETag, gzip, the entry's copy) happens once per miss;
 * the deflate stream and the scratch buffers are the instance's, reused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache.h"

#define NS 1000000000ll

static const sl_param params[] = {
    {"cache", SL_PARAM_STRING, NULL, 0,
     "name of the `cache` operator whose table this stores into; default: the only one", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "errors", NULL};

typedef struct counts {
    uint64_t not_modified, gzip_served, compressed, uncacheable, passed;
} counts;

typedef struct store_op {
    const char *name; /* the cache's, or NULL: the only one */
    sl_cache_table *t;
    cache_cfg cfg;
    cache_gzip gz;
    int errors_port;
    sl_wbuf key, hdrs, body, zbuf, out;
    counts c;
    cache_table_counts tc;
} store_op;

static int store_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    store_op *s = calloc(1, sizeof *s);
    if (!s) return SL_ERROR;
    *state = s;
    s->errors_port = h->port(ctx, "errors");
    const sl_node *n = h->param(ctx, "cache");
    if (n) {
        s->name = h->node_str(n);
        if (!s->name || !*s->name) {
            h->config_error(ctx, n, "'cache' names a `cache` operator");
            return SL_ERROR;
        }
    }
    return SL_OK;
}

/* Every operator's init has run: the `cache` operator has registered its table. */
static int store_start(void *state, sl_ctx *ctx)
{
    store_op *s = state;
    const sl_host *h = ctx->host;
    int several = 0;
    s->t = sl_cache_table_acquire(s->name, 0, &several);
    if (!s->t) {
        if (s->name)
            h->log(ctx, SL_LOG_ERROR,
                   "no `cache` operator named '%s' in this pipeline ('cache' names the cache "
                   "whose responses this stores)",
                   s->name);
        else
            h->log(ctx, SL_LOG_ERROR,
                   several ? "several `cache` operators: say which one with 'cache: NAME'"
                           : "no `cache` operator in this pipeline: cache.store fills the "
                             "table of one");
        return SL_ERROR;
    }
    if (!sl_cache_table_configured(s->t, &s->cfg)) {
        h->log(ctx, SL_LOG_ERROR, "'%s' is not a `cache` operator", sl_cache_table_name(s->t));
        return SL_ERROR;
    }
    if (cache_gzip_init(&s->gz, s->cfg.gzip_level) != 0) {
        h->log(ctx, SL_LOG_ERROR, "cannot make a deflate stream (zlib)");
        return SL_ERROR;
    }
    return SL_OK;
}

/* ------------------------------------------------------------ responses */

static int ieq(const sl_mp_val *k, const char *s, size_t n)
{
    return k->v.str.len == n && strncasecmp(k->v.str.ptr, s, n) == 0;
}

/* Whether the comma-separated list s holds token tok (case-insensitive). */
static int list_has(const char *s, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        size_t st = i;
        while (i < n && s[i] != ',' && s[i] != ' ' && s[i] != '\t')
            i++;
        if (i - st == tl && strncasecmp(s + st, tok, tl) == 0) return 1;
    }
    return 0;
}

/* What the walk over a response's headers learned. */
typedef struct resp_info {
    cache_cc cc;
    cache_str etag, vary, ce;
    int has_etag, has_vary, has_ce, set_cookie;
} resp_info;

/*
 * The response's headers into s->hdrs (pairs to keep) and *info. The names
 * `respond` writes itself or the cache writes (content-length, date, age,
 * x-cache, etag, vary: set again later) are left out. 0, 1 (not a map of
 * headers: pass the event untouched), -1 out of memory.
 */
static int walk_headers(store_op *s, const uint8_t *p, const uint8_t *end, uint32_t *n_kept,
                        resp_info *info)
{
    sl_mp_val m;
    if (sl_mp_read(&p, end, &m) != 0) return 1;
    if (m.type == SL_MP_NIL) return 0;
    if (m.type != SL_MP_MAP) return 1;
    for (uint32_t i = 0; i < m.v.n; i++) {
        const uint8_t *pair = p;
        sl_mp_val k, v;
        if (sl_mp_read(&p, end, &k) != 0 || k.type != SL_MP_STR) return 1;
        const uint8_t *val = p;
        if (sl_mp_skip(&p, end) != 0) return 1;
        const uint8_t *q = val;
        int is_str = sl_mp_read(&q, p, &v) == 0 && v.type == SL_MP_STR;
        cache_str str = {is_str ? v.v.str.ptr : "", is_str ? v.v.str.len : 0};
        if (ieq(&k, "content-length", 14) || ieq(&k, "date", 4) || ieq(&k, "age", 3) ||
            ieq(&k, "x-cache", 7) || ieq(&k, "connection", 10) ||
            ieq(&k, "transfer-encoding", 17) || ieq(&k, "keep-alive", 10))
            continue;
        if (ieq(&k, "etag", 4) && is_str && cache_etag_valid(str.p, str.n)) {
            info->etag = str;
            info->has_etag = 1;
            continue;
        }
        if (ieq(&k, "vary", 4) && is_str) {
            info->vary = str;
            info->has_vary = 1;
            continue;
        }
        if (ieq(&k, "cache-control", 13) && is_str) cache_cc_parse(str.p, str.n, &info->cc);
        if (ieq(&k, "set-cookie", 10)) info->set_cookie = 1;
        if (ieq(&k, "content-encoding", 16) &&
            !(is_str && str.n == 8 && strncasecmp(str.p, "identity", 8) == 0)) {
            info->ce = str;
            info->has_ce = 1;
        }
        if (sl_wbuf_append(&s->hdrs, pair, (size_t)(p - pair)) != 0) return -1;
        (*n_kept)++;
    }
    return 0;
}

/* Whether the Vary field allows storing: absent, or naming only accept-encoding. */
static int vary_storable(const resp_info *in)
{
    if (!in->has_vary) return 1;
    const char *v = in->vary.p;
    size_t n = in->vary.n, i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t st = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i > st && !(i - st == 15 && strncasecmp(v + st, "accept-encoding", 15) == 0)) return 0;
    }
    return 1;
}

static int is_unsafe(const cache_str *m)
{
    static const char *const safe[] = {"GET", "HEAD", "OPTIONS", "TRACE"};
    if (m->n == 0) return 0; /* no method: not a write */
    for (size_t i = 0; i < 4; i++)
        if (m->n == strlen(safe[i]) && memcmp(m->p, safe[i], m->n) == 0) return 0;
    return 1;
}

static int is_get(const cache_str *m)
{
    return m->n == 3 && memcmp(m->p, "GET", 3) == 0;
}
static int is_head(const cache_str *m)
{
    return m->n == 4 && memcmp(m->p, "HEAD", 4) == 0;
}

/* The miss mark: 1 and *gen when the event carries {"hit": false, "gen": g}; 0 otherwise; 2 a hit.
 */
static int read_mark(const cache_req *r, uint64_t *gen)
{
    if (!r->marker.v) return 0;
    const uint8_t *p = r->marker.v, *end = r->marker.end;
    sl_mp_val m;
    int hit = -1, has_gen = 0;
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) return 0;
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k, v;
        if (sl_mp_read(&p, end, &k) != 0) return 0;
        const uint8_t *val = p;
        if (sl_mp_skip(&p, end) != 0) return 0;
        if (k.type != SL_MP_STR || sl_mp_read(&val, p, &v) != 0) continue;
        if (k.v.str.len == 3 && memcmp(k.v.str.ptr, "hit", 3) == 0 && v.type == SL_MP_BOOL)
            hit = v.v.b;
        else if (k.v.str.len == 3 && memcmp(k.v.str.ptr, "gen", 3) == 0 && v.type == SL_MP_UINT) {
            *gen = v.v.u;
            has_gen = 1;
        }
    }
    if (hit == 1) return 2;
    return hit == 0 && has_gen ? 1 : 0;
}

static int handle_invalidate(store_op *s, sl_ctx *ctx, const uint8_t *ev, size_t len);

/* Whether ev has "type": "cache.invalidate". */
static int is_invalidation(const uint8_t *ev, size_t len)
{
    const uint8_t *p = ev;
    sl_mp_val v;
    return sl_mp_map_find(&p, ev + len, "type", 4) == 1 && sl_mp_read(&p, ev + len, &v) == 0 &&
           v.type == SL_MP_STR && v.v.str.len == 16 &&
           memcmp(v.v.str.ptr, "cache.invalidate", 16) == 0;
}

/*
 * One event of the input: an answered request, or an invalidation. Returns
 * 0, or -1 on a failure (logged).
 */
static int handle_response(store_op *s, sl_ctx *ctx, const uint8_t *ev, size_t len)
{
    const sl_host *h = ctx->host;
    cache_req r;
    if (cache_req_read(ev, len, &r) != 0)
        return h->emit_drop(ctx, s->errors_port, "malformed", "not a map", ev, len, NULL, 0);
    if (!r.response.v && is_invalidation(ev, len)) return handle_invalidate(s, ctx, ev, len);
    if (!r.response.v)
        return h->emit_drop(ctx, s->errors_port, "unanswered",
                            "the event has no response: cache.store reads answered requests "
                            "(its input comes after the endpoints)",
                            ev, len, NULL, 0);
    uint64_t gen = 0;
    int mark = read_mark(&r, &gen);
    /* the response: {status, headers, body} */
    const uint8_t *p = r.response.v, *end = r.response.end;
    sl_mp_val m;
    uint64_t status = 0;
    const uint8_t *hv = NULL, *hend = NULL, *body = NULL, *bend = NULL;
    int ok = sl_mp_read(&p, end, &m) == 0 && m.type == SL_MP_MAP;
    for (uint32_t i = 0; ok && i < m.v.n; i++) {
        sl_mp_val k, v;
        if (sl_mp_read(&p, end, &k) != 0 || k.type != SL_MP_STR) {
            ok = 0;
            break;
        }
        const uint8_t *val = p;
        if (sl_mp_skip(&p, end) != 0) {
            ok = 0;
            break;
        }
        if (k.v.str.len == 6 && memcmp(k.v.str.ptr, "status", 6) == 0) {
            const uint8_t *q = val;
            ok = sl_mp_read(&q, p, &v) == 0 && v.type == SL_MP_UINT && v.v.u >= 100 && v.v.u <= 999;
            status = v.v.u;
        } else if (k.v.str.len == 7 && memcmp(k.v.str.ptr, "headers", 7) == 0) {
            hv = val;
            hend = p;
        } else if (k.v.str.len == 4 && memcmp(k.v.str.ptr, "body", 4) == 0) {
            const uint8_t *q = val;
            ok = sl_mp_read(&q, p, &v) == 0 && (v.type == SL_MP_STR || v.type == SL_MP_BIN);
            body = val;
            bend = p;
        }
    }
    int64_t now = r.has_time ? r.time_ns : h->now(ctx);
    /* a successful write changes what its path shows (RFC 9111 section 4.4) */
    if (ok && status >= 200 && status < 400 && s->cfg.invalidate_on_write && is_unsafe(&r.method) &&
        r.path_is_str && r.path.n && r.path.n <= CACHE_MAX_PATH &&
        !memchr(r.path.p, '?', r.path.n) &&
        sl_cache_table_invalidate(s->t, r.path.p, r.path.n, 0, &s->tc) < 0)
        goto oom;
    if (!ok || mark == 2 || status == 0) { /* not ours to change: respond judges it */
        s->c.passed++;
        return h->emit(ctx, 0, ev, len);
    }
    int get = is_get(&r.method), conditional = (get || is_head(&r.method)) && status == 200;
    static const uint8_t empty_str = 0xa0;
    if (!body) {
        body = &empty_str;
        bend = body + 1;
    }
    const uint8_t *bp = body;
    sl_mp_val bv;
    sl_mp_read(&bp, bend, &bv); /* checked above */
    sl_wbuf_reset(&s->hdrs);
    resp_info info;
    memset(&info, 0, sizeof info);
    uint32_t n_kept = 0;
    int w = hv ? walk_headers(s, hv, hend, &n_kept, &info) : 0;
    if (w < 0) goto oom;
    if (w > 0) {
        s->c.passed++;
        return h->emit(ctx, 0, ev, len);
    }
    /* storable? */
    cache_cc rcc;
    cache_cc_parse(r.cc.p, r.cc.n, &rcc);
    int64_t life = status == 200                    ? s->cfg.ttl_ns
                   : status == 404 || status == 410 ? s->cfg.negative_ttl_ns
                                                    : 0;
    if (info.cc.s_maxage_set) {
        if (info.cc.s_maxage * NS < life) life = info.cc.s_maxage * NS;
    } else if (info.cc.max_age_set && info.cc.max_age * NS < life) {
        life = info.cc.max_age * NS;
    }
    size_t pq_len = 0;
    const char *why = NULL;
    int storable = mark == 1 && get && life > 0 && !rcc.no_store && !info.cc.no_store &&
                   !info.cc.private_ && !info.cc.no_cache && !info.set_cookie && !info.has_ce &&
                   vary_storable(&info);
    if (storable) {
        int k = cache_key(&r, &s->cfg, &s->key, &pq_len, &why);
        if (k < 0) goto oom;
        storable = k == 0;
    }
    if (mark == 1 && !storable) s->c.uncacheable++;
    /* the ETag, the gzip form, the vary field */
    char made[19];
    cache_resp resp = {
        .status = (uint32_t)status, .body = body, .body_len = (uint32_t)(bend - body)};
    if (info.has_etag) { /* the endpoint's, whatever the status: kept */
        resp.etag = info.etag.p;
        resp.etag_len = info.etag.n;
    } else if (conditional) {
        if (get || bv.v.str.len) { /* an empty HEAD body says nothing */
            if (cache_etag_make(bv.v.str.ptr, bv.v.str.len, made) != 0) goto oom;
            resp.etag = made;
            resp.etag_len = 18;
        }
    }
    int accepts = r.ae.n && cache_accepts_gzip(r.ae.p, r.ae.n);
    sl_wbuf_reset(&s->zbuf);
    if (s->cfg.gzip_level > 0 && !info.has_ce && bv.v.str.len >= s->cfg.gzip_min && status != 204 &&
        status != 304 && (storable || accepts)) {
        if (cache_gzip_bin(&s->gz, bv.v.str.ptr, bv.v.str.len, &s->zbuf) != 0) goto oom;
        s->c.compressed++;
        if (s->zbuf.len - 5 < bv.v.str.len) { /* kept only when smaller */
            resp.gz = s->zbuf.data;
            resp.gz_len = (uint32_t)s->zbuf.len;
        }
    }
    if (resp.gz || info.has_vary) {
        int add = resp.gz && !list_has(info.vary.p, info.vary.n, "accept-encoding") &&
                  !list_has(info.vary.p, info.vary.n, "*");
        sl_wbuf_reset(&s->body); /* scratch for the merged value */
        if (info.has_vary && sl_wbuf_append(&s->body, info.vary.p, info.vary.n) != 0) goto oom;
        if (add && sl_wbuf_append(&s->body, info.has_vary ? ", accept-encoding" : "accept-encoding",
                                  info.has_vary ? 17 : 15) != 0)
            goto oom;
        if (sl_mp_write_str(&s->hdrs, "vary", 4) != 0 ||
            sl_mp_write_str(&s->hdrs, (const char *)s->body.data, s->body.len) != 0)
            goto oom;
        n_kept++;
    }
    resp.hdrs = s->hdrs.data ? s->hdrs.data : (const uint8_t *)""; /* no header kept */
    resp.hdrs_len = (uint32_t)s->hdrs.len;
    resp.n_hdrs = n_kept;
    if (storable) {
        int rc = sl_cache_table_put(s->t, s->key.data, s->key.len, pq_len, &resp, now, now + life,
                                    gen, &s->tc);
        if (rc < 0) goto oom;
    }
    /* the answer */
    unsigned flags = mark == 1 ? CACHE_ANSWER_MISS : 0;
    int gz = resp.gz && accepts;
    if (gz) flags |= CACHE_ANSWER_GZIP;
    if (conditional && resp.etag && r.inm.n) {
        char tag[CACHE_ETAG_MAX + 8];
        size_t tn = cache_etag_variant(&resp, gz, tag, sizeof tag);
        if (tn && cache_inm_match(r.inm.p, r.inm.n, tag, tn)) flags |= CACHE_ANSWER_304;
    }
    if (!conditional && !gz && !(flags & CACHE_ANSWER_MISS)) { /* nothing to say */
        s->c.passed++;
        return h->emit(ctx, 0, ev, len);
    }
    if (flags & CACHE_ANSWER_304)
        s->c.not_modified++;
    else if (gz)
        s->c.gzip_served++;
    sl_wbuf_reset(&s->out);
    if (cache_write_answer(&s->out, &r, &resp, flags, 0, NULL, 0) != 0) goto oom;
    return h->emit(ctx, 0, s->out.data, s->out.len);
oom:
    h->log(ctx, SL_LOG_ERROR, "out of memory handling a response of %zu bytes", len);
    return -1;
}

/* ------------------------------------------------------------ invalidation */

/* The strings of array `name` in an invalidation event: each handed to the table. 0, 1 bad, -1. */
static int invalidate_list(store_op *s, const uint8_t *ev, size_t len, const char *name, int prefix,
                           int *seen)
{
    const uint8_t *p = ev, *end = ev + len;
    int f = sl_mp_map_find(&p, end, name, strlen(name));
    if (f < 0) return 1;
    if (f == 0) return 0;
    sl_mp_val a;
    if (sl_mp_read(&p, end, &a) != 0 || a.type != SL_MP_ARRAY) return 1;
    *seen = 1;
    for (uint32_t i = 0; i < a.v.n; i++) {
        sl_mp_val v;
        if (sl_mp_read(&p, end, &v) != 0 || v.type != SL_MP_STR || v.v.str.len > CACHE_MAX_PATH ||
            memchr(v.v.str.ptr, '\0', v.v.str.len))
            return 1;
        if (sl_cache_table_invalidate(s->t, v.v.str.ptr, v.v.str.len, prefix, &s->tc) < 0)
            return -1;
    }
    return 0;
}

static int handle_invalidate(store_op *s, sl_ctx *ctx, const uint8_t *ev, size_t len)
{
    const sl_host *h = ctx->host;
    int seen = 0, a = invalidate_list(s, ev, len, "keys", 0, &seen);
    int b = a ? 0 : invalidate_list(s, ev, len, "prefixes", 1, &seen);
    if (a < 0 || b < 0) {
        h->log(ctx, SL_LOG_ERROR, "out of memory invalidating");
        return -1;
    }
    if (a > 0 || b > 0 || !seen)
        return h->emit_drop(ctx, s->errors_port, "malformed",
                            "a cache.invalidate event has \"keys\" (paths) and/or \"prefixes\", "
                            "arrays of strings",
                            ev, len, NULL, 0);
    return 0;
}

static void flush_metrics(store_op *s, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    counts *n = &s->c;
    cache_table_counts *t = &s->tc;
    if (t->stores) h->count(ctx, "stores", t->stores);
    if (t->evictions) h->count(ctx, "evictions", t->evictions);
    if (t->expired) h->count(ctx, "expired", t->expired);
    if (t->invalidated) h->count(ctx, "invalidated", t->invalidated);
    if (t->stale) h->count(ctx, "stale", t->stale);
    if (n->not_modified) h->count(ctx, "not_modified", n->not_modified);
    if (n->gzip_served) h->count(ctx, "gzip_served", n->gzip_served);
    if (n->compressed) h->count(ctx, "compressed", n->compressed);
    if (n->uncacheable) h->count(ctx, "uncacheable", n->uncacheable);
    if (n->passed) h->count(ctx, "passed", n->passed);
    memset(n, 0, sizeof *n);
    memset(t, 0, sizeof *t);
}

static int store_process(void *state, sl_ctx *ctx, int input, const sl_batch *batch)
{
    store_op *s = state;
    (void)input;
    int rc = SL_OK;
    for (uint32_t i = 0; i < batch->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(batch, i, &len);
        if (handle_response(s, ctx, ev, len) != 0) {
            rc = SL_ERROR;
            break;
        }
    }
    flush_metrics(s, ctx);
    return rc;
}

static void store_destroy(void *state)
{
    store_op *s = state;
    if (!s) return;
    cache_gzip_fini(&s->gz);
    sl_cache_table_release(&s->t);
    sl_wbuf_fini(&s->key);
    sl_wbuf_fini(&s->hdrs);
    sl_wbuf_fini(&s->body);
    sl_wbuf_fini(&s->zbuf);
    sl_wbuf_fini(&s->out);
    free(s);
}

const sl_operator sl_op_cache_store = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "cache.store",
    .summary = "Gateway response cache, response side: stores what `cache` missed, ETag/304, "
               "gzip, invalidation by path and prefix",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .init = store_init,
    .start = store_start,
    .process = store_process,
    .destroy = store_destroy,
};
