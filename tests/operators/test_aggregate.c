/*
 * test_aggregate.c - the aggregate operator through the harness: tumbling,
 * hopping and session windows, grouping sets, every compute function, the
 * all-or-nothing errors rule and configuration mistakes. With a watermarked
 * feed (one event per batch, event i processed under the watermark of the
 * events before it): firing, lateness and "update" re-emissions. Then the
 * state: a memory budget that spills to LMDB must not change any result,
 * and a stream split by a savepoint (snapshot, then restore in a second
 * harness on the same state_dir) must give what one uninterrupted run gives.
 * Times in comments are seconds after 2026-01-01T00:00:00Z.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Configurations refused at load: bad windows (sessions too), computes, memory budgets. */
static void test_bad_configs(void **st)
{
    static const char *const bad[] = {
        "type: aggregate\nwindows: [{tumbling: 5x}]\ncompute: {n: count()}",
        "type: aggregate\nwindows: [{hopping: 10m, every: 3m}]\ncompute: {n: count()}",
        "type: aggregate\nwindows: [{tumbling: 1m}]\ncompute: {n: cnt()}",
        "type: aggregate\nwindows: [{tumbling: 1m}]\ncompute: {n: \"percentile(x, 2)\"}",
        "type: aggregate\nwindows: [{tumbling: 1m}]\ncompute: {n: sum()}",
        "type: aggregate\nwindows: [{tumbling: 1m}]\ncompute: {time: count()}",
        "type: aggregate\nwindows: [{session: 0s}]\ncompute: {n: count()}",
        "type: aggregate\nwindows: [{session: abc}]\ncompute: {n: count()}",
        "type: aggregate\nwindows: [{session: 1m, every: 10s}]\ncompute: {n: count()}",
        "type: aggregate\nwindows: [{tumbling: 1m}]\nmemory: -1\ncompute: {n: count()}",
        "type: aggregate\nwindows: [{tumbling: 1m}]\nmemory: abc\ncompute: {n: count()}",
    };
    assert_int_equal(sl_harness_config_mismatches(bad, sizeof bad / sizeof *bad, 0), 0);
}

/* The valid neighbours of the bad configurations above, so that those fail for their mistake. */
static void test_session_and_memory_configs_accepted(void **st)
{
    static const char *const good[] = {
        "type: aggregate\nwindows: [{session: 30s}]\ncompute: {n: count()}",
        "type: aggregate\nwindows: [{tumbling: 1m}, {session: 1m}, {hopping: 10m, every: 5m}]\n"
        "compute: {n: count()}",
        "type: aggregate\nwindows: [{tumbling: 1m}]\nmemory: 1KiB\ncompute: {n: count()}",
        "type: aggregate\nwindows: [{session: 30s}]\nmemory: 128MiB\ncompute: {n: count()}",
    };
    assert_int_equal(sl_harness_config_mismatches(good, sizeof good / sizeof *good, 1), 0);
}

/* ------------------------------------------------------------ helpers for what follows */

/* A session test's event {id, time, user, v}; times in whole seconds. */
typedef struct sev {
    const char *id, *user;
    long s;
    int v;
} sev;

static void push_sessions(sl_harness *h, const sev *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char t[40], ev[256];
        snprintf(ev, sizeof ev, "{\"id\":\"%s\",\"time\":\"%s\",\"user\":\"%s\",\"v\":%d}",
                 evs[i].id, sl_harness_time(t, evs[i].s * 1000), evs[i].user, evs[i].v);
        assert_int_equal(sl_harness_push(h, ev), 0);
    }
}

/*
 * The row the operator writes for window [start, end) (seconds), group (a
 * JSON map) and the computed members (JSON, in the order written).
 */
static const char *want_row(char *buf, size_t n, long start, long end, const char *group,
                            const char *figures, int update)
{
    char s[40], e[40];
    snprintf(buf, n,
             "{\"window\":{\"start\":\"%s\",\"end\":\"%s\"},\"group\":%s,%s,\"time\":\"%s\"%s}",
             sl_harness_time(s, start * 1000), sl_harness_time(e, end * 1000), group, figures, e,
             update ? ",\"update\":true" : "");
    return buf;
}

static void dump(const sl_harness *h)
{
    static const char *const ports[] = {"out", "late", "errors"};
    for (size_t p = 0; p < 3; p++)
        for (size_t i = 0; i < sl_harness_count(h, ports[p]); i++)
            print_message("  %s[%zu] %s\n", ports[p], i, sl_harness_out(h, ports[p], i));
}

/* n events on port (all of them printed if not). */
static void expect_count(const sl_harness *h, const char *port, size_t n)
{
    if (sl_harness_count(h, port) != n) {
        dump(h);
        fail_msg("%zu events on %s, expected %zu", sl_harness_count(h, port), port, n);
    }
}

