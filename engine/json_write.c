/*
 * json_write.c - msgpack -> compact JSON text, our own code (docs/json.md has the numbers
 * that made us write it instead of using jansson's or yajl's generator).
 *
 * Design: one pass over the msgpack bytes with sl_mp_read, writing JSON as it goes. Nesting
 * is tracked on an explicit stack (64 levels on the C stack, then the heap), so no input can
 * exhaust the C stack, and the usual event never allocates. Each value reserves its worst
 * case output once and then writes without further bounds checks.
 *
 * Output rules (these are what the round-trip tests pin down):
 * - strings are escaped per RFC 8259: '"', '\\' and the control characters (\b \f \n \r \t,
 *   others \u00XX); valid UTF-8 passes through unescaped; each maximal invalid UTF-8
 *   subsequence becomes one \ufffd (the Unicode "substitution of maximal subparts").
 * - map keys keep their order; a key that is not a string is written as a string holding its
 *   JSON text (1 -> "1", [1,2] -> "[1,2]"); a key whose JSON is already a string (bin,
 *   timestamp) is used as is.
 * - integers are exact; float32/float64 print the shortest text that strtod()s back to the
 *   same double, always with a '.' or an exponent so they read back as doubles ("100.0");
 *   NaN and infinities, which JSON cannot hold, become null.
 * - timestamps (ext -1) become RFC 3339 strings; other ext values {"ext":type,"data":"b64"};
 *   bin becomes a base64 string.
 * - the input must be exactly one well-formed msgpack value; otherwise -1 and out->len is
 *   restored.
 */
#include "json.h"
#include "timefmt.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key-in-key nesting (a map used as a map key, whose keys are maps...) recurses; bound it. */
#define KEY_DEPTH_MAX 16
/* Nesting levels tracked without allocating. */
#define STACK_INLINE 64

static const char hexdig[16] = "0123456789abcdef";

/* 0: byte copies as is; 1: needs an escape; 2: first byte of a multi-byte or invalid sequence */
static const uint8_t esc_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/*
 * Length of the valid UTF-8 sequence at s (n >= 1 bytes available, s[0] >= 0x80), or minus
 * the length of the maximal invalid subsequence to replace with one U+FFFD (Unicode 3.9,
 * table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
 */
static int utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    int need;
    uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return -1;
    }
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return -i;
        uint8_t b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return -i;
    }
    return need + 1;
}

/* True if any of the 8 bytes in x is < 0x20, '"', '\\' or >= 0x80 (may over-report). */
static inline int chunk_special(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t ctl = (x - 0x20 * ones);
    uint64_t q = x ^ (0x22 * ones);
    uint64_t bs = x ^ (0x5c * ones);
    return ((ctl | (q - ones) | (bs - ones) | x) & high) != 0;
}

/*
 * Append s[0..n) as a JSON string with its quotes. Returns 0 or -1 (out of memory).
 * Worst case output is 6 bytes per input byte ("\u001f", "\ufffd") plus the quotes.
 */
