/*
 * auth_admin.c - the admin API the auth operator answers itself, below
 * `admin_prefix` (P), for requests that passed authentication and the scope
 * their `require` rule asks for:
 *
 *   POST   P/consumers              {"id", "plan", "scopes": [...]}   201
 *   GET    P/consumers/{id}         plan, scopes, revoked, keys       200
 *   PATCH  P/consumers/{id}         {"plan"?, "scopes"?}              200
 *   DELETE P/consumers/{id}         revokes it and all its keys       204
 *   POST   P/consumers/{id}/keys    a new key: {"key_id", "key"}      201
 *   GET    P/keys/{key_id}          {"id", "consumer", "revoked"}     200
 *   DELETE P/keys/{key_id}          revokes the key                   204
 *
 * 400 for a malformed body, 404 for an unknown id or path, 405 (with
 * `allow`) for a method a path does not take, 409 for a consumer that exists
 * (POST) or is revoked (new key, PATCH), 500 when the store fails.
 *
 * Each change is one write transaction, committed and synced before the
 * answer is written, and the cache is invalidated at once (the consumer's
 * entries swept, a key's entry removed): the next request, even in the same
 * batch, sees the change. Revocation never deletes records (auth_store.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth.h"

#define KEY_BYTES 32   /* a new key: "sk_" + base64url of 32 random bytes */
#define KEY_ID_BYTES 9 /* its id: "k_" + base64url of 9 random bytes (12 characters) */

static int meth(const char *m, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(m, want, n) == 0;
}

/* ------------------------------------------------------------ replies */

static int fail(auth *a, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(auth *a, int status, const char *fmt, ...)
{
    static const struct {
        int status;
        const char *error;
    } names[] = {{400, "bad request"},
                 {404, "not found"},
                 {405, "method not allowed"},
                 {409, "conflict"},
                 {500, "internal error"}};
    const char *error = "error";
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].status == status) error = names[i].error;
    char detail[320];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof detail) n = n < 0 ? 0 : (int)sizeof detail - 1;
    return auth_reply_error(&a->reply, status, error, detail, (size_t)n);
}

static int store_failed(auth *a, sl_ctx *ctx)
{
    ctx->host->kv_abort(ctx);
    a->c.store_errors++;
    return fail(a, 500, "the key store failed (the gateway's log says why)");
}

static int not_allowed(auth *a, const char *allow)
{
    if (fail(a, 405, "this resource takes %s", allow) != 0) return -1;
    auth_reply_header(&a->reply, "allow", "%s", allow);
    return 0;
}

/* Commit and sync; a sync failure is logged (the change is made, maybe not durable yet). */
static int commit(auth *a, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    if (h->kv_commit(ctx) != 0) {
        a->c.store_errors++;
        return -1;
    }
    if (h->kv_sync(ctx) != 0)
        h->log(ctx, SL_LOG_WARN, "key store: sync failed: a crash may lose the last change");
    return 0;
}

/* ------------------------------------------------------------ bodies */

enum { B_ID = 1, B_PLAN = 2, B_SCOPES = 4 };

typedef struct body_fields {
    unsigned have;
    sl_mp_val id, plan;
    const uint8_t *scopes; /* the array's msgpack bytes, in a->mp2 */
    size_t scopes_len;
} body_fields;

/*
 * Parse a JSON object body with members among `allowed` (B_*) into f.
 * 0, or 1 after setting a 400 reply, or -1 (out of memory).
 */
