/*
 * stage.c - the loop of one stage instance (one thread).
 *
 * A source stage calls its head's produce until it reports end of stream
 * or a stop is requested; a receiving stage drains its PULL socket and
 * hands each batch to its head, until every upstream instance has sent
 * EOS. Both flush socket edges whose linger expired and fire due timers
 * between rounds. At the end the stage finishes its operators in order
 * (head first, so a fused consumer sees everything its producer emits in
 * finish), flushes everything and sends EOS downstream.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "instance.h"
#include "transport.h"

#define MAX_WAIT_NS 20000000ll  /* re-check stop flags at least this often */
#define DRAIN_PER_ROUND 64      /* messages taken before looking at timers again */

void sl__fail(sl_runtime *rt) { atomic_store(&rt->failed, 1); }

static int stopped_hard(const sl_runtime *rt) { return atomic_load(&rt->failed); }

static int64_t next_deadline(sl_stage *s)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < s->n_insts; i++) {
        int64_t d = sl__inst_next_deadline(s->insts[i], s->rt->p->batch_linger_ns);
        if (d < next)
            next = d;
    }
    return next;
}

/*
 * The stage's watermark moved to wm: each operator, head first, handles it
 * (on_watermark may emit, e.g. windows that closed), its fused consumers get
 * what it emitted while they still hold the old watermark, then its own
 * watermark moves. Socket edges learn it in housekeeping (after the events
 * queued before it).
 */
int sl__stage_advance(sl_stage *s, int64_t wm)
{
    for (size_t i = 0; i < s->n_insts; i++) {
        sl_inst *in = s->insts[i];
        if (wm <= in->wm_out)
            continue;
        if (in->def->op->on_watermark &&
            in->def->op->on_watermark(in->state, &in->ctx, wm) == SL_ERROR) {
            sl__log(in->def->name, SL_LOG_ERROR, "failed handling a watermark");
            return SL_EOPERATOR;
        }
        int rc = sl__inst_flush_fused(in);
        if (rc != 0)
            return rc;
        in->wm_out = wm;
    }
    return 0;
}

static void set_idle(sl_stage *s, int idle)
{
    for (size_t i = 0; i < s->n_insts; i++)
        s->insts[i]->idle_out = idle;
}

/*
 * A source with `watermark:`: whether it is idle. Its watermark itself moves as
 * it emits (host.c, h_emit), so the batch holding an event carries it.
 */
static void source_idleness(sl_stage *s, int64_t now)
{
    sl_inst *h = s->insts[0];
    const sl_opdef *d = h->def;
    if (!d->wm_enabled)
        return;
    if (h->last_event_ns == 0) { /* emitted since the last look */
        h->last_event_ns = now;
        if (h->idle_out)
            set_idle(s, 0);
    } else if (d->wm_idle_ns > 0 && !h->idle_out && now - h->last_event_ns >= d->wm_idle_ns) {
        set_idle(s, 1);
    }
}

/* The input watermark again after channel changes: the minimum over active channels. */
static int input_watermark(sl_stage *s)
{
    int64_t min = INT64_MAX, done_max = INT64_MIN;
    uint32_t active = 0, idle = 0;
    for (uint32_t c = 0; c < s->n_ch; c++) {
        if (s->ch_state[c] == SL_CH_DONE) {
            if (s->ch_wm[c] > done_max)
                done_max = s->ch_wm[c];
            continue;
        }
        if (s->ch_state[c] == SL_CH_IDLE) {
            idle++;
            continue;
        }
        active++;
        if (s->ch_wm[c] < min)
            min = s->ch_wm[c];
    }
    /*
     * Every live input idle: so are we, and the watermark goes as far as the inputs
     * that ended had taken theirs (not to +infinity: an idle input may wake up).
     */
    int idle_now = active == 0 && idle > 0;
    if (idle_now != s->insts[0]->idle_out)
        set_idle(s, idle_now);
    if (idle_now || (active == 0 && idle == 0 && s->rt->opts.snapshot_id))
        min = done_max; /* (a savepoint at the end keeps the open windows open) */
    if (min <= s->wm)
        return 0;
    s->wm = min;
    return sl__stage_advance(s, min);
}

