/*
 * diag.c - collected user-facing diagnostics and "did you mean" suggestions.
 *
 * Design: every check appends to one sl_diag instead of stopping at the first
 * mistake, so `sluice validate` shows all of them at once. Items own copies of
 * their file name and message; printing sorts a temporary index by (file,
 * line, column) and keeps insertion order for equal positions.
 *
 * Invariants: items[0..n) are initialised and own their strings; cap >= n.
 * An item whose file is NULL prints as the bare message; an item with line 0
 * prints as "file: message" (used for whole-file problems and for --set).
 * Out of memory while adding drops that one message (the calls cannot fail).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

/* Initialise an empty collection. */
void sl_diag_init(sl_diag *d)
{
    d->items = NULL;
    d->n = 0;
    d->cap = 0;
}

/* Free every message and the array; d is left empty and reusable. */
void sl_diag_fini(sl_diag *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->items[i].file);
        free(d->items[i].msg);
    }
    free(d->items);
    sl_diag_init(d);
}

/* Format with vsnprintf into a fresh heap string, or NULL on error. */
static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0) return NULL;
    char *s = malloc((size_t)len + 1);
    if (s) vsnprintf(s, (size_t)len + 1, fmt, ap);
    return s;
}

/* Append one message; file borrowed (copied), may be NULL. Drops it on out of memory. */
void sl_diag_vadd(sl_diag *d, const char *file, int line, int col, const char *fmt, va_list ap)
{
    char *msg = NULL, *fcopy = NULL;

    if (!d) return;
    msg = vformat(fmt, ap);
    if (!msg) goto fail;
    if (file && !(fcopy = strdup(file))) goto fail;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        sl_diag_item *items = realloc(d->items, cap * sizeof *items);
        if (!items) goto fail;
        d->items = items;
        d->cap = cap;
    }
    d->items[d->n++] = (sl_diag_item){.file = fcopy, .line = line, .col = col, .msg = msg};
    return;
fail:
    free(msg);
    free(fcopy);
}

/* printf-style sl_diag_vadd. */
void sl_diag_add(sl_diag *d, const char *file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_diag_vadd(d, file, line, col, fmt, ap);
    va_end(ap);
}

/* "file:line:col: msg", "file:line: msg", "file: msg" or "msg", into buf. */
static void format_item(const sl_diag_item *it, char *buf, size_t n)
{
    if (!it->file)
        snprintf(buf, n, "%s", it->msg);
    else if (it->line <= 0)
        snprintf(buf, n, "%s: %s", it->file, it->msg);
    else if (it->col <= 0)
        snprintf(buf, n, "%s:%d: %s", it->file, it->line, it->msg);
    else
        snprintf(buf, n, "%s:%d:%d: %s", it->file, it->line, it->col, it->msg);
}

/* Item i formatted into buf (truncated to n bytes); an empty string if i is out of range. */
const char *sl_diag_format(const sl_diag *d, size_t i, char *buf, size_t n)
{
    if (n == 0) return buf;
    if (!d || i >= d->n)
        buf[0] = '\0';
    else
        format_item(&d->items[i], buf, n);
    return buf;
}

/*
 * Order by file (no file first), line, column; ties by address, which is the
 * insertion order because the pointers point into one array: a stable sort.
 */
static int cmp_items(const void *a, const void *b)
{
    const sl_diag_item *x = *(const sl_diag_item *const *)a;
    const sl_diag_item *y = *(const sl_diag_item *const *)b;

    if (!x->file != !y->file) return x->file ? 1 : -1;
    if (x->file) {
        int c = strcmp(x->file, y->file);
        if (c) return c;
    }
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    if (x->col != y->col) return x->col < y->col ? -1 : 1;
    return x < y ? -1 : (x > y);
}

/* Print one item as a line of its own. */
static void print_item(const sl_diag_item *it, FILE *out)
{
    if (!it->file)
        fprintf(out, "%s\n", it->msg);
    else if (it->line <= 0)
        fprintf(out, "%s: %s\n", it->file, it->msg);
    else if (it->col <= 0)
        fprintf(out, "%s:%d: %s\n", it->file, it->line, it->msg);
    else
        fprintf(out, "%s:%d:%d: %s\n", it->file, it->line, it->col, it->msg);
}

/* Print all items sorted; if the index cannot be allocated, in insertion order. */
void sl_diag_print(const sl_diag *d, FILE *out)
{
    const sl_diag_item **order = NULL;

    if (!d || d->n == 0) return;
    order = malloc(d->n * sizeof *order);
    if (!order) {
        for (size_t i = 0; i < d->n; i++)
            print_item(&d->items[i], out);
        return;
    }
    for (size_t i = 0; i < d->n; i++)
        order[i] = &d->items[i];
    qsort(order, d->n, sizeof *order, cmp_items);
    for (size_t i = 0; i < d->n; i++)
        print_item(order[i], out);
    free(order);
}

/*
 * Levenshtein distance between a and b, giving up (returning limit + 1) once
 * every entry of a row exceeds `limit`. Two rows of the DP table on the heap;
 * SIZE_MAX on out of memory.
 */
static size_t edit_distance(const char *a, const char *b, size_t limit)
{
    size_t la = strlen(a), lb = strlen(b), result;
    size_t *prev = NULL, *cur = NULL;

    if ((la > lb ? la - lb : lb - la) > limit) return limit + 1;
    prev = malloc((lb + 1) * sizeof *prev);
    cur = malloc((lb + 1) * sizeof *cur);
    if (!prev || !cur) {
        result = SIZE_MAX;
        goto out;
    }
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t row_min;
        cur[0] = row_min = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            size_t v = sub < del ? sub : del;
            cur[j] = v < ins ? v : ins;
            if (cur[j] < row_min) row_min = cur[j];
        }
        if (row_min > limit) {
            result = limit + 1;
            goto out;
        }
        size_t *t = prev;
        prev = cur;
        cur = t;
    }
    result = prev[lb];
out:
    free(prev);
    free(cur);
    return result;
}

/* Closest candidate within max(1, strlen(word)/3) edits; the first one wins a tie. */
const char *sl_suggest(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    size_t limit, best_dist;

    if (!word || !candidates) return NULL;
    limit = strlen(word) / 3;
    if (limit < 1) limit = 1;
    best_dist = limit + 1;
    for (size_t i = 0; candidates[i]; i++) {
        size_t dist = edit_distance(word, candidates[i], limit);
        if (dist < best_dist) {
            best_dist = dist;
            best = candidates[i];
        }
    }
    return best;
}
