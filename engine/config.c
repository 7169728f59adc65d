/*
 * config.c - the pipeline file: libyaml events -> sl_node tree with
 * positions, ${VAR} expansion, --set overrides, and the scalar parsers every
 * parameter check uses.
 *
 * Design: a recursive descent over libyaml's event stream (yaml_parser_parse)
 * builds the tree. Problems that leave the stream readable (duplicate keys,
 * aliases, non-scalar keys, bad ${VAR}) are recorded and loading goes on, so
 * one run reports them all; a YAML syntax error ends loading, since libyaml
 * cannot resume after one. ${VAR} expansion is applied to every scalar
 * *value* (never to keys) before it is stored; is_null is decided on the
 * expanded text, so `${OPT:-}` behaves as an empty value would.
 *
 * Invariants:
 * - every scalar has a non-NULL str; a map has keys, key_nodes and items of
 *   the same capacity (`cap`); a sequence uses items only;
 * - `file` of every node loaded from a file points at the root's file_owned;
 *   nodes made by --set point at the static string "--set" and have line 0;
 * - the tree owns everything it points to except `file`; sl_node_destroy
 *   frees a (sub)tree completely, also a partial one left by an error.
 * - nesting is limited to MAX_DEPTH levels so hostile input cannot exhaust
 *   the stack (the loader and sl_node_destroy recurse).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "config.h"

#define MAX_DEPTH 200       /* collection nesting in one file */
#define MAX_EXPAND_DEPTH 16 /* ${A:-${B:-...}} nesting */

static const char set_file[] = "--set";

/* ------------------------------------------------------------------ nodes */

/* A fresh node of `kind`; NULL on out of memory. */
static sl_node *node_new(sl_node_kind kind, const char *file, int line, int col)
{
    sl_node *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->file = file;
        n->line = line;
        n->col = col;
    }
    return n;
}

/* Free *np and everything below it; accepts NULL; sets *np to NULL. */
void sl_node_destroy(sl_node **np)
{
    sl_node *n;

    if (!np || !*np) return;
    n = *np;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys) free(n->keys[i]);
        if (n->key_nodes) sl_node_destroy(&n->key_nodes[i]);
        sl_node_destroy(&n->items[i]);
    }
    free(n->keys);
    free(n->key_nodes);
    free(n->items);
    free(n->str);
    free(n->src);
    free(n->file_owned);
    free(n);
    *np = NULL;
}

/* Make room for one more child. Returns 0 or -1 (out of memory; n unchanged in meaning). */
static int node_reserve(sl_node *n)
{
    size_t cap;
    sl_node **items;

    if (n->n < n->cap) return 0;
    cap = n->cap ? n->cap * 2 : 4;
    items = realloc(n->items, cap * sizeof *items);
    if (!items) return -1;
    n->items = items;
    if (n->kind == SL_NODE_MAP) {
        char **keys = realloc(n->keys, cap * sizeof *keys);
        if (!keys) return -1;
        n->keys = keys;
        sl_node **key_nodes = realloc(n->key_nodes, cap * sizeof *key_nodes);
        if (!key_nodes) return -1;
        n->key_nodes = key_nodes;
    }
    n->cap = cap;
    return 0;
}

/* Append item to sequence seq. Takes ownership of item, even on failure. */
static int seq_append(sl_node *seq, sl_node *item)
{
    if (node_reserve(seq) < 0) {
        sl_node_destroy(&item);
        return -1;
    }
    seq->items[seq->n++] = item;
    return 0;
}

/* Append the pair (key, value) to map. Takes ownership of both, even on failure. */
static int map_append(sl_node *map, sl_node *key, sl_node *value)
{
    char *text = strdup(key->str);

    if (!text || node_reserve(map) < 0) {
        free(text);
        sl_node_destroy(&key);
        sl_node_destroy(&value);
        return -1;
    }
    map->keys[map->n] = text;
    map->key_nodes[map->n] = key;
    map->items[map->n] = value;
    map->n++;
    return 0;
}

/* Index of `key` in map n, or -1 (also when n is not a map). */
long sl_node_index(const sl_node *n, const char *key)
{
    if (!n || n->kind != SL_NODE_MAP || !key) return -1;
    for (size_t i = 0; i < n->n; i++)
        if (strcmp(n->keys[i], key) == 0) return (long)i;
    return -1;
}

