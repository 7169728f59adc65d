/*
 * test_dedup.c - the dedup operator through the harness.
 *
 * Expectations: the first event of a key passes unchanged and in order, later ones within
 * the horizon leave by `duplicates` in a drop envelope (reason, detail "first seen ...",
 * first_time) and are counted; the key is `id` by default or any expression (keys compare
 * by value as msgpack); duplicates inside one batch are caught; a filter far too small for
 * its keys (capacity 10, error rate 0.5, 20k keys) never drops a new event and still
 * catches every re-send, with false positives counted, and so does a 1 KiB memory budget
 * that keeps writing the keys to LMDB (and a 64 KiB one with keys out of order, so that
 * each flush sorts hundreds); long keys (over the LMDB key limit) work both ways.
 * With a watermarked feed (one event per batch): a re-send beyond the horizon passes, one
 * exactly at it or within is caught (also from an older generation, also when late), a
 * generation is dropped and with it its keys (a late re-send of a dropped key passes, as
 * docs/dedup.md says). Keys that fail to evaluate go to `errors`. Configuration mistakes are
 * refused and their valid neighbours accepted. State: a stream split by a savepoint (run 1
 * snapshots, run 2 restores on the same state_dir) gives what one run gives; records that a
 * run wrote after the checkpoint it restored are gone when that checkpoint is restored again
 * (a replay after a crash sees its events as new), and what it dropped or replaced is back;
 * an unknown checkpoint, or one written for another key, fails the run. Times are seconds
 * after 2026-01-01T00:00:00Z.
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

/* Push {"id": id, "time": t} (t in ms; t < 0: no time) plus `more` (",\"k\":1" or ""). */
static void push_ev(sl_harness *h, const char *id, long ms, const char *more)
{
    char ev[1024], t[40];
    if (ms >= 0)
        snprintf(ev, sizeof ev, "{\"id\":\"%s\",\"time\":\"%s\"%s}", id, sl_harness_time(t, ms), more);
    else
        snprintf(ev, sizeof ev, "{\"id\":\"%s\"%s}", id, more);
    assert_int_equal(sl_harness_push(h, ev), 0);
}

/* The ids (the "id" attribute right after '{' or after "original":{) of port's events, in order. */
static void expect_ids(const sl_harness *h, const char *port, const char *const *ids, size_t n)
{
    if (sl_harness_count(h, port) != n)
        fail_msg("port %s: %zu events, expected %zu", port, sl_harness_count(h, port), n);
    for (size_t i = 0; i < n; i++) {
        const char *ev = sl_harness_out(h, port, i), *o = strstr(ev, "\"original\":");
        char want[128];
        snprintf(want, sizeof want, "{\"id\":\"%s\"", ids[i]);
        if (strncmp(o ? o + 11 : ev, want, strlen(want)) != 0)
            fail_msg("port %s, event %zu: %s, expected id %s", port, i, ev, ids[i]);
    }
}

/* ------------------------------------------------------------ the basics */

static void test_default_key_is_id(void **st)
{
    sl_harness *h = sl_harness_new("type: dedup");
    assert_non_null(h);
    push_ev(h, "a", 0, ",\"v\":1");
    push_ev(h, "b", 1000, ",\"v\":2");
    push_ev(h, "a", 2000, ",\"v\":3"); /* same id, other content: a duplicate all the same */
    push_ev(h, "c", 3000, "");
    push_ev(h, "b", 4000, "");
    assert_int_equal(sl_harness_run(h), 0);
    static const char *const out[] = {"a", "b", "c"}, *const dup[] = {"a", "b"};
    expect_ids(h, "out", out, 3);
    expect_ids(h, "duplicates", dup, 2);
    /* passed unchanged */
    assert_string_equal(sl_harness_out(h, "out", 0),
                        "{\"id\":\"a\",\"time\":\"2026-01-01T00:00:00Z\",\"v\":1}");
    assert_int_equal(sl_harness_counter(h, "duplicates"), 2);
    assert_int_equal(sl_harness_count(h, "errors"), 0);
    sl_harness_destroy(&h);
}

