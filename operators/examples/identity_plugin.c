/*
 * identity_plugin.c - `bench.identity`: the built-in `identity`
 * (operators/identity.c) as a plugin, line for line. Passing every event
 * through unchanged, it measures what loading an operator from a .so costs
 * against the same code linked in (tools/bench/bench_plugin.py): the calls
 * are the same indirect calls through the descriptor and the host table, so
 * any difference is the code's placement, not the ABI. It is also the
 * smallest complete plugin there is.
 */
#include <sluice/operator.h>

static int identity_init(sl_ctx *ctx, void **state)
{
    (void)ctx;
    *state = NULL;
    return SL_OK;
}

static int identity_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    (void)state;
    (void)input;
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        if (sl_emit(ctx, 0, ev, len) != 0)
            return SL_ERROR;
    }
    return SL_OK;
}

static void identity_destroy(void *state) { (void)state; }

static const sl_operator identity_op = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "bench.identity",
    .summary = "Passes events through unchanged (the built-in identity as a plugin, for benchmarks)",
    .param_size = sizeof(sl_param),
    .init = identity_init,
    .process = identity_process,
    .destroy = identity_destroy,
};

static const sl_operator *const operators[] = {&identity_op, NULL};

static const sl_plugin plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin),
    .name = "bench-identity",
    .version = "1.0",
    .operators = operators,
};

const sl_plugin *sluice_plugin(void);
const sl_plugin *sluice_plugin(void) { return &plugin; }
