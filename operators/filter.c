/*
 * filter.c - `filter`: keep the events for which a predicate holds.
 *
 * The predicate is `where:` (an expression), the seed-style spec (`types`,
 * `sources`, `start_time`, `end_time`, `data: {field: value | {in, gt, gte,
 * lt, lte, ne}}`), or both; the spec is sugar: it is turned into expression
 * text (filter_spec.c) and compiled like `where`, and all parts are joined
 * with &&.
 *
 * Errors: an evaluation error (a missing field, a wrong type) counts as
 * false; such events leave by the `errors` port with the reason, and are
 * counted. Events for which the predicate is false leave by `rejected` when
 * something reads it.
 *
 * Reordering: the predicate's top-level && terms are evaluated cheapest and
 * most selective first. During the first SAMPLE_BATCHES batches every term
 * is evaluated on every event (timed per batch), then terms are sorted by
 * cost / P(false) ascending - the order that minimises expected cost for a
 * short-circuit AND of independent terms. CEL's && is commutative, errors
 * included (false wins over an error, an error over true), and the
 * evaluation below keeps exactly that rule, so the order never changes a
 * result; `reorder: false` turns it off.
 */
#include <stdlib.h>
#include <string.h>

#include "filter_spec.h"
#include "sluice/operator.h"

#define MAX_TERMS 32
#define SAMPLE_BATCHES 8

typedef struct term {
    const sl_expr *e;
    int64_t ns;        /* time spent evaluating it while sampling */
    uint64_t evals, falses;
} term;

typedef struct filter {
    term terms[MAX_TERMS];
    size_t n_terms;
    int reorder;
    int sampled;       /* batches sampled so far */
    int rejected_port, errors_port;
} filter;

static const sl_param params[] = {
    {"where", SL_PARAM_EXPR, NULL, 0, "predicate, e.g. type.startsWith(\"order.\") && data.total > 100.0", NULL},
    {"types", SL_PARAM_LIST, NULL, 0, "keep events whose type is one of these", NULL},
    {"sources", SL_PARAM_LIST, NULL, 0, "keep events whose source is one of these", NULL},
    {"start_time", SL_PARAM_STRING, NULL, 0, "keep events with time >= this (RFC 3339)", NULL},
    {"end_time", SL_PARAM_STRING, NULL, 0, "keep events with time < this (RFC 3339)", NULL},
    {"data", SL_PARAM_MAP, NULL, 0, "{field: value | {in, gt, gte, lt, lte, ne}} conditions on data", NULL},
    {"reorder", SL_PARAM_BOOL, "true", 0, "evaluate && terms cheapest and most selective first", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "rejected", "errors", NULL};

static int add_terms(sl_ctx *ctx, filter *f, const sl_expr *e, const sl_node *at)
{
    const sl_host *h = ctx->host;
    size_t n = h->expr_terms(ctx, e);
    for (size_t i = 0; i < n; i++) {
        if (f->n_terms == MAX_TERMS) {
            h->config_error(ctx, at, "a filter takes at most %d && terms", MAX_TERMS);
            return -1;
        }
        f->terms[f->n_terms++].e = h->expr_term(ctx, e, i);
    }
    return 0;
}

static int filter_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    filter *f = calloc(1, sizeof *f);
    if (!f)
        return SL_ERROR;
    *state = f;
    if (h->node_bool(h->param(ctx, "reorder"), &f->reorder) != 0)
        return SL_ERROR;
    f->rejected_port = h->port(ctx, "rejected");
    f->errors_port = h->port(ctx, "errors");
    int bad = 0;
    const sl_node *where = h->param(ctx, "where");
    if (where) {
        const sl_expr *e = h->expr_compile(ctx, where, NULL, NULL);
        bad |= !e || add_terms(ctx, f, e, where) != 0;
    }
    char *spec = NULL;
    const sl_node *spec_at = NULL;
    if (sl_filter_spec_text(ctx, &spec, &spec_at) != 0) {
        bad = 1;
    } else if (spec) {
        const sl_expr *e = h->expr_compile(ctx, spec_at, spec, NULL);
        bad |= !e || add_terms(ctx, f, e, spec_at) != 0;
        free(spec);
    }
    if (bad)
        return SL_ERROR;
    if (f->n_terms == 0) {
        h->config_error(ctx, NULL, "filter needs 'where' or a spec (types, sources, start_time, "
                                   "end_time, data)");
        return SL_ERROR;
    }
    return SL_OK;
}

/* Expected cost of a term per unit of rejection it buys: lower goes first. */
static double rank(const term *t)
{
    double cost = t->evals ? (double)t->ns / (double)t->evals : 0;
    double p_false = t->evals ? (double)t->falses / (double)t->evals : 0;
    return cost / (p_false + 1e-6);
}

static int by_rank(const void *a, const void *b)
{
    double ra = rank(a), rb = rank(b);
    return ra < rb ? -1 : ra > rb;
}

/*
 * CEL's AND over the terms, in the current order: 0 as soon as a term is
 * false, else -1 if any term erred, else 1. The same answer in any order.
 */
static int eval_and(filter *f, sl_ctx *ctx, const uint8_t *ev, size_t len)
{
    const sl_host *h = ctx->host;
    int result = 1;
    for (size_t i = 0; i < f->n_terms; i++) {
        int r = h->expr_bool(ctx, f->terms[i].e, &ev, &len, 1);
        if (r == 0)
            return 0;
        if (r < 0)
            result = -1;
    }
    return result;
}

static int route_event(filter *f, sl_ctx *ctx, const uint8_t *ev, size_t len, int r)
{
    const sl_host *h = ctx->host;
    if (r == 1)
        return h->emit(ctx, 0, ev, len);
    if (r == 0)
        return h->port_connected(ctx, f->rejected_port) ? h->emit(ctx, f->rejected_port, ev, len)
                                                         : 0;
    h->count(ctx, "eval_errors", 1);
    return h->emit_drop(ctx, f->errors_port, "eval_error", h->expr_error(ctx), ev, len, NULL, 0);
}

static int filter_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    filter *f = state;
    const sl_host *h = ctx->host;
    int sampling = f->reorder && f->n_terms > 1 && f->sampled < SAMPLE_BATCHES;
    if (sampling) {
        /* time each term over the whole batch: one clock read per term, not per event */
        for (size_t t = 0; t < f->n_terms; t++) {
            int64_t t0 = h->monotonic(ctx);
            for (uint32_t i = 0; i < b->count; i++) {
                size_t len;
                const uint8_t *ev = sl_batch_event(b, i, &len);
                if (h->expr_bool(ctx, f->terms[t].e, &ev, &len, 1) == 0)
                    f->terms[t].falses++;
            }
            f->terms[t].ns += h->monotonic(ctx) - t0;
            f->terms[t].evals += b->count;
        }
        if (++f->sampled == SAMPLE_BATCHES)
            qsort(f->terms, f->n_terms, sizeof *f->terms, by_rank);
    }
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        if (route_event(f, ctx, ev, len, eval_and(f, ctx, ev, len)) != 0)
            return SL_ERROR;
    }
    return SL_OK;
}

static void filter_destroy(void *state) { free(state); }

const sl_operator sl_op_filter = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "filter",
    .summary = "Keeps events for which an expression (or a seed-style spec) holds",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .init = filter_init,
    .process = filter_process,
    .destroy = filter_destroy,
};
