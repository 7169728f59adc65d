/*
 * test_throttle.c - the throttle's logic through the harness: exact burst
 * accounting in drop and reroute mode (the envelope's content included),
 * the default burst, per-key buckets, named limits chosen by an expression
 * (with and without a top-level rate for unknown names), limits with keys,
 * the max_keys bound (full buckets forgotten first, without a trace), the
 * errors port, delay mode losing nothing, and configuration mistakes.
 *
 * Rates are chosen so that time cannot flake a result: 0.001/s refills one
 * token in 1000 s, so over a run of milliseconds a bucket gives exactly its
 * burst. Where real time matters (delay, a rate of 2.5/s) the checks are
 * bounds that hold however slow the machine is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

/* Push {"id": "<id>", "data": {"user": <user>, "op": <op>}}; user and op are JSON text or NULL. */
static void push(sl_harness *h, const char *id, const char *user, const char *op)
{
    char ev[512];
    int n = snprintf(ev, sizeof ev, "{\"id\":\"%s\",\"data\":{\"n\":1", id);
    if (user) n += snprintf(ev + n, sizeof ev - (size_t)n, ",\"user\":%s", user);
    if (op) n += snprintf(ev + n, sizeof ev - (size_t)n, ",\"op\":%s", op);
    snprintf(ev + n, sizeof ev - (size_t)n, "}}");
    assert_int_equal(sl_harness_push(h, ev), 0);
}

static void push_n(sl_harness *h, const char *prefix, int count, const char *user, const char *op)
{
    for (int i = 0; i < count; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s%d", prefix, i);
        push(h, id, user, op);
    }
}

static sl_harness *make(const char *yaml)
{
    sl_harness *h = sl_harness_new(yaml);
    if (!h) print_message("refused: %s\n", yaml);
    assert_non_null(h);
    return h;
}

/* How many events on `port` have "id":"<prefix>..." (prefix matched exactly up to digits). */
static size_t count_ids(const sl_harness *h, const char *port, const char *prefix)
{
    char needle[80];
    snprintf(needle, sizeof needle, "\"id\":\"%s", prefix);
    size_t n = 0;
    for (size_t i = 0; i < sl_harness_count(h, port); i++) {
        const char *s = strstr(sl_harness_out(h, port, i), needle);
        if (s && s[strlen(needle)] >= '0' && s[strlen(needle)] <= '9') n++;
    }
    return n;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ one bucket */

/* rate 0.001, burst 5, drop: of 20 events exactly the first 5 pass, 15 are counted dropped. */
static void test_drop_passes_exactly_the_burst(void **st)
{
    sl_harness *h = make("type: throttle\nrate: 0.001\nburst: 5\nmode: drop");
    push_n(h, "e", 20, NULL, NULL);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 5);
    for (int i = 0; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof want, "\"id\":\"e%d\"", i);
        assert_non_null(strstr(sl_harness_out(h, "out", (size_t)i), want));
    }
    assert_int_equal(sl_harness_count(h, "over_limit"), 0);
    assert_int_equal(sl_harness_count(h, "errors"), 0);
    assert_int_equal(sl_harness_counter(h, "passed"), 5);
    assert_int_equal(sl_harness_counter(h, "dropped"), 15);
    assert_int_equal(sl_harness_counter(h, "rerouted"), 0);
    sl_harness_destroy(&h);
}

/*
 * reroute: the 15 over the limit leave by over_limit, each a drop envelope
 * {reason, operator, detail, time, original, retry_after_ms} holding its event.
 * The 6th event conforms one emission interval (1000 s) after the first:
 * retry_after_ms is just under 1e6.
 */
