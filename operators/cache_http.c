/*
 * cache_http.c - what `cache` and `cache.store` read and write: the parts of
 * an event, the key, Cache-Control, Accept-Encoding, If-None-Match, ETags,
 * gzip, and the answered event.
 *
 * Nothing here allocates but the sl_wbuf it appends to (reused by the
 * caller) and the deflate stream (made once per instance), so a hit costs
 * no malloc. Events are read in place (sluice/msgpack.h); an answer is the
 * request's own bytes with `response` (and `cache`) appended, the map
 * header rewritten for the new count, pairs of those names the event had
 * left out.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/opensslconf.h>
#ifndef OPENSSL_NO_DEPRECATED_3_0
#define CACHE_SHA256_DIRECT 1
#include <openssl/sha.h>
#else
#include <openssl/evp.h>
#endif

#include <string.h>
#include <strings.h>

#include "cache.h"

/* ------------------------------------------------------------ reading */

/*
 * Skip one value at *pp: fixmap and fixarray headers and the scalars whose
 * size shows in their first bytes inline, nesting counted; the rest
 * through sl_mp_read. Reading a gateway request walks about 60 values
 * (its headers, scopes, auth and ratelimit maps) and is half the cost of a
 * hit (docs/gateway/cache.md, "what it costs").
 */
static inline int skip(const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    uint64_t pending = 1;
    while (pending) {
        if (p >= end) return -1;
        uint8_t c = *p;
        if ((c & 0xe0) == 0x80) { /* fixmap 0x80-0x8f, fixarray 0x90-0x9f */
            p++;
            pending = pending - 1 + ((c & 0x10) ? (c & 0x0fu) : 2ull * (c & 0x0fu));
            continue;
        }
        size_t n = sl__mp_scalar_size(p, end); /* fixint, fixstr, str8, numbers, fixext... */
        if (n) {
            if ((size_t)(end - p) < n) return -1;
            p += n;
            pending--;
            continue;
        }
        sl_mp_val v;
        if (sl_mp_read(&p, end, &v) != 0) return -1;
        pending--;
        if (v.type == SL_MP_ARRAY)
            pending += v.v.n;
        else if (v.type == SL_MP_MAP)
            pending += 2ull * v.v.n;
    }
    *pp = p;
    return 0;
}

/*
 * Read a map key at *pp: 1 and its bytes when it is a string (fixstr
 * inline), 0 when it is another scalar, -1 when malformed. A key that is a
 * map or an array is skipped whole (0).
 */
static inline int read_key(const uint8_t **pp, const uint8_t *end, sl_mp_val *k)
{
    const uint8_t *p = *pp;
    if (p < end && (*p & 0xe0) == 0xa0) {
        size_t n = *p & 0x1fu;
        if ((size_t)(end - p) < n + 1) return -1;
        k->type = SL_MP_STR;
        k->v.str.ptr = (const char *)p + 1;
        k->v.str.len = (uint32_t)n;
        *pp = p + 1 + n;
        return 1;
    }
    if (p < end && ((*p & 0xe0) == 0x80 || *p == 0xdc || *p == 0xdd || *p == 0xde || *p == 0xdf)) {
        if (skip(pp, end) != 0) return -1; /* a container as a key */
        k->type = SL_MP_NIL;
        return 0;
    }
    if (sl_mp_read(pp, end, k) != 0) return -1;
    return k->type == SL_MP_STR;
}

static int streq(const sl_mp_val *k, const char *s, size_t n)
{
    return k->v.str.len == n && memcmp(k->v.str.ptr, s, n) == 0;
}

static cache_str str_of(const uint8_t *v, const uint8_t *end)
{
    sl_mp_val x;
    cache_str s = {"", 0};
    if (v && sl_mp_read(&v, end, &x) == 0 && x.type == SL_MP_STR) {
        s.p = x.v.str.ptr;
        s.n = x.v.str.len;
    }
    return s;
}

