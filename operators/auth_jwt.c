/*
 * auth_jwt.c - JSON Web Tokens (RFC 7519) for the auth operator: HS256 and
 * RS256 signatures (RFC 7518) through OpenSSL, then the registered claims.
 *
 * Order: shape (three base64url segments) -> header (alg) -> signature ->
 * payload -> claims. The payload is parsed only once its signature verified.
 * The algorithm named in the header must be one this instance has a key for,
 * and each algorithm has its own key: HS256 uses only hs256_secret, RS256
 * only the RSA public key. So `alg: none` is refused, and an HS256 token
 * "signed" with the RSA public key's bytes (the classic alg confusion) is
 * checked against the HMAC secret and fails.
 *
 * JSON goes through the engine's parser (sl_json_to_msgpack) and is read as
 * msgpack. A claim or header parameter this code reads that appears twice is
 * refused (parsers disagree on which one wins). Times: exp is required; exp,
 * nbf and iat are NumericDates (seconds, integer or not) checked with the
 * configured leeway.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"

/* ------------------------------------------------------------ base64url */

static int b64_val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '-') return 62;
    if (ch == '_') return 63;
    return -1;
}

int auth_b64url_decode(const char *s, size_t n, sl_wbuf *out)
{
    if (n % 4 == 1 || sl_wbuf_reserve(out, n / 4 * 3 + 3) != 0) return -1;
    size_t start = out->len;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0) {
            out->len = start;
            return -1;
        }
        acc = ((acc << 6) | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->data[out->len++] = (uint8_t)(acc >> bits);
        }
    }
    /* the bits left over must be zero: one text per byte string */
    if (bits && (acc & ((1u << bits) - 1))) {
        out->len = start;
        return -1;
    }
    return 0;
}

void auth_b64url_encode(const uint8_t *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }
    out[o] = '\0';
}

int auth_is_jwt(const char *t, size_t n)
{
    /* header.payload.signature; the signature may be empty (alg none), then it is refused */
    int dots = 0;
    size_t seg = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '.') {
            if (seg == 0 || ++dots > 2) return 0;
            seg = 0;
        } else if (b64_val((unsigned char)t[i]) < 0) {
            return 0;
        } else {
            seg++;
        }
    }
    return dots == 2;
}

/* ------------------------------------------------------------ helpers */

/* Whether msgpack string v is the C string s. */
static int str_is(const sl_mp_val *v, const char *s)
{
    size_t n = strlen(s);
    return v->type == SL_MP_STR && v->v.str.len == n && memcmp(v->v.str.ptr, s, n) == 0;
}

/* Decode base64url segment [s, s+n) and parse it as JSON into a->mp. 0, or -1 with why. */
static int decode_json(auth *a, const char *s, size_t n, const char **why)
{
    sl_wbuf_reset(&a->json);
    if (auth_b64url_decode(s, n, &a->json) != 0) {
        *why = "not base64url";
        return -1;
    }
    char err[128];
    if (auth_parse_json(a, a->json.data, a->json.len, &a->mp, err, sizeof err) != 0) {
        *why = "not JSON";
        return -1;
    }
    const uint8_t *p = a->mp.data;
    sl_mp_val m;
    if (sl_mp_read(&p, a->mp.data + a->mp.len, &m) != 0 || m.type != SL_MP_MAP) {
        *why = "not a JSON object";
        return -1;
    }
    return 0;
}

/* A NumericDate (seconds since the epoch) as ns, saturated. 0, or -1 if v is not a number. */
static int numeric_date(const sl_mp_val *v, int64_t *ns)
{
    double d;
    switch (v->type) {
    case SL_MP_UINT:
        *ns =
            v->v.u > (uint64_t)(INT64_MAX / 1000000000) ? INT64_MAX : (int64_t)v->v.u * 1000000000;
        return 0;
    case SL_MP_INT:
        *ns = v->v.i < INT64_MIN / 1000000000 ? INT64_MIN : v->v.i * 1000000000;
        return 0;
    case SL_MP_FLOAT:
        d = v->v.f * 1e9;
        if (isnan(d)) return -1;
        *ns = d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : (int64_t)d;
        return 0;
    default:
        return -1;
    }
}

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
    return a + b;
}

/* Whether string value v equals one of the n configured audiences. */
static int aud_ok(const auth *a, const sl_mp_val *v)
{
    for (size_t i = 0; i < a->n_aud; i++)
        if (str_is(v, a->aud[i])) return 1;
    return 0;
}

