/*
 * catalog.c - `catalog`: the gateway's API catalog. Answers the request
 * events (docs/gateway.md) for its paths and lets every other request go on
 * unchanged:
 *
 *   GET <prefix>                  the list: category, q (words), page, per_page
 *   GET <prefix>/{id}             one API (without its document; `docs` links to it)
 *   GET <prefix>/{id}/docs        the API's OpenAPI document (JSON)
 *   <admin_prefix>[/{id}]         create, replace, change, delete (scope admin_scope)
 *
 *   seed: pipelines/gateway/catalog.yaml    APIs brought in at start (catalog_seed.c)
 *   per_page: 20, max_per_page: 100
 *
 * Ports: `out` (requests that are not the catalog's, unchanged), `answered`
 * (the catalog's requests with `response` and, when about one API, `api` set: to
 * respond), `invalidate` (after each change, one cache.invalidate event
 * naming exactly the paths whose answers changed), `errors` (events that are
 * not requests).
 *
 * The records and their indexes live in the instance's LMDB databases
 * (catalog_store.c). Events are handled in order and each admin write is
 * committed before the next event is read, so a read right after a write,
 * even in the same batch, sees it. All writes go through one instance, so
 * parallelism > 1 is refused (each instance would have its own store).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "diag.h"

static const sl_param params[] = {
    {"seed", SL_PARAM_STRING, NULL, 0,
     "seed file (YAML) {apis: [{id, name, category, openapi, ...}]}: brought into the catalog "
     "at start (added, and updated or removed while no admin write took them over); relative "
     "to the working directory",
     NULL},
    {"prefix", SL_PARAM_STRING, "/apis", 0,
     "path of the catalog: GET <prefix>, <prefix>/{id}, <prefix>/{id}/docs", NULL},
    {"admin_prefix", SL_PARAM_STRING, NULL, 0,
     "path of the admin API (POST <admin_prefix>, PUT/PATCH/DELETE <admin_prefix>/{id}); "
     "absent: no admin API",
     NULL},
    {"admin_scope", SL_PARAM_STRING, "admin", 0,
     "the scope (in the request's `scopes`, set by auth) the admin API requires", NULL},
    {"per_page", SL_PARAM_INT, "20", 0, "items per page of a list without per_page", NULL},
    {"max_per_page", SL_PARAM_INT, "100", 0,
     "the largest per_page a request may ask for (1 to "
     "1000)",
     NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "answered", "invalidate", "errors", NULL};

/* ------------------------------------------------------------ answers */

int cat_fail(catalog *c, int status, const char *fmt, ...)
{
    static const struct {
        int status;
        const char *error;
    } names[] = {{400, "bad request"},        {403, "forbidden"}, {404, "not found"},
                 {405, "method not allowed"}, {409, "conflict"},  {413, "payload too large"},
                 {500, "internal error"}};
    const char *error = "error";
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].status == status) error = names[i].error;
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof detail) n = n < 0 ? 0 : (int)sizeof detail - 1;
    sl_wbuf *b = &c->reply.body;
    sl_wbuf_reset(b);
    c->reply.status = status;
    c->reply.n_hdr = 0;
    c->reply.api[0] = '\0';
    return sl_wbuf_append(b, "{\"error\":", 9) | sl_json_write_string(b, error, strlen(error)) |
           sl_wbuf_append(b, ",\"detail\":", 10) | sl_json_write_string(b, detail, (size_t)n) |
           sl_wbuf_append(b, "}", 1);
}

void cat_header(catalog *c, const char *name, const char *fmt, ...)
{
    cat_reply *r = &c->reply;
    if (r->n_hdr == 3) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->hdr_val[r->n_hdr], sizeof r->hdr_val[0], fmt, ap);
    va_end(ap);
    r->hdr_name[r->n_hdr++] = name;
}

void cat_ok(catalog *c, int status)
{
    c->reply.status = status;
    c->reply.n_hdr = 0;
}

int cat_store_failed(catalog *c, sl_ctx *ctx)
{
    ctx->host->kv_abort(ctx);
    c->c.store_errors++;
    return cat_fail(c, 500, "the catalog store failed (the gateway's log says why)");
}