static void test_reroute_envelopes(void **st)
{
    sl_harness *h = make("type: throttle\nrate: 0.001\nburst: 5\nmode: reroute");
    push_n(h, "e", 20, NULL, NULL);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 5);
    assert_int_equal(sl_harness_count(h, "over_limit"), 15);
    assert_int_equal(sl_harness_counter(h, "rerouted"), 15);
    assert_int_equal(sl_harness_counter(h, "passed"), 5);
    for (int i = 0; i < 15; i++) {
        const char *env = sl_harness_out(h, "over_limit", (size_t)i);
        char want[96];
        snprintf(want, sizeof want, "\"original\":{\"id\":\"e%d\",\"data\":{\"n\":1}}", i + 5);
        assert_non_null(strstr(env, want));
        assert_non_null(strstr(env, "\"reason\":\"over_limit\""));
        assert_non_null(strstr(env, "\"operator\":\"op\""));
        assert_non_null(strstr(env, "\"detail\":\"rate 0.001/s, burst 5\""));
        const char *ra = strstr(env, "\"retry_after_ms\":");
        assert_non_null(ra);
        long ms = strtol(ra + strlen("\"retry_after_ms\":"), NULL, 10);
        assert_true(ms > 990000 && ms <= 1000000);
    }
    sl_harness_destroy(&h);
}

/*
 * The default burst is the rate rounded up (at least 1). 0.001/s: one event
 * passes. 2.5/s: three at once, and over the run's length at most one more
 * per 400 ms (GCRA is exact: burst + floor(elapsed / T) at most).
 */
static void test_default_burst(void **st)
{
    sl_harness *h = make("type: throttle\nrate: 0.001\nmode: drop");
    push_n(h, "e", 10, NULL, NULL);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 1);
    sl_harness_destroy(&h);

    h = make("type: throttle\nrate: 2.5\nmode: drop");
    push_n(h, "e", 20, NULL, NULL);
    double t0 = seconds_now();
    assert_int_equal(sl_harness_run(h), 0);
    double elapsed = seconds_now() - t0;
    size_t passed = sl_harness_count(h, "out");
    assert_true(passed >= 3);
    assert_true(passed <= 3 + (size_t)(elapsed / 0.4));
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ keys and limits */

/*
 * One bucket per key value, compared as msgpack: "u1" and "u2" each get
 * their burst of 3; the int 7 and the string "7" are different keys.
 */
static void test_per_key_buckets(void **st)
{
    sl_harness *h = make("type: throttle\nrate: 0.001\nburst: 3\nmode: drop\nkey: data.user");
    for (int i = 0; i < 10; i++) {
        char id[32];
        snprintf(id, sizeof id, "a%d", i);
        push(h, id, "\"u1\"", NULL);
        snprintf(id, sizeof id, "b%d", i);
        push(h, id, "\"u2\"", NULL);
    }
    push_n(h, "i", 5, "7", NULL);
    push_n(h, "s", 5, "\"7\"", NULL);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(count_ids(h, "out", "a"), 3);
    assert_int_equal(count_ids(h, "out", "b"), 3);
    assert_int_equal(count_ids(h, "out", "i"), 3);
    assert_int_equal(count_ids(h, "out", "s"), 3);
    assert_int_equal(sl_harness_count(h, "out"), 12);
    assert_int_equal(sl_harness_counter(h, "dropped"), 18);
    sl_harness_destroy(&h);
}

#define NAMED                                                                                      \
    "limits: {publish: {rate: 0.001, burst: 4}, subscribe: {rate: 0.001, burst: 2}, "              \
    "query: 0.001}\nselect: data.op\n"

/*
 * Named limits chosen by `select`: publish lets 4 through, subscribe 2,
 * query (a bare rate: burst 1) 1; a name that matches no limit passes
 * unthrottled, counted "unlimited". The envelope names the limit.
 */