static void test_custom_key_expression(void **st)
{
    /* not a field path: an expression (fine at parallelism 1) */
    sl_harness *h = sl_harness_new("type: dedup\nkey: 'data.cust + \"/\" + string(data.n)'");
    assert_non_null(h);
    push_ev(h, "e1", 0, ",\"data\":{\"cust\":\"x\",\"n\":1}");
    push_ev(h, "e2", 0, ",\"data\":{\"cust\":\"x\",\"n\":2}");
    push_ev(h, "e3", 0, ",\"data\":{\"cust\":\"x\",\"n\":1}"); /* other id, same key */
    push_ev(h, "e4", 0, ",\"data\":{\"cust\":\"y\",\"n\":1}");
    assert_int_equal(sl_harness_run(h), 0);
    static const char *const out[] = {"e1", "e2", "e4"}, *const dup[] = {"e3"};
    expect_ids(h, "out", out, 3);
    expect_ids(h, "duplicates", dup, 1);
    sl_harness_destroy(&h);

    /* keys compare as values: 1 and "1" are two keys, and so are 1 and 1.5 */
    h = sl_harness_new("type: dedup\nkey: data.k");
    assert_non_null(h);
    push_ev(h, "f1", -1, ",\"data\":{\"k\":1}");
    push_ev(h, "f2", -1, ",\"data\":{\"k\":\"1\"}");
    push_ev(h, "f3", -1, ",\"data\":{\"k\":1.5}");
    push_ev(h, "f4", -1, ",\"data\":{\"k\":1}");
    push_ev(h, "f5", -1, ",\"data\":{\"k\":{\"a\":[1,2]}}");
    push_ev(h, "f6", -1, ",\"data\":{\"k\":{\"a\":[1,2]}}");
    assert_int_equal(sl_harness_run(h), 0);
    static const char *const out2[] = {"f1", "f2", "f3", "f5"}, *const dup2[] = {"f4", "f6"};
    expect_ids(h, "out", out2, 4);
    expect_ids(h, "duplicates", dup2, 2);
    sl_harness_destroy(&h);
}

/* Events queued together go in batches of up to 1024: re-sends right after the original. */
static void test_duplicates_inside_one_batch(void **st)
{
    sl_harness *h = sl_harness_new("type: dedup");
    assert_non_null(h);
    char id[16];
    for (int i = 0; i < 600; i++) {
        snprintf(id, sizeof id, "k%d", i);
        push_ev(h, id, -1, "");
        push_ev(h, id, -1, ""); /* the next event of the same batch */
    }
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 600);
    assert_int_equal(sl_harness_count(h, "duplicates"), 600);
    for (int i = 0; i < 600; i++) {
        char want[32];
        snprintf(want, sizeof want, "{\"id\":\"k%d\"}", i);
        assert_string_equal(sl_harness_out(h, "out", (size_t)i), want);
    }
    sl_harness_destroy(&h);
}

static void test_duplicate_envelope(void **st)
{
    sl_harness *h = sl_harness_new("type: dedup");
    assert_non_null(h);
    push_ev(h, "a", 1500, ",\"v\":1");
    push_ev(h, "a", 7000, ",\"v\":2");
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "duplicates"), 1);
    const char *env = sl_harness_out(h, "duplicates", 0);
    assert_non_null(strstr(env, "{\"reason\":\"duplicate\",\"operator\":\"op\","
                                "\"detail\":\"first seen 2026-01-01T00:00:01.500Z\",\"time\":"));
    assert_non_null(strstr(env, ",\"original\":{\"id\":\"a\",\"time\":\"2026-01-01T00:00:07Z\","
                                "\"v\":2},\"first_time\":\"2026-01-01T00:00:01.500Z\"}"));
    assert_int_equal(sl_harness_counter(h, "duplicates"), 1);
    sl_harness_destroy(&h);
}

