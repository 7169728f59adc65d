/*
 * catalog_seed.c - the catalog's seed file, read and checked by init (so
 * `sluice validate` reports its mistakes at their file:line:col) and applied
 * by start (catalog_store.c).
 *
 *   apis:
 *     - id: stripe-payments
 *       name: Stripe Payments
 *       category: payments
 *       ...
 *       openapi: {openapi: "3.0.3", info: {title: ..., version: "1.0"}, paths: {...}}
 *
 * Each entry becomes msgpack and is checked by the same reader as an admin
 * request's body (cat_api_read). Scalars of the record's own members are
 * taken as text (`version: 1.0` is "1.0"); inside `openapi` they are typed
 * as YAML's core schema types them (`minimum: 0` is a number, `required:
 * true` a boolean), since the document is served as JSON.
 *
 * The file is loaded with the engine's YAML loader (config.h) as auth loads
 * its seed: the host table has no call to read a second YAML file, and this
 * operator needs the scalars' quoted/null flags that sl_node carries.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "config.h"
#include "diag.h"

/* A plain scalar as YAML's core schema types it; quoted ones are strings. */
static int typed_scalar(const sl_node *n, sl_wbuf *out)
{
    int64_t i;
    double d;
    const char *s = n->str ? n->str : "";
    if (n->quoted) return sl_mp_write_cstr(out, s);
    if (n->is_null) return sl_mp_write_nil(out);
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return sl_mp_write_bool(out, 1);
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return sl_mp_write_bool(out, 0);
    if (sl_parse_int(s, &i) == 0)
        return i < 0 ? sl_mp_write_int(out, i) : sl_mp_write_uint(out, (uint64_t)i);
    if (sl_parse_double(s, &d) == 0 && isfinite(d)) return sl_mp_write_double(out, d);
    return sl_mp_write_cstr(out, s);
}

/* Node n as msgpack: scalars typed (`typed`) or as text (a plain null stays null). */
static int node_to_mp(const sl_node *n, int typed, sl_wbuf *out)
{
    switch (n->kind) {
    case SL_NODE_SCALAR:
        if (typed) return typed_scalar(n, out);
        if (n->is_null && !n->quoted) return sl_mp_write_nil(out);
        return sl_mp_write_cstr(out, n->str ? n->str : "");
    case SL_NODE_SEQ:
        if (n->n > UINT32_MAX || sl_mp_write_array(out, (uint32_t)n->n) != 0) return -1;
        for (size_t i = 0; i < n->n; i++)
            if (node_to_mp(n->items[i], typed, out) != 0) return -1;
        return 0;
    case SL_NODE_MAP:
        if (n->n > UINT32_MAX || sl_mp_write_map(out, (uint32_t)n->n) != 0) return -1;
        for (size_t i = 0; i < n->n; i++)
            if (sl_mp_write_cstr(out, n->keys[i]) != 0 ||
                node_to_mp(n->items[i], typed || !strcmp(n->keys[i], "openapi"), out) != 0)
                return -1;
        return 0;
    }
    return -1;
}

/* The node an error's path leads to, as far as it goes. */
static const sl_node *locate(const sl_node *entry, const cat_err *e)
{
    const sl_node *n = entry;
    for (int i = 0; i < e->depth; i++) {
        const sl_node *next = NULL;
        if (e->at[i].key[0])
            next = n->kind == SL_NODE_MAP ? sl_node_get(n, e->at[i].key) : NULL;
        else if (n->kind == SL_NODE_SEQ && e->at[i].index >= 0 && (size_t)e->at[i].index < n->n)
            next = n->items[e->at[i].index];
        if (!next) break;
        n = next;
    }
    return n;
}

typedef struct seen_id {
    const char *id;
    const sl_node *at;
} seen_id;

static int cmp_seen(const void *x, const void *y)
{
    const seen_id *a = x, *b = y;
    int r = strcmp(a->id, b->id);
    if (r) return r;
    return a->at->line != b->at->line ? a->at->line - b->at->line : a->at->col - b->at->col;
}