int cat_parse_json(catalog *c, const char *s, size_t n, sl_wbuf *out, char *err, size_t errlen)
{
    sl_wbuf *pad = &c->pad;
    sl_wbuf_reset(pad);
    sl_wbuf_reset(out);
    if (sl_wbuf_reserve(pad, n + SL_JSON_PADDING) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (n) memcpy(pad->data, s, n);
    memset(pad->data + n, 0, SL_JSON_PADDING);
    return sl_json_to_msgpack(c->jp, (const char *)pad->data, n, n + SL_JSON_PADDING, 0, out, err,
                              errlen);
}

/* ------------------------------------------------------------ configuration */

/* A path prefix: starts with '/', no trailing '/', no '*', '?' or '%'. NULL (reported) if not. */
static const char *read_path(sl_ctx *ctx, const char *name)
{
    const sl_host *h = ctx->host;
    const sl_node *n = h->param(ctx, name);
    if (!n) return NULL;
    const char *s = h->node_kind(n) == SL_NODE_SCALAR ? h->node_str(n) : NULL;
    size_t len = s ? strlen(s) : 0;
    if (!s || len < 2 || s[0] != '/' || s[len - 1] == '/' || len > CAT_MAX_PREFIX ||
        strpbrk(s, "*?%# ")) {
        h->config_error(ctx, n,
                        "%s must be a path like /apis: starting with '/', without a trailing "
                        "'/', '*', '?', '%%', '#' or spaces, at most %d bytes",
                        name, CAT_MAX_PREFIX);
        return "";
    }
    return s;
}

/* Whether path a is b or below it (segment-wise: /apis is not below /api). */
static int below(const char *a, const char *b)
{
    size_t n = strlen(b);
    return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

static int read_int(sl_ctx *ctx, const char *name, int64_t lo, int64_t hi, uint32_t *out)
{
    const sl_host *h = ctx->host;
    const sl_node *n = h->param(ctx, name);
    int64_t v = 0;
    if (!n || h->node_int(n, &v) != 0 || v < lo || v > hi) {
        h->config_error(ctx, n, "%s must be a whole number from %lld to %lld", name, (long long)lo,
                        (long long)hi);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int catalog_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    catalog *c = calloc(1, sizeof *c);
    *state = c;
    if (!c || !(c->jp = sl_json_parser_new())) {
        h->config_error(ctx, NULL, "catalog: out of memory");
        return SL_ERROR;
    }
    c->answered_port = h->port(ctx, "answered");
    c->invalidate_port = h->port(ctx, "invalidate");
    c->errors_port = h->port(ctx, "errors");
    int bad = 0;
    uint32_t n_inst = 1;
    h->instance(ctx, &n_inst);
    if (n_inst > 1) {
        h->config_error(ctx, NULL,
                        "catalog cannot run with parallelism %u: each instance would have its "
                        "own store, so an API created through one would be missing from the "
                        "others' answers; use parallelism: 1 (docs/gateway/catalog.md)",
                        n_inst);
        bad = 1;
    }
    c->prefix = read_path(ctx, "prefix");
    c->admin = read_path(ctx, "admin_prefix");
    bad |= !c->prefix || !*c->prefix || (c->admin && !*c->admin);
    if (!bad && c->admin && (below(c->admin, c->prefix) || below(c->prefix, c->admin))) {
        h->config_error(ctx, h->param(ctx, "admin_prefix"),
                        "admin_prefix '%s' and prefix '%s' overlap: one would answer the other's "
                        "requests",
                        c->admin, c->prefix);
        bad = 1;
    }
    c->prefix_len = c->prefix ? strlen(c->prefix) : 0;
    c->admin_len = c->admin ? strlen(c->admin) : 0;
    const sl_node *sc = h->param(ctx, "admin_scope");
    c->admin_scope = sc ? h->node_str(sc) : NULL;
    c->admin_scope_len = c->admin_scope ? strlen(c->admin_scope) : 0;
    if (!c->admin_scope || c->admin_scope_len == 0 || c->admin_scope_len > 128) {
        h->config_error(ctx, sc, "admin_scope must be a scope name of 1 to 128 bytes");
        bad = 1;
    }
    bad |= read_int(ctx, "max_per_page", 1, CAT_MAX_PER_PAGE_LIMIT, &c->max_per_page) != 0;
    if (read_int(ctx, "per_page", 1, CAT_MAX_PER_PAGE_LIMIT, &c->per_page) != 0) {
        bad = 1;
    } else if (c->max_per_page && c->per_page > c->max_per_page) {
        h->config_error(ctx, h->param(ctx, "per_page"),
                        "per_page (%u) must not exceed "
                        "max_per_page (%u)",
                        c->per_page, c->max_per_page);
        bad = 1;
    }
    const sl_node *seed = h->param(ctx, "seed");
    if (seed) {
        c->seed_path = h->node_kind(seed) == SL_NODE_SCALAR ? h->node_str(seed) : NULL;
        if (!c->seed_path || !*c->seed_path) {
            h->config_error(ctx, seed, "seed must be the path of a YAML file");
            bad = 1;
        } else if (cat_seed_load(c, ctx, seed) != 0) {
            bad = 1;
        }
    }
    return bad ? SL_ERROR : SL_OK;
}

static int catalog_start(void *state, sl_ctx *ctx)
{
    catalog *c = state;
    const sl_host *h = ctx->host;
    if (cat_store_open(c, ctx) != 0) {
        h->log(ctx, SL_LOG_ERROR, "catalog store: cannot open the databases");
        return SL_ERROR;
    }
    if (c->seed_path && cat_store_seed(c, ctx, h->now(ctx)) != 0) return SL_ERROR;
    /* the seed changed answers a cache may hold: say so as soon as the stage runs */
    if (c->pending_invalidate) h->timer_set(ctx, h->monotonic(ctx));
    return SL_OK;
}

/* ------------------------------------------------------------ events out */

/* Append to out the pairs of event ev except those named in names (n of them). */
static int copy_pairs(sl_wbuf *out, const uint8_t *ev, size_t len, const char *const *names,
                      size_t n, uint32_t *kept)
{
    const uint8_t *p = ev, *end = ev + len;
    sl_mp_val m;
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) return -1;
    *kept = 0;
    for (uint32_t i = 0; i < m.v.n; i++) {
        const uint8_t *pair = p, *kp = p;
        sl_mp_val k;
        if (sl_mp_read(&kp, end, &k) != 0 || sl_mp_skip(&p, end) != 0 || sl_mp_skip(&p, end) != 0)
            return -1;
        int drop = 0;
        for (size_t j = 0; j < n && k.type == SL_MP_STR && !drop; j++)
            drop =
                k.v.str.len == strlen(names[j]) && memcmp(k.v.str.ptr, names[j], k.v.str.len) == 0;
        if (drop) continue;
        if (sl_wbuf_append(out, pair, (size_t)(p - pair)) != 0) return -1;
        (*kept)++;
    }
    return 0;
}

/*
 * Emit ev on `answered` with `response` (replacing any) and, when the answer
 * is about one API, `api` (replacing one routing set). The rest of the event
 * stays as it came, in its order: conn for respond, a cache's mark, ...
 */
static int answer(catalog *c, sl_ctx *ctx, const uint8_t *ev, size_t len)
{
    static const char *const mine[] = {"response", "api"};
    const cat_reply *r = &c->reply;
    sl_wbuf *pairs = &c->pairs, *out = &c->out;
    sl_wbuf_reset(pairs);
    uint32_t kept, extra = r->api[0] ? 2 : 1;
    if (copy_pairs(pairs, ev, len, mine, r->api[0] ? 2 : 1, &kept) != 0) return -1;
    int has_body = r->body.len > 0;
    sl_wbuf_reset(out);
    int bad = sl_mp_write_map(out, kept + extra) | sl_wbuf_append(out, pairs->data, pairs->len) |
              sl_mp_write_cstr(out, "response") | sl_mp_write_map(out, 3) |
              sl_mp_write_cstr(out, "status") | sl_mp_write_uint(out, (uint64_t)r->status) |
              sl_mp_write_cstr(out, "headers") |
              sl_mp_write_map(out, (uint32_t)r->n_hdr + (has_body ? 1u : 0u));
    if (has_body)
        bad |= sl_mp_write_cstr(out, "content-type") | sl_mp_write_cstr(out, "application/json");
    for (int i = 0; i < r->n_hdr; i++)
        bad |= sl_mp_write_cstr(out, r->hdr_name[i]) | sl_mp_write_cstr(out, r->hdr_val[i]);
    bad |= sl_mp_write_cstr(out, "body") |
           sl_mp_write_str(out, has_body ? (const char *)r->body.data : "", r->body.len);
    if (r->api[0]) bad |= sl_mp_write_cstr(out, "api") | sl_mp_write_cstr(out, r->api);
    if (bad) return -1;
    return ctx->host->emit(ctx, c->answered_port, out->data, out->len);
}

/*
 * Emit one cache.invalidate event: keys (exact paths, whatever the query)
 * are the list and, for one API (id non-NULL), its two paths; with id NULL
 * (the seed changed several), every path below the prefix by `prefixes`.
 */
static int invalidate(catalog *c, sl_ctx *ctx, const char *id)
{
    const sl_host *h = ctx->host;
    sl_wbuf *b = &c->out;
    char eid[160], path[CAT_MAX_PREFIX + CAT_MAX_ID + 8];
    const char *name = h->name(ctx);
    snprintf(eid, sizeof eid, "%s-%llu", name, (unsigned long long)c->generation);
    sl_wbuf_reset(b);
    int bad = sl_mp_write_map(b, 7) | sl_mp_write_cstr(b, "id") | sl_mp_write_cstr(b, eid) |
              sl_mp_write_cstr(b, "type") | sl_mp_write_cstr(b, "cache.invalidate") |
              sl_mp_write_cstr(b, "source") | sl_mp_write_cstr(b, name) |
              sl_mp_write_cstr(b, "time") | sl_mp_write_timestamp(b, h->now(ctx)) |
              sl_mp_write_cstr(b, "generation") | sl_mp_write_uint(b, c->generation) |
              sl_mp_write_cstr(b, "keys") | sl_mp_write_array(b, id ? 3 : 1) |
              sl_mp_write_str(b, c->prefix, c->prefix_len);
    if (id) {
        int n = snprintf(path, sizeof path, "%s/%s", c->prefix, id);
        bad |= sl_mp_write_str(b, path, (size_t)n);
        n = snprintf(path, sizeof path, "%s/%s/docs", c->prefix, id);
        bad |= sl_mp_write_str(b, path, (size_t)n);
    }
    bad |= sl_mp_write_cstr(b, "prefixes");
    if (id) {
        bad |= sl_mp_write_array(b, 0);
    } else {
        int n = snprintf(path, sizeof path, "%s/", c->prefix);
        bad |= sl_mp_write_array(b, 1) | sl_mp_write_str(b, path, (size_t)n);
    }
    if (bad) return -1;
    return h->emit(ctx, c->invalidate_port, b->data, b->len);
}

static int flush_pending(catalog *c, sl_ctx *ctx)
{
    if (!c->pending_invalidate) return 0;
    c->pending_invalidate = 0;
    return invalidate(c, ctx, NULL);
}

/* ------------------------------------------------------------ the data path */

static int key_is(const sl_mp_val *k, const char *s, size_t n)
{
    return k->type == SL_MP_STR && k->v.str.len == n && memcmp(k->v.str.ptr, s, n) == 0;
}

/* Read the fields the catalog needs. NULL, or why the event is not a request. */
static const char *read_request(const uint8_t *ev, size_t len, cat_request *r)
{
    const uint8_t *p = ev, *end = ev + len;
    sl_mp_val m;
    memset(r, 0, sizeof *r);
    r->end = end;
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) return "the event is not a map";
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k, v;
        if (sl_mp_read(&p, end, &k) != 0) return "the event is not valid msgpack";
        const uint8_t *vs = p;
        if (sl_mp_read(&vs, end, &v) != 0) return "the event is not valid msgpack";
        vs = p;
        if (key_is(&k, "method", 6)) {
            if (v.type != SL_MP_STR) return "method is not a string";
            r->method = (cat_str){v.v.str.ptr, v.v.str.len};
        } else if (key_is(&k, "path", 4)) {
            if (v.type != SL_MP_STR) return "path is not a string";
            r->path = (cat_str){v.v.str.ptr, v.v.str.len};
        } else if (key_is(&k, "body", 4)) {
            if (v.type == SL_MP_STR || v.type == SL_MP_BIN) {
                r->body = (cat_str){v.v.str.ptr, v.v.str.len};
                r->has_body = 1;
            } else if (v.type != SL_MP_NIL) {
                return "body is not a string";
            }
        } else if (key_is(&k, "query", 5)) {
            if (v.type != SL_MP_MAP && v.type != SL_MP_NIL) return "query is not a map";
            r->query = v.type == SL_MP_MAP ? vs : NULL;
        } else if (key_is(&k, "scopes", 6)) {
            r->scopes = v.type == SL_MP_ARRAY ? vs : NULL;
        }
        if (sl_mp_skip(&p, end) != 0) return "the event is not valid msgpack";
    }
    if (!r->method.n) return "the request has no method";
    if (!r->path.n || r->path.p[0] != '/') return "the request has no path (starting with '/')";
    return NULL;
}