/* Value of `key` in map n (borrowed), or NULL. */
sl_node *sl_node_get(const sl_node *n, const char *key)
{
    long i = sl_node_index(n, key);
    return i < 0 ? NULL : n->items[i];
}

/* Replace or add `key` in map; takes ownership of value, even on failure. */
int sl_node_map_set(sl_node *map, const char *key, sl_node *value)
{
    sl_node *key_node = NULL;
    long i;

    if (!map || map->kind != SL_NODE_MAP || !key || !value) {
        sl_node_destroy(&value);
        return -1;
    }
    i = sl_node_index(map, key);
    if (i >= 0) {
        sl_node_destroy(&map->items[i]);
        map->items[i] = value;
        return 0;
    }
    key_node = node_new(SL_NODE_SCALAR, value->file, value->line, value->col);
    if (!key_node || !(key_node->str = strdup(key))) {
        sl_node_destroy(&key_node);
        sl_node_destroy(&value);
        return -1;
    }
    key_node->quoted = 1;
    return map_append(map, key_node, value);
}

/* "a scalar", "a mapping", "a sequence". */
const char *sl_node_kind_name(sl_node_kind k)
{
    switch (k) {
    case SL_NODE_SCALAR:
        return "a scalar";
    case SL_NODE_MAP:
        return "a mapping";
    case SL_NODE_SEQ:
        return "a sequence";
    }
    return "an unknown node";
}

/* -------------------------------------------------------------- expansion */

typedef struct strbuf {
    char *p;
    size_t n, cap;
} strbuf;

/* Append n bytes and keep the text NUL-terminated. Returns 0 or -1. */
static int sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static int is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/*
 * Index of the '}' closing the "${" at s[start] (start points after "${"),
 * counting nested "${" and skipping "$$"; len if there is none.
 */
static size_t find_close(const char *s, size_t start, size_t len)
{
    int depth = 1;

    for (size_t k = start; k < len; k++) {
        if (s[k] == '$' && k + 1 < len && (s[k + 1] == '$' || s[k + 1] == '{')) {
            depth += s[k + 1] == '{';
            k++;
        } else if (s[k] == '}' && --depth == 0) {
            return k;
        }
    }
    return len;
}

/*
 * Expand s[0..len) into b: "$$" -> "$", "${NAME}" -> the variable (an error
 * if unset), "${NAME:-default}" -> the variable, or the expanded default when
 * it is unset or empty. A '$' before anything else is kept as is.
 * Returns 0, or -1 with a message in err.
 */
static int expand_into(strbuf *b, const char *s, size_t len, int depth, char *err, size_t errn)
{
    size_t i = 0;

    if (depth > MAX_EXPAND_DEPTH) {
        snprintf(err, errn, "${...:-default} nested more than %d levels deep", MAX_EXPAND_DEPTH);
        return -1;
    }
    while (i < len) {
        const char *dollar = memchr(s + i, '$', len - i);
        size_t stop = dollar ? (size_t)(dollar - s) : len;
        if (sb_add(b, s + i, stop - i) < 0) goto oom;
        i = stop;
        if (i >= len) break;
        if (i + 1 >= len || (s[i + 1] != '$' && s[i + 1] != '{')) {
            if (sb_add(b, "$", 1) < 0) goto oom;
            i++;
            continue;
        }
        if (s[i + 1] == '$') {
            if (sb_add(b, "$", 1) < 0) goto oom;
            i += 2;
            continue;
        }
        size_t start = i + 2, close = find_close(s, start, len), name_end = start;
        if (close >= len) {
            snprintf(err, errn, "unterminated '${' (missing '}')");
            return -1;
        }
        while (name_end < close && is_name_char(s[name_end]))
            name_end++;
        int inner_len = (int)(close - start < 64 ? close - start : 64);
        if (name_end == start || !is_name_start(s[start])) {
            snprintf(err, errn, "invalid variable name in '${%.*s}'", inner_len, s + start);
            return -1;
        }
        int has_default = 0;
        if (name_end < close) {
            if (close - name_end < 2 || s[name_end] != ':' || s[name_end + 1] != '-') {
                snprintf(err, errn,
                         "invalid variable reference '${%.*s}' (expected ${NAME} or "
                         "${NAME:-default})",
                         inner_len, s + start);
                return -1;
            }
            has_default = 1;
        }
        char name[256];
        size_t name_len = name_end - start;
        if (name_len >= sizeof name) {
            snprintf(err, errn, "variable name too long in '${%.*s}'", inner_len, s + start);
            return -1;
        }
        memcpy(name, s + start, name_len);
        name[name_len] = '\0';
        const char *value = getenv(name);
        if (value && (*value || !has_default)) {
            if (sb_add(b, value, strlen(value)) < 0) goto oom;
        } else if (has_default) {
            if (expand_into(b, s + name_end + 2, close - name_end - 2, depth + 1, err, errn) < 0)
                return -1;
        } else {
            snprintf(err, errn, "environment variable '%s' is not set (use ${%s:-default})", name,
                     name);
            return -1;
        }
        i = close + 1;
    }
    /* make sure an empty result is a string too */
    if (!b->p && sb_add(b, "", 0) < 0) goto oom;
    return 0;
oom:
    snprintf(err, errn, "out of memory");
    return -1;
}

