/*
 * auth_store.c - the auth operator's key store: API keys and consumers in the
 * instance's own LMDB databases (host kv_* calls), and the validation
 * results built from them.
 *
 * Databases (values are msgpack maps):
 *   consumers      consumer id -> {plan, scopes: [str], revoked}
 *   keys           SHA-256 of the API key (32 bytes) -> {id, consumer, revoked}
 *   key_ids        key id -> SHA-256 of the key (32 bytes)
 *   consumer_keys  consumer id, NUL, key id -> "" (a consumer's keys, in order)
 *
 * A key itself is never stored: only its SHA-256, which is also the key's
 * entry in the validation cache. Records are never deleted: revoking sets
 * the flag, so a seed file applied at the next start cannot bring a revoked
 * key or consumer back. The store is the state of record for credentials
 * and is not part of checkpoints (a restore must not un-revoke a key):
 * changes are committed as they are made and synced (auth_admin.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"

int auth_id_valid(const char *s, size_t n)
{
    if (n == 0 || n > AUTH_MAX_ID) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("._~:@+-", ch)) ||
            ch == 0)
            return 0;
    }
    return 1;
}

int auth_scopes_valid(const uint8_t *p, const uint8_t *end)
{
    sl_mp_val v;
    if (sl_mp_read(&p, end, &v) != 0 || v.type != SL_MP_ARRAY) return 0;
    for (uint32_t i = 0; i < v.v.n; i++) {
        sl_mp_val s;
        if (sl_mp_read(&p, end, &s) != 0 || s.type != SL_MP_STR || s.v.str.len == 0 ||
            s.v.str.len > AUTH_MAX_ID)
            return 0;
    }
    return p == end;
}

/* ------------------------------------------------------------ results */

int auth_result_ok(auth *a, int method, const char *consumer, size_t clen, const char *plan,
                   size_t plen, const uint8_t *scopes, size_t scopes_len)
{
    auth_result *r = &a->res;
    sl_wbuf *b = &r->blob;
    sl_wbuf_reset(b);
    if (sl_mp_write_cstr(b, "consumer") != 0 || sl_mp_write_str(b, consumer, clen) != 0) return -1;
    r->consumer_off = (uint32_t)(b->len - clen);
    r->consumer_len = (uint32_t)clen;
    if (sl_mp_write_cstr(b, "plan") != 0 || sl_mp_write_str(b, plan, plen) != 0 ||
        sl_mp_write_cstr(b, "scopes") != 0)
        return -1;
    r->scopes_off = (uint32_t)b->len;
    if (sl_wbuf_append(b, scopes, scopes_len) != 0) return -1;
    r->ok = 1;
    r->method = method;
    r->not_after = INT64_MAX;
    r->fail_until = INT64_MAX;
    return 0;
}

int auth_result_fail(auth *a, int method, const char *fmt, ...)
{
    auth_result *r = &a->res;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof text) n = sizeof text - 1;
    sl_wbuf_reset(&r->blob);
    r->ok = 0;
    r->method = method;
    r->consumer_off = r->consumer_len = r->scopes_off = 0;
    r->not_after = INT64_MAX;
    r->fail_until = INT64_MAX;
    return sl_wbuf_append(&r->blob, text, (size_t)n);
}

/* ------------------------------------------------------------ records */

int auth_store_open(auth *a, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    a->consumers = h->kv_open(ctx, "consumers");
    a->keys = h->kv_open(ctx, "keys");
    a->key_ids = h->kv_open(ctx, "key_ids");
    a->consumer_keys = h->kv_open(ctx, "consumer_keys");
    return a->consumers && a->keys && a->key_ids && a->consumer_keys ? 0 : -1;
}

int auth_store_consumer(auth *a, sl_ctx *ctx, const char *id, size_t len, sl_mp_val *plan,
                        const uint8_t **scopes, size_t *scopes_len, int *revoked)
{
    const void *v;
    size_t vlen;
    int r = ctx->host->kv_get(ctx, a->consumers, id, len, &v, &vlen);
    if (r != 0) return r == 1 ? 0 : -1;
    const uint8_t *p = v, *end = p + vlen;
    sl_mp_val m;
    int have = 0;
    *revoked = 0;
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) goto bad;
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k, x;
        if (sl_mp_read(&p, end, &k) != 0 || k.type != SL_MP_STR) goto bad;
        const uint8_t *vp = p;
        if (sl_mp_read(&vp, end, &x) != 0) goto bad;
        if (k.v.str.len == 4 && memcmp(k.v.str.ptr, "plan", 4) == 0 && x.type == SL_MP_STR) {
            *plan = x;
            have |= 1;
        } else if (k.v.str.len == 6 && memcmp(k.v.str.ptr, "scopes", 6) == 0) {
            const uint8_t *s = p;
            if (sl_mp_skip(&s, end) != 0 || !auth_scopes_valid(p, s)) goto bad;
            *scopes = p;
            *scopes_len = (size_t)(s - p);
            have |= 2;
        } else if (k.v.str.len == 7 && memcmp(k.v.str.ptr, "revoked", 7) == 0 &&
                   x.type == SL_MP_BOOL) {
            *revoked = x.v.b;
        }
        if (sl_mp_skip(&p, end) != 0) goto bad;
    }
    if (have == 3) return 1;