/* That row exactly once on out, in any position (for rows whose order is not specified). */
static void expect_row(const sl_harness *h, long start, long end, const char *group,
                       const char *figures, int update)
{
    char want[512];
    want_row(want, sizeof want, start, end, group, figures, update);
    size_t hits = 0;
    for (size_t i = 0; i < sl_harness_count(h, "out"); i++)
        hits += strcmp(sl_harness_out(h, "out", i), want) == 0;
    if (hits != 1) {
        dump(h);
        fail_msg("expected once on out (found %zu times): %s", hits, want);
    }
}

/* That row as the i-th on out (for rows whose order is specified). */
static void expect_row_at(const sl_harness *h, size_t i, long start, long end, const char *group,
                          const char *figures, int update)
{
    char want[512];
    want_row(want, sizeof want, start, end, group, figures, update);
    const char *got = sl_harness_out(h, "out", i);
    if (!got || strcmp(got, want) != 0) {
        dump(h);
        fail_msg("out[%zu]: expected %s\n  got %s", i, want, got ? got : "(nothing)");
    }
}

static double member_num(const char *row, const char *member)
{
    const char *p = strstr(row, member);
    if (!p)
        fail_msg("no %s in %s", member, row);
    return strtod(p + strlen(member), NULL);
}

/* ------------------------------------------------------------ session windows */

#define SESSION_COMPUTE "compute: {n: count(), s: sum(v), f: first(id), l: last(id)}"
#define USER_A "{\"user\":\"a\"}"
#define USER_B "{\"user\":\"b\"}"

/*
 * No watermark: every session fires at end of stream. Per grouping set,
 * events strictly closer than the gap share a session, events exactly the
 * gap apart do not; a session is [first event, last event + gap).
 */
static void test_session_gap_per_grouping_set(void **st)
{
    sl_harness *h = sl_harness_new("type: aggregate\n"
                                   "windows: [{session: 30s}]\n"
                                   "group_by: [[], [user]]\n" SESSION_COMPUTE);
    assert_non_null(h);
    static const sev evs[] = {
        {"a1", "a", 0, 1},
        {"a2", "a", 10, 2},  /* 10 s after a1: the same session */
        {"a3", "a", 39, 4},  /* 29 s after a2: the same, a's first session is [0, 69) */
        {"a4", "a", 69, 8},  /* exactly 30 s after a3: a new session [69, 99) */
        {"b1", "b", 50, 16}, /* b's only session: [50, 80) */
    };
    push_sessions(h, evs, sizeof evs / sizeof *evs);
    assert_int_equal(sl_harness_run(h), 0);
    expect_count(h, "out", 4);
    expect_row(h, 0, 69, USER_A, "\"n\":3,\"s\":7,\"f\":\"a1\",\"l\":\"a3\"", 0);
    expect_row(h, 69, 99, USER_A, "\"n\":1,\"s\":8,\"f\":\"a4\",\"l\":\"a4\"", 0);
    expect_row(h, 50, 80, USER_B, "\"n\":1,\"s\":16,\"f\":\"b1\",\"l\":\"b1\"", 0);
    /* the [] set sees 0, 10, 39, 50, 69: every gap under 30 s, so one session [0, 99) */
    expect_row(h, 0, 99, "{}", "\"n\":5,\"s\":31,\"f\":\"a1\",\"l\":\"a4\"", 0);
    expect_count(h, "late", 0);
    sl_harness_destroy(&h);
}

/* Session and tumbling windows in one operator each count every event. */
static void test_session_mixed_with_tumbling(void **st)
{
    sl_harness *h = sl_harness_new("type: aggregate\n"
                                   "windows: [{tumbling: 1m}, {session: 30s}]\n" SESSION_COMPUTE);
    assert_non_null(h);
    static const sev evs[] = {{"e1", "u", 0, 1}, {"e2", "u", 50, 2}, {"e3", "u", 70, 4}};
    push_sessions(h, evs, 3);
    assert_int_equal(sl_harness_run(h), 0);
    expect_count(h, "out", 4);
    expect_row(h, 0, 60, "{}", "\"n\":2,\"s\":3,\"f\":\"e1\",\"l\":\"e2\"", 0);
    expect_row(h, 60, 120, "{}", "\"n\":1,\"s\":4,\"f\":\"e3\",\"l\":\"e3\"", 0);
    /* e2 is 50 s after e1 (two sessions); e3 20 s after e2 */
    expect_row(h, 0, 30, "{}", "\"n\":1,\"s\":1,\"f\":\"e1\",\"l\":\"e1\"", 0);
    expect_row(h, 50, 100, "{}", "\"n\":2,\"s\":6,\"f\":\"e2\",\"l\":\"e3\"", 0);
    sl_harness_destroy(&h);
}

/*
 * An out-of-order event within the bound (60 s: not late) whose [t, t+30)
 * overlaps two sessions merges them, every compute with them: one row.
 */
