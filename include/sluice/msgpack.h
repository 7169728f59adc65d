/*
 * sluice/msgpack.h - read msgpack in place and write it into a growable buffer.
 *
 * Events inside sluice are msgpack maps that are read where they lie: the
 * reader never allocates and never builds a DOM; a value read from a buffer
 * (string, bin, ext payload) points into that buffer and is borrowed for as
 * long as the buffer lives. The writer appends to an sl_wbuf, which grows by
 * doubling, so a reused buffer stops allocating once it has reached its
 * working size.
 *
 * Everything here is static inline and depends on nothing but libc, so a
 * plugin gets the same speed as a built-in operator without linking against
 * engine internals. msgpack-c remains the reference codec: the test suite
 * decodes what this writer produces with msgpack_unpack and checks this reader
 * against msgpack-c's packer (docs/design/msgpack.md says why the hot path does
 * not call msgpack-c directly).
 *
 * Time is int64 nanoseconds since the Unix epoch everywhere in sluice; on the
 * wire it is the msgpack timestamp extension (type -1).
 */
#ifndef SLUICE_MSGPACK_H
#define SLUICE_MSGPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- reading */

typedef enum sl_mp_type {
    SL_MP_NIL,
    SL_MP_BOOL,
    SL_MP_INT,   /* negative integers (v.i) */
    SL_MP_UINT,  /* non-negative integers (v.u) */
    SL_MP_FLOAT, /* float32 and float64 (v.f) */
    SL_MP_STR,   /* v.str */
    SL_MP_BIN,   /* v.str */
    SL_MP_ARRAY, /* v.n elements follow */
    SL_MP_MAP,   /* v.n key/value pairs follow */
    SL_MP_EXT    /* v.ext */
} sl_mp_type;

/* One decoded msgpack header. Pointers are borrowed from the input buffer. */
typedef struct sl_mp_val {
    sl_mp_type type;
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double f;
        uint32_t n;
        struct {
            const char *ptr;
            uint32_t len;
        } str;
        struct {
            int8_t type;
            const uint8_t *ptr;
            uint32_t len;
        } ext;
    } v;
} sl_mp_val;

#define SL_MP_EXT_TIMESTAMP (-1)

static inline uint16_t sl__be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t sl__be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t sl__be64(const uint8_t *p)
{
    return ((uint64_t)sl__be32(p) << 32) | sl__be32(p + 4);
}

/*
 * Read one value header at *p (never past end) into *out and advance *p past
 * it. For str, bin and ext the payload is consumed too; for arrays and maps
 * only the header is (the elements follow). Returns 0, or -1 when the bytes
 * are truncated or not msgpack (*p is then unchanged).
 */