static int write_string(sl_wbuf *b, const char *str, size_t n)
{
    if (n > (SIZE_MAX - 16) / 6 || sl_wbuf_reserve(b, 6 * n + 2 + 8) != 0) return -1;
    const uint8_t *s = (const uint8_t *)str, *end = s + n;
    uint8_t *o = b->data + b->len;
    *o++ = '"';
    while (s < end) {
        /* Plain ASCII runs 8 bytes at a time; the 8 spare reserved bytes allow the overshoot. */
        while (end - s >= 8) {
            uint64_t x;
            memcpy(&x, s, 8);
            if (chunk_special(x)) break;
            memcpy(o, s, 8);
            o += 8;
            s += 8;
        }
        if (s >= end) break;
        uint8_t c = *s;
        switch (esc_class[c]) {
        case 0:
            *o++ = c;
            s++;
            break;
        case 1:
            *o++ = '\\';
            switch (c) {
            case '"':
                *o++ = '"';
                break;
            case '\\':
                *o++ = '\\';
                break;
            case '\b':
                *o++ = 'b';
                break;
            case '\f':
                *o++ = 'f';
                break;
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            default:
                memcpy(o, "u00", 3);
                o[3] = (uint8_t)hexdig[c >> 4];
                o[4] = (uint8_t)hexdig[c & 15];
                o += 5;
            }
            s++;
            break;
        default: {
            int k = utf8_seq(s, (size_t)(end - s));
            if (k > 0) {
                memcpy(o, s, (size_t)k);
                o += k;
                s += k;
            } else {
                memcpy(o, "\\ufffd", 6);
                o += 6;
                s += -k;
            }
        }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return 0;
}

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                     "25262728293031323334353637383940414243444546474849"
                                     "50515253545556575859606162636465666768697071727374"
                                     "75767778798081828384858687888990919293949596979899";

/* Write v in decimal at o (room for 20 bytes); returns the number of bytes. */
static size_t u64_to_dec(uint64_t v, char *o)
{
    char tmp[20];
    char *p = tmp + 20;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, digit_pairs + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, digit_pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    size_t n = (size_t)(tmp + 20 - p);
    memcpy(o, p, n);
    return n;
}

static int write_uint(sl_wbuf *b, uint64_t v)
{
    if (sl_wbuf_reserve(b, 20) != 0) return -1;
    b->len += u64_to_dec(v, (char *)b->data + b->len);
    return 0;
}

static int write_int(sl_wbuf *b, int64_t v)
{
    if (v >= 0) return write_uint(b, (uint64_t)v);
    if (sl_wbuf_reserve(b, 21) != 0) return -1;
    b->data[b->len++] = '-';
    b->len += u64_to_dec(0 - (uint64_t)v, (char *)b->data + b->len);
    return 0;
}

static const double pow10_tab[10] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

/*
 * Append d as the shortest JSON number text that strtod() reads back as exactly d, with a
 * '.' or exponent so it stays a double; NaN and infinities become null.
 *
 * Fast path (|d| < 1e15, the shape of amounts and measurements): for k = 0..9, m =
 * round(d * 10^k); if m < 2^53 and m / 10^k == d, the decimal m * 10^-k is the answer. Both
 * m and 10^k are exact doubles, so the division is the correctly rounded value of that
 * decimal, which is exactly what strtod returns for its text; the first k that works gives
 * the fewest digits. Otherwise %.15g, %.16g, %.17g, the first that reads back (17 always
 * does), from 1 digit up for subnormals.
 */
int sl_json_write_double(sl_wbuf *b, double d)
{
    if (sl_wbuf_reserve(b, 32) != 0) return -1;
    char *o = (char *)b->data + b->len;
    if (!isfinite(d)) {
        memcpy(o, "null", 4);
        b->len += 4;
        return 0;
    }
    if (d == 0) {
        size_t n = signbit(d) ? 4 : 3;
        memcpy(o, "-0.0", 4);
        if (n == 3) memcpy(o, "0.0", 3);
        b->len += n;
        return 0;
    }
    double a = fabs(d);
    if (a < 1e15) {
        for (int k = 0; k < 10; k++) {
            double r = a * pow10_tab[k];
            if (r >= 9007199254740992.0) /* 2^53: m would not be exact */
                break;
            uint64_t m = (uint64_t)(r + 0.5);
            if ((double)m / pow10_tab[k] != a) continue;
            char *p = o;
            if (d < 0) *p++ = '-';
            char dig[20];
            size_t nd = u64_to_dec(m, dig);
            if (k == 0) {
                memcpy(p, dig, nd);
                p += nd;
                memcpy(p, ".0", 2);
                p += 2;
            } else if (nd > (size_t)k) {
                memcpy(p, dig, nd - (size_t)k);
                p += nd - (size_t)k;
                *p++ = '.';
                memcpy(p, dig + nd - k, (size_t)k);
                p += k;
            } else {
                *p++ = '0';
                *p++ = '.';
                memset(p, '0', (size_t)k - nd);
                p += (size_t)k - nd;
                memcpy(p, dig, nd);
                p += nd;
            }
            b->len += (size_t)(p - o);
            return 0;
        }
    }
    int n = 0;
    /* Normal doubles hold 15.95 digits, so when %.15g reads back it is already the shortest
     * (%g drops trailing zeros). Subnormals hold fewer: search them from 1 digit ("5e-324"). */
    for (int prec = a < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        n = snprintf(o, 32, "%.*g", prec, d);
        if (n <= 0 || n >= 32) return -1;
        if (prec == 17 || strtod(o, NULL) == d) break;
    }
    /* A locale with a decimal comma would break JSON; the engine never sets one, but be safe. */
    for (int i = 0; i < n; i++)
        if (o[i] == ',') o[i] = '.';
    if (!memchr(o, '.', (size_t)n) && !memchr(o, 'e', (size_t)n)) {
        memcpy(o + n, ".0", 2);
        n += 2;
    }
    b->len += (size_t)n;
    return 0;
}

static const char b64_alphabet[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Append p[0..n) as a quoted base64 (RFC 4648, padded) string. */
static int write_base64(sl_wbuf *b, const uint8_t *p, size_t n)
{
    if (n > SIZE_MAX / 2 || sl_wbuf_reserve(b, (n + 2) / 3 * 4 + 2) != 0) return -1;
    char *o = (char *)b->data + b->len;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        o[0] = b64_alphabet[v >> 18];
        o[1] = b64_alphabet[(v >> 12) & 63];
        o[2] = b64_alphabet[(v >> 6) & 63];
        o[3] = b64_alphabet[v & 63];
        o += 4;
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        o[0] = b64_alphabet[v >> 18];
        o[1] = b64_alphabet[(v >> 12) & 63];
        o[2] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    *o++ = '"';
    b->len = (size_t)(o - (char *)b->data);
    return 0;
}

static int write_ext(sl_wbuf *b, const sl_mp_val *v)
{
    int64_t ns;
    if (v->v.ext.type == SL_MP_EXT_TIMESTAMP && sl_mp_timestamp_ns(v, &ns) == 0) {
        if (sl_wbuf_reserve(b, 40) != 0) return -1;
        b->data[b->len++] = '"';
        b->len += sl_time_format(ns, (char *)b->data + b->len);
        b->data[b->len++] = '"';
        return 0;
    }
    /* Other extensions (and timestamps int64 ns cannot hold) keep their type and bytes. */
    if (sl_wbuf_append(b, "{\"ext\":", 7) != 0 || write_int(b, v->v.ext.type) != 0 ||
        sl_wbuf_append(b, ",\"data\":", 8) != 0 ||
        write_base64(b, v->v.ext.ptr, v->v.ext.len) != 0 || sl_wbuf_append(b, "}", 1) != 0)
        return -1;
    return 0;
}

/* One open container: members still to write, and whether it is a map. */
typedef struct frame {
    uint64_t left; /* for a map: keys + values still to come */
    uint8_t map;
    uint8_t first;
} frame;

static int to_json(const uint8_t *mp, size_t len, sl_wbuf *out, int key_depth);

/*
 * Write the map key at *p (not a string) as a JSON string holding its JSON text, and advance
 * *p past it. Works in place at the end of out: the key's JSON goes first, its escaped form
 * after it, then the escaped form is moved down over the raw text.
 */
static int write_other_key(const uint8_t **p, const uint8_t *end, sl_wbuf *out, int key_depth)
{
    const uint8_t *s = *p;
    if (key_depth >= KEY_DEPTH_MAX || sl_mp_skip(&s, end) != 0) return -1;
    size_t raw = out->len;
    if (to_json(*p, (size_t)(s - *p), out, key_depth + 1) != 0) return -1;
    *p = s;
    if (out->data[raw] == '"') return 0; /* already a JSON string (bin, timestamp) */
    size_t raw_len = out->len - raw;
    /* reserve first: write_string reads from out->data, which must not move under it */
    if (raw_len > (SIZE_MAX - 16) / 6 || sl_wbuf_reserve(out, 6 * raw_len + 10) != 0) return -1;
    if (write_string(out, (const char *)out->data + raw, raw_len) != 0) return -1;
    size_t esc_len = out->len - raw - raw_len;
    memmove(out->data + raw, out->data + raw + raw_len, esc_len);
    out->len = raw + esc_len;
    return 0;
}

/* Body of sl_msgpack_to_json; key_depth counts non-string keys we are nested in. */
static int to_json(const uint8_t *mp, size_t len, sl_wbuf *out, int key_depth)
{
    frame inline_stack[STACK_INLINE];
    frame *stack = inline_stack;
    size_t depth = 0, cap = STACK_INLINE;
    const uint8_t *p = mp, *end = mp + len;
    int rc = -1;

    for (;;) {
        sl_mp_val v;
        int is_key = 0;
        if (depth > 0) {
            frame *f = &stack[depth - 1];
            is_key = f->map && (f->left & 1) == 0;
            /* separator before this member: ',' between members, ':' after a key */
            if (!f->first || (f->map && !is_key)) {
                if (sl_wbuf_reserve(out, 1) != 0) goto done;
                out->data[out->len++] = (f->map && !is_key) ? ':' : ',';
            }
            f->first = 0;
            f->left--;
            if (is_key &&
                (p >= end || ((*p & 0xe0) != 0xa0 && *p != 0xd9 && *p != 0xda && *p != 0xdb))) {
                if (write_other_key(&p, end, out, key_depth) != 0) goto done;
                goto next;
            }
        }
        if (sl_mp_read(&p, end, &v) != 0) goto done;
        switch (v.type) {
        case SL_MP_NIL:
            if (sl_wbuf_append(out, "null", 4) != 0) goto done;
            break;
        case SL_MP_BOOL:
            if (v.v.b ? sl_wbuf_append(out, "true", 4) : sl_wbuf_append(out, "false", 5)) goto done;
            break;
        case SL_MP_INT:
            if (write_int(out, v.v.i) != 0) goto done;
            break;
        case SL_MP_UINT:
            if (write_uint(out, v.v.u) != 0) goto done;
            break;
        case SL_MP_FLOAT:
            if (sl_json_write_double(out, v.v.f) != 0) goto done;
            break;
        case SL_MP_STR:
            if (write_string(out, v.v.str.ptr, v.v.str.len) != 0) goto done;
            break;
        case SL_MP_BIN:
            if (write_base64(out, (const uint8_t *)v.v.str.ptr, v.v.str.len) != 0) goto done;
            break;
        case SL_MP_EXT:
            if (write_ext(out, &v) != 0) goto done;
            break;
        case SL_MP_ARRAY:
        case SL_MP_MAP: {
            int map = v.type == SL_MP_MAP;
            uint64_t n = map ? 2ull * v.v.n : v.v.n;
            /* every member takes at least one byte: reject absurd counts before looping */
            if (n > (uint64_t)(end - p)) goto done;
            if (sl_wbuf_reserve(out, 2) != 0) goto done;
            if (n == 0) {
                memcpy(out->data + out->len, map ? "{}" : "[]", 2);
                out->len += 2;
                break;
            }
            out->data[out->len++] = map ? '{' : '[';
            if (depth == cap) {
                size_t ncap = cap * 2;
                frame *ns = stack == inline_stack ? malloc(ncap * sizeof *ns)
                                                  : realloc(stack, ncap * sizeof *ns);
                if (!ns) goto done;
                if (stack == inline_stack) memcpy(ns, inline_stack, sizeof inline_stack);
                stack = ns;
                cap = ncap;
            }
            stack[depth].left = n;
            stack[depth].map = (uint8_t)map;
            stack[depth].first = 1;
            depth++;
            continue;
        }
        }
    next:
        /* close every container that has just been completed */
        while (depth > 0 && stack[depth - 1].left == 0) {
            if (sl_wbuf_reserve(out, 1) != 0) goto done;
            out->data[out->len++] = stack[depth - 1].map ? '}' : ']';
            depth--;
        }
        if (depth == 0) break;
    }
    rc = p == end ? 0 : -1; /* exactly one value */
done:
    if (stack != inline_stack) free(stack);
    return rc;
}

/*
 * Append the msgpack value mp[0..len) as compact JSON. Returns 0, or -1 if the bytes are not
 * exactly one well-formed msgpack value or memory runs out; out->len is then restored.
 */
int sl_json_write_string(sl_wbuf *out, const char *s, size_t n)
{
    size_t mark = out->len;
    if (write_string(out, s, n) != 0) {
        out->len = mark;
        return -1;
    }
    return 0;
}

int sl_msgpack_to_json(const uint8_t *mp, size_t len, sl_wbuf *out)
{
    size_t old_len = out->len;
    if (to_json(mp, len, out, 0) != 0) {
        out->len = old_len;
        return -1;
    }
    return 0;
}
