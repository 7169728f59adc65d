/*
 * zmq_socket.h - what source.zmq and sink.zmq share: reading their socket
 * parameters and opening the socket (own context, bind or connect).
 */
#ifndef SL_OP_ZMQ_SOCKET_H
#define SL_OP_ZMQ_SOCKET_H

#include "sluice/operator.h"

typedef struct zsock {
    void *zctx;
    void *sock;
    const char *endpoint;
    int type;  /* ZMQ_PULL, ZMQ_SUB, ZMQ_PUSH, ZMQ_PUB */
    int bind;
    int hwm;
    int immediate; /* set ZMQ_IMMEDIATE before connecting (a sender that must not lose messages) */
} zsock;

/*
 * Read `endpoint`, `socket` (one of `types`, "pull|sub" style, mapped to
 * zmq types in the same order as `zmq_types`), `mode` and `hwm` parameters.
 * Returns 0, or -1 after reporting a configuration error.
 */
int zsock_configure(sl_ctx *ctx, zsock *z, const int *zmq_types);

/* Create the context and socket and bind or connect. Returns 0 or -1 (logged). */
int zsock_open(sl_ctx *ctx, zsock *z);

void zsock_close(zsock *z);

#endif