static int is_get(const cat_request *r)
{
    return r->method.n == 3 && !memcmp(r->method.p, "GET", 3);
}

/* GET <prefix>/{id} (docs 0) or <prefix>/{id}/docs (docs 1). */
static int get_api(catalog *c, sl_ctx *ctx, const char *id, size_t n, int docs)
{
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 0) != 0) return cat_store_failed(c, ctx);
    const uint8_t *v;
    size_t vlen;
    int r =
        docs ? cat_store_doc(c, ctx, id, n, &v, &vlen) : cat_store_get(c, ctx, id, n, &v, &vlen);
    if (r < 0) return cat_store_failed(c, ctx);
    if (r == 0) {
        h->kv_abort(ctx);
        return cat_fail(c, 404, "no API '%.*s' in the catalog (GET %s lists them)", (int)n, id,
                        c->prefix);
    }
    sl_wbuf *b = &c->reply.body;
    sl_wbuf_reset(b);
    int bad = docs ? sl_wbuf_append(b, v, vlen) : cat_render_full(c, v, vlen, 0, NULL, 0, b);
    h->kv_abort(ctx);
    if (bad) return -1;
    cat_ok(c, 200);
    snprintf(c->reply.api, sizeof c->reply.api, "%.*s", (int)n, id);
    return 0;
}