static void test_key_errors_go_to_errors(void **st)
{
    sl_harness *h = sl_harness_new("type: dedup\nkey: data.orderId");
    assert_non_null(h);
    push_ev(h, "a", 0, ",\"data\":{\"orderId\":\"o1\"}");
    push_ev(h, "b", 0, ",\"other\":1"); /* no data.orderId */
    push_ev(h, "c", 0, ",\"data\":{\"orderId\":\"o1\"}");
    push_ev(h, "d", 0, ",\"data\":{\"orderId\":\"o2\"}");
    assert_int_equal(sl_harness_run(h), 0);
    static const char *const out[] = {"a", "d"}, *const dup[] = {"c"}, *const err[] = {"b"};
    expect_ids(h, "out", out, 2);
    expect_ids(h, "duplicates", dup, 1);
    expect_ids(h, "errors", err, 1);
    const char *env = sl_harness_out(h, "errors", 0);
    assert_non_null(strstr(env, "{\"reason\":\"key\",\"operator\":\"op\",\"detail\":\""));
    assert_null(strstr(env, "\"detail\":\"\"")); /* says why */
    assert_int_equal(sl_harness_counter(h, "key_errors"), 1);
    sl_harness_destroy(&h);
}

/* ---------------------------------------------- a filter far too small, and LMDB */

#define TINY_KEYS 20000

/*
 * 20k distinct ids with about 1% re-sends of an earlier id: every id passes exactly once
 * and every re-send is caught. The filter (one 64-byte block) says "maybe" to nearly
 * everything, so the exact check decides, and the false positives are counted.
 */
/* The i-th distinct id: in order, or scrambled (so that a flush has to sort its keys). */
static unsigned id_no(unsigned i, int scrambled) { return scrambled ? i * 7919u % TINY_KEYS : i; }

static void expect_exact_with_tiny_filter(const char *yaml, int expect_lmdb, int scrambled)
{
    sl_harness *h = sl_harness_new(yaml);
    assert_non_null(h);
    uint64_t s = 42;
    size_t resends = 0;
    char id[16];
    for (unsigned i = 0; i < TINY_KEYS; i++) {
        snprintf(id, sizeof id, "e%05u", id_no(i, scrambled));
        push_ev(h, id, -1, "");
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        if ((s >> 33) % 100 == 0) { /* re-send one of the ids so far */
            snprintf(id, sizeof id, "e%05u", id_no((unsigned)((s >> 13) % (i + 1)), scrambled));
            push_ev(h, id, -1, ",\"resend\":true");
            resends++;
        }
    }
    assert_int_equal(sl_harness_run(h), 0);
    assert_true(resends > 100);
    assert_int_equal(sl_harness_count(h, "out"), TINY_KEYS);
    for (unsigned i = 0; i < TINY_KEYS; i++) { /* each id once, in order */
        char want[32];
        snprintf(want, sizeof want, "{\"id\":\"e%05u\"}", id_no(i, scrambled));
        if (strcmp(sl_harness_out(h, "out", i), want) != 0)
            fail_msg("out %u: %s, expected %s", i, sl_harness_out(h, "out", i), want);
    }
    assert_int_equal(sl_harness_count(h, "duplicates"), resends);
    for (size_t i = 0; i < resends; i++)
        assert_non_null(strstr(sl_harness_out(h, "duplicates", i), "\"resend\":true"));
    assert_int_equal(sl_harness_counter(h, "duplicates"), resends);
    unsigned long long fps = sl_harness_counter(h, "bloom_false_positives");
    print_message("%s: %llu bloom false positives, %llu LMDB lookups, %llu flushes\n", yaml, fps,
                  sl_harness_counter(h, "lmdb_lookups"), sl_harness_counter(h, "flushes"));
    assert_true(fps > TINY_KEYS / 2);
    assert_true(sl_harness_counter(h, "bloom_hits") >= fps + resends);
    if (expect_lmdb) {
        assert_true(sl_harness_counter(h, "flushes") > 10);
        assert_true(sl_harness_counter(h, "lmdb_lookups") > TINY_KEYS / 2);
    } else {
        assert_int_equal(sl_harness_counter(h, "flushes"), 0);
    }
    sl_harness_destroy(&h);
}

