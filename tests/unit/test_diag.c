/*
 * test_diag.c - diagnostics: formatting with and without a position, printing
 * in source order (stable), and the "did you mean" suggestion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diag.h"

static void assert_item(const sl_diag *d, size_t i, const char *want)
{
    char buf[512];
    assert_true(i < d->n);
    assert_string_equal(sl_diag_format(d, i, buf, sizeof buf), want);
}

/* Everything sl_diag_print writes, as one heap string. */
static char *print_to_string(const sl_diag *d)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    sl_diag_print(d, f);
    fclose(f);
    return text;
}

/* Each kind of position formats as documented. */
static void test_format_positions(void **state)
{
    sl_diag d;
    (void)state;
    sl_diag_init(&d);
    sl_diag_add(&d, "p.yaml", 12, 7, "unknown operator type '%s'", "filtr");
    sl_diag_add(&d, "--set", 0, 0, "'a': bad");
    sl_diag_add(&d, NULL, 3, 4, "cannot open '%s': %s", "x", "No such file or directory");
    sl_diag_add(&d, "p.yaml", 5, 0, "line only");
    assert_int_equal(d.n, 4);
    assert_item(&d, 0, "p.yaml:12:7: unknown operator type 'filtr'");
    assert_item(&d, 1, "--set: 'a': bad");
    assert_item(&d, 2, "cannot open 'x': No such file or directory");
    assert_item(&d, 3, "p.yaml:5: line only");
    sl_diag_fini(&d);
    assert_int_equal(d.n, 0);
    assert_null(d.items);
}

/* A small buffer truncates; an index out of range gives "". */
static void test_format_truncates(void **state)
{
    sl_diag d;
    char buf[8];
    (void)state;
    sl_diag_init(&d);
    sl_diag_add(&d, "p.yaml", 1, 2, "message");
    assert_string_equal(sl_diag_format(&d, 0, buf, sizeof buf), "p.yaml:");
    assert_string_equal(sl_diag_format(&d, 1, buf, sizeof buf), "");
    sl_diag_fini(&d);
}

/* Printing orders by file, line, column; equal positions keep insertion order. */
static void test_print_sorted_stable(void **state)
{
    sl_diag d;
    (void)state;
    sl_diag_init(&d);
    sl_diag_add(&d, "b.yaml", 1, 1, "b first");
    sl_diag_add(&d, "a.yaml", 10, 2, "a 10:2");
    sl_diag_add(&d, "a.yaml", 2, 9, "a 2:9");
    sl_diag_add(&d, "a.yaml", 10, 1, "a 10:1 one");
    sl_diag_add(&d, "a.yaml", 10, 1, "a 10:1 two");
    sl_diag_add(&d, NULL, 0, 0, "no file");
    sl_diag_add(&d, "a.yaml", 0, 0, "whole file");
    char *text = print_to_string(&d);
    assert_string_equal(text, "no file\n"
                              "a.yaml: whole file\n"
                              "a.yaml:2:9: a 2:9\n"
                              "a.yaml:10:1: a 10:1 one\n"
                              "a.yaml:10:1: a 10:1 two\n"
                              "a.yaml:10:2: a 10:2\n"
                              "b.yaml:1:1: b first\n");
    free(text);
    /* printing does not reorder the collection itself */
    assert_item(&d, 0, "b.yaml:1:1: b first");
    sl_diag_fini(&d);
}

/* Many messages (the array grows) and an empty collection prints nothing. */
static void test_many_and_empty(void **state)
{
    sl_diag d;
    (void)state;
    sl_diag_init(&d);
    char *text = print_to_string(&d);
    assert_string_equal(text, "");
    free(text);
    for (int i = 100; i > 0; i--)
        sl_diag_add(&d, "f", i, 1, "m%d", i);
    assert_int_equal(d.n, 100);
    text = print_to_string(&d);
    assert_true(strncmp(text, "f:1:1: m1\nf:2:1: m2\n", 20) == 0);
    free(text);
    sl_diag_fini(&d);
    sl_diag_fini(&d); /* a second fini is harmless */
}

/* Close words are suggested; far ones are not; the first candidate wins a tie. */
static void test_suggest(void **state)
{
    static const char *const params[] = {"path", "format", "watermark", "linger", NULL};
    static const char *const tie[] = {"ac", "ad", NULL};
    static const char *const none[] = {NULL};
    (void)state;
    assert_string_equal(sl_suggest("pth", params), "path");      /* 1 deletion */
    assert_string_equal(sl_suggest("fromat", params), "format"); /* swap = 2, limit 6/3 = 2 */
    assert_string_equal(sl_suggest("watermrk", params), "watermark");
    assert_string_equal(sl_suggest("lingre", params), "linger");
    assert_string_equal(sl_suggest("path", params), "path"); /* exact */
    assert_null(sl_suggest("xyz", params));
    assert_null(sl_suggest("fxrmxx", params)); /* 3 edits > 2 */
    assert_string_equal(sl_suggest("ab", tie), "ac");
    assert_string_equal(sl_suggest("a", tie), "ac"); /* limit is at least 1 */
    assert_null(sl_suggest("", tie));                /* 2 edits > 1 */
    assert_null(sl_suggest("ab", none));
    assert_null(sl_suggest("ab", NULL));
}

/* The limit is max(1, strlen/3): 9 letters allow 3 edits, not 4. */
static void test_suggest_threshold(void **state)
{
    static const char *const c[] = {"abcdefghi", NULL};
    (void)state;
    assert_string_equal(sl_suggest("abcdefxyz", c), "abcdefghi");
    assert_null(sl_suggest("abcdewxyz", c));
    /* insertions count one each: 3 edits for 12 letters, 5 for 14 */
    assert_string_equal(sl_suggest("abcdefghijkl", c), "abcdefghi");
    assert_null(sl_suggest("abcdefghijklmn", c)); /* 5 edits > 14/3 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_positions),
        cmocka_unit_test(test_format_truncates),
        cmocka_unit_test(test_print_sorted_stable),
        cmocka_unit_test(test_many_and_empty),
        cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_suggest_threshold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
