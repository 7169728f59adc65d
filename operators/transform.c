/*
 * transform.c - `transform`: reshape each event.
 *
 *   fields: {orderId: data.orderId, amount: data.total, "geo.country": data.cc}
 *   keep: [type]          copy these top-level attributes too
 *   drop: [source]        remove these top-level attributes
 *   rename: {data: payload}
 *
 * The output starts from a base: with `fields` or `keep`, the input's `id`
 * and `time` plus the `keep` attributes (DESIGN.md: "output = exactly these
 * fields, plus id/time, kept"); with neither, every top-level attribute of
 * the input. `drop` removes base attributes, `rename` renames them, then
 * each field is computed and added (a field replaces a base attribute of
 * the same name). A dotted field name builds nested maps: "geo.country"
 * -> {"geo": {"country": ...}}.
 *
 * Per event: fields are evaluated into a reused scratch buffer first, so an
 * evaluation error sends the event to `errors` untouched (drop envelope
 * naming the field); then the output map is written once, with its size
 * known. No allocation once the buffers are warm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/operator.h"

#include "field_set.h"

#define MAX_NAMES 64

/* A list of top-level attribute names, with their lengths (compared per event). */
typedef struct name_list {
    const char *name[MAX_NAMES];
    size_t len[MAX_NAMES];
    size_t n;
} name_list;

typedef struct transform {
    sl_field_set fields;
    int base_all;                  /* base = every input attribute */
    name_list keep, drop, ren_from, ren_to, computed; /* computed: the top-level outputs */
    int errors_port;
    sl_wbuf out;
} transform;

static const sl_param params[] = {
    {"fields", SL_PARAM_MAP, NULL, 0, "output name -> expression; dotted names nest", NULL},
    {"keep", SL_PARAM_LIST, NULL, 0, "top-level attributes copied besides id and time", NULL},
    {"drop", SL_PARAM_LIST, NULL, 0, "top-level attributes removed", NULL},
    {"rename", SL_PARAM_MAP, NULL, 0, "top-level attribute -> new name", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "errors", NULL};

static int add_name(name_list *l, const char *name)
{
    if (l->n == MAX_NAMES)
        return -1;
    l->name[l->n] = name;
    l->len[l->n++] = strlen(name);
    return 0;
}

/* Read a list of names (keep/drop). Returns 0 or -1 (reported). */
static int names(sl_ctx *ctx, const char *param, name_list *out)
{
    const sl_host *h = ctx->host;
    const sl_node *list = h->param(ctx, param);
    for (size_t i = 0; list && i < h->node_len(list); i++) {
        const sl_node *v = h->node_at(list, i);
        if (h->node_kind(v) != SL_NODE_SCALAR || add_name(out, h->node_str(v)) != 0) {
            h->config_error(ctx, v, "'%s' takes a list of up to %d names", param, MAX_NAMES);
            return -1;
        }
    }
    return 0;
}

static int transform_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    transform *t = calloc(1, sizeof *t);
    if (!t)
        return SL_ERROR;
    *state = t;
    t->errors_port = h->port(ctx, "errors");
    const sl_node *fields = h->param(ctx, "fields");
    if (names(ctx, "keep", &t->keep) || names(ctx, "drop", &t->drop))
        return SL_ERROR;
    const sl_node *ren = h->param(ctx, "rename");
    for (size_t i = 0; ren && i < h->node_len(ren); i++) {
        const sl_node *v = h->node_at(ren, i);
        if (h->node_kind(v) != SL_NODE_SCALAR || add_name(&t->ren_from, h->node_key(ren, i)) ||
            add_name(&t->ren_to, h->node_str(v))) {
            h->config_error(ctx, v, "'rename' maps up to %d names to names", MAX_NAMES);
            return SL_ERROR;
        }
    }
    t->base_all = !fields && !h->param(ctx, "keep");
    if (!fields && !t->keep.n && !t->drop.n && !t->ren_from.n) {
        h->config_error(ctx, NULL, "transform needs 'fields', 'keep', 'drop' or 'rename'");
        return SL_ERROR;
    }
    int bad = sl_field_set_init(&t->fields, ctx, fields, NULL) != 0;
    /* at most SL_FIELDS_MAX = MAX_NAMES top-level outputs */
    for (size_t i = 0; !bad && i < sl_field_set_top(&t->fields); i++)
        add_name(&t->computed, sl_field_set_top_name(&t->fields, i));
    return bad ? SL_ERROR : SL_OK;
}

static int in_list(const name_list *l, const char *k, size_t klen)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->len[i] == klen && memcmp(l->name[i], k, klen) == 0)
            return (int)i;
    return -1;
}

