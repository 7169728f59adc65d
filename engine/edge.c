/*
 * edge.c - moving what an instance emitted to its consumers.
 *
 * Fused edges deliver by calling the consumer's process directly with a
 * view of the builder (then reuse it); socket edges detach the builder into
 * a ZeroMQ message. An instance's fused edges are flushed after each of its
 * callbacks returns, or earlier when a builder fills up; socket edges when
 * they hold batch.max_events events or batch.max_bytes bytes, or when their
 * oldest event has waited batch.linger.
 */
#include <errno.h>
#include <string.h>

#include "error.h"
#include "instance.h"
#include "transport.h"

/* 64-bit FNV-1a over the key's msgpack bytes, finished with a murmur mix. */
static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/*
 * Hash of the value at `key` in event ev: equal values (as encoded) hash
 * equally. A missing field hashes as nil, so such events share one instance.
 */
uint64_t sl__key_hash(const uint8_t *ev, size_t len, const sl_path *key)
{
    const uint8_t *p = ev, *end = ev + len;
    for (size_t i = 0; i < key->n; i++) {
        if (sl_mp_map_find(&p, end, key->parts[i], key->lens[i]) != 1)
            return hash_bytes((const uint8_t *)"\xc0", 1);
    }
    const uint8_t *start = p;
    if (sl_mp_skip(&p, end) != 0)
        return 0;
    return hash_bytes(start, (size_t)(p - start));
}

/*
 * process() of `to` on one batch, timed when the pipeline measures batch
 * durations. A fused consumer's delivery can happen inside it (a builder
 * filled up mid-batch): the stage's nested_ns collects the time of such inner
 * deliveries so each operator is charged only its own; time it spent blocked
 * on a full queue is backpressure (blocked_ns), not work, and is left out too.
 */
static int process_timed(sl_inst *to, int slot, const sl_batch *b)
{
    sl_stage *s = to->stage;
    int64_t outer = s->nested_ns;
    s->nested_ns = 0;
    uint64_t blocked = atomic_load_explicit(&to->blocked_ns, memory_order_relaxed);
    int64_t t0 = sl__monotonic();
    int st = to->def->op->process(to->state, &to->ctx, slot, b);
    int64_t dt = sl__monotonic() - t0;
    /* waiting on a full queue is backpressure, not work */
    blocked = atomic_load_explicit(&to->blocked_ns, memory_order_relaxed) - blocked;
    sl__hist_add(&to->batch_ns, dt - s->nested_ns - (int64_t)blocked);
    s->nested_ns = outer + dt; /* the enclosing delivery, if any, is not charged for ours */
    return st;
}

int sl__deliver(sl_inst *to, int slot, const sl_batch *b)
{
    if (!to->def->op->process || b->count == 0)
        return 0;
    sl__metric_add(&to->n_in, b->count);
    int st = to->rt->timing ? process_timed(to, slot, b)
                            : to->def->op->process(to->state, &to->ctx, slot, b);
    if (st == SL_ERROR) {
        sl__log(to->def->name, SL_LOG_ERROR, "failed while processing a batch");
        return SL_EOPERATOR;
    }
    return sl__inst_flush_fused(to);
}

static int send_builder(sl_inst *in, sl_out_edge *e, uint32_t i)
{
    sl_builder *b = &e->b[i];
    if (b->count == 0)
        return 0;
    void *sock;
    uint32_t j = e->kind == SL_EDGE_KEYED ? i : e->rr % e->n_socks;
    sock = e->socks[j];
    if (e->kind != SL_EDGE_KEYED)
        e->rr++;
    int64_t blocked = 0;
    int rc = sl_transport_send_batch(sock, e->slot, b, in->wm_out, e->chan[j], &blocked);
    if (blocked)
        sl__metric_add(&in->blocked_ns, (uint64_t)blocked);
    if (rc == 0) {
        atomic_fetch_add_explicit(&e->dst[j]->q_sent, 1, memory_order_relaxed);
        e->wm_sent[j] = in->wm_out;
        e->idle_sent[j] = 0; /* data: the sender is active */
    }
    if (rc != 0 && rc != -ETERM)
        sl__log(in->def->name, SL_LOG_ERROR, "cannot send a batch: %s", sl_strerror(rc));
    return rc;
}

int sl__edge_flush_one(sl_inst *in, sl_out_edge *e, uint32_t i)
{
    if (e->kind != SL_EDGE_FUSED)
        return send_builder(in, e, i);
    sl_builder *b = &e->b[0];
    if (b->count == 0)
        return 0;
    sl_batch view;
    sl_builder_view(b, &view, in->wm_out); /* the consumer's input watermark: ours */
    int rc = sl__deliver(e->fused, e->slot, &view);
    sl_builder_clear(b);
    return rc;
}