/* Append the scopes claim (v, read from p) to out as an array of strings. 0, or -1 with why. */
static int scopes_claim(const sl_mp_val *v, const uint8_t *p, const uint8_t *end, sl_wbuf *out,
                        const char **why)
{
    sl_wbuf_reset(out);
    if (v->type == SL_MP_STR) { /* RFC 8693: space-separated */
        const char *s = v->v.str.ptr, *e = s + v->v.str.len;
        uint32_t n = 0;
        for (const char *q = s; q < e;) {
            while (q < e && *q == ' ')
                q++;
            if (q == e) break;
            n++;
            while (q < e && *q != ' ')
                q++;
        }
        if (sl_mp_write_array(out, n) != 0) return -1;
        for (const char *q = s; q < e;) {
            while (q < e && *q == ' ')
                q++;
            const char *w = q;
            while (q < e && *q != ' ')
                q++;
            if (q > w && sl_mp_write_str(out, w, (size_t)(q - w)) != 0) return -1;
        }
        return 0;
    }
    if (v->type == SL_MP_ARRAY) {
        const uint8_t *q = p;
        for (uint32_t i = 0; i < v->v.n; i++) {
            sl_mp_val s;
            if (sl_mp_read(&q, end, &s) != 0 || s.type != SL_MP_STR) {
                *why = "the scopes claim must be a string or an array of strings";
                return 1;
            }
        }
        if (sl_mp_write_array(out, v->v.n) != 0 || sl_wbuf_append(out, p, (size_t)(q - p)) != 0)
            return -1;
        return 0;
    }
    *why = "the scopes claim must be a string or an array of strings";
    return 1;
}

/* ------------------------------------------------------------ signatures */

/* Verify the signature sig over t[0, signed_len) with alg. 1 valid, 0 not. */
static int signature_ok(auth *a, int rs256, const char *t, size_t signed_len, const uint8_t *sig,
                        size_t siglen)
{
    if (!rs256) {
        uint8_t mac[EVP_MAX_MD_SIZE];
        size_t maclen = 0;
        if (siglen != 32 || !EVP_MAC_init(a->hmac, NULL, 0, NULL) ||
            !EVP_MAC_update(a->hmac, (const unsigned char *)t, signed_len) ||
            !EVP_MAC_final(a->hmac, mac, &maclen, sizeof mac) || maclen != 32)
            return 0;
        return CRYPTO_memcmp(mac, sig, 32) == 0;
    }
    if ((int)siglen != EVP_PKEY_get_size(a->rsa)) return 0;
    EVP_MD_CTX_reset(a->verify);
    if (EVP_DigestVerifyInit(a->verify, NULL, a->sha256, NULL, a->rsa) != 1) return 0;
    return EVP_DigestVerify(a->verify, sig, siglen, (const unsigned char *)t, signed_len) == 1;
}

/* ------------------------------------------------------------ claims */

enum { C_EXP, C_NBF, C_IAT, C_ISS, C_AUD, C_SUB, C_PLAN, C_SCOPES, N_CLAIMS };

typedef struct claims {
    sl_mp_val v[N_CLAIMS];
    const uint8_t *at[N_CLAIMS]; /* where the value's contents start (after its header) */
    unsigned seen;
} claims;

/* Read the payload map in a->mp into cl. 0, 1 with why (a duplicate), -1 malformed. */
static int read_claims(const auth *a, claims *cl, const char **why)
{
    const char *names[N_CLAIMS] = {
        "exp", "nbf", "iat", "iss", "aud", a->consumer_claim, a->plan_claim, a->scopes_claim};
    const uint8_t *p = a->mp.data, *end = a->mp.data + a->mp.len;
    sl_mp_val m;
    if (sl_mp_read(&p, end, &m) != 0) return -1;
    memset(cl, 0, sizeof *cl);
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k;
        if (sl_mp_read(&p, end, &k) != 0 || k.type != SL_MP_STR) return -1;
        const uint8_t *vp = p;
        sl_mp_val v;
        if (sl_mp_read(&vp, end, &v) != 0) return -1;
        for (int c = 0; c < N_CLAIMS; c++) {
            if (!str_is(&k, names[c])) continue;
            if (cl->seen & (1u << c)) {
                *why = "a claim appears twice";
                return 1;
            }
            cl->seen |= 1u << c;
            cl->v[c] = v;
            cl->at[c] = vp;
        }
        if (sl_mp_skip(&p, end) != 0) return -1;
    }
    return 0;
}

