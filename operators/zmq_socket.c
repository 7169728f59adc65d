/*
 * zmq_socket.c - socket set-up shared by source.zmq and sink.zmq.
 */
#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "zmq_socket.h"

int zsock_configure(sl_ctx *ctx, zsock *z, const int *zmq_types)
{
    const sl_host *h = ctx->host;
    z->endpoint = h->node_str(h->param(ctx, "endpoint"));
    const sl_node *sock = h->param(ctx, "socket");
    /* the enum was checked against the table: its position picks the zmq type */
    const char *s = h->node_str(sock);
    z->type = strcmp(s, "pull") == 0 || strcmp(s, "push") == 0 ? zmq_types[0] : zmq_types[1];
    z->bind = strcmp(h->node_str(h->param(ctx, "mode")), "bind") == 0;
    int64_t hwm;
    if (h->node_int(h->param(ctx, "hwm"), &hwm) != 0 || hwm < 1 || hwm > 1000000) {
        h->config_error(ctx, h->param(ctx, "hwm"), "'hwm' must be from 1 to 1000000");
        return -1;
    }
    z->hwm = (int)hwm;
    if (!z->endpoint || !strstr(z->endpoint, "://")) {
        h->config_error(ctx, h->param(ctx, "endpoint"),
                        "invalid endpoint '%s' (expected e.g. tcp://127.0.0.1:5555 or "
                        "ipc:///tmp/x.sock)",
                        z->endpoint ? z->endpoint : "");
        return -1;
    }
    return 0;
}

int zsock_open(sl_ctx *ctx, zsock *z)
{
    z->zctx = zmq_ctx_new();
    if (!z->zctx || !(z->sock = zmq_socket(z->zctx, z->type)))
        goto err;
    /*
     * On close, give queued messages up to 30 s to reach a receiver: a sink's
     * last batches are sent when the pipeline ends. Longer would let a dead
     * receiver hang the shutdown.
     */
    int linger = 30000;
    zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (z->immediate) {
        int one = 1;
        zmq_setsockopt(z->sock, ZMQ_IMMEDIATE, &one, sizeof one);
    }
    zmq_setsockopt(z->sock, ZMQ_SNDHWM, &z->hwm, sizeof z->hwm);
    zmq_setsockopt(z->sock, ZMQ_RCVHWM, &z->hwm, sizeof z->hwm);
    if ((z->bind ? zmq_bind(z->sock, z->endpoint) : zmq_connect(z->sock, z->endpoint)) != 0)
        goto err;
    return 0;
err:
    ctx->host->log(ctx, SL_LOG_ERROR, "cannot %s '%s': %s", z->bind ? "bind" : "connect",
                   z->endpoint, zmq_strerror(errno));
    return -1;
}

void zsock_close(zsock *z)
{
    if (z->sock)
        zmq_close(z->sock);
    if (z->zctx)
        zmq_ctx_term(z->zctx);
    z->sock = z->zctx = NULL;
}
