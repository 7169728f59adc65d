/*
 * sluice_test_value.c - YAML nodes as msgpack and as flow YAML, msgpack as
 * short JSON, and a list of strings, for `sluice test` (sluice_test_value.h).
 *
 * The converters recurse over the node tree; config.c already limits a
 * tree's depth, so the recursion is bounded by what a file can hold.
 */
#include "sluice_test_value.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* ------------------------------------------------------------- strings */

int sl__strs_add(sl__strs *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

int sl__strs_addf(sl__strs *l, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int rc;

    va_start(ap, fmt);
    rc = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (rc < 0)
        return -1;
    rc = sl__strs_add(l, s);
    free(s);
    return rc;
}

void sl__strs_fini(sl__strs *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ------------------------------------------------------------- msgpack */

/* YAML core schema booleans. */
static int plain_bool(const char *s, int *b)
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        *b = 1;
        return 1;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        *b = 0;
        return 1;
    }
    return 0;
}

/* A plain scalar typed as YAML's core schema types it. */
static int scalar_to_msgpack(const sl_node *n, sl_wbuf *out)
{
    int64_t i;
    double d;
    int b;

    if (n->quoted)
        return sl_mp_write_cstr(out, n->str);
    if (n->is_null)
        return sl_mp_write_nil(out);
    if (plain_bool(n->str, &b))
        return sl_mp_write_bool(out, b);
    if (sl_parse_int(n->str, &i) == 0)
        return i < 0 ? sl_mp_write_int(out, i) : sl_mp_write_uint(out, (uint64_t)i);
    if (sl_parse_double(n->str, &d) == 0)
        return sl_mp_write_double(out, d);
    return sl_mp_write_cstr(out, n->str);
}

int sl__node_to_msgpack(const sl_node *n, sl_wbuf *out)
{
    switch (n->kind) {
    case SL_NODE_SCALAR:
        return scalar_to_msgpack(n, out);
    case SL_NODE_SEQ:
        if (n->n > UINT32_MAX || sl_mp_write_array(out, (uint32_t)n->n) != 0)
            return -1;
        for (size_t i = 0; i < n->n; i++)
            if (sl__node_to_msgpack(n->items[i], out) != 0)
                return -1;
        return 0;
    case SL_NODE_MAP:
        if (n->n > UINT32_MAX || sl_mp_write_map(out, (uint32_t)n->n) != 0)
            return -1;
        for (size_t i = 0; i < n->n; i++)
            if (sl_mp_write_cstr(out, n->keys[i]) != 0 ||
                sl__node_to_msgpack(n->items[i], out) != 0)
                return -1;
        return 0;
    }
    return -1;
}

/* ----------------------------------------------------------- flow YAML */

/* Append s[0..len) with '$' doubled when `dollars`, '\'' doubled when `quotes`. */
static int append_escaped(sl_wbuf *out, const char *s, size_t len, int dollars, int quotes)
{
    for (size_t i = 0; i < len; i++) {
        if ((dollars && s[i] == '$') || (quotes && s[i] == '\'')) {
            if (sl_wbuf_append(out, &s[i], 1) != 0)
                return -1;
        }
        if (sl_wbuf_append(out, &s[i], 1) != 0)
            return -1;
    }
    return 0;
}

int sl__yaml_quote(sl_wbuf *out, const char *s)
{
    if (sl_wbuf_append(out, "'", 1) != 0 || append_escaped(out, s, strlen(s), 1, 1) != 0 ||
        sl_wbuf_append(out, "'", 1) != 0)
        return -1;
    return 0;
}

/* Whether plain text s reads back as the same plain scalar inside a flow collection. */
static int flow_plain_ok(const char *s)
{
    size_t len = strlen(s);

    if (!len || s[0] == ' ' || s[len - 1] == ' ')
        return 0;
    if (strchr("-?:,[]{}#&*!|>'\"%@`", s[0]) && !(s[0] == '-' && s[1] && s[1] != ' '))
        return 0;
    for (const char *c = s; *c; c++) {
        if (strchr(",[]{}\n\t\r", *c))
            return 0;
        if (c[0] == ':' && (c[1] == ' ' || c[1] == '\0'))
            return 0;
        if (c[0] == ' ' && c[1] == '#')
            return 0;
    }
    return 1;
}

/* Keys are not ${VAR}-expanded by the loader: quote them without doubling '$'. */
static int flow_key(sl_wbuf *out, const char *k)
{
    if (sl_wbuf_append(out, "'", 1) != 0 || append_escaped(out, k, strlen(k), 0, 1) != 0 ||
        sl_wbuf_append(out, "'", 1) != 0)
        return -1;
    return 0;
}

static int flow_node(const sl_node *n, sl_wbuf *out)
{
    switch (n->kind) {
    case SL_NODE_SCALAR:
        if (n->is_null && !n->quoted)
            return sl_wbuf_append(out, "~", 1);
        if (!n->quoted && flow_plain_ok(n->str))
            return append_escaped(out, n->str, strlen(n->str), 1, 0);
        return sl__yaml_quote(out, n->str);
    case SL_NODE_SEQ:
    case SL_NODE_MAP:
        if (sl_wbuf_append(out, n->kind == SL_NODE_SEQ ? "[" : "{", 1) != 0)
            return -1;
        for (size_t i = 0; i < n->n; i++) {
            if (i && sl_wbuf_append(out, ", ", 2) != 0)
                return -1;
            if (n->kind == SL_NODE_MAP &&
                (flow_key(out, n->keys[i]) != 0 || sl_wbuf_append(out, ": ", 2) != 0))
                return -1;
            if (flow_node(n->items[i], out) != 0)
                return -1;
        }
        return sl_wbuf_append(out, n->kind == SL_NODE_SEQ ? "]" : "}", 1);
    }
    return -1;
}

int sl__node_to_flow(const sl_node *n, sl_wbuf *out)
{
    if (flow_node(n, out) != 0 || sl_wbuf_append(out, "", 1) != 0)
        return -1;
    out->len--; /* keep the NUL outside the length */
    return 0;
}

/* ---------------------------------------------------------------- text */

const char *sl__cut(const char *s, size_t max, char *buf, size_t n)
{
    size_t len = strlen(s);

    if (len <= max) {
        snprintf(buf, n, "%s", s);
        return buf;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--; /* do not cut a UTF-8 sequence */
    snprintf(buf, n, "%.*s...", (int)max, s);
    return buf;
}

const char *sl__mp_json(const uint8_t *mp, size_t len, size_t max, char *buf, size_t n)
{
    sl_wbuf w;

    sl_wbuf_init(&w);
    if (sl_msgpack_to_json(mp, len, &w) != 0 || sl_wbuf_append(&w, "", 1) != 0)
        snprintf(buf, n, "(invalid)");
    else
        sl__cut((const char *)w.data, max, buf, n);
    sl_wbuf_fini(&w);
    return buf;
}
