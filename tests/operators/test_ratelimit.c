/*
 * test_ratelimit.c - the gateway's `ratelimit` through the harness: the
 * accuracy target (10 s of requests at 1000/s against 200/s pass exactly
 * GCRA's count), buckets independent per operation and per consumer, plans
 * and the default plan, bursts, exact header values for a known sequence
 * (Retry-After, RateLimit, RateLimit-Policy, X-RateLimit-*, the 429 body),
 * time going backwards, eviction at max_keys, anonymous requests keyed by
 * address, the errors port, configuration mistakes, parallelism keyed by
 * consumer, and the header helper respond uses (sl_ratelimit_headers).
 *
 * The clock is the requests' own `time`, so every expectation here is exact:
 * nothing depends on how fast the machine runs the pipeline.
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
#include "ratelimit_headers.h"

/*
 * Push a request: id, time (ms after 2026-01-01T00:00:00Z; < 0: no time),
 * and the fields consumer, plan, operation, remote when not NULL (strings).
 */
static void push_req(sl_harness *h, const char *id, long ms, const char *consumer, const char *plan,
                     const char *op, const char *remote)
{
    char ev[1024], t[40];
    int n = snprintf(ev, sizeof ev, "{\"id\":\"%s\",\"type\":\"http.request\"", id);
    if (ms >= 0)
        n += snprintf(ev + n, sizeof ev - (size_t)n, ",\"time\":\"%s\"", sl_harness_time(t, ms));
    if (consumer) n += snprintf(ev + n, sizeof ev - (size_t)n, ",\"consumer\":\"%s\"", consumer);
    if (plan) n += snprintf(ev + n, sizeof ev - (size_t)n, ",\"plan\":\"%s\"", plan);
    if (op) n += snprintf(ev + n, sizeof ev - (size_t)n, ",\"operation\":\"%s\"", op);
    if (remote) n += snprintf(ev + n, sizeof ev - (size_t)n, ",\"remote\":\"%s\"", remote);
    snprintf(ev + n, sizeof ev - (size_t)n, "}");
    assert_int_equal(sl_harness_push(h, ev), 0);
}

/* count requests at ms, ms + step, ...; ids prefix0, prefix1, ... */
static void push_run(sl_harness *h, const char *prefix, int count, long ms, long step,
                     const char *consumer, const char *plan, const char *op)
{
    for (int i = 0; i < count; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s%d", prefix, i);
        push_req(h, id, ms + step * i, consumer, plan, op, NULL);
    }
}

static sl_harness *make(const char *yaml)
{
    sl_harness *h = sl_harness_new(yaml);
    if (!h) print_message("refused: %s\n", yaml);
    assert_non_null(h);
    return h;
}

/* How many events on `port` have "id":"<prefix><digit>...". */
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

/* The event on `port` whose id is exactly `id`, or NULL. */
static const char *find_id(const sl_harness *h, const char *port, const char *id)
{
    char needle[80];
    snprintf(needle, sizeof needle, "\"id\":\"%s\"", id);
    for (size_t i = 0; i < sl_harness_count(h, port); i++)
        if (strstr(sl_harness_out(h, port, i), needle)) return sl_harness_out(h, port, i);
    return NULL;
}

static void expect_in(const char *ev, const char *want)
{
    if (!ev || !strstr(ev, want)) {
        print_message("expected %s\n    in %s\n", want, ev ? ev : "(no event)");
        fail();
    }
}

/* ------------------------------------------------------------ accuracy */

/*
 * The test target of issue 8: 10 s of requests at 1000/s (times 1 ms apart)
 * against 200/s. GCRA passes exactly burst + floor((t_last - t_first) / T):
 * T = 5 ms, t_last - t_first = 9.999 s, so burst + 1999 - with the default
 * burst of 200, 2199 (200 x 10 + 200 = 2200 less 0.05%, well within the
 * +-2% asked); with burst 50, 2049.
 */
