/*
 * identity.c - `identity`: passes every event through unchanged (as
 * GStreamer's identity element). Useful to test and measure the engine
 * itself: a chain of identities costs exactly what the engine adds per hop.
 */
#include "sluice/operator.h"

static int identity_init(sl_ctx *ctx, void **state)
{
    (void)ctx;
    *state = NULL;
    return SL_OK;
}

static int identity_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        if (sl_emit(ctx, 0, ev, len) != 0)
            return SL_ERROR;
    }
    return SL_OK;
}

static void identity_destroy(void *state) { (void)state; }

const sl_operator sl_op_identity = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "identity",
    .summary = "Passes events through unchanged",
    .param_size = sizeof(sl_param),
    .init = identity_init,
    .process = identity_process,
    .destroy = identity_destroy,
};