static int parse_body(auth *a, const char *body, size_t blen, unsigned allowed, body_fields *f)
{
    char err[160];
    memset(f, 0, sizeof *f);
    if (auth_parse_json(a, body, blen, &a->mp2, err, sizeof err) != 0)
        return fail(a, 400, "the body is not JSON: %s", err) ? -1 : 1;
    const uint8_t *p = a->mp2.data, *end = p + a->mp2.len;
    sl_mp_val m;
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP)
        return fail(a, 400, "the body must be a JSON object") ? -1 : 1;
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k, v;
        sl_mp_read(&p, end, &k); /* JSON object keys: strings */
        const uint8_t *vp = p;
        sl_mp_read(&vp, end, &v);
        unsigned which = 0;
        if (k.v.str.len == 2 && memcmp(k.v.str.ptr, "id", 2) == 0)
            which = B_ID;
        else if (k.v.str.len == 4 && memcmp(k.v.str.ptr, "plan", 4) == 0)
            which = B_PLAN;
        else if (k.v.str.len == 6 && memcmp(k.v.str.ptr, "scopes", 6) == 0)
            which = B_SCOPES;
        if (!(which & allowed))
            return fail(a, 400, "unknown member '%.*s'", (int)(k.v.str.len > 64 ? 64 : k.v.str.len),
                        k.v.str.ptr)
                       ? -1
                       : 1;
        if (f->have & which)
            return fail(a, 400, "member '%.*s' appears twice", (int)k.v.str.len, k.v.str.ptr) ? -1
                                                                                              : 1;
        f->have |= which;
        const uint8_t *vs = p;
        sl_mp_skip(&p, end);
        if (which == B_ID) {
            if (v.type != SL_MP_STR || !auth_id_valid(v.v.str.ptr, v.v.str.len))
                return fail(a, 400,
                            "'id' must be a string of 1 to %d characters among A-Z a-z 0-9 . _ ~ "
                            ": @ + -",
                            AUTH_MAX_ID)
                           ? -1
                           : 1;
            f->id = v;
        } else if (which == B_PLAN) {
            if (v.type != SL_MP_STR || v.v.str.len == 0 || v.v.str.len > AUTH_MAX_ID)
                return fail(a, 400, "'plan' must be a string of 1 to %d bytes", AUTH_MAX_ID) ? -1
                                                                                             : 1;
            f->plan = v;
        } else {
            if (!auth_scopes_valid(vs, p))
                return fail(a, 400, "'scopes' must be an array of strings of 1 to %d bytes",
                            AUTH_MAX_ID)
                           ? -1
                           : 1;
            f->scopes = vs;
            f->scopes_len = (size_t)(p - vs);
        }
    }
    return 0;
}

/* ------------------------------------------------------------ consumers */

typedef struct scan_arg {
    const char *prefix;
    size_t plen;
    sl_wbuf *out; /* key ids, each a 1-byte length then its bytes */
    int oom;
} scan_arg;

static int collect_kid(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    scan_arg *s = arg;
    (void)val;
    (void)vlen;
    if (klen <= s->plen || memcmp(key, s->prefix, s->plen) != 0) return SL_KV_STOP;
    size_t n = klen - s->plen;
    if (n > AUTH_MAX_ID) return 0; /* not a record this code writes */
    uint8_t len8 = (uint8_t)n;
    if (sl_wbuf_append(s->out, &len8, 1) != 0 ||
        sl_wbuf_append(s->out, (const char *)key + s->plen, n) != 0) {
        s->oom = 1;
        return SL_KV_STOP;
    }
    return 0;
}

/* The ids of consumer id's keys into a->kids, inside the open transaction. 0 or -1. */
static int list_kids(auth *a, sl_ctx *ctx, const char *id, size_t len)
{
    sl_wbuf *pre = &a->tmp;
    sl_wbuf_reset(pre);
    sl_wbuf_reset(&a->kids);
    if (sl_wbuf_append(pre, id, len) != 0 || sl_wbuf_append(pre, "", 1) != 0) return -1;
    scan_arg s = {(const char *)pre->data, pre->len, &a->kids, 0};
    if (ctx->host->kv_scan(ctx, a->consumer_keys, pre->data, pre->len, collect_kid, &s) != 0)
        return -1;
    return s.oom ? -1 : 0;
}

