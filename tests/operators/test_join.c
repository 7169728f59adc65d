/*
 * test_join.c - the join operator through the harness (two input slots):
 * the interval's boundaries (symmetric and {before, after}), many-to-many
 * pairs, the output (fields, or {left, right}; id and time), left joins
 * emitting unmatched events with nulls, null keys, late events, errors,
 * configuration mistakes, and a stream split by a savepoint giving what one
 * run gives. The two inputs reach the join through separate channels, so
 * their interleaving is not fixed: every expectation here holds for any
 * interleaving (outputs are compared as sorted sets). The watermark rules
 * themselves are tested exactly in tests/unit/test_join_buffer.c.
 * Times are seconds after 2026-01-01T00:00:00Z.
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

static const char *const slots[] = {"left", "right", NULL};

static sl_harness *new_join(const char *yaml, const char *bound)
{
    sl_harness_opts o = {.inputs = slots, .max_out_of_order = bound};
    return sl_harness_new_with(yaml, &o);
}

/* Push {"id", "time": 2026-01-01T00:00:00Z + ms, "k": key, "v": v} to slot. */
static void push(sl_harness *h, const char *slot, const char *id, long ms, const char *key, int v)
{
    char ev[256], t[40];
    snprintf(ev, sizeof ev, "{\"id\":\"%s\",\"time\":\"%s\",\"k\":%s,\"v\":%d}", id,
             sl_harness_time(t, ms), key, v);
    assert_int_equal(sl_harness_push_to(h, slot, ev), 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The port's rows, sorted, joined by newlines (caller frees). */
static char *sorted(const sl_harness *h, const char *port)
{
    size_t n = sl_harness_count(h, port), total = 1;
    const char **rows = calloc(n + 1, sizeof *rows);
    assert_non_null(rows);
    for (size_t i = 0; i < n; i++) {
        rows[i] = sl_harness_out(h, port, i);
        total += strlen(rows[i]) + 1;
    }
    qsort(rows, n, sizeof *rows, cmp_str);
    char *s = calloc(1, total);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        strcat(s, rows[i]);
        strcat(s, "\n");
    }
    free(rows);
    return s;
}

#define FIELDS "fields: {k: left.k, l: left.v, r: right.v}\n"

static void test_interval_boundaries(void **st)
{
    sl_harness *h = new_join("type: join\non: {left: k, right: k}\nwithin: 10s\n" FIELDS, NULL);
    assert_non_null(h);
    push(h, "left", "L", 100000, "\"a\"", 1);
    push(h, "right", "r1", 90000, "\"a\"", 1);  /* tl - 10 s: in */
    push(h, "right", "r2", 89999, "\"a\"", 2);  /* 1 ms earlier: out */
    push(h, "right", "r3", 110000, "\"a\"", 3); /* tl + 10 s: in */
    push(h, "right", "r4", 110001, "\"a\"", 4); /* out */
    push(h, "right", "r5", 100000, "\"b\"", 5); /* another key */
    assert_int_equal(sl_harness_run(h), 0);
    char *out = sorted(h, "out");
    assert_string_equal(out, "{\"k\":\"a\",\"l\":1,\"r\":1,\"id\":\"L/r1\","
                             "\"time\":\"2026-01-01T00:01:40Z\"}\n"
                             "{\"k\":\"a\",\"l\":1,\"r\":3,\"id\":\"L/r3\","
                             "\"time\":\"2026-01-01T00:01:50Z\"}\n");
    free(out);
    sl_harness_destroy(&h);
}

static void test_asymmetric_interval(void **st)
{
    sl_harness *h = new_join(
        "type: join\non: k\nwithin: {before: 5s, after: 20s}\nfields: {r: right.v}", NULL);
    assert_non_null(h);
    push(h, "left", "L", 100000, "1", 0);
    push(h, "right", "a", 95000, "1", 1);   /* tl - before: in */
    push(h, "right", "b", 94999, "1", 2);   /* out */
    push(h, "right", "c", 120000, "1", 3);  /* tl + after: in */
    push(h, "right", "d", 120001, "1", 4);  /* out */
    assert_int_equal(sl_harness_run(h), 0);
    char *out = sorted(h, "out");
    assert_string_equal(out, "{\"r\":1,\"id\":\"L/a\",\"time\":\"2026-01-01T00:01:40Z\"}\n"
                             "{\"r\":3,\"id\":\"L/c\",\"time\":\"2026-01-01T00:02:00Z\"}\n");
    free(out);
    sl_harness_destroy(&h);
}

static void test_many_to_many(void **st)
{
    sl_harness *h = new_join("type: join\non: {left: k, right: k}\nwithin: 1h\n"
                             "fields: {p: \"string(left.v) + '-' + string(right.v)\"}",
                             NULL);
    assert_non_null(h);
    for (int i = 0; i < 3; i++)
        push(h, "left", "l", 1000 * i, "\"x\"", i);
    for (int i = 0; i < 2; i++)
        push(h, "right", "r", 500 + 1000 * i, "\"x\"", 10 + i);
    push(h, "right", "r", 0, "\"y\"", 99);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 6);
    char *out = sorted(h, "out");
    for (int l = 0; l < 3; l++)
        for (int r = 10; r < 12; r++) {
            char want[32];
            snprintf(want, sizeof want, "\"p\":\"%d-%d\"", l, r);
            assert_non_null(strstr(out, want));
        }
    free(out);
    sl_harness_destroy(&h);
}