bad:
    ctx->host->log(ctx, SL_LOG_ERROR, "key store: the record of consumer '%.*s' is malformed",
                   (int)len, id);
    return -1;
}

/*
 * The record of the API key whose SHA-256 is sha, inside the open transaction:
 * 1 with its id, consumer (strings borrowed until the transaction ends) and
 * revoked flag; 0 if absent; -1 on a failure or a malformed record.
 */
int auth_store_key(auth *a, sl_ctx *ctx, const uint8_t *sha, sl_mp_val *id, sl_mp_val *consumer,
                   int *revoked)
{
    const void *v;
    size_t vlen;
    int r = ctx->host->kv_get(ctx, a->keys, sha, AUTH_SHA_LEN, &v, &vlen);
    if (r != 0) return r == 1 ? 0 : -1;
    const uint8_t *p = v, *end = p + vlen;
    sl_mp_val m;
    int have = 0;
    *revoked = 0;
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) goto bad;
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k, x;
        if (sl_mp_read(&p, end, &k) != 0 || k.type != SL_MP_STR) goto bad;
        const uint8_t *vp = p;
        if (sl_mp_read(&vp, end, &x) != 0) goto bad;
        if (k.v.str.len == 2 && memcmp(k.v.str.ptr, "id", 2) == 0 && x.type == SL_MP_STR) {
            *id = x;
            have |= 1;
        } else if (k.v.str.len == 8 && memcmp(k.v.str.ptr, "consumer", 8) == 0 &&
                   x.type == SL_MP_STR) {
            *consumer = x;
            have |= 2;
        } else if (k.v.str.len == 7 && memcmp(k.v.str.ptr, "revoked", 7) == 0 &&
                   x.type == SL_MP_BOOL) {
            *revoked = x.v.b;
        }
        if (sl_mp_skip(&p, end) != 0) goto bad;
    }
    if (have == 3) return 1;
bad:
    ctx->host->log(ctx, SL_LOG_ERROR, "key store: an API key record is malformed");
    return -1;
}

int auth_store_put_consumer(auth *a, sl_ctx *ctx, const char *id, size_t len, const char *plan,
                            size_t plen, const uint8_t *scopes, size_t scopes_len, int revoked)
{
    sl_wbuf *b = &a->tmp;
    sl_wbuf_reset(b);
    if (sl_mp_write_map(b, 3) != 0 || sl_mp_write_cstr(b, "plan") != 0 ||
        sl_mp_write_str(b, plan, plen) != 0 || sl_mp_write_cstr(b, "scopes") != 0 ||
        sl_wbuf_append(b, scopes, scopes_len) != 0 || sl_mp_write_cstr(b, "revoked") != 0 ||
        sl_mp_write_bool(b, revoked) != 0)
        return -1;
    return ctx->host->kv_put(ctx, a->consumers, id, len, b->data, b->len);
}

int auth_store_put_key(auth *a, sl_ctx *ctx, const uint8_t *sha, const char *kid, size_t klen,
                       const char *consumer, size_t clen, int revoked, int index)
{
    const sl_host *h = ctx->host;
    sl_wbuf *b = &a->tmp;
    sl_wbuf_reset(b);
    if (sl_mp_write_map(b, 3) != 0 || sl_mp_write_cstr(b, "id") != 0 ||
        sl_mp_write_str(b, kid, klen) != 0 || sl_mp_write_cstr(b, "consumer") != 0 ||
        sl_mp_write_str(b, consumer, clen) != 0 || sl_mp_write_cstr(b, "revoked") != 0 ||
        sl_mp_write_bool(b, revoked) != 0)
        return -1;
    if (h->kv_put(ctx, a->keys, sha, AUTH_SHA_LEN, b->data, b->len) != 0) return -1;
    if (!index) return 0;
    if (h->kv_put(ctx, a->key_ids, kid, klen, sha, AUTH_SHA_LEN) != 0) return -1;
    sl_wbuf_reset(b);
    if (sl_wbuf_append(b, consumer, clen) != 0 || sl_wbuf_append(b, "", 1) != 0 ||
        sl_wbuf_append(b, kid, klen) != 0)
        return -1;
    return h->kv_put(ctx, a->consumer_keys, b->data, b->len, "", 1);
}

/* ------------------------------------------------------------ validation */