/* Answer 200 (or `status`) with consumer id's record and its keys. */
static int show_consumer(auth *a, sl_ctx *ctx, const char *id, size_t len, int status)
{
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 0) != 0) return store_failed(a, ctx);
    sl_mp_val plan;
    const uint8_t *scopes;
    size_t scopes_len;
    int revoked;
    int r = auth_store_consumer(a, ctx, id, len, &plan, &scopes, &scopes_len, &revoked);
    if (r < 0) return store_failed(a, ctx);
    if (r == 0) {
        h->kv_abort(ctx);
        return fail(a, 404, "no consumer '%.*s'", (int)len, id);
    }
    sl_wbuf *b = &a->reply.body;
    sl_wbuf_reset(b);
    int bad =
        sl_wbuf_append(b, "{\"id\":", 6) | sl_json_write_string(b, id, len) |
        sl_wbuf_append(b, ",\"plan\":", 8) |
        sl_json_write_string(b, plan.v.str.ptr, plan.v.str.len) |
        sl_wbuf_append(b, ",\"scopes\":", 10) | sl_msgpack_to_json(scopes, scopes_len, b) |
        sl_wbuf_append(b, revoked ? ",\"revoked\":true" : ",\"revoked\":false", revoked ? 15 : 16) |
        sl_wbuf_append(b, ",\"keys\":[", 9);
    if (bad || list_kids(a, ctx, id, len) != 0) return store_failed(a, ctx);
    for (size_t off = 0, i = 0; off < a->kids.len; i++) {
        size_t kl = a->kids.data[off];
        const char *kid = (const char *)a->kids.data + off + 1;
        off += 1 + kl;
        const void *sha;
        size_t shalen;
        sl_mp_val kid_v, cons_v;
        int krev = 0;
        if (h->kv_get(ctx, a->key_ids, kid, kl, &sha, &shalen) != 0 || shalen != AUTH_SHA_LEN ||
            auth_store_key(a, ctx, sha, &kid_v, &cons_v, &krev) != 1)
            return store_failed(a, ctx);
        bad |=
            sl_wbuf_append(b, i ? ",{\"id\":" : "{\"id\":", i ? 7 : 6) |
            sl_json_write_string(b, kid, kl) |
            sl_wbuf_append(b, krev ? ",\"revoked\":true}" : ",\"revoked\":false}", krev ? 16 : 17);
    }
    bad |= sl_wbuf_append(b, "]}", 2);
    h->kv_abort(ctx);
    if (bad) return -1;
    a->reply.status = status;
    a->reply.n_hdr = 0;
    return 0;
}

static int create_consumer(auth *a, sl_ctx *ctx, const char *body, size_t blen)
{
    const sl_host *h = ctx->host;
    body_fields f;
    int r = parse_body(a, body, blen, B_ID | B_PLAN | B_SCOPES, &f);
    if (r != 0) return r < 0 ? -1 : 0;
    if ((f.have & (B_ID | B_PLAN)) != (B_ID | B_PLAN))
        return fail(a, 400, "a consumer needs 'id' and 'plan' (and may have 'scopes')");
    const char *id = f.id.v.str.ptr;
    size_t len = f.id.v.str.len;
    if (h->kv_begin(ctx, 1) != 0) return store_failed(a, ctx);
    sl_mp_val plan;
    const uint8_t *sc;
    size_t sclen;
    int revoked;
    r = auth_store_consumer(a, ctx, id, len, &plan, &sc, &sclen, &revoked);
    if (r < 0) return store_failed(a, ctx);
    if (r == 1) {
        h->kv_abort(ctx);
        return fail(a, 409, "consumer '%.*s' exists%s", (int)len, id,
                    revoked ? " (revoked: ids are not reused)" : "");
    }
    if (auth_store_put_consumer(a, ctx, id, len, f.plan.v.str.ptr, f.plan.v.str.len,
                                f.scopes ? f.scopes : (const uint8_t *)"\x90",
                                f.scopes ? f.scopes_len : 1, 0) != 0)
        return store_failed(a, ctx);
    if (commit(a, ctx) != 0)
        return fail(a, 500, "the key store failed (the gateway's log says why)");
    auth_cache_sweep(&a->cache, id, len); /* JWTs of this subject carried the default plan */
    if (show_consumer(a, ctx, id, len, 201) != 0) return -1;
    if (a->reply.status == 201)
        auth_reply_header(&a->reply, "location", "%.*s/consumers/%.*s", (int)a->admin_len, a->admin,
                          (int)len, id);
    return 0;
}

static int update_consumer(auth *a, sl_ctx *ctx, const char *id, size_t len, const char *body,
                           size_t blen)
{
    const sl_host *h = ctx->host;
    body_fields f;
    int r = parse_body(a, body, blen, B_PLAN | B_SCOPES, &f);
    if (r != 0) return r < 0 ? -1 : 0;
    if (!f.have) return fail(a, 400, "give 'plan', 'scopes' or both");
    if (h->kv_begin(ctx, 1) != 0) return store_failed(a, ctx);
    sl_mp_val plan;
    const uint8_t *sc;
    size_t sclen;
    int revoked;
    r = auth_store_consumer(a, ctx, id, len, &plan, &sc, &sclen, &revoked);
    if (r < 0) return store_failed(a, ctx);
    if (r == 0 || revoked) {
        h->kv_abort(ctx);
        return r ? fail(a, 409, "consumer '%.*s' is revoked", (int)len, id)
                 : fail(a, 404, "no consumer '%.*s'", (int)len, id);
    }
    /* the stored values are borrowed from the transaction: copy before writing */
    sl_wbuf *keep = &a->keep;
    sl_wbuf_reset(keep);
    const sl_mp_val *np = (f.have & B_PLAN) ? &f.plan : &plan;
    if (sl_wbuf_append(keep, np->v.str.ptr, np->v.str.len) != 0 ||
        sl_wbuf_append(keep, f.scopes ? f.scopes : sc, f.scopes ? f.scopes_len : sclen) != 0) {
        h->kv_abort(ctx);
        return -1;
    }
    if (auth_store_put_consumer(a, ctx, id, len, (const char *)keep->data, np->v.str.len,
                                keep->data + np->v.str.len, keep->len - np->v.str.len, 0) != 0)
        return store_failed(a, ctx);
    if (commit(a, ctx) != 0)
        return fail(a, 500, "the key store failed (the gateway's log says why)");
    auth_cache_sweep(&a->cache, id, len); /* cached successes carry the old plan and scopes */
    return show_consumer(a, ctx, id, len, 200);
}