int sl__edge_flush(sl_inst *in, sl_out_edge *e)
{
    for (uint32_t i = 0; i < e->n_b; i++) {
        int rc = sl__edge_flush_one(in, e, i);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int sl__inst_flush_fused(sl_inst *in)
{
    for (size_t p = 0; p < in->n_ports; p++)
        for (size_t j = 0; j < in->ports[p].n_edges; j++) {
            sl_out_edge *e = &in->ports[p].edges[j];
            if (e->kind == SL_EDGE_FUSED) {
                int rc = sl__edge_flush(in, e);
                if (rc != 0)
                    return rc;
            }
        }
    return 0;
}

int sl__inst_flush_all(sl_inst *in)
{
    for (size_t p = 0; p < in->n_ports; p++)
        for (size_t j = 0; j < in->ports[p].n_edges; j++) {
            int rc = sl__edge_flush(in, &in->ports[p].edges[j]);
            if (rc != 0)
                return rc;
        }
    return 0;
}

int64_t sl__inst_next_deadline(const sl_inst *in, int64_t linger_ns)
{
    int64_t next = INT64_MAX;
    for (size_t p = 0; p < in->n_ports; p++)
        for (size_t j = 0; j < in->ports[p].n_edges; j++) {
            const sl_out_edge *e = &in->ports[p].edges[j];
            if (e->kind == SL_EDGE_FUSED)
                continue;
            for (uint32_t i = 0; i < e->n_b; i++)
                if (e->b[i].count && e->b[i].first_ns + linger_ns < next)
                    next = e->b[i].first_ns + linger_ns;
        }
    if (in->timer_at && in->timer_at < next)
        next = in->timer_at;
    return next;
}

int sl__inst_flush_expired(sl_inst *in, int64_t now, int64_t linger_ns)
{
    for (size_t p = 0; p < in->n_ports; p++)
        for (size_t j = 0; j < in->ports[p].n_edges; j++) {
            sl_out_edge *e = &in->ports[p].edges[j];
            if (e->kind == SL_EDGE_FUSED)
                continue;
            for (uint32_t i = 0; i < e->n_b; i++)
                if (e->b[i].count && e->b[i].first_ns + linger_ns <= now) {
                    int rc = send_builder(in, e, i);
                    if (rc != 0)
                        return rc;
                }
        }
    return 0;
}

int sl__inst_push_watermark(sl_inst *in)
{
    for (size_t p = 0; p < in->n_ports; p++)
        for (size_t j = 0; j < in->ports[p].n_edges; j++) {
            sl_out_edge *e = &in->ports[p].edges[j];
            if (e->kind == SL_EDGE_FUSED)
                continue;
            int flushed = 0;
            for (uint32_t k = 0; k < e->n_socks; k++) {
                if (e->wm_sent[k] == in->wm_out && e->idle_sent[k] == (uint8_t)in->idle_out)
                    continue;
                if (!flushed) { /* events queued before the watermark go first */
                    int rc = sl__edge_flush(in, e);
                    if (rc != 0)
                        return rc;
                    flushed = 1;
                    if (e->wm_sent[k] == in->wm_out && e->idle_sent[k] == (uint8_t)in->idle_out)
                        continue;
                }
                int rc = sl_transport_send_control(e->socks[k], e->slot, SL_BATCH_WATERMARK,
                                                   in->wm_out, e->chan[k],
                                                   in->idle_out ? SL_WIRE_IDLE : 0, 0);
                if (rc != 0)
                    return rc;
                e->wm_sent[k] = in->wm_out;
                e->idle_sent[k] = (uint8_t)in->idle_out;
            }
        }
    return 0;
}

int sl__inst_send_control(sl_inst *in, int kind, int64_t watermark, uint64_t checkpoint)
{
    for (size_t p = 0; p < in->n_ports; p++)
        for (size_t j = 0; j < in->ports[p].n_edges; j++) {
            sl_out_edge *e = &in->ports[p].edges[j];
            for (uint32_t i = 0; i < e->n_socks; i++) {
                int rc = sl_transport_send_control(e->socks[i], e->slot, kind, watermark,
                                                   e->chan[i], 0, checkpoint);
                if (rc != 0)
                    return rc;
            }
        }
    return 0;
}

int sl__inst_send_eos(sl_inst *in) { return sl__inst_send_control(in, SL_BATCH_EOS, INT64_MAX, 0); }
