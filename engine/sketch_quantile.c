/*
 * sketch_quantile.c - DDSketch (Masson, Rim and Lee, VLDB 2019) for percentile(x, q).
 *
 * A value v >= 1e-9 goes to bucket k = ceil(ln v / ln gamma), gamma = (1 + a) / (1 - a) with
 * a = 0.01, which holds (gamma^(k-1), gamma^k]; the bucket answers 2 gamma^k / (gamma + 1),
 * within a relative a of anything in it. v <= -1e-9 goes to the bucket of -v in a second
 * store; |v| < 1e-9 is counted as 0. A quantile walks the buckets in value order (negative
 * store from its highest bucket down, zeros, positive store up) to the one holding the value of
 * rank floor(q (n - 1)), as in the paper, then clamps to the exact [min, max].
 *
 * A store is a dense array of uint64 counts over bucket indexes [base, base + cap), which
 * grows by 25% towards the end(s) it widens at, so growth at either end is amortized, up to
 * SL_QSKETCH_MAX_BINS (store_grow_cap).
 * Collapse: a store never spans more than SL_QSKETCH_MAX_BINS buckets; when a bucket above
 * would widen it further, the lowest buckets (smallest |v|) fold into the lowest kept one, the
 * "collapsing lowest" store of the paper. Only the ranks folded lose accuracy: the small
 * magnitudes, which with 2048 buckets of 2% are values more than 10^17 times smaller than the
 * largest of the same sign.
 *
 * Invariants:
 * - Counts are non-zero only within [lo, hi], and bins at lo and at hi are non-zero.
 * - Every count sits at bucket max(k, hi - 2047), where k is its value's bucket and hi the
 *   highest bucket ever seen: that depends only on the multiset of values, so adds and merges
 *   in any order give the same sketch, and the same serialized bytes.
 * - Calls allocate before they change anything, so a failed call leaves the sketch as it was.
 */
#include "sketch_quantile.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BINS SL_QSKETCH_MAX_BINS
#define MIN_BINS 8u

/* Bucket indexes of 1e-9 and DBL_MAX are -1036 and 35488; anything far outside is corrupt. */
#define KEY_MIN (-1100)
#define KEY_MAX 35600

/* Serialized form (docs/sketches.md): tag, version, mapping, reserved, then the body. */
#define SER_TAG 0x51 /* 'Q' */
#define SER_VERSION 1
#define SER_MAPPING 1 /* log mapping, alpha 0.01, zero below 1e-9, 2048 buckets per sign */
#define SER_HEAD 20   /* 4 bytes, then min and max as IEEE 754 binary64, little-endian */

/* ln gamma, a constant once folded by the compiler. */
static double ln_gamma(void)
{
    return log1p(2.0 * SL_QSKETCH_ALPHA / (1.0 - SL_QSKETCH_ALPHA));
}

/* Bucket of m >= SL_QSKETCH_ZERO, finite. */
static int32_t key_of(double m)
{
    return (int32_t)ceil(log(m) / ln_gamma());
}

/* What bucket k answers: 2 gamma^k / (gamma + 1), within alpha of all of (gamma^(k-1), gamma^k]. */
static double value_of(int32_t k)
{
    double g = (1.0 + SL_QSKETCH_ALPHA) / (1.0 - SL_QSKETCH_ALPHA);
    return exp(k * ln_gamma()) * (2.0 / (g + 1.0));
}

/* ---- stores */

static int store_empty(const sl_qstore *s)
{
    return s->lo > s->hi;
}

static void store_init(sl_qstore *s)
{
    s->bins = NULL;
    s->base = 0;
    s->cap = 0;
    s->lo = 1;
    s->hi = 0;
}

static uint64_t *bin(const sl_qstore *s, int32_t k)
{
    return &s->bins[k - s->base];
}

/* The buckets s must span to also hold [a, b]: the union, its lowest buckets cut off (to be
 * folded) if it is wider than MAX_BINS. */
static void store_span(const sl_qstore *s, int32_t a, int32_t b, int32_t *lo, int32_t *hi)
{
    *lo = a;
    *hi = b;
    if (!store_empty(s)) {
        if (s->lo < *lo) *lo = s->lo;
        if (s->hi > *hi) *hi = s->hi;
    }
    if ((int64_t)*hi - *lo + 1 > MAX_BINS) *lo = *hi - (MAX_BINS - 1);
}

/*
 * Size of the new array s needs to span [lo, hi], or 0 if its own array does, maybe after a
 * move. Memory over speed, since a store widens rarely (only for a value in a new bucket beyond
 * its ends) and the aggregate may hold a million of them: a new array has 25% to grow into, and
 * the array moves in place as long as that leaves 1/8 of it free (so moves stay amortized).
 */