static int revoke_consumer(auth *a, sl_ctx *ctx, const char *id, size_t len)
{
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 1) != 0) return store_failed(a, ctx);
    sl_mp_val plan;
    const uint8_t *sc;
    size_t sclen;
    int revoked;
    int r = auth_store_consumer(a, ctx, id, len, &plan, &sc, &sclen, &revoked);
    if (r < 0) return store_failed(a, ctx);
    if (r == 0) {
        h->kv_abort(ctx);
        return fail(a, 404, "no consumer '%.*s'", (int)len, id);
    }
    int changed = !revoked;
    if (!revoked) {
        sl_wbuf *keep = &a->keep;
        sl_wbuf_reset(keep);
        if (sl_wbuf_append(keep, plan.v.str.ptr, plan.v.str.len) != 0 ||
            sl_wbuf_append(keep, sc, sclen) != 0) {
            h->kv_abort(ctx);
            return -1;
        }
        if (auth_store_put_consumer(a, ctx, id, len, (const char *)keep->data, plan.v.str.len,
                                    keep->data + plan.v.str.len, keep->len - plan.v.str.len,
                                    1) != 0)
            return store_failed(a, ctx);
    }
    /* every key of the consumer is revoked too (a revoked consumer stays revoked) */
    if (list_kids(a, ctx, id, len) != 0) return store_failed(a, ctx);
    sl_wbuf_reset(&a->shas);
    for (size_t off = 0; off < a->kids.len;) {
        size_t kl = a->kids.data[off];
        const char *kid = (const char *)a->kids.data + off + 1;
        off += 1 + kl;
        const void *v;
        size_t vlen;
        uint8_t sha[AUTH_SHA_LEN];
        sl_mp_val kid_v, cons_v;
        int krev;
        if (h->kv_get(ctx, a->key_ids, kid, kl, &v, &vlen) != 0 || vlen != AUTH_SHA_LEN)
            return store_failed(a, ctx);
        memcpy(sha, v, AUTH_SHA_LEN);
        if (auth_store_key(a, ctx, sha, &kid_v, &cons_v, &krev) != 1) return store_failed(a, ctx);
        if (krev) continue;
        if (auth_store_put_key(a, ctx, sha, kid, kl, id, len, 1, 0) != 0 ||
            sl_wbuf_append(&a->shas, sha, AUTH_SHA_LEN) != 0)
            return store_failed(a, ctx);
        changed = 1;
    }
    if (commit(a, ctx) != 0)
        return fail(a, 500, "the key store failed (the gateway's log says why)");
    auth_cache_sweep(&a->cache, id, len);
    for (size_t off = 0; off < a->shas.len; off += AUTH_SHA_LEN)
        auth_cache_remove(&a->cache, a->shas.data + off);
    if (changed) {
        a->c.revocations++;
        h->log(ctx, SL_LOG_INFO, "consumer '%.*s' revoked with %zu keys", (int)len, id,
               a->shas.len / AUTH_SHA_LEN);
    }
    a->reply.status = 204;
    a->reply.n_hdr = 0;
    sl_wbuf_reset(&a->reply.body);
    return 0;
}

/* ------------------------------------------------------------ keys */

