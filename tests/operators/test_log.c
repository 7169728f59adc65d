/*
 * test_log.c - sink.log and source.log through the harness.
 *
 * Expectations: what sink.log appends, source.log (follow: false) emits
 * unchanged and in order; events without a string id leave sink.log by
 * `errors` (reason invalid, the event as original) and take no offset;
 * duplicate ids are counted and skipped, so appending the same stream twice
 * stores it once; source.log starts at `from` (start, end, an offset) and
 * keeps only `types` when given; a source split by a savepoint (run 1 reads
 * and snapshots, events are appended, run 2 restores) emits what one run over
 * the whole log emits, the restored offset winning over `from`; a checkpoint
 * it does not hold fails the run; events removed by retention before they were
 * read are skipped and counted; configuration mistakes are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eventlog.h"
#include "harness.h"

static char root[64];     /* a temporary directory per test */
static char log_dir[128]; /* root/log: the event log */

static int setup(void **st)
{
    if (!sl_harness_tmpdir(root))
        return -1;
    snprintf(log_dir, sizeof log_dir, "%s/log", root);
    return 0;
}

static int teardown(void **st)
{
    char p[160];
    snprintf(p, sizeof p, "%s/state", root);
    if (access(p, F_OK) == 0)
        sl_harness_rmdir(p);
    if (access(log_dir, F_OK) == 0)
        sl_harness_rmdir(log_dir);
    return sl_harness_rmdir(root);
}

/* The JSON of event i: {"id":"e<i>","type":<type>,"time":"...","n":i}. */
static const char *ev_json(char *buf, size_t cap, int i, const char *type)
{
    char t[40];
    snprintf(buf, cap, "{\"id\":\"e%d\",\"type\":\"%s\",\"time\":\"%s\",\"n\":%d}", i, type,
             sl_harness_time(t, (long)i * 1000), i);
    return buf;
}

static const char *type_of(int i) { return i % 3 == 0 ? "payment" : "order"; }

/* Append events [from, to) through sink.log; returns the `appended` counter. */
static unsigned long long sink_events(int from, int to)
{
    char yaml[256], ev[256];
    snprintf(yaml, sizeof yaml, "type: sink.log\npath: '%s'", log_dir);
    sl_harness *h = sl_harness_new(yaml);
    assert_non_null(h);
    for (int i = from; i < to; i++)
        assert_int_equal(sl_harness_push(h, ev_json(ev, sizeof ev, i, type_of(i))), 0);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "errors"), 0);
    unsigned long long n = sl_harness_counter(h, "appended");
    sl_harness_destroy(&h);
    return n;
}

/* A source.log harness on the log with extra YAML lines (and a state_dir when given). */
static sl_harness *source(const char *more, const char *state_dir)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, "type: source.log\npath: '%s'\nfollow: false%s%s", log_dir,
             more ? "\n" : "", more ? more : "");
    sl_harness_opts o = {.source = 1, .state_dir = state_dir};
    return sl_harness_new_with(yaml, &o);
}

/* The events source.log emitted are exactly events [from, to) in order (every k-th if k). */
static void expect_events(const sl_harness *h, int from, int to, const char *only_type)
{
    char want[256];
    size_t k = 0;
    for (int i = from; i < to; i++) {
        if (only_type && strcmp(type_of(i), only_type) != 0)
            continue;
        const char *got = sl_harness_out(h, "out", k++);
        ev_json(want, sizeof want, i, type_of(i));
        if (!got || strcmp(got, want) != 0)
            fail_msg("event %zu: %s, expected %s", k - 1, got ? got : "(none)", want);
    }
    assert_int_equal(sl_harness_count(h, "out"), k);
}

/* ------------------------------------------------------------ the sink */

static void test_round_trip(void **st)
{
    assert_int_equal(sink_events(0, 300), 300);
    sl_harness *h = source(NULL, NULL);
    assert_non_null(h);
    assert_int_equal(sl_harness_run(h), 0);
    expect_events(h, 0, 300, NULL); /* unchanged, in order */
    sl_harness_destroy(&h);
}