/* Answer a request below the prefix (rest: what follows "<prefix>/"). */
static int public_item(catalog *c, sl_ctx *ctx, const cat_request *r, const char *rest, size_t rlen)
{
    const char *slash = memchr(rest, '/', rlen);
    size_t idn = slash ? (size_t)(slash - rest) : rlen;
    int docs = slash && rlen - idn == 5 && memcmp(slash, "/docs", 5) == 0;
    if ((slash && !docs) || !cat_id_valid(rest, idn))
        return cat_fail(c, 404, "no such catalog resource (%s/{id} or %s/{id}/docs)", c->prefix,
                        c->prefix);
    if (!is_get(r)) {
        if (cat_fail(c, 405, "this resource takes GET") != 0) return -1;
        cat_header(c, "allow", "GET");
        return 0;
    }
    return get_api(c, ctx, rest, idn, docs);
}

static int handle(catalog *c, sl_ctx *ctx, const uint8_t *ev, size_t len)
{
    const sl_host *h = ctx->host;
    cat_request r;
    const char *why = read_request(ev, len, &r);
    if (why) return h->emit_drop(ctx, c->errors_port, "malformed", why, ev, len, NULL, 0);
    const char *path = r.path.p;
    size_t plen = r.path.n;
    int admin = c->admin && plen >= c->admin_len && !memcmp(path, c->admin, c->admin_len) &&
                (plen == c->admin_len || path[c->admin_len] == '/');
    int list = plen == c->prefix_len && !memcmp(path, c->prefix, plen);
    int item = !list && plen > c->prefix_len + 1 && !memcmp(path, c->prefix, c->prefix_len) &&
               path[c->prefix_len] == '/';
    if (plen == c->prefix_len + 1 && !memcmp(path, c->prefix, c->prefix_len) &&
        path[c->prefix_len] == '/')
        item = 1; /* "<prefix>/": the catalog's, and not found */
    if (!admin && !list && !item) {
        c->c.passed++;
        return h->emit(ctx, 0, ev, len);
    }
    c->c.requests++;
    memset(c->reply.api, 0, sizeof c->reply.api);
    c->reply.invalidate = 0;
    int rc;
    if (admin) {
        rc = cat_admin(c, ctx, &r, path + c->admin_len, plen - c->admin_len);
        if (rc == 0) cat_header(c, "cache-control", "no-store");
    } else if (list) {
        if (is_get(&r)) {
            rc = cat_search(c, ctx, &r);
        } else {
            rc = cat_fail(c, 405, "this resource takes GET");
            if (rc == 0) cat_header(c, "allow", "GET");
        }
    } else {
        rc = public_item(c, ctx, &r, path + c->prefix_len + 1, plen - c->prefix_len - 1);
    }
    if (rc != 0) return -1;
    switch (c->reply.status) {
    case 400:
        c->c.bad_requests++;
        break;
    case 404:
        c->c.not_found++;
        break;
    default:
        break;
    }
    /* the change is durable: tell the cache before answering the writer */
    if (c->reply.invalidate && invalidate(c, ctx, c->reply.inv) != 0) return -1;
    return answer(c, ctx, ev, len);
}

