/*
 * field_set.c - computed output fields (field_set.h).
 */
#include <stdlib.h>
#include <string.h>

#include "field_set.h"

static sl_field_tree *child(sl_field_tree *parent, const char *name, size_t len)
{
    for (size_t i = 0; i < parent->n_kids; i++)
        if (strlen(parent->kids[i].name) == len && memcmp(parent->kids[i].name, name, len) == 0)
            return &parent->kids[i];
    sl_field_tree *k = realloc(parent->kids, (parent->n_kids + 1) * sizeof *k);
    if (!k)
        return NULL;
    parent->kids = k;
    sl_field_tree *n = &k[parent->n_kids++];
    memset(n, 0, sizeof *n);
    n->field = -1;
    n->name = strndup(name, len);
    return n->name ? n : NULL;
}

static void free_tree(sl_field_tree *n)
{
    for (size_t i = 0; i < n->n_kids; i++)
        free_tree(&n->kids[i]);
    free(n->kids);
    free(n->name);
}

/* Place field i at its dotted name. Returns 0, or -1 (reported) on a clash. */
static int place(sl_ctx *ctx, sl_field_set *fs, size_t i, const sl_node *at)
{
    const char *name = fs->names[i];
    sl_field_tree *n = &fs->root;
    for (;;) {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);
        if (len == 0) {
            ctx->host->config_error(ctx, at, "invalid field name '%s'", fs->names[i]);
            return -1;
        }
        if (n->field >= 0)
            goto clash;
        n = child(n, name, len);
        if (!n)
            return -1;
        if (!dot)
            break;
        name = dot + 1;
    }
    if (n->field >= 0 || n->n_kids)
        goto clash;
    n->field = (int)i;
    return 0;
clash:
    ctx->host->config_error(ctx, at, "field '%s' clashes with another field's name",
                            fs->names[i]);
    return -1;
}

int sl_field_set_init(sl_field_set *fs, sl_ctx *ctx, const sl_node *fields,
                      const char *const *vars)
{
    const sl_host *h = ctx->host;
    memset(fs, 0, sizeof *fs);
    fs->root.field = -1;
    int bad = 0;
    for (size_t i = 0; fields && i < h->node_len(fields); i++) {
        if (i == SL_FIELDS_MAX) {
            h->config_error(ctx, fields, "at most %d computed fields", SL_FIELDS_MAX);
            return -1;
        }
        const sl_node *v = h->node_at(fields, i);
        fs->names[i] = h->node_key(fields, i);
        fs->exprs[i] = h->expr_compile(ctx, v, NULL, vars);
        bad |= !fs->exprs[i];
        fs->n = i + 1;
        if (!bad && place(ctx, fs, i, v) != 0)
            bad = 1;
    }
    return bad ? -1 : 0;
}

void sl_field_set_fini(sl_field_set *fs)
{
    free_tree(&fs->root);
    sl_wbuf_fini(&fs->vals);
}

int sl_field_set_eval(sl_field_set *fs, sl_ctx *ctx, const uint8_t *const *docs,
                      const size_t *lens, size_t n_docs, int null_on_error, size_t *failed)
{
    const sl_host *h = ctx->host;
    sl_wbuf_reset(&fs->vals);
    for (size_t i = 0; i < fs->n; i++) {
        fs->spans[i].off = fs->vals.len;
        if (h->expr_value(ctx, fs->exprs[i], docs, lens, n_docs, &fs->vals) != 0) {
            fs->vals.len = fs->spans[i].off;
            if (!null_on_error || sl_mp_write_nil(&fs->vals) != 0) {
                *failed = i;
                return -1;
            }
        }
        fs->spans[i].len = fs->vals.len - fs->spans[i].off;
    }
    return 0;
}

static int write_node(const sl_field_set *fs, const sl_field_tree *n, sl_wbuf *out)
{
    if (n->field >= 0)
        return sl_wbuf_append(out, fs->vals.data + fs->spans[n->field].off,
                              fs->spans[n->field].len);
    int bad = sl_mp_write_map(out, (uint32_t)n->n_kids);
    for (size_t i = 0; i < n->n_kids; i++) {
        bad |= sl_mp_write_cstr(out, n->kids[i].name);
        bad |= write_node(fs, &n->kids[i], out);
    }
    return bad;
}

int sl_field_set_write(const sl_field_set *fs, sl_wbuf *out)
{
    int bad = 0;
    for (size_t i = 0; i < fs->root.n_kids; i++) {
        bad |= sl_mp_write_cstr(out, fs->root.kids[i].name);
        bad |= write_node(fs, &fs->root.kids[i], out);
    }
    return bad ? -1 : 0;
}
