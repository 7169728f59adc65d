/*
 * test_bloom.c - the blocked bloom filter (engine/bloom.c, bloom.h).
 *
 * Expectations:
 * - no false negatives, ever: every key added is "maybe present", in a filter at capacity
 *   and in one overfilled 10 000 times (capacity 10, 100k keys);
 * - at capacity, the measured false-positive rate over 1M absent keys is within 15% of the
 *   model's rate (sl_bloom_fpr) and at most 1.15 x the configured error rate, for 10%, 1%
 *   and 0.1%, with keys hashed the way dedup hashes them (sl_hash_bytes of msgpack strings);
 * - sizing: the model rate at capacity meets the error rate, one block fewer would not (the
 *   fewest blocks), the cost of blocking at 1% stays under 10.5 bits per key (an unblocked
 *   filter needs 9.59), and out-of-range arguments are refused;
 * - the model: 0 for an empty filter, increasing in the load, and for k = 1 equal to its
 *   closed form 1 - exp(-lambda / 512);
 * - clear empties the filter and keeps it usable; the bit array is cache-line aligned.
 * The bounds are literals here, not taken from bloom.h, so a change of the sizing shows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bloom.h"
#include "sketch_hll.h"

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* The hash of msgpack string "<prefix><i>", as dedup hashes an id. */
static uint64_t key_hash(const char *prefix, uint64_t i)
{
    char text[40];
    uint8_t mp[41];
    int n = snprintf(text, sizeof text, "%s%010llu", prefix, (unsigned long long)i);
    mp[0] = (uint8_t)(0xa0 | n);
    memcpy(mp + 1, text, (size_t)n);
    return sl_hash_bytes(mp, (size_t)n + 1);
}

static void test_hash_is_xxh64(void **st)
{
    assert_true(sl_hash_bytes("", 0) == UINT64_C(0xEF46DB3751D8E999));
    assert_true(sl_hash_bytes("abc", 3) != sl_hash_bytes("abd", 3));
}

static void test_no_false_negatives(void **st)
{
    sl_bloom b;
    assert_int_equal(sl_bloom_init(&b, 1000000, 0.01), 0);
    for (uint64_t i = 0; i < 1000000; i++)
        sl_bloom_add(&b, key_hash("evt-", i));
    assert_true(b.added == 1000000);
    for (uint64_t i = 0; i < 1000000; i++)
        if (!sl_bloom_may_contain(&b, key_hash("evt-", i)))
            fail_msg("key %llu added but reported absent", (unsigned long long)i);
    sl_bloom_fini(&b);

    /* overfilled: one block, every bit set long before the end; still no false negative */
    assert_int_equal(sl_bloom_init(&b, 10, 0.5), 0);
    assert_true(b.n_blocks == 1);
    uint64_t s = 1;
    for (int i = 0; i < 100000; i++)
        sl_bloom_add(&b, splitmix64(&s));
    s = 1;
    for (int i = 0; i < 100000; i++)
        assert_int_equal(sl_bloom_may_contain(&b, splitmix64(&s)), 1);
    sl_bloom_fini(&b);
}

/* Fill a filter to capacity with "evt-" keys and measure its FPR over 1M "abs-" keys. */
static void expect_fpr_at_capacity(uint64_t capacity, double eps)
{
    sl_bloom b;
    assert_int_equal(sl_bloom_init(&b, capacity, eps), 0);
    for (uint64_t i = 0; i < capacity; i++)
        sl_bloom_add(&b, key_hash("evt-", i));
    const uint64_t q = 1000000;
    uint64_t hits = 0;
    for (uint64_t i = 0; i < q; i++)
        hits += (uint64_t)sl_bloom_may_contain(&b, key_hash("abs-", i));
    double measured = (double)hits / (double)q, model = sl_bloom_expected_fpr(&b, capacity);
    print_message("capacity %llu, error rate %g: k = %u, %.2f bits/key, model %.5f, measured "
                  "%.5f\n",
                  (unsigned long long)capacity, eps, b.k,
                  (double)sl_bloom_memory(&b) * 8 / (double)capacity, model, measured);
    assert_true(model <= eps);
    assert_true(fabs(measured - model) <= 0.15 * model);
    assert_true(measured <= 1.15 * eps);
    sl_bloom_fini(&b);
}

