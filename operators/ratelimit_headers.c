/*
 * ratelimit_headers.c - render the rate-limit header fields (the IETF draft
 * -08 RateLimit-Policy and RateLimit, the legacy X-RateLimit-*) from a
 * bucket's numbers or from the `ratelimit` field of an event. See
 * ratelimit_headers.h for the format; formatting happens in stack buffers.
 */
#include "ratelimit_headers.h"

#include <string.h>

#define SF_INT_MAX 999999999999999ll /* RFC 8941: at most 15 digits */

static int64_t sf_int(int64_t v)
{
    return v > SF_INT_MAX ? SF_INT_MAX : v;
}

/* Append name as an sf-string ("..." with \" and \\ escaped) to buf at *n. 0, or -1 if not
 * printable. */
static int put_sf_string(char *buf, size_t cap, size_t *n, const char *s, size_t len)
{
    size_t k = *n;
    if (k + 2 * len + 3 > cap) return -1;
    buf[k++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e) return -1;
        if (c == '"' || c == '\\') buf[k++] = '\\';
        buf[k++] = (char)c;
    }
    buf[k++] = '"';
    buf[k] = '\0';
    *n = k;
    return 0;
}

/*
 * Append prefix and then a (>= 0, at most SF_INT_MAX) in decimal to buf at
 * *n. 0, or -1 if it does not fit. (No printf: this runs for every request.)
 */
static int put(char *buf, size_t cap, size_t *n, const char *prefix, int64_t a)
{
    char digits[20];
    size_t nd = 0, pl = strlen(prefix);
    do {
        digits[nd++] = (char)('0' + a % 10);
        a /= 10;
    } while (a > 0);
    if (*n + pl + nd + 1 > cap) return -1;
    memcpy(buf + *n, prefix, pl);
    *n += pl;
    while (nd)
        buf[(*n)++] = digits[--nd];
    buf[*n] = '\0';
    return 0;
}

int sl_ratelimit_render(const sl_ratelimit_values *v, sl_ratelimit_header_fn add, void *arg)
{
    if (!v->name || v->name_len == 0 || v->name_len > SL_RATELIMIT_NAME_MAX || v->limit < 0 ||
        v->window < 0 || v->burst < 0 || v->remaining < 0 || v->reset < 0)
        return -1;
    char buf[2 * SL_RATELIMIT_NAME_MAX + 128];
    size_t n = 0;
    /* RateLimit-Policy: "name";q=LIMIT[;w=WINDOW][;sluice-burst=BURST] */
    if (put_sf_string(buf, sizeof buf, &n, v->name, v->name_len) != 0 ||
        put(buf, sizeof buf, &n, ";q=", sf_int(v->limit)) != 0 ||
        (v->window > 0 && put(buf, sizeof buf, &n, ";w=", sf_int(v->window)) != 0) ||
        (v->burst > 0 && v->burst != v->limit &&
         put(buf, sizeof buf, &n, ";sluice-burst=", sf_int(v->burst)) != 0))
        return -1;
    int rc = add(arg, "ratelimit-policy", buf, n);
    if (rc != 0) return rc;
    /* RateLimit: "name";r=REMAINING;t=RESET */
    n = 0;
    if (put_sf_string(buf, sizeof buf, &n, v->name, v->name_len) != 0 ||
        put(buf, sizeof buf, &n, ";r=", sf_int(v->remaining)) != 0 ||
        put(buf, sizeof buf, &n, ";t=", sf_int(v->reset)) != 0)
        return -1;
    if ((rc = add(arg, "ratelimit", buf, n)) != 0) return rc;
    static const char *const legacy[] = {"x-ratelimit-limit", "x-ratelimit-remaining",
                                         "x-ratelimit-reset"};
    const int64_t vals[] = {v->limit, v->remaining, v->reset};
    for (int i = 0; i < 3; i++) {
        n = 0;
        if (put(buf, sizeof buf, &n, "", sf_int(vals[i])) != 0) return -1;
        if ((rc = add(arg, legacy[i], buf, n)) != 0) return rc;
    }
    return 0;
}

/* A msgpack integer as int64 (a non-negative one from UINT). 0, or -1 if not an integer that fits.
 */