static void test_tiny_filter_never_drops_a_new_event(void **st)
{
    expect_exact_with_tiny_filter("type: dedup\ncapacity: 10\nerror_rate: 0.5", 0, 0);
}

static void test_tiny_filter_and_memory_through_lmdb(void **st)
{
    expect_exact_with_tiny_filter("type: dedup\ncapacity: 10\nerror_rate: 0.5\nmemory: 1KiB", 1, 0);
    /* keys out of order, a few hundred a flush: written out sorted, none lost */
    expect_exact_with_tiny_filter("type: dedup\ncapacity: 10\nerror_rate: 0.5\nmemory: 64KiB", 1,
                                  1);
}

/* Keys longer than LMDB takes as keys: stored by prefix + hash, the whole key in the value. */
static void test_long_keys(void **st)
{
    static const char *const yaml[] = {"type: dedup\nkey: data.blob",
                                       "type: dedup\nkey: data.blob\nmemory: 1KiB\ncapacity: 10"};
    for (size_t y = 0; y < 2; y++) {
        sl_harness *h = sl_harness_new(yaml[y]);
        assert_non_null(h);
        char blob[700], more[800], id[16];
        memset(blob, 'x', 600);
        for (int i = 0; i < 60; i++) { /* 30 blobs sharing 590 bytes, each sent twice */
            snprintf(blob + 590, sizeof blob - 590, "%010d", i % 30);
            snprintf(more, sizeof more, ",\"data\":{\"blob\":\"%s\"}", blob);
            snprintf(id, sizeof id, "L%d", i);
            push_ev(h, id, -1, more);
        }
        assert_int_equal(sl_harness_run(h), 0);
        assert_int_equal(sl_harness_count(h, "out"), 30);
        assert_int_equal(sl_harness_count(h, "duplicates"), 30);
        for (int i = 0; i < 30; i++) {
            char want[16];
            snprintf(want, sizeof want, "{\"id\":\"L%d\"", i);
            assert_int_equal(strncmp(sl_harness_out(h, "out", (size_t)i), want, strlen(want)), 0);
        }
        if (y == 1)
            assert_true(sl_harness_counter(h, "lmdb_lookups") > 0);
        sl_harness_destroy(&h);
    }
}

/* ---------------------------------------------------------- the horizon */

/*
 * horizon 10s: generations rotate every 5 s of watermark (max_out_of_order 1s) and one is
 * dropped once watermark - 10 s passes the latest time it holds.
 */
