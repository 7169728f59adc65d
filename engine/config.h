/*
 * config.h - the pipeline file as a tree of nodes that remember where they
 * came from (file, line, column), so every later check can point at the
 * exact spot.
 *
 * Loading: libyaml events -> sl_node tree. Scalars keep their text (after
 * ${VAR} / ${VAR:-default} expansion from the environment) and whether they
 * were quoted. Duplicate keys in a mapping, anchors/aliases we do not
 * support, and YAML syntax errors are reported as diagnostics. --set
 * overrides are applied to the loaded tree.
 *
 * Ownership: the tree owns all its strings; nodes are borrowed from the root
 * and live until sl_node_destroy(&root).
 */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/operator.h" /* sl_node, sl_node_kind */
#include "diag.h"

struct sl_node {
    sl_node_kind kind;
    const char *file;  /* shared by the whole tree, owned by the root */
    int line, col;     /* 1-based position of the node's first character */
    char *str;         /* SL_NODE_SCALAR: text after expansion (owned) */
    int quoted;        /* scalar was '...'/"..." quoted, a | or > block, or !!str: text */
    char *src;         /* scalar whose text is not its source verbatim (quoted, a block,
                          over several lines, tagged): its source, for sl_node_text_pos */
    int is_null;       /* plain scalar `~`, `null`, or empty */
    size_t n;          /* number of children (map pairs or seq items) */
    size_t cap;
    char **keys;       /* SL_NODE_MAP: key text per child (owned) */
    struct sl_node **key_nodes; /* SL_NODE_MAP: key nodes (for their line/col) */
    struct sl_node **items;     /* children: map values or seq items */
    char *file_owned;  /* set on the root only */
};

/*
 * Load a YAML file. On success *root is the document's root node and 0 is
 * returned. On any error, diagnostics are added to d and -1 is returned;
 * *root may still hold a partial tree to be destroyed by the caller.
 */
int sl_config_load_file(const char *path, sl_diag *d, sl_node **root);
/* The same for text in memory; `name` is the file name shown in messages. */
int sl_config_load_string(const char *name, const char *text, size_t len, sl_diag *d,
                          sl_node **root);

/*
 * Apply an override "dotted.key.path=value": walks/creates maps along the
 * path and replaces the leaf. The value is parsed as a YAML flow node, so
 * `--set a.b=[1,2]` sets a list. Errors (no '=', a path through a scalar)
 * go to d with the position "--set" and return -1.
 * Nodes made here have file "--set" and line 0; a null value on the path
 * (`batch:` left empty) becomes a mapping. After a bad path or value the
 * tree is unchanged.
 */
int sl_config_set(sl_node *root, const char *assignment, sl_diag *d);

void sl_node_destroy(sl_node **np);

/*
 * Parse `text` as one YAML value (a scalar, `[1, 2]`, `{a: 1}`, `5s`, ...)
 * into a new tree *out (caller owns it: sl_node_destroy). Every node gets the
 * position file:line:col, where `file` is borrowed and must outlive the tree
 * (a string of the tree it is inserted into, or a static one). Empty text
 * gives an empty (null) scalar. ${VAR} is expanded as in a file. Errors go
 * to d at file:line:col and return -1 (*out is then NULL or partial).
 */
int sl_node_parse(const char *text, const char *file, int line, int col, sl_diag *d,
                  sl_node **out);

/*
 * Set `key` of mapping `map` to `value`, taking ownership of value even on
 * failure. An existing value is destroyed and replaced (the key keeps its
 * position); a new key is appended with value's file and position.
 * Returns 0, or -1 if map is not a mapping or out of memory.
 */
int sl_node_map_set(sl_node *map, const char *key, sl_node *value);

/* Value of `key` in map n, or NULL (also when n is not a map). */
sl_node *sl_node_get(const sl_node *n, const char *key);
/* Index of `key` in map n, or -1. */
long sl_node_index(const sl_node *n, const char *key);

/* Scalar conversions: each returns 0, or -1 if the text is not of that type. */
int sl_parse_int(const char *s, int64_t *out);
int sl_parse_double(const char *s, double *out);
int sl_parse_bool(const char *s, int *out);
/* Durations: "0", "250ms", "5s", "1m", "1h", "1d", "1.5s", "100us", "10ns", combos "1h30m". */
int sl_parse_duration(const char *s, int64_t *ns);
/* Sizes: "512", "64KiB", "16MiB", "1GiB", "1KB" (1000), "1MB", "1GB". */
int sl_parse_size(const char *s, uint64_t *bytes);

/*
 * Line and column in the file of byte `offset` of scalar n's text: through
 * quotes, escapes, folded lines and block scalars. Where the text cannot be
 * traced back to the source (${VAR} expansion, --set), n's own position.
 */
void sl_node_text_pos(const sl_node *n, size_t offset, int *line, int *col);

/* Human names for diagnostics: "a mapping", "a sequence", "a scalar". */
const char *sl_node_kind_name(sl_node_kind k);

/* Add a diagnostic at node n's file:line:col (n may be NULL: no position). */
void sl_node_diag(sl_diag *d, const sl_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