static void test_invalid_events_leave_by_errors(void **st)
{
    char yaml[256], ev[256];
    snprintf(yaml, sizeof yaml, "type: sink.log\npath: '%s'", log_dir);
    sl_harness *h = sl_harness_new(yaml);
    assert_non_null(h);
    assert_int_equal(sl_harness_push(h, ev_json(ev, sizeof ev, 0, "order")), 0);
    assert_int_equal(sl_harness_push(h, "{\"type\":\"order\",\"n\":1}"), 0);
    assert_int_equal(sl_harness_push(h, "{\"id\":5,\"n\":2}"), 0);
    assert_int_equal(sl_harness_push(h, ev_json(ev, sizeof ev, 3, "payment")), 0);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_counter(h, "appended"), 2);
    assert_int_equal(sl_harness_count(h, "errors"), 2);
    const char *e0 = sl_harness_out(h, "errors", 0), *e1 = sl_harness_out(h, "errors", 1);
    assert_non_null(strstr(e0, "\"reason\":\"invalid\""));
    assert_non_null(strstr(e0, "\"detail\":\"no 'id'\""));
    assert_non_null(strstr(e0, "\"original\":{\"type\":\"order\",\"n\":1}"));
    assert_non_null(strstr(e1, "\"detail\":\"'id' is not a string\""));
    sl_harness_destroy(&h);

    /* they took no offset: the log holds e0 at 0 and e3 at 1 */
    sl_eventlog *log;
    char err[256];
    assert_int_equal(sl_eventlog_open(log_dir, NULL, &log, err, sizeof err), 0);
    sl_wbuf copy = {0};
    sl_eventlog_event e;
    assert_int_equal(sl_eventlog_get(log, "e3", 2, &e, &copy), 0);
    assert_int_equal(e.offset, 1);
    sl_wbuf_fini(&copy);
    sl_eventlog_close(&log);
}

static void test_duplicates_are_skipped(void **st)
{
    char yaml[256], ev[256];
    snprintf(yaml, sizeof yaml, "type: sink.log\npath: '%s'", log_dir);
    sl_harness *h = sl_harness_new(yaml);
    assert_non_null(h);
    int order[] = {0, 1, 0, 2, 1, 1};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        assert_int_equal(sl_harness_push(h, ev_json(ev, sizeof ev, order[i], type_of(order[i]))), 0);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_counter(h, "appended"), 3);
    assert_int_equal(sl_harness_counter(h, "duplicates"), 3);
    assert_int_equal(sl_harness_count(h, "errors"), 0);
    sl_harness_destroy(&h);
    /* the same stream again (a replay): nothing new */
    h = sl_harness_new(yaml);
    for (int i = 0; i < 3; i++)
        assert_int_equal(sl_harness_push(h, ev_json(ev, sizeof ev, i, type_of(i))), 0);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_counter(h, "appended"), 0);
    assert_int_equal(sl_harness_counter(h, "duplicates"), 3);
    sl_harness_destroy(&h);
    h = source(NULL, NULL);
    assert_int_equal(sl_harness_run(h), 0);
    expect_events(h, 0, 3, NULL);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ the source */

static void test_from_and_types(void **st)
{
    assert_int_equal(sink_events(0, 50), 50);
    sl_harness *h = source("from: 20", NULL);
    assert_non_null(h);
    assert_int_equal(sl_harness_run(h), 0);
    expect_events(h, 20, 50, NULL);
    sl_harness_destroy(&h);

    h = source("from: end", NULL);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 0);
    sl_harness_destroy(&h);

    h = source("types: [payment]", NULL);
    assert_int_equal(sl_harness_run(h), 0);
    expect_events(h, 0, 50, "payment");
    assert_int_equal(sl_harness_count(h, "out"), 17);
    sl_harness_destroy(&h);

    h = source("from: 1000", NULL); /* past the end: nothing yet */
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 0);
    sl_harness_destroy(&h);
}

static void test_savepoint_equals_one_run(void **st)
{
    char state[160];
    snprintf(state, sizeof state, "%s/state", root);
    assert_int_equal(sink_events(0, 120), 120);

    /* run 1: read what is there, snapshot as checkpoint 1 */
    sl_harness_rows split = {0}, whole = {0};
    sl_harness *h = source(NULL, state);
    assert_non_null(h);
    sl_harness_checkpoint(h, 0, 1);
    assert_int_equal(sl_harness_run(h), 0);
    expect_events(h, 0, 120, NULL);
    sl_harness_rows_collect(&split, h, "out");
    sl_harness_destroy(&h);

    assert_int_equal(sink_events(120, 200), 80);

    /* run 2: restore 1 (it wins over from: start), read on, snapshot as 2 */
    h = source("from: start", state);
    sl_harness_checkpoint(h, 1, 2);
    assert_int_equal(sl_harness_run(h), 0);
    expect_events(h, 120, 200, NULL);
    sl_harness_rows_collect(&split, h, "out");
    sl_harness_destroy(&h);

    /* one run over the whole log gives the same events */
    h = source(NULL, NULL);
    assert_int_equal(sl_harness_run(h), 0);
    sl_harness_rows_collect(&whole, h, "out");
    sl_harness_destroy(&h);
    const char *d = sl_harness_rows_differ(&split, &whole, 0);
    if (d)
        fail_msg("savepoint split differs from one run: %s", d);

    /* restoring 2 again reads nothing more; checkpoint 1 is gone (2 replaced it) */
    h = source(NULL, state);
    sl_harness_checkpoint(h, 2, 0);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 0);
    sl_harness_destroy(&h);
    h = source(NULL, state);
    sl_harness_checkpoint(h, 1, 0);
    assert_int_not_equal(sl_harness_run(h), 0);
    sl_harness_destroy(&h);
    sl_harness_rows_free(&split);
    sl_harness_rows_free(&whole);
}