static void test_default_output(void **st)
{
    sl_harness *h = new_join("type: join\non: k\nwithin: 1s", NULL);
    assert_non_null(h);
    push(h, "left", "L", 1000, "7", 1);
    push(h, "right", "R", 1500, "7", 2);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 1);
    assert_string_equal(sl_harness_out(h, "out", 0),
                        "{\"left\":{\"id\":\"L\",\"time\":\"2026-01-01T00:00:01Z\",\"k\":7,\"v\":1},"
                        "\"right\":{\"id\":\"R\",\"time\":\"2026-01-01T00:00:01.500Z\",\"k\":7,"
                        "\"v\":2},\"id\":\"L/R\",\"time\":\"2026-01-01T00:00:01.500Z\"}");
    sl_harness_destroy(&h);
}

static void test_left_join_unmatched(void **st)
{
    sl_harness *h = new_join("type: join\non: k\nwithin: 10s\nkind: left\n" FIELDS, NULL);
    assert_non_null(h);
    push(h, "left", "A", 1000, "1", 1);  /* matched by R */
    push(h, "left", "B", 2000, "2", 2);  /* never matched */
    push(h, "left", "C", 3000, "3", 3);  /* its right is out of the interval */
    push(h, "left", "N", 3000, "null", 4); /* a null key matches nothing */
    push(h, "right", "R", 5000, "1", 10);
    push(h, "right", "S", 30000, "3", 30);
    assert_int_equal(sl_harness_run(h), 0);
    char *out = sorted(h, "out");
    assert_string_equal(out,
                        "{\"k\":1,\"l\":1,\"r\":10,\"id\":\"A/R\",\"time\":\"2026-01-01T00:00:05Z\"}\n"
                        "{\"k\":2,\"l\":2,\"r\":null,\"id\":\"B/\",\"time\":\"2026-01-01T00:00:02Z\"}\n"
                        "{\"k\":3,\"l\":3,\"r\":null,\"id\":\"C/\",\"time\":\"2026-01-01T00:00:03Z\"}\n"
                        "{\"k\":null,\"l\":4,\"r\":null,\"id\":\"N/\","
                        "\"time\":\"2026-01-01T00:00:03Z\"}\n");
    free(out);
    assert_int_equal(sl_harness_counter(h, "null_keys"), 1);
    sl_harness_destroy(&h);
}

static void test_inner_join_drops_unmatched(void **st)
{
    sl_harness *h = new_join("type: join\non: k\nwithin: 10s\n" FIELDS, NULL);
    assert_non_null(h);
    push(h, "left", "B", 2000, "2", 2);
    push(h, "right", "S", 30000, "2", 30);
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 0);
    assert_int_equal(sl_harness_count(h, "late"), 0);
    sl_harness_destroy(&h);
}

/*
 * With a watermark (bound 1 s): after 100 events on each side up to t = 200 s,
 * a right event at t = 0 is far behind whatever either channel has carried.
 */
static void test_late_event(void **st)
{
    sl_harness *h = new_join("type: join\non: k\nwithin: 1s\n" FIELDS, "1s");
    assert_non_null(h);
    for (int i = 0; i < 100; i++) {
        char id[16];
        snprintf(id, sizeof id, "l%d", i);
        push(h, "left", id, 100000 + 1000 * i, "1", i);
        snprintf(id, sizeof id, "r%d", i);
        push(h, "right", id, 100000 + 1000 * i, "1", i);
    }
    push(h, "right", "late", 0, "1", -1);
    assert_int_equal(sl_harness_run(h), 0);
    /* each left pairs with the rights at -1 s, 0 and +1 s: 100 + 2 * 99 pairs */
    assert_int_equal(sl_harness_count(h, "out"), 298);
    assert_int_equal(sl_harness_count(h, "late"), 1);
    const char *late = sl_harness_out(h, "late", 0);
    assert_non_null(strstr(late, "\"reason\":\"late\""));
    assert_non_null(strstr(late, "\"id\":\"late\""));
    assert_int_equal(sl_harness_counter(h, "late"), 1);
    sl_harness_destroy(&h);
}