static inline int sl_mp_read(const uint8_t **p, const uint8_t *end, sl_mp_val *out)
{
    const uint8_t *s = *p;
    if (s >= end)
        return -1;
    uint8_t c = *s++;
    size_t avail = (size_t)(end - s);
    uint32_t len;
    if (c <= 0x7f) {
        out->type = SL_MP_UINT;
        out->v.u = c;
    } else if (c >= 0xe0) {
        out->type = SL_MP_INT;
        out->v.i = (int8_t)c;
    } else if ((c & 0xe0) == 0xa0) {
        len = c & 0x1f;
        goto str;
    } else if ((c & 0xf0) == 0x80) {
        out->type = SL_MP_MAP;
        out->v.n = c & 0x0f;
    } else if ((c & 0xf0) == 0x90) {
        out->type = SL_MP_ARRAY;
        out->v.n = c & 0x0f;
    } else {
        switch (c) {
        case 0xc0: out->type = SL_MP_NIL; break;
        case 0xc2: out->type = SL_MP_BOOL; out->v.b = false; break;
        case 0xc3: out->type = SL_MP_BOOL; out->v.b = true; break;
        case 0xcc: if (avail < 1) return -1; out->type = SL_MP_UINT; out->v.u = s[0]; s += 1; break;
        case 0xcd: if (avail < 2) return -1; out->type = SL_MP_UINT; out->v.u = sl__be16(s); s += 2; break;
        case 0xce: if (avail < 4) return -1; out->type = SL_MP_UINT; out->v.u = sl__be32(s); s += 4; break;
        case 0xcf: if (avail < 8) return -1; out->type = SL_MP_UINT; out->v.u = sl__be64(s); s += 8; break;
        case 0xd0: if (avail < 1) return -1; out->v.i = (int8_t)s[0]; s += 1; goto sint;
        case 0xd1: if (avail < 2) return -1; out->v.i = (int16_t)sl__be16(s); s += 2; goto sint;
        case 0xd2: if (avail < 4) return -1; out->v.i = (int32_t)sl__be32(s); s += 4; goto sint;
        case 0xd3: if (avail < 8) return -1; out->v.i = (int64_t)sl__be64(s); s += 8; goto sint;
        case 0xca: {
            if (avail < 4) return -1;
            uint32_t b = sl__be32(s);
            float f;
            memcpy(&f, &b, 4);
            out->type = SL_MP_FLOAT;
            out->v.f = f;
            s += 4;
            break;
        }
        case 0xcb: {
            if (avail < 8) return -1;
            uint64_t b = sl__be64(s);
            out->type = SL_MP_FLOAT;
            memcpy(&out->v.f, &b, 8);
            s += 8;
            break;
        }
        case 0xd9: if (avail < 1) return -1; len = s[0]; s += 1; avail -= 1; goto str;
        case 0xda: if (avail < 2) return -1; len = sl__be16(s); s += 2; avail -= 2; goto str;
        case 0xdb: if (avail < 4) return -1; len = sl__be32(s); s += 4; avail -= 4; goto str;
        case 0xc4: if (avail < 1) return -1; len = s[0]; s += 1; avail -= 1; goto bin;
        case 0xc5: if (avail < 2) return -1; len = sl__be16(s); s += 2; avail -= 2; goto bin;
        case 0xc6: if (avail < 4) return -1; len = sl__be32(s); s += 4; avail -= 4; goto bin;
        case 0xdc: if (avail < 2) return -1; out->type = SL_MP_ARRAY; out->v.n = sl__be16(s); s += 2; break;
        case 0xdd: if (avail < 4) return -1; out->type = SL_MP_ARRAY; out->v.n = sl__be32(s); s += 4; break;
        case 0xde: if (avail < 2) return -1; out->type = SL_MP_MAP; out->v.n = sl__be16(s); s += 2; break;
        case 0xdf: if (avail < 4) return -1; out->type = SL_MP_MAP; out->v.n = sl__be32(s); s += 4; break;
        case 0xd4: len = 1; goto fixext;
        case 0xd5: len = 2; goto fixext;
        case 0xd6: len = 4; goto fixext;
        case 0xd7: len = 8; goto fixext;
        case 0xd8: len = 16; goto fixext;
        case 0xc7: if (avail < 1) return -1; len = s[0]; s += 1; avail -= 1; goto fixext;
        case 0xc8: if (avail < 2) return -1; len = sl__be16(s); s += 2; avail -= 2; goto fixext;
        case 0xc9: if (avail < 4) return -1; len = sl__be32(s); s += 4; avail -= 4; goto fixext;
        default: return -1; /* 0xc1 is never used */
        }
    }
    *p = s;
    return 0;
sint:
    out->type = out->v.i < 0 ? SL_MP_INT : SL_MP_UINT; /* one type per value, whatever the width */
    *p = s;
    return 0;
str:
    if (avail < len) return -1;
    out->type = SL_MP_STR;
    out->v.str.ptr = (const char *)s;
    out->v.str.len = len;
    *p = s + len;
    return 0;
bin:
    if (avail < len) return -1;
    out->type = SL_MP_BIN;
    out->v.str.ptr = (const char *)s;
    out->v.str.len = len;
    *p = s + len;
    return 0;
fixext:
    if ((size_t)(end - s) < (size_t)len + 1) return -1;
    out->type = SL_MP_EXT;
    out->v.ext.type = (int8_t)s[0];
    out->v.ext.ptr = s + 1;
    out->v.ext.len = len;
    *p = s + 1 + len;
    return 0;
}

/*
 * Skip one complete value (with all nested elements) at *p. Returns 0, or -1
 * if the bytes are truncated or malformed. Iterative: nesting depth cannot
 * overflow the C stack, whatever the input.
 */
