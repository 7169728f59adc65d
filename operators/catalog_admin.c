/*
 * catalog_admin.c - the catalog's admin API, below `admin_prefix` (P):
 *
 *   POST   P          the API (JSON: id, name, category, openapi, ...)   201, location
 *   GET    P/{id}     the API with its OpenAPI document and origin       200
 *   PUT    P/{id}     replace it (the same members as POST)              200
 *   PATCH  P/{id}     change some members (JSON merge patch, RFC 7396)   200
 *   DELETE P/{id}     remove it                                          204
 *
 * Only for requests whose `scopes` (set by auth) hold `admin_scope`: 403
 * otherwise, before anything else is looked at (auth checks it too; this is
 * the second lock). 400 for a body that is not a valid API, 404 for an
 * unknown id, 405 with `allow`, 409 for POST of an id that exists, 413 for
 * a body over 2 MiB, 500 when the store fails.
 *
 * Each write is one transaction: the record, its document, its index
 * entries (old ones out, new ones in), the tombstone and the generation,
 * committed and synced before the answer. The answer then says which API
 * changed (reply.inv), and catalog.c emits the cache invalidation for it.
 */
#include <stdio.h>
#include <string.h>

#include "catalog.h"

static int meth(const cat_str *m, const char *want)
{
    return m->n == strlen(want) && memcmp(m->p, want, m->n) == 0;
}

static int not_allowed(catalog *c, const char *allow)
{
    if (cat_fail(c, 405, "this resource takes %s", allow) != 0) return -1;
    cat_header(c, "allow", "%s", allow);
    return 0;
}

/* Commit and sync; a sync failure is logged (the change is made, maybe not yet durable). */
static int commit(catalog *c, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    if (h->kv_commit(ctx) != 0) {
        c->c.store_errors++;
        return -1;
    }
    if (h->kv_sync(ctx) != 0)
        h->log(ctx, SL_LOG_WARN, "catalog store: sync failed: a crash may lose the last change");
    return 0;
}

static int has_scope(const catalog *c, const cat_request *r)
{
    if (!r->scopes) return 0;
    const uint8_t *p = r->scopes;
    sl_mp_val arr;
    if (sl_mp_read(&p, r->end, &arr) != 0 || arr.type != SL_MP_ARRAY) return 0;
    for (uint32_t i = 0; i < arr.v.n; i++) {
        const uint8_t *q = p;
        sl_mp_val s;
        if (sl_mp_read(&q, r->end, &s) != 0 || sl_mp_skip(&p, r->end) != 0) return 0;
        if (s.type == SL_MP_STR && s.v.str.len == c->admin_scope_len &&
            memcmp(s.v.str.ptr, c->admin_scope, s.v.str.len) == 0)
            return 1;
    }
    return 0;
}

/*
 * Parse the request's JSON body into c->body and read it as an API into a.
 * 0; 1 after setting a 400/413 answer; -1 out of memory.
 */
static int read_body(catalog *c, const cat_request *r, cat_api *a)
{
    char err[160];
    if (!r->has_body || r->body.n == 0)
        return cat_fail(c, 400, "the body must be the API as a JSON object") ? -1 : 1;
    if (r->body.n > CAT_MAX_BODY)
        return cat_fail(c, 413, "the body has %u bytes; at most %u are taken", r->body.n,
                        CAT_MAX_BODY)
                   ? -1
                   : 1;
    if (cat_parse_json(c, r->body.p, r->body.n, &c->body, err, sizeof err) != 0)
        return cat_fail(c, 400, "the body is not JSON: %s", err) ? -1 : 1;
    cat_err e;
    if (cat_api_read(c->body.data, c->body.len, CAT_FROM_BODY, a, &e) != 0)
        return cat_fail(c, 400, "%s", e.msg) ? -1 : 1;
    return 0;
}