static void test_checkpoint_of_another_log_is_refused(void **st)
{
    char state[160], yaml[256], other[160];
    snprintf(state, sizeof state, "%s/state", root);
    assert_int_equal(sink_events(0, 10), 10);
    sl_harness *h = source(NULL, state);
    sl_harness_checkpoint(h, 0, 5);
    assert_int_equal(sl_harness_run(h), 0);
    sl_harness_destroy(&h);
    /* the same operator reading another log: the offset means nothing there */
    snprintf(other, sizeof other, "%s/other", root);
    snprintf(yaml, sizeof yaml, "type: sink.log\npath: '%s'", other);
    h = sl_harness_new(yaml);
    assert_int_equal(sl_harness_push(h, "{\"id\":\"x\"}"), 0);
    assert_int_equal(sl_harness_run(h), 0);
    sl_harness_destroy(&h);
    snprintf(yaml, sizeof yaml, "type: source.log\npath: '%s'\nfollow: false", other);
    sl_harness_opts o = {.source = 1, .state_dir = state};
    h = sl_harness_new_with(yaml, &o);
    assert_non_null(h);
    sl_harness_checkpoint(h, 5, 0);
    assert_int_not_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 0);
    sl_harness_destroy(&h);
    /* and the right path with that checkpoint works */
    h = source(NULL, state);
    sl_harness_checkpoint(h, 5, 0);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 0);
    sl_harness_destroy(&h);
    sl_harness_rmdir(other);
}

static void test_gap_after_retention(void **st)
{
    assert_int_equal(sink_events(0, 40), 40);
    /* keep about the newest 10 events */
    sl_eventlog *log;
    char err[256];
    sl_eventlog_stats s;
    assert_int_equal(sl_eventlog_open(log_dir, NULL, &log, err, sizeof err), 0);
    assert_int_equal(sl_eventlog_stats_get(log, &s), 0);
    sl_eventlog_close(&log);
    sl_eventlog_opts o = {.max_bytes = s.bytes / 4};
    assert_int_equal(sl_eventlog_open(log_dir, &o, &log, err, sizeof err), 0);
    assert_true(sl_eventlog_retain(log) > 0);
    uint64_t first;
    assert_int_equal(sl_eventlog_bounds(log, &first, NULL), 0);
    sl_eventlog_close(&log);
    assert_true(first >= 25 && first < 40);

    sl_harness *h = source("from: 3", NULL);
    assert_int_equal(sl_harness_run(h), 0);
    expect_events(h, (int)first, 40, NULL);
    assert_int_equal(sl_harness_counter(h, "skipped"), first - 3);
    sl_harness_destroy(&h);
    h = source(NULL, NULL); /* from the start: the first kept, no gap */
    assert_int_equal(sl_harness_run(h), 0);
    expect_events(h, (int)first, 40, NULL);
    assert_int_equal(sl_harness_counter(h, "skipped"), 0);
    sl_harness_destroy(&h);
}

static void test_missing_log(void **st)
{
    /* follow: false on a log that is not there fails at start */
    sl_harness *h = source(NULL, NULL);
    assert_non_null(h); /* init does not look at the disk (sluice validate) */
    assert_int_not_equal(sl_harness_run(h), 0);
    sl_harness_destroy(&h);
}

static void test_config_mistakes(void **st)
{
    static const char *const bad[] = {
        "type: source.log\npath: x\nfrom: middle",
        "type: source.log\npath: x\nfrom: -3",
        "type: source.log\npath: x\ntypes: []",
        "type: source.log\npath: x\npoll: 0s",
        "type: source.log\nfrom: start",
        "type: sink.log\npath: x\nretention: {max_age: soon}",
        "type: sink.log\npath: x\nretention: {max_rows: 5}",
        "type: sink.log\npath: x\nmap_size: 1KiB",
        "type: sink.log\npath: x\nsync: never",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sl_harness_opts o = {.source = strstr(bad[i], "source.") != NULL};
        sl_harness *h = sl_harness_new_with(bad[i], &o);
        if (h)
            fail_msg("accepted: %s", bad[i]);
    }
    sl_harness_opts o = {.source = 1};
    sl_harness *h = sl_harness_new_with("type: source.log\npath: x\nfrom: 12\ntypes: [a, b]\n"
                                        "poll: 1s\nwatermark: {max_out_of_order: 5s}", &o);
    assert_non_null(h);
    sl_harness_destroy(&h);
    h = sl_harness_new("type: sink.log\npath: x\nretention: {max_age: 7d, max_size: 1GiB}\n"
                       "sync: ordered");
    assert_non_null(h);
    sl_harness_destroy(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_events_leave_by_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_are_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_from_and_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoint_equals_one_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_of_another_log_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_after_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_mistakes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