static void test_horizon_and_generations(void **st)
{
    sl_harness *h = sl_harness_new_with("type: dedup\nhorizon: 10s",
                                        &(sl_harness_opts){.max_out_of_order = "1s"});
    assert_non_null(h);
    char id[16];
    push_ev(h, "a", 0, "");
    push_ev(h, "b", 1000, "");
    for (int t = 2; t <= 8; t++) {
        snprintf(id, sizeof id, "f%d", t);
        push_ev(h, id, t * 1000, "");
    }
    push_ev(h, "a", 9000, ",\"n\":\"a9\"");   /* 9 s after a: within; a is in an older generation */
    push_ev(h, "a", 11000, ",\"n\":\"a11\""); /* 11 s after a@0: beyond, passes */
    push_ev(h, "b", 11000, ",\"n\":\"b11\""); /* exactly 10 s after b@1: within */
    push_ev(h, "a", 12000, ",\"n\":\"a12\""); /* 1 s after a@11, which passed: within */
    for (int t = 12; t <= 40; t++) {
        snprintf(id, sizeof id, "g%d", t);
        push_ev(h, id, t * 1000, "");
        if (t == 35)
            push_ev(h, "x", 35000, "");
    }
    push_ev(h, "x", 33000, ",\"n\":\"x33\""); /* late, before its original: within */
    /* late, 7 s after b@1, but the generation that held b was dropped (docs/dedup.md) */
    push_ev(h, "b", 8000, ",\"n\":\"b8\"");
    assert_int_equal(sl_harness_run(h), 0);

    assert_int_equal(sl_harness_count(h, "duplicates"), 4);
    static const char *const dup[] = {"a", "b", "a", "x"};
    expect_ids(h, "duplicates", dup, 4);
    assert_non_null(strstr(sl_harness_out(h, "duplicates", 0), "\"n\":\"a9\"},\"first_time\":"
                                                              "\"2026-01-01T00:00:00Z\"}"));
    assert_non_null(strstr(sl_harness_out(h, "duplicates", 1), "\"n\":\"b11\"},\"first_time\":"
                                                              "\"2026-01-01T00:00:01Z\"}"));
    assert_non_null(strstr(sl_harness_out(h, "duplicates", 2), "\"n\":\"a12\"},\"first_time\":"
                                                              "\"2026-01-01T00:00:11Z\"}"));
    assert_non_null(strstr(sl_harness_out(h, "duplicates", 3), "\"n\":\"x33\"},\"first_time\":"
                                                              "\"2026-01-01T00:00:35Z\"}"));
    /* a, b, f2..f8, a@11, g12..g40, x, and the late b */
    size_t n_out = sl_harness_count(h, "out");
    assert_int_equal(n_out, 2 + 7 + 1 + 29 + 1 + 1);
    int a11 = 0, b8 = 0;
    for (size_t i = 0; i < n_out; i++) {
        a11 += strstr(sl_harness_out(h, "out", i), "\"n\":\"a11\"") != NULL;
        b8 += strstr(sl_harness_out(h, "out", i), "\"n\":\"b8\"") != NULL;
    }
    assert_int_equal(a11, 1);
    assert_int_equal(b8, 1);
    unsigned long long rot = sl_harness_counter(h, "rotations"),
                       dropped = sl_harness_counter(h, "generations_dropped"),
                       expired = sl_harness_counter(h, "expired");
    print_message("rotations %llu, generations dropped %llu, keys expired %llu\n", rot, dropped,
                  expired);
    assert_true(rot >= 6);          /* the watermark went from -1 s to 39 s */
    assert_true(dropped >= 4);
    assert_true(expired >= 20);
    assert_true(dropped <= rot);
    sl_harness_destroy(&h);
}

/* Without a watermark nothing ages out, however far apart the times. */
static void test_no_watermark_no_ageing(void **st)
{
    sl_harness *h = sl_harness_new("type: dedup\nhorizon: 10s");
    assert_non_null(h);
    push_ev(h, "a", 0, "");
    push_ev(h, "a", 5000, "");    /* within */
    push_ev(h, "a", 3600000, ""); /* an hour later: beyond the horizon, passes */
    push_ev(h, "a", 3605000, ""); /* within the horizon of the one that passed */
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 2);
    assert_int_equal(sl_harness_count(h, "duplicates"), 2);
    assert_int_equal(sl_harness_counter(h, "rotations"), 0);
    assert_int_equal(sl_harness_counter(h, "generations_dropped"), 0);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------ configuration */

static void test_bad_configs(void **st)
{
    static const char *const bad[] = {
        "type: dedup\ncapacity: 0",
        "type: dedup\ncapacity: -5",
        "type: dedup\ncapacity: many",
        "type: dedup\nerror_rate: 0",
        "type: dedup\nerror_rate: 1",
        "type: dedup\nerror_rate: 0.6",
        "type: dedup\nerror_rate: -0.01",
        "type: dedup\nhorizon: 0",
        "type: dedup\nhorizon: 0s",
        "type: dedup\nhorizon: soon",
        "type: dedup\nmemory: 0",
        "type: dedup\nkey: 'id +'",
        "type: dedup\ncapacity: 1000000000000000\nerror_rate: 0.000001",
        "type: dedup\nwindow: 1h",
    };
    assert_int_equal(sl_harness_config_mismatches(bad, sizeof bad / sizeof *bad, 0), 0);
}