static int create_key(auth *a, sl_ctx *ctx, const char *id, size_t len, const char *body,
                      size_t blen)
{
    const sl_host *h = ctx->host;
    if (blen) { /* nothing to say, but say it in JSON */
        body_fields f;
        int r = parse_body(a, body, blen, 0, &f);
        if (r != 0) return r < 0 ? -1 : 0;
    }
    if (h->kv_begin(ctx, 1) != 0) return store_failed(a, ctx);
    sl_mp_val plan;
    const uint8_t *sc;
    size_t sclen;
    int revoked;
    int r = auth_store_consumer(a, ctx, id, len, &plan, &sc, &sclen, &revoked);
    if (r < 0) return store_failed(a, ctx);
    if (r == 0 || revoked) {
        h->kv_abort(ctx);
        return r ? fail(a, 409, "consumer '%.*s' is revoked", (int)len, id)
                 : fail(a, 404, "no consumer '%.*s'", (int)len, id);
    }
    uint8_t raw[KEY_BYTES], sha[AUTH_SHA_LEN];
    char key[3 + 4 * KEY_BYTES / 3 + 4] = "sk_", kid[2 + 4 * KEY_ID_BYTES / 3 + 4] = "k_";
    for (int attempt = 0;; attempt++) {
        uint8_t rid[KEY_ID_BYTES];
        if (attempt == 4 || RAND_bytes(raw, sizeof raw) != 1 || RAND_bytes(rid, sizeof rid) != 1) {
            h->log(ctx, SL_LOG_ERROR, "could not draw a new key (RAND_bytes)");
            return store_failed(a, ctx);
        }
        auth_b64url_encode(raw, sizeof raw, key + 3);
        auth_b64url_encode(rid, sizeof rid, kid + 2);
        if (auth_sha256(a, key, strlen(key), sha) != 0) return store_failed(a, ctx);
        const void *v;
        size_t vlen;
        int r1 = h->kv_get(ctx, a->key_ids, kid, strlen(kid), &v, &vlen);
        int r2 = h->kv_get(ctx, a->keys, sha, AUTH_SHA_LEN, &v, &vlen);
        if (r1 < 0 || r2 < 0) return store_failed(a, ctx);
        if (r1 == 1 && r2 == 1)
            break; /* both new (a clash is as good as impossible; drawing again is cheap) */
    }
    if (auth_store_put_key(a, ctx, sha, kid, strlen(kid), id, len, 0, 1) != 0)
        return store_failed(a, ctx);
    if (commit(a, ctx) != 0)
        return fail(a, 500, "the key store failed (the gateway's log says why)");
    auth_cache_remove(&a->cache, sha);
    sl_wbuf *b = &a->reply.body;
    sl_wbuf_reset(b);
    if ((sl_wbuf_append(b, "{\"key_id\":", 10) | sl_json_write_string(b, kid, strlen(kid)) |
         sl_wbuf_append(b, ",\"key\":", 7) | sl_json_write_string(b, key, strlen(key)) |
         sl_wbuf_append(b, ",\"consumer\":", 12) | sl_json_write_string(b, id, len) |
         sl_wbuf_append(b, "}", 1)) != 0)
        return -1;
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(raw, sizeof raw);
    a->reply.status = 201;
    a->reply.n_hdr = 0;
    auth_reply_header(&a->reply, "cache-control", "no-store");
    return 0;
}

static int show_key(auth *a, sl_ctx *ctx, const char *kid, size_t klen)
{
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 0) != 0) return store_failed(a, ctx);
    const void *sha;
    size_t shalen;
    int r = h->kv_get(ctx, a->key_ids, kid, klen, &sha, &shalen);
    if (r < 0) return store_failed(a, ctx);
    if (r == 1) {
        h->kv_abort(ctx);
        return fail(a, 404, "no key '%.*s'", (int)klen, kid);
    }
    sl_mp_val kid_v, cons;
    int revoked;
    if (shalen != AUTH_SHA_LEN || auth_store_key(a, ctx, sha, &kid_v, &cons, &revoked) != 1)
        return store_failed(a, ctx);
    sl_wbuf *b = &a->reply.body;
    sl_wbuf_reset(b);
    int bad = sl_wbuf_append(b, "{\"id\":", 6) | sl_json_write_string(b, kid, klen) |
              sl_wbuf_append(b, ",\"consumer\":", 12) |
              sl_json_write_string(b, cons.v.str.ptr, cons.v.str.len) |
              sl_wbuf_append(b, revoked ? ",\"revoked\":true}" : ",\"revoked\":false}",
                             revoked ? 16 : 17);
    h->kv_abort(ctx);
    if (bad) return -1;
    a->reply.status = 200;
    a->reply.n_hdr = 0;
    return 0;
}