/*
 * Size in bytes of the value at s if it is a scalar whose size shows in its
 * first bytes (fixint, fixstr, nil, bool, numbers, str8, bin8, fixext, the
 * timestamp): 0 for anything else, or if fewer than 2 bytes are available.
 * The caller checks the size against the bytes it has.
 */
static inline size_t sl__mp_scalar_size(const uint8_t *s, const uint8_t *end)
{
    if (end - s < 2)
        return 0;
    uint8_t c = s[0];
    if (c <= 0x7f || c >= 0xe0)
        return 1;
    if ((c & 0xe0) == 0xa0)
        return 1 + (size_t)(c & 0x1f);
    switch (c) {
    case 0xc0: case 0xc2: case 0xc3: return 1;
    case 0xcc: case 0xd0: return 2;
    case 0xcd: case 0xd1: return 3;
    case 0xce: case 0xd2: case 0xca: return 5;
    case 0xcf: case 0xd3: case 0xcb: return 9;
    case 0xd9: case 0xc4: return 2 + (size_t)s[1];
    case 0xd4: return 3;
    case 0xd5: return 4;
    case 0xd6: return 6;
    case 0xd7: return 10;
    case 0xd8: return 18;
    default: return 0;
    }
}

static inline int sl_mp_skip(const uint8_t **p, const uint8_t *end)
{
    uint64_t pending = 1;
    const uint8_t *s = *p;
    size_t n = sl__mp_scalar_size(s, end);
    if (n) { /* the common case: one scalar */
        if ((size_t)(end - s) < n)
            return -1;
        *p = s + n;
        return 0;
    }
    while (pending > 0) {
        sl_mp_val v;
        if (sl_mp_read(&s, end, &v) != 0)
            return -1;
        pending--;
        if (v.type == SL_MP_ARRAY)
            pending += v.v.n;
        else if (v.type == SL_MP_MAP)
            pending += 2ull * v.v.n;
    }
    *p = s;
    return 0;
}

/*
 * With *p at a map header, find the value of string key `key` (klen bytes)
 * and leave *p at that value. Returns 1 if found, 0 if absent (or *p is not a
 * map), -1 if malformed. On 0 or -1, *p is unchanged.
 */
static inline int sl_mp_map_find(const uint8_t **p, const uint8_t *end, const char *key, size_t klen)
{
    const uint8_t *s = *p;
    sl_mp_val m;
    if (sl_mp_read(&s, end, &m) != 0)
        return -1;
    if (m.type != SL_MP_MAP)
        return 0;
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k;
        /* Fast path for the common fixstr key: compare without a full decode. */
        if (s < end && (*s & 0xe0) == 0xa0) {
            size_t kl = *s & 0x1f;
            if ((size_t)(end - s) < kl + 1)
                return -1;
            if (kl == klen && (klen == 0 || (s[1] == (uint8_t)key[0] && memcmp(s + 1, key, klen) == 0))) {
                *p = s + 1 + kl;
                return 1;
            }
            s += 1 + kl;
        } else {
            if (sl_mp_read(&s, end, &k) != 0)
                return -1;
            if (k.type == SL_MP_STR && k.v.str.len == klen && memcmp(k.v.str.ptr, key, klen) == 0) {
                *p = s;
                return 1;
            }
            if ((k.type == SL_MP_ARRAY || k.type == SL_MP_MAP) && k.v.n > 0) {
                /* a non-scalar key: skip its elements */
                uint64_t more = (k.type == SL_MP_MAP ? 2ull : 1ull) * k.v.n;
                while (more--)
                    if (sl_mp_skip(&s, end) != 0)
                        return -1;
            }
        }
        if (sl_mp_skip(&s, end) != 0)
            return -1;
    }
    return 0;
}

/*
 * Decode a timestamp extension value into nanoseconds since the epoch.
 * Returns 0, or -1 if v is not a valid timestamp (or does not fit int64 ns).
 */