static void test_good_configs(void **st)
{
    static const char *const good[] = {
        "type: dedup",
        "type: dedup\nkey: id\ncapacity: 1000000\nerror_rate: 0.01\nhorizon: 24h",
        "type: dedup\ncapacity: 1\nerror_rate: 0.5\nhorizon: 1ns\nmemory: 1",
        "type: dedup\nerror_rate: 0.000001\nmemory: 1GiB",
        "type: dedup\nkey: data.customerId",
    };
    assert_int_equal(sl_harness_config_mismatches(good, sizeof good / sizeof *good, 1), 0);
}

/* ------------------------------------------------------------ state */

/* a and b hold the same rows, in the same order. */
static void expect_same_rows(const char *what, sl_harness_rows *a, sl_harness_rows *b)
{
    const char *d = sl_harness_rows_differ(a, b, 0);
    if (d)
        fail_msg("%s: %s", what, d);
}

typedef struct run_spec {
    const char *yaml;
    const char *state_dir;
    uint64_t restore_id, snapshot_id;
} run_spec;

#define SPLIT_EVENTS 600
#define SPLIT_AT 300

/*
 * Event i: time i * 250 ms; every 7th re-sends the id of an event 10 to 89 events back
 * (2.5 to 22 s: around the horizon of 15 s), the others are new. Caller frees.
 */
static char **split_events(void)
{
    char **ev = calloc(SPLIT_EVENTS, sizeof *ev);
    assert_non_null(ev);
    uint64_t s = 9;
    for (int i = 0; i < SPLIT_EVENTS; i++) {
        char t[40];
        int id = i;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        if (i % 7 == 6 && i >= 90)
            id = i - 10 - (int)((s >> 33) % 80);
        ev[i] = malloc(128);
        assert_non_null(ev[i]);
        snprintf(ev[i], 128, "{\"id\":\"s%d\",\"time\":\"%s\",\"i\":%d}", id,
                 sl_harness_time(t, (long)i * 250), i);
    }
    return ev;
}

/* One watermarked harness over events[from, to); its out and duplicates appended. */
static void run_into(const run_spec *rs, char *const *events, size_t from, size_t to,
                     sl_harness_rows *out, sl_harness_rows *dup)
{
    sl_harness *h = sl_harness_new_with(
        rs->yaml, &(sl_harness_opts){.state_dir = rs->state_dir, .max_out_of_order = "1s"});
    assert_non_null(h);
    sl_harness_checkpoint(h, rs->restore_id, rs->snapshot_id);
    for (size_t i = from; i < to; i++)
        assert_int_equal(sl_harness_push(h, events[i]), 0);
    assert_int_equal(sl_harness_run(h), 0);
    sl_harness_rows_collect(out, h, "out");
    sl_harness_rows_collect(dup, h, "duplicates");
    sl_harness_destroy(&h); /* before the next harness: a run holds the state_dir's lock */
}

static void expect_split_equals_whole(const char *yaml)
{
    char **ev = split_events();
    sl_harness_rows whole = {0}, whole_dup = {0}, split = {0}, split_dup = {0};
    run_into(&(run_spec){.yaml = yaml}, ev, 0, SPLIT_EVENTS, &whole, &whole_dup);
    char dir[64];
    assert_non_null(sl_harness_tmpdir(dir));
    run_into(&(run_spec){.yaml = yaml, .state_dir = dir, .snapshot_id = 7}, ev, 0, SPLIT_AT,
             &split, &split_dup);
    size_t dup_before = split_dup.n;
    run_into(&(run_spec){.yaml = yaml, .state_dir = dir, .restore_id = 7}, ev, SPLIT_AT,
             SPLIT_EVENTS, &split, &split_dup);
    sl_harness_rmdir(dir);
    /* duplicates on both sides of the split, and re-sends beyond the horizon that passed */
    print_message("%s: %zu out, %zu duplicates (%zu before the split)\n", yaml, whole.n,
                  whole_dup.n, dup_before);
    assert_true(dup_before > 5 && split_dup.n - dup_before > 5);
    assert_true(whole.n + whole_dup.n == SPLIT_EVENTS && whole.n > SPLIT_EVENTS * 6 / 7 + 5);
    expect_same_rows("savepoint + restore against one run (out)", &whole, &split);
    expect_same_rows("savepoint + restore against one run (duplicates)", &whole_dup, &split_dup);
    sl_harness_rows_free(&whole);
    sl_harness_rows_free(&whole_dup);
    sl_harness_rows_free(&split);
    sl_harness_rows_free(&split_dup);
    for (int i = 0; i < SPLIT_EVENTS; i++)
        free(ev[i]);
    free(ev);
}

