/*
 * diag.h - user-facing diagnostics: "file:line:col: message" lines collected
 * in one pass so a user sees every mistake at once, printed in source order.
 */
#ifndef SL_DIAG_H
#define SL_DIAG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

typedef struct sl_diag_item {
    char *file; /* owned */
    int line;   /* 1-based; 0 = no position */
    int col;    /* 1-based */
    char *msg;  /* owned */
} sl_diag_item;

typedef struct sl_diag {
    sl_diag_item *items;
    size_t n, cap;
} sl_diag;

void sl_diag_init(sl_diag *d);
void sl_diag_fini(sl_diag *d);

/*
 * Add a message at file:line:col (file borrowed, copied). Printed as
 * "file:line:col: msg"; with line 0 as "file: msg" (whole-file problems,
 * --set); with file NULL as the bare "msg". Out of memory drops the message.
 */
void sl_diag_add(sl_diag *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void sl_diag_vadd(sl_diag *d, const char *file, int line, int col, const char *fmt, va_list ap);

/* Print every message, sorted by file, line, column (stable), one per line. */
void sl_diag_print(const sl_diag *d, FILE *out);

/* Formatted item i as "file:line:col: msg" into buf; returns buf. */
const char *sl_diag_format(const sl_diag *d, size_t i, char *buf, size_t n);

/*
 * The closest candidate to `word` by edit distance (for "did you mean"), or
 * NULL if none is close enough (distance <= max(1, strlen(word)/3)).
 * `candidates` is NULL-terminated.
 */
const char *sl_suggest(const char *word, const char *const *candidates);

#endif