/* The claims checked at `now`: 0 ok, 1 refused (a->res set), -1 failure. */
static int check_claims(auth *a, sl_ctx *ctx, const claims *cl, int64_t now)
{
    const uint8_t *end = a->mp.data + a->mp.len;
    int64_t exp, nbf, iat;
    if (!(cl->seen & (1u << C_EXP)))
        return auth_result_fail(a, AUTH_JWT, "the token has no exp claim") ? -1 : 1;
    if (numeric_date(&cl->v[C_EXP], &exp) != 0)
        return auth_result_fail(a, AUTH_JWT, "exp is not a NumericDate") ? -1 : 1;
    if (now > sat_add(exp, a->leeway))
        return auth_result_fail(a, AUTH_JWT, "the token expired") ? -1 : 1;
    if (cl->seen & (1u << C_NBF)) {
        if (numeric_date(&cl->v[C_NBF], &nbf) != 0)
            return auth_result_fail(a, AUTH_JWT, "nbf is not a NumericDate") ? -1 : 1;
        if (sat_add(nbf, -a->leeway) > now) {
            if (auth_result_fail(a, AUTH_JWT, "the token is not valid yet (nbf)") != 0) return -1;
            a->res.fail_until = sat_add(nbf, -a->leeway);
            return 1;
        }
    }
    if (cl->seen & (1u << C_IAT)) {
        if (numeric_date(&cl->v[C_IAT], &iat) != 0)
            return auth_result_fail(a, AUTH_JWT, "iat is not a NumericDate") ? -1 : 1;
        if (sat_add(iat, -a->leeway) > now) {
            if (auth_result_fail(a, AUTH_JWT, "the token was issued in the future (iat)") != 0)
                return -1;
            a->res.fail_until = sat_add(iat, -a->leeway);
            return 1;
        }
    }
    if (a->issuer && !((cl->seen & (1u << C_ISS)) && str_is(&cl->v[C_ISS], a->issuer)))
        return auth_result_fail(a, AUTH_JWT, "the token's issuer (iss) is not accepted") ? -1 : 1;
    if (a->n_aud) {
        int ok = 0;
        const sl_mp_val *v = &cl->v[C_AUD];
        if (!(cl->seen & (1u << C_AUD))) {
            ok = 0;
        } else if (v->type == SL_MP_STR) {
            ok = aud_ok(a, v);
        } else if (v->type == SL_MP_ARRAY) {
            const uint8_t *q = cl->at[C_AUD];
            for (uint32_t i = 0; i < v->v.n && !ok; i++) {
                const uint8_t *h0 = q;
                sl_mp_val s;
                if (sl_mp_read(&h0, end, &s) != 0 || sl_mp_skip(&q, end) != 0) return -1;
                ok = s.type == SL_MP_STR && aud_ok(a, &s);
            }
        }
        if (!ok)
            return auth_result_fail(a, AUTH_JWT, "the token's audience (aud) is not accepted") ? -1
                                                                                               : 1;
    }
    const sl_mp_val *sub = &cl->v[C_SUB];
    if (!(cl->seen & (1u << C_SUB)) || sub->type != SL_MP_STR || sub->v.str.len == 0 ||
        sub->v.str.len > AUTH_MAX_ID || memchr(sub->v.str.ptr, 0, sub->v.str.len))
        return auth_result_fail(a, AUTH_JWT,
                                "the token has no usable '%s' claim (a string of 1 to %d bytes)",
                                a->consumer_claim, AUTH_MAX_ID)
                   ? -1
                   : 1;
    const sl_mp_val *plan = (cl->seen & (1u << C_PLAN)) ? &cl->v[C_PLAN] : NULL;
    if (plan && plan->type != SL_MP_STR)
        return auth_result_fail(a, AUTH_JWT, "the '%s' claim must be a string", a->plan_claim) ? -1
                                                                                               : 1;
    const char *why = NULL;
    int have_scopes = (cl->seen & (1u << C_SCOPES)) != 0;
    if (have_scopes) {
        int r = scopes_claim(&cl->v[C_SCOPES], cl->at[C_SCOPES], end, &a->scratch, &why);
        if (r < 0) return -1;
        if (r > 0) return auth_result_fail(a, AUTH_JWT, "%s", why) ? -1 : 1;
    }

    /* the consumer must not be revoked; the store gives a plan and scopes the token lacks */
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 0) != 0) return -1;
    sl_mp_val splan;
    const uint8_t *sscopes = NULL;
    size_t sscopes_len = 0;
    int revoked = 0;
    int found = auth_store_consumer(a, ctx, sub->v.str.ptr, sub->v.str.len, &splan, &sscopes,
                                    &sscopes_len, &revoked);
    int rc;
    if (found < 0) {
        rc = -1;
    } else if (found && revoked) {
        rc = auth_result_fail(a, AUTH_JWT, "the consumer was revoked") ? -1 : 1;
    } else {
        const char *pl = plan ? plan->v.str.ptr : found ? splan.v.str.ptr : a->default_plan;
        size_t pll = plan ? plan->v.str.len : found ? splan.v.str.len : strlen(a->default_plan);
        const uint8_t *sc = have_scopes ? a->scratch.data
                            : found     ? sscopes
                                        : (const uint8_t *)"\x90";
        size_t scl = have_scopes ? a->scratch.len : found ? sscopes_len : 1;
        rc = auth_result_ok(a, AUTH_JWT, sub->v.str.ptr, sub->v.str.len, pl, pll, sc, scl);
        a->res.not_after = sat_add(exp, a->leeway);
    }
    h->kv_abort(ctx);
    return rc;
}

