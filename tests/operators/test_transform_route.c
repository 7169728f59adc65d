/*
 * test_transform_route.c - transform (fields, keep, drop, rename, nested
 * names, errors) and route (first_match, all_matches, default, errors)
 * through the harness.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

static const char *const order =
    "{\"id\":\"e1\",\"type\":\"order.created\",\"source\":\"shop\",\"time\":\"2026-01-01T00:00:00Z\","
    "\"data\":{\"orderId\":\"o-1\",\"total\":150.5,\"status\":\"PAID\",\"items\":3}}";
static const char *const payment =
    "{\"id\":\"e2\",\"type\":\"payment.processed\",\"source\":\"pay\",\"time\":\"2026-01-01T00:00:01Z\","
    "\"data\":{\"orderId\":\"o-1\",\"amount\":150.5}}";

static sl_harness *run1(const char *yaml, const char *ev)
{
    sl_harness *h = sl_harness_new(yaml);
    assert_non_null(h);
    assert_int_equal(sl_harness_push(h, ev), 0);
    assert_int_equal(sl_harness_run(h), 0);
    return h;
}

static void expect_out(const char *yaml, const char *ev, const char *expected)
{
    sl_harness *h = run1(yaml, ev);
    assert_int_equal(sl_harness_count(h, "out"), 1);
    assert_string_equal(sl_harness_out(h, "out", 0), expected);
    sl_harness_destroy(&h);
}

static void test_fields(void **st)
{
    expect_out("type: transform\nfields: {orderId: data.orderId, amount: data.total, "
               "big: data.total > 100.0, twice: data.items * 2}",
               order,
               "{\"id\":\"e1\",\"time\":\"2026-01-01T00:00:00Z\",\"orderId\":\"o-1\","
               "\"amount\":150.5,\"big\":true,\"twice\":6}");
}

static void test_nested_keep_drop_rename(void **st)
{
    expect_out("type: transform\nfields: {\"order.id\": data.orderId, \"order.status\": "
               "data.status.lower()}\nkeep: [type]",
               order,
               "{\"id\":\"e1\",\"type\":\"order.created\",\"time\":\"2026-01-01T00:00:00Z\","
               "\"order\":{\"id\":\"o-1\",\"status\":\"paid\"}}");
    expect_out("type: transform\ndrop: [source, time]\nrename: {data: payload}", payment,
               "{\"id\":\"e2\",\"type\":\"payment.processed\",\"payload\":{\"orderId\":\"o-1\","
               "\"amount\":150.5}}");
}

static void test_field_error_goes_to_errors(void **st)
{
    sl_harness *h = run1("type: transform\nfields: {amount: data.total}", payment);
    assert_int_equal(sl_harness_count(h, "out"), 0);
    assert_int_equal(sl_harness_count(h, "errors"), 1);
    const char *env = sl_harness_out(h, "errors", 0);
    assert_non_null(strstr(env, "\"reason\":\"eval_error\""));
    assert_non_null(strstr(env, "field 'amount'"));
    sl_harness_destroy(&h);
}

/* 16 attributes out: the map header grows to map16 and the output is still exact. */
static void test_many_attributes(void **st)
{
    char ev[1024], want[1024];
    int n = snprintf(ev, sizeof ev, "{\"id\":\"e9\"");
    for (int i = 0; i < 15; i++)
        n += snprintf(ev + n, sizeof ev - (size_t)n, ",\"a%02d\":%d", i, i);
    snprintf(ev + n, sizeof ev - (size_t)n, "}");
    n = snprintf(want, sizeof want, "{\"id\":\"e9\"");
    for (int i = 0; i < 15; i++)
        if (i != 3 && i != 5) /* dropped; computed below */
            n += snprintf(want + n, sizeof want - (size_t)n, ",\"%s%02d\":%d", i == 7 ? "b" : "a",
                          i, i);
    snprintf(want + n, sizeof want - (size_t)n, ",\"x\":1,\"a05\":50}");
    expect_out("type: transform\ndrop: [a03]\nrename: {a07: b07}\nkeep: [a00, a01, a02, a03, "
               "a04, a06, a07, a08, a09, a10, a11, a12, a13, a14]\n"
               "fields: {x: 1, a05: a05 * 10}",
               ev, want);
}

static void test_route_modes(void **st)
{
    const char *routes = "type: route\nroutes: {orders: type.startsWith(\"order.\"), "
                         "big: data.total > 100.0, payments: type == \"payment.processed\"}";
    sl_harness *h = sl_harness_new(routes);
    assert_non_null(h);
    sl_harness_push(h, order);
    sl_harness_push(h, payment);
    sl_harness_push(h, "{\"id\":\"e3\",\"type\":\"other\",\"data\":{\"total\":1.0}}");
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "orders"), 1); /* first match only */
    assert_int_equal(sl_harness_count(h, "big"), 0);
    /* the payment: 'big' errs (no data.total) but 'payments' matches later */
    assert_int_equal(sl_harness_count(h, "payments"), 1);
    assert_int_equal(sl_harness_count(h, "default"), 1);
    assert_non_null(strstr(sl_harness_out(h, "default", 0), "\"e3\""));
    assert_int_equal(sl_harness_count(h, "errors"), 0);
    sl_harness_destroy(&h);

    char all[512];
    snprintf(all, sizeof all, "%s\nmode: all_matches", routes);
    h = sl_harness_new(all);
    assert_non_null(h);
    sl_harness_push(h, order);
    sl_harness_push(h, "{\"id\":\"e4\",\"type\":\"x\"}"); /* errs on 'big', matches nothing */
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "orders"), 1);
    assert_int_equal(sl_harness_count(h, "big"), 1);
    assert_int_equal(sl_harness_count(h, "default"), 0);
    assert_int_equal(sl_harness_count(h, "errors"), 1);
    sl_harness_destroy(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_nested_keep_drop_rename),
        cmocka_unit_test(test_field_error_goes_to_errors),
        cmocka_unit_test(test_many_attributes),
        cmocka_unit_test(test_route_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
