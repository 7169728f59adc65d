/*
 * params.c - an operator's YAML mapping checked against its sl_param table.
 *
 * Design: one pass over the mapping's keys (unknown keys, with a "did you
 * mean" drawn from the table and the engine's own keys; value types), one
 * pass over the table (missing required keys), and only when both are clean
 * a last pass that inserts default values, so an operator's init always
 * finds every parameter that has a default. Every problem is a diagnostic at
 * the offending node: the key for an unknown key, the value for a bad value,
 * the operator's mapping for a missing key.
 *
 * ABI: the table comes from the operator descriptor, possibly from a plugin
 * built against another sl_param layout. Entries are read `stride` bytes
 * apart and copied into a zeroed sl_param of our own layout, so a smaller
 * (older) entry reads as if the newer fields were zero and a larger (newer)
 * one has its extra fields ignored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"

/* Longest scalar text quoted in a message; longer text is cut with "...". */
#define QUOTE_MAX 80

/* Entry i of the table, normalised to our sl_param layout. */
static sl_param table_entry(const sl_param *table, size_t stride, size_t i)
{
    sl_param p;
    memset(&p, 0, sizeof p);
    memcpy(&p, (const char *)table + i * stride, stride < sizeof p ? stride : sizeof p);
    return p;
}

/* Number of entries before the terminating {NULL}. */
static size_t table_len(const sl_param *table, size_t stride)
{
    size_t n = 0;

    if (!table || stride < sizeof(const char *)) return 0;
    while (table_entry(table, stride, n).name)
        n++;
    return n;
}

/* Human names of the types, as `sluice inspect` shows them. */
const char *sl_param_type_name(sl_param_type t)
{
    switch (t) {
    case SL_PARAM_STRING:
        return "string";
    case SL_PARAM_INT:
        return "int";
    case SL_PARAM_DOUBLE:
        return "double";
    case SL_PARAM_BOOL:
        return "bool";
    case SL_PARAM_DURATION:
        return "duration";
    case SL_PARAM_SIZE:
        return "size";
    case SL_PARAM_ENUM:
        return "enum";
    case SL_PARAM_EXPR:
        return "expr";
    case SL_PARAM_LIST:
        return "list";
    case SL_PARAM_MAP:
        return "map";
    case SL_PARAM_ANY:
        return "any";
    }
    return "unknown";
}

/* What a value of type t looks like, for "expected ..." in messages. */
static const char *expected_text(sl_param_type t)
{
    switch (t) {
    case SL_PARAM_INT:
        return "an integer";
    case SL_PARAM_DOUBLE:
        return "a number";
    case SL_PARAM_BOOL:
        return "true or false";
    case SL_PARAM_DURATION:
        return "a duration, e.g. 250ms, 5s, 1m";
    case SL_PARAM_SIZE:
        return "a size, e.g. 512, 64KiB, 16MiB, 1GB";
    case SL_PARAM_ENUM:
        return "one of the listed values";
    case SL_PARAM_EXPR:
        return "an expression";
    case SL_PARAM_LIST:
        return "a sequence";
    case SL_PARAM_MAP:
        return "a mapping";
    case SL_PARAM_STRING:
    case SL_PARAM_ANY:
        return "a value";
    }
    return "a value";
}

/*
 * The enum's choices "a|b|c" split in place into a NULL-terminated array
 * (*words), pointing into *buf; both freed by the caller. -1 on out of memory.
 */
static int split_choices(const char *choices, char **buf, const char ***words)
{
    size_t n = 1;

    *buf = strdup(choices);
    for (const char *c = choices; *c; c++)
        n += *c == '|';
    *words = malloc((n + 1) * sizeof **words);
    if (!*buf || !*words) return -1;
    n = 0;
    for (char *w = *buf;;) {
        char *bar = strchr(w, '|');
        (*words)[n++] = w;
        if (!bar) break;
        *bar = '\0';
        w = bar + 1;
    }
    (*words)[n] = NULL;
    return 0;
}