static void test_errors(void **st)
{
    sl_harness *h = new_join("type: join\non: {left: k, right: data.k}\nwithin: 1s\n"
                             "fields: {x: left.v / right.data.z}",
                             NULL);
    assert_non_null(h);
    push(h, "right", "nokey", 1000, "1", 1); /* no data.k */
    assert_int_equal(sl_harness_push_to(h, "left", "{\"id\":\"notime\",\"k\":1}"), 0);
    push(h, "left", "L", 1000, "1", 1);
    assert_int_equal(sl_harness_push_to(h, "right", "{\"id\":\"R\",\"time\":\"2026-01-01T00:00:01Z\","
                                                    "\"data\":{\"k\":1,\"z\":0}}"),
                     0); /* pairs with L; the field divides by zero */
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 0);
    char *errs = sorted(h, "errors");
    assert_non_null(strstr(errs, "on.right: no such key"));
    assert_non_null(strstr(errs, "no event time"));
    assert_non_null(strstr(errs, "field 'x': "));
    assert_int_equal(sl_harness_count(h, "errors"), 3);
    free(errs);
    sl_harness_destroy(&h);
}

static void test_config_errors(void **st)
{
    static const char *const bad[] = {
        "type: join\nwithin: 1s",                                  /* no on */
        "type: join\non: k",                                       /* no within */
        "type: join\non: {left: k}\nwithin: 1s",                   /* one side */
        "type: join\non: k\nwithin: soon",                         /* not a duration */
        "type: join\non: k\nwithin: {before: 1s}",                 /* after missing */
        "type: join\non: k\nwithin: {before: 1s, after: 2s, x: 1}", /* unknown key */
        "type: join\non: k\nwithin: 1s\nkind: outer",              /* not inner/left */
        "type: join\non: k\nwithin: 1s\nfields: {a: middle.x}",    /* unknown variable */
        "type: join\non: \"k +\"\nwithin: 1s",                      /* syntax */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sl_harness *h = new_join(bad[i], NULL);
        if (h)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        assert_null(h);
    }
}

/* ------------------------------------------------------------ savepoints */

typedef struct ev {
    const char *slot, *id;
    long ms;
    int key;
} ev;

/* Orders (left) and payments (right) of 40 keys, 0-30 s apart, some unmatched. */
static size_t make_events(ev *out)
{
    static char ids[200][16];
    size_t n = 0;
    for (int k = 0; k < 40; k++) {
        snprintf(ids[n], sizeof ids[n], "o%d", k);
        out[n] = (ev){"left", ids[n], 10000L * k, k};
        n++;
        if (k % 5 == 4)
            continue; /* no payment */
        snprintf(ids[n], sizeof ids[n], "p%d", k);
        out[n] = (ev){"right", ids[n], 10000L * k + 1000L * (k % 31), k};
        n++;
    }
    return n;
}

/* One harness over evs[from, to) on state_dir dir; its out rows appended to out. */
static void run_part(const char *dir, const ev *evs, size_t from, size_t to, uint64_t restore,
                     uint64_t snapshot, sl_harness_rows *out)
{
    sl_harness_opts o = {.inputs = slots, .state_dir = dir};
    sl_harness *h = sl_harness_new_with("type: join\non: k\nwithin: 20s\nkind: left\n" FIELDS, &o);
    assert_non_null(h);
    sl_harness_checkpoint(h, restore, snapshot);
    for (size_t i = from; i < to; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", evs[i].key);
        push(h, evs[i].slot, evs[i].id, evs[i].ms, key, evs[i].key);
    }
    assert_int_equal(sl_harness_run(h), 0);
    sl_harness_rows_collect(out, h, "out");
    sl_harness_destroy(&h); /* before the next harness: a run holds the state_dir's lock */
}

static void test_savepoint_split(void **st)
{
    ev evs[200];
    size_t n = make_events(evs);
    char dir[64];
    assert_non_null(sl_harness_tmpdir(dir));
    sl_harness_rows whole = {0}, split = {0};
    run_part(dir, evs, 0, n, 0, 0, &whole);
    run_part(dir, evs, 0, n / 2, 0, 1, &split);
    run_part(dir, evs, n / 2, n, 1, 0, &split);
    /* the union of the two runs' rows is the whole run's */
    assert_int_equal(whole.n, 40); /* 32 pairs + 8 unmatched orders */
    const char *d = sl_harness_rows_differ(&split, &whole, 1);
    if (d)
        fail_msg("split vs whole: %s", d);
    /* restoring from a checkpoint that is not there is an error */
    sl_harness_opts o = {.inputs = slots, .state_dir = dir};
    sl_harness *h = sl_harness_new_with("type: join\non: k\nwithin: 20s\nkind: left\n" FIELDS, &o);
    assert_non_null(h);
    sl_harness_checkpoint(h, 7, 0);
    push(h, "left", "x", 0, "1", 1);
    assert_int_not_equal(sl_harness_run(h), 0);
    sl_harness_destroy(&h);
    sl_harness_rows_free(&whole);
    sl_harness_rows_free(&split);
    assert_int_equal(sl_harness_rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interval_boundaries), cmocka_unit_test(test_asymmetric_interval),
        cmocka_unit_test(test_many_to_many),        cmocka_unit_test(test_default_output),
        cmocka_unit_test(test_left_join_unmatched), cmocka_unit_test(test_inner_join_drops_unmatched),
        cmocka_unit_test(test_late_event),          cmocka_unit_test(test_errors),
        cmocka_unit_test(test_config_errors),       cmocka_unit_test(test_savepoint_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