static void test_accuracy_10s_at_1000_per_s(void **st)
{
    (void)st;
    static const struct {
        const char *yaml;
        size_t want;
    } cases[] = {
        {"type: ratelimit\nplans: {free: {default: 200/s}}", 2199},
        {"type: ratelimit\nplans: {free: {default: {rate: 200/s, burst: 50}}}", 2049},
        {"type: ratelimit\nplans: {free: {default: 12000/min}}", 2199}, /* the same rate */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        sl_harness *h = make(cases[c].yaml);
        push_run(h, "r", 10000, 0, 1, "acme", NULL, "events.publish");
        assert_int_equal(sl_harness_run(h), 0);
        size_t passed = sl_harness_count(h, "out");
        assert_int_equal(passed, cases[c].want);
        assert_int_equal(sl_harness_count(h, "limited"), 10000 - cases[c].want);
        assert_int_equal(sl_harness_counter(h, "passed"), cases[c].want);
        assert_int_equal(sl_harness_counter(h, "limited"), 10000 - cases[c].want);
        assert_int_equal(sl_harness_count(h, "errors"), 0);
        if (c == 0) { /* the target as stated: 200 x 10 + burst, +-2% */
            assert_true(passed >= 2200 * 98 / 100 && passed <= 2200 * 102 / 100);
        }
        sl_harness_destroy(&h);
    }
}

/* ------------------------------------------------------------ buckets */

#define SLOW_PLAN                                                                                  \
    "plans: {free: {events.publish: {rate: 1/h, burst: 3}, events.query: {rate: 1/h, burst: 2}, "  \
    "default: {rate: 1/h, burst: 1}}}"

/*
 * One bucket per (consumer, operation): a and b each get publish 3 and
 * query 2; operations the plan does not list (and a request without one)
 * share the `default` bucket of the consumer: 1 between them.
 */
static void test_per_operation_and_per_consumer(void **st)
{
    (void)st;
    sl_harness *h = make("type: ratelimit\n" SLOW_PLAN);
    push_run(h, "ap", 10, 0, 1, "a", NULL, "events.publish");
    push_run(h, "aq", 10, 0, 1, "a", NULL, "events.query");
    push_run(h, "bp", 10, 0, 1, "b", NULL, "events.publish");
    push_run(h, "bq", 10, 0, 1, "b", NULL, "events.query");
    push_run(h, "ax", 5, 0, 1, "a", NULL, "catalog.get");
    push_run(h, "ay", 5, 0, 1, "a", NULL, "catalog.search");
    push_run(h, "an", 5, 0, 1, "a", NULL, NULL);
    push_run(h, "bx", 5, 0, 1, "b", NULL, "catalog.get");
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(count_ids(h, "out", "ap"), 3);
    assert_int_equal(count_ids(h, "out", "aq"), 2);
    assert_int_equal(count_ids(h, "out", "bp"), 3);
    assert_int_equal(count_ids(h, "out", "bq"), 2);
    assert_int_equal(
        count_ids(h, "out", "ax") + count_ids(h, "out", "ay") + count_ids(h, "out", "an"), 1);
    assert_int_equal(count_ids(h, "out", "ax"), 1); /* the first of them */
    assert_int_equal(count_ids(h, "out", "bx"), 1);
    assert_int_equal(sl_harness_count(h, "out"), 12);
    assert_int_equal(sl_harness_count(h, "limited"), 48);
    /* the policy named in the field is the bucket's */
    expect_in(find_id(h, "out", "ax0"), "\"name\":\"default\"");
    expect_in(find_id(h, "out", "ap0"), "\"name\":\"events.publish\"");
    sl_harness_destroy(&h);
}

#define TWO_PLANS                                                                                  \
    "plans: {free: {events.publish: {rate: 1/h, burst: 2}, default: {rate: 1/h, burst: 1}}, "      \
    "pro: {events.publish: {rate: 1/h, burst: 5}, default: {rate: 1/h, burst: 4}}}\n"              \
    "default_plan: free"

/*
 * Plans: a pro consumer gets pro's bursts; a request without a plan, or
 * with one that is not configured, gets default_plan's. The bucket is per
 * plan too: the same consumer under another plan starts afresh.
 */
static void test_plans_and_default_plan(void **st)
{
    (void)st;
    sl_harness *h = make("type: ratelimit\n" TWO_PLANS);
    push_run(h, "pp", 10, 0, 1, "p", "pro", "events.publish");
    push_run(h, "pd", 10, 0, 1, "p", "pro", "catalog.get");
    push_run(h, "fp", 10, 0, 1, "f", "free", "events.publish");
    push_run(h, "np", 10, 0, 1, "n", NULL, "events.publish");   /* no plan */
    push_run(h, "gp", 10, 0, 1, "g", "gold", "events.publish"); /* unknown plan */
    push_run(h, "pf", 10, 0, 1, "p", "free", "events.publish"); /* p downgraded */
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(count_ids(h, "out", "pp"), 5);
    assert_int_equal(count_ids(h, "out", "pd"), 4);
    assert_int_equal(count_ids(h, "out", "fp"), 2);
    assert_int_equal(count_ids(h, "out", "np"), 2);
    assert_int_equal(count_ids(h, "out", "gp"), 2);
    assert_int_equal(count_ids(h, "out", "pf"), 2);
    /* the 429 names the plan that limited it */
    expect_in(find_id(h, "limited", "gp2"), "plan free allows 1 events.publish requests per hour, "
                                            "in bursts of up to 2; retry after 3600 s");
    expect_in(find_id(h, "limited", "pp5"), "plan pro allows 1 events.publish requests per hour, "
                                            "in bursts of up to 5; retry after 3600 s");
    sl_harness_destroy(&h);
}

