/*
 * test_aggregate.c - the aggregate operator through the harness: tumbling and
 * hopping windows, grouping sets, every compute function, the all-or-nothing
 * errors rule and configuration mistakes. The harness's source has no
 * watermark, so windows fire at end of stream; lateness is tested end to end
 * (tests/e2e/test_aggregate.py), where the watermark can be driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void push(sl_harness *h, const char *time, const char *status, double amount, const char *id)
{
    char ev[256];
    snprintf(ev, sizeof ev,
             "{\"id\":\"%s\",\"time\":\"%s\",\"status\":\"%s\",\"amount\":%.2f,\"cust\":\"c-%s\"}",
             id, time, status, amount, id);
    assert_int_equal(sl_harness_push(h, ev), 0);
}

/* The output row whose text contains every needle, or NULL. */
static const char *row(const sl_harness *h, const char *a, const char *b)
{
    for (size_t i = 0; i < sl_harness_count(h, "out"); i++) {
        const char *r = sl_harness_out(h, "out", i);
        if (strstr(r, a) && (!b || strstr(r, b)))
            return r;
    }
    return NULL;
}

static void test_tumbling_sets_and_computes(void **st)
{
    sl_harness *h = sl_harness_new(
        "type: aggregate\n"
        "windows: [{tumbling: 1m}]\n"
        "group_by: [[], [status]]\n"
        "compute: {n: count(), s: sum(amount), a: avg(amount), lo: min(amount), hi: max(amount), "
        "d: count_distinct(status), \"p\": \"percentile(amount, 0.5)\", f: first(id), l: last(id)}");
    assert_non_null(h);
    push(h, "2026-01-01T00:00:10Z", "PAID", 10.0, "a");
    push(h, "2026-01-01T00:00:05Z", "PAID", 30.0, "b"); /* earlier: first() */
    push(h, "2026-01-01T00:00:59.999Z", "NEW", 20.0, "c");
    push(h, "2026-01-01T00:01:00Z", "NEW", 5.0, "d");   /* next window: [1m, 2m) */
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 5); /* w0: all, PAID, NEW; w1: all, NEW */
    const char *all0 = row(h, "\"start\":\"2026-01-01T00:00:00Z\"", "\"group\":{}");
    assert_non_null(all0);
    assert_non_null(strstr(all0, "\"end\":\"2026-01-01T00:01:00Z\""));
    assert_non_null(strstr(all0, "\"n\":3,\"s\":60.0,\"a\":20.0,\"lo\":10.0,\"hi\":30.0,\"d\":2,"));
    assert_non_null(strstr(all0, "\"f\":\"b\",\"l\":\"c\",\"time\":\"2026-01-01T00:01:00Z\"}"));
    const char *p = strstr(all0, "\"p\":");
    assert_non_null(p);
    double med = strtod(p + 4, NULL); /* rank floor(0.5*2) = 1: 20, within 1% */
    assert_true(med > 19.8 && med < 20.2);
    const char *paid = row(h, "\"start\":\"2026-01-01T00:00:00Z\"", "\"group\":{\"status\":\"PAID\"}");
    assert_non_null(paid);
    assert_non_null(strstr(paid, "\"n\":2,\"s\":40.0,"));
    const char *new1 = row(h, "\"start\":\"2026-01-01T00:01:00Z\"", "\"group\":{\"status\":\"NEW\"}");
    assert_non_null(new1);
    assert_non_null(strstr(new1, "\"n\":1,\"s\":5.0,"));
    sl_harness_destroy(&h);
}

static void test_hopping_windows(void **st)
{
    sl_harness *h = sl_harness_new("type: aggregate\n"
                                   "windows: [{hopping: 10m, every: 5m}]\n"
                                   "compute: {n: count(), total: sum(amount)}");
    assert_non_null(h);
    push(h, "2026-01-01T00:07:00Z", "X", 1.0, "a"); /* [0, 10m) and [5m, 15m) */
    push(h, "2026-01-01T00:12:00Z", "X", 2.0, "b"); /* [5m, 15m) and [10m, 20m) */
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 3);
    assert_non_null(row(h, "\"start\":\"2026-01-01T00:00:00Z\",\"end\":\"2026-01-01T00:10:00Z\"",
                        "\"n\":1,\"total\":1.0"));
    assert_non_null(row(h, "\"start\":\"2026-01-01T00:05:00Z\",\"end\":\"2026-01-01T00:15:00Z\"",
                        "\"n\":2,\"total\":3.0"));
    assert_non_null(row(h, "\"start\":\"2026-01-01T00:10:00Z\",\"end\":\"2026-01-01T00:20:00Z\"",
                        "\"n\":1,\"total\":2.0"));
    sl_harness_destroy(&h);
}

/* An event whose key or argument fails counts nowhere and leaves by errors; ints stay ints. */
static void test_errors_all_or_nothing(void **st)
{
    sl_harness *h = sl_harness_new("type: aggregate\n"
                                   "windows: [{tumbling: 1h}]\n"
                                   "group_by: [[], [data.kind]]\n"
                                   "compute: {n: count(), s: sum(data.v)}");
    assert_non_null(h);
    sl_harness_push(h, "{\"time\":\"2026-01-01T00:00:00Z\",\"data\":{\"kind\":\"a\",\"v\":2}}");
    sl_harness_push(h, "{\"time\":\"2026-01-01T00:00:01Z\",\"data\":{\"v\":3}}");        /* no kind */
    sl_harness_push(h, "{\"time\":\"2026-01-01T00:00:02Z\",\"data\":{\"kind\":\"a\"}}"); /* no v */
    sl_harness_push(h, "{\"time\":\"2026-01-01T00:00:03Z\",\"data\":{\"kind\":\"a\",\"v\":null}}");
    sl_harness_push(h, "{\"data\":{\"kind\":\"a\",\"v\":1}}"); /* no time */
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "errors"), 3);
    assert_int_equal(sl_harness_count(h, "out"), 2);
    assert_non_null(row(h, "\"group\":{}", "\"n\":2,\"s\":2,")); /* null skipped by sum */
    assert_non_null(row(h, "\"group\":{\"kind\":\"a\"}", "\"n\":2,\"s\":2,"));
    assert_non_null(strstr(sl_harness_out(h, "errors", 0), "group key 'kind'"));
    assert_int_equal(sl_harness_counter(h, "eval_errors"), 3);
    sl_harness_destroy(&h);
}

static void test_bad_configs(void **st)
{
    static const char *const bad[] = {
        "type: aggregate\nwindows: [{tumbling: 5x}]\ncompute: {n: count()}",
        "type: aggregate\nwindows: [{hopping: 10m, every: 3m}]\ncompute: {n: count()}",
        "type: aggregate\nwindows: [{tumbling: 1m}]\ncompute: {n: cnt()}",
        "type: aggregate\nwindows: [{tumbling: 1m}]\ncompute: {n: \"percentile(x, 2)\"}",
        "type: aggregate\nwindows: [{tumbling: 1m}]\ncompute: {n: sum()}",
        "type: aggregate\nwindows: [{tumbling: 1m}]\ncompute: {time: count()}",
        "type: aggregate\nwindows: [{session: 30s}]\ncompute: {n: count()}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sl_harness *h = sl_harness_new(bad[i]);
        if (h)
            print_message("accepted: %s\n", bad[i]);
        assert_null(h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tumbling_sets_and_computes),
        cmocka_unit_test(test_hopping_windows),
        cmocka_unit_test(test_errors_all_or_nothing),
        cmocka_unit_test(test_bad_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