/* Check every entry of list (a sequence) and keep the good ones in c->seed. */
static int read_entries(catalog *c, sl_ctx *ctx, const sl_node *list, seen_id *seen, size_t *n_seen)
{
    const sl_host *h = ctx->host;
    sl_wbuf tmp, doc;
    sl_wbuf_init(&tmp);
    sl_wbuf_init(&doc);
    int bad = 0;
    c->seed_ends = calloc(list->n ? list->n : 1, sizeof *c->seed_ends);
    if (!c->seed_ends) return -1;
    for (size_t i = 0; i < list->n; i++) {
        const sl_node *entry = list->items[i];
        if (entry->kind != SL_NODE_MAP) {
            h->config_error(ctx, entry, "an API is a map {id, name, category, openapi, ...}");
            bad = 1;
            continue;
        }
        sl_wbuf_reset(&tmp);
        if (node_to_mp(entry, 0, &tmp) != 0) {
            bad = -1;
            break;
        }
        cat_api a;
        cat_err e;
        if (cat_api_read(tmp.data, tmp.len, CAT_FROM_SEED, &a, &e) != 0 ||
            cat_api_complete(&a, &e) != 0) {
            h->config_error(ctx, locate(entry, &e), "%s", e.msg);
            bad = 1;
            continue;
        }
        sl_wbuf_reset(&doc);
        if (sl_msgpack_to_json(a.openapi, a.openapi_len, &doc) != 0) {
            bad = -1;
            break;
        }
        if (doc.len > CAT_MAX_DOC) {
            h->config_error(ctx, sl_node_get(entry, "openapi"),
                            "the OpenAPI document has %zu bytes as JSON; at most %u", doc.len,
                            CAT_MAX_DOC);
            bad = 1;
            continue;
        }
        const sl_node *idn = sl_node_get(entry, "id");
        seen[(*n_seen)++] = (seen_id){idn->str, idn};
        if (sl_wbuf_append(&c->seed, tmp.data, tmp.len) != 0) {
            bad = -1;
            break;
        }
        c->seed_ends[c->n_seed++] = c->seed.len;
    }
    sl_wbuf_fini(&tmp);
    sl_wbuf_fini(&doc);
    return bad;
}

int cat_seed_load(catalog *c, sl_ctx *ctx, const sl_node *at)
{
    const sl_host *h = ctx->host;
    sl_diag d;
    sl_node *root = NULL;
    sl_diag_init(&d);
    if (sl_config_load_file(c->seed_path, &d, &root) != 0) {
        for (size_t i = 0; i < d.n; i++) {
            char line[512];
            h->config_error(ctx, at, "seed: %s", sl_diag_format(&d, i, line, sizeof line));
        }
        if (d.n == 0) h->config_error(ctx, at, "seed: cannot load '%s'", c->seed_path);
        sl_diag_fini(&d);
        sl_node_destroy(&root);
        return -1;
    }
    sl_diag_fini(&d);
    static const char *const top[] = {"apis", NULL};
    int bad = 0;
    const sl_node *list = NULL;
    if (root->kind != SL_NODE_MAP) {
        h->config_error(ctx, root, "a catalog seed file is a map {apis: [...]}");
        bad = 1;
    } else {
        for (size_t i = 0; i < root->n; i++) {
            if (strcmp(root->keys[i], "apis") == 0) continue;
            const char *hint = sl_suggest(root->keys[i], top);
            h->config_error(ctx, root->key_nodes[i], "seed file: unknown key '%s' (%s%s%s)",
                            root->keys[i], hint ? "did you mean '" : "expected 'apis'",
                            hint ? hint : "", hint ? "'?" : "");
            bad = 1;
        }
        list = sl_node_get(root, "apis");
        if (!list) {
            h->config_error(ctx, root, "a catalog seed file is a map {apis: [...]}");
            bad = 1;
        } else if (list->kind != SL_NODE_SEQ && !(list->kind == SL_NODE_SCALAR && list->is_null)) {
            h->config_error(ctx, list, "apis is a list of APIs {id, name, category, openapi, ...}");
            bad = 1;
            list = NULL;
        } else if (list->kind != SL_NODE_SEQ) {
            list = NULL; /* `apis:` left empty: an empty catalog */
        }
    }
    if (list) {
        seen_id *seen = calloc(list->n ? list->n : 1, sizeof *seen);
        size_t n_seen = 0;
        int r = seen ? read_entries(c, ctx, list, seen, &n_seen) : -1;
        if (r < 0) h->config_error(ctx, at, "seed: out of memory");
        bad |= r != 0;
        if (seen) {
            qsort(seen, n_seen, sizeof *seen, cmp_seen);
            for (size_t i = 1; i < n_seen; i++)
                if (strcmp(seen[i].id, seen[i - 1].id) == 0) {
                    h->config_error(ctx, seen[i].at, "API id '%s' appears twice (first at line %d)",
                                    seen[i].id, seen[i - 1].at->line);
                    bad = 1;
                }
        }
        free(seen);
    }
    sl_node_destroy(&root);
    return bad ? -1 : 0;
}