static void test_named_limits(void **st)
{
    sl_harness *h = make("type: throttle\nmode: reroute\n" NAMED);
    push_n(h, "p", 10, NULL, "\"publish\"");
    push_n(h, "s", 10, NULL, "\"subscribe\"");
    push_n(h, "q", 10, NULL, "\"query\"");
    push_n(h, "x", 10, NULL, "\"admin\"");
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(count_ids(h, "out", "p"), 4);
    assert_int_equal(count_ids(h, "out", "s"), 2);
    assert_int_equal(count_ids(h, "out", "q"), 1);
    assert_int_equal(count_ids(h, "out", "x"), 10);
    assert_int_equal(sl_harness_counter(h, "unlimited"), 10);
    assert_int_equal(sl_harness_counter(h, "passed"), 7);
    assert_int_equal(sl_harness_count(h, "over_limit"), 6 + 8 + 9);
    int seen_p = 0, seen_q = 0;
    for (size_t i = 0; i < sl_harness_count(h, "over_limit"); i++) {
        const char *env = sl_harness_out(h, "over_limit", i);
        if (strstr(env, "\"original\":{\"id\":\"p")) {
            assert_non_null(strstr(env, "\"detail\":\"limit 'publish': 0.001/s, burst 4\""));
            seen_p++;
        }
        if (strstr(env, "\"original\":{\"id\":\"q")) {
            assert_non_null(strstr(env, "\"detail\":\"limit 'query': 0.001/s, burst 1\""));
            seen_q++;
        }
    }
    assert_int_equal(seen_p, 6);
    assert_int_equal(seen_q, 9);
    sl_harness_destroy(&h);
}

/* With a top-level rate too, an unknown name takes that bucket (burst 3) instead of none. */
static void test_unknown_name_uses_top_level_rate(void **st)
{
    sl_harness *h = make("type: throttle\nmode: drop\nrate: 0.001\nburst: 3\n" NAMED);
    push_n(h, "p", 10, NULL, "\"publish\"");
    push_n(h, "x", 10, NULL, "\"admin\"");
    push_n(h, "y", 10, NULL, "\"other\"");
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(count_ids(h, "out", "p"), 4);
    /* every unknown name shares the one top-level bucket */
    assert_int_equal(count_ids(h, "out", "x") + count_ids(h, "out", "y"), 3);
    assert_int_equal(sl_harness_counter(h, "unlimited"), 0);
    sl_harness_destroy(&h);
}

/* limits + key: one bucket per (limit, key); the same user has one per limit. */
static void test_limits_with_key(void **st)
{
    sl_harness *h = make("type: throttle\nmode: drop\nkey: data.user\n" NAMED);
    push_n(h, "ap", 10, "\"a\"", "\"publish\"");
    push_n(h, "bp", 10, "\"b\"", "\"publish\"");
    push_n(h, "as", 10, "\"a\"", "\"subscribe\"");
    push_n(h, "bs", 10, "\"b\"", "\"subscribe\"");
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(count_ids(h, "out", "ap"), 4);
    assert_int_equal(count_ids(h, "out", "bp"), 4);
    assert_int_equal(count_ids(h, "out", "as"), 2);
    assert_int_equal(count_ids(h, "out", "bs"), 2);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ max_keys */

#define SLOW_FAST                                                                                  \
    "limits: {slow: {rate: 0.001, burst: 2}, "                                                     \
    "fast: {rate: 1000000000, burst: 1000000000}}\nselect: data.op\n"

/*
 * max_keys 3 and buckets that are full again: a bucket of the "fast" limit
 * (1 ns per token) is full a nanosecond after its event, so forgetting it
 * changes nothing. Ten new fast keys pass through a table held by two slow
 * keys that have used their burst: the fast buckets are the ones forgotten,
 * without counting "evicted", and the slow keys are still over their limit
 * afterwards (a least-recently-used eviction would have forgotten them).
 */
static void test_eviction_forgets_full_buckets_first(void **st)
{
    sl_harness *h = make("type: throttle\nmode: drop\nkey: data.user\nmax_keys: 3\n" SLOW_FAST);
    push_n(h, "A", 2, "\"A\"", "\"slow\"");
    push_n(h, "B", 2, "\"B\"", "\"slow\"");
    for (int i = 0; i < 10; i++) {
        char id[16], user[16];
        snprintf(id, sizeof id, "f%d", i);
        snprintf(user, sizeof user, "\"f%d\"", i);
        push(h, id, user, "\"fast\"");
    }
    push(h, "A9", "\"A\"", "\"slow\"");
    push(h, "B9", "\"B\"", "\"slow\"");
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(count_ids(h, "out", "A"), 2); /* A0, A1; not A9 */
    assert_int_equal(count_ids(h, "out", "B"), 2);
    assert_int_equal(count_ids(h, "out", "f"), 10);
    assert_int_equal(sl_harness_counter(h, "dropped"), 2);
    assert_int_equal(sl_harness_counter(h, "evicted"), 0);
    sl_harness_destroy(&h);
}

/*
 * When no bucket is full, the one that will be full soonest is forgotten
 * (counted "evicted"). max_keys 2, rate 0.001 burst 2: A uses both tokens
 * (full again in 2000 s), B one (1000 s). C evicts B; B again evicts C and
 * passes as new; A is still remembered and over its limit.
 */
static void test_eviction_soonest_full_when_none_is(void **st)
{
    sl_harness *h = make("type: throttle\nmode: drop\nkey: data.user\nmax_keys: 2\nrate: 0.001\n"
                         "burst: 2");
    push(h, "A0", "\"A\"", NULL);
    push(h, "A1", "\"A\"", NULL);
    push(h, "B0", "\"B\"", NULL);
    push(h, "C0", "\"C\"", NULL);
    push(h, "B1", "\"B\"", NULL);
    push(h, "A2", "\"A\"", NULL);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 5);
    assert_int_equal(count_ids(h, "out", "A"), 2);
    assert_int_equal(count_ids(h, "out", "B"), 2);
    assert_int_equal(sl_harness_counter(h, "evicted"), 2);
    assert_int_equal(sl_harness_counter(h, "dropped"), 1);
    sl_harness_destroy(&h);
}