static void flush_counts(catalog *c, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    cat_counts *k = &c->c;
    if (k->requests) h->count(ctx, "requests", k->requests);
    if (k->not_found) h->count(ctx, "not_found", k->not_found);
    if (k->admin_writes) h->count(ctx, "admin_writes", k->admin_writes);
    if (k->bad_requests) h->count(ctx, "bad_requests", k->bad_requests);
    if (k->forbidden) h->count(ctx, "forbidden", k->forbidden);
    if (k->passed) h->count(ctx, "passed", k->passed);
    if (k->store_errors) h->count(ctx, "store_errors", k->store_errors);
    memset(k, 0, sizeof *k);
    if (SL_HOST_HAS(h, gauge)) h->gauge(ctx, "state_entries", (int64_t)c->n_apis);
}

static int catalog_process(void *state, sl_ctx *ctx, int input, const sl_batch *batch)
{
    catalog *c = state;
    (void)input;
    if (!c->checked_ports) { /* port_connected is for the stage thread */
        c->checked_ports = 1;
        if (!ctx->host->port_connected(ctx, c->answered_port))
            ctx->host->log(ctx, SL_LOG_WARN,
                           "nothing reads port 'answered': catalog requests "
                           "get no answer and time out");
    }
    int rc = flush_pending(c, ctx) == 0 ? SL_OK : SL_ERROR;
    for (uint32_t i = 0; i < batch->count && rc == SL_OK; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(batch, i, &len);
        if (handle(c, ctx, ev, len) != 0) rc = SL_ERROR;
    }
    if (rc != SL_OK)
        ctx->host->log(ctx, SL_LOG_ERROR, "out of memory, or the pipeline is stopping");
    flush_counts(c, ctx);
    return rc;
}