static void test_session_bridge_merges_all_computes(void **st)
{
    sl_harness *h = sl_harness_new_with(
        "type: aggregate\n"
        "windows: [{session: 30s}]\n"
        "compute: {n: count(), s: sum(v), a: avg(v), lo: min(v), hi: max(v), "
        "d: count_distinct(user), \"p\": \"percentile(v, 0.5)\", f: first(id), l: last(id)}",
        &(sl_harness_opts){.max_out_of_order = "60s"});
    assert_non_null(h);
    static const sev evs[] = {
        {"x1", "p", 0, 1},  /* [0, 30) */
        {"x2", "q", 50, 4}, /* 50 s later: a second session [50, 80) */
        {"x3", "p", 25, 2}, /* watermark 50 - 60: on time; [25, 55) overlaps both: [0, 80) */
    };
    push_sessions(h, evs, 3);
    assert_int_equal(sl_harness_run(h), 0);
    if (sl_harness_count(h, "out") != 1 || sl_harness_count(h, "late") != 0) {
        dump(h);
        fail_msg("expected one merged session on out and nothing late");
    }
    const char *r = sl_harness_out(h, "out", 0);
    static const char head[] = "{\"window\":{\"start\":\"2026-01-01T00:00:00Z\","
                               "\"end\":\"2026-01-01T00:01:20Z\"},"
                               "\"group\":{},\"n\":3,\"s\":7,\"a\":";
    if (strncmp(r, head, sizeof head - 1) != 0)
        fail_msg("expected a row starting %s\n  got %s", head, r);
    double avg = member_num(r, "\"a\":"); /* 7 / 3 */
    assert_true(avg > 2.3333333 && avg < 2.3333334);
    /* ints stay ints for min/max; two distinct users (p, q) */
    assert_non_null(strstr(r, ",\"lo\":1,\"hi\":4,\"d\":2,\"p\":"));
    double med = member_num(r, "\"p\":"); /* rank floor(0.5 * 2) = 1 of 1, 2, 4: 2, within 1% */
    assert_true(med > 1.98 && med < 2.02);
    /* first/last by event time: x1 (0 s), x2 (50 s); a first emission: no "update" */
    const char *tail = ",\"f\":\"x1\",\"l\":\"x2\",\"time\":\"2026-01-01T00:01:20Z\"}";
    assert_non_null(strstr(r, tail));
    assert_string_equal(r + strlen(r) - strlen(tail), tail);
    sl_harness_destroy(&h);
}

/*
 * Bound 10 s: event i is processed under the watermark (latest time before
 * it) - 10 s. A session fires when the watermark reaches its end, mid-stream;
 * with allowed_lateness an event that joins it afterwards re-emits it as an
 * update.
 */
static void test_session_fires_when_watermark_reaches_end(void **st)
{
    sl_harness *h = sl_harness_new_with("type: aggregate\n"
                                        "windows: [{session: 30s}]\n"
                                        "group_by: [user]\n"
                                        "allowed_lateness: 60s\n" SESSION_COMPUTE,
                                        &(sl_harness_opts){.max_out_of_order = "10s"});
    assert_non_null(h);
    static const sev evs[] = {
        {"a1", "a", 0, 1},
        {"a2", "a", 10, 2}, /* a: [0, 40) */
        {"b1", "b", 50, 4}, /* then the watermark is 40: a's session fires, n 2 */
        {"a3", "a", 5, 8},  /* under 40, not late (5 + 30 + 60 > 40); inside [0, 40), so the
                               end stays 40: an update, n 3 (first/last still a1/a2) */
    };
    push_sessions(h, evs, 4);
    assert_int_equal(sl_harness_run(h), 0);
    expect_count(h, "out", 3);
    expect_row_at(h, 0, 0, 40, USER_A, "\"n\":2,\"s\":3,\"f\":\"a1\",\"l\":\"a2\"", 0);
    expect_row_at(h, 1, 0, 40, USER_A, "\"n\":3,\"s\":11,\"f\":\"a1\",\"l\":\"a2\"", 1);
    /* b's [50, 80) fires at end of stream; a's, unchanged since its update, not again */
    expect_row_at(h, 2, 50, 80, USER_B, "\"n\":1,\"s\":4,\"f\":\"b1\",\"l\":\"b1\"", 0);
    expect_count(h, "late", 0);
    sl_harness_destroy(&h);
}

/* An event that joins a fired session and extends it: the update has the new end. */
static void test_session_update_extends_fired_session(void **st)
{
    sl_harness *h = sl_harness_new_with("type: aggregate\n"
                                        "windows: [{session: 30s}]\n"
                                        "group_by: [user]\n"
                                        "allowed_lateness: 60s\n" SESSION_COMPUTE,
                                        &(sl_harness_opts){.max_out_of_order = "10s"});
    assert_non_null(h);
    static const sev evs[] = {
        {"a1", "a", 0, 1},
        {"a2", "a", 10, 2}, /* a: [0, 40) */
        {"b1", "b", 60, 4}, /* watermark 50: a's session fires */
        {"a3", "a", 15, 8}, /* not late (15 + 30 + 60 > 50): [0, 45), the latest now a3 */
    };
    push_sessions(h, evs, 4);
    assert_int_equal(sl_harness_run(h), 0);
    expect_count(h, "out", 3);
    expect_row_at(h, 0, 0, 40, USER_A, "\"n\":2,\"s\":3,\"f\":\"a1\",\"l\":\"a2\"", 0);
    expect_row_at(h, 1, 0, 45, USER_A, "\"n\":3,\"s\":11,\"f\":\"a1\",\"l\":\"a3\"", 1);
    expect_row_at(h, 2, 60, 90, USER_B, "\"n\":1,\"s\":4,\"f\":\"b1\",\"l\":\"b1\"", 0);
    expect_count(h, "late", 0);
    sl_harness_destroy(&h);
}

