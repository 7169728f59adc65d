/*
 * route.c - `route`: send each event to named output ports by predicate.
 *
 *   routes: {orders: type.startsWith("order."), payments: type == "payment.processed"}
 *   mode: first_match        # or all_matches
 *
 * Each key of `routes` is an output port (read it as `<name>.<route>`);
 * events that match no route leave by `default`. In first_match mode the
 * routes are tried in the order written and the first that holds wins; in
 * all_matches mode an event goes to every route that holds.
 *
 * A predicate that cannot be evaluated (missing field, wrong type) counts
 * as false and is counted; an event that matched nothing and had such an
 * error leaves by `errors` (drop envelope with the reason) instead of
 * `default`, since "could not tell" is not "matched nothing".
 */
#include <stdlib.h>
#include <string.h>

#include "sluice/operator.h"

#define MAX_ROUTES 64

typedef struct route {
    const sl_expr *pred[MAX_ROUTES];
    int port[MAX_ROUTES];
    size_t n;
    int all;
    int default_port, errors_port;
} route;

static const sl_param params[] = {
    {"routes", SL_PARAM_MAP, NULL, 1, "port name -> predicate; each key becomes an output port", NULL},
    {"mode", SL_PARAM_ENUM, "first_match", 0, "first route that holds, or every route that holds", "first_match|all_matches"},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"default", "errors", NULL};

static int route_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    route *r = calloc(1, sizeof *r);
    if (!r)
        return SL_ERROR;
    *state = r;
    r->all = strcmp(h->node_str(h->param(ctx, "mode")), "all_matches") == 0;
    r->default_port = h->port(ctx, "default");
    r->errors_port = h->port(ctx, "errors");
    const sl_node *routes = h->param(ctx, "routes");
    if (h->node_len(routes) == 0 || h->node_len(routes) > MAX_ROUTES) {
        h->config_error(ctx, routes, "'routes' needs 1 to %d routes", MAX_ROUTES);
        return SL_ERROR;
    }
    int bad = 0;
    for (size_t i = 0; i < h->node_len(routes); i++) {
        r->pred[i] = h->expr_compile(ctx, h->node_at(routes, i), NULL, NULL);
        r->port[i] = h->port(ctx, h->node_key(routes, i));
        bad |= !r->pred[i] || r->port[i] < 0;
    }
    r->n = h->node_len(routes);
    return bad ? SL_ERROR : SL_OK;
}

static int route_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    route *r = state;
    const sl_host *h = ctx->host;
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        int matched = 0, erred = 0;
        for (size_t k = 0; k < r->n; k++) {
            int v = h->expr_bool(ctx, r->pred[k], &ev, &len, 1);
            if (v < 0) {
                erred = 1;
                h->count(ctx, "eval_errors", 1);
                continue;
            }
            if (v == 0)
                continue;
            matched = 1;
            if (h->emit(ctx, r->port[k], ev, len) != 0)
                return SL_ERROR;
            if (!r->all)
                break;
        }
        if (matched)
            continue;
        int rc = erred ? h->emit_drop(ctx, r->errors_port, "eval_error", h->expr_error(ctx), ev,
                                      len, NULL, 0)
                       : h->emit(ctx, r->default_port, ev, len);
        if (rc != 0)
            return SL_ERROR;
    }
    return SL_OK;
}

static void route_destroy(void *state) { free(state); }

const sl_operator sl_op_route = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "route",
    .summary = "Sends events to named ports by predicate; unmatched events to 'default'",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .port_param = "routes",
    .init = route_init,
    .process = route_process,
    .destroy = route_destroy,
};