/* Expand s[0..len) into a new string *out. Returns 0, or -1 with a message in err. */
static int expand(const char *s, size_t len, char **out, char *err, size_t errn)
{
    strbuf b = {0};

    if (expand_into(&b, s, len, 0, err, errn) < 0) {
        free(b.p);
        *out = NULL;
        return -1;
    }
    *out = b.p;
    return 0;
}

/* ----------------------------------------------------------------- loader */

typedef struct loader {
    yaml_parser_t parser;
    const char *name; /* file name in diagnostics */
    const char *text; /* the input, to turn reader byte offsets into positions */
    size_t len;
    char *file_copy;       /* owned until the root node takes it */
    const char *node_file; /* `file` of every node */
    int fixed;             /* every node and message at fixed_line:fixed_col */
    int fixed_line, fixed_col;
    sl_diag *d;
    int errors;
    size_t cur_line, cur_byte; /* a 0-based line and the byte it starts at, for byte_at */
} loader;

/* Record one problem at line:col (line 0: no position). */
static void report(loader *ld, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report(loader *ld, int line, int col, const char *fmt, ...)
{
    va_list ap;

    if (ld->fixed) {
        line = ld->fixed_line;
        col = ld->fixed_col;
    }
    va_start(ap, fmt);
    sl_diag_vadd(ld->d, ld->name, line, col, fmt, ap);
    va_end(ap);
    ld->errors++;
}

/* 1-based position of a libyaml mark (or the fixed one). */
static void mark_pos(const loader *ld, yaml_mark_t m, int *line, int *col)
{
    if (ld->fixed) {
        *line = ld->fixed_line;
        *col = ld->fixed_col;
    } else {
        *line = m.line + 1 > (size_t)INT32_MAX ? INT32_MAX : (int)m.line + 1;
        *col = m.column + 1 > (size_t)INT32_MAX ? INT32_MAX : (int)m.column + 1;
    }
}

/* Line and column (in characters, assuming UTF-8) of byte `offset` of the input. */
static void offset_pos(const loader *ld, size_t offset, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < offset && i < ld->len; i++) {
        unsigned char c = (unsigned char)ld->text[i];
        if (c == '\n') {
            ++*line;
            *col = 1;
        } else if ((c & 0xC0) != 0x80) {
            ++*col;
        }
    }
}

/*
 * Byte offset of a libyaml mark in the input (its column counts characters).
 * Marks come in increasing order, so a cursor makes this linear overall.
 */
static size_t byte_at(loader *ld, yaml_mark_t m)
{
    if (m.line < ld->cur_line)
        ld->cur_line = ld->cur_byte = 0;
    while (ld->cur_line < m.line && ld->cur_byte < ld->len) {
        const char *nl = memchr(ld->text + ld->cur_byte, '\n', ld->len - ld->cur_byte);
        if (!nl)
            return ld->len;
        ld->cur_byte = (size_t)(nl - ld->text) + 1;
        ld->cur_line++;
    }
    size_t i = ld->cur_byte;
    for (size_t c = 0; c < m.column && i < ld->len; c++)
        do
            i++;
        while (i < ld->len && ((unsigned char)ld->text[i] & 0xC0) == 0x80);
    return i;
}

