/*
 * batch.h - building batches of events, and their wire form.
 *
 * A builder collects events (msgpack bytes back to back, plus the end offset
 * of each) until it is flushed. Inside a stage a builder is handed to the
 * next operator as an sl_batch view and reused (no allocation once warm).
 * Across threads it is detached into one heap payload that ZeroMQ carries
 * without copying: [events][pad to 4][ends: u32 x count]. A small header
 * frame travels in front of it (sl_wire_hdr).
 */
#ifndef SL_BATCH_H
#define SL_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/msgpack.h"
#include "sluice/operator.h"

enum sl_batch_kind { SL_BATCH_DATA = 1, SL_BATCH_WATERMARK = 2, SL_BATCH_BARRIER = 3, SL_BATCH_EOS = 4 };

#define SL_WIRE_MAGIC 0x53 /* 'S' */

/* The header frame of every message between stages. Host byte order: the
 * same binary is at both ends of inproc/ipc; tcp across hosts would need a
 * fixed order (not supported yet, see docs/design/transport.md). */
typedef struct sl_wire_hdr {
    uint8_t magic;      /* SL_WIRE_MAGIC */
    uint8_t kind;       /* enum sl_batch_kind */
    uint8_t slot;       /* input slot at the receiver */
    uint8_t flags;
    uint32_t count;     /* events in the payload */
    uint64_t events_len;/* bytes of events before the padding and ends */
    int64_t watermark;  /* event time, ns; INT64_MIN when unknown */
    uint64_t checkpoint;/* barrier id for SL_BATCH_BARRIER */
    uint32_t sender;    /* the channel (sender instance and edge) at the receiver */
    uint32_t reserved;
} sl_wire_hdr;

/* sl_wire_hdr.flags */
#define SL_WIRE_IDLE 1u /* the sender is idle: its watermark holds nobody back */

typedef struct sl_builder {
    sl_wbuf data;       /* event bytes */
    uint32_t *ends;     /* end offset of each event */
    uint32_t count, cap;
    int64_t first_ns;   /* monotonic time the first event arrived, 0 when empty */
    size_t hint;        /* size of the last detached payload, to pre-size the next */
} sl_builder;

void sl_builder_init(sl_builder *b);
void sl_builder_fini(sl_builder *b);

/*
 * Append one event (borrowed, copied). `now_ns` is stamped on the first event
 * for linger. Returns 0 or -ENOMEM.
 */
int sl_builder_append(sl_builder *b, const void *ev, size_t len, int64_t now_ns);

/* Empty the builder, keeping its memory. */
void sl_builder_clear(sl_builder *b);

/* A view of the current content (borrowed until the next append or clear). */
void sl_builder_view(const sl_builder *b, sl_batch *out, int64_t watermark);

/*
 * Move the content into one malloc'ed payload (layout above) and empty the
 * builder. The caller owns *payload (free()). Returns 0 or -ENOMEM.
 */
int sl_builder_detach(sl_builder *b, uint8_t **payload, size_t *len, uint64_t *events_len);

/*
 * Check a received payload against its header and make a view of it.
 * Returns 0 or SL_EPROTO.
 */
int sl_batch_from_wire(const sl_wire_hdr *h, const uint8_t *payload, size_t len, sl_batch *out);

#endif