/*
 * An event that bridges a fired session and an open one: they merge, and
 * since part of it fired, the merged result is an update. It already went
 * out as an update, so the watermark passing the merged end (at end of
 * stream) emits nothing more: after firing, only changes are emitted.
 */
static void test_session_bridge_fired_and_open_is_update(void **st)
{
    sl_harness *h = sl_harness_new_with("type: aggregate\n"
                                        "windows: [{session: 30s}]\n"
                                        "group_by: [user]\n"
                                        "allowed_lateness: 60s\n" SESSION_COMPUTE,
                                        &(sl_harness_opts){.max_out_of_order = "10s"});
    assert_non_null(h);
    static const sev evs[] = {
        {"a1", "a", 0, 1},
        {"a2", "a", 10, 2},  /* a: [0, 40) */
        {"b1", "b", 60, 4},  /* watermark 50: a's [0, 40) fires */
        {"a3", "a", 65, 8},  /* a's second session [65, 95), open; watermark 55 */
        {"a4", "a", 38, 16}, /* not late (38 + 90 > 55); [38, 68) overlaps both: [0, 95) */
    };
    push_sessions(h, evs, 5);
    assert_int_equal(sl_harness_run(h), 0);
    expect_count(h, "out", 3);
    expect_row_at(h, 0, 0, 40, USER_A, "\"n\":2,\"s\":3,\"f\":\"a1\",\"l\":\"a2\"", 0);
    expect_row_at(h, 1, 0, 95, USER_A, "\"n\":4,\"s\":27,\"f\":\"a1\",\"l\":\"a3\"", 1);
    expect_row_at(h, 2, 60, 90, USER_B, "\"n\":1,\"s\":4,\"f\":\"b1\",\"l\":\"b1\"", 0);
    sl_harness_destroy(&h);
}

/*
 * allowed_lateness 0: an event is late for a session window when the
 * watermark has passed t + gap, whether or not it is behind the watermark.
 */
static void test_session_late_events_leave_by_late(void **st)
{
    sl_harness *h = sl_harness_new_with("type: aggregate\n"
                                        "windows: [{session: 30s}]\n"
                                        "group_by: [user]\n" SESSION_COMPUTE,
                                        &(sl_harness_opts){.max_out_of_order = "10s"});
    assert_non_null(h);
    static const sev evs[] = {
        {"a1", "a", 0, 1},    /* [0, 30) */
        {"b1", "b", 100, 2},  /* watermark 90: a's session fires */
        {"a2", "a", 40, 4},   /* 40 + 30 <= 90: late, counted nowhere */
        {"a3", "a", 65, 8},   /* behind the watermark, but 65 + 30 > 90: a session [65, 95) */
        {"b2", "b", 95, 16},  /* 95 + 30 > 90: joins b1, [95, 130) */
    };
    push_sessions(h, evs, 5);
    assert_int_equal(sl_harness_run(h), 0);
    expect_count(h, "out", 3);
    expect_row_at(h, 0, 0, 30, USER_A, "\"n\":1,\"s\":1,\"f\":\"a1\",\"l\":\"a1\"", 0);
    expect_row(h, 65, 95, USER_A, "\"n\":1,\"s\":8,\"f\":\"a3\",\"l\":\"a3\"", 0);
    expect_row(h, 95, 130, USER_B, "\"n\":2,\"s\":18,\"f\":\"b2\",\"l\":\"b1\"", 0);
    expect_count(h, "late", 1);
    const char *late = sl_harness_out(h, "late", 0);
    assert_non_null(strstr(late, "\"reason\":\"late\""));
    assert_non_null(strstr(late, "\"id\":\"a2\""));
    assert_int_equal(sl_harness_counter(h, "late"), 1);
    sl_harness_destroy(&h);
}

/*
 * allowed_lateness 40s: late is t + gap + 40s <= watermark. A fired session
 * is kept until end + 40s and an event that joins it re-emits it (an
 * update); an event the lateness lets through on its own makes a session of
 * its own (never fired: a first emission).
 */