static int catalog_on_timer(void *state, sl_ctx *ctx, int64_t now)
{
    catalog *c = state;
    (void)now;
    flush_counts(c, ctx);
    return flush_pending(c, ctx) == 0 ? SL_OK : SL_ERROR;
}

static int catalog_finish(void *state, sl_ctx *ctx)
{
    return flush_pending(state, ctx) == 0 ? SL_OK : SL_ERROR;
}

static void catalog_destroy(void *state)
{
    catalog *c = state;
    if (!c) return;
    sl_json_parser_destroy(&c->jp);
    sl_wbuf *bufs[] = {&c->seed, &c->reply.body, &c->out,      &c->pairs,     &c->pad,
                       &c->body, &c->keep,       &c->keep_doc, &c->rec,       &c->doc,
                       &c->keys, &c->ids,        &c->ids2,     &c->words_buf, &c->qwords};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        sl_wbuf_fini(bufs[i]);
    free(c->seed_ends);
    free(c->hits);
    free(c->set);
    free(c);
}

const sl_operator sl_op_catalog = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "catalog",
    .summary = "Gateway API catalog: list and search APIs by category and words, one API and "
               "its OpenAPI document, an admin API, cache invalidation events",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .init = catalog_init,
    .start = catalog_start,
    .process = catalog_process,
    .on_timer = catalog_on_timer,
    .finish = catalog_finish,
    .destroy = catalog_destroy,
};
