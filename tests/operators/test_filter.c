/*
 * test_filter.c - the filter operator through the harness: where-clauses,
 * the seed-style spec compiled to the same thing, evaluation errors on
 * the errors port, rejected events, and reordering that never changes
 * results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

static const char *const events[] = {
    "{\"id\":\"1\",\"type\":\"order.created\",\"source\":\"shop\",\"time\":\"2026-01-01T00:00:00Z\","
    "\"data\":{\"total\":150.5,\"status\":\"PAID\",\"customerId\":\"cust-123\"}}",
    "{\"id\":\"2\",\"type\":\"order.created\",\"source\":\"shop\",\"time\":\"2026-01-01T00:00:01Z\","
    "\"data\":{\"total\":50.0,\"status\":\"PENDING\",\"customerId\":\"cust-456\"}}",
    "{\"id\":\"3\",\"type\":\"payment.processed\",\"source\":\"pay\",\"time\":\"2026-01-01T00:00:02Z\","
    "\"data\":{\"amount\":150.5,\"status\":\"APPROVED\"}}",
    "{\"id\":\"4\",\"type\":\"order.updated\",\"source\":\"shop\",\"time\":\"2026-01-02T00:00:00Z\","
    "\"data\":{\"total\":999.0,\"status\":\"SHIPPED\",\"customerId\":\"cust-123\"}}",
};
#define N_EVENTS (sizeof events / sizeof *events)

/* Run a filter over the events; return the ids kept as "1,4" into buf. */
static sl_harness *run(const char *yaml, char *kept, size_t n)
{
    sl_harness *h = sl_harness_new(yaml);
    assert_non_null(h);
    for (size_t i = 0; i < N_EVENTS; i++)
        assert_int_equal(sl_harness_push(h, events[i]), 0);
    assert_int_equal(sl_harness_run(h), 0);
    kept[0] = '\0';
    for (size_t i = 0; i < sl_harness_count(h, "out"); i++) {
        const char *ev = sl_harness_out(h, "out", i);
        const char *id = strstr(ev, "\"id\":\"");
        assert_non_null(id);
        size_t len = strlen(kept);
        snprintf(kept + len, n - len, "%s%c", len ? "," : "", id[6]);
    }
    return h;
}

static void expect_kept(const char *yaml, const char *ids)
{
    char kept[64];
    sl_harness *h = run(yaml, kept, sizeof kept);
    if (strcmp(kept, ids) != 0)
        fail_msg("filter\n%s\nkept [%s], expected [%s]", yaml, kept, ids);
    sl_harness_destroy(&h);
}

static void test_where(void **st)
{
    expect_kept("type: filter\nwhere: type.startsWith(\"order.\") && data.total > 100.0", "1,4");
    expect_kept("type: filter\nwhere: data.customerId in [\"cust-123\", \"cust-999\"]", "1,4");
    expect_kept("type: filter\nwhere: has(data.amount)", "3");
    expect_kept("type: filter\nwhere: 'data.status == \"PENDING\" || data.status == \"APPROVED\"'",
                "2,3");
}

static void test_spec_is_sugar(void **st)
{
    expect_kept("type: filter\ntypes: [order.created, order.updated]\ndata: {total: {gt: 100}}",
                "1,4");
    expect_kept("type: filter\nsources: [pay]", "3");
    expect_kept("type: filter\nstart_time: 2026-01-01T00:00:01Z\nend_time: 2026-01-02T00:00:00Z",
                "2,3");
    expect_kept("type: filter\ndata: {status: PAID}", "1");
    expect_kept("type: filter\ndata: {customerId: {in: [cust-456]}, total: {lte: 50}}", "2");
    expect_kept("type: filter\ndata: {status: {ne: PAID}}\ntypes: [order.created]", "2");
    /* spec and where together: both must hold */
    expect_kept("type: filter\ntypes: [order.created]\nwhere: data.total < 100.0", "2");
}

static void test_errors_port_and_rejected(void **st)
{
    char kept[64];
    /* the payment has no data.total: an evaluation error, which counts as false */
    sl_harness *h = run("type: filter\nwhere: data.total > 100.0", kept, sizeof kept);
    assert_string_equal(kept, "1,4");
    assert_int_equal(sl_harness_count(h, "errors"), 1);
    const char *env = sl_harness_out(h, "errors", 0);
    assert_non_null(strstr(env, "\"reason\":\"eval_error\""));
    assert_non_null(strstr(env, "\"operator\":\"op\""));
    assert_non_null(strstr(env, "\"original\":{\"id\":\"3\""));
    assert_int_equal(sl_harness_count(h, "rejected"), 1); /* event 2: false, not an error */
    assert_int_equal(sl_harness_counter(h, "eval_errors"), 1);
    sl_harness_destroy(&h);
}

static void test_reordering_never_changes_results(void **st)
{
    /* many events, terms of very different cost and selectivity, some erring */
    const char *terms = "where: data.status != \"NONE\" && data.customerId.startsWith(\"cust-1\") "
                        "&& data.total > 10.0 && data.status.matches(\"^(PAID|SHIPPED)$\")";
    char yaml_on[512], yaml_off[512];
    snprintf(yaml_on, sizeof yaml_on, "type: filter\n%s\nreorder: true", terms);
    snprintf(yaml_off, sizeof yaml_off, "type: filter\n%s\nreorder: false", terms);
    sl_harness *on = sl_harness_new(yaml_on), *off = sl_harness_new(yaml_off);
    assert_non_null(on);
    assert_non_null(off);
    static const char *const statuses[] = {"PAID", "SHIPPED", "PENDING", "NONE"};
    for (int i = 0; i < 20000; i++) {
        char ev[256];
        if (i % 7 == 0) /* no data.total: the third term errs */
            snprintf(ev, sizeof ev, "{\"id\":\"%d\",\"data\":{\"status\":\"%s\",\"customerId\":"
                     "\"cust-%d\"}}", i, statuses[i % 4], i % 300);
        else
            snprintf(ev, sizeof ev, "{\"id\":\"%d\",\"data\":{\"status\":\"%s\",\"customerId\":"
                     "\"cust-%d\",\"total\":%d.5}}", i, statuses[i % 4], i % 300, i % 50);
        assert_int_equal(sl_harness_push(on, ev), 0);
        assert_int_equal(sl_harness_push(off, ev), 0);
    }
    assert_int_equal(sl_harness_run(on), 0);
    assert_int_equal(sl_harness_run(off), 0);
    static const char *const ports[] = {"out", "rejected", "errors"};
    for (int p = 0; p < 3; p++) {
        size_t n = sl_harness_count(on, ports[p]);
        assert_int_equal(n, sl_harness_count(off, ports[p]));
        for (size_t i = 0; i < n && p < 2; i++)
            assert_string_equal(sl_harness_out(on, ports[p], i), sl_harness_out(off, ports[p], i));
    }
    assert_true(sl_harness_count(on, "out") > 0);
    assert_true(sl_harness_count(on, "errors") > 0);
    sl_harness_destroy(&on);
    sl_harness_destroy(&off);
}

static void test_bad_expression_is_a_config_error(void **st)
{
    assert_null(sl_harness_new("type: filter\nwhere: data.total >"));
    assert_null(sl_harness_new("type: filter"));                    /* no predicate */
    assert_null(sl_harness_new("type: filter\ndata: {total: {gtt: 1}}")); /* unknown condition */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_spec_is_sugar),
        cmocka_unit_test(test_errors_port_and_rejected),
        cmocka_unit_test(test_reordering_never_changes_results),
        cmocka_unit_test(test_bad_expression_is_a_config_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