static void test_session_allowed_lateness(void **st)
{
    sl_harness *h = sl_harness_new_with("type: aggregate\n"
                                        "windows: [{session: 30s}]\n"
                                        "group_by: [user]\n"
                                        "allowed_lateness: 40s\n" SESSION_COMPUTE,
                                        &(sl_harness_opts){.max_out_of_order = "10s"});
    assert_non_null(h);
    static const sev evs[] = {
        {"a1", "a", 0, 1},
        {"a2", "a", 25, 2},  /* a: [0, 55) */
        {"b1", "b", 100, 4}, /* watermark 90: a's session fires, kept until 95 */
        {"a3", "a", 30, 8},  /* 30 + 30 + 40 = 100 > 90: joins, [0, 60) */
        {"c1", "c", 5, 16},  /* 5 + 30 + 40 = 75 <= 90: late */
        {"c2", "c", 45, 32}, /* 45 + 30 + 40 = 115 > 90 (late without the 40 s): [45, 75) */
    };
    push_sessions(h, evs, sizeof evs / sizeof *evs);
    assert_int_equal(sl_harness_run(h), 0);
    expect_count(h, "out", 4);
    expect_row_at(h, 0, 0, 55, USER_A, "\"n\":2,\"s\":3,\"f\":\"a1\",\"l\":\"a2\"", 0);
    expect_row_at(h, 1, 0, 60, USER_A, "\"n\":3,\"s\":11,\"f\":\"a1\",\"l\":\"a3\"", 1);
    expect_row(h, 45, 75, "{\"user\":\"c\"}", "\"n\":1,\"s\":32,\"f\":\"c2\",\"l\":\"c2\"", 0);
    expect_row(h, 100, 130, USER_B, "\"n\":1,\"s\":4,\"f\":\"b1\",\"l\":\"b1\"", 0);
    expect_count(h, "late", 1);
    assert_non_null(strstr(sl_harness_out(h, "late", 0), "\"id\":\"c1\""));
    assert_int_equal(sl_harness_counter(h, "late"), 1);
    sl_harness_destroy(&h);
}

/*
 * Lateness of a session event is judged on the session it joins, as Flink
 * does for merging windows: an event whose own [t, t + gap) would be gone
 * (t + gap + allowed_lateness <= watermark) still counts when it falls in a
 * fired session that is kept, and makes it re-emit as an update; with no
 * session to join it is late.
 */
static void test_session_late_inside_kept_session(void **st)
{
    sl_harness *h = sl_harness_new_with("type: aggregate\n"
                                        "windows: [{session: 30s}]\n"
                                        "group_by: [user]\n"
                                        "allowed_lateness: 40s\n" SESSION_COMPUTE,
                                        &(sl_harness_opts){.max_out_of_order = "10s"});
    assert_non_null(h);
    static const sev evs[] = {
        {"a1", "a", 0, 1},
        {"a2", "a", 25, 2},  /* a: [0, 55) */
        {"b1", "b", 100, 4}, /* watermark 90: a's session fires, kept until 55 + 40 = 95 */
        {"a3", "a", 15, 8},  /* 15 + 30 + 40 = 85 <= 90, but inside the kept [0, 55): joins */
        {"c1", "c", 15, 16}, /* the same time, no session of c to join: late */
    };
    push_sessions(h, evs, sizeof evs / sizeof *evs);
    assert_int_equal(sl_harness_run(h), 0);
    expect_count(h, "out", 3);
    expect_row_at(h, 0, 0, 55, USER_A, "\"n\":2,\"s\":3,\"f\":\"a1\",\"l\":\"a2\"", 0);
    expect_row_at(h, 1, 0, 55, USER_A, "\"n\":3,\"s\":11,\"f\":\"a1\",\"l\":\"a2\"", 1);
    expect_row_at(h, 2, 100, 130, USER_B, "\"n\":1,\"s\":4,\"f\":\"b1\",\"l\":\"b1\"", 0);
    expect_count(h, "late", 1);
    assert_non_null(strstr(sl_harness_out(h, "late", 0), "\"id\":\"c1\""));
    assert_int_equal(sl_harness_counter(h, "late"), 1);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ runs compared as multisets */

/* a and b hold the same rows as multisets (both get sorted). */
static void expect_same_rows(const char *what, sl_harness_rows *a, sl_harness_rows *b)
{
    const char *d = sl_harness_rows_differ(a, b, 1);
    if (d)
        fail_msg("%s: %s", what, d);
}

static size_t rows_with(const sl_harness_rows *r, const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += strstr(r->v[i], needle) != NULL;
    return n;
}

static void free_events(char **ev, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ev[i]);
    free(ev);
}

typedef struct run_spec {
    const char *yaml;
    const char *state_dir;          /* NULL: the harness's own, removed with it */
    const char *bound;              /* max_out_of_order; NULL: no watermark */
    uint64_t restore_id, snapshot_id;
} run_spec;