/* Report libyaml's error for the parser's current state. */
static void syntax_error(loader *ld)
{
    const yaml_parser_t *p = &ld->parser;
    int line, col;

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        report(ld, 0, 0, "out of memory");
        return;
    case YAML_READER_ERROR:
        offset_pos(ld, p->problem_offset, &line, &col);
        if (p->problem_value >= 0)
            report(ld, line, col, "%s (byte 0x%02X)", p->problem, (unsigned)p->problem_value);
        else
            report(ld, line, col, "%s", p->problem);
        return;
    default:
        mark_pos(ld, p->problem_mark, &line, &col);
        if (p->context)
            report(ld, line, col, "%s (%s)", p->problem ? p->problem : "syntax error", p->context);
        else
            report(ld, line, col, "%s", p->problem ? p->problem : "syntax error");
        return;
    }
}

/* Next event into *ev. Returns 0, or -1 after reporting the syntax error. */
static int next_event(loader *ld, yaml_event_t *ev)
{
    if (yaml_parser_parse(&ld->parser, ev)) return 0;
    syntax_error(ld);
    return -1;
}

/* A node at mark; the first node made (the root) takes ownership of the file name. */
static sl_node *make_node(loader *ld, sl_node_kind kind, yaml_mark_t mark)
{
    int line, col;
    sl_node *n;

    mark_pos(ld, mark, &line, &col);
    n = node_new(kind, ld->node_file, line, col);
    if (n && ld->file_copy) {
        n->file_owned = ld->file_copy;
        ld->file_copy = NULL;
    }
    return n;
}

/* Whether plain scalar text means null. */
static int null_text(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/*
 * Scalar node from a SCALAR event (borrowed); values (`expand_vars`) get
 * ${VAR} expansion, keys do not. Returns 0 (a bad ${VAR} is reported and
 * the raw text kept), or -1 when out of memory. *out is the node or NULL.
 */
static int load_scalar(loader *ld, const yaml_event_t *ev, int expand_vars, sl_node **out)
{
    const char *raw = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    sl_node *n = make_node(ld, SL_NODE_SCALAR, ev->start_mark);
    char err[640]; /* room for two 255-byte variable names */

    *out = n;
    if (!n) goto oom;
    /* not plain means a string in YAML; so does an explicit !!str */
    n->quoted =
        ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (tag && !strcmp(tag, YAML_STR_TAG));
    if (expand_vars && memchr(raw, '$', len)) {
        if (expand(raw, len, &n->str, err, sizeof err) < 0) {
            if (!strcmp(err, "out of memory")) goto oom;
            report(ld, n->line, n->col, "%s", err);
        }
    }
    if (!n->str && !(n->str = strndup(raw, len))) goto oom;
    if (!ld->fixed && (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || tag ||
                       ev->start_mark.line != ev->end_mark.line)) {
        size_t from = byte_at(ld, ev->start_mark), to = byte_at(ld, ev->end_mark);
        if (to > from && !(n->src = strndup(ld->text + from, to - from))) goto oom;
    }
    n->is_null = !n->quoted && null_text(n->str);
    return 0;
oom:
    sl_node_destroy(out); /* never a scalar without text in the tree */
    report(ld, 0, 0, "out of memory");
    return -1;
}

static int load_node(loader *ld, yaml_event_t *ev, int depth, sl_node **out);

/* Children of a sequence up to its end event. Returns 0, or -1 on a fatal error. */
static int load_seq_items(loader *ld, sl_node *seq, int depth)
{
    for (;;) {
        yaml_event_t ev;
        sl_node *child;
        int rc;

        if (next_event(ld, &ev) < 0) return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        rc = load_node(ld, &ev, depth + 1, &child);
        if (child && seq_append(seq, child) < 0) {
            report(ld, 0, 0, "out of memory");
            return -1;
        }
        if (rc < 0) return -1;
    }
}

/*
 * Pairs of a mapping up to its end event. A non-scalar key or a duplicate
 * key is reported and its pair dropped. Returns 0, or -1 on a fatal error.
 */
static int load_map_items(loader *ld, sl_node *map, int depth)
{
    for (;;) {
        yaml_event_t kev, vev;
        sl_node *key = NULL, *value = NULL;
        int keep = 1, rc;

        if (next_event(ld, &kev) < 0) return -1;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return 0;
        }
        if (kev.type == YAML_SCALAR_EVENT) {
            rc = load_scalar(ld, &kev, 0, &key);
            yaml_event_delete(&kev);
        } else {
            if (kev.type != YAML_ALIAS_EVENT) {
                int line, col;
                mark_pos(ld, kev.start_mark, &line, &col);
                report(ld, line, col, "mapping keys must be scalars");
            }
            keep = 0;
            rc = load_node(ld, &kev, depth + 1, &key); /* reports an alias; consumes the key */
        }
        if (rc < 0) goto fatal;
        if (keep) {
            long first = sl_node_index(map, key->str);
            if (first >= 0) {
                report(ld, key->line, key->col, "duplicate key '%s' (first at line %d)", key->str,
                       map->key_nodes[first]->line);
                keep = 0;
            }
        }
        if (next_event(ld, &vev) < 0) goto fatal;
        rc = load_node(ld, &vev, depth + 1, &value);
        if (keep && value) {
            if (map_append(map, key, value) < 0) {
                report(ld, 0, 0, "out of memory");
                return -1;
            }
        } else {
            sl_node_destroy(&key);
            sl_node_destroy(&value);
        }
        if (rc < 0) return -1;
        continue;
    fatal:
        sl_node_destroy(&key);
        return -1;
    }
}

