/*
 * sketch_hll.c - HyperLogLog with a sparse start (count_distinct).
 *
 * A 64-bit hash is split as HLL does: the top p = 14 bits pick one of m = 16384 registers,
 * and a register keeps the largest "rho" seen, the 1-based position of the first 1 bit in the
 * remaining 50 bits (51 when they are all 0).
 *
 * Sparse state (the HLL++ idea of Heule, Nunkesser and Hall, 2013, simplified): each distinct
 * hash is kept as one 32-bit entry, idx25 << 6 | rho25, where idx25 is the top 25 bits of the
 * hash and rho25 (1..40) the rho of the 39 bits below them. An entry holds everything the
 * dense registers need (entry_to_reg), so going dense later gives exactly the registers that
 * adding the hashes to a dense sketch would have given. Entries live in an open-addressing
 * table keyed by idx25 (linear probing, free slot = 0; an entry is never 0 since rho25 >= 1),
 * at most 3/4 full, doubling from 4 slots. Its largest size, 4096 slots, takes the 16 KiB of
 * the dense registers; when a 3073rd distinct entry arrives the sketch turns dense instead.
 *
 * Invariants:
 * - The state follows from the set of entries added, not from the order: sparse iff at most
 *   SPARSE_MAX distinct idx25 values were added, and then the table holds, per idx25, the
 *   largest rho25. Dense registers are the maxima over every hash. So adds and merges in any
 *   order give the same sketch, and serialization (sorted entries) the same bytes.
 * - Only allocation can fail, and every call allocates before it changes anything, so a
 *   failed call leaves the sketch as it was.
 *
 * Estimates: sparse, linear counting over 2^25 buckets (the number of entries, plus the
 * expected number of idx25 collisions, which is below 0.5 up to SPARSE_MAX, so exact for small
 * sets); dense, Ertl's improved estimator ("New cardinality estimation algorithms for
 * HyperLogLog sketches", 2017, algorithm 6), which needs neither linear counting nor bias
 * tables to be accurate at every cardinality.
 */
#include "sketch_hll.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HASH_BITS 64
#define Q (HASH_BITS - SL_HLL_P)       /* 50 bits below the index */
#define RHO_MAX (Q + 1)                /* 51: largest register value */
#define SP 25                          /* index bits of a sparse entry */
#define RHO25_MAX (HASH_BITS - SP + 1) /* 40 */
#define MIN_SLOTS 4u
#define MAX_SLOTS (SL_HLL_REGISTERS / 4u) /* 4096 four-byte slots = the dense registers' size */
#define SPARSE_MAX (MAX_SLOTS / 4u * 3u)  /* 3072 entries: the most a full table may hold */

/* Serialized form (docs/sketches.md): tag, version, p, kind, then the body. */
#define SER_TAG 0x48 /* 'H' */
#define SER_VERSION 1
#define SER_SPARSE 1
#define SER_DENSE 2
#define SER_HEAD 4
#define SER_DENSE_SIZE (SER_HEAD + SL_HLL_REGISTERS)

/* ---- byte order */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- entries and registers */

/* 1-based position of the first 1 bit of the `bits` low bits of x, or bits + 1 if none. */
static unsigned rho(uint64_t x, unsigned bits)
{
    return x ? (unsigned)__builtin_clzll(x) - (64 - bits) + 1 : bits + 1;
}

static uint32_t hash_to_entry(uint64_t hash)
{
    uint32_t idx25 = (uint32_t)(hash >> (HASH_BITS - SP));
    uint64_t low = hash & ((UINT64_C(1) << (HASH_BITS - SP)) - 1);
    return idx25 << 6 | rho(low, HASH_BITS - SP);
}

static void hash_to_reg(uint64_t hash, uint32_t *idx, unsigned *r)
{
    *idx = (uint32_t)(hash >> Q);
    *r = rho(hash & ((UINT64_C(1) << Q) - 1), Q);
}

/*
 * The register an entry updates: the 11 idx25 bits below the register index start the 50 bits
 * whose rho the register wants; if they are all 0, its rho is 11 plus the entry's rho25.
 */
static void entry_to_reg(uint32_t e, uint32_t *idx, unsigned *r)
{
    uint32_t idx25 = e >> 6, mid = idx25 & ((1u << (SP - SL_HLL_P)) - 1);
    *idx = idx25 >> (SP - SL_HLL_P);
    *r = mid ? rho(mid, SP - SL_HLL_P) : (SP - SL_HLL_P) + (e & 63);
}

static void reg_max(uint8_t *regs, uint32_t idx, unsigned r)
{
    if (regs[idx] < r) regs[idx] = (uint8_t)r;
}

/* ---- the sparse table */

/* The slot holding an entry with e's idx25, or the free slot where e belongs. */
static uint32_t *table_slot(uint32_t *slots, uint32_t cap, uint32_t e)
{
    uint32_t mask = cap - 1, i = (e >> 6) & mask;
    while (slots[i] != 0 && (slots[i] >> 6) != (e >> 6))
        i = (i + 1) & mask;
    return &slots[i];
}