/* Check an enum value; writes the message (with choices and a suggestion) on failure. */
static int check_enum(const sl_param *p, const char *s, int cut, const char *dots, char *msg,
                      size_t n)
{
    char *buf = NULL;
    const char **words = NULL;
    int rc = -1;

    if (split_choices(p->choices, &buf, &words) < 0) {
        snprintf(msg, n, "out of memory");
        goto out;
    }
    for (size_t i = 0; words[i]; i++) {
        if (!strcmp(s, words[i])) {
            rc = 0;
            goto out;
        }
    }
    /* the list as "a, b, c": the choices with '|' shown as ", " */
    char list[512];
    size_t len = 0;
    list[0] = '\0';
    for (size_t i = 0; words[i] && len < sizeof list; i++) {
        int w = snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", words[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
    const char *hint = sl_suggest(s, words);
    if (hint)
        snprintf(msg, n,
                 "invalid value '%.*s%s' for '%s' (expected one of: %s; did you mean '%s'?)", cut,
                 s, dots, p->name, list, hint);
    else
        snprintf(msg, n, "invalid value '%.*s%s' for '%s' (expected one of: %s)", cut, s, dots,
                 p->name, list);
out:
    free(words);
    free(buf);
    return rc;
}

/* Check value v against parameter p; 0, or -1 with a position-less message in msg. */
int sl_param_check_value(const sl_param *p, const sl_node *v, char *msg, size_t n)
{
    sl_node_kind want;
    int64_t i64;
    uint64_t u64;
    double dbl;
    int b;

    switch (p->type) {
    case SL_PARAM_ANY:
        return 0;
    case SL_PARAM_LIST:
        want = SL_NODE_SEQ;
        break;
    case SL_PARAM_MAP:
        want = SL_NODE_MAP;
        break;
    default:
        want = SL_NODE_SCALAR;
        break;
    }
    if (v->kind == SL_NODE_SCALAR && v->is_null && p->type != SL_PARAM_STRING) {
        snprintf(msg, n, "missing value for '%s' (expected %s)", p->name, expected_text(p->type));
        return -1;
    }
    if (v->kind != want) {
        snprintf(msg, n, "expected %s for '%s', found %s", sl_node_kind_name(want), p->name,
                 sl_node_kind_name(v->kind));
        return -1;
    }
    if (want != SL_NODE_SCALAR) return 0;

    const char *s = v->str;
    size_t len = strlen(s);
    int cut = len > QUOTE_MAX ? QUOTE_MAX : (int)len;
    const char *dots = len > QUOTE_MAX ? "..." : "";
    switch (p->type) {
    case SL_PARAM_INT:
        if (sl_parse_int(s, &i64) == 0) return 0;
        snprintf(msg, n, "invalid integer '%.*s%s' for '%s'", cut, s, dots, p->name);
        return -1;
    case SL_PARAM_DOUBLE:
        if (sl_parse_double(s, &dbl) == 0) return 0;
        snprintf(msg, n, "invalid number '%.*s%s' for '%s'", cut, s, dots, p->name);
        return -1;
    case SL_PARAM_BOOL:
        if (sl_parse_bool(s, &b) == 0) return 0;
        snprintf(msg, n, "invalid boolean '%.*s%s' for '%s' (expected true or false)", cut, s, dots,
                 p->name);
        return -1;
    case SL_PARAM_DURATION:
        if (sl_parse_duration(s, &i64) == 0) return 0;
        snprintf(msg, n, "invalid duration '%.*s%s' for '%s' (expected e.g. 250ms, 5s, 1m)", cut, s,
                 dots, p->name);
        return -1;
    case SL_PARAM_SIZE:
        if (sl_parse_size(s, &u64) == 0) return 0;
        snprintf(msg, n, "invalid size '%.*s%s' for '%s' (expected e.g. 512, 64KiB, 16MiB, 1GB)",
                 cut, s, dots, p->name);
        return -1;
    case SL_PARAM_ENUM:
        return p->choices ? check_enum(p, s, cut, dots, msg, n) : 0;
    default: /* STRING, EXPR: any scalar text */
        return 0;
    }
}

/* Whether key is one of the NULL-terminated words (list may be NULL). */
static int in_list(const char *key, const char *const *list)
{
    for (size_t i = 0; list && list[i]; i++)
        if (!strcmp(key, list[i])) return 1;
    return 0;
}

/*
 * Insert the defaults of parameters absent from op, at op's position.
 * A default that does not parse or check is the operator author's bug; it is
 * reported like a user mistake so it cannot pass unnoticed. Returns problems.
 */
static int apply_defaults(sl_node *op, const sl_param *params, size_t count, const char *op_name,
                          sl_diag *d)
{
    int problems = 0;

    for (size_t i = 0; i < count; i++) {
        const sl_param *p = &params[i];
        sl_node *node = NULL;
        sl_diag tmp;
        char msg[512];

        if (!p->default_value || sl_node_index(op, p->name) >= 0) continue;
        sl_diag_init(&tmp);
        if (sl_node_parse(p->default_value, op->file, op->line, op->col, &tmp, &node) < 0) {
            sl_diag_add(d, op->file, op->line, op->col,
                        "invalid default '%s' for parameter '%s' of operator type '%s': %s",
                        p->default_value, p->name, op_name,
                        tmp.n ? tmp.items[0].msg : "out of memory");
            problems++;
        } else if (sl_param_check_value(p, node, msg, sizeof msg) < 0) {
            sl_diag_add(d, op->file, op->line, op->col,
                        "invalid default for operator type '%s': %s", op_name, msg);
            problems++;
        } else if (sl_node_map_set(op, p->name, node) < 0) {
            sl_diag_add(d, op->file, op->line, op->col, "out of memory");
            problems++;
        } else {
            node = NULL; /* now owned by op */
        }
        sl_node_destroy(&node);
        sl_diag_fini(&tmp);
    }
    return problems;
}

/* Check op against the table, then insert defaults if it is clean; returns the problem count. */
int sl_params_check(sl_node *op, const sl_param *table, size_t stride,
                    const char *const *engine_keys, const char *op_name, sl_diag *d)
{
    size_t count, nengine = 0;
    sl_param *params = NULL;
    const char **names = NULL;
    int problems = 0;
    char msg[512];

    if (stride == 0) stride = sizeof(sl_param);
    if (!op || op->kind != SL_NODE_MAP) {
        if (op)
            sl_diag_add(d, op->file, op->line, op->col,
                        "expected a mapping for operator type '%s', found %s", op_name,
                        sl_node_kind_name(op->kind));
        return 1;
    }
    count = table_len(table, stride);
    while (engine_keys && engine_keys[nengine])
        nengine++;
    params = calloc(count + 1, sizeof *params);
    names = calloc(count + nengine + 1, sizeof *names);
    if (!params || !names) {
        sl_diag_add(d, op->file, op->line, op->col, "out of memory");
        problems = 1;
        goto out;
    }
    /* suggestions come from the table first, then the engine's keys */
    for (size_t i = 0; i < count; i++) {
        params[i] = table_entry(table, stride, i);
        names[i] = params[i].name;
    }
    for (size_t i = 0; i < nengine; i++)
        names[count + i] = engine_keys[i];

    for (size_t k = 0; k < op->n; k++) {
        const char *key = op->keys[k];
        const sl_node *kn = op->key_nodes[k], *v = op->items[k];
        const sl_param *p = NULL;

        if (in_list(key, engine_keys)) continue;
        for (size_t i = 0; i < count && !p; i++)
            if (!strcmp(params[i].name, key)) p = &params[i];
        if (!p) {
            const char *hint = sl_suggest(key, names);
            if (hint)
                sl_diag_add(d, kn->file, kn->line, kn->col,
                            "unknown parameter '%s' for operator type '%s' (did you mean '%s'?)",
                            key, op_name, hint);
            else
                sl_diag_add(d, kn->file, kn->line, kn->col,
                            "unknown parameter '%s' for operator type '%s'", key, op_name);
            problems++;
            continue;
        }
        if (p->required && v->kind == SL_NODE_SCALAR && v->is_null) {
            sl_diag_add(d, v->file, v->line, v->col,
                        "missing value for required parameter '%s' of operator type '%s'", key,
                        op_name);
            problems++;
        } else if (sl_param_check_value(p, v, msg, sizeof msg) < 0) {
            sl_diag_add(d, v->file, v->line, v->col, "%s", msg);
            problems++;
        }
    }
    for (size_t i = 0; i < count; i++) {
        if (params[i].required && sl_node_index(op, params[i].name) < 0) {
            sl_diag_add(d, op->file, op->line, op->col,
                        "missing required parameter '%s' for operator type '%s'", params[i].name,
                        op_name);
            problems++;
        }
    }
    if (problems == 0) problems = apply_defaults(op, params, count, op_name, d);
out:
    free(params);
    free(names);
    return problems;
}