/* The OpenAPI document of a (from a body) as JSON into c->doc. 0; 1 after a 413; -1. */
static int doc_of(catalog *c, const cat_api *a)
{
    sl_wbuf_reset(&c->doc);
    if (sl_msgpack_to_json(a->openapi, a->openapi_len, &c->doc) != 0) return -1;
    if (c->doc.len > CAT_MAX_DOC)
        return cat_fail(c, 413,
                        "the OpenAPI document has %zu bytes as JSON; at most %u are "
                        "taken",
                        c->doc.len, CAT_MAX_DOC)
                   ? -1
                   : 1;
    return 0;
}

/* Whether the body's id (if any) is the path's; 1 after a 400 if not. */
static int same_id(catalog *c, cat_api *a, const char *id, size_t n)
{
    if (a->have & CAT_F_ID) {
        if (a->id.n != n || memcmp(a->id.p, id, n) != 0)
            return cat_fail(c, 400,
                            "the body's id '%.*s' is not the path's '%.*s' (an id does "
                            "not change: create the new one and delete the old)",
                            (int)a->id.n, a->id.p, (int)n, id)
                       ? -1
                       : 1;
    }
    a->id = (cat_str){id, (uint32_t)n};
    a->have |= CAT_F_ID;
    return 0;
}

/* After a committed write of id: the answer (the record in c->rec, or none) and the invalidation.
 */
static int written(catalog *c, const char *id, size_t n, int status, uint64_t gen)
{
    c->generation = gen;
    c->c.admin_writes++;
    sl_wbuf *b = &c->reply.body;
    sl_wbuf_reset(b);
    if (status != 204 && cat_render_full(c, c->rec.data, c->rec.len, 0, NULL, 0, b) != 0) return -1;
    cat_ok(c, status);
    snprintf(c->reply.api, sizeof c->reply.api, "%.*s", (int)n, id);
    snprintf(c->reply.inv, sizeof c->reply.inv, "%.*s", (int)n, id);
    c->reply.invalidate = 1;
    if (status == 201) cat_header(c, "location", "%s/%.*s", c->prefix, (int)n, id);
    return 0;
}

/* ------------------------------------------------------------ the endpoints */

static int create(catalog *c, sl_ctx *ctx, const cat_request *r)
{
    const sl_host *h = ctx->host;
    cat_api a;
    cat_err e;
    int rc = read_body(c, r, &a);
    if (rc != 0) return rc < 0 ? -1 : 0;
    if (cat_api_complete(&a, &e) != 0) return cat_fail(c, 400, "%s", e.msg);
    if ((rc = doc_of(c, &a)) != 0) return rc < 0 ? -1 : 0;
    if (h->kv_begin(ctx, 1) != 0) return cat_store_failed(c, ctx);
    const uint8_t *rec;
    size_t rlen;
    int r1 = cat_store_get(c, ctx, a.id.p, a.id.n, &rec, &rlen);
    if (r1 < 0) return cat_store_failed(c, ctx);
    if (r1 == 1) {
        h->kv_abort(ctx);
        return cat_fail(c, 409, "API '%.*s' exists (PUT %s/%.*s replaces it)", (int)a.id.n, a.id.p,
                        c->admin, (int)a.id.n, a.id.p);
    }
    uint64_t gen;
    if (cat_store_untombstone(c, ctx, a.id.p, a.id.n) != 0 ||
        cat_store_put(c, ctx, &a, c->doc.data, c->doc.len, CAT_ORIGIN_ADMIN, 0, h->now(ctx), NULL,
                      0) != 0 ||
        cat_store_bump(c, ctx, &gen) != 0)
        return cat_store_failed(c, ctx);
    c->n_apis = h->kv_count(ctx, c->apis);
    if (commit(c, ctx) != 0) return cat_fail(c, 500, "the catalog store failed (see the log)");
    return written(c, a.id.p, a.id.n, 201, gen);
}