/* Many keys through a small table: the arena is compacted and every key is still exact. */
static void test_many_keys_churn(void **st)
{
    sl_harness *h = make("type: throttle\nmode: drop\nkey: data.user\nmax_keys: 64\n" SLOW_FAST);
    char id[32], user[160];
    /* 3000 distinct long fast keys (full at once: forgotten silently), in between 2 slow keys */
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "f%d", i);
        snprintf(user, sizeof user, "\"fast-key-%0100d\"", i);
        push(h, id, user, "\"fast\"");
        if (i % 500 == 0) {
            snprintf(id, sizeof id, "S%d", i);
            push(h, id, "\"S\"", "\"slow\"");
            snprintf(id, sizeof id, "T%d", i);
            push(h, id, "\"T\"", "\"slow\"");
        }
    }
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(count_ids(h, "out", "f"), 3000);
    assert_int_equal(count_ids(h, "out", "S"), 2);
    assert_int_equal(count_ids(h, "out", "T"), 2);
    assert_int_equal(sl_harness_counter(h, "dropped"), 8);
    assert_int_equal(sl_harness_counter(h, "evicted"), 0);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ errors */

/*
 * A key or select expression that fails sends the event to `errors` (reason
 * "key" / "select") and takes no token: the burst still goes to good events.
 */
static void test_errors_port(void **st)
{
    sl_harness *h = make("type: throttle\nmode: drop\nkey: data.user\n" NAMED);
    push(h, "nokey", NULL, "\"publish\"");
    push(h, "noop", "\"a\"", NULL);
    push(h, "badop", "\"a\"", "5");
    push_n(h, "p", 6, "\"a\"", "\"publish\"");
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "errors"), 3);
    const char *e0 = sl_harness_out(h, "errors", 0), *e1 = sl_harness_out(h, "errors", 1);
    const char *e2 = sl_harness_out(h, "errors", 2);
    assert_non_null(strstr(e0, "\"reason\":\"key\""));
    assert_non_null(strstr(e0, "\"original\":{\"id\":\"nokey\""));
    assert_non_null(strstr(e0, "user"));
    assert_non_null(strstr(e1, "\"reason\":\"select\""));
    assert_non_null(strstr(e1, "\"original\":{\"id\":\"noop\""));
    assert_non_null(strstr(e2, "\"reason\":\"select\""));
    assert_non_null(strstr(e2, "string"));
    assert_int_equal(count_ids(h, "out", "p"), 4);
    assert_int_equal(sl_harness_counter(h, "eval_errors"), 3);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ delay */

/*
 * delay, rate 1000 burst 1: 20 events all come out, in order, and the run
 * cannot take less than the 19 emission intervals the last one waits.
 */
