/*
 * process_fails.c - test plugin: `test.process_fails` forwards `after`
 * events, then logs why and returns SL_ERROR from process. The pipeline must
 * stop with exit 1 and a message naming the operator, fused or not, even fed
 * by an unbounded source (tests/e2e/test_plugins.py).
 */
#include <inttypes.h>
#include <stdlib.h>

#include <sluice/operator.h>

static const sl_param params[] = {
    {"after", SL_PARAM_INT, "1000", 0, "events forwarded before process fails", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

typedef struct st {
    int64_t after, seen;
} st;

static int init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    st *s = calloc(1, sizeof *s);
    *state = s;
    if (!s)
        return SL_ERROR;
    const sl_node *n = h->param(ctx, "after");
    if (h->node_int(n, &s->after) != 0 || s->after < 0) {
        h->config_error(ctx, n, "'after' must be an integer >= 0");
        return SL_ERROR;
    }
    return SL_OK;
}

static int process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    st *s = state;
    (void)input;
    for (uint32_t i = 0; i < b->count; i++) {
        if (s->seen == s->after) {
            ctx->host->log(ctx, SL_LOG_ERROR, "process_fails gives up after %" PRId64 " events "
                           "(as configured by 'after')", s->seen);
            return SL_ERROR;
        }
        s->seen++;
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        if (sl_emit(ctx, 0, ev, len) != 0)
            return SL_ERROR;
    }
    return SL_OK;
}

static void destroy(void *state) { free(state); }

static const sl_operator op = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "test.process_fails",
    .summary = "Forwards 'after' events, then fails in process (tests)",
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
    .name = "process-fails",
    .version = "0",
    .operators = operators,
};

const sl_plugin *sluice_plugin(void);
const sl_plugin *sluice_plugin(void) { return &plugin; }