static void test_savepoint_split_equals_whole(void **st)
{
    expect_split_equals_whole("type: dedup\nhorizon: 15s");
}

static void test_savepoint_split_equals_whole_through_lmdb(void **st)
{
    expect_split_equals_whole("type: dedup\nhorizon: 15s\nmemory: 1KiB\ncapacity: 50");
}

/*
 * A run restores checkpoint 7 and writes records (memory: 1KiB) for 15 s of event time (two
 * rotations, generations dropped) but ends without a new checkpoint, as a crash would leave
 * it. Restoring 7 again and replaying the same events must give the same result: that run's
 * records are not part of checkpoint 7, and what it dropped is still there.
 */
static void test_restore_forgets_records_after_the_checkpoint(void **st)
{
    const char *yaml = "type: dedup\nhorizon: 15s\nmemory: 1KiB";
    char **ev = split_events();
    char dir[64];
    assert_non_null(sl_harness_tmpdir(dir));
    sl_harness_rows a = {0}, a_dup = {0}, b = {0}, b_dup = {0}, c = {0}, c_dup = {0};
    run_into(&(run_spec){.yaml = yaml, .state_dir = dir, .snapshot_id = 7}, ev, 0, SPLIT_AT, &a,
             &a_dup);
    run_into(&(run_spec){.yaml = yaml, .state_dir = dir, .restore_id = 7}, ev, SPLIT_AT,
             SPLIT_AT + 60, &b, &b_dup);
    run_into(&(run_spec){.yaml = yaml, .state_dir = dir, .restore_id = 7}, ev, SPLIT_AT,
             SPLIT_AT + 60, &c, &c_dup);
    sl_harness_rmdir(dir);
    assert_true(b.n > 40 && b_dup.n > 2);
    expect_same_rows("replay after restore (out)", &b, &c);
    expect_same_rows("replay after restore (duplicates)", &b_dup, &c_dup);
    sl_harness_rows_free(&a);
    sl_harness_rows_free(&a_dup);
    sl_harness_rows_free(&b);
    sl_harness_rows_free(&b_dup);
    sl_harness_rows_free(&c);
    sl_harness_rows_free(&c_dup);
    for (int i = 0; i < SPLIT_EVENTS; i++)
        free(ev[i]);
    free(ev);
}

/*
 * Without a watermark (one generation): a@0 passes and is checkpointed; the next run sees a
 * an hour later (beyond the horizon: it passes and replaces a's record, written out by the
 * 1 KiB budget) and ends without a checkpoint. Restoring the checkpoint again puts a@0 back:
 * a@5 s is then a duplicate of a@0 (not new, and not a duplicate of a@1h).
 */