static uint32_t store_grow_cap(const sl_qstore *s, int32_t lo, int32_t hi)
{
    uint32_t need = (uint32_t)(hi - lo + 1), cap;
    if (s->bins && lo >= s->base && (int64_t)hi < (int64_t)s->base + s->cap) return 0;
    if (s->bins && (need <= s->cap - s->cap / 8 || s->cap == MAX_BINS)) return 0;
    cap = (need + need / 4 + 7) & ~7u;
    return cap < MIN_BINS ? MIN_BINS : cap > MAX_BINS ? MAX_BINS : cap;
}

/* Where an array of cap bins spanning [lo, hi] starts: its free bins go to the side(s) the
 * store is widening towards, where the next new buckets are likely to be. */
static int32_t store_place(const sl_qstore *s, int32_t lo, int32_t hi, uint32_t cap)
{
    uint32_t slack = cap - (uint32_t)(hi - lo + 1);
    int down = !store_empty(s) && lo < s->lo, up = !store_empty(s) && hi > s->hi;
    if (down && !up) return lo - (int32_t)slack;
    if (up && !down) return lo;
    return lo - (int32_t)(slack / 2);
}

/*
 * Make s span [lo, hi] (from store_span) and fold its counts below lo into lo. `fresh` is a
 * zeroed array of fresh_cap bins if store_grow_cap asked for one (taken), else NULL. Leaves
 * lo and hi of s for the caller to set once the new counts are in. Cannot fail.
 */
static void store_cover(sl_qstore *s, int32_t lo, int32_t hi, uint64_t *fresh, uint32_t fresh_cap)
{
    uint64_t folded = 0;
    int32_t klo = lo, khi = lo - 1; /* buckets of s kept where they are */
    int32_t base = store_place(s, lo, hi, fresh ? fresh_cap : s->cap);
    if (!store_empty(s)) {
        for (int32_t k = s->lo; k < lo && k <= s->hi; k++) {
            folded += *bin(s, k);
            *bin(s, k) = 0;
        }
        klo = s->lo > lo ? s->lo : lo;
        khi = s->hi;
    }
    if (fresh) {
        if (klo <= khi)
            memcpy(fresh + (klo - base), bin(s, klo), (size_t)(khi - klo + 1) * sizeof *fresh);
        free(s->bins);
        s->bins = fresh;
        s->cap = fresh_cap;
        s->base = base;
    } else if (lo < s->base || (int64_t)hi >= (int64_t)s->base + s->cap) {
        if (klo <= khi) {
            size_t n = (size_t)(khi - klo + 1), at = (size_t)(klo - base);
            memmove(s->bins + at, bin(s, klo), n * sizeof *s->bins);
            memset(s->bins, 0, at * sizeof *s->bins);
            memset(s->bins + at + n, 0, (s->cap - at - n) * sizeof *s->bins);
        } else {
            memset(s->bins, 0, s->cap * sizeof *s->bins);
        }
        s->base = base;
    }
    if (folded) *bin(s, lo) += folded;
}

/* Allocation store_grow_cap asks for: *fresh is NULL if none is needed. Returns 0 or -1. */
static int store_alloc(const sl_qstore *s, int32_t lo, int32_t hi, uint64_t **fresh, uint32_t *cap)
{
    *fresh = NULL;
    *cap = store_grow_cap(s, lo, hi);
    if (*cap && !(*fresh = calloc(*cap, sizeof **fresh))) return -1;
    return 0;
}

/* Add the counts of f to s, which has been covered for them (lo, hi from store_span). */
static void store_add_store(sl_qstore *s, const sl_qstore *f, int32_t lo, int32_t hi)
{
    for (int32_t k = f->lo; k <= f->hi; k++)
        *bin(s, k > lo ? k : lo) += *bin(f, k);
    s->lo = lo;
    s->hi = hi;
}

/* ---- public */

void sl_qsketch_init(sl_qsketch *s)
{
    store_init(&s->pos);
    store_init(&s->neg);
    s->zero = 0;
    s->count = 0;
    s->min = 0.0;
    s->max = 0.0;
}

void sl_qsketch_fini(sl_qsketch *s)
{
    free(s->pos.bins);
    free(s->neg.bins);
    sl_qsketch_init(s);
}

static void note_minmax(sl_qsketch *s, double lo, double hi)
{
    if (s->count == 0 || lo < s->min) s->min = lo;
    if (s->count == 0 || hi > s->max) s->max = hi;
}

