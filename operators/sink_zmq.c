/*
 * sink_zmq.c - `sink.zmq`: events to a ZeroMQ PUSH or PUB socket.
 *
 * One message per incoming batch: its events as msgpack back to back, or as
 * JSON lines. Sends block at the high-water mark (backpressure into the
 * pipeline). At end of stream an empty message tells a source.zmq that this
 * sender is done (`send_eos`).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "json.h"
#include "zmq_socket.h"

typedef struct zmq_sink {
    zsock z;
    int jsonl;
    int send_eos;
    sl_wbuf buf;
    int errors_port;
} zmq_sink;

static const sl_param params[] = {
    {"endpoint", SL_PARAM_STRING, NULL, 1, "ZeroMQ endpoint, e.g. tcp://127.0.0.1:5555", NULL},
    {"socket", SL_PARAM_ENUM, "push", 0, "socket type", "push|pub"},
    {"mode", SL_PARAM_ENUM, "connect", 0, "bind the endpoint or connect to it", "bind|connect"},
    {"format", SL_PARAM_ENUM, "msgpack", 0, "payload: msgpack maps back to back, or JSON lines", "msgpack|jsonl"},
    {"send_eos", SL_PARAM_BOOL, "true", 0, "send an empty message at end of stream", NULL},
    {"hwm", SL_PARAM_INT, "1000", 0, "messages queued before the sink blocks", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"errors", NULL};

static int zsink_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    zmq_sink *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERROR;
    *state = s;
    static const int types[] = {ZMQ_PUSH, ZMQ_PUB};
    if (zsock_configure(ctx, &s->z, types) != 0)
        return SL_ERROR;
    s->jsonl = strcmp(h->node_str(h->param(ctx, "format")), "jsonl") == 0;
    if (h->node_bool(h->param(ctx, "send_eos"), &s->send_eos) != 0)
        return SL_ERROR;
    s->errors_port = h->port(ctx, "errors");
    return SL_OK;
}

static int zsink_start(void *state, sl_ctx *ctx)
{
    zmq_sink *s = state;
    /*
     * PUSH queues only to receivers that are really connected (IMMEDIATE),
     * so with nobody listening a send waits - backpressure - instead of
     * filling a queue that closing the socket would throw away.
     */
    int timeout = 100; /* ms: how often a waiting send looks at the stop flag */
    s->z.immediate = 1;
    if (zsock_open(ctx, &s->z) != 0)
        return SL_ERROR;
    zmq_setsockopt(s->z.sock, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    return SL_OK;
}

/* Send one message, waiting for a receiver as long as the pipeline is not stopped hard. */
static int send_all(zmq_sink *s, sl_ctx *ctx, const void *p, size_t n)
{
    int warned = 0;
    while (zmq_send(s->z.sock, p, n, 0) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) { /* nobody to take it yet, or the receiver is full */
            if (ctx->host->stopping(ctx) == 2)
                return SL_ERROR;
            if (!warned++ && s->z.type == ZMQ_PUSH)
                ctx->host->log(ctx, SL_LOG_INFO, "waiting for a receiver on '%s'",
                               s->z.endpoint);
            continue;
        }
        ctx->host->log(ctx, SL_LOG_ERROR, "cannot send to '%s': %s", s->z.endpoint,
                       zmq_strerror(errno));
        return SL_ERROR;
    }
    return SL_OK;
}

static int zsink_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    zmq_sink *s = state;
    if (b->count == 0)
        return SL_OK;
    if (!s->jsonl)
        return send_all(s, ctx, b->data, b->ends[b->count - 1]);
    sl_wbuf_reset(&s->buf);
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        size_t mark = s->buf.len;
        if (sl_msgpack_to_json(ev, len, &s->buf) != 0 || sl_wbuf_append(&s->buf, "\n", 1) != 0) {
            s->buf.len = mark;
            ctx->host->emit_drop(ctx, s->errors_port, "unwritable", "event is not valid msgpack",
                                 NULL, 0, NULL, 0);
        }
    }
    return s->buf.len ? send_all(s, ctx, s->buf.data, s->buf.len) : SL_OK;
}

static int zsink_finish(void *state, sl_ctx *ctx)
{
    zmq_sink *s = state;
    return s->send_eos ? send_all(s, ctx, "", 0) : SL_OK;
}

static void zsink_destroy(void *state)
{
    zmq_sink *s = state;
    if (!s)
        return;
    zsock_close(&s->z);
    sl_wbuf_fini(&s->buf);
    free(s);
}

const sl_operator sl_op_sink_zmq = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "sink.zmq",
    .summary = "Sends events to a ZeroMQ PUSH or PUB socket",
    .flags = SL_OP_SINK,
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .init = zsink_init,
    .start = zsink_start,
    .process = zsink_process,
    .finish = zsink_finish,
    .destroy = zsink_destroy,
};