/* Fire due timers and send batches whose linger expired. */
static int housekeeping(sl_stage *s)
{
    int64_t now = sl__monotonic();
    if (!s->pull)
        source_idleness(s, now);
    for (size_t i = 0; i < s->n_insts; i++) {
        sl_inst *in = s->insts[i];
        if (now - in->wm_pushed_ns >= s->rt->p->batch_linger_ns) {
            in->wm_pushed_ns = now;
            atomic_store_explicit(&in->wm_pub, in->wm_out, memory_order_relaxed);
            int rc = sl__inst_push_watermark(in);
            if (rc != 0)
                return rc;
        }
        if (in->timer_at && in->timer_at <= now) {
            in->timer_at = 0;
            if (in->def->op->on_timer &&
                in->def->op->on_timer(in->state, &in->ctx, now) == SL_ERROR) {
                sl__log(in->def->name, SL_LOG_ERROR, "failed in a timer callback");
                return SL_EOPERATOR;
            }
            int rc = sl__inst_flush_fused(in);
            if (rc != 0)
                return rc;
        }
        int rc = sl__inst_flush_expired(in, now, s->rt->p->batch_linger_ns);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int finish_stage(sl_stage *s)
{
    for (size_t i = 0; i < s->n_insts; i++) {
        sl_inst *in = s->insts[i];
        if (in->def->op->finish && in->def->op->finish(in->state, &in->ctx) == SL_ERROR) {
            sl__log(in->def->name, SL_LOG_ERROR, "failed while finishing");
            return SL_EOPERATOR;
        }
        int rc = sl__inst_flush_fused(in);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < s->n_insts; i++) {
        int rc = sl__inst_flush_all(s->insts[i]);
        if (rc == 0)
            rc = sl__inst_send_eos(s->insts[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int run_source(sl_stage *s)
{
    sl_runtime *rt = s->rt;
    sl_inst *h = s->insts[0];
    for (;;) {
        if (atomic_load(&rt->stop) || stopped_hard(rt))
            break;
        int rc = sl__barrier_poll_source(s);
        if (rc != 0)
            return rc;
        int64_t now = sl__monotonic();
        int64_t deadline = now + MAX_WAIT_NS;
        int64_t due = next_deadline(s);
        if (due < deadline)
            deadline = due;
        int st = h->def->op->produce(h->state, &h->ctx, deadline);
        if (st == SL_ERROR) {
            sl__log(h->def->name, SL_LOG_ERROR, "source failed");
            return SL_EOPERATOR;
        }
        rc = sl__inst_flush_fused(h);
        if (rc == 0)
            rc = housekeeping(s);
        if (rc != 0)
            return rc;
        if (st == SL_EOS)
            break;
    }
    if (stopped_hard(rt))
        return SL_EINTERRUPTED;
    /* the last finite watermark first, after the events before it, then the end of the
     * stream: every window closes */
    source_idleness(s, sl__monotonic());
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s->n_insts; i++)
        rc = sl__inst_push_watermark(s->insts[i]);
    if (rc == 0 && !rt->opts.snapshot_id) /* a savepoint keeps the open windows open */
        rc = sl__stage_advance(s, INT64_MAX);
    return rc != 0 ? rc : finish_stage(s);
}

static int handle(sl_stage *s, sl_rx *rx)
{
    uint32_t c = rx->hdr.sender;
    if (c >= s->n_ch) {
        sl__log(s->insts[0]->def->name, SL_LOG_ERROR, "received a batch from unknown channel %u", c);
        return SL_EPROTO;
    }
    if (sl__barrier_blocked(s, c)) {
        sl__log(s->insts[0]->def->name, SL_LOG_ERROR,
                "channel %u sent more after its barrier, before the others aligned", c);
        return SL_EPROTO;
    }
    int rc = 0;
    switch (rx->hdr.kind) {
    case SL_BATCH_BARRIER:
        return sl__barrier_received(s, c, rx->hdr.checkpoint);
    case SL_BATCH_DATA:
        sl__metric_add(&s->q_recv, 1);
        rx->batch.watermark = s->wm; /* what holds for these events; theirs applies after */
        rc = sl__deliver(s->insts[0], rx->hdr.slot, &rx->batch);
        s->ch_state[c] = SL_CH_ACTIVE;
        break;
    case SL_BATCH_WATERMARK:
        s->ch_state[c] = rx->hdr.flags & SL_WIRE_IDLE ? SL_CH_IDLE : SL_CH_ACTIVE;
        break;
    case SL_BATCH_EOS:
        s->eos_seen++;
        s->ch_state[c] = SL_CH_DONE;
        break;
    default:
        return SL_EPROTO;
    }
    if (rx->hdr.watermark == INT64_MAX) /* its end (the last events may carry it before EOS) */
        s->ch_state[c] = SL_CH_DONE;
    else if (rx->hdr.watermark > s->ch_wm[c])
        s->ch_wm[c] = rx->hdr.watermark; /* finite only: what it reached */
    if (rc == 0)
        rc = input_watermark(s);
    /* a channel that ended may have been the last one a barrier waited for */
    return rc == 0 && s->ch_state[c] == SL_CH_DONE ? sl__barrier_channel_done(s) : rc;
}

static int run_receiver(sl_stage *s)
{
    sl_runtime *rt = s->rt;
    while (s->eos_seen < s->eos_expected) {
        if (stopped_hard(rt))
            return SL_EINTERRUPTED;
        int got = 0;
        for (int k = 0; k < DRAIN_PER_ROUND && s->eos_seen < s->eos_expected; k++) {
            if (stopped_hard(rt))
                return SL_EINTERRUPTED; /* a hard stop does not drain what is queued */
            sl_rx rx;
            int rc = sl_transport_recv(s->pull, &rx, ZMQ_DONTWAIT);
            if (rc == -EAGAIN)
                break;
            if (rc != 0) {
                if (rc == SL_EPROTO)
                    sl__log(s->insts[0]->def->name, SL_LOG_ERROR, "received a malformed batch");
                return rc == -ETERM ? SL_EINTERRUPTED : rc;
            }
            rc = handle(s, &rx);
            sl_rx_close(&rx);
            if (rc != 0)
                return rc;
            got = 1;
        }
        int rc = housekeeping(s);
        if (rc != 0)
            return rc;
        if (!got && s->eos_seen < s->eos_expected) {
            int64_t wait = next_deadline(s) - sl__monotonic();
            if (wait > MAX_WAIT_NS)
                wait = MAX_WAIT_NS;
            if (wait < 0)
                wait = 0;
            zmq_pollitem_t item = {.socket = s->pull, .events = ZMQ_POLLIN};
            if (zmq_poll(&item, 1, (long)((wait + 999999) / 1000000)) < 0 && errno == ETERM)
                return SL_EINTERRUPTED;
        }
    }
    return finish_stage(s);
}

void *sl__stage_main(void *arg)
{
    sl_stage *s = arg;
    char name[16]; /* the kernel keeps 15 characters: "sl:<head operator>" */
    snprintf(name, sizeof name, "sl:%s", s->insts[0]->def->name);
    pthread_setname_np(pthread_self(), name);
    int rc = s->pull ? run_receiver(s) : run_source(s);
    for (size_t i = 0; i < s->n_insts; i++) /* where the watermarks ended, for the metrics */
        atomic_store_explicit(&s->insts[i]->wm_pub, s->insts[i]->wm_out, memory_order_relaxed);
    if (rc == SL_EHALTED)
        rc = 0; /* stopped on request right after a checkpoint: what follows is replayed */
    sl__barrier_stage_ended(s);
    if (rc != 0) {
        if (rc != SL_EINTERRUPTED || !stopped_hard(s->rt))
            sl__log(s->insts[0]->def->name, SL_LOG_ERROR, "stage stopped: %s", sl_strerror(rc));
        sl__fail(s->rt);
    }
    s->rc = rc;
    if (atomic_fetch_sub(&s->rt->running, 1) == 1 && s->rt->wake_main)
        pthread_kill(s->rt->main_thread, SIGUSR1); /* the last one: no need to wait for a poll */
    return NULL;
}