/*
 * The node that starts with event *ev (taken over and deleted here) and
 * everything below it. *out is set to the node, possibly partial, or NULL;
 * the caller owns it whatever the result. Returns 0 (problems that let
 * loading go on are counted in ld->errors), or -1 when loading must stop.
 */
static int load_node(loader *ld, yaml_event_t *ev, int depth, sl_node **out)
{
    sl_node *n = NULL;
    int rc = 0, line, col;

    mark_pos(ld, ev->start_mark, &line, &col);
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        rc = load_scalar(ld, ev, 1, &n);
        break;
    case YAML_ALIAS_EVENT:
        report(ld, line, col, "anchors and aliases are not supported");
        /* a null placeholder keeps the tree's shape for later checks */
        n = make_node(ld, SL_NODE_SCALAR, ev->start_mark);
        if (!n || !(n->str = strdup(""))) {
            sl_node_destroy(&n);
            report(ld, 0, 0, "out of memory");
            rc = -1;
            break;
        }
        n->is_null = 1;
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (depth >= MAX_DEPTH) {
            report(ld, line, col, "nesting deeper than %d levels", MAX_DEPTH);
            rc = -1;
            break;
        }
        n = make_node(ld, ev->type == YAML_SEQUENCE_START_EVENT ? SL_NODE_SEQ : SL_NODE_MAP,
                      ev->start_mark);
        if (!n) {
            report(ld, 0, 0, "out of memory");
            rc = -1;
            break;
        }
        rc = n->kind == SL_NODE_SEQ ? load_seq_items(ld, n, depth) : load_map_items(ld, n, depth);
        break;
    default:
        report(ld, line, col, "unexpected YAML event %d", (int)ev->type);
        rc = -1;
        break;
    }
    yaml_event_delete(ev);
    *out = n;
    return rc;
}

/*
 * Load the one document of the stream into *root. An empty stream or a
 * document that is only null is "empty pipeline file", or with allow_empty a
 * null scalar. Returns 0, or -1 if anything was reported.
 */