/* One harness over events[from, to): its out and late rows appended; returns its late counter. */
static unsigned long long run_into(const run_spec *rs, char *const *events, size_t from, size_t to,
                                   sl_harness_rows *out, sl_harness_rows *late)
{
    sl_harness *h = sl_harness_new_with(
        rs->yaml, &(sl_harness_opts){.state_dir = rs->state_dir, .max_out_of_order = rs->bound});
    assert_non_null(h);
    sl_harness_checkpoint(h, rs->restore_id, rs->snapshot_id);
    for (size_t i = from; i < to; i++)
        assert_int_equal(sl_harness_push(h, events[i]), 0);
    assert_int_equal(sl_harness_run(h), 0);
    sl_harness_rows_collect(out, h, "out");
    if (late)
        sl_harness_rows_collect(late, h, "late");
    unsigned long long n_late = sl_harness_counter(h, "late");
    sl_harness_destroy(&h); /* before the next harness: a run holds the state_dir's lock */
    return n_late;
}

static uint32_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

/* {id, time, k, v: int, x: double, c}; the values drawn from seed. Caller frees. */
static char *make_event(size_t i, long ms, unsigned key, uint64_t *seed)
{
    char t[40], *ev = malloc(256);
    assert_non_null(ev);
    unsigned v = rnd(seed) % 1000, x = rnd(seed) % 100000, c = rnd(seed) % 50;
    snprintf(ev, 256,
             "{\"id\":\"e%05zu\",\"time\":\"%s\",\"k\":\"k%04u\",\"v\":%u,"
             "\"x\":%u.%02u,\"c\":\"c%u\"}",
             i, sl_harness_time(t, ms), key, v, x / 100, x % 100, c);
    return ev;
}

#define ALL_COMPUTES                                                                              \
    "compute: {n: count(), s: sum(v), sx: sum(x), a: avg(x), lo: min(x), hi: max(v), "          \
    "d: count_distinct(c), \"p\": \"percentile(x, 0.5)\", f: first(id), l: last(id)}"

/* ------------------------------------------------------------ memory budget */

#define MEM_KEYS 2000
#define MEM_EVENTS 10000
#define MEM_BODY                                                                                  \
    "windows: [{tumbling: 1m}, {tumbling: 10m}, {hopping: 10m, every: 5m}]\n"                     \
    "group_by: [[], [k]]\n" ALL_COMPUTES

/*
 * 10000 events, 2000 keys, an hour, no watermark (all fire at end): with
 * memory: 1KiB the state spills to LMDB under state_dir, and the rows are
 * exactly those of the default budget.
 */
static void test_memory_budget_same_results(void **st)
{
    /* which (window, group) saw an event: 60 1m windows, 6 of 10m, 13 hopping
     * ([k * 5m, +10m) for k = -1 .. 11, index k + 1); [] set and per key */
    static unsigned char seen_all[3][60], seen_key[3][60][MEM_KEYS];
    memset(seen_all, 0, sizeof seen_all);
    memset(seen_key, 0, sizeof seen_key);
    uint64_t seed = 42;
    char **ev = calloc(MEM_EVENTS, sizeof *ev);
    assert_non_null(ev);
    for (size_t i = 0; i < MEM_EVENTS; i++) {
        unsigned key = rnd(&seed) % MEM_KEYS;
        long ms = (long)(rnd(&seed) % 3600000);
        ev[i] = make_event(i, ms, key, &seed);
        long win[4][2] = {
            {0, ms / 60000}, {1, ms / 600000}, {2, ms / 300000}, {2, ms / 300000 + 1}};
        for (size_t w = 0; w < 4; w++) {
            seen_all[win[w][0]][win[w][1]] = 1;
            seen_key[win[w][0]][win[w][1]][key] = 1;
        }
    }
    size_t want_rows = 0;
    for (size_t s = 0; s < 3; s++)
        for (size_t w = 0; w < 60; w++) {
            want_rows += seen_all[s][w];
            for (size_t k = 0; k < MEM_KEYS; k++)
                want_rows += seen_key[s][w][k];
        }

    sl_harness_rows big = {0}, small = {0};
    run_into(&(run_spec){.yaml = "type: aggregate\n" MEM_BODY}, ev, 0, MEM_EVENTS, &big, NULL);
    char dir[64];
    assert_non_null(sl_harness_tmpdir(dir));
    run_into(&(run_spec){.yaml = "type: aggregate\nmemory: 1KiB\n" MEM_BODY, .state_dir = dir}, ev,
             0, MEM_EVENTS, &small, NULL);
    /* far over budget: the state went to LMDB under state_dir */
    char path[128];
    struct stat sb;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int spilled = stat(path, &sb) == 0 && sb.st_size > 0;
    sl_harness_rmdir(dir);
    assert_true(spilled);

    assert_int_equal(big.n, want_rows);
    unsigned long long counted = 0;
    for (size_t i = 0; i < big.n; i++)
        counted += (unsigned long long)member_num(big.v[i], "\"n\":");
    /* each event is in 1 + 1 + 2 windows, in both grouping sets */
    assert_int_equal(counted, 8ull * MEM_EVENTS);
    expect_same_rows("memory: 1KiB against the default budget", &big, &small);
    sl_harness_rows_free(&big);
    sl_harness_rows_free(&small);
    free_events(ev, MEM_EVENTS);
}