/* The request headers the cache reads, from the `headers` map. */
static int read_headers(cache_req *r)
{
    const uint8_t *p = r->headers.v, *end = r->headers.end;
    sl_mp_val m;
    if (sl_mp_read(&p, end, &m) != 0) return -1;
    if (m.type != SL_MP_MAP) return 0;
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k;
        int is = read_key(&p, end, &k);
        if (is < 0) return -1;
        const uint8_t *v = p;
        if (skip(&p, end) != 0) return -1;
        if (!is) continue;
        cache_str *dst = NULL;
        switch (k.v.str.len) {
        case 13:
            if (streq(&k, "cache-control", 13))
                dst = &r->cc;
            else if (streq(&k, "if-none-match", 13))
                dst = &r->inm;
            break;
        case 15:
            if (streq(&k, "accept-encoding", 15)) dst = &r->ae;
            break;
        }
        if (dst) *dst = str_of(v, p);
    }
    return 0;
}

int cache_req_read(const uint8_t *ev, size_t len, cache_req *r)
{
    memset(r, 0, sizeof *r);
    r->method.p = r->path.p = r->cc.p = r->inm.p = r->ae.p = "";
    const uint8_t *p = ev, *end = ev + len;
    sl_mp_val m;
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) return -1;
    r->ev = ev;
    r->end = end;
    r->body = p;
    r->n_pairs = m.v.n;
    for (uint32_t i = 0; i < m.v.n; i++) {
        const uint8_t *pair = p;
        sl_mp_val k;
        int is = read_key(&p, end, &k);
        if (is < 0) return -1;
        const uint8_t *v = p;
        if (skip(&p, end) != 0) return -1;
        if (!is) continue;
        cache_field *f = NULL;
        switch (k.v.str.len) {
        case 4:
            if (streq(&k, "path", 4)) {
                r->path = str_of(v, p);
                sl_mp_val x;
                const uint8_t *q = v;
                r->path_is_str = sl_mp_read(&q, p, &x) == 0 && x.type == SL_MP_STR;
            } else if (streq(&k, "time", 4)) {
                f = &r->time;
            }
            break;
        case 5:
            if (streq(&k, "query", 5))
                f = &r->query;
            else if (streq(&k, "cache", 5))
                f = &r->marker;
            break;
        case 6:
            if (streq(&k, "method", 6))
                r->method = str_of(v, p);
            else if (streq(&k, "scopes", 6))
                f = &r->scopes;
            break;
        case 7:
            if (streq(&k, "headers", 7)) f = &r->headers;
            break;
        case 8:
            if (streq(&k, "consumer", 8))
                f = &r->consumer;
            else if (streq(&k, "response", 8))
                f = &r->response;
            break;
        }
        if (f) {
            f->pair = pair;
            f->v = v;
            f->end = p;
        }
    }
    if (r->time.v) {
        const uint8_t *q = r->time.v;
        sl_mp_val x;
        r->has_time =
            sl_mp_read(&q, r->time.end, &x) == 0 && sl_mp_timestamp_ns(&x, &r->time_ns) == 0;
    }
    if (r->headers.v && read_headers(r) != 0) return -1;
    return 0;
}

/* ------------------------------------------------------------ HTTP rules */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Delta-seconds (RFC 9111 section 1.2.2): digits, clamped to 2^31; -1 if not digits. */
static int64_t delta_seconds(const char *s, size_t n)
{
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') { /* tolerated, as many caches do */
        s++;
        n -= 2;
    }
    if (n == 0) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        if (v < 2147483648ll) v = v * 10 + (s[i] - '0');
    }
    return v > 2147483648ll ? 2147483648ll : v;
}