static int load_stream(loader *ld, int allow_empty, sl_node **root)
{
    yaml_event_t ev;
    int rc = -1;

    *root = NULL;
    if (next_event(ld, &ev) < 0) /* STREAM-START */
        goto out;
    yaml_event_delete(&ev);
    if (next_event(ld, &ev) < 0) goto out;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        goto empty;
    }
    yaml_event_delete(&ev); /* DOCUMENT-START */
    if (next_event(ld, &ev) < 0) goto out;
    if (load_node(ld, &ev, 0, root) < 0) goto out;
    if (next_event(ld, &ev) < 0) /* DOCUMENT-END */
        goto out;
    yaml_event_delete(&ev);
    if (next_event(ld, &ev) < 0) goto out;
    if (ev.type == YAML_DOCUMENT_START_EVENT) {
        int line, col;
        mark_pos(ld, ev.start_mark, &line, &col);
        report(ld, line, col, "more than one YAML document in one file is not supported");
        yaml_event_delete(&ev);
        goto out;
    }
    yaml_event_delete(&ev); /* STREAM-END */
    if (!ld->errors && (*root)->kind == SL_NODE_SCALAR && (*root)->is_null) {
        sl_node_destroy(root);
        goto empty;
    }
    rc = ld->errors ? -1 : 0;
    goto out;
empty:
    if (!allow_empty) {
        report(ld, 0, 0, "empty pipeline file");
        goto out;
    }
    *root = node_new(SL_NODE_SCALAR, ld->node_file, ld->fixed_line, ld->fixed_col);
    if (!*root || !((*root)->str = strdup(""))) {
        sl_node_destroy(root);
        report(ld, 0, 0, "out of memory");
        goto out;
    }
    (*root)->is_null = 1;
    rc = 0;
out:
    return rc;
}

/*
 * Run a loader over text. `name` appears in messages; when `fixed` is set,
 * nodes get file `node_file` (borrowed) and position fixed_line:fixed_col,
 * otherwise the root owns a copy of name.
 */
static int load_text(const char *name, const char *text, size_t len, const char *node_file,
                     int fixed, int fixed_line, int fixed_col, int allow_empty, sl_diag *d,
                     sl_node **root)
{
    loader ld = {.name = name,
                 .text = text,
                 .len = len,
                 .node_file = node_file,
                 .fixed = fixed,
                 .fixed_line = fixed_line,
                 .fixed_col = fixed_col,
                 .d = d};
    int rc = -1, parser_ready = 0;

    *root = NULL;
    if (!fixed) {
        ld.file_copy = strdup(name);
        if (!ld.file_copy) {
            report(&ld, 0, 0, "out of memory");
            goto out;
        }
        ld.node_file = ld.file_copy;
    }
    if (!yaml_parser_initialize(&ld.parser)) {
        report(&ld, 0, 0, "out of memory");
        goto out;
    }
    parser_ready = 1;
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, len);
    rc = load_stream(&ld, allow_empty, root);
out:
    if (parser_ready) yaml_parser_delete(&ld.parser);
    free(ld.file_copy); /* still here only if no node was made */
    return rc;
}

/* Load YAML text; `name` (borrowed, copied) is the file name shown in messages. */
int sl_config_load_string(const char *name, const char *text, size_t len, sl_diag *d,
                          sl_node **root)
{
    return load_text(name, text, len, NULL, 0, 0, 0, 0, d, root);
}

/* Read the whole file and load it; "cannot open 'x': reason" if it cannot be read. */
int sl_config_load_file(const char *path, sl_diag *d, sl_node **root)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;

    *root = NULL;
    f = fopen(path, "rb");
    if (!f) {
        sl_diag_add(d, NULL, 0, 0, "cannot open '%s': %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            char *p = realloc(buf, cap);
            if (!p) {
                sl_diag_add(d, NULL, 0, 0, "cannot read '%s': out of memory", path);
                goto out;
            }
            buf = p;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                sl_diag_add(d, NULL, 0, 0, "cannot read '%s': %s", path, strerror(errno));
                goto out;
            }
            break;
        }
    }
    rc = sl_config_load_string(path, buf, len, d, root);
out:
    if (f) fclose(f);
    free(buf);
    return rc;
}

/* Parse one YAML value; every node at file:line:col (file borrowed). */
int sl_node_parse(const char *text, const char *file, int line, int col, sl_diag *d, sl_node **out)
{
    return load_text(file, text, strlen(text), file, 1, line, col, 1, d, out);
}

/* --------------------------------------------------------------- --set */

/*
 * "a.b.c=value": parse the value first (nothing changes if it is bad), check
 * the existing part of the path, then create the missing maps and set the leaf.
 * A null scalar on the path (`batch:` left empty) is replaced by a mapping.
 */
