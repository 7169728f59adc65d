/*
 * test_join_buffer.c - the join's waiting events: probes see exactly the
 * entries of a key and side within [lo, hi], in arrival order; expiry takes
 * entries with expire < watermark, earliest first, and nothing else; the key
 * table survives growth and removals in any order (backward-shift deletion);
 * chunks come back when their entries are gone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "join_buffer.h"

static sl_join_entry *add(sl_join_buffer *jb, int side, const char *key, int64_t t, int64_t exp,
                          const char *ev)
{
    sl_join_entry *e = sl_join_buffer_add(jb, side, sl_hash_bytes(key, strlen(key)), key,
                                          strlen(key), t, exp, ev, strlen(ev));
    assert_non_null(e);
    return e;
}

typedef struct seen {
    char text[512];
    int stop_at;
    int n;
} seen;

static int record(void *arg, sl_join_entry *e)
{
    seen *s = arg;
    size_t l = strlen(s->text);
    snprintf(s->text + l, sizeof s->text - l, "%.*s ", (int)e->len, (const char *)e->event);
    return ++s->n == s->stop_at;
}

static void probe(sl_join_buffer *jb, int side, const char *key, int64_t lo, int64_t hi, seen *s)
{
    memset(s, 0, sizeof *s);
    sl_join_buffer_probe(jb, side, sl_hash_bytes(key, strlen(key)), key, strlen(key), lo, hi,
                         record, s);
}

static void test_probe_range_and_order(void **st)
{
    sl_join_buffer jb;
    sl_join_buffer_init(&jb);
    add(&jb, SL_JOIN_RIGHT, "a", 10, 100, "r10");
    add(&jb, SL_JOIN_RIGHT, "a", 5, 100, "r5");
    add(&jb, SL_JOIN_RIGHT, "a", 20, 100, "r20");
    add(&jb, SL_JOIN_LEFT, "a", 10, 100, "l10");
    add(&jb, SL_JOIN_RIGHT, "b", 10, 100, "b10");
    seen s;
    probe(&jb, SL_JOIN_RIGHT, "a", 5, 10, &s);
    assert_string_equal(s.text, "r10 r5 "); /* arrival order, both bounds inclusive */
    probe(&jb, SL_JOIN_RIGHT, "a", 11, 19, &s);
    assert_string_equal(s.text, "");
    probe(&jb, SL_JOIN_LEFT, "a", 0, 100, &s);
    assert_string_equal(s.text, "l10 ");
    probe(&jb, SL_JOIN_RIGHT, "c", 0, 100, &s);
    assert_string_equal(s.text, "");
    assert_int_equal(jb.n_entries, 5);
    assert_int_equal(jb.n_keys, 2);
    sl_join_buffer_fini(&jb);
}

static void test_expire_by_watermark(void **st)
{
    sl_join_buffer jb;
    sl_join_buffer_init(&jb);
    add(&jb, SL_JOIN_LEFT, "a", 0, 30, "e30");
    add(&jb, SL_JOIN_LEFT, "a", 0, 10, "e10");
    add(&jb, SL_JOIN_RIGHT, "b", 0, 20, "e20");
    add(&jb, SL_JOIN_RIGHT, "a", 0, 10, "f10");
    seen s = {0};
    assert_int_equal(sl_join_buffer_expire(&jb, 10, record, &s), 0);
    assert_string_equal(s.text, ""); /* expire < wm only: 10 stays at wm 10 */
    assert_int_equal(sl_join_buffer_expire(&jb, 21, record, &s), 0);
    assert_true(strcmp(s.text, "e10 f10 e20 ") == 0 || strcmp(s.text, "f10 e10 e20 ") == 0);
    assert_int_equal(jb.n_entries, 1);
    assert_int_equal(jb.n_keys, 1); /* b went with its last entry */
    seen p;
    probe(&jb, SL_JOIN_LEFT, "a", 0, 0, &p);
    assert_string_equal(p.text, "e30 ");
    /* a visitor that fails keeps its entry */
    memset(&s, 0, sizeof s);
    s.stop_at = 1;
    assert_int_equal(sl_join_buffer_expire(&jb, 100, record, &s), 1);
    assert_int_equal(jb.n_entries, 1);
    assert_int_equal(sl_join_buffer_expire(&jb, 100, NULL, NULL), 0);
    assert_int_equal(jb.n_entries, 0);
    assert_int_equal(jb.n_keys, 0);
    sl_join_buffer_fini(&jb);
}

/* 200k keys in, removed in a scrambled order by expiry; every survivor still found. */
static void test_many_keys(void **st)
{
    sl_join_buffer jb;
    sl_join_buffer_init(&jb);
    enum { N = 200000 };
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        int64_t exp = (int64_t)i * 7919 % N; /* a permutation of 0..N-1 */
        add(&jb, i % 2, key, i, exp, key);
    }
    assert_int_equal(jb.n_keys, N);
    uint64_t peak = jb.bytes;
    assert_int_equal(sl_join_buffer_expire(&jb, N / 2, NULL, NULL), 0);
    assert_int_equal(jb.n_entries, N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        seen s;
        probe(&jb, i % 2, key, INT64_MIN, INT64_MAX, &s);
        int64_t exp = (int64_t)i * 7919 % N;
        if (exp >= N / 2)
            assert_string_equal(s.text, strcat(key, " "));
        else
            assert_string_equal(s.text, "");
    }
    assert_int_equal(sl_join_buffer_expire(&jb, N, NULL, NULL), 0);
    assert_int_equal(jb.n_keys, 0);
    assert_true(jb.bytes < peak); /* emptied chunks were freed (one kept for reuse) */
    sl_join_buffer_fini(&jb);
}

static void test_big_events(void **st)
{
    sl_join_buffer jb;
    sl_join_buffer_init(&jb);
    size_t n = 300000; /* larger than a chunk's share: allocated alone */
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = 0;
    sl_join_entry *e = add(&jb, SL_JOIN_LEFT, "k", 1, 2, big);
    assert_int_equal(e->len, n);
    assert_memory_equal(e->event, big, n);
    assert_int_equal(sl_join_buffer_expire(&jb, 3, NULL, NULL), 0);
    assert_int_equal(jb.n_entries, 0);
    free(big);
    sl_join_buffer_fini(&jb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_range_and_order),
        cmocka_unit_test(test_expire_by_watermark),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_big_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
