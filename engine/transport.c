/*
 * transport.c - batches over ZeroMQ (see transport.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "transport.h"

static void free_payload(void *data, void *hint)
{
    (void)hint;
    free(data);
}

static int send_hdr(void *sock, const sl_wire_hdr *h, int more)
{
    for (;;) {
        if (zmq_send(sock, h, sizeof *h, more ? ZMQ_SNDMORE : 0) >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The first frame of a message: only it can block (ZeroMQ queues a multipart
 * message whole). Try without waiting, so that the clock is read only when
 * the receiver is full: that wait is the backpressure the metrics report.
 */
static int send_first_frame(void *sock, const sl_wire_hdr *h, int64_t *blocked_ns)
{
    if (!blocked_ns)
        return send_hdr(sock, h, 1);
    for (;;) {
        if (zmq_send(sock, h, sizeof *h, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
            return 0;
        if (errno == EAGAIN)
            break;
        if (errno != EINTR)
            return -errno;
    }
    int64_t t0 = monotonic_ns();
    int rc = send_hdr(sock, h, 1);
    *blocked_ns += monotonic_ns() - t0;
    return rc;
}

int sl_transport_send_batch(void *sock, int slot, sl_builder *b, int64_t watermark,
                            uint32_t sender, int64_t *blocked_ns)
{
    sl_wire_hdr h = {.magic = SL_WIRE_MAGIC, .kind = SL_BATCH_DATA, .slot = (uint8_t)slot,
                     .count = b->count, .watermark = watermark, .sender = sender};
    uint8_t *payload;
    size_t len;
    if (sl_builder_detach(b, &payload, &len, &h.events_len) != 0)
        return -ENOMEM;
    zmq_msg_t msg;
    if (zmq_msg_init_data(&msg, payload, len, free_payload, NULL) != 0) {
        free(payload);
        return -errno;
    }
    int rc = send_first_frame(sock, &h, blocked_ns);
    if (rc != 0) {
        zmq_msg_close(&msg);
        return rc;
    }
    while (zmq_msg_send(&msg, sock, 0) < 0) {
        if (errno != EINTR) {
            rc = -errno;
            zmq_msg_close(&msg);
            return rc;
        }
    }
    return 0;
}

int sl_transport_send_control(void *sock, int slot, int kind, int64_t watermark, uint32_t sender,
                              unsigned flags, uint64_t checkpoint)
{
    sl_wire_hdr h = {.magic = SL_WIRE_MAGIC, .kind = (uint8_t)kind, .slot = (uint8_t)slot,
                     .flags = (uint8_t)flags, .watermark = watermark, .checkpoint = checkpoint,
                     .sender = sender};
    return send_hdr(sock, &h, 0);
}

int sl_transport_recv(void *sock, sl_rx *rx, int flags)
{
    rx->has_payload = 0;
    zmq_msg_init(&rx->hdr_msg);
    for (;;) {
        if (zmq_msg_recv(&rx->hdr_msg, sock, flags) >= 0)
            break;
        if (errno != EINTR) {
            int rc = -errno;
            zmq_msg_close(&rx->hdr_msg);
            return rc;
        }
    }
    int more = zmq_msg_more(&rx->hdr_msg);
    if (zmq_msg_size(&rx->hdr_msg) != sizeof(sl_wire_hdr))
        goto proto;
    memcpy(&rx->hdr, zmq_msg_data(&rx->hdr_msg), sizeof rx->hdr);
    if (rx->hdr.magic != SL_WIRE_MAGIC)
        goto proto;
    if (rx->hdr.kind == SL_BATCH_DATA) {
        if (!more)
            goto proto;
        zmq_msg_init(&rx->payload_msg);
        rx->has_payload = 1;
        /* the rest of a multipart message is already here: this never blocks */
        while (zmq_msg_recv(&rx->payload_msg, sock, 0) < 0)
            if (errno != EINTR)
                goto proto;
        if (zmq_msg_more(&rx->payload_msg))
            goto proto;
        if (sl_batch_from_wire(&rx->hdr, zmq_msg_data(&rx->payload_msg),
                               zmq_msg_size(&rx->payload_msg), &rx->batch) != 0)
            goto proto;
    } else if (more) {
        goto proto;
    }
    return 0;
proto:
    sl_rx_close(rx);
    return SL_EPROTO;
}

void sl_rx_close(sl_rx *rx)
{
    zmq_msg_close(&rx->hdr_msg);
    if (rx->has_payload)
        zmq_msg_close(&rx->payload_msg);
    rx->has_payload = 0;
}