#define LATE_KEYS 300
#define LATE_EVENTS 6000
#define LATE_BODY                                                                                 \
    "windows: [{tumbling: 1m}, {hopping: 2m, every: 1m}, {session: 2m}]\n"                        \
    "group_by: [[], [k]]\n"                                                                       \
    "allowed_lateness: 30s\n" ALL_COMPUTES

/*
 * The same with a watermark (bound 10 s) and sessions too (a key's events
 * are 3 min apart on average: some sessions merge, some not): windows fire
 * mid-stream, and of the out-of-order events some update fired windows, some
 * are late. The rows and the late events are the same whatever the budget
 * (in any order).
 */
static void test_memory_budget_same_results_with_lateness(void **st)
{
    uint64_t seed = 7;
    char **ev = calloc(LATE_EVENTS, sizeof *ev);
    assert_non_null(ev);
    for (size_t i = 0; i < LATE_EVENTS; i++) {
        long ms = 60000 + (long)i * 600; /* in order, 0.6 s apart ... */
        if (i % 10 == 5)
            ms -= (long)(rnd(&seed) % 60000); /* ... but every 10th up to 60 s older */
        ev[i] = make_event(i, ms, rnd(&seed) % LATE_KEYS, &seed);
    }
    sl_harness_rows big = {0}, big_late = {0}, small = {0}, small_late = {0};
    unsigned long long n_big = run_into(
        &(run_spec){.yaml = "type: aggregate\n" LATE_BODY, .bound = "10s"}, ev, 0, LATE_EVENTS,
        &big, &big_late);
    char dir[64];
    assert_non_null(sl_harness_tmpdir(dir));
    unsigned long long n_small =
        run_into(&(run_spec){.yaml = "type: aggregate\nmemory: 1KiB\n" LATE_BODY,
                             .state_dir = dir,
                             .bound = "10s"},
                 ev, 0, LATE_EVENTS, &small, &small_late);
    sl_harness_rmdir(dir);
    /* the stream does exercise updates and lateness */
    assert_true(rows_with(&big, ",\"update\":true}") > 0);
    assert_true(big_late.n > 0);
    assert_int_equal(n_big, big_late.n);
    assert_int_equal(n_small, n_big);
    expect_same_rows("memory: 1KiB against the default budget (out)", &big, &small);
    expect_same_rows("memory: 1KiB against the default budget (late)", &big_late, &small_late);
    sl_harness_rows_free(&big);
    sl_harness_rows_free(&big_late);
    sl_harness_rows_free(&small);
    sl_harness_rows_free(&small_late);
    free_events(ev, LATE_EVENTS);
}

/* ------------------------------------------------------------ snapshot and restore */

#define SPLIT_EVENTS 400
#define SPLIT_AT 260
#define SPLIT_BODY "group_by: [[], [k]]\nallowed_lateness: 20s\n" ALL_COMPUTES
#define SPLIT_TUMBLING_HOPPING "windows: [{tumbling: 1m}, {hopping: 10m, every: 5m}]\n" SPLIT_BODY
#define SPLIT_SESSIONS "windows: [{hopping: 2m, every: 1m}, {session: 30s}]\n" SPLIT_BODY

/*
 * Event i at 60 s + 1.5 s * i, plus a pause of 100 s from i = 150 on (every
 * session closes there), 12 keys; every 7th from i = 3 on is up to 45 s
 * older (bound 10 s, allowed_lateness 20 s: some update fired windows, some
 * are late). Event SPLIT_AT is in order, the latest yet: a fresh run (no
 * watermark yet) and the uninterrupted one (watermark of part 1) treat it
 * alike, and after it their watermarks are equal.
 */
static char **split_events(void)
{
    uint64_t seed = 3;
    char **ev = calloc(SPLIT_EVENTS, sizeof *ev);
    assert_non_null(ev);
    for (size_t i = 0; i < SPLIT_EVENTS; i++) {
        long ms = 60000 + (long)i * 1500 + (i >= 150 ? 100000 : 0);
        if (i % 7 == 3)
            ms -= (long)(i * 7919 % 45000);
        ev[i] = make_event(i, ms, rnd(&seed) % 12, &seed);
    }
    return ev;
}

/*
 * One uninterrupted run over all the events with the default budget, against
 * part 1 (the events before SPLIT_AT, ending with savepoint 7 instead of a
 * flush) then part 2 (the rest, restoring 7, on the same state_dir), both
 * with `memory` (a YAML line or ""): the same rows and late events, as
 * multisets. With a budget, one uninterrupted run with it is compared too,
 * so that a difference says whether the budget or the savepoint caused it.
 */