static void test_restore_puts_back_replaced_records(void **st)
{
    const char *yaml = "type: dedup\nhorizon: 1m\nmemory: 1KiB";
    char dir[64], id[16];
    assert_non_null(sl_harness_tmpdir(dir));
    sl_harness *h = sl_harness_new_with(yaml, &(sl_harness_opts){.state_dir = dir});
    assert_non_null(h);
    sl_harness_checkpoint(h, 0, 7);
    push_ev(h, "a", 0, "");
    assert_int_equal(sl_harness_run(h), 0);
    sl_harness_destroy(&h);

    h = sl_harness_new_with(yaml, &(sl_harness_opts){.state_dir = dir});
    assert_non_null(h);
    sl_harness_checkpoint(h, 7, 0);
    push_ev(h, "a", 3600000, "");
    for (int i = 0; i < 100; i++) { /* more than 1 KiB holds: a's new record is written out */
        snprintf(id, sizeof id, "f%d", i);
        push_ev(h, id, 3600000, "");
    }
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 101);
    assert_true(sl_harness_counter(h, "flushes") > 0);
    sl_harness_destroy(&h);

    h = sl_harness_new_with(yaml, &(sl_harness_opts){.state_dir = dir});
    assert_non_null(h);
    sl_harness_checkpoint(h, 7, 0);
    push_ev(h, "a", 5000, "");
    push_ev(h, "f1", 3600000, ""); /* new again: that run's records are gone */
    assert_int_equal(sl_harness_run(h), 0);
    static const char *const out[] = {"f1"}, *const dup[] = {"a"};
    expect_ids(h, "out", out, 1);
    expect_ids(h, "duplicates", dup, 1);
    assert_non_null(strstr(sl_harness_out(h, "duplicates", 0),
                           "\"first_time\":\"2026-01-01T00:00:00Z\"}"));
    sl_harness_destroy(&h);
    sl_harness_rmdir(dir);
}

/* Restoring fails for a checkpoint that is not there, or one written for another key. */
static void test_restore_refused(void **st)
{
    char dir[64];
    assert_non_null(sl_harness_tmpdir(dir));
    sl_harness *h = sl_harness_new_with("type: dedup", &(sl_harness_opts){.state_dir = dir});
    assert_non_null(h);
    sl_harness_checkpoint(h, 0, 3);
    push_ev(h, "a", 0, "");
    assert_int_equal(sl_harness_run(h), 0);
    sl_harness_destroy(&h);

    h = sl_harness_new_with("type: dedup", &(sl_harness_opts){.state_dir = dir});
    assert_non_null(h);
    sl_harness_checkpoint(h, 99, 0); /* holds 3, not 99 */
    push_ev(h, "a", 0, "");
    assert_int_not_equal(sl_harness_run(h), 0);
    sl_harness_destroy(&h);

    h = sl_harness_new_with("type: dedup\nkey: data.x", &(sl_harness_opts){.state_dir = dir});
    assert_non_null(h);
    sl_harness_checkpoint(h, 3, 0); /* written for key id */
    push_ev(h, "a", 0, ",\"data\":{\"x\":1}");
    assert_int_not_equal(sl_harness_run(h), 0);
    sl_harness_destroy(&h);

    h = sl_harness_new_with("type: dedup", &(sl_harness_opts){.state_dir = dir});
    assert_non_null(h);
    sl_harness_checkpoint(h, 3, 0); /* the right one: a is remembered */
    push_ev(h, "a", 0, "");
    push_ev(h, "b", 0, "");
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "out"), 1);
    assert_int_equal(sl_harness_count(h, "duplicates"), 1);
    sl_harness_destroy(&h);
    sl_harness_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_key_is_id),
        cmocka_unit_test(test_custom_key_expression),
        cmocka_unit_test(test_duplicates_inside_one_batch),
        cmocka_unit_test(test_duplicate_envelope),
        cmocka_unit_test(test_key_errors_go_to_errors),
        cmocka_unit_test(test_tiny_filter_never_drops_a_new_event),
        cmocka_unit_test(test_tiny_filter_and_memory_through_lmdb),
        cmocka_unit_test(test_long_keys),
        cmocka_unit_test(test_horizon_and_generations),
        cmocka_unit_test(test_no_watermark_no_ageing),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_good_configs),
        cmocka_unit_test(test_savepoint_split_equals_whole),
        cmocka_unit_test(test_savepoint_split_equals_whole_through_lmdb),
        cmocka_unit_test(test_restore_forgets_records_after_the_checkpoint),
        cmocka_unit_test(test_restore_puts_back_replaced_records),
        cmocka_unit_test(test_restore_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