/*
 * Burst and refill: 10/s with burst 5 (T = 100 ms). At t=0 five of eight
 * pass; at 99 ms nothing has refilled; at 100 ms one token has; at 350 ms
 * two more (200 and 300 ms), the third not yet; after 1 s idle the bucket
 * is full again (5) and no fuller.
 */
static void test_burst_and_refill(void **st)
{
    (void)st;
    sl_harness *h = make("type: ratelimit\nplans: {free: {default: {rate: 10/s, burst: 5}}}");
    push_run(h, "a", 8, 0, 0, "c", NULL, NULL);
    push_run(h, "b", 1, 99, 0, "c", NULL, NULL);
    push_run(h, "c", 2, 100, 0, "c", NULL, NULL);
    push_run(h, "d", 3, 350, 0, "c", NULL, NULL);
    push_run(h, "e", 7, 2000, 0, "c", NULL, NULL);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(count_ids(h, "out", "a"), 5);
    assert_int_equal(count_ids(h, "out", "b"), 0);
    assert_int_equal(count_ids(h, "out", "c"), 1);
    assert_int_equal(count_ids(h, "out", "d"), 2);
    assert_int_equal(count_ids(h, "out", "e"), 5);
    /* the default burst is the rate per second rounded up, as throttle's: 1000/min -> 17 */
    sl_harness_destroy(&h);
    h = make("type: ratelimit\nplans: {free: {default: 1000/min}}");
    push_run(h, "m", 30, 0, 0, "c", NULL, NULL);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 17);
    expect_in(find_id(h, "out", "m0"),
              "\"ratelimit\":{\"limit\":1000,\"remaining\":16,\"reset\":1,\"policy\":\"1000;w=60\","
              "\"name\":\"default\",\"burst\":17}");
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ headers */

/*
 * A known sequence against 60/min, burst 3 (T = 1 s, tolerance 2 s), with
 * every value worked out from GCRA by hand:
 *
 *   id  time    tat before  verdict  remaining  reset / retry
 *   h1  0       0 (new)     pass     2          1 (tat 1 s)
 *   h2  0       1 s         pass     1          2
 *   h3  0       2 s         pass     0          3
 *   h4  0       3 s         429                 1 (conforms at 3 - 2 = 1 s)
 *   h5  0.4 s   3 s         429                 1 (0.6 s, rounded up)
 *   h6  1 s     3 s         pass     0          3 (tat 4 s)
 *   h7  1 s     4 s         429                 1
 *   h8  3.5 s   4 s         pass     1          2 (tat 5 s: 1.5 s, rounded up)
 */
static void test_exact_headers(void **st)
{
    (void)st;
    sl_harness *h =
        make("type: ratelimit\nplans: {free: {publish: {rate: 60/min, burst: 3}, default: 1/s}}");
    static const long at[] = {0, 0, 0, 0, 400, 1000, 1000, 3500};
    for (int i = 0; i < 8; i++) {
        char id[8];
        snprintf(id, sizeof id, "h%d", i + 1);
        push_req(h, id, at[i], "acme", "free", "publish", NULL);
    }
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 5);
    assert_int_equal(sl_harness_count(h, "limited"), 3);
#define RL(rem, reset)                                                                             \
    "\"ratelimit\":{\"limit\":60,\"remaining\":" #rem ",\"reset\":" #reset                         \
    ",\"policy\":\"60;w=60\",\"name\":\"publish\",\"burst\":3}}"
    expect_in(find_id(h, "out", "h1"), RL(2, 1));
    expect_in(find_id(h, "out", "h2"), RL(1, 2));
    expect_in(find_id(h, "out", "h3"), RL(0, 3));
    expect_in(find_id(h, "out", "h6"), RL(0, 3));
    expect_in(find_id(h, "out", "h8"), RL(1, 2));
    /* the original request is kept whole, the field appended */
    expect_in(find_id(h, "out", "h1"), "\"consumer\":\"acme\",\"plan\":\"free\","
                                       "\"operation\":\"publish\",\"ratelimit\":");