static void expect_split_equals_whole(const char *windows, const char *memory)
{
    char yaml[1024], yaml_default[1024];
    snprintf(yaml, sizeof yaml, "type: aggregate\n%s%s", memory, windows);
    snprintf(yaml_default, sizeof yaml_default, "type: aggregate\n%s", windows);
    char **ev = split_events();
    sl_harness_rows whole = {0}, whole_late = {0}, split = {0}, split_late = {0};
    run_into(&(run_spec){.yaml = yaml_default, .bound = "10s"}, ev, 0, SPLIT_EVENTS, &whole,
             &whole_late);
    if (*memory) {
        sl_harness_rows budget = {0}, budget_late = {0};
        run_into(&(run_spec){.yaml = yaml, .bound = "10s"}, ev, 0, SPLIT_EVENTS, &budget,
                 &budget_late);
        expect_same_rows("one run with the budget against the default (out)", &whole, &budget);
        expect_same_rows("one run with the budget against the default (late)", &whole_late,
                         &budget_late);
        sl_harness_rows_free(&budget);
        sl_harness_rows_free(&budget_late);
    }
    char dir[64];
    assert_non_null(sl_harness_tmpdir(dir));
    run_into(&(run_spec){.yaml = yaml, .state_dir = dir, .bound = "10s", .snapshot_id = 7}, ev, 0,
             SPLIT_AT, &split, &split_late);
    size_t part1 = split.n;
    run_into(&(run_spec){.yaml = yaml, .state_dir = dir, .bound = "10s", .restore_id = 7}, ev,
             SPLIT_AT, SPLIT_EVENTS, &split, &split_late);
    sl_harness_rmdir(dir);
    /* windows fired before the savepoint and after it; lateness and updates happened */
    size_t updates = rows_with(&whole, ",\"update\":true}");
    if (!(part1 > 0 && split.n > part1 && whole_late.n > 0 && updates > 0))
        fail_msg("%s\nthe stream does not exercise the split: %zu rows before it, %zu after, "
                 "%zu late, %zu updates",
                 yaml, part1, split.n - part1, whole_late.n, updates);
    expect_same_rows("savepoint at event 260 + restore, against one run (out)", &whole, &split);
    expect_same_rows("savepoint at event 260 + restore, against one run (late)", &whole_late,
                     &split_late);
    sl_harness_rows_free(&whole);
    sl_harness_rows_free(&whole_late);
    sl_harness_rows_free(&split);
    sl_harness_rows_free(&split_late);
    free_events(ev, SPLIT_EVENTS);
}

static void test_restore_continues_tumbling_hopping(void **st)
{
    expect_split_equals_whole(SPLIT_TUMBLING_HOPPING, "");
}

static void test_restore_continues_tumbling_hopping_spilled(void **st)
{
    expect_split_equals_whole(SPLIT_TUMBLING_HOPPING, "memory: 1KiB\n");
}

static void test_restore_continues_sessions(void **st)
{
    expect_split_equals_whole(SPLIT_SESSIONS, "");
}

static void test_restore_continues_sessions_spilled(void **st)
{
    expect_split_equals_whole(SPLIT_SESSIONS, "memory: 1KiB\n");
}

/* Restoring a checkpoint that was never written fails the run. */
static void test_restore_unknown_checkpoint_fails(void **st)
{
    char dir[64];
    assert_non_null(sl_harness_tmpdir(dir));
    sl_harness *h =
        sl_harness_new_with("type: aggregate\n" SPLIT_TUMBLING_HOPPING,
                            &(sl_harness_opts){.state_dir = dir, .max_out_of_order = "10s"});
    assert_non_null(h);
    sl_harness_checkpoint(h, 99, 0); /* a fresh state_dir: no checkpoint 99 */
    uint64_t seed = 1;
    char *ev = make_event(0, 0, 0, &seed);
    assert_int_equal(sl_harness_push(h, ev), 0);
    free(ev);
    int rc = sl_harness_run(h);
    sl_harness_destroy(&h);
    sl_harness_rmdir(dir);
    assert_int_not_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tumbling_sets_and_computes),
        cmocka_unit_test(test_hopping_windows),
        cmocka_unit_test(test_errors_all_or_nothing),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_session_and_memory_configs_accepted),
        cmocka_unit_test(test_session_gap_per_grouping_set),
        cmocka_unit_test(test_session_mixed_with_tumbling),
        cmocka_unit_test(test_session_bridge_merges_all_computes),
        cmocka_unit_test(test_session_fires_when_watermark_reaches_end),
        cmocka_unit_test(test_session_update_extends_fired_session),
        cmocka_unit_test(test_session_bridge_fired_and_open_is_update),
        cmocka_unit_test(test_session_late_events_leave_by_late),
        cmocka_unit_test(test_session_allowed_lateness),
        cmocka_unit_test(test_session_late_inside_kept_session),
        cmocka_unit_test(test_memory_budget_same_results),
        cmocka_unit_test(test_memory_budget_same_results_with_lateness),
        cmocka_unit_test(test_restore_continues_tumbling_hopping),
        cmocka_unit_test(test_restore_continues_tumbling_hopping_spilled),
        cmocka_unit_test(test_restore_continues_sessions),
        cmocka_unit_test(test_restore_continues_sessions_spilled),
        cmocka_unit_test(test_restore_unknown_checkpoint_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
