/*
 * test_sketch.c - HyperLogLog (engine/sketch_hll.c) and DDSketch (engine/sketch_quantile.c).
 *
 * Expectations, HLL: the hash is XXH64 (published vectors); small sets (with repeats) are
 * counted exactly; 1M distinct values are estimated within 2% for three seeds; a merge of two
 * parts gives byte for byte the sketch of the union, sparse, dense or mixed, in either order;
 * serialization round trips in both states; every prefix, a trailing byte, each kind of
 * corruption and random bytes are refused without touching the target.
 *
 * Expectations, quantiles: on uniform, exponential, lognormal and mixed-sign data (200k values
 * each) every percentile answered is within 1% of the exact value of rank floor(q (n - 1)),
 * computed by sorting, and p0 / p100 are exact; a merge of halves gives byte for byte the
 * sketch of the whole; collapse beyond 2048 buckets keeps memory bounded and the upper
 * quantiles exact to 1%, whatever the order of values; serialization round trips; malformed
 * bytes and NaN / infinities are refused.
 *
 * The accuracy bound is written here as a literal (0.01), not taken from the header, so a
 * change of the sketch's alpha makes these tests fail. Random data comes from splitmix64.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sketch_hll.h"
#include "sketch_quantile.h"

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform in (0, 1). */
static double unif(uint64_t *s)
{
    return ((double)(splitmix64(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(uint64_t *s)
{
    return sqrt(-2.0 * log(unif(s))) * cos(6.283185307179586 * unif(s));
}

/* ===================================================================== HyperLogLog */

/* The hash of v as the aggregate computes it: over its msgpack bytes (uint 64, 0xcf). */
static uint64_t value_hash(uint64_t v)
{
    uint8_t b[9];
    b[0] = 0xcf;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (uint8_t)(v >> (56 - 8 * i));
    return sl_hash_bytes(b, sizeof b);
}

/* Serialized bytes of h (malloc'ed), *len set. */
static uint8_t *hll_bytes(const sl_hll *h, size_t *len)
{
    *len = sl_hll_serialized_size(h);
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    assert_int_equal(sl_hll_serialize(h, b), 0);
    return b;
}

static void assert_hll_same(const sl_hll *a, const sl_hll *b)
{
    size_t la, lb;
    uint8_t *ba = hll_bytes(a, &la), *bb = hll_bytes(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    assert_true(sl_hll_estimate(a) == sl_hll_estimate(b));
    free(ba);
    free(bb);
}

/* Add values first .. first + n - 1 to h. */
static void hll_add_range(sl_hll *h, uint64_t first, uint64_t n)
{
    for (uint64_t v = first; v < first + n; v++)
        assert_int_equal(sl_hll_add(h, value_hash(v)), 0);
}

static void test_hll_hash_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t h;
    } v[] = {
        /* published XXH64 vectors (seed 0); together they take every branch of the tail */
        {"", UINT64_C(0xEF46DB3751D8E999)},
        {"a", UINT64_C(0xD24EC4F1A98C6E5B)},
        {"abc", UINT64_C(0x44BC2CF5AD770999)},
        {"1234567890123456789012345678901", UINT64_C(0x8F367CB873A5376E)},
        {"12345678901234567890123456789012", UINT64_C(0x40FD1AA52D98274C)},
        {"The quick brown fox jumps over the lazy dog", UINT64_C(0x0B242D361FDA71BC)},
        {"The quick brown fox jumps over the lazy dog.", UINT64_C(0x44AD33705751AD73)},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint64_t h = sl_hash_bytes(v[i].s, strlen(v[i].s));
        if (h != v[i].h)
            fail_msg("hash(\"%s\") = %016llx, want %016llx", v[i].s, (unsigned long long)h,
                     (unsigned long long)v[i].h);
    }
    /* unaligned input gives the same hash */
    char buf[64];
    memcpy(buf + 1, v[5].s, strlen(v[5].s));
    assert_true(sl_hash_bytes(buf + 1, strlen(v[5].s)) == v[5].h);
}

static void test_hll_small_exact(void **state)
{
    (void)state;
    static const uint64_t sizes[] = {0, 1, 2, 100, 300, 1000, 3000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t n = sizes[i];
        sl_hll h;
        sl_hll_init(&h);
        /* each value three times, repeats interleaved with new values */
        for (uint64_t r = 0; r < 3; r++)
            for (uint64_t v = 0; v < n; v++)
                assert_int_equal(sl_hll_add(&h, value_hash(v * 7919 + 13)), 0);
        uint64_t e = sl_hll_estimate(&h);
        print_message("hll: %llu distinct x3 -> estimate %llu, %zu heap bytes, %zu serialized\n",
                      (unsigned long long)n, (unsigned long long)e, sl_hll_memory(&h),
                      sl_hll_serialized_size(&h));
        /* Exact while sparse for these inputs, which have no 25-bit prefix collision; up to
         * 3000 a collision (13% likely at 3000) could make it one or two short. */
        if (n <= 300 ? e != n : e + 2 < n || e > n + 2)
            fail_msg("%llu distinct estimated as %llu", (unsigned long long)n,
                     (unsigned long long)e);
        assert_true(sl_hll_memory(&h) < SL_HLL_REGISTERS || n >= 3000);
        sl_hll_fini(&h);
        assert_int_equal(sl_hll_memory(&h), 0);
    }
    /* memory of small sketches: nothing when empty, a few bytes per value after */
    sl_hll h;
    sl_hll_init(&h);
    assert_int_equal(sl_hll_memory(&h), 0);
    assert_int_equal(sl_hll_estimate(&h), 0);
    hll_add_range(&h, 0, 1);
    assert_true(sl_hll_memory(&h) <= 16);
    hll_add_range(&h, 1, 99);
    assert_true(sl_hll_memory(&h) <= 1024);
    sl_hll_fini(&h);
}

static void test_hll_sparse_to_dense(void **state)
{
    (void)state;
    sl_hll h;
    sl_hll_init(&h);
    uint64_t n = 0;
    /* sparse up to 3072 entries, in a table of at most the 16 KiB of the registers */
    while (sl_hll_serialized_size(&h) != 8 + 4 * 3072) {
        hll_add_range(&h, n++, 1);
        assert_true(n <= 3200);
    }
    assert_int_equal(sl_hll_memory(&h), SL_HLL_REGISTERS);
    assert_true(sl_hll_estimate(&h) >= n - 1 && sl_hll_estimate(&h) <= n);
    uint64_t before = n;
    while (sl_hll_serialized_size(&h) != 4 + SL_HLL_REGISTERS)
        hll_add_range(&h, n++, 1);
    assert_int_equal(sl_hll_memory(&h), SL_HLL_REGISTERS);
    uint64_t e = sl_hll_estimate(&h);
    print_message("hll: dense after %llu distinct (3072 sparse entries at %llu); estimate %llu\n",
                  (unsigned long long)n, (unsigned long long)before, (unsigned long long)e);
    assert_true(fabs((double)e - (double)n) <= 0.03 * (double)n);
    /* dense, the memory is the registers, whatever is added */
    hll_add_range(&h, n, 10000);
    assert_int_equal(sl_hll_memory(&h), SL_HLL_REGISTERS);
    sl_hll_fini(&h);
}

static void test_hll_1m_error(void **state)
{
    (void)state;
    static const uint64_t checkpoints[] = {5000, 20000, 100000, 1000000};
    double worst = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        uint64_t rng = seed * UINT64_C(0x51ED270B27A5F3C1), n = 0;
        sl_hll h;
        sl_hll_init(&h);
        for (size_t c = 0; c < sizeof checkpoints / sizeof checkpoints[0]; c++) {
            /* splitmix64 outputs of distinct states are distinct values */
            for (; n < checkpoints[c]; n++)
                assert_int_equal(sl_hll_add(&h, value_hash(splitmix64(&rng))), 0);
            double err = ((double)sl_hll_estimate(&h) - (double)n) / (double)n;
            print_message("hll: seed %llu, %7llu distinct: relative error %+.4f%%\n",
                          (unsigned long long)seed, (unsigned long long)n, 100 * err);
            if (n == 1000000) {
                if (fabs(err) > worst) worst = fabs(err);
                assert_true(fabs(err) <= 0.02);
            } else {
                assert_true(fabs(err) <= 0.04); /* about 5 standard deviations */
            }
        }
        assert_int_equal(sl_hll_memory(&h), SL_HLL_REGISTERS);
        sl_hll_fini(&h);
    }
    print_message("hll: worst relative error at 1M distinct over 3 seeds: %.4f%%\n", 100 * worst);
}

/* merge(a = [a0, a0 + an), b = [b0, b0 + bn)) equals the sketch of the union, both ways. */
static void check_hll_merge(uint64_t a0, uint64_t an, uint64_t b0, uint64_t bn)
{
    sl_hll a, b, a2, b2, all;
    sl_hll_init(&a);
    sl_hll_init(&b);
    sl_hll_init(&a2);
    sl_hll_init(&b2);
    sl_hll_init(&all);
    hll_add_range(&a, a0, an);
    hll_add_range(&a2, a0, an);
    hll_add_range(&b, b0, bn);
    hll_add_range(&b2, b0, bn);
    hll_add_range(&all, b0, bn); /* a different order from either merge */
    hll_add_range(&all, a0, an);
    assert_int_equal(sl_hll_merge(&a, &b), 0);
    assert_int_equal(sl_hll_merge(&b2, &a2), 0);
    assert_hll_same(&a, &all);
    assert_hll_same(&b2, &all);
    /* a merge sizes its table for the union, as adding the values one by one does */
    assert_int_equal(sl_hll_memory(&a), sl_hll_memory(&all));
    assert_int_equal(sl_hll_memory(&b2), sl_hll_memory(&all));
    /* the merged sketch goes on working: add the same to both */
    hll_add_range(&a, 1u << 30, 5000);
    hll_add_range(&all, 1u << 30, 5000);
    assert_hll_same(&a, &all);
    sl_hll_fini(&a);
    sl_hll_fini(&b);
    sl_hll_fini(&a2);
    sl_hll_fini(&b2);
    sl_hll_fini(&all);
}

static void test_hll_merge(void **state)
{
    (void)state;
    check_hll_merge(0, 0, 0, 0);                /* empty + empty */
    check_hll_merge(0, 200, 0, 0);              /* sparse + empty */
    check_hll_merge(0, 200, 100, 200);          /* sparse + sparse, overlapping, stays sparse */
    check_hll_merge(0, 2000, 1000, 2000);       /* sum > 3072 but union < 3072: stays sparse */
    check_hll_merge(0, 2000, 2000, 2000);       /* sparse + sparse -> dense */
    check_hll_merge(0, 100, 100, 50000);        /* sparse + dense */
    check_hll_merge(0, 100000, 100000, 100000); /* dense + dense: halves */
    check_hll_merge(0, 100000, 50000, 100000);  /* dense + dense, overlapping */

    /* at the edge: values 0 .. n3072 - 1 make 3072 entries, 0 .. ndense - 1 one more */
    sl_hll h;
    uint64_t n = 0, n3072, ndense;
    sl_hll_init(&h);
    while (sl_hll_serialized_size(&h) != 8 + 4 * 3072)
        hll_add_range(&h, n++, 1);
    n3072 = n;
    while (sl_hll_serialized_size(&h) != 4 + SL_HLL_REGISTERS)
        hll_add_range(&h, n++, 1);
    ndense = n;
    sl_hll_fini(&h);
    check_hll_merge(0, n3072 / 2, n3072 / 2, n3072 - n3072 / 2);     /* union of 3072: sparse */
    check_hll_merge(0, n3072 - 1, 1, n3072 - 1);                     /* the same, overlapping */
    check_hll_merge(0, ndense / 2, ndense / 2, ndense - ndense / 2); /* 3073: dense */
    check_hll_merge(0, n3072, ndense - 1, 1);                        /* 3072 + 1 */

    /* the union estimate of two halves is that of the whole */
    sl_hll a, b;
    sl_hll_init(&a);
    sl_hll_init(&b);
    hll_add_range(&a, 0, 150);
    hll_add_range(&b, 150, 150);
    assert_int_equal(sl_hll_merge(&a, &b), 0);
    assert_int_equal(sl_hll_estimate(&a), 300);
    assert_int_equal(sl_hll_merge(&a, &a), 0); /* with itself: no change */
    assert_int_equal(sl_hll_estimate(&a), 300);
    hll_add_range(&b, 0, 10000);
    assert_int_equal(sl_hll_merge(&b, &b), 0);
    assert_hll_same(&b, &b);
    sl_hll_fini(&a);
    sl_hll_fini(&b);
}

static void check_hll_round_trip(uint64_t n)
{
    sl_hll h, back;
    sl_hll_init(&h);
    sl_hll_init(&back);
    hll_add_range(&back, 1u << 20, 10); /* replaced, not merged (and not leaked) */
    hll_add_range(&h, 0, n);
    size_t len;
    uint8_t *b = hll_bytes(&h, &len);
    assert_int_equal(sl_hll_deserialize(&back, b, len), 0);
    assert_true(sl_hll_estimate(&back) == sl_hll_estimate(&h));
    assert_hll_same(&back, &h); /* re-serializes to the same bytes */
    /* and goes on like the original */
    hll_add_range(&h, n, 4000);
    hll_add_range(&back, n, 4000);
    assert_hll_same(&back, &h);
    free(b);
    sl_hll_fini(&h);
    sl_hll_fini(&back);
}

static void test_hll_round_trip(void **state)
{
    (void)state;
    check_hll_round_trip(0);
    check_hll_round_trip(1);
    check_hll_round_trip(300);
    check_hll_round_trip(3000);
    check_hll_round_trip(100000);
}

/* deserialize(in) is refused and leaves h as it was. */
static void expect_hll_refused(sl_hll *h, const uint8_t *in, size_t len, const char *what)
{
    uint64_t e = sl_hll_estimate(h);
    size_t m = sl_hll_memory(h);
    if (sl_hll_deserialize(h, in, len) != -1) fail_msg("accepted: %s (%zu bytes)", what, len);
    assert_true(sl_hll_estimate(h) == e);
    assert_true(sl_hll_memory(h) == m);
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_hll_malformed(void **state)
{
    (void)state;
    sl_hll sparse, dense, target;
    sl_hll_init(&sparse);
    sl_hll_init(&dense);
    sl_hll_init(&target);
    hll_add_range(&sparse, 0, 300);
    hll_add_range(&dense, 0, 20000);
    hll_add_range(&target, 7u << 20, 5);
    size_t sl, dl;
    uint8_t *sb = hll_bytes(&sparse, &sl), *db = hll_bytes(&dense, &dl);
    uint8_t *t = malloc(dl + 1);
    assert_non_null(t);

    /* every proper prefix, and one byte too many */
    for (size_t len = 0; len < sl; len++)
        expect_hll_refused(&target, sb, len, "sparse prefix");
    for (size_t len = 0; len < dl; len++)
        expect_hll_refused(&target, db, len, "dense prefix");
    memcpy(t, sb, sl);
    t[sl] = 0;
    expect_hll_refused(&target, t, sl + 1, "sparse + 1 byte");
    memcpy(t, db, dl);
    t[dl] = 0;
    expect_hll_refused(&target, t, dl + 1, "dense + 1 byte");
    expect_hll_refused(&target, NULL, 0, "NULL");

    /* header fields */
    for (int i = 0; i < 4; i++) {
        memcpy(t, sb, sl);
        t[i] ^= 0x40;
        expect_hll_refused(&target, t, sl, "header byte");
    }
    memcpy(t, sb, sl);
    t[3] = 2; /* says dense, has a sparse body */
    expect_hll_refused(&target, t, sl, "kind");

    /* sparse body */
    memcpy(t, sb, sl);
    wr32(t + 4, 299);
    expect_hll_refused(&target, t, sl, "count one short");
    uint32_t e0 = rd32(sb + 8), e1 = rd32(sb + 12);
    memcpy(t, sb, sl);
    wr32(t + 8, e1);
    wr32(t + 12, e0);
    expect_hll_refused(&target, t, sl, "entries out of order");
    memcpy(t, sb, sl);
    wr32(t + 12, e0 + 1); /* same idx25, other rho */
    expect_hll_refused(&target, t, sl, "two entries for one idx25");
    memcpy(t, sb, sl);
    wr32(t + 8, e0 & ~63u);
    expect_hll_refused(&target, t, sl, "rho 0");
    memcpy(t, sb, sl);
    wr32(t + 8, (e0 & ~63u) | 41);
    expect_hll_refused(&target, t, sl, "rho 41");
    memcpy(t, sb, sl);
    wr32(t + sl - 4, rd32(sb + sl - 4) | 0x80000000u);
    expect_hll_refused(&target, t, sl, "index beyond 25 bits");
    {
        /* 3073 entries, sorted and well formed, are more than a sparse sketch holds */
        size_t n = 3073, len = 8 + 4 * n;
        uint8_t *big = malloc(len);
        assert_non_null(big);
        memcpy(big, sb, 4);
        wr32(big + 4, (uint32_t)n);
        for (size_t i = 0; i < n; i++)
            wr32(big + 8 + 4 * i, (uint32_t)(i * 1000) << 6 | 1);
        expect_hll_refused(&target, big, len, "3073 sparse entries");
        wr32(big + 4, (uint32_t)n - 1); /* 3072 are fine */
        assert_int_equal(sl_hll_deserialize(&target, big, len - 4), 0);
        assert_int_equal(sl_hll_estimate(&target), 3072);
        free(big);
        sl_hll_fini(&target);
        sl_hll_init(&target);
        hll_add_range(&target, 7u << 20, 5);
    }

    /* dense body: registers hold at most 51 */
    memcpy(t, db, dl);
    t[4 + 777] = 52;
    expect_hll_refused(&target, t, dl, "register 52");
    t[4 + 777] = 51;
    assert_int_equal(sl_hll_deserialize(&target, t, dl), 0);
    memset(t + 4, 51, SL_HLL_REGISTERS); /* no hash set does this; the estimate saturates */
    assert_int_equal(sl_hll_deserialize(&target, t, dl), 0);
    assert_true(sl_hll_estimate(&target) == UINT64_MAX);
    memset(t + 4, 0, SL_HLL_REGISTERS);
    assert_int_equal(sl_hll_deserialize(&target, t, dl), 0);
    assert_int_equal(sl_hll_estimate(&target), 0);
    sl_hll_fini(&target);
    sl_hll_init(&target);
    hll_add_range(&target, 7u << 20, 5);

    /* random bytes; then random bodies behind a valid header, which must not crash */
    uint64_t rng = 42;
    for (int i = 0; i < 3000; i++) {
        size_t len = (size_t)(splitmix64(&rng) % 64);
        for (size_t j = 0; j < len; j++)
            t[j] = (uint8_t)splitmix64(&rng);
        expect_hll_refused(&target, t, len, "random bytes");
    }
    int accepted = 0;
    for (int i = 0; i < 3000; i++) {
        uint32_t n = (uint32_t)(splitmix64(&rng) % 8);
        size_t len = 8 + 4 * (size_t)n;
        memcpy(t, sb, 4);
        wr32(t + 4, n);
        uint32_t e = 0;
        for (uint32_t j = 0; j < n; j++) {
            /* mostly ascending, so that some get past the order check */
            e += (uint32_t)(splitmix64(&rng) % (1u << 28));
            wr32(t + 8 + 4 * j, i % 2 ? e : (uint32_t)splitmix64(&rng));
        }
        sl_hll h;
        sl_hll_init(&h);
        if (sl_hll_deserialize(&h, t, len) == 0) {
            accepted++;
            assert_true(sl_hll_estimate(&h) == n);
            size_t l2;
            uint8_t *again = hll_bytes(&h, &l2);
            assert_int_equal(l2, len);
            assert_memory_equal(again, t, len);
            free(again);
        }
        sl_hll_fini(&h);
    }
    print_message("hll: %d of 3000 random sparse bodies were well formed\n", accepted);

    free(t);
    free(sb);
    free(db);
    sl_hll_fini(&sparse);
    sl_hll_fini(&dense);
    sl_hll_fini(&target);
}

/* ===================================================================== quantiles */

#define NQ 200000
#define ALPHA 0.01 /* the bound under test, deliberately not SL_QSKETCH_ALPHA */

enum dist { UNIFORM, UNIFORM_INT, EXPONENTIAL, LOGNORMAL, MIXED, NDIST };
static const char *const dist_name[NDIST] = {"uniform(1,500)", "uniform int 1..500",
                                             "exponential(1)", "lognormal(0,1.5)",
                                             "mixed sign + zeros"};

static double draw(enum dist d, uint64_t *rng)
{
    switch (d) {
    case UNIFORM:
        return 1.0 + 499.0 * unif(rng);
    case UNIFORM_INT:
        return (double)(1 + splitmix64(rng) % 500);
    case EXPONENTIAL:
        return -log(unif(rng));
    case LOGNORMAL:
        return exp(1.5 * normal(rng));
    case MIXED: {
        /* 45% negative lognormal, 45% positive lognormal, 10% exact zeros (of both signs) */
        double u = unif(rng);
        if (u < 0.45) return -exp(2.0 * normal(rng));
        if (u < 0.90) return exp(1.0 + normal(rng)) * 10.0;
        return u < 0.95 ? 0.0 : -0.0;
    }
    default:
        return 0;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double *make_values(enum dist d, size_t n, uint64_t seed)
{
    double *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = draw(d, &seed);
    return v;
}

static void q_add_all(sl_qsketch *s, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sl_qsketch_add(s, v[i]), 0);
}

static uint8_t *q_bytes(const sl_qsketch *s, size_t *len)
{
    *len = sl_qsketch_serialized_size(s);
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    assert_int_equal(sl_qsketch_serialize(s, b), 0);
    return b;
}

/* Same bytes, same count, same answers. */
static void assert_q_same(const sl_qsketch *a, const sl_qsketch *b)
{
    size_t la, lb;
    uint8_t *ba = q_bytes(a, &la), *bb = q_bytes(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    assert_true(sl_qsketch_count(a) == sl_qsketch_count(b));
    for (int i = 0; i <= 1000 && sl_qsketch_count(a); i++) {
        double x, y;
        assert_int_equal(sl_qsketch_quantile(a, i / 1000.0, &x), 0);
        assert_int_equal(sl_qsketch_quantile(b, i / 1000.0, &y), 0);
        assert_true(x == y);
    }
    free(ba);
    free(bb);
}

/* The quantiles checked: 0, 0.001, 0.01 .. 0.99 by 0.01, 0.999, 1. */
static double qgrid(int i)
{
    return i == 0 ? 0.0 : i == 1 ? 0.001 : i <= 100 ? (i - 1) / 100.0 : i == 101 ? 0.999 : 1.0;
}
#define NGRID 103

/*
 * Every quantile of the grid within ALPHA of the exact one (from the sorted values), p0 and
 * p100 exact. Returns the worst relative error; at[] gets the ones at p50, p95, p99.
 */
static double check_quantiles(const sl_qsketch *s, const double *values, size_t n, const char *what,
                              double at[3])
{
    double *sorted = malloc(n * sizeof *sorted), worst = 0;
    assert_non_null(sorted);
    memcpy(sorted, values, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_double);
    assert_true(sl_qsketch_count(s) == n);
    for (int i = 0; i < NGRID; i++) {
        double q = qgrid(i), est, exact = sorted[(size_t)floor(q * (double)(n - 1))];
        assert_int_equal(sl_qsketch_quantile(s, q, &est), 0);
        double err = exact == 0.0 ? fabs(est) : fabs(est - exact) / fabs(exact);
        if (q == 0.0 || q == 1.0) {
            if (est != exact) fail_msg("%s: q=%g: %.17g, exact %.17g", what, q, est, exact);
        } else if (!(exact == 0.0 ? est == 0.0 : err <= ALPHA * (1 + 1e-12))) {
            fail_msg("%s: q=%g: estimate %.17g, exact %.17g, relative error %.6f", what, q, est,
                     exact, err);
        }
        if (err > worst) worst = err;
        if (at && q == 0.5) at[0] = err;
        if (at && q == 0.95) at[1] = err;
        if (at && q == 0.99) at[2] = err;
    }
    free(sorted);
    return worst;
}

static void test_q_accuracy(void **state)
{
    (void)state;
    for (int d = 0; d < NDIST; d++) {
        double *v = make_values((enum dist)d, NQ, 1000 + (uint64_t)d), at[3] = {0};
        sl_qsketch s;
        sl_qsketch_init(&s);
        q_add_all(&s, v, NQ);
        double worst = check_quantiles(&s, v, NQ, dist_name[d], at);
        print_message("qsketch: %-20s p50 %.4f%% p95 %.4f%% p99 %.4f%%, worst of 101 quantiles "
                      "%.4f%%; %zu heap bytes, %zu serialized\n",
                      dist_name[d], 100 * at[0], 100 * at[1], 100 * at[2], 100 * worst,
                      sl_qsketch_memory(&s), sl_qsketch_serialized_size(&s));
        sl_qsketch_fini(&s);
        free(v);
    }
}

static void test_q_small(void **state)
{
    (void)state;
    sl_qsketch s;
    double x = 12345;
    sl_qsketch_init(&s);
    assert_int_equal(sl_qsketch_memory(&s), 0);
    assert_int_equal(sl_qsketch_count(&s), 0);
    assert_int_equal(sl_qsketch_quantile(&s, 0.5, &x), -1); /* empty */
    assert_true(x == 12345);
    assert_int_equal(sl_qsketch_add(&s, 42), 0);
    print_message("qsketch: one value: %zu heap bytes, %zu serialized\n", sl_qsketch_memory(&s),
                  sl_qsketch_serialized_size(&s));
    assert_true(sl_qsketch_memory(&s) <= 64);
    for (int i = 0; i <= 10; i++) {
        assert_int_equal(sl_qsketch_quantile(&s, i / 10.0, &x), 0);
        assert_true(x == 42); /* clamped to [min, max] */
    }
    /* q outside [0, 1] */
    x = 12345;
    assert_int_equal(sl_qsketch_quantile(&s, -0.01, &x), -1);
    assert_int_equal(sl_qsketch_quantile(&s, 1.01, &x), -1);
    assert_int_equal(sl_qsketch_quantile(&s, NAN, &x), -1);
    assert_true(x == 12345);

    /* NaN and infinities are refused and change nothing */
    size_t l0, l1;
    uint8_t *b0 = q_bytes(&s, &l0);
    assert_int_equal(sl_qsketch_add(&s, NAN), -1);
    assert_int_equal(sl_qsketch_add(&s, -NAN), -1);
    assert_int_equal(sl_qsketch_add(&s, INFINITY), -1);
    assert_int_equal(sl_qsketch_add(&s, -INFINITY), -1);
    uint8_t *b1 = q_bytes(&s, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(b0, b1, l0);
    assert_int_equal(sl_qsketch_count(&s), 1);
    free(b0);
    free(b1);
    sl_qsketch_fini(&s);

    /* |v| < 1e-9 counts as 0; min and max stay exact */
    sl_qsketch_init(&s);
    assert_int_equal(sl_qsketch_add(&s, 1e-10), 0);
    assert_int_equal(sl_qsketch_add(&s, -1e-10), 0);
    assert_int_equal(sl_qsketch_add(&s, 0.0), 0);
    assert_int_equal(sl_qsketch_add(&s, -5), 0);
    assert_int_equal(sl_qsketch_add(&s, 5), 0);
    assert_int_equal(sl_qsketch_count(&s), 5);
    assert_int_equal(sl_qsketch_quantile(&s, 0.5, &x), 0);
    assert_true(x == 0.0);
    assert_int_equal(sl_qsketch_quantile(&s, 0.25, &x), 0); /* rank 1 is a zero */
    assert_true(x == 0.0);
    assert_int_equal(sl_qsketch_quantile(&s, 0.2, &x), 0); /* rank 0 is -5 */
    assert_true(fabs(x + 5) <= 0.05);
    assert_int_equal(sl_qsketch_quantile(&s, 0, &x), 0);
    assert_true(x == -5);
    assert_int_equal(sl_qsketch_quantile(&s, 1, &x), 0);
    assert_true(x == 5);
    sl_qsketch_fini(&s);

    /* -0 and +0 are one value: the order they come in makes no difference */
    sl_qsketch z2;
    sl_qsketch_init(&s);
    sl_qsketch_init(&z2);
    assert_int_equal(sl_qsketch_add(&s, -0.0), 0);
    assert_int_equal(sl_qsketch_add(&s, 0.0), 0);
    assert_int_equal(sl_qsketch_add(&z2, 0.0), 0);
    assert_int_equal(sl_qsketch_add(&z2, -0.0), 0);
    assert_q_same(&s, &z2);
    sl_qsketch_fini(&s);
    sl_qsketch_fini(&z2);

    /* only tiny values: min and max are the exact tiny ones */
    sl_qsketch_init(&s);
    assert_int_equal(sl_qsketch_add(&s, 3e-12), 0);
    assert_int_equal(sl_qsketch_add(&s, -2e-12), 0);
    assert_int_equal(sl_qsketch_quantile(&s, 0, &x), 0);
    assert_true(x == -2e-12);
    assert_int_equal(sl_qsketch_quantile(&s, 0.5, &x), 0);
    assert_true(x == 0.0);
    assert_int_equal(sl_qsketch_memory(&s), 0);
    sl_qsketch_fini(&s);

    /* the extremes of the double range (1e-9 collapses into DBL_MAX's window: no check) */
    sl_qsketch_init(&s);
    assert_int_equal(sl_qsketch_add(&s, 1.7976931348623157e308), 0);
    assert_int_equal(sl_qsketch_add(&s, -1.7976931348623157e308), 0);
    assert_int_equal(sl_qsketch_add(&s, 1e-9), 0);
    assert_int_equal(sl_qsketch_add(&s, -1e-9), 0);
    assert_int_equal(sl_qsketch_quantile(&s, 0, &x), 0);
    assert_true(x == -1.7976931348623157e308);
    assert_int_equal(sl_qsketch_quantile(&s, 1, &x), 0);
    assert_true(x == 1.7976931348623157e308);
    for (int i = 1; i < 10; i++) {
        assert_int_equal(sl_qsketch_quantile(&s, i / 10.0, &x), 0);
        assert_true(isfinite(x));
    }
    size_t len;
    uint8_t *b = q_bytes(&s, &len);
    sl_qsketch back;
    sl_qsketch_init(&back);
    assert_int_equal(sl_qsketch_deserialize(&back, b, len), 0);
    assert_q_same(&back, &s);
    free(b);
    sl_qsketch_fini(&back);
    sl_qsketch_fini(&s);
}

/* Sketches of two halves merged, both ways, are the sketch of the whole. */
static void check_q_merge(const double *v, size_t n, size_t cut)
{
    sl_qsketch a, b, a2, b2, all;
    sl_qsketch_init(&a);
    sl_qsketch_init(&b);
    sl_qsketch_init(&a2);
    sl_qsketch_init(&b2);
    sl_qsketch_init(&all);
    q_add_all(&a, v, cut);
    q_add_all(&a2, v, cut);
    q_add_all(&b, v + cut, n - cut);
    q_add_all(&b2, v + cut, n - cut);
    q_add_all(&all, v, n);
    assert_int_equal(sl_qsketch_merge(&a, &b), 0);
    assert_int_equal(sl_qsketch_merge(&b2, &a2), 0);
    assert_q_same(&a, &all);
    assert_q_same(&b2, &all);
    sl_qsketch_fini(&a);
    sl_qsketch_fini(&b);
    sl_qsketch_fini(&a2);
    sl_qsketch_fini(&b2);
    sl_qsketch_fini(&all);
}

static void test_q_merge(void **state)
{
    (void)state;
    for (int d = 0; d < NDIST; d++) {
        double *v = make_values((enum dist)d, NQ, 2000 + (uint64_t)d);
        check_q_merge(v, NQ, NQ / 2);
        check_q_merge(v, 1000, 0);    /* empty + some */
        check_q_merge(v, 1000, 1000); /* some + empty */
        check_q_merge(v, 0, 0);       /* empty + empty */
        free(v);
    }
    /* disjoint ranges and signs: the store grows down, and up */
    static const double lo[] = {1, 2, 3, -1, -2}, hi[] = {1e6, 2e6, -1e6, 0, 3e-3};
    double v[10];
    memcpy(v, hi, sizeof hi);
    memcpy(v + 5, lo, sizeof lo);
    check_q_merge(v, 10, 5);
}

/* Values over 20 orders of magnitude need more than 2048 buckets: the lowest collapse. */
static void test_q_collapse(void **state)
{
    (void)state;
    size_t n = 100000;
    double *v = malloc(n * sizeof *v), *sorted = malloc(n * sizeof *sorted);
    assert_non_null(v);
    assert_non_null(sorted);
    uint64_t rng = 77;
    for (size_t i = 0; i < n; i++) {
        v[i] = pow(10.0, -8.0 + 20.0 * unif(&rng)); /* log-uniform over [1e-8, 1e12) */
        if (i % 3 == 0) v[i] = -v[i];
    }
    sl_qsketch s;
    sl_qsketch_init(&s);
    q_add_all(&s, v, n);
    assert_true(sl_qsketch_memory(&s) <= 2 * 2048 * sizeof(uint64_t));
    /* 2048 buckets of 2% span 10^17.8: values below 1e12 / 10^17.8 = 1.7e-6 in magnitude,
     * 11% of each sign, fold into the lowest kept bucket. Those are the negatives nearest 0,
     * ranks (1/3 - 0.11/3, 1/3), and the lowest positives, ranks (1/3, 1/3 + 0.11 * 2/3);
     * every other quantile stays within 1%. */
    double worst = 0;
    memcpy(sorted, v, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_double);
    for (int i = 0; i < NGRID; i++) {
        double q = qgrid(i), est, exact = sorted[(size_t)floor(q * (double)(n - 1))];
        if (q > 0.28 && q < 0.42) continue;
        assert_int_equal(sl_qsketch_quantile(&s, q, &est), 0);
        double err = fabs(est - exact) / fabs(exact);
        if (err > ALPHA * (1 + 1e-12)) fail_msg("collapsed: q=%g: error %g", q, err);
        if (err > worst) worst = err;
    }
    print_message("qsketch: collapsed, 20 decades: %zu heap bytes, %zu serialized, worst error "
                  "outside the folded ranks %.4f%%\n",
                  sl_qsketch_memory(&s), sl_qsketch_serialized_size(&s), 100 * worst);

    /* whatever the order (ascending slides the window at full size), the same sketch */
    sl_qsketch up;
    sl_qsketch_init(&up);
    q_add_all(&up, sorted, n);
    assert_q_same(&up, &s);
    sl_qsketch_fini(&up);
    check_q_merge(v, n, n / 2);
    check_q_merge(v, n, 10);
    /* pieces that collapse differently on their own */
    for (size_t i = 0; i < n; i++)
        sorted[i] = (double)(i + 1) * (i < n / 2 ? 1e-8 : 1e12);
    check_q_merge(sorted, n, n / 2);
    check_q_merge(sorted, n, n / 4);
    sl_qsketch_fini(&s);
    free(v);
    free(sorted);
}

static void test_q_round_trip(void **state)
{
    (void)state;
    for (int d = 0; d < NDIST; d++) {
        size_t n = d == MIXED ? NQ : 5000;
        double *v = make_values((enum dist)d, n, 3000 + (uint64_t)d);
        sl_qsketch s, back;
        sl_qsketch_init(&s);
        sl_qsketch_init(&back);
        q_add_all(&back, v, 10); /* replaced, not merged (and not leaked) */
        q_add_all(&s, v, n);
        size_t len;
        uint8_t *b = q_bytes(&s, &len);
        assert_int_equal(sl_qsketch_deserialize(&back, b, len), 0);
        assert_q_same(&back, &s);
        /* and goes on like the original */
        q_add_all(&s, v, 100);
        q_add_all(&back, v, 100);
        assert_int_equal(sl_qsketch_add(&s, -1e300), 0);
        assert_int_equal(sl_qsketch_add(&back, -1e300), 0);
        assert_q_same(&back, &s);
        free(b);
        free(v);
        sl_qsketch_fini(&s);
        sl_qsketch_fini(&back);
    }
    /* empty */
    sl_qsketch s, back;
    sl_qsketch_init(&s);
    sl_qsketch_init(&back);
    assert_int_equal(sl_qsketch_add(&back, 1), 0);
    size_t len;
    uint8_t *b = q_bytes(&s, &len);
    assert_int_equal(len, 23);
    assert_int_equal(sl_qsketch_deserialize(&back, b, len), 0);
    assert_int_equal(sl_qsketch_count(&back), 0);
    assert_int_equal(sl_qsketch_memory(&back), 0);
    free(b);
    sl_qsketch_fini(&s);
    sl_qsketch_fini(&back);
}

/* A serialized sketch assembled by hand. */
typedef struct qbuf {
    uint8_t b[256];
    size_t n;
} qbuf;

static void qb_head(qbuf *q, double min, double max)
{
    uint64_t u;
    q->b[0] = 'Q';
    q->b[1] = 1;
    q->b[2] = 1;
    q->b[3] = 0;
    memcpy(&u, &min, 8);
    for (int i = 0; i < 8; i++)
        q->b[4 + i] = (uint8_t)(u >> (8 * i));
    memcpy(&u, &max, 8);
    for (int i = 0; i < 8; i++)
        q->b[12 + i] = (uint8_t)(u >> (8 * i));
    q->n = 20;
}

static void qb_varint(qbuf *q, uint64_t v)
{
    for (; v >= 0x80; v >>= 7)
        q->b[q->n++] = (uint8_t)(v | 0x80);
    q->b[q->n++] = (uint8_t)v;
}

/* zero count, then each store as: nbins, zigzag(lo), counts (lo given as its zigzag form). */
static qbuf qb(double min, double max, uint64_t zero, int np, const uint64_t *pos, int nn,
               const uint64_t *neg)
{
    qbuf q;
    qb_head(&q, min, max);
    qb_varint(&q, zero);
    for (int s = 0; s < 2; s++) {
        int n = s ? nn : np;
        const uint64_t *c = s ? neg : pos;
        qb_varint(&q, (uint64_t)n);
        for (int i = 0; i < n + (n > 0); i++)
            qb_varint(&q, c[i]);
    }
    return q;
}

static void expect_q_refused(sl_qsketch *s, const uint8_t *in, size_t len, const char *what)
{
    size_t l0, l1;
    uint8_t *b0 = q_bytes(s, &l0);
    if (sl_qsketch_deserialize(s, in, len) != -1) fail_msg("accepted: %s (%zu bytes)", what, len);
    uint8_t *b1 = q_bytes(s, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(b0, b1, l0);
    free(b0);
    free(b1);
}

static void expect_q_accepted(const qbuf *q, const char *what)
{
    sl_qsketch s;
    sl_qsketch_init(&s);
    if (sl_qsketch_deserialize(&s, q->b, q->n) != 0) fail_msg("refused: %s", what);
    sl_qsketch_fini(&s);
}

static void test_q_malformed(void **state)
{
    (void)state;
    sl_qsketch src, target;
    sl_qsketch_init(&src);
    sl_qsketch_init(&target);
    double *v = make_values(MIXED, 20000, 9);
    q_add_all(&src, v, 20000);
    q_add_all(&target, v, 7);
    size_t len;
    uint8_t *b = q_bytes(&src, &len), *t = malloc(len + 1);
    assert_non_null(t);

    for (size_t l = 0; l < len; l++)
        expect_q_refused(&target, b, l, "prefix");
    memcpy(t, b, len);
    t[len] = 0;
    expect_q_refused(&target, t, len + 1, "one byte too many");
    expect_q_refused(&target, NULL, 0, "NULL");
    for (int i = 0; i < 4; i++) {
        memcpy(t, b, len);
        t[i] ^= 0x10;
        expect_q_refused(&target, t, len, "header byte");
    }

    /* hand-made: positive buckets 10..12 (zigzag 20), negative bucket -3 (zigzag 5) */
    static const uint64_t pos[] = {20, 1, 2, 3}, neg[] = {5, 4};
    qbuf q = qb(-1.05, 1.2, 1, 3, pos, 1, neg);
    expect_q_accepted(&q, "well formed");
    q = qb(-1.05, 1.2, 0, 3, pos, 1, neg);
    expect_q_accepted(&q, "no zeros");
    q = qb(0, 0, 0, 0, pos, 0, neg);
    expect_q_accepted(&q, "empty");

    typedef struct {
        qbuf q;
        const char *what;
    } badcase;
    badcase bad[32];
    int nb = 0;
    static const uint64_t pos0a[] = {20, 0, 2, 3}, pos0b[] = {20, 1, 2, 0},
                          posbig[] = {20, UINT64_C(1) << 63, UINT64_C(1) << 63},
                          poshuge[] = {80000, 1}, poslow[] = {2201, 1}, poslo64[] = {20, 1};
    bad[nb++] = (badcase){qb(-1.05, 1.2, 1, 3, pos0a, 1, neg), "zero lowest bucket"};
    bad[nb++] = (badcase){qb(-1.05, 1.2, 1, 3, pos0b, 1, neg), "zero highest bucket"};
    bad[nb++] = (badcase){qb(-1.05, 1.2, 1, 2, posbig, 1, neg), "count overflow"};
    bad[nb++] = (badcase){qb(-1.05, 1.2, 1, 1, poshuge, 1, neg), "bucket too high"};
    bad[nb++] = (badcase){qb(-1.05, 1.2, 1, 1, poslow, 1, neg), "bucket too low"};
    bad[nb++] = (badcase){qb(NAN, 1.2, 1, 3, pos, 1, neg), "NaN min"};
    bad[nb++] = (badcase){qb(-1.05, INFINITY, 1, 3, pos, 1, neg), "infinite max"};
    bad[nb++] = (badcase){qb(1.2, -1.05, 1, 3, pos, 1, neg), "min > max"};
    bad[nb++] = (badcase){qb(0.5, 1.2, 1, 3, pos, 1, neg), "min not negative"};
    bad[nb++] = (badcase){qb(-1.05, 0, 1, 3, pos, 1, neg), "max not positive"};
    bad[nb++] = (badcase){qb(-1.05, -0.5, 1, 0, pos, 1, neg), "max not zero"};
    bad[nb++] = (badcase){qb(1, 0, 0, 0, pos, 0, neg), "empty with a min"};
    bad[nb++] = (badcase){qb(-0.0, 0, 0, 0, pos, 0, neg), "empty with -0 min"};
    bad[nb++] = (badcase){qb(1, 2, 1, 1, poslo64, 0, neg), "zero count, min positive"};
    {
        qbuf x = qb(-1.05, 1.2, 1, 3, pos, 1, neg);
        x.b[20] = 0x81; /* zero count 1 as a two-byte varint */
        memmove(x.b + 22, x.b + 21, x.n - 21);
        x.b[21] = 0x00;
        x.n++;
        bad[nb++] = (badcase){x, "non-minimal varint"};
        qbuf y = qb(0, 0, 0, 0, pos, 0, neg);
        y.n = 20;
        for (int i = 0; i < 10; i++)
            y.b[y.n++] = 0xff; /* a varint beyond 64 bits */
        y.b[y.n++] = 0x01;
        y.b[y.n++] = 0;
        y.b[y.n++] = 0;
        bad[nb++] = (badcase){y, "varint beyond 64 bits"};
        qbuf z;
        memset(&z, 0, sizeof z);
        qb_head(&z, 1, 2);
        qb_varint(&z, 0);
        qb_varint(&z, 2049); /* more buckets than a store holds */
        z.n = sizeof z.b;    /* zeros after: (the body is never reached) */
        bad[nb++] = (badcase){z, "2049 buckets"};
    }
    for (int i = 0; i < nb; i++)
        expect_q_refused(&target, bad[i].q.b, bad[i].q.n, bad[i].what);

    /* random bytes, then random bodies behind a valid header: refused or usable, no crash */
    uint64_t rng = 4242;
    uint8_t r[64];
    for (int i = 0; i < 3000; i++) {
        size_t l = (size_t)(splitmix64(&rng) % sizeof r);
        for (size_t j = 0; j < l; j++)
            r[j] = (uint8_t)splitmix64(&rng);
        expect_q_refused(&target, r, l, "random bytes");
    }
    int accepted = 0;
    for (int i = 0; i < 20000; i++) {
        size_t l = 20 + (size_t)(splitmix64(&rng) % 24);
        qb_head(&q, -(double)(splitmix64(&rng) % 4), (double)(splitmix64(&rng) % 4));
        memcpy(r, q.b, 20);
        for (size_t j = 20; j < l; j++)
            r[j] = (uint8_t)(splitmix64(&rng) % (i % 2 ? 8 : 256));
        sl_qsketch s;
        sl_qsketch_init(&s);
        if (sl_qsketch_deserialize(&s, r, l) == 0) {
            double x;
            accepted++;
            for (int k = 0; k <= 10; k++)
                assert_int_equal(sl_qsketch_quantile(&s, k / 10.0, &x), 0);
            assert_int_equal(sl_qsketch_add(&s, 3.5), 0);
            assert_int_equal(sl_qsketch_merge(&s, &src), 0);
        }
        sl_qsketch_fini(&s);
    }
    print_message("qsketch: %d of 20000 random bodies were well formed\n", accepted);

    free(b);
    free(t);
    free(v);
    sl_qsketch_fini(&src);
    sl_qsketch_fini(&target);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hll_hash_vectors),
        cmocka_unit_test(test_hll_small_exact),
        cmocka_unit_test(test_hll_sparse_to_dense),
        cmocka_unit_test(test_hll_1m_error),
        cmocka_unit_test(test_hll_merge),
        cmocka_unit_test(test_hll_round_trip),
        cmocka_unit_test(test_hll_malformed),
        cmocka_unit_test(test_q_accuracy),
        cmocka_unit_test(test_q_small),
        cmocka_unit_test(test_q_merge),
        cmocka_unit_test(test_q_collapse),
        cmocka_unit_test(test_q_round_trip),
        cmocka_unit_test(test_q_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