void cache_cc_parse(const char *s, size_t n, cache_cc *cc)
{
    memset(cc, 0, sizeof *cc);
    size_t i = 0;
    while (i < n) {
        while (i < n && (is_ows(s[i]) || s[i] == ','))
            i++;
        size_t name = i;
        while (i < n && s[i] != '=' && s[i] != ',' && !is_ows(s[i]))
            i++;
        size_t name_len = i - name;
        while (i < n && is_ows(s[i]))
            i++;
        const char *val = NULL;
        size_t val_len = 0;
        if (i < n && s[i] == '=') {
            i++;
            while (i < n && is_ows(s[i]))
                i++;
            val = s + i;
            if (i < n && s[i] == '"') { /* quoted-string: commas inside do not split */
                i++;
                while (i < n && s[i] != '"')
                    i += s[i] == '\\' && i + 1 < n ? 2 : 1;
                if (i < n) i++;
            } else {
                while (i < n && s[i] != ',' && !is_ows(s[i]))
                    i++;
            }
            val_len = (size_t)(s + i - val);
        }
        while (i < n && s[i] != ',')
            i++; /* anything else up to the next directive */
        const char *d = s + name;
#define IS(lit) (name_len == sizeof lit - 1 && strncasecmp(d, lit, name_len) == 0)
        if (IS("no-store")) {
            cc->no_store = 1;
        } else if (IS("no-cache")) {
            cc->no_cache = 1;
        } else if (IS("private")) {
            cc->private_ = 1;
        } else if (IS("max-age") || IS("s-maxage")) {
            /* an invalid value makes the response stale at once (RFC 9111 section 1.2.2) */
            int64_t v = val ? delta_seconds(val, val_len) : -1;
            if (v < 0) v = 0;
            if (IS("max-age")) {
                cc->max_age_set = 1;
                cc->max_age = v;
            } else {
                cc->s_maxage_set = 1;
                cc->s_maxage = v;
            }
        }
#undef IS
    }
}

/* Whether a qvalue (RFC 9110 section 12.4.2) is above 0; an invalid one counts as 0. */
static int q_positive(const char *s, size_t n)
{
    if (n == 0) return 0;
    if (s[0] == '1') {
        for (size_t i = 1; i < n; i++)
            if (!(s[i] == '.' && i == 1) && s[i] != '0') return 0;
        return 1;
    }
    if (s[0] != '0') return 0;
    if (n == 1) return 0;
    if (s[1] != '.' || n > 5) return 0;
    int pos = 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        pos |= s[i] != '0';
    }
    return pos;
}

int cache_accepts_gzip(const char *s, size_t n)
{
    int gzip = -1, star = -1; /* -1: not listed */
    size_t i = 0;
    while (i < n) {
        while (i < n && (is_ows(s[i]) || s[i] == ','))
            i++;
        size_t c = i;
        while (i < n && s[i] != ',' && s[i] != ';' && !is_ows(s[i]))
            i++;
        size_t clen = i - c;
        int q = 1;
        while (i < n && s[i] != ',') { /* parameters: only q matters */
            while (i < n && (is_ows(s[i]) || s[i] == ';'))
                i++;
            size_t pn = i;
            while (i < n && s[i] != '=' && s[i] != ',' && s[i] != ';' && !is_ows(s[i]))
                i++;
            size_t pnl = i - pn;
            while (i < n && is_ows(s[i]))
                i++;
            if (i < n && s[i] == '=') {
                i++;
                while (i < n && is_ows(s[i]))
                    i++;
                size_t pv = i;
                while (i < n && s[i] != ',' && s[i] != ';' && !is_ows(s[i]))
                    i++;
                if (pnl == 1 && (s[pn] == 'q' || s[pn] == 'Q')) q = q_positive(s + pv, i - pv);
            } else if (pnl == 0 && i < n && s[i] != ',' && s[i] != ';') {
                i++; /* stray character */
            }
        }
        if (clen == 0) continue;
        if ((clen == 4 && strncasecmp(s + c, "gzip", 4) == 0) ||
            (clen == 6 && strncasecmp(s + c, "x-gzip", 6) == 0))
            gzip = gzip == 1 ? 1 : q; /* listed twice: any acceptance counts */
        else if (clen == 1 && s[c] == '*')
            star = q;
    }
    return gzip >= 0 ? gzip : star > 0;
}