int sl_config_set(sl_node *root, const char *assignment, sl_diag *d)
{
    const char *eq = strchr(assignment, '=');
    sl_node *value = NULL, *cur = root;
    sl_diag tmp;
    char *path = NULL;
    int rc = -1;

    sl_diag_init(&tmp);
    if (!eq) {
        sl_diag_add(d, set_file, 0, 0,
                    "'%s': expected KEY=VALUE (e.g. operators.events.path=x.jsonl)", assignment);
        goto out;
    }
    path = strndup(assignment, (size_t)(eq - assignment));
    if (!path) {
        sl_diag_add(d, set_file, 0, 0, "out of memory");
        goto out;
    }
    if (!*path) {
        sl_diag_add(d, set_file, 0, 0, "'%s': empty key", assignment);
        goto out;
    }
    if (path[0] == '.' || path[strlen(path) - 1] == '.' || strstr(path, "..")) {
        sl_diag_add(d, set_file, 0, 0, "'%s': empty key segment in the path", path);
        goto out;
    }
    if (sl_node_parse(eq + 1, set_file, 0, 0, &tmp, &value) < 0) {
        for (size_t i = 0; i < tmp.n; i++)
            sl_diag_add(d, set_file, 0, 0, "'%s': invalid value '%s': %s", path, eq + 1,
                        tmp.items[i].msg);
        if (!tmp.n) sl_diag_add(d, set_file, 0, 0, "'%s': invalid value '%s'", path, eq + 1);
        goto out;
    }
    if (!root || root->kind != SL_NODE_MAP) {
        sl_diag_add(d, set_file, 0, 0, "'%s': the document is %s, not a mapping", path,
                    root ? sl_node_kind_name(root->kind) : "empty");
        goto out;
    }
    /* walk the existing part of the path; fail before changing anything */
    for (char *seg = path;;) {
        char *dot = strchr(seg, '.');
        if (!dot) break;
        *dot = '\0';
        long i = sl_node_index(cur, seg);
        if (i < 0) {
            *dot = '.';
            break;
        }
        sl_node *child = cur->items[i];
        *dot = '.';
        if (child->kind != SL_NODE_MAP && !(child->kind == SL_NODE_SCALAR && child->is_null)) {
            sl_diag_add(d, set_file, 0, 0, "'%s': '%.*s' is %s, not a mapping", path,
                        (int)(dot - path), path, sl_node_kind_name(child->kind));
            goto out;
        }
        if (child->kind != SL_NODE_MAP) break;
        cur = child;
        seg = dot + 1;
    }
    /* now create what is missing */
    cur = root;
    for (char *seg = path;;) {
        char *dot = strchr(seg, '.');
        if (!dot) {
            rc = sl_node_map_set(cur, seg, value);
            value = NULL;
            if (rc < 0) sl_diag_add(d, set_file, 0, 0, "out of memory");
            goto out;
        }
        *dot = '\0';
        sl_node *child = sl_node_get(cur, seg);
        if (!child || child->kind != SL_NODE_MAP) {
            sl_node *map = node_new(SL_NODE_MAP, set_file, 0, 0);
            if (!map || sl_node_map_set(cur, seg, map) < 0) {
                sl_diag_add(d, set_file, 0, 0, "out of memory");
                goto out;
            }
            child = map;
        }
        *dot = '.';
        cur = child;
        seg = dot + 1;
    }
out:
    sl_node_destroy(&value);
    sl_diag_fini(&tmp);
    free(path);
    return rc;
}

/* ------------------------------------------------------------ scalars */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Decimal or 0x hex, optional sign; the whole text; no overflow. */
int sl_parse_int(const char *s, int64_t *out)
{
    uint64_t mag = 0, limit;
    int neg = 0, base = 10, digits = 0;

    if (!s) return -1;
    if (*s == '+' || *s == '-') neg = *s++ == '-';
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *s; s++, digits++) {
        unsigned d;
        if (is_digit(*s))
            d = (unsigned)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            return -1;
        if (mag > (limit - d) / (unsigned)base) return -1;
        mag = mag * (unsigned)base + d;
    }
    if (!digits) return -1;
    if (neg)
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    else
        *out = (int64_t)mag;
    return 0;
}

