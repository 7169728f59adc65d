/*
 * batch.c - batch builders and the payload layout (see batch.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "error.h"

void sl_builder_init(sl_builder *b) { memset(b, 0, sizeof *b); }

void sl_builder_fini(sl_builder *b)
{
    sl_wbuf_fini(&b->data);
    free(b->ends);
    memset(b, 0, sizeof *b);
}

int sl_builder_append(sl_builder *b, const void *ev, size_t len, int64_t now_ns)
{
    if (b->count == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 1024;
        uint32_t *e = realloc(b->ends, cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        b->ends = e;
        b->cap = cap;
    }
    if (b->data.data == NULL && b->hint && sl_wbuf_reserve(&b->data, b->hint + 64) != 0)
        return -ENOMEM;
    if (b->data.len + len > UINT32_MAX || sl_wbuf_append(&b->data, ev, len) != 0)
        return -ENOMEM;
    if (b->count == 0)
        b->first_ns = now_ns;
    b->ends[b->count++] = (uint32_t)b->data.len;
    return 0;
}

void sl_builder_clear(sl_builder *b)
{
    b->data.len = 0;
    b->count = 0;
    b->first_ns = 0;
}

void sl_builder_view(const sl_builder *b, sl_batch *out, int64_t watermark)
{
    out->data = b->data.data;
    out->ends = b->ends;
    out->count = b->count;
    out->watermark = watermark;
}

int sl_builder_detach(sl_builder *b, uint8_t **payload, size_t *len, uint64_t *events_len)
{
    size_t ev = b->data.len;
    size_t pad = (4 - (ev & 3)) & 3;
    size_t total = ev + pad + (size_t)b->count * 4;
    if (sl_wbuf_reserve(&b->data, pad + (size_t)b->count * 4) != 0)
        return -ENOMEM;
    memset(b->data.data + ev, 0, pad);
    memcpy(b->data.data + ev + pad, b->ends, (size_t)b->count * 4);
    *payload = b->data.data;
    *len = total;
    *events_len = ev;
    b->hint = total;
    sl_wbuf_init(&b->data); /* the payload now belongs to the caller */
    b->count = 0;
    b->first_ns = 0;
    return 0;
}

int sl_batch_from_wire(const sl_wire_hdr *h, const uint8_t *payload, size_t len, sl_batch *out)
{
    uint64_t ev = h->events_len;
    uint64_t pad = (4 - (ev & 3)) & 3;
    if (ev > len || ev + pad + (uint64_t)h->count * 4 != len)
        return SL_EPROTO;
    const uint32_t *ends = (const uint32_t *)(const void *)(payload + ev + pad);
    /* offsets must be non-decreasing and end at ev: a corrupt batch never reaches an operator */
    uint32_t prev = 0;
    for (uint32_t i = 0; i < h->count; i++) {
        if (ends[i] < prev || ends[i] > ev)
            return SL_EPROTO;
        prev = ends[i];
    }
    if (h->count && prev != ev)
        return SL_EPROTO;
    out->data = payload;
    out->ends = ends;
    out->count = h->count;
    out->watermark = h->watermark;
    return 0;
}