/* The opaque-tag of an entity-tag (W/ dropped), or n 0 if it is not one. */
static cache_str opaque(const char *s, size_t n)
{
    cache_str o = {s, 0};
    if (n >= 2 && s[0] == 'W' && s[1] == '/') {
        s += 2;
        n -= 2;
    }
    if (n < 2 || s[0] != '"' || s[n - 1] != '"') return o;
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c < 0x21 || c == 0x7f) return o;
    }
    o.p = s;
    o.n = (uint32_t)n;
    return o;
}

int cache_etag_valid(const char *s, size_t n)
{
    return n <= CACHE_ETAG_MAX && opaque(s, n).n > 0;
}

int cache_inm_match(const char *inm, size_t n, const char *etag, size_t elen)
{
    cache_str want = opaque(etag, elen);
    if (!want.n) return 0;
    size_t i = 0;
    while (i < n && is_ows(inm[i]))
        i++;
    if (i < n && inm[i] == '*') {
        size_t j = i + 1;
        while (j < n && is_ows(inm[j]))
            j++;
        return j == n;
    }
    while (i < n) {
        while (i < n && (is_ows(inm[i]) || inm[i] == ','))
            i++;
        if (i == n) break;
        size_t start = i;
        if (n - i >= 2 && inm[i] == 'W' && inm[i + 1] == '/') i += 2;
        if (i >= n || inm[i] != '"') return 0; /* not a list of entity-tags */
        i++;
        while (i < n && inm[i] != '"')
            i++;
        if (i == n) return 0;
        i++;
        cache_str got = opaque(inm + start, i - start);
        if (got.n == want.n && memcmp(got.p, want.p, got.n) == 0) return 1;
    }
    return 0;
}

int cache_etag_make(const void *body, size_t n, char out[19])
{
    unsigned char sha[32];
#ifdef CACHE_SHA256_DIRECT
    SHA256_CTX c;
    if (SHA256_Init(&c) != 1 || SHA256_Update(&c, body, n) != 1 || SHA256_Final(sha, &c) != 1)
        return -1;
#else
    unsigned int len = 0;
    if (EVP_Digest(body, n, sha, &len, EVP_sha256(), NULL) != 1) return -1;
#endif
    static const char hex[] = "0123456789abcdef";
    out[0] = '"';
    for (int i = 0; i < 8; i++) {
        out[1 + 2 * i] = hex[sha[i] >> 4];
        out[2 + 2 * i] = hex[sha[i] & 15];
    }
    out[17] = '"';
    out[18] = '\0';
    return 0;
}

size_t cache_etag_variant(const cache_resp *resp, int gz, char *out, size_t cap)
{
    size_t n = resp->etag_len;
    if (!resp->etag || n + 4 > cap) return 0;
    memcpy(out, resp->etag, n);
    if (gz) { /* "abc" -> "abc-gz": the gzip form is another representation */
        memcpy(out + n - 1, "-gz\"", 4);
        n += 3;
    }
    return n;
}

/* ------------------------------------------------------------ the key */

typedef struct kv {
    const char *k, *v;
    uint32_t kn, vn;
} kv;

static int bytes_cmp(const char *a, uint32_t an, const char *b, uint32_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

static int key_put_encoded(sl_wbuf *key, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (sl_wbuf_reserve(key, 3 * n) != 0) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == '%' || c == '&' || c == '=' || c == '#' || c == '+') {
            key->data[key->len++] = '%';
            key->data[key->len++] = (uint8_t)hex[c >> 4];
            key->data[key->len++] = (uint8_t)hex[c & 15];
        } else {
            key->data[key->len++] = c;
        }
    }
    return 0;
}