#define RESP(retry)                                                                                \
    "\"response\":{\"status\":429,\"headers\":{\"content-type\":\"application/json\","             \
    "\"retry-after\":\"" #retry "\","                                                              \
    "\"ratelimit-policy\":\"\\\"publish\\\";q=60;w=60;sluice-burst=3\","                           \
    "\"ratelimit\":\"\\\"publish\\\";r=0;t=" #retry "\","                                          \
    "\"x-ratelimit-limit\":\"60\",\"x-ratelimit-remaining\":\"0\","                                \
    "\"x-ratelimit-reset\":\"" #retry "\"},"                                                       \
    "\"body\":\"{\\\"error\\\":\\\"rate limited\\\",\\\"detail\\\":\\\"plan free allows 60 "       \
    "publish requests per minute, in bursts of up to 3; retry after " #retry " s\\\"}\"}}"
    expect_in(find_id(h, "limited", "h4"), RESP(1));
    expect_in(find_id(h, "limited", "h5"), RESP(1));
    expect_in(find_id(h, "limited", "h7"), RESP(1));
    /* a limited request carries no `ratelimit` (respond must not add the fields twice) */
    assert_null(strstr(find_id(h, "limited", "h4"), "\"ratelimit\":{"));
    sl_harness_destroy(&h);
}