static int show(catalog *c, sl_ctx *ctx, const char *id, size_t n)
{
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 0) != 0) return cat_store_failed(c, ctx);
    const uint8_t *rec, *doc;
    size_t rlen, dlen;
    int r1 = cat_store_get(c, ctx, id, n, &rec, &rlen);
    int r2 = r1 == 1 ? cat_store_doc(c, ctx, id, n, &doc, &dlen) : 0;
    if (r1 < 0 || r2 < 0) return cat_store_failed(c, ctx);
    if (r1 == 0) {
        h->kv_abort(ctx);
        return cat_fail(c, 404, "no API '%.*s'", (int)n, id);
    }
    sl_wbuf_reset(&c->reply.body);
    int bad = cat_render_full(c, rec, rlen, 1, r2 == 1 ? (const char *)doc : NULL,
                              r2 == 1 ? dlen : 0, &c->reply.body);
    h->kv_abort(ctx);
    if (bad) return -1;
    cat_ok(c, 200);
    snprintf(c->reply.api, sizeof c->reply.api, "%.*s", (int)n, id);
    return 0;
}

/* PUT (patch 0) or PATCH (patch 1) of id. */
static int change(catalog *c, sl_ctx *ctx, const cat_request *r, const char *id, size_t n,
                  int patch)
{
    const sl_host *h = ctx->host;
    cat_api b, m;
    cat_err e;
    int rc = read_body(c, r, &b);
    if (rc != 0) return rc < 0 ? -1 : 0;
    if ((rc = same_id(c, &b, id, n)) != 0) return rc < 0 ? -1 : 0;
    if (patch) {
        unsigned req = b.nulls & CAT_F_REQUIRED;
        if (req)
            return cat_fail(c, 400,
                            "'%s' cannot be removed (id, name, category and openapi are "
                            "required)",
                            req & CAT_F_NAME       ? "name"
                            : req & CAT_F_CATEGORY ? "category"
                            : req & CAT_F_OPENAPI  ? "openapi"
                                                   : "id");
        if (!((b.have & ~CAT_F_ID) | b.nulls))
            return cat_fail(c, 400, "give at least one member to change");
    } else if (cat_api_complete(&b, &e) != 0) {
        return cat_fail(c, 400, "%s (PUT replaces the whole API; PATCH changes some members)",
                        e.msg);
    }
    if ((b.have & CAT_F_OPENAPI) && (rc = doc_of(c, &b)) != 0) return rc < 0 ? -1 : 0;
    if (h->kv_begin(ctx, 1) != 0) return cat_store_failed(c, ctx);
    const uint8_t *rec;
    size_t rlen;
    int r1 = cat_store_get(c, ctx, id, n, &rec, &rlen);
    if (r1 < 0) return cat_store_failed(c, ctx);
    if (r1 == 0) {
        h->kv_abort(ctx);
        return cat_fail(c, 404, "no API '%.*s'%s", (int)n, id, patch ? "" : " (POST creates one)");
    }
    /* stored values are borrowed from the transaction and the first write ends that: copy */
    sl_wbuf_reset(&c->keep);
    if (sl_wbuf_append(&c->keep, rec, rlen) != 0) {
        h->kv_abort(ctx);
        return -1;
    }
    m = b;
    if (patch) {
        cat_api o;
        if (cat_api_read(c->keep.data, c->keep.len, CAT_FROM_STORE, &o, &e) != 0) {
            h->log(ctx, SL_LOG_ERROR, "catalog store: the record of '%.*s' is malformed: %s",
                   (int)n, id, e.msg);
            return cat_store_failed(c, ctx);
        }
        m = o;
        unsigned set = b.have, clear = b.nulls;
#define TAKE(bit, f)                                                                               \
    do {                                                                                           \
        if (set & (bit)) m.f = b.f;                                                                \
        if (clear & (bit)) m.f = (cat_str){"", 0};                                                 \
    } while (0)
        TAKE(CAT_F_NAME, name);
        TAKE(CAT_F_SUMMARY, summary);
        TAKE(CAT_F_DESCRIPTION, description);
        TAKE(CAT_F_CATEGORY, category);
        TAKE(CAT_F_VERSION, version);
        TAKE(CAT_F_BASE_URL, base_url);
#undef TAKE
        if (set & CAT_F_TAGS) m.tags = b.tags, m.tags_len = b.tags_len;
        if (clear & CAT_F_TAGS) m.tags = NULL, m.tags_len = 0;
        if (set & CAT_F_PLANS) m.plans = b.plans, m.plans_len = b.plans_len;
        if (clear & CAT_F_PLANS) m.plans = NULL, m.plans_len = 0;
        if (!(set & CAT_F_OPENAPI)) {
            const uint8_t *doc;
            size_t dlen;
            if (cat_store_doc(c, ctx, id, n, &doc, &dlen) != 1) return cat_store_failed(c, ctx);
            sl_wbuf_reset(&c->doc);
            if (sl_wbuf_append(&c->doc, doc, dlen) != 0) {
                h->kv_abort(ctx);
                return -1;
            }
        }
    }
    uint64_t gen;
    if (cat_store_put(c, ctx, &m, c->doc.data, c->doc.len, CAT_ORIGIN_ADMIN, 0, h->now(ctx),
                      c->keep.data, c->keep.len) != 0 ||
        cat_store_bump(c, ctx, &gen) != 0)
        return cat_store_failed(c, ctx);
    if (commit(c, ctx) != 0) return cat_fail(c, 500, "the catalog store failed (see the log)");
    return written(c, id, n, 200, gen);
}