/* A finite decimal number (strtod syntax without words, hex floats or spaces). */
int sl_parse_double(const char *s, double *out)
{
    char *end;
    double v;
    int digits = 0;

    if (!s || !*s) return -1;
    for (const char *p = s; *p; p++) {
        if (is_digit(*p))
            digits++;
        else if (!strchr("+-.eE", *p))
            return -1;
    }
    if (!digits) return -1;
    errno = 0;
    v = strtod(s, &end);
    if (*end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* true/false/yes/no/on/off in any case. */
int sl_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};

    if (!s) return -1;
    for (size_t i = 0; i < 3; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = 1;
            return 0;
        }
        if (!strcasecmp(s, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/*
 * A sum of <number><unit> terms, number with an optional fraction; a bare "0".
 * Fractions finer than 1e-9 of a unit are truncated (they are below 87us even
 * for days). Negative values, missing units and overflow are errors.
 */
int sl_parse_duration(const char *s, int64_t *ns)
{
    static const struct {
        const char *name;
        size_t len;
        int64_t ns;
    } units[] = {
        /* two-letter units first so "ms" is not read as "m" */
        {"ns", 2, 1},
        {"us", 2, 1000},
        {"ms", 2, 1000000},
        {"s", 1, INT64_C(1000000000)},
        {"m", 1, INT64_C(60000000000)},
        {"h", 1, INT64_C(3600000000000)},
        {"d", 1, INT64_C(86400000000000)},
    };
    int64_t total = 0;

    if (!s || !*s) return -1;
    if (!strcmp(s, "0")) {
        *ns = 0;
        return 0;
    }
    while (*s) {
        int64_t whole = 0, frac = 0, den = 1, unit = 0;
        int fdigits = 0, wdigits = 0;

        for (; is_digit(*s); s++, wdigits++) {
            int dig = *s - '0';
            if (whole > (INT64_MAX - dig) / 10) return -1;
            whole = whole * 10 + dig;
        }
        if (*s == '.') {
            s++;
            if (!is_digit(*s)) return -1;
            for (; is_digit(*s); s++) {
                if (fdigits < 9) {
                    frac = frac * 10 + (*s - '0');
                    den *= 10;
                    fdigits++;
                }
            }
        } else if (!wdigits) {
            return -1;
        }
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (!strncmp(s, units[i].name, units[i].len)) {
                unit = units[i].ns;
                s += units[i].len;
                break;
            }
        }
        if (!unit) return -1;
        if (whole > (INT64_MAX - total) / unit) return -1;
        total += whole * unit;
        /* frac * unit / den without overflow: unit = q*den + r, r < den <= 1e9 */
        int64_t part = frac * (unit / den) + frac * (unit % den) / den;
        if (part > INT64_MAX - total) return -1;
        total += part;
    }
    *ns = total;
    return 0;
}

/* Bytes with an optional unit: B, K/KiB, M/MiB, G/GiB, T/TiB (1024^n), KB/MB/GB/TB (1000^n). */
int sl_parse_size(const char *s, uint64_t *bytes)
{
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"K", UINT64_C(1) << 10},
        {"KiB", UINT64_C(1) << 10},
        {"KB", UINT64_C(1000)},
        {"M", UINT64_C(1) << 20},
        {"MiB", UINT64_C(1) << 20},
        {"MB", UINT64_C(1000000)},
        {"G", UINT64_C(1) << 30},
        {"GiB", UINT64_C(1) << 30},
        {"GB", UINT64_C(1000000000)},
        {"T", UINT64_C(1) << 40},
        {"TiB", UINT64_C(1) << 40},
        {"TB", UINT64_C(1000000000000)},
    };
    uint64_t v = 0;
    int digits = 0;

    if (!s) return -1;
    for (; is_digit(*s); s++, digits++) {
        unsigned dig = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - dig) / 10) return -1;
        v = v * 10 + dig;
    }
    if (!digits) return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (!strcmp(s, units[i].name)) {
            if (v > UINT64_MAX / units[i].mult) return -1;
            *bytes = v * units[i].mult;
            return 0;
        }
    }
    return -1;
}

void sl_node_diag(sl_diag *d, const sl_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_diag_vadd(d, n ? n->file : NULL, n ? n->line : 0, n ? n->col : 0, fmt, ap);
    va_end(ap);
}