static inline int sl_mp_timestamp_ns(const sl_mp_val *v, int64_t *ns)
{
    if (v->type != SL_MP_EXT || v->v.ext.type != SL_MP_EXT_TIMESTAMP)
        return -1;
    const uint8_t *b = v->v.ext.ptr;
    int64_t sec;
    uint32_t nsec;
    switch (v->v.ext.len) {
    case 4: sec = sl__be32(b); nsec = 0; break;
    case 8: {
        uint64_t x = sl__be64(b);
        nsec = (uint32_t)(x >> 34);
        sec = (int64_t)(x & 0x3ffffffffull);
        break;
    }
    case 12: nsec = sl__be32(b); sec = (int64_t)sl__be64(b + 4); break;
    default: return -1;
    }
    if (nsec >= 1000000000u)
        return -1;
    /*
     * Exact range check: every instant that fits int64 ns is accepted. Before
     * the epoch, borrow a second so that sec * 1e9 cannot overflow on its way
     * to a sum that fits (INT64_MIN is -9223372037 s + 145224192 ns).
     */
    int64_t frac = (int64_t)nsec, whole;
    if (sec < 0 && frac > 0) {
        sec += 1;
        frac -= 1000000000;
    }
    if (__builtin_mul_overflow(sec, (int64_t)1000000000, &whole) ||
        __builtin_add_overflow(whole, frac, ns))
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- writing */

/* A growable byte buffer. Zero-initialise it (or sl_wbuf_init); free with sl_wbuf_fini. */
typedef struct sl_wbuf {
    uint8_t *data;
    size_t len;
    size_t cap;
} sl_wbuf;

static inline void sl_wbuf_init(sl_wbuf *b) { b->data = NULL; b->len = b->cap = 0; }
static inline void sl_wbuf_fini(sl_wbuf *b)
{
    free(b->data);
    sl_wbuf_init(b);
}
static inline void sl_wbuf_reset(sl_wbuf *b) { b->len = 0; }

/* Out of line growth keeps the inline fast path small. Returns 0 or -1 (ENOMEM). */
static inline int sl__wbuf_grow(sl_wbuf *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    uint8_t *d = (uint8_t *)realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

/* Make room for `extra` more bytes. Returns 0 or -1 (out of memory). */
static inline int sl_wbuf_reserve(sl_wbuf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    if (extra > SIZE_MAX - b->len)
        return -1;
    return sl__wbuf_grow(b, b->len + extra);
}

static inline int sl_wbuf_append(sl_wbuf *b, const void *src, size_t n)
{
    if (sl_wbuf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

static inline void sl__put8(sl_wbuf *b, uint8_t x) { b->data[b->len++] = x; }
static inline void sl__put16(sl_wbuf *b, uint16_t x)
{
    b->data[b->len++] = (uint8_t)(x >> 8);
    b->data[b->len++] = (uint8_t)x;
}
static inline void sl__put32(sl_wbuf *b, uint32_t x)
{
    sl__put16(b, (uint16_t)(x >> 16));
    sl__put16(b, (uint16_t)x);
}
static inline void sl__put64(sl_wbuf *b, uint64_t x)
{
    sl__put32(b, (uint32_t)(x >> 32));
    sl__put32(b, (uint32_t)x);
}

/* Each writer returns 0, or -1 when the buffer cannot grow (nothing written). */

static inline int sl_mp_write_nil(sl_wbuf *b)
{
    if (sl_wbuf_reserve(b, 1)) return -1;
    sl__put8(b, 0xc0);
    return 0;
}

static inline int sl_mp_write_bool(sl_wbuf *b, bool v)
{
    if (sl_wbuf_reserve(b, 1)) return -1;
    sl__put8(b, v ? 0xc3 : 0xc2);
    return 0;
}

static inline int sl_mp_write_uint(sl_wbuf *b, uint64_t v)
{
    if (sl_wbuf_reserve(b, 9)) return -1;
    if (v <= 0x7f) sl__put8(b, (uint8_t)v);
    else if (v <= 0xff) { sl__put8(b, 0xcc); sl__put8(b, (uint8_t)v); }
    else if (v <= 0xffff) { sl__put8(b, 0xcd); sl__put16(b, (uint16_t)v); }
    else if (v <= 0xffffffffu) { sl__put8(b, 0xce); sl__put32(b, (uint32_t)v); }
    else { sl__put8(b, 0xcf); sl__put64(b, v); }
    return 0;
}

static inline int sl_mp_write_int(sl_wbuf *b, int64_t v)
{
    if (v >= 0)
        return sl_mp_write_uint(b, (uint64_t)v);
    if (sl_wbuf_reserve(b, 9)) return -1;
    if (v >= -32) sl__put8(b, (uint8_t)(int8_t)v);
    else if (v >= INT8_MIN) { sl__put8(b, 0xd0); sl__put8(b, (uint8_t)(int8_t)v); }
    else if (v >= INT16_MIN) { sl__put8(b, 0xd1); sl__put16(b, (uint16_t)(int16_t)v); }
    else if (v >= INT32_MIN) { sl__put8(b, 0xd2); sl__put32(b, (uint32_t)(int32_t)v); }
    else { sl__put8(b, 0xd3); sl__put64(b, (uint64_t)v); }
    return 0;
}

static inline int sl_mp_write_double(sl_wbuf *b, double v)
{
    uint64_t bits;
    if (sl_wbuf_reserve(b, 9)) return -1;
    memcpy(&bits, &v, 8);
    sl__put8(b, 0xcb);
    sl__put64(b, bits);
    return 0;
}

static inline int sl__mp_write_len(sl_wbuf *b, uint32_t n, uint8_t fix, uint32_t fixmax, uint8_t c8,
                                   uint8_t c16, uint8_t c32)
{
    if (sl_wbuf_reserve(b, 5)) return -1;
    if (n <= fixmax && fix) sl__put8(b, (uint8_t)(fix | n));
    else if (n <= 0xff && c8) { sl__put8(b, c8); sl__put8(b, (uint8_t)n); }
    else if (n <= 0xffff) { sl__put8(b, c16); sl__put16(b, (uint16_t)n); }
    else { sl__put8(b, c32); sl__put32(b, n); }
    return 0;
}

static inline int sl_mp_write_map(sl_wbuf *b, uint32_t n)
{
    return sl__mp_write_len(b, n, 0x80, 15, 0, 0xde, 0xdf);
}

static inline int sl_mp_write_array(sl_wbuf *b, uint32_t n)
{
    return sl__mp_write_len(b, n, 0x90, 15, 0, 0xdc, 0xdd);
}

static inline int sl_mp_write_str(sl_wbuf *b, const char *s, size_t n)
{
    if (n > UINT32_MAX || sl_wbuf_reserve(b, 5 + n)) return -1;
    sl__mp_write_len(b, (uint32_t)n, 0xa0, 31, 0xd9, 0xda, 0xdb);
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static inline int sl_mp_write_cstr(sl_wbuf *b, const char *s) { return sl_mp_write_str(b, s, strlen(s)); }

static inline int sl_mp_write_bin(sl_wbuf *b, const void *s, size_t n)
{
    if (n > UINT32_MAX || sl_wbuf_reserve(b, 5 + n)) return -1;
    sl__mp_write_len(b, (uint32_t)n, 0, 0, 0xc4, 0xc5, 0xc6);
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

/* Write nanoseconds since the epoch as the timestamp extension, smallest form that holds it. */
static inline int sl_mp_write_timestamp(sl_wbuf *b, int64_t ns)
{
    int64_t sec = ns / 1000000000;
    int64_t nsec = ns % 1000000000;
    if (nsec < 0) {
        nsec += 1000000000;
        sec -= 1;
    }
    if (sl_wbuf_reserve(b, 15)) return -1;
    if (sec >= 0 && sec <= 0x3ffffffffll) {
        if (nsec == 0 && sec <= 0xffffffffll) {
            sl__put8(b, 0xd6);
            sl__put8(b, 0xff);
            sl__put32(b, (uint32_t)sec);
        } else {
            sl__put8(b, 0xd7);
            sl__put8(b, 0xff);
            sl__put64(b, ((uint64_t)nsec << 34) | (uint64_t)sec);
        }
    } else {
        sl__put8(b, 0xc7);
        sl__put8(b, 12);
        sl__put8(b, 0xff);
        sl__put32(b, (uint32_t)nsec);
        sl__put64(b, (uint64_t)sec);
    }
    return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_MSGPACK_H */
