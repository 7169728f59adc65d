/*
 * expr_value.c - expression values over msgpack: decoding in place,
 * equality, ordering, map lookup, encoding back to msgpack, UTF-8 helpers.
 *
 * Numbers follow cel-go's heterogeneous rules: int, uint and double compare
 * by mathematical value (exactly: no rounding through double), NaN is
 * unordered and unequal to everything. Values of different kinds are never
 * equal (null equals only null). Lists compare element-wise, maps by key set
 * and values. Nothing here allocates; nested comparison stops at
 * SL__X_MAX_NEST levels so a hostile event cannot exhaust the C stack.
 */
#include <math.h>
#include <string.h>

#include "expr_internal.h"

const char *sl__xkind_name(int kind)
{
    switch (kind) {
    case SL_EXPR_DYN:
        return "dyn";
    case XK_NULL:
        return "null_type";
    case XK_BOOL:
        return "bool";
    case XK_INT:
        return "int";
    case XK_UINT:
        return "uint";
    case XK_DOUBLE:
        return "double";
    case XK_STRING:
        return "string";
    case XK_BYTES:
        return "bytes";
    case XK_LIST:
        return "list";
    case XK_MAP:
        return "map";
    case XK_TIMESTAMP:
        return "timestamp";
    case XK_DURATION:
        return "duration";
    case XK_ERROR:
        return "error";
    default:
        return "?";
    }
}

sl__xval sl__xstatic_err(const char *msg)
{
    sl__xval v;
    v.kind = XK_ERROR;
    v.flags = 0;
    v.v.s = msg;
    v.len = (uint32_t)strlen(msg);
    return v;
}