/* The example: 20/s on the free plan, burst 20 (not shown); long waits in seconds. */
static void test_header_wording(void **st)
{
    (void)st;
    sl_harness *h = make("type: ratelimit\nplans: {free: {publish: 20/s, query: 10/h, "
                         "default: 100/10s}}");
    push_run(h, "p", 21, 0, 0, "acme", NULL, "publish");
    push_run(h, "q", 2, 0, 0, "acme", NULL, "query");
    push_run(h, "d", 101, 0, 0, "acme", NULL, "other");
    assert_int_equal(sl_harness_run(h), 0);
    expect_in(find_id(h, "limited", "p20"),
              "\"ratelimit-policy\":\"\\\"publish\\\";q=20;w=1\",\"ratelimit\":\"\\\"publish\\\";"
              "r=0;t=1\"");
    expect_in(find_id(h, "limited", "p20"),
              "\\\"detail\\\":\\\"plan free allows 20 publish requests per second; retry after "
              "1 s\\\"");
    /* 10/h: burst 1, the next one in 360 s */
    expect_in(find_id(h, "limited", "q1"), "\"retry-after\":\"360\"");
    expect_in(find_id(h, "limited", "q1"), "q=10;w=3600;sluice-burst=1");
    expect_in(find_id(h, "limited", "q1"), "plan free allows 10 query requests per hour, in "
                                           "bursts of up to 1; retry after 360 s");
    /* 100/10s: burst 10 (the rate per second), the default policy */
    assert_int_equal(count_ids(h, "out", "d"), 10);
    expect_in(find_id(h, "limited", "d10"), "plan free allows 100 requests every 10 seconds, in "
                                            "bursts of up to 10; retry after 1 s");
    expect_in(find_id(h, "limited", "d10"), "\"\\\"default\\\";q=100;w=10;sluice-burst=10\"");
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ time */

/*
 * The clock is the largest time seen: a request stamped earlier counts as
 * "now". 1/s, burst 1: a at 10 s passes (tat 11 s); b at 5 s is limited for
 * 1 s (not 6); c at 11 s passes (tat 12 s); d at 10.5 s is limited for 1 s
 * (from 11 s), not 1.5; e at 12 s passes.
 */
static void test_time_going_backwards(void **st)
{
    (void)st;
    sl_harness *h = make("type: ratelimit\nplans: {free: {default: 1/s}}");
    push_req(h, "a", 10000, "x", NULL, NULL, NULL);
    push_req(h, "b", 5000, "x", NULL, NULL, NULL);
    push_req(h, "c", 11000, "x", NULL, NULL, NULL);
    push_req(h, "d", 10500, "x", NULL, NULL, NULL);
    push_req(h, "e", 12000, "x", NULL, NULL, NULL);
    assert_int_equal(sl_harness_run(h), 0);
    assert_non_null(find_id(h, "out", "a"));
    assert_non_null(find_id(h, "out", "c"));
    assert_non_null(find_id(h, "out", "e"));
    expect_in(find_id(h, "limited", "b"), "\"retry-after\":\"1\"");
    expect_in(find_id(h, "limited", "d"), "\"retry-after\":\"1\"");
    assert_int_equal(sl_harness_count(h, "limited"), 2);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ max_keys */

#define SLOW_FAST                                                                                  \
    "plans: {free: {slow: {rate: 1/h, burst: 2}, fast: {rate: 1000/s, burst: 1}, default: 1/s}}"

/*
 * max_keys 3: two slow buckets that used their burst, then new consumers
 * on the fast policy 1 ms apart, each full again 1 ms after its request:
 * those are the ones forgotten, silently ("evicted" stays 0), and the slow
 * consumers are still over their limit afterwards.
 */
static void test_eviction_forgets_full_buckets_first(void **st)
{
    (void)st;
    sl_harness *h = make("type: ratelimit\nmax_keys: 3\n" SLOW_FAST);
    push_run(h, "A", 2, 0, 0, "A", NULL, "slow");
    push_run(h, "B", 2, 0, 0, "B", NULL, "slow");
    for (int i = 0; i < 10; i++) {
        char id[16], who[16];
        snprintf(id, sizeof id, "f%d", i);
        snprintf(who, sizeof who, "f%d", i);
        push_req(h, id, 1 + i, who, NULL, "fast", NULL);
    }
    push_req(h, "A9", 20, "A", NULL, "slow", NULL);
    push_req(h, "B9", 20, "B", NULL, "slow", NULL);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(count_ids(h, "out", "A"), 2);
    assert_int_equal(count_ids(h, "out", "B"), 2);
    assert_int_equal(count_ids(h, "out", "f"), 10);
    assert_non_null(find_id(h, "limited", "A9"));
    assert_non_null(find_id(h, "limited", "B9"));
    assert_int_equal(sl_harness_counter(h, "evicted"), 0);
    sl_harness_destroy(&h);
}

/*
 * With no bucket full, the one full soonest goes (counted "evicted") and its
 * consumer starts over. max_keys 2, 1/h burst 2: A uses both tokens, B one;
 * C evicts B; B evicts C and passes as new; A is still over its limit.
 */
static void test_eviction_soonest_full(void **st)
{
    (void)st;
    sl_harness *h = make("type: ratelimit\nmax_keys: 2\n"
                         "plans: {free: {default: {rate: 1/h, burst: 2}}}");
    push_req(h, "A0", 0, "A", NULL, NULL, NULL);
    push_req(h, "A1", 0, "A", NULL, NULL, NULL);
    push_req(h, "B0", 0, "B", NULL, NULL, NULL);
    push_req(h, "C0", 0, "C", NULL, NULL, NULL);
    push_req(h, "B1", 0, "B", NULL, NULL, NULL);
    push_req(h, "A2", 0, "A", NULL, NULL, NULL);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 5);
    assert_non_null(find_id(h, "limited", "A2"));
    assert_int_equal(sl_harness_counter(h, "evicted"), 2);
    assert_int_equal(sl_harness_counter(h, "limited"), 1);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ anonymous, errors */

/*
 * Without a consumer the bucket is the client's host (the port left out):
 * two connections from 10.0.0.1 share one; [::1] is another; a consumer
 * named like the address is not the same bucket. No time, or neither
 * consumer nor remote: errors (reasons "time", "consumer"), no token taken.
 */
static void test_anonymous_and_errors(void **st)
{
    (void)st;
    sl_harness *h = make("type: ratelimit\nplans: {free: {default: {rate: 1/h, burst: 2}}}");
    push_req(h, "v0", 0, NULL, NULL, NULL, "10.0.0.1:1111");
    push_req(h, "v1", 0, NULL, NULL, NULL, "10.0.0.1:2222");
    push_req(h, "v2", 0, NULL, NULL, NULL, "10.0.0.1:3333");
    push_req(h, "w0", 0, NULL, NULL, NULL, "[::1]:80");
    push_req(h, "w1", 0, NULL, NULL, NULL, "[::1]:81");
    push_req(h, "w2", 0, NULL, NULL, NULL, "[::1]:82");
    push_req(h, "x0", 0, "10.0.0.1", NULL, NULL, NULL);
    push_req(h, "notime", -1, "y", NULL, NULL, NULL);
    push_req(h, "nobody", 0, NULL, NULL, NULL, NULL);
    push_req(h, "y0", 0, "y", NULL, NULL, NULL);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(count_ids(h, "out", "v"), 2);
    assert_int_equal(count_ids(h, "out", "w"), 2);
    assert_int_equal(count_ids(h, "out", "x"), 1);
    assert_int_equal(count_ids(h, "out", "y"), 1);
    assert_int_equal(sl_harness_counter(h, "anonymous"), 6);
    assert_int_equal(sl_harness_count(h, "errors"), 2);
    expect_in(find_id(h, "errors", "notime"), "\"reason\":\"time\"");
    expect_in(find_id(h, "errors", "nobody"), "\"reason\":\"consumer\"");
    expect_in(find_id(h, "errors", "nobody"), "no consumer and no client address");
    sl_harness_destroy(&h);

    /* anonymous: error refuses them instead */
    h = make("type: ratelimit\nanonymous: error\nplans: {free: {default: 1/s}}");
    push_req(h, "v0", 0, NULL, NULL, NULL, "10.0.0.1:1111");
    push_req(h, "z0", 0, "z", NULL, NULL, NULL);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 1);
    expect_in(find_id(h, "errors", "v0"), "\"reason\":\"consumer\"");
    sl_harness_destroy(&h);
}

/* Expressions for the consumer, plan and operation (here: read from elsewhere). */
static void test_expressions(void **st)
{
    (void)st;
    sl_harness *h =
        make("type: ratelimit\nconsumer: data.who\nplan: '\"pro\"'\n"
             "operation: 'type == \"http.request\" ? \"events.publish\" : \"x\"'\n" TWO_PLANS);
    for (int i = 0; i < 8; i++) {
        char ev[256], t[40];
        snprintf(ev, sizeof ev,
                 "{\"id\":\"e%d\",\"type\":\"http.request\",\"time\":\"%s\",\"data\":{\"who\":7}}",
                 i, sl_harness_time(t, 0));
        assert_int_equal(sl_harness_push(h, ev), 0);
    }
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 5); /* pro's events.publish burst */
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ parallelism */

/*
 * parallelism 2: the input is partitioned by consumer, so each consumer's
 * bucket lives in one instance and the count is exactly one instance's:
 * 2000 requests 1 ms apart against 100/s: 100 + floor(1999 / 10) = 299 each.
 */
static void test_parallel_keyed_by_consumer(void **st)
{
    (void)st;
    sl_harness *h = make("type: ratelimit\nparallelism: 2\nplans: {free: {default: 100/s}}");
    static const char *const who[] = {"c0", "c1", "c2", "c3", "c4"};
    for (int i = 0; i < 2000; i++)
        for (int c = 0; c < 5; c++) {
            char id[32];
            snprintf(id, sizeof id, "%s-%d", who[c], i);
            push_req(h, id, i, who[c], NULL, "events.publish", NULL);
        }
    assert_int_equal(sl_harness_run(h), 0);
    for (int c = 0; c < 5; c++) {
        char prefix[8];
        snprintf(prefix, sizeof prefix, "%s-", who[c]);
        assert_int_equal(count_ids(h, "out", prefix), 299);
        assert_int_equal(count_ids(h, "limited", prefix), 2000 - 299);
    }
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ configuration */

static void test_bad_configs(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "type: ratelimit", /* no plans */
        "type: ratelimit\nplans: {}",
        "type: ratelimit\nplans: {free: {publish: 20/s}}",         /* plan without default */
        "type: ratelimit\nplans: {free: {default: 20/x}}",         /* bad rate text */
        "type: ratelimit\nplans: {free: {default: 20}}\nburst: 3", /* unknown key */
        "type: ratelimit\nplans: {free: {default: fast}}",
        "type: ratelimit\nplans: {free: {default: 0/s}}",
        "type: ratelimit\nplans: {free: {default: -5/s}}",
        "type: ratelimit\nplans: {free: {default: 2.5/s}}",
        "type: ratelimit\nplans: {free: {default: 20/0s}}",
        "type: ratelimit\nplans: {free: {default: 20/s/s}}",
        "type: ratelimit\nplans: {free: {default: 2000000000/s}}", /* above 1e9 a window */
        "type: ratelimit\nplans: {free: {default: 1000000000/ms}}",
        "type: ratelimit\nplans: {free: {default: {burst: 3}}}",
        "type: ratelimit\nplans: {free: {default: {rate: 1/s, burts: 3}}}", /* unknown key */
        "type: ratelimit\nplans: {free: {default: {rate: 1/s, burst: 0}}}",
        "type: ratelimit\nplans: {free: {default: {rate: 1/h, burst: 1000000000000}}}",
        "type: ratelimit\nplans: {free: {default: [1/s]}}",
        "type: ratelimit\nplans: {free: 10/s}",
        "type: ratelimit\nplans: {free: {default: 1/s}, pro: {default: 2/s}}", /* no default_plan */
        "type: ratelimit\nplans: {free: {default: 1/s}}\ndefault_plan: gold",
        "type: ratelimit\nplans: {free: {default: 1/s}}\nmax_keys: 0",
        "type: ratelimit\nplans: {free: {default: 1/s}}\nanonymous: allow",
        "type: ratelimit\nplans: {free: {default: 1/s}}\nconsumer: data.who +",
        "type: ratelimit\nplans: {free: {default: 1/s}}\nparallelism: 2\nconsumer: 'a + b'",
    };
    assert_int_equal(sl_harness_config_mismatches(bad, sizeof bad / sizeof *bad, 0), 0);
}

/* The valid neighbours of the mistakes above, so that those fail for their mistake. */
static void test_good_configs(void **st)
{
    (void)st;
    static const char *const good[] = {
        "type: ratelimit\nplans: {free: {default: 20/s}}",
        "type: ratelimit\nplans: {free: {default: 20}}", /* a bare number: per second */
        "type: ratelimit\nplans: {free: {default: 1000/min, a: 10/h, b: 5/d, c: 100/10s}}",
        "type: ratelimit\nplans: {free: {default: 1000000000/s}}",
        "type: ratelimit\nplans: {free: {default: 3/2seconds, x: 1/hour, y: 2/minutes}}",
        "type: ratelimit\nplans: {free: {default: {rate: 1/s, burst: 3}}}",
        "type: ratelimit\nplans: {free: {default: {rate: 1/h, burst: 100000}}}",
        "type: ratelimit\nplans: {free: {default: 1/s}, pro: {default: 2/s}}\ndefault_plan: pro",
        "type: ratelimit\nplans: {free: {default: 1/s}}\ndefault_plan: free\nmax_keys: 1",
        "type: ratelimit\nplans: {free: {default: 1/s}}\nanonymous: error",
        "type: ratelimit\nplans: {free: {default: 1/s}}\nparallelism: 2",
        "type: ratelimit\nplans: {free: {default: 1/s}}\nparallelism: 2\nconsumer: data.who",
    };
    assert_int_equal(sl_harness_config_mismatches(good, sizeof good / sizeof *good, 1), 0);
}

/* ------------------------------------------------------------ the header helper */

typedef struct collected {
    char text[1024];
    size_t n;
    int calls, stop_at;
} collected;

static int collect(void *arg, const char *name, const char *value, size_t len)
{
    collected *c = arg;
    if (++c->calls == c->stop_at) return 7;
    assert_int_equal(strlen(value), len);
    c->n += (size_t)snprintf(c->text + c->n, sizeof c->text - c->n, "%s=%s|", name, value);
    return 0;
}

/*
 * sl_ratelimit_headers, as respond calls it: from the contract's example
 * map (no name: "default"), from the operator's own map, with a name that
 * needs escaping; malformed maps give -1 and no header; the callback's
 * return stops it.
 */
static void test_header_helper(void **st)
{
    (void)st;
    sl_wbuf m = {0};
    collected c = {0};
    /* the contract's example: {"limit": 200, "remaining": 17, "reset": 1, "policy": "200;w=1"} */
    sl_mp_write_map(&m, 4);
    sl_mp_write_cstr(&m, "limit");
    sl_mp_write_int(&m, 200);
    sl_mp_write_cstr(&m, "remaining");
    sl_mp_write_int(&m, 17);
    sl_mp_write_cstr(&m, "reset");
    sl_mp_write_int(&m, 1);
    sl_mp_write_cstr(&m, "policy");
    sl_mp_write_cstr(&m, "200;w=1");
    assert_int_equal(sl_ratelimit_headers(m.data, m.len, collect, &c), 0);
    assert_string_equal(c.text, "ratelimit-policy=\"default\";q=200;w=1|"
                                "ratelimit=\"default\";r=17;t=1|x-ratelimit-limit=200|"
                                "x-ratelimit-remaining=17|x-ratelimit-reset=1|");
    sl_wbuf http = {0};
    assert_int_equal(sl_ratelimit_headers_http(m.data, m.len, &http), 0);
    assert_int_equal(sl_wbuf_append(&http, "", 1), 0);
    assert_string_equal((const char *)http.data,
                        "ratelimit-policy: \"default\";q=200;w=1\r\n"
                        "ratelimit: \"default\";r=17;t=1\r\n"
                        "x-ratelimit-limit: 200\r\nx-ratelimit-remaining: 17\r\n"
                        "x-ratelimit-reset: 1\r\n");

    /* what the operator writes, with a name to escape and a burst */
    sl_wbuf_reset(&m);
    memset(&c, 0, sizeof c);
    sl_mp_write_map(&m, 7);
    sl_mp_write_cstr(&m, "limit");
    sl_mp_write_int(&m, 1000);
    sl_mp_write_cstr(&m, "remaining");
    sl_mp_write_int(&m, 16);
    sl_mp_write_cstr(&m, "reset");
    sl_mp_write_int(&m, 1);
    sl_mp_write_cstr(&m, "policy");
    sl_mp_write_cstr(&m, "1000;w=60");
    sl_mp_write_cstr(&m, "name");
    sl_mp_write_cstr(&m, "say \"hi\"\\");
    sl_mp_write_cstr(&m, "burst");
    sl_mp_write_int(&m, 17);
    sl_mp_write_cstr(&m, "extra"); /* other keys are ignored */
    sl_mp_write_array(&m, 1);
    sl_mp_write_int(&m, 1);
    assert_int_equal(sl_ratelimit_headers(m.data, m.len, collect, &c), 0);
    assert_string_equal(c.text, "ratelimit-policy=\"say \\\"hi\\\"\\\\\";q=1000;w=60;"
                                "sluice-burst=17|ratelimit=\"say \\\"hi\\\"\\\\\";r=16;t=1|"
                                "x-ratelimit-limit=1000|x-ratelimit-remaining=16|"
                                "x-ratelimit-reset=1|");
    /* the callback's nonzero return stops the rendering and is returned */
    memset(&c, 0, sizeof c);
    c.stop_at = 2;
    assert_int_equal(sl_ratelimit_headers(m.data, m.len, collect, &c), 7);
    assert_int_equal(c.calls, 2);

    /* malformed: no reset; a name with a control character; not a map */
    static const int bad_kinds[] = {0, 1, 2};
    for (size_t k = 0; k < sizeof bad_kinds / sizeof *bad_kinds; k++) {
        sl_wbuf_reset(&m);
        memset(&c, 0, sizeof c);
        if (bad_kinds[k] == 2) {
            sl_mp_write_cstr(&m, "limit");
        } else {
            sl_mp_write_map(&m, bad_kinds[k] == 0 ? 2 : 4);
            sl_mp_write_cstr(&m, "limit");
            sl_mp_write_int(&m, 1);
            sl_mp_write_cstr(&m, "remaining");
            sl_mp_write_int(&m, 1);
            if (bad_kinds[k] == 1) {
                sl_mp_write_cstr(&m, "reset");
                sl_mp_write_int(&m, 1);
                sl_mp_write_cstr(&m, "name");
                sl_mp_write_cstr(&m, "a\nb");
            }
        }
        assert_int_equal(sl_ratelimit_headers(m.data, m.len, collect, &c), -1);
        assert_int_equal(c.calls, 0);
        size_t before = http.len;
        assert_int_equal(sl_ratelimit_headers_http(m.data, m.len, &http), -1);
        assert_int_equal(http.len, before);
    }
    sl_wbuf_fini(&m);
    sl_wbuf_fini(&http);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accuracy_10s_at_1000_per_s),
        cmocka_unit_test(test_per_operation_and_per_consumer),
        cmocka_unit_test(test_plans_and_default_plan),
        cmocka_unit_test(test_burst_and_refill),
        cmocka_unit_test(test_exact_headers),
        cmocka_unit_test(test_header_wording),
        cmocka_unit_test(test_time_going_backwards),
        cmocka_unit_test(test_eviction_forgets_full_buckets_first),
        cmocka_unit_test(test_eviction_soonest_full),
        cmocka_unit_test(test_anonymous_and_errors),
        cmocka_unit_test(test_expressions),
        cmocka_unit_test(test_parallel_keyed_by_consumer),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_good_configs),
        cmocka_unit_test(test_header_helper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
