/*
 * transport.h - moving batches between stages over ZeroMQ.
 *
 * One message = a header frame (sl_wire_hdr) and, for DATA, one payload
 * frame that ZeroMQ carries by reference (zmq_msg_init_data: no copy inside
 * the process). Sends block when the receiver's queue is at its high-water
 * mark: that is the engine's backpressure.
 */
#ifndef SL_TRANSPORT_H
#define SL_TRANSPORT_H

#include <zmq.h>

#include "batch.h"

/*
 * Send the builder's content as a DATA batch to input `slot` of the receiver
 * and empty the builder. Blocks while the receiver is full; when it had to,
 * the nanoseconds it waited are added to *blocked_ns (may be NULL).
 * `watermark`: the sender's, after these events; `sender`: its channel id at
 * the receiver. Returns 0, -ETERM when the context is shutting down, or
 * another negative errno.
 */
int sl_transport_send_batch(void *sock, int slot, sl_builder *b, int64_t watermark,
                            uint32_t sender, int64_t *blocked_ns);

/* Send a header-only message (EOS, WATERMARK, BARRIER). */
int sl_transport_send_control(void *sock, int slot, int kind, int64_t watermark, uint32_t sender,
                              unsigned flags, uint64_t checkpoint);

/* A received message; the view is valid until sl_rx_close. */
typedef struct sl_rx {
    zmq_msg_t hdr_msg, payload_msg;
    int has_payload;
    sl_wire_hdr hdr;
    sl_batch batch;
} sl_rx;

/*
 * Receive one message (flags: 0 or ZMQ_DONTWAIT). Returns 0, -EAGAIN if
 * nothing is waiting (DONTWAIT), -ETERM, or SL_EPROTO for a malformed message.
 * After 0, call sl_rx_close.
 */
int sl_transport_recv(void *sock, sl_rx *rx, int flags);
void sl_rx_close(sl_rx *rx);

#endif