static int read_int(const sl_mp_val *x, int64_t *out)
{
    if (x->type == SL_MP_INT) {
        *out = x->v.i;
        return 0;
    }
    if (x->type == SL_MP_UINT && x->v.u <= (uint64_t)INT64_MAX) {
        *out = (int64_t)x->v.u;
        return 0;
    }
    return -1;
}

/* The window of a policy text "200;w=1" (0 when it states none). */
static int64_t policy_window(const char *s, size_t len)
{
    for (size_t i = 0; i + 2 < len; i++) {
        if (s[i] != ';' || s[i + 1] != 'w' || s[i + 2] != '=') continue;
        int64_t w = 0;
        size_t j = i + 3;
        if (j >= len || s[j] < '0' || s[j] > '9') return 0;
        for (; j < len && s[j] >= '0' && s[j] <= '9' && w <= SF_INT_MAX; j++)
            w = w * 10 + (s[j] - '0');
        return w;
    }
    return 0;
}

int sl_ratelimit_parse(const uint8_t *map, size_t len, sl_ratelimit_values *v)
{
    const uint8_t *p = map, *end = map + len;
    sl_mp_val m;
    memset(v, 0, sizeof *v);
    v->name = "default";
    v->name_len = 7;
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) return -1;
    int have = 0; /* bits: limit, remaining, reset */
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k, x;
        if (sl_mp_read(&p, end, &k) != 0) return -1;
        if (k.type != SL_MP_STR) {
            /* a key that is no string: step over what it holds, then its value */
            const uint8_t *q = p;
            uint64_t more = k.type == SL_MP_MAP ? 2ull * k.v.n : k.type == SL_MP_ARRAY ? k.v.n : 0;
            while (more--)
                if (sl_mp_skip(&q, end) != 0) return -1;
            p = q;
            if (sl_mp_skip(&p, end) != 0) return -1;
            continue;
        }
        const uint8_t *val = p;
        if (sl_mp_skip(&p, end) != 0 || sl_mp_read(&val, end, &x) != 0) return -1;
#define KEY(s) (k.v.str.len == sizeof(s) - 1 && memcmp(k.v.str.ptr, s, sizeof(s) - 1) == 0)
        if (KEY("limit")) {
            if (read_int(&x, &v->limit) != 0) return -1;
            have |= 1;
        } else if (KEY("remaining")) {
            if (read_int(&x, &v->remaining) != 0) return -1;
            have |= 2;
        } else if (KEY("reset")) {
            if (read_int(&x, &v->reset) != 0) return -1;
            have |= 4;
        } else if (KEY("burst")) {
            if (read_int(&x, &v->burst) != 0) return -1;
        } else if (KEY("name")) {
            if (x.type != SL_MP_STR) return -1;
            v->name = x.v.str.ptr;
            v->name_len = x.v.str.len;
        } else if (KEY("policy")) {
            if (x.type != SL_MP_STR) return -1;
            v->window = policy_window(x.v.str.ptr, x.v.str.len);
        }
#undef KEY
    }
    return have == 7 ? 0 : -1;
}

int sl_ratelimit_headers(const uint8_t *ratelimit_map, size_t len, sl_ratelimit_header_fn add,
                         void *arg)
{
    sl_ratelimit_values v;
    if (sl_ratelimit_parse(ratelimit_map, len, &v) != 0) return -1;
    return sl_ratelimit_render(&v, add, arg); /* checks everything before the first add */
}

static int add_http(void *arg, const char *name, const char *value, size_t len)
{
    sl_wbuf *out = arg;
    size_t nl = strlen(name);
    if (sl_wbuf_reserve(out, nl + 2 + len + 2) != 0) return -1;
    sl_wbuf_append(out, name, nl); /* reserved: cannot fail */
    sl_wbuf_append(out, ": ", 2);
    sl_wbuf_append(out, value, len);
    sl_wbuf_append(out, "\r\n", 2);
    return 0;
}

int sl_ratelimit_headers_http(const uint8_t *ratelimit_map, size_t len, sl_wbuf *out)
{
    size_t before = out->len;
    int rc = sl_ratelimit_headers(ratelimit_map, len, add_http, out);
    if (rc != 0) out->len = before;
    return rc == 0 ? 0 : -1;
}