int cache_key(const cache_req *r, const cache_cfg *cfg, sl_wbuf *key, size_t *pq_len,
              const char **why)
{
    sl_wbuf_reset(key);
    const char *path = r->path.p;
    uint32_t plen = r->path.n;
    if (!r->path_is_str || plen == 0 || path[0] != '/') {
        *why = "the path is not a string starting with '/'";
        return 1;
    }
    if (plen > CACHE_MAX_PATH || memchr(path, '?', plen) || memchr(path, '\0', plen)) {
        *why = "the path is too long or holds '?' or NUL";
        return 1;
    }
    if (sl_wbuf_append(key, path, plen) != 0) return -1;
    if (r->query.v) {
        kv q[CACHE_MAX_QUERY];
        const uint8_t *p = r->query.v, *end = r->query.end;
        sl_mp_val m;
        if (sl_mp_read(&p, end, &m) != 0) return -1;
        if (m.type == SL_MP_MAP) {
            if (m.v.n > CACHE_MAX_QUERY) {
                *why = "too many query parameters";
                return 1;
            }
            for (uint32_t i = 0; i < m.v.n; i++) {
                sl_mp_val k, v;
                if (sl_mp_read(&p, end, &k) != 0 || k.type != SL_MP_STR ||
                    sl_mp_read(&p, end, &v) != 0 || v.type != SL_MP_STR) {
                    *why = "a query parameter or value is not a string";
                    return 1;
                }
                kv x = {k.v.str.ptr, v.v.str.ptr, k.v.str.len, v.v.str.len};
                uint32_t j = i; /* insertion sort: a handful of parameters */
                while (j > 0 && bytes_cmp(q[j - 1].k, q[j - 1].kn, x.k, x.kn) > 0) {
                    q[j] = q[j - 1];
                    j--;
                }
                q[j] = x;
            }
            for (uint32_t i = 0; i < m.v.n; i++) {
                uint8_t sep = i ? '&' : '?';
                if (sl_wbuf_append(key, &sep, 1) != 0 || key_put_encoded(key, q[i].k, q[i].kn) ||
                    sl_wbuf_append(key, "=", 1) != 0 || key_put_encoded(key, q[i].v, q[i].vn))
                    return -1;
            }
        } else if (m.type != SL_MP_NIL) {
            *why = "the query is not a map";
            return 1;
        }
    }
    *pq_len = key->len;
    if (sl_wbuf_append(key, "", 1) != 0) return -1;
    if (cfg->vary_scope && r->scopes.v) {
        cache_str s[CACHE_MAX_SCOPES];
        const uint8_t *p = r->scopes.v, *end = r->scopes.end;
        sl_mp_val a;
        if (sl_mp_read(&p, end, &a) != 0) return -1;
        if (a.type == SL_MP_ARRAY) {
            if (a.v.n > CACHE_MAX_SCOPES) {
                *why = "too many scopes";
                return 1;
            }
            uint32_t n = 0;
            for (uint32_t i = 0; i < a.v.n; i++) {
                sl_mp_val v;
                if (sl_mp_read(&p, end, &v) != 0 || v.type != SL_MP_STR) {
                    *why = "a scope is not a string";
                    return 1;
                }
                cache_str x = {v.v.str.ptr, v.v.str.len};
                uint32_t j = n;
                while (j > 0 && bytes_cmp(s[j - 1].p, s[j - 1].n, x.p, x.n) > 0)
                    j--;
                if (j > 0 && bytes_cmp(s[j - 1].p, s[j - 1].n, x.p, x.n) == 0) continue; /* twice */
                memmove(s + j + 1, s + j, (n - j) * sizeof *s);
                s[j] = x;
                n++;
            }
            for (uint32_t i = 0; i < n; i++) {
                uint8_t l[4] = {(uint8_t)(s[i].n >> 24), (uint8_t)(s[i].n >> 16),
                                (uint8_t)(s[i].n >> 8), (uint8_t)s[i].n};
                if (sl_wbuf_append(key, l, 4) != 0 || sl_wbuf_append(key, s[i].p, s[i].n) != 0)
                    return -1;
            }
        } else if (a.type != SL_MP_NIL) {
            *why = "scopes is not an array";
            return 1;
        }
    }
    if (cfg->vary_consumer) {
        if (sl_wbuf_append(key, "\x01", 1) != 0) return -1;
        if (r->consumer.v
                ? sl_wbuf_append(key, r->consumer.v, (size_t)(r->consumer.end - r->consumer.v))
                : sl_wbuf_append(key, "\xc0", 1))
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ writing */

static int put_key(sl_wbuf *o, const char *s, size_t n)
{
    return sl_mp_write_str(o, s, n);
}

/* Names of the stored header pairs a 304 repeats (RFC 9110 section 15.4.5). */
static int kept_in_304(const uint8_t **p, const uint8_t *end, int *keep)
{
    sl_mp_val k;
    if (sl_mp_read(p, end, &k) != 0) return -1;
    *keep = k.type == SL_MP_STR &&
            (streq(&k, "cache-control", 13) || streq(&k, "vary", 4) || streq(&k, "expires", 7) ||
             streq(&k, "content-location", 16) || streq(&k, "last-modified", 13));
    return sl_mp_skip(p, end);
}

static int write_digits(sl_wbuf *o, int64_t v)
{
    char num[24];
    size_t i = sizeof num;
    if (v < 0) v = 0;
    do {
        num[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    return sl_mp_write_str(o, num + i, sizeof num - i);
}

/* The `response` value: {status, headers, body}. */
static int write_response(sl_wbuf *o, const cache_resp *resp, unsigned flags, int64_t age)
{
    int gz = (flags & CACHE_ANSWER_GZIP) && resp->gz;
    int nm = (flags & CACHE_ANSWER_304) != 0;
    char etag[CACHE_ETAG_MAX + 8];
    size_t elen = cache_etag_variant(resp, gz, etag, sizeof etag);
    uint32_t n = (elen > 0) + ((flags & CACHE_ANSWER_HIT) ? 2 : 0) +
                 ((flags & CACHE_ANSWER_MISS) ? 1 : 0) + (gz && !nm);
    const uint8_t *end = resp->hdrs + resp->hdrs_len;
    if (nm) {
        for (const uint8_t *p = resp->hdrs; p < end;) {
            int keep;
            if (kept_in_304(&p, end, &keep) != 0) return -1;
            n += (uint32_t)keep;
        }
    } else {
        n += resp->n_hdrs;
    }
    if (sl_mp_write_map(o, 3) | put_key(o, "status", 6) |
        sl_mp_write_uint(o, nm ? 304 : resp->status) | put_key(o, "headers", 7) |
        sl_mp_write_map(o, n))
        return -1;
    if (nm) {
        for (const uint8_t *p = resp->hdrs; p < end;) {
            const uint8_t *pair = p;
            int keep;
            if (kept_in_304(&p, end, &keep) != 0) return -1;
            if (keep && sl_wbuf_append(o, pair, (size_t)(p - pair)) != 0) return -1;
        }
    } else if (sl_wbuf_append(o, resp->hdrs, resp->hdrs_len) != 0) {
        return -1;
    }
    if (elen && (put_key(o, "etag", 4) | sl_mp_write_str(o, etag, elen))) return -1;
    if (gz && !nm && (put_key(o, "content-encoding", 16) | sl_mp_write_str(o, "gzip", 4)))
        return -1;
    if (flags & CACHE_ANSWER_HIT) {
        if (put_key(o, "age", 3) | write_digits(o, age) | put_key(o, "x-cache", 7) |
            sl_mp_write_str(o, "HIT", 3))
            return -1;
    } else if (flags & CACHE_ANSWER_MISS) {
        if (put_key(o, "x-cache", 7) | sl_mp_write_str(o, "MISS", 4)) return -1;
    }
    if (put_key(o, "body", 4)) return -1;
    if (nm) return sl_mp_write_str(o, "", 0);
    return gz ? sl_wbuf_append(o, resp->gz, resp->gz_len)
              : sl_wbuf_append(o, resp->body, resp->body_len);
}

/*
 * Write the event's map header for `count` pairs, then its pairs but the
 * ones at skip1 and skip2 (fields, absent when their v is NULL).
 */
static int copy_event(sl_wbuf *o, const cache_req *r, uint32_t count, const cache_field *skip1,
                      const cache_field *skip2)
{
    if (sl_mp_write_map(o, count) != 0) return -1;
    const cache_field *a = skip1 && skip1->v ? skip1 : NULL, *b = skip2 && skip2->v ? skip2 : NULL;
    if (!a) {
        a = b;
        b = NULL;
    }
    if (a && b && b->pair < a->pair) {
        const cache_field *t = a;
        a = b;
        b = t;
    }
    const uint8_t *from = r->body;
    if (a) {
        if (sl_wbuf_append(o, from, (size_t)(a->pair - from)) != 0) return -1;
        from = a->end;
    }
    if (b) {
        if (sl_wbuf_append(o, from, (size_t)(b->pair - from)) != 0) return -1;
        from = b->end;
    }
    return sl_wbuf_append(o, from, (size_t)(r->end - from));
}

int cache_write_answer(sl_wbuf *out, const cache_req *r, const cache_resp *resp, unsigned flags,
                       int64_t age, const uint8_t *marker, size_t mlen)
{
    size_t at = out->len;
    uint32_t count = r->n_pairs - (r->response.v != NULL) + 1;
    if (marker) count += 1 - (r->marker.v != NULL);
    if (copy_event(out, r, count, &r->response, marker ? &r->marker : NULL) != 0 ||
        put_key(out, "response", 8) != 0 || write_response(out, resp, flags, age) != 0 ||
        (marker && (put_key(out, "cache", 5) != 0 || sl_wbuf_append(out, marker, mlen) != 0))) {
        out->len = at;
        return -1;
    }
    return 0;
}

int cache_write_marked(sl_wbuf *out, const cache_req *r, const uint8_t *marker, size_t mlen)
{
    size_t at = out->len;
    uint32_t count = r->n_pairs + 1 - (r->marker.v != NULL);
    if (copy_event(out, r, count, &r->marker, NULL) != 0 || put_key(out, "cache", 5) != 0 ||
        sl_wbuf_append(out, marker, mlen) != 0) {
        out->len = at;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ gzip */

int cache_gzip_init(cache_gzip *g, int level)
{
    memset(g, 0, sizeof *g);
    g->level = level;
    if (level <= 0) return 0;
    /* 15 + 16: a 32 KiB window with the gzip wrapper (RFC 1952), mtime 0: deterministic */
    if (deflateInit2(&g->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    g->ready = 1;
    return 0;
}

void cache_gzip_fini(cache_gzip *g)
{
    if (g->ready) deflateEnd(&g->z);
    g->ready = 0;
}

int cache_gzip_bin(cache_gzip *g, const void *in, size_t n, sl_wbuf *out)
{
    if (!g->ready || n > UINT32_MAX / 2 || deflateReset(&g->z) != Z_OK) return -1;
    uLong bound = deflateBound(&g->z, (uLong)n);
    size_t at = out->len;
    if (sl_wbuf_reserve(out, 5 + (size_t)bound) != 0) return -1;
    g->z.next_in = (Bytef *)(uintptr_t)in;
    g->z.avail_in = (uInt)n;
    g->z.next_out = out->data + at + 5;
    g->z.avail_out = (uInt)bound;
    if (deflate(&g->z, Z_FINISH) != Z_STREAM_END) return -1;
    size_t clen = (size_t)bound - g->z.avail_out;
    uint8_t *h = out->data + at;
    h[0] = 0xc6; /* bin32 */
    h[1] = (uint8_t)(clen >> 24);
    h[2] = (uint8_t)(clen >> 16);
    h[3] = (uint8_t)(clen >> 8);
    h[4] = (uint8_t)clen;
    out->len = at + 5 + clen;
    return 0;
}