/* Smallest table that holds n entries at most 3/4 full (n <= SPARSE_MAX). */
static uint32_t cap_for(uint32_t n)
{
    uint32_t cap = MIN_SLOTS;
    while (n > cap / 4 * 3)
        cap *= 2;
    return cap;
}

/* Move the entries into a table of `cap` slots. Returns 0, or -1 (table unchanged). */
static int table_resize(sl_hll *h, uint32_t cap)
{
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (uint32_t i = 0; i < h->cap; i++)
        if (h->u.slots[i]) *table_slot(slots, cap, h->u.slots[i]) = h->u.slots[i];
    free(h->u.slots);
    h->u.slots = slots;
    h->cap = cap;
    return 0;
}

/* Turn a sparse sketch dense, into `regs` (SL_HLL_REGISTERS zeroed bytes, taken). */
static void to_dense(sl_hll *h, uint8_t *regs)
{
    for (uint32_t i = 0; i < h->cap; i++) {
        uint32_t idx;
        unsigned r;
        if (!h->u.slots[i]) continue;
        entry_to_reg(h->u.slots[i], &idx, &r);
        reg_max(regs, idx, r);
    }
    free(h->u.slots);
    h->u.regs = regs;
    h->n = 0;
    h->cap = 0;
    h->dense = 1;
}

/* Add entry e to a sparse sketch whose table has room for one more entry. */
static void table_put(sl_hll *h, uint32_t e)
{
    uint32_t *s = table_slot(h->u.slots, h->cap, e);
    if (!*s) {
        *s = e;
        h->n++;
    } else if ((e & 63) > (*s & 63)) {
        *s = e;
    }
}

/* Raise the registers of a dense sketch with every entry of a sparse one. */
static void dense_add_entries(uint8_t *regs, const sl_hll *from)
{
    for (uint32_t i = 0; i < from->cap; i++) {
        uint32_t idx;
        unsigned r;
        if (!from->u.slots[i]) continue;
        entry_to_reg(from->u.slots[i], &idx, &r);
        reg_max(regs, idx, r);
    }
}

/* ---- public */

void sl_hll_init(sl_hll *h)
{
    memset(h, 0, sizeof *h);
}

void sl_hll_fini(sl_hll *h)
{
    free(h->dense ? (void *)h->u.regs : (void *)h->u.slots);
    sl_hll_init(h);
}

int sl_hll_add(sl_hll *h, uint64_t hash)
{
    uint32_t idx;
    unsigned r;
    if (h->dense) {
        hash_to_reg(hash, &idx, &r);
        reg_max(h->u.regs, idx, r);
        return 0;
    }
    uint32_t e = hash_to_entry(hash);
    if (h->cap) {
        uint32_t *s = table_slot(h->u.slots, h->cap, e);
        if (*s) { /* seen this idx25: no growth, whatever the load */
            if ((e & 63) > (*s & 63)) *s = e;
            return 0;
        }
        if (h->n + 1 <= h->cap / 4 * 3) {
            *s = e;
            h->n++;
            return 0;
        }
    }
    if (h->n < SPARSE_MAX) {
        if (table_resize(h, h->cap ? h->cap * 2 : MIN_SLOTS)) return -1;
        table_put(h, e);
        return 0;
    }
    uint8_t *regs = calloc(SL_HLL_REGISTERS, 1);
    if (!regs) return -1;
    to_dense(h, regs);
    hash_to_reg(hash, &idx, &r);
    reg_max(h->u.regs, idx, r);
    return 0;
}

int sl_hll_merge(sl_hll *into, const sl_hll *from)
{
    if (into == from) return 0; /* a set's union with itself */
    if (from->dense) {
        if (!into->dense) {
            uint8_t *regs = calloc(SL_HLL_REGISTERS, 1);
            if (!regs) return -1;
            to_dense(into, regs);
        }
        for (uint32_t i = 0; i < SL_HLL_REGISTERS; i++)
            reg_max(into->u.regs, i, from->u.regs[i]);
        return 0;
    }
    if (from->n == 0) return 0;
    if (into->dense) {
        dense_add_entries(into->u.regs, from);
        return 0;
    }
    /* Both sparse: the size of the union decides between a bigger table and registers */
    uint32_t need = into->n;
    for (uint32_t i = 0; i < from->cap; i++)
        if (from->u.slots[i] &&
            (!into->cap || !*table_slot(into->u.slots, into->cap, from->u.slots[i])))
            need++;
    if (need > SPARSE_MAX) {
        uint8_t *regs = calloc(SL_HLL_REGISTERS, 1);
        if (!regs) return -1;
        to_dense(into, regs);
        dense_add_entries(into->u.regs, from);
        return 0;
    }
    if (cap_for(need) > into->cap && table_resize(into, cap_for(need))) return -1;
    for (uint32_t i = 0; i < from->cap; i++)
        if (from->u.slots[i]) table_put(into, from->u.slots[i]);
    return 0;
}

