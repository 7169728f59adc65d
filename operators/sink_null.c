/*
 * sink_null.c - `sink.null`: counts events and drops them, for benchmarks.
 * `delay` sleeps after each batch to play a deliberately slow sink (tests
 * of backpressure use it).
 */
#include <stdlib.h>
#include <time.h>

#include "sluice/operator.h"

typedef struct null_sink {
    int64_t delay_ns;
    uint64_t events, bytes;
} null_sink;

static const sl_param params[] = {
    {"delay", SL_PARAM_DURATION, "0", 0, "sleep this long after each batch (a slow sink)", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static int null_init(sl_ctx *ctx, void **state)
{
    null_sink *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERROR;
    *state = s;
    if (ctx->host->node_duration(ctx->host->param(ctx, "delay"), &s->delay_ns) != 0)
        return SL_ERROR;
    return SL_OK;
}

static int null_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    null_sink *s = state;
    s->events += b->count;
    s->bytes += b->count ? b->ends[b->count - 1] : 0;
    if (s->delay_ns > 0) {
        struct timespec ts = {(time_t)(s->delay_ns / 1000000000), (long)(s->delay_ns % 1000000000)};
        nanosleep(&ts, NULL);
    }
    return SL_OK;
}

static int null_finish(void *state, sl_ctx *ctx)
{
    null_sink *s = state;
    ctx->host->count(ctx, "events", s->events);
    ctx->host->count(ctx, "bytes", s->bytes);
    return SL_OK;
}

static void null_destroy(void *state) { free(state); }

static const char *const no_outputs[] = {NULL};

const sl_operator sl_op_sink_null = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "sink.null",
    .summary = "Counts events and discards them (benchmarks, slow-sink tests)",
    .flags = SL_OP_SINK,
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = no_outputs,
    .init = null_init,
    .process = null_process,
    .finish = null_finish,
    .destroy = null_destroy,
};