int auth_store_check_key(auth *a, sl_ctx *ctx, const uint8_t *sha)
{
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 0) != 0) return -1;
    sl_mp_val kid, consumer, plan;
    int revoked, rc = -1;
    int r = auth_store_key(a, ctx, sha, &kid, &consumer, &revoked);
    if (r < 0) goto out;
    if (r == 0) {
        rc = auth_result_fail(a, AUTH_API_KEY, "unknown API key");
        goto out;
    }
    if (revoked) {
        rc = auth_result_fail(a, AUTH_API_KEY, "the API key was revoked");
        goto out;
    }
    const uint8_t *scopes;
    size_t scopes_len;
    r = auth_store_consumer(a, ctx, consumer.v.str.ptr, consumer.v.str.len, &plan, &scopes,
                            &scopes_len, &revoked);
    if (r < 0) goto out;
    if (r == 0 || revoked)
        rc = auth_result_fail(a, AUTH_API_KEY,
                              r ? "the consumer was revoked" : "the API key's consumer is unknown");
    else
        rc = auth_result_ok(a, AUTH_API_KEY, consumer.v.str.ptr, consumer.v.str.len, plan.v.str.ptr,
                            plan.v.str.len, scopes, scopes_len);
out:
    h->kv_abort(ctx); /* read only */
    return rc;
}

/* ------------------------------------------------------------ the seed file */

/* The SHA-256 of the seed's key record k (from `key` or `sha256`) into sha. 0 or -1. */
static int seed_key_sha(auth *a, const sl_host *h, const sl_node *k, uint8_t *sha)
{
    const sl_node *key = h->node_get(k, "key");
    if (key) {
        const char *s = h->node_str(key);
        return auth_sha256(a, s, strlen(s), sha);
    }
    const char *hex = h->node_str(h->node_get(k, "sha256")); /* checked by init */
    for (int i = 0; i < AUTH_SHA_LEN; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        sha[i] = (uint8_t)v;
    }
    return 0;
}

int auth_store_seed(auth *a, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    if (!a->seed) return 0;
    const sl_node *list = h->node_get(a->seed, "consumers");
    size_t n = list ? h->node_len(list) : 0;
    unsigned added_c = 0, added_k = 0;
    if (h->kv_begin(ctx, 1) != 0) return -1;
    for (size_t i = 0; i < n; i++) {
        const sl_node *c = h->node_at(list, i);
        const char *id = h->node_str(h->node_get(c, "id"));
        const char *plan = h->node_str(h->node_get(c, "plan"));
        const sl_node *scopes = h->node_get(c, "scopes"), *keys = h->node_get(c, "keys");
        size_t idlen = strlen(id);
        sl_wbuf_reset(&a->scratch);
        size_t ns = scopes ? h->node_len(scopes) : 0;
        if (sl_mp_write_array(&a->scratch, (uint32_t)ns) != 0) goto err;
        for (size_t j = 0; j < ns; j++)
            if (sl_mp_write_cstr(&a->scratch, h->node_str(h->node_at(scopes, j))) != 0) goto err;
        sl_mp_val splan;
        const uint8_t *ss;
        size_t sslen;
        int revoked = 0;
        int r = auth_store_consumer(a, ctx, id, idlen, &splan, &ss, &sslen, &revoked);
        if (r < 0) goto err;
        if (r == 0) {
            if (auth_store_put_consumer(a, ctx, id, idlen, plan, strlen(plan), a->scratch.data,
                                        a->scratch.len, 0) != 0)
                goto err;
            added_c++;
        }
        if (revoked) continue; /* its keys stay as they are: revoked */
        for (size_t j = 0; keys && j < h->node_len(keys); j++) {
            const sl_node *k = h->node_at(keys, j);
            const char *kid = h->node_str(h->node_get(k, "id"));
            uint8_t sha[AUTH_SHA_LEN];
            if (seed_key_sha(a, h, k, sha) != 0) goto err;
            const void *v;
            size_t vlen;
            if ((r = h->kv_get(ctx, a->key_ids, kid, strlen(kid), &v, &vlen)) < 0) goto err;
            if (r == 0) {
                if (vlen != AUTH_SHA_LEN || memcmp(v, sha, AUTH_SHA_LEN) != 0)
                    h->log(ctx, SL_LOG_WARN,
                           "seed: key id '%s' is stored with another key; the stored one stays",
                           kid);
                continue;
            }
            if ((r = h->kv_get(ctx, a->keys, sha, AUTH_SHA_LEN, &v, &vlen)) < 0) goto err;
            if (r == 0) {
                h->log(ctx, SL_LOG_WARN,
                       "seed: the key of id '%s' is stored under another id; it stays there", kid);
                continue;
            }
            if (auth_store_put_key(a, ctx, sha, kid, strlen(kid), id, idlen, 0, 1) != 0) goto err;
            added_k++;
        }
    }
    if (h->kv_commit(ctx) != 0) return -1;
    if (added_c || added_k)
        h->log(ctx, SL_LOG_INFO, "seed '%s': %u consumers and %u keys added to the key store",
               a->seed_path, added_c, added_k);
    return 0;
err:
    h->kv_abort(ctx);
    h->log(ctx, SL_LOG_ERROR, "seed '%s': could not write the key store", a->seed_path);
    return -1;
}