static void test_fpr_at_capacity(void **st)
{
    expect_fpr_at_capacity(200000, 0.1);
    expect_fpr_at_capacity(1000000, 0.01);
    expect_fpr_at_capacity(1000000, 0.001);
}

static void test_sizing(void **st)
{
    static const double eps[] = {0.5, 0.1, 0.01, 0.001, 0.0001};
    for (size_t i = 0; i < sizeof eps / sizeof *eps; i++) {
        uint32_t k;
        uint64_t nb;
        const uint64_t n = 1000000;
        assert_int_equal(sl_bloom_size(n, eps[i], &k, &nb), 0);
        assert_true(k >= 1 && k <= SL_BLOOM_MAX_K);
        double fpr = sl_bloom_fpr(k, (double)n / (double)nb);
        assert_true(fpr <= eps[i]);
        /* the fewest blocks: with one fewer, no k meets the rate */
        for (uint32_t kk = 1; kk <= SL_BLOOM_MAX_K; kk++)
            assert_true(sl_bloom_fpr(kk, (double)n / (double)(nb - 1)) > eps[i]);
        /* never less than an unblocked filter needs: -log2(eps) / ln 2 bits per key */
        double bits = (double)nb * 512 / (double)n;
        assert_true(bits >= -log2(eps[i]) / log(2) - 1e-9);
        if (eps[i] == 0.01)
            assert_true(bits < 10.5);
    }
    uint32_t k;
    uint64_t nb;
    assert_int_equal(sl_bloom_size(1, 0.01, &k, &nb), 0);
    assert_true(nb == 1);
    assert_int_equal(sl_bloom_size(0, 0.01, &k, &nb), -1);
    assert_int_equal(sl_bloom_size(100, 0, &k, &nb), -1);
    assert_int_equal(sl_bloom_size(100, 1, &k, &nb), -1);
    assert_int_equal(sl_bloom_size(100, -0.5, &k, &nb), -1);
    assert_int_equal(sl_bloom_size(100, NAN, &k, &nb), -1);
    assert_int_equal(sl_bloom_size(UINT64_C(1) << 40, 1e-6, &k, &nb), -1); /* > 2^32 blocks */
    sl_bloom b;
    assert_int_equal(sl_bloom_init(&b, 0, 0.01), -1);
    assert_null(b.blocks);
    sl_bloom_fini(&b); /* optional after a failure, and harmless */
}

static void test_model(void **st)
{
    assert_true(sl_bloom_fpr(6, 0) == 0);
    double prev = 0;
    for (double lambda = 1; lambda < 2000; lambda *= 1.5) {
        double f = sl_bloom_fpr(6, lambda);
        assert_true(f > prev && f <= 1);
        prev = f;
        double closed = 1 - exp(-lambda / 512); /* k = 1: E[1 - q^J], J ~ Poisson(lambda) */
        assert_true(fabs(sl_bloom_fpr(1, lambda) - closed) < 1e-9);
    }
}

static void test_clear_and_alignment(void **st)
{
    sl_bloom b;
    assert_int_equal(sl_bloom_init(&b, 10000, 0.01), 0);
    assert_true(((uintptr_t)b.blocks & 63) == 0);
    uint64_t s = 7;
    for (int i = 0; i < 10000; i++)
        sl_bloom_add(&b, splitmix64(&s));
    sl_bloom_clear(&b);
    assert_true(b.added == 0);
    s = 7;
    for (int i = 0; i < 10000; i++)
        assert_int_equal(sl_bloom_may_contain(&b, splitmix64(&s)), 0);
    sl_bloom_add(&b, 42);
    assert_int_equal(sl_bloom_may_contain(&b, 42), 1);
    sl_bloom_fini(&b);
    assert_null(b.blocks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_is_xxh64),
        cmocka_unit_test(test_no_false_negatives),
        cmocka_unit_test(test_fpr_at_capacity),
        cmocka_unit_test(test_sizing),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_clear_and_alignment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