/* Build the output for one event into t->out. Returns 1 ok, 0 eval error, -1 bad input. */
static int build(transform *t, sl_ctx *ctx, const uint8_t *ev, size_t len, const char **why)
{
    size_t failed;
    if (sl_field_set_eval(&t->fields, ctx, &ev, &len, 1, 0, &failed) != 0) {
        *why = t->fields.names[failed];
        return 0;
    }
    /* the base attributes kept, after room for the largest map header */
    const uint8_t *p = ev, *end = ev + len;
    sl_mp_val m;
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP)
        return -1;
    enum { HDR = 5 };
    sl_wbuf_reset(&t->out);
    if (sl_wbuf_append(&t->out, "\xdf\0\0\0\0", HDR) != 0)
        return -1;
    uint32_t count = (uint32_t)t->computed.n;
    for (uint32_t i = 0; i < m.v.n; i++) {
        const char *key;
        size_t klen;
        if (p < end && (*p & 0xe0) == 0xa0) { /* fixstr: the usual key */
            klen = *p & 0x1f;
            key = (const char *)p + 1;
            p += 1 + klen;
        } else {
            sl_mp_val k;
            const uint8_t *kstart = p;
            if (sl_mp_read(&p, end, &k) != 0)
                return -1;
            if (k.type != SL_MP_STR) {
                p = kstart;
                if (sl_mp_skip(&p, end) != 0 || sl_mp_skip(&p, end) != 0)
                    return -1;
                continue; /* non-string keys are not attributes: dropped */
            }
            key = k.v.str.ptr;
            klen = k.v.str.len;
        }
        const uint8_t *vstart = p;
        if (p > end || sl_mp_skip(&p, end) != 0)
            return -1;
        int base = t->base_all || (klen == 2 && memcmp(key, "id", 2) == 0) ||
                   (klen == 4 && memcmp(key, "time", 4) == 0) || in_list(&t->keep, key, klen) >= 0;
        if (!base || in_list(&t->drop, key, klen) >= 0)
            continue;
        int r = in_list(&t->ren_from, key, klen);
        const char *name = r >= 0 ? t->ren_to.name[r] : key;
        size_t nlen = r >= 0 ? t->ren_to.len[r] : klen;
        if (in_list(&t->computed, name, nlen) >= 0)
            continue;
        count++;
        if (sl_mp_write_str(&t->out, name, nlen) != 0 ||
            sl_wbuf_append(&t->out, vstart, (size_t)(p - vstart)) != 0)
            return -1;
    }
    /* the real header, as small as the count allows, in front of the attributes */
    uint8_t hdr[HDR];
    size_t hlen = count < 16 ? 1 : count < 65536 ? 3 : 5;
    if (hlen == 1) {
        hdr[0] = (uint8_t)(0x80 | count);
    } else if (hlen == 3) {
        hdr[0] = 0xde;
        hdr[1] = (uint8_t)(count >> 8);
        hdr[2] = (uint8_t)count;
    } else {
        hdr[0] = 0xdf;
        for (int k = 0; k < 4; k++)
            hdr[1 + k] = (uint8_t)(count >> (24 - 8 * k));
    }
    memmove(t->out.data + hlen, t->out.data + HDR, t->out.len - HDR);
    memcpy(t->out.data, hdr, hlen);
    t->out.len -= HDR - hlen;
    return sl_field_set_write(&t->fields, &t->out) != 0 ? -1 : 1;
}

static int transform_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    transform *t = state;
    const sl_host *h = ctx->host;
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        const char *field = NULL;
        int r = build(t, ctx, ev, len, &field);
        int rc;
        if (r == 1) {
            rc = h->emit(ctx, 0, t->out.data, t->out.len);
        } else {
            char detail[512];
            if (r == 0)
                snprintf(detail, sizeof detail, "field '%s': %s", field, h->expr_error(ctx));
            else
                snprintf(detail, sizeof detail, "event is not a msgpack map");
            h->count(ctx, "eval_errors", 1);
            rc = h->emit_drop(ctx, t->errors_port, r == 0 ? "eval_error" : "malformed", detail, ev,
                              len, NULL, 0);
        }
        if (rc != 0)
            return SL_ERROR;
    }
    return SL_OK;
}

static void transform_destroy(void *state)
{
    transform *t = state;
    if (!t)
        return;
    sl_field_set_fini(&t->fields);
    sl_wbuf_fini(&t->out);
    free(t);
}

const sl_operator sl_op_transform = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "transform",
    .summary = "Reshapes events: computed fields, keep, drop, rename",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .init = transform_init,
    .process = transform_process,
    .destroy = transform_destroy,
};
