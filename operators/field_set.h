/*
 * field_set.h - a `fields:` map of computed outputs (name -> expression),
 * shared by transform and join.
 *
 * A dotted name builds nested maps: "geo.country" -> {"geo": {"country": ..}}.
 * Per event the fields are evaluated into a reused scratch buffer first (so
 * a failure leaves the output untouched), then written as the key/value
 * pairs of the top-level outputs. No allocation once the buffers are warm.
 */
#ifndef SL_FIELD_SET_H
#define SL_FIELD_SET_H

#include "sluice/operator.h"

#define SL_FIELDS_MAX 64

typedef struct sl_field_tree {
    char *name;
    int field; /* a leaf: index of its expression; -1 for a nested map */
    struct sl_field_tree *kids;
    size_t n_kids;
} sl_field_tree;

typedef struct sl_field_set {
    const sl_expr *exprs[SL_FIELDS_MAX];
    const char *names[SL_FIELDS_MAX]; /* as written (borrowed from the configuration) */
    size_t n;
    sl_field_tree root;               /* its kids are the top-level outputs */
    struct {
        size_t off, len;
    } spans[SL_FIELDS_MAX];
    sl_wbuf vals;
} sl_field_set;

/*
 * Compile the map node `fields` (NULL: no fields) with expression variables
 * `vars` (NULL: identifiers name the event's fields). Reports mistakes as
 * configuration errors and returns -1. Main thread (init).
 */
int sl_field_set_init(sl_field_set *fs, sl_ctx *ctx, const sl_node *fields,
                      const char *const *vars);
void sl_field_set_fini(sl_field_set *fs);

/* Number of top-level outputs, and the name of the i-th. */
static inline size_t sl_field_set_top(const sl_field_set *fs) { return fs->root.n_kids; }
static inline const char *sl_field_set_top_name(const sl_field_set *fs, size_t i)
{
    return fs->root.kids[i].name;
}

/*
 * Evaluate every field against docs. Returns 0, or -1 with *failed = the
 * index of the first field that failed (the reason is host->expr_error);
 * with `null_on_error` a failing field is null instead.
 */
int sl_field_set_eval(sl_field_set *fs, sl_ctx *ctx, const uint8_t *const *docs,
                      const size_t *lens, size_t n_docs, int null_on_error, size_t *failed);

/* Append the name/value pairs of the top-level outputs (after an eval) to out. Returns 0 or -1. */
int sl_field_set_write(const sl_field_set *fs, sl_wbuf *out);

#endif