int auth_jwt_check(auth *a, sl_ctx *ctx, const char *t, size_t n, int64_t now)
{
    const char *d1 = memchr(t, '.', n);
    const char *d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - t)); /* auth_is_jwt held */
    const char *why;
    if (decode_json(a, t, (size_t)(d1 - t), &why) != 0)
        return auth_result_fail(a, AUTH_JWT, "the token's header is %s", why);

    /* the header: alg decides the key; crit names extensions we do not implement */
    const uint8_t *p = a->mp.data, *end = a->mp.data + a->mp.len;
    sl_mp_val m, alg = {0};
    int have_alg = 0;
    sl_mp_read(&p, end, &m);
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k, v;
        if (sl_mp_read(&p, end, &k) != 0 || k.type != SL_MP_STR)
            return auth_result_fail(a, AUTH_JWT, "the token's header is malformed");
        if (str_is(&k, "crit"))
            return auth_result_fail(a, AUTH_JWT, "the token's header has crit: not supported");
        if (str_is(&k, "alg")) {
            const uint8_t *vp = p;
            if (have_alg || sl_mp_read(&vp, end, &v) != 0 || v.type != SL_MP_STR)
                return auth_result_fail(a, AUTH_JWT, "the token's alg is malformed");
            alg = v;
            have_alg = 1;
        }
        if (sl_mp_skip(&p, end) != 0)
            return auth_result_fail(a, AUTH_JWT, "the token's header is malformed");
    }
    if (!have_alg) return auth_result_fail(a, AUTH_JWT, "the token's header has no alg");
    int rs256 = str_is(&alg, "RS256");
    if (!(rs256 && a->rsa) && !(str_is(&alg, "HS256") && a->hmac))
        return auth_result_fail(a, AUTH_JWT, "alg '%.*s' is not accepted (accepted: %s%s%s)",
                                (int)(alg.v.str.len > 16 ? 16 : alg.v.str.len), alg.v.str.ptr,
                                a->hmac ? "HS256" : "", a->hmac && a->rsa ? ", " : "",
                                a->rsa ? "RS256" : "");

    sl_wbuf_reset(&a->sig);
    if (auth_b64url_decode(d2 + 1, n - (size_t)(d2 + 1 - t), &a->sig) != 0)
        return auth_result_fail(a, AUTH_JWT, "the token's signature is not base64url");
    if (!signature_ok(a, rs256, t, (size_t)(d2 - t), a->sig.data, a->sig.len))
        return auth_result_fail(a, AUTH_JWT, "the token's signature is invalid");

    if (decode_json(a, d1 + 1, (size_t)(d2 - d1 - 1), &why) != 0)
        return auth_result_fail(a, AUTH_JWT, "the token's payload is %s", why);
    claims cl;
    int r = read_claims(a, &cl, &why);
    if (r != 0)
        return auth_result_fail(a, AUTH_JWT, "the token's payload is malformed%s%s",
                                r > 0 ? ": " : "", r > 0 ? why : "");
    return check_claims(a, ctx, &cl, now) < 0 ? -1 : 0;
}
