/*
 * auth_reply.c - the events the auth operator writes: the request with the
 * principal's fields added (port `out`), and the request with a `response`
 * (port `answered`) as docs/gateway.md's contract has it: {status, headers
 * (lower-case names), body}, error bodies {"error", "detail"} with
 * content-type application/json.
 *
 * A field the operator writes replaces one of the same name in the event
 * (a request cannot bring its own `consumer`); every other field is copied
 * as it is, in its order. Each event is written in one pass into a buffer
 * the state reuses: no allocation once warm.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"

/* Whether msgpack key k is one of the n names (lengths in lens). */
static int named(const sl_mp_val *k, const char *const *names, const size_t *lens, size_t n)
{
    if (k->type != SL_MP_STR) return 0;
    for (size_t j = 0; j < n; j++)
        if (lens[j] == k->v.str.len && memcmp(names[j], k->v.str.ptr, lens[j]) == 0) return 1;
    return 0;
}

int auth_write_event(sl_wbuf *out, const uint8_t *ev, size_t len, const char *const *names,
                     size_t n_names, const uint8_t *extra, size_t extra_len, uint32_t n_extra)
{
    const uint8_t *p = ev, *end = ev + len;
    sl_mp_val m;
    size_t lens[8];
    if (n_names > 8 || sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) return -1;
    for (size_t j = 0; j < n_names; j++)
        lens[j] = strlen(names[j]);
    const uint8_t *pairs = p;
    uint32_t replaced = 0;
    /* first pass: how many pairs the new fields replace, for the map's header */
    for (uint32_t i = 0; i < m.v.n; i++) {
        const uint8_t *k = p;
        sl_mp_val key;
        if (sl_mp_read(&k, end, &key) != 0) return -1;
        replaced += (uint32_t)named(&key, names, lens, n_names);
        if (sl_mp_skip(&p, end) != 0 || sl_mp_skip(&p, end) != 0) return -1;
    }
    size_t start = out->len;
    if (sl_mp_write_map(out, m.v.n - replaced + n_extra) != 0) return -1;
    if (replaced == 0) { /* the usual case: the pairs as they are, in one copy */
        if (sl_wbuf_append(out, pairs, (size_t)(p - pairs)) != 0) goto err;
    } else {
        p = pairs;
        for (uint32_t i = 0; i < m.v.n; i++) {
            const uint8_t *k = p, *pair = p;
            sl_mp_val key;
            sl_mp_read(&k, end, &key);
            sl_mp_skip(&p, end);
            sl_mp_skip(&p, end);
            if (!named(&key, names, lens, n_names) &&
                sl_wbuf_append(out, pair, (size_t)(p - pair)) != 0)
                goto err;
        }
    }
    if (extra_len && sl_wbuf_append(out, extra, extra_len) != 0) goto err;
    return 0;
err:
    out->len = start;
    return -1;
}

int auth_error_body(sl_wbuf *body, const char *error, const char *detail, size_t dlen)
{
    sl_wbuf_reset(body);
    return sl_wbuf_append(body, "{\"error\":", 9) |
           sl_json_write_string(body, error, strlen(error)) |
           sl_wbuf_append(body, ",\"detail\":", 10) | sl_json_write_string(body, detail, dlen) |
           sl_wbuf_append(body, "}", 1);
}

int auth_reply_error(auth_reply *r, int status, const char *error, const char *detail, size_t dlen)
{
    r->status = status;
    r->n_hdr = 0;
    return auth_error_body(&r->body, error, detail, dlen);
}

void auth_reply_header(auth_reply *r, const char *name, const char *fmt, ...)
{
    if (r->n_hdr == 2) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->hdr_val[r->n_hdr], sizeof r->hdr_val[0], fmt, ap);
    va_end(ap);
    r->hdr_name[r->n_hdr++] = name;
}

int auth_has_scope(const auth_view *v, const char *scope, size_t n)
{
    const uint8_t *p = v->blob + v->scopes_off, *end = v->blob + v->blob_len;
    sl_mp_val arr;
    if (sl_mp_read(&p, end, &arr) != 0 || arr.type != SL_MP_ARRAY) return 0;
    for (uint32_t i = 0; i < arr.v.n; i++) {
        sl_mp_val s;
        if (sl_mp_read(&p, end, &s) != 0 || s.type != SL_MP_STR) return 0;
        if (s.v.str.len == n && memcmp(s.v.str.ptr, scope, n) == 0) return 1;
    }
    return 0;
}

/* Append the principal's pairs (consumer, plan, scopes, auth) of v to b. */
static int write_principal(sl_wbuf *b, const auth_view *v)
{
    return sl_wbuf_append(b, v->blob, v->blob_len) | sl_mp_write_cstr(b, "auth") |
           sl_mp_write_map(b, 2) | sl_mp_write_cstr(b, "method") |
           sl_mp_write_cstr(b, v->method == AUTH_JWT ? "jwt" : "api_key") |
           sl_mp_write_cstr(b, "cached") | sl_mp_write_bool(b, v->cached != 0);
}

const char *const auth_fields[5] = {"consumer", "plan", "scopes", "auth", "response"};

int auth_answer(auth *a, sl_ctx *ctx, const uint8_t *ev, size_t len, const auth_reply *r,
                const auth_view *who)
{
    sl_wbuf *b = &a->pairs;
    sl_wbuf_reset(b);
    int has_body = r->body.len > 0;
    uint32_t n_hdr = (uint32_t)r->n_hdr + (has_body ? 1 : 0);
    int bad = 0;
    if (who && who->ok) bad |= write_principal(b, who);
    bad |= sl_mp_write_cstr(b, "response") | sl_mp_write_map(b, 3) | sl_mp_write_cstr(b, "status") |
           sl_mp_write_uint(b, (uint64_t)r->status) | sl_mp_write_cstr(b, "headers") |
           sl_mp_write_map(b, n_hdr);
    if (has_body)
        bad |= sl_mp_write_cstr(b, "content-type") | sl_mp_write_cstr(b, "application/json");
    for (int i = 0; i < r->n_hdr; i++)
        bad |= sl_mp_write_cstr(b, r->hdr_name[i]) | sl_mp_write_cstr(b, r->hdr_val[i]);
    bad |= sl_mp_write_cstr(b, "body") |
           sl_mp_write_str(b, has_body ? (const char *)r->body.data : "", r->body.len);
    if (bad) return -1;
    /* auth's own fields are replaced or, without a principal, left out: never taken from the
     * request */
    sl_wbuf_reset(&a->out);
    if (auth_write_event(&a->out, ev, len, auth_fields, 5, b->data, b->len,
                         who && who->ok ? 5 : 1) != 0)
        return -1;
    return ctx->host->emit(ctx, a->answered_port, a->out.data, a->out.len);
}