static void test_delay_loses_nothing_and_waits(void **st)
{
    sl_harness *h = make("type: throttle\nrate: 1000\nburst: 1");
    push_n(h, "e", 20, NULL, NULL);
    double t0 = seconds_now();
    assert_int_equal(sl_harness_run(h), 0);
    double elapsed = seconds_now() - t0;
    assert_int_equal(sl_harness_count(h, "out"), 20);
    for (int i = 0; i < 20; i++) {
        char want[32];
        snprintf(want, sizeof want, "\"id\":\"e%d\"", i);
        assert_non_null(strstr(sl_harness_out(h, "out", (size_t)i), want));
    }
    assert_true(elapsed >= 0.019);
    assert_int_equal(sl_harness_counter(h, "passed"), 20);
    assert_true(sl_harness_counter(h, "delayed") >= 10);
    assert_int_equal(sl_harness_counter(h, "dropped"), 0);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ configuration */

static void test_bad_configs(void **st)
{
    static const char *const bad[] = {
        "type: throttle", /* neither rate nor limits */
        "type: throttle\nrate: -1",
        "type: throttle\nrate: 0",
        "type: throttle\nrate: abc",
        "type: throttle\nrate: 1e12", /* above 1e9/s */
        "type: throttle\nrate: 1\nburst: 0",
        "type: throttle\nrate: 0.001\nburst: 1000000000000", /* 31+ years to refill */
        "type: throttle\nrate: 1\nmode: slow",
        "type: throttle\nrate: 1\nmax_keys: 0",
        "type: throttle\nrate: 1\nkey: data.user +",
        "type: throttle\nrate: 1\nparallelism: 2",  /* instances would each pass rate */
        "type: throttle\nlimits: {a: 1}",           /* no select */
        "type: throttle\nrate: 1\nselect: data.op", /* select without limits */
        "type: throttle\nburst: 3\nlimits: {a: 1}\nselect: data.op",
        "type: throttle\nlimits: {a: -5}\nselect: data.op",
        "type: throttle\nlimits: {a: {burst: 2}}\nselect: data.op",
        "type: throttle\nlimits: {a: {rate: 1, burts: 2}}\nselect: data.op",
        "type: throttle\nlimits: {a: {rate: 1, burst: 0}}\nselect: data.op",
        "type: throttle\nlimits: {a: [1]}\nselect: data.op",
        "type: throttle\nlimits: {}\nselect: data.op",
    };
    assert_int_equal(sl_harness_config_mismatches(bad, sizeof bad / sizeof *bad, 0), 0);
}

/* The valid neighbours of the mistakes above, so that those fail for their mistake. */
static void test_good_configs(void **st)
{
    static const char *const good[] = {
        "type: throttle\nrate: 1",
        "type: throttle\nrate: 1e9",
        "type: throttle\nrate: 1\nburst: 1\nmode: drop",
        "type: throttle\nrate: 0.001\nburst: 1000000",
        "type: throttle\nrate: 1\nmode: reroute\nmax_keys: 1",
        "type: throttle\nrate: 1\nkey: data.user\nparallelism: 2",
        "type: throttle\nlimits: {a: 1}\nselect: data.op",
        "type: throttle\nrate: 1\nburst: 3\nlimits: {a: 1}\nselect: data.op",
        "type: throttle\nlimits: {a: {rate: 1, burst: 2}, b: {rate: 2}}\nselect: data.op",
    };
    assert_int_equal(sl_harness_config_mismatches(good, sizeof good / sizeof *good, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drop_passes_exactly_the_burst),
        cmocka_unit_test(test_reroute_envelopes),
        cmocka_unit_test(test_default_burst),
        cmocka_unit_test(test_per_key_buckets),
        cmocka_unit_test(test_named_limits),
        cmocka_unit_test(test_unknown_name_uses_top_level_rate),
        cmocka_unit_test(test_limits_with_key),
        cmocka_unit_test(test_eviction_forgets_full_buckets_first),
        cmocka_unit_test(test_eviction_soonest_full_when_none_is),
        cmocka_unit_test(test_many_keys_churn),
        cmocka_unit_test(test_errors_port),
        cmocka_unit_test(test_delay_loses_nothing_and_waits),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_good_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