int sl_qsketch_add(sl_qsketch *s, double v)
{
    if (!isfinite(v)) return -1;
    if (v == 0.0) v = 0.0; /* -0 as +0: min and max must not depend on the order of zeros */
    if (fabs(v) < SL_QSKETCH_ZERO) {
        s->zero++;
    } else {
        sl_qstore *st = v > 0 ? &s->pos : &s->neg;
        int32_t k = key_of(fabs(v)), lo, hi;
        uint64_t *fresh;
        uint32_t cap;
        store_span(st, k, k, &lo, &hi);
        if (store_alloc(st, lo, hi, &fresh, &cap)) return -1;
        store_cover(st, lo, hi, fresh, cap);
        *bin(st, k > lo ? k : lo) += 1;
        st->lo = lo;
        st->hi = hi;
    }
    note_minmax(s, v, v);
    s->count++;
    return 0;
}

int sl_qsketch_merge(sl_qsketch *into, const sl_qsketch *from)
{
    int32_t plo = 0, phi = 0, nlo = 0, nhi = 0;
    uint64_t *pfresh = NULL, *nfresh = NULL;
    uint32_t pcap = 0, ncap = 0;
    assert(into != from);
    if (from->count == 0) return 0;
    /* every allocation first, so that a failure changes nothing */
    if (!store_empty(&from->pos)) {
        store_span(&into->pos, from->pos.lo, from->pos.hi, &plo, &phi);
        if (store_alloc(&into->pos, plo, phi, &pfresh, &pcap)) goto err;
    }
    if (!store_empty(&from->neg)) {
        store_span(&into->neg, from->neg.lo, from->neg.hi, &nlo, &nhi);
        if (store_alloc(&into->neg, nlo, nhi, &nfresh, &ncap)) goto err;
    }
    if (!store_empty(&from->pos)) {
        store_cover(&into->pos, plo, phi, pfresh, pcap);
        store_add_store(&into->pos, &from->pos, plo, phi);
    }
    if (!store_empty(&from->neg)) {
        store_cover(&into->neg, nlo, nhi, nfresh, ncap);
        store_add_store(&into->neg, &from->neg, nlo, nhi);
    }
    into->zero += from->zero;
    note_minmax(into, from->min, from->max);
    into->count += from->count;
    return 0;
err:
    free(pfresh);
    free(nfresh);
    return -1;
}

uint64_t sl_qsketch_count(const sl_qsketch *s)
{
    return s->count;
}

int sl_qsketch_quantile(const sl_qsketch *s, double q, double *out)
{
    if (s->count == 0 || !(q >= 0.0 && q <= 1.0)) return -1;
    if (q == 0.0 || q == 1.0) {
        *out = q == 0.0 ? s->min : s->max;
        return 0;
    }
    uint64_t rank = (uint64_t)floor(q * (double)(s->count - 1)), seen = 0;
    double v = s->max;
    if (rank > s->count - 1) rank = s->count - 1; /* (double) rounding of huge counts */
    for (int32_t k = s->neg.hi; k >= s->neg.lo; k--) {
        if ((seen += *bin(&s->neg, k)) > rank) {
            v = -value_of(k);
            goto found;
        }
    }
    if ((seen += s->zero) > rank) {
        v = 0.0;
        goto found;
    }
    for (int32_t k = s->pos.lo; k <= s->pos.hi; k++) {
        if ((seen += *bin(&s->pos, k)) > rank) {
            v = value_of(k);
            goto found;
        }
    }
found:
    *out = v < s->min ? s->min : v > s->max ? s->max : v;
    return 0;
}

/* ---- serialization: little-endian, LEB128 varints (docs/sketches.md) */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    for (; v >= 0x80; v >>= 7)
        n++;
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    for (; v >= 0x80; v >>= 7)
        *p++ = (uint8_t)(v | 0x80);
    *p++ = (uint8_t)v;
    return p;
}

/* Read a minimal varint of at most 64 bits from [*p, end). Returns 0, or -1 if malformed. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        if (shift == 63 && b > 1) return -1; /* beyond 64 bits */
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (b == 0 && shift > 0) return -1; /* not minimal: equal sketches, equal bytes */
            *v = x;
            return 0;
        }
        if (shift == 63) return -1;
    }
    return -1;
}

static uint64_t zigzag(int32_t k)
{
    return k < 0 ? ((uint64_t)(-(int64_t)k) << 1) - 1 : (uint64_t)k << 1;
}

static void put_f64(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

static double get_f64(const uint8_t *p)
{
    uint64_t u = 0;
    double d;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)p[i] << (8 * i);
    memcpy(&d, &u, sizeof d);
    return d;
}

static size_t store_ser_size(const sl_qstore *s)
{
    if (store_empty(s)) return 1;
    size_t n = varint_size((uint64_t)(s->hi - s->lo + 1)) + varint_size(zigzag(s->lo));
    for (int32_t k = s->lo; k <= s->hi; k++)
        n += varint_size(*bin(s, k));
    return n;
}