static int remove_api(catalog *c, sl_ctx *ctx, const char *id, size_t n)
{
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 1) != 0) return cat_store_failed(c, ctx);
    const uint8_t *rec;
    size_t rlen;
    int r1 = cat_store_get(c, ctx, id, n, &rec, &rlen);
    if (r1 < 0) return cat_store_failed(c, ctx);
    if (r1 == 0) {
        h->kv_abort(ctx);
        return cat_fail(c, 404, "no API '%.*s'", (int)n, id);
    }
    sl_wbuf_reset(&c->keep);
    if (sl_wbuf_append(&c->keep, rec, rlen) != 0) {
        h->kv_abort(ctx);
        return -1;
    }
    uint64_t gen;
    if (cat_store_remove(c, ctx, c->keep.data, c->keep.len) != 0 ||
        cat_store_tombstone(c, ctx, id, n, h->now(ctx)) != 0 || cat_store_bump(c, ctx, &gen) != 0)
        return cat_store_failed(c, ctx);
    c->n_apis = h->kv_count(ctx, c->apis);
    if (commit(c, ctx) != 0) return cat_fail(c, 500, "the catalog store failed (see the log)");
    h->log(ctx, SL_LOG_INFO, "API '%.*s' deleted", (int)n, id);
    return written(c, id, n, 204, gen);
}

int cat_admin(catalog *c, sl_ctx *ctx, const cat_request *r, const char *rest, size_t rlen)
{
    if (!has_scope(c, r)) {
        c->c.forbidden++;
        return cat_fail(c, 403, "this request needs scope '%s'", c->admin_scope);
    }
    if (rlen == 0) return meth(&r->method, "POST") ? create(c, ctx, r) : not_allowed(c, "POST");
    /* rest is "/{id}": one segment */
    const char *id = rest + 1;
    size_t n = rlen - 1;
    if (rest[0] != '/' || memchr(id, '/', n) || !cat_id_valid(id, n))
        return cat_fail(c, 404, "no such admin resource (%s/{id} with an API id)", c->admin);
    if (meth(&r->method, "GET")) return show(c, ctx, id, n);
    if (meth(&r->method, "PUT")) return change(c, ctx, r, id, n, 0);
    if (meth(&r->method, "PATCH")) return change(c, ctx, r, id, n, 1);
    if (meth(&r->method, "DELETE")) return remove_api(c, ctx, id, n);
    return not_allowed(c, "GET, PUT, PATCH, DELETE");
}