static uint32_t bound(const uint8_t *p, const uint8_t *end)
{
    size_t n = (size_t)(end - p);
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* Turn a decoded header at `start` into a value. */
static int convert(const sl_mp_val *m, const uint8_t *start, const uint8_t *end, sl__xval *out)
{
    out->len = 0;
    switch (m->type) {
    case SL_MP_NIL:
        out->kind = XK_NULL;
        break;
    case SL_MP_BOOL:
        out->kind = XK_BOOL;
        out->v.b = m->v.b;
        break;
    case SL_MP_INT:
        out->kind = XK_INT;
        out->v.i = m->v.i;
        break;
    case SL_MP_UINT:
        if (m->v.u <= (uint64_t)INT64_MAX) {
            out->kind = XK_INT;
            out->v.i = (int64_t)m->v.u;
        } else {
            out->kind = XK_UINT;
            out->v.u = m->v.u;
        }
        break;
    case SL_MP_FLOAT:
        out->kind = XK_DOUBLE;
        out->v.d = m->v.f;
        break;
    case SL_MP_STR:
    case SL_MP_BIN:
        out->kind = m->type == SL_MP_STR ? XK_STRING : XK_BYTES;
        out->v.s = m->v.str.ptr;
        out->len = m->v.str.len;
        break;
    case SL_MP_ARRAY:
    case SL_MP_MAP:
        out->kind = m->type == SL_MP_ARRAY ? XK_LIST : XK_MAP;
        out->v.mp = start;
        out->len = bound(start, end);
        break;
    case SL_MP_EXT:
        if (m->v.ext.type == SL_MP_EXT_TIMESTAMP) {
            out->kind = XK_TIMESTAMP;
            if (sl_mp_timestamp_ns(m, &out->v.i) != 0) {
                *out = sl__xstatic_err("timestamp out of range");
                return -1;
            }
            break;
        }
        *out = sl__xstatic_err("unsupported msgpack extension type");
        return -1;
    }
    return 0;
}

int sl__xdecode(const uint8_t *p, const uint8_t *end, sl__xval *out)
{
    sl_mp_val m;
    const uint8_t *s = p;
    if (sl_mp_read(&s, end, &m) != 0) {
        *out = sl__xstatic_err("malformed msgpack");
        return -1;
    }
    return convert(&m, p, end, out);
}

int sl__xnext(const uint8_t **p, const uint8_t *end, sl__xval *out)
{
    sl_mp_val m;
    const uint8_t *start = *p, *s = *p;
    if (sl_mp_read(&s, end, &m) != 0) goto bad;
    if (m.type == SL_MP_ARRAY || m.type == SL_MP_MAP) {
        s = start;
        if (sl_mp_skip(&s, end) != 0) goto bad;
    }
    *p = s;
    return convert(&m, start, end, out);
bad:
    *out = sl__xstatic_err("malformed msgpack");
    return -1;
}

/* Read a container header: its count and where the elements begin. */
static int header(const sl__xval *v, uint32_t *n, const uint8_t **first)
{
    const uint8_t *s = v->v.mp;
    sl_mp_val m;
    if (sl_mp_read(&s, v->v.mp + v->len, &m) != 0 || (m.type != SL_MP_ARRAY && m.type != SL_MP_MAP))
        return -1;
    *n = m.v.n;
    *first = s;
    return 0;
}

int64_t sl__xcount(const sl__xval *v)
{
    uint32_t n;
    const uint8_t *first;
    return header(v, &n, &first) == 0 ? (int64_t)n : -1;
}

size_t sl__xcontainer_size(const sl__xval *v)
{
    const uint8_t *s = v->v.mp;
    if (sl_mp_skip(&s, v->v.mp + v->len) != 0) return 0;
    return (size_t)(s - v->v.mp);
}

static int is_num(int k)
{
    return k == XK_INT || k == XK_UINT || k == XK_DOUBLE;
}

static int cmp3(int less, int greater)
{
    return less ? -1 : greater ? 1 : 0;
}

static int cmp_int_uint(int64_t i, uint64_t u)
{
    if (i < 0) return -1;
    return cmp3((uint64_t)i<u, (uint64_t)i> u);
}

/* double vs int64, exactly; 2 when d is NaN. */
static int cmp_double_int(double d, int64_t i)
{
    if (isnan(d)) return 2;
    if (d < -9223372036854775808.0) return -1;
    if (d >= 9223372036854775808.0) return 1;
    int64_t t = (int64_t)d; /* truncation is exact in this range */
    if (t != i) return cmp3(t<i, t> i);
    double frac = d - (double)t;
    return cmp3(frac<0, frac> 0);
}

static int cmp_double_uint(double d, uint64_t u)
{
    if (isnan(d)) return 2;
    if (d < 0) return -1;
    if (d >= 18446744073709551616.0) return 1;
    uint64_t t = (uint64_t)d;
    if (t != u) return cmp3(t<u, t> u);
    return cmp3(0, d - (double)t > 0);
}

static int flip(int r)
{
    return r == 2 ? 2 : -r;
}

static int cmp_num(const sl__xval *a, const sl__xval *b)
{
    switch (a->kind * 16 + b->kind) {
    case XK_INT * 16 + XK_INT:
        return cmp3(a->v.i<b->v.i, a->v.i> b->v.i);
    case XK_UINT * 16 + XK_UINT:
        return cmp3(a->v.u<b->v.u, a->v.u> b->v.u);
    case XK_DOUBLE * 16 + XK_DOUBLE:
        if (isnan(a->v.d) || isnan(b->v.d)) return 2;
        return cmp3(a->v.d<b->v.d, a->v.d> b->v.d);
    case XK_INT * 16 + XK_UINT:
        return cmp_int_uint(a->v.i, b->v.u);
    case XK_UINT * 16 + XK_INT:
        return -cmp_int_uint(b->v.i, a->v.u);
    case XK_DOUBLE * 16 + XK_INT:
        return cmp_double_int(a->v.d, b->v.i);
    case XK_INT * 16 + XK_DOUBLE:
        return flip(cmp_double_int(b->v.d, a->v.i));
    case XK_DOUBLE * 16 + XK_UINT:
        return cmp_double_uint(a->v.d, b->v.u);
    case XK_UINT * 16 + XK_DOUBLE:
        return flip(cmp_double_uint(b->v.d, a->v.u));
    default:
        return 2;
    }
}

static int cmp_bytes(const sl__xval *a, const sl__xval *b)
{
    uint32_t n = a->len < b->len ? a->len : b->len;
    int r = n ? memcmp(a->v.s, b->v.s, n) : 0;
    if (r != 0) return r < 0 ? -1 : 1;
    return cmp3(a->len<b->len, a->len> b->len);
}

int sl__xcmp(const sl__xval *a, const sl__xval *b, int *r)
{
    if (is_num(a->kind) && is_num(b->kind)) {
        *r = cmp_num(a, b);
        return 0;
    }
    if (a->kind != b->kind) return -1;
    switch (a->kind) {
    case XK_BOOL:
        *r = cmp3(!a->v.b && b->v.b, a->v.b && !b->v.b);
        return 0;
    case XK_STRING:
    case XK_BYTES:
        *r = cmp_bytes(a, b);
        return 0;
    case XK_TIMESTAMP:
    case XK_DURATION:
        *r = cmp3(a->v.i<b->v.i, a->v.i> b->v.i);
        return 0;
    default:
        return -1;
    }
}

static int find(const sl__xval *map, const sl__xval *key, const uint8_t **pos, int depth);

static int eq(const sl__xval *a, const sl__xval *b, int depth)
{
    if (depth > SL__X_MAX_NEST) return -1;
    if (is_num(a->kind) && is_num(b->kind)) return cmp_num(a, b) == 0;
    if (a->kind != b->kind) return 0;
    switch (a->kind) {
    case XK_NULL:
        return 1;
    case XK_BOOL:
        return a->v.b == b->v.b;
    case XK_STRING:
    case XK_BYTES:
        return a->len == b->len && (a->len == 0 || memcmp(a->v.s, b->v.s, a->len) == 0);
    case XK_TIMESTAMP:
    case XK_DURATION:
        return a->v.i == b->v.i;
    case XK_LIST:
    case XK_MAP: {
        uint32_t na, nb;
        const uint8_t *pa, *pb;
        if (header(a, &na, &pa) != 0 || header(b, &nb, &pb) != 0) return -1;
        if (na != nb) return 0;
        const uint8_t *ea = a->v.mp + a->len, *eb = b->v.mp + b->len;
        for (uint32_t i = 0; i < na; i++) {
            sl__xval x, y;
            if (a->kind == XK_LIST) {
                if (sl__xnext(&pa, ea, &x) != 0 || sl__xnext(&pb, eb, &y) != 0) return -1;
                int r = eq(&x, &y, depth + 1);
                if (r != 1) return r;
            } else {
                const uint8_t *vpos;
                if (sl__xnext(&pa, ea, &x) != 0) return -1;
                int r = find(b, &x, &vpos, depth + 1);
                if (r != 1) return r;
                if (sl__xnext(&pa, ea, &x) != 0 || sl__xdecode(vpos, eb, &y) != 0) return -1;
                r = eq(&x, &y, depth + 1);
                if (r != 1) return r;
            }
        }
        return 1;
    }
    default:
        return 0;
    }
}

int sl__xeq(const sl__xval *a, const sl__xval *b, int depth)
{
    return eq(a, b, depth);
}

static int find(const sl__xval *map, const sl__xval *key, const uint8_t **pos, int depth)
{
    const uint8_t *end = map->v.mp + map->len;
    if (key->kind == XK_STRING) {
        const uint8_t *p = map->v.mp;
        int r = sl_mp_map_find(&p, end, key->v.s, key->len);
        if (r == 1) *pos = p;
        return r;
    }
    uint32_t n;
    const uint8_t *p;
    if (header(map, &n, &p) != 0) return -1;
    for (uint32_t i = 0; i < n; i++) {
        sl__xval k;
        if (sl__xnext(&p, end, &k) != 0) return -1;
        int r = eq(&k, key, depth + 1);
        if (r < 0) return -1;
        if (r == 1) {
            *pos = p;
            return 1;
        }
        if (sl_mp_skip(&p, end) != 0) return -1;
    }
    return 0;
}

int sl__xmap_find(const sl__xval *map, const sl__xval *key, const uint8_t **pos)
{
    return find(map, key, pos, 0);
}

int sl__xmap_get(const sl__xval *map, const sl__xval *key, sl__xval *out)
{
    const uint8_t *pos;
    int r = find(map, key, &pos, 0);
    if (r == 1) sl__xdecode(pos, map->v.mp + map->len, out);
    return r;
}

int sl__xencode(sl_wbuf *out, const sl__xval *v)
{
    switch (v->kind) {
    case XK_NULL:
        return sl_mp_write_nil(out);
    case XK_BOOL:
        return sl_mp_write_bool(out, v->v.b);
    case XK_INT:
    case XK_DURATION:
        return sl_mp_write_int(out, v->v.i);
    case XK_UINT:
        return sl_mp_write_uint(out, v->v.u);
    case XK_DOUBLE:
        return sl_mp_write_double(out, v->v.d);
    case XK_STRING:
        return sl_mp_write_str(out, v->v.s, v->len);
    case XK_BYTES:
        return sl_mp_write_bin(out, v->v.s, v->len);
    case XK_TIMESTAMP:
        return sl_mp_write_timestamp(out, v->v.i);
    case XK_LIST:
    case XK_MAP: {
        size_t n = sl__xcontainer_size(v);
        return n ? sl_wbuf_append(out, v->v.mp, n) : -1;
    }
    default:
        return -1;
    }
}

int64_t sl__xutf8_count(const char *s, size_t n)
{
    int64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

int sl__xutf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

int sl__xutf8_put(uint32_t cp, char *buf)
{
    if (cp < 0x80) {
        buf[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char)(0xF0 | (cp >> 18));
    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