/* Ertl (2017), sigma and tau of the improved estimator; both series converge in doubles. */
static double ertl_sigma(double x)
{
    if (x == 1.0) return INFINITY;
    double y = 1.0, z = x, zp;
    do {
        x *= x;
        zp = z;
        z += x * y;
        y += y;
    } while (z != zp);
    return z;
}

static double ertl_tau(double x)
{
    if (x == 0.0 || x == 1.0) return 0.0;
    double y = 1.0, z = 1.0 - x, zp;
    do {
        x = sqrt(x);
        zp = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
    } while (z != zp);
    return z / 3.0;
}

uint64_t sl_hll_estimate(const sl_hll *h)
{
    double e;
    if (!h->dense) {
        /* linear counting over the 2^25 idx25 buckets: n + about n^2 / 2^26 */
        double m = (double)(UINT64_C(1) << SP);
        e = -m * log1p(-(double)h->n / m);
    } else {
        uint32_t c[RHO_MAX + 1] = {0};
        double m = SL_HLL_REGISTERS;
        for (uint32_t i = 0; i < SL_HLL_REGISTERS; i++)
            c[h->u.regs[i]]++;
        double z = m * ertl_tau(1.0 - c[RHO_MAX] / m);
        for (int k = Q; k >= 1; k--)
            z = 0.5 * (z + c[k]);
        z += m * ertl_sigma(c[0] / m);
        e = m * m / (2.0 * log(2.0) * z); /* alpha_inf = 1 / (2 ln 2) */
    }
    /* every register at 51 (only a crafted sketch) gives z = 0 and e = inf */
    return e < 18446744073709549568.0 ? (uint64_t)(e + 0.5) : UINT64_MAX;
}

size_t sl_hll_serialized_size(const sl_hll *h)
{
    return h->dense ? SER_DENSE_SIZE : SER_HEAD + 4 + 4 * (size_t)h->n;
}

static int cmp_le32(const void *a, const void *b)
{
    uint32_t x = rd32(a), y = rd32(b);
    return (x > y) - (x < y);
}

int sl_hll_serialize(const sl_hll *h, uint8_t *out)
{
    out[0] = SER_TAG;
    out[1] = SER_VERSION;
    out[2] = SL_HLL_P;
    out[3] = h->dense ? SER_DENSE : SER_SPARSE;
    if (h->dense) {
        memcpy(out + SER_HEAD, h->u.regs, SL_HLL_REGISTERS);
        return 0;
    }
    uint8_t *p = out + SER_HEAD;
    wr32(p, h->n);
    p += 4;
    for (uint32_t i = 0; i < h->cap; i++) {
        if (!h->u.slots[i]) continue;
        wr32(p, h->u.slots[i]);
        p += 4;
    }
    /* sorted, so that equal sketches give equal bytes (table order depends on history) */
    qsort(out + SER_HEAD + 4, h->n, 4, cmp_le32);
    return 0;
}

int sl_hll_deserialize(sl_hll *h, const uint8_t *in, size_t len)
{
    sl_hll t;
    sl_hll_init(&t);
    if (len < SER_HEAD || in[0] != SER_TAG || in[1] != SER_VERSION || in[2] != SL_HLL_P) return -1;
    if (in[3] == SER_DENSE) {
        if (len != SER_DENSE_SIZE) return -1;
        for (size_t i = 0; i < SL_HLL_REGISTERS; i++)
            if (in[SER_HEAD + i] > RHO_MAX) return -1;
        if (!(t.u.regs = malloc(SL_HLL_REGISTERS))) return -1;
        memcpy(t.u.regs, in + SER_HEAD, SL_HLL_REGISTERS);
        t.dense = 1;
    } else if (in[3] == SER_SPARSE) {
        if (len < SER_HEAD + 4) return -1;
        uint32_t n = rd32(in + SER_HEAD), prev = 0;
        if (n > SPARSE_MAX || len != SER_HEAD + 4 + 4 * (size_t)n) return -1;
        const uint8_t *p = in + SER_HEAD + 4;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t e = rd32(p + 4 * (size_t)i);
            if (e >> 31 || (e & 63) < 1 || (e & 63) > RHO25_MAX) return -1;
            if (i > 0 && (e >> 6) <= (prev >> 6)) return -1; /* ascending, one per idx25 */
            prev = e;
        }
        if (n > 0) {
            t.cap = cap_for(n);
            if (!(t.u.slots = calloc(t.cap, sizeof *t.u.slots))) return -1;
            for (uint32_t i = 0; i < n; i++)
                *table_slot(t.u.slots, t.cap, rd32(p + 4 * (size_t)i)) = rd32(p + 4 * (size_t)i);
            t.n = n;
        }
    } else {
        return -1;
    }
    sl_hll_fini(h);
    *h = t;
    return 0;
}

size_t sl_hll_memory(const sl_hll *h)
{
    return h->dense ? SL_HLL_REGISTERS : (size_t)h->cap * sizeof *h->u.slots;
}