static int revoke_key(auth *a, sl_ctx *ctx, const char *kid, size_t klen)
{
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 1) != 0) return store_failed(a, ctx);
    const void *v;
    size_t vlen;
    int r = h->kv_get(ctx, a->key_ids, kid, klen, &v, &vlen);
    if (r < 0) return store_failed(a, ctx);
    if (r == 1) {
        h->kv_abort(ctx);
        return fail(a, 404, "no key '%.*s'", (int)klen, kid);
    }
    uint8_t sha[AUTH_SHA_LEN];
    if (vlen != AUTH_SHA_LEN) return store_failed(a, ctx);
    memcpy(sha, v, AUTH_SHA_LEN);
    sl_mp_val kid_v, cons;
    int revoked;
    if (auth_store_key(a, ctx, sha, &kid_v, &cons, &revoked) != 1) return store_failed(a, ctx);
    if (!revoked) {
        sl_wbuf *keep = &a->keep;
        sl_wbuf_reset(keep);
        if (sl_wbuf_append(keep, cons.v.str.ptr, cons.v.str.len) != 0) {
            h->kv_abort(ctx);
            return -1;
        }
        if (auth_store_put_key(a, ctx, sha, kid, klen, (const char *)keep->data, keep->len, 1, 0) !=
            0)
            return store_failed(a, ctx);
        if (commit(a, ctx) != 0)
            return fail(a, 500, "the key store failed (the gateway's log says why)");
        a->c.revocations++;
        h->log(ctx, SL_LOG_INFO, "key '%.*s' revoked", (int)klen, kid);
    } else {
        h->kv_abort(ctx);
    }
    auth_cache_remove(&a->cache, sha);
    a->reply.status = 204;
    a->reply.n_hdr = 0;
    sl_wbuf_reset(&a->reply.body);
    return 0;
}

/* ------------------------------------------------------------ routing */

int auth_admin(auth *a, sl_ctx *ctx, const char *method, size_t mlen, const char *rest, size_t rlen,
               const char *body, size_t blen)
{
    /* split the path below the prefix: /seg0/seg1/seg2 */
    const char *seg[4];
    size_t seglen[4], n = 0;
    if (rlen == 0 || rest[0] != '/') return fail(a, 404, "no such admin resource");
    for (size_t i = 1, start = 1; i <= rlen; i++) {
        if (i < rlen && rest[i] != '/') continue;
        if (n == 4 || i == start) return fail(a, 404, "no such admin resource");
        seg[n] = rest + start;
        seglen[n++] = i - start;
        start = i + 1;
    }
#define SEG(i, s) (seglen[i] == strlen(s) && memcmp(seg[i], s, seglen[i]) == 0)
    if (n >= 1 && SEG(0, "consumers")) {
        if (n == 1)
            return meth(method, mlen, "POST") ? create_consumer(a, ctx, body, blen)
                                              : not_allowed(a, "POST");
        if (!auth_id_valid(seg[1], seglen[1]))
            return fail(a, 404, "no consumer '%.*s'", (int)(seglen[1] > 64 ? 64 : seglen[1]),
                        seg[1]);
        if (n == 2) {
            if (meth(method, mlen, "GET")) return show_consumer(a, ctx, seg[1], seglen[1], 200);
            if (meth(method, mlen, "PATCH"))
                return update_consumer(a, ctx, seg[1], seglen[1], body, blen);
            if (meth(method, mlen, "DELETE")) return revoke_consumer(a, ctx, seg[1], seglen[1]);
            return not_allowed(a, "GET, PATCH, DELETE");
        }
        if (n == 3 && SEG(2, "keys"))
            return meth(method, mlen, "POST") ? create_key(a, ctx, seg[1], seglen[1], body, blen)
                                              : not_allowed(a, "POST");
    } else if (n == 2 && SEG(0, "keys")) {
        if (!auth_id_valid(seg[1], seglen[1]))
            return fail(a, 404, "no key '%.*s'", (int)(seglen[1] > 64 ? 64 : seglen[1]), seg[1]);
        if (meth(method, mlen, "GET")) return show_key(a, ctx, seg[1], seglen[1]);
        if (meth(method, mlen, "DELETE")) return revoke_key(a, ctx, seg[1], seglen[1]);
        return not_allowed(a, "GET, DELETE");
    }
#undef SEG
    return fail(a, 404, "no such admin resource");
}
