/*
 * init_fails.c - test plugin: `test.init_fails`, whose init always reports a
 * configuration error at its `reason` parameter and returns SL_ERROR. The
 * pipeline must be refused like one with a built-in's config error:
 * file:line:col and the message, exit 1, from `validate` and `run` alike
 * (tests/e2e/test_plugins.py).
 */
#include <stdlib.h>

#include <sluice/operator.h>

static const sl_param params[] = {
    {"reason", SL_PARAM_STRING, "init_fails refuses every configuration", 0,
     "the message of the configuration error", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

typedef struct st {
    int dummy;
} st;

static int init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    const sl_node *n = h->param(ctx, "reason");
    /* a state, so that destroy-after-failed-init is exercised too */
    *state = calloc(1, sizeof(st));
    h->config_error(ctx, n, "%s", h->node_str(n));
    return SL_ERROR;
}

static int process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    (void)state;
    (void)ctx;
    (void)input;
    (void)b;
    return SL_ERROR; /* never called */
}

static void destroy(void *state) { free(state); }

static const sl_operator op = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "test.init_fails",
    .summary = "Reports a configuration error from init, always (tests)",
    .param_size = sizeof(sl_param),
    .params = params,
    .init = init,
    .process = process,
    .destroy = destroy,
};

static const sl_operator *const operators[] = {&op, NULL};

static const sl_plugin plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin),
    .name = "init-fails",
    .version = "0",
    .operators = operators,
};

const sl_plugin *sluice_plugin(void);
const sl_plugin *sluice_plugin(void) { return &plugin; }