size_t sl_qsketch_serialized_size(const sl_qsketch *s)
{
    return SER_HEAD + varint_size(s->zero) + store_ser_size(&s->pos) + store_ser_size(&s->neg);
}

static uint8_t *put_store(uint8_t *p, const sl_qstore *s)
{
    if (store_empty(s)) return put_varint(p, 0);
    p = put_varint(p, (uint64_t)(s->hi - s->lo + 1));
    p = put_varint(p, zigzag(s->lo));
    for (int32_t k = s->lo; k <= s->hi; k++)
        p = put_varint(p, *bin(s, k));
    return p;
}

int sl_qsketch_serialize(const sl_qsketch *s, uint8_t *out)
{
    out[0] = SER_TAG;
    out[1] = SER_VERSION;
    out[2] = SER_MAPPING;
    out[3] = 0;
    put_f64(out + 4, s->min);
    put_f64(out + 12, s->max);
    uint8_t *p = put_varint(out + SER_HEAD, s->zero);
    p = put_store(p, &s->pos);
    put_store(p, &s->neg);
    return 0;
}

/* Read one store into s (empty, initialized); *total gets its count. Returns 0 or -1. */
static int get_store(const uint8_t **p, const uint8_t *end, sl_qstore *s, uint64_t *total)
{
    uint64_t nbins, z, c;
    *total = 0;
    if (get_varint(p, end, &nbins)) return -1;
    if (nbins == 0) return 0;
    if (nbins > MAX_BINS || get_varint(p, end, &z) || z > UINT32_MAX) return -1;
    int64_t lo = (z & 1) ? -(int64_t)(z >> 1) - 1 : (int64_t)(z >> 1);
    if (lo < KEY_MIN || lo + (int64_t)nbins - 1 > KEY_MAX) return -1;
    uint32_t cap = nbins < MIN_BINS ? MIN_BINS : (uint32_t)nbins;
    if (!(s->bins = calloc(cap, sizeof *s->bins))) return -1;
    s->cap = cap;
    s->base = (int32_t)lo - (int32_t)((cap - nbins) / 2);
    s->lo = (int32_t)lo;
    s->hi = (int32_t)(lo + (int64_t)nbins - 1);
    for (int32_t k = s->lo; k <= s->hi; k++) {
        if (get_varint(p, end, &c)) return -1;
        if ((k == s->lo || k == s->hi) && c == 0) return -1; /* ends are non-zero */
        if (__builtin_add_overflow(*total, c, total)) return -1;
        *bin(s, k) = c;
    }
    return 0;
}

/* Which of neg (0), zero (1), pos (2) a value is counted in. */
static int sign_class(double v)
{
    return fabs(v) < SL_QSKETCH_ZERO ? 1 : v > 0 ? 2 : 0;
}

int sl_qsketch_deserialize(sl_qsketch *s, const uint8_t *in, size_t len)
{
    sl_qsketch t;
    const uint8_t *p, *end;
    uint64_t npos, nneg;
    sl_qsketch_init(&t);
    if (len < SER_HEAD || in[0] != SER_TAG || in[1] != SER_VERSION || in[2] != SER_MAPPING ||
        in[3] != 0)
        return -1;
    p = in + SER_HEAD;
    end = in + len;
    t.min = get_f64(in + 4);
    t.max = get_f64(in + 12);
    if (get_varint(&p, end, &t.zero) || get_store(&p, end, &t.pos, &npos) ||
        get_store(&p, end, &t.neg, &nneg) || p != end)
        goto err;
    if (__builtin_add_overflow(t.zero, npos, &t.count) ||
        __builtin_add_overflow(t.count, nneg, &t.count))
        goto err;
    if (t.count == 0) {
        uint8_t zero[16] = {0};
        if (memcmp(in + 4, zero, 16) != 0) goto err; /* as sl_qsketch_init leaves them */
    } else {
        /* min and max are finite and fall in the lowest and highest non-empty class */
        int lowest = nneg ? 0 : t.zero ? 1 : 2, highest = npos ? 2 : t.zero ? 1 : 0;
        if (!isfinite(t.min) || !isfinite(t.max) || t.min > t.max || sign_class(t.min) != lowest ||
            sign_class(t.max) != highest)
            goto err;
    }
    sl_qsketch_fini(s);
    *s = t;
    return 0;
err:
    sl_qsketch_fini(&t);
    return -1;
}

size_t sl_qsketch_memory(const sl_qsketch *s)
{
    return ((size_t)s->pos.cap + s->neg.cap) * sizeof(uint64_t);
}
