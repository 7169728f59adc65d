/*
 * source_zmq.c - `source.zmq`: events from a ZeroMQ PULL or SUB socket.
 *
 * A message (each frame of it) holds one or more events: msgpack maps back
 * to back, or JSON lines. An empty frame is an end-of-stream marker: after
 * `eos_count` of them (one per sending pipeline) the source ends, so
 * sink.zmq -> source.zmq chains of pipelines finish like files do. Bad
 * records leave by the `errors` port.
 */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "json.h"
#include "zmq_socket.h"

#define PER_CALL 256

typedef struct zmq_src {
    zsock z;
    int jsonl;
    const char *subscribe;
    int64_t eos_count, eos_seen;
    sl_json_parser *jp;
    sl_wbuf line, ev;
    int errors_port;
} zmq_src;

static const sl_param params[] = {
    {"endpoint", SL_PARAM_STRING, NULL, 1, "ZeroMQ endpoint, e.g. tcp://127.0.0.1:5555", NULL},
    {"socket", SL_PARAM_ENUM, "pull", 0, "socket type", "pull|sub"},
    {"mode", SL_PARAM_ENUM, "bind", 0, "bind the endpoint or connect to it", "bind|connect"},
    {"subscribe", SL_PARAM_STRING, "", 0, "SUB: topic prefix to subscribe to", NULL},
    {"format", SL_PARAM_ENUM, "msgpack", 0, "payload: msgpack maps back to back, or JSON lines", "msgpack|jsonl"},
    {"eos_count", SL_PARAM_INT, "1", 0, "end after this many empty messages; 0 = never", NULL},
    {"hwm", SL_PARAM_INT, "1000", 0, "messages queued before senders block", NULL},
    {"watermark", SL_PARAM_MAP, NULL, 0, "{max_out_of_order, idle_timeout}: event-time watermarks", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "errors", NULL};

static int zsrc_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    zmq_src *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERROR;
    *state = s;
    static const int types[] = {ZMQ_PULL, ZMQ_SUB};
    if (zsock_configure(ctx, &s->z, types) != 0)
        return SL_ERROR;
    s->jsonl = strcmp(h->node_str(h->param(ctx, "format")), "jsonl") == 0;
    s->subscribe = h->node_str(h->param(ctx, "subscribe"));
    if (h->node_int(h->param(ctx, "eos_count"), &s->eos_count) != 0 || s->eos_count < 0) {
        h->config_error(ctx, h->param(ctx, "eos_count"), "'eos_count' must be 0 or more");
        return SL_ERROR;
    }
    s->errors_port = h->port(ctx, "errors");
    return SL_OK;
}

static int zsrc_start(void *state, sl_ctx *ctx)
{
    zmq_src *s = state;
    if (zsock_open(ctx, &s->z) != 0)
        return SL_ERROR;
    if (s->z.type == ZMQ_SUB)
        zmq_setsockopt(s->z.sock, ZMQ_SUBSCRIBE, s->subscribe, strlen(s->subscribe));
    if (s->jsonl && !(s->jp = sl_json_parser_new()))
        return SL_ERROR;
    return SL_OK;
}

static void reject(zmq_src *s, sl_ctx *ctx, const char *why, const void *rec, size_t n)
{
    sl_wbuf orig = {0};
    if (s->jsonl)
        sl_mp_write_str(&orig, rec, n > 4096 ? 4096 : n);
    else
        sl_mp_write_bin(&orig, rec, n > 4096 ? 4096 : n);
    ctx->host->emit_drop(ctx, s->errors_port, "malformed", why, orig.data, orig.len, NULL, 0);
    sl_wbuf_fini(&orig);
}

static int take_jsonl(zmq_src *s, sl_ctx *ctx, const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len && p[len - 1] == '\r')
            len--;
        if (len) {
            /* copy into a padded buffer: the parser reads past the end */
            sl_wbuf_reset(&s->line);
            if (sl_wbuf_reserve(&s->line, len + SL_JSON_PADDING) != 0)
                return SL_ERROR;
            memcpy(s->line.data, p, len);
            char err[256];
            sl_wbuf_reset(&s->ev);
            if (sl_json_to_msgpack(s->jp, (const char *)s->line.data, len, len + SL_JSON_PADDING,
                                   1, &s->ev, err, sizeof err) != 0)
                reject(s, ctx, err, p, len);
            else if (sl_emit(ctx, 0, s->ev.data, s->ev.len) != 0)
                return SL_ERROR;
        }
        p = nl ? nl + 1 : end;
    }
    return SL_OK;
}

static int take_msgpack(zmq_src *s, sl_ctx *ctx, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    while (p < end) {
        const uint8_t *q = p;
        if (sl_mp_skip(&q, end) != 0) {
            reject(s, ctx, "truncated or invalid msgpack", p, (size_t)(end - p));
            return SL_OK;
        }
        int is_map = (*p & 0xf0) == 0x80 || *p == 0xde || *p == 0xdf;
        if (!is_map)
            reject(s, ctx, "not a map", p, (size_t)(q - p));
        else if (sl_emit(ctx, 0, p, (size_t)(q - p)) != 0)
            return SL_ERROR;
        p = q;
    }
    return SL_OK;
}

static int zsrc_produce(void *state, sl_ctx *ctx, int64_t deadline_ns)
{
    zmq_src *s = state;
    int64_t wait = deadline_ns - ctx->host->monotonic(ctx);
    zmq_pollitem_t item = {.socket = s->z.sock, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, wait > 0 ? (long)(wait / 1000000) : 0) <= 0)
        return SL_IDLE;
    for (int k = 0; k < PER_CALL; k++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s->z.sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        size_t n = zmq_msg_size(&m);
        int rc = SL_OK;
        if (n == 0) {
            if (s->eos_count && ++s->eos_seen >= s->eos_count) {
                zmq_msg_close(&m);
                return SL_EOS;
            }
        } else if (s->jsonl) {
            rc = take_jsonl(s, ctx, zmq_msg_data(&m), n);
        } else {
            rc = take_msgpack(s, ctx, zmq_msg_data(&m), n);
        }
        zmq_msg_close(&m);
        if (rc != SL_OK)
            return rc;
    }
    return SL_OK;
}

static void zsrc_destroy(void *state)
{
    zmq_src *s = state;
    if (!s)
        return;
    zsock_close(&s->z);
    sl_json_parser_destroy(&s->jp);
    sl_wbuf_fini(&s->line);
    sl_wbuf_fini(&s->ev);
    free(s);
}

const sl_operator sl_op_source_zmq = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "source.zmq",
    .summary = "Receives events from a ZeroMQ PULL or SUB socket",
    .flags = SL_OP_SOURCE,
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .init = zsrc_init,
    .start = zsrc_start,
    .produce = zsrc_produce,
    .destroy = zsrc_destroy,
};
