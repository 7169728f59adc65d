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

/* Fire due timers and send batches whose linger expired. */
static int housekeeping(sl_stage *s)
{
    int64_t now = sl__monotonic();
    for (size_t i = 0; i < s->n_insts; i++) {
        sl_inst *in = s->insts[i];
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
        int rc = sl__inst_flush_fused(h);
        if (rc == 0)
            rc = housekeeping(s);
        if (rc != 0)
            return rc;
        if (st == SL_EOS)
            break;
    }
    if (stopped_hard(rt))
        return SL_EINTERRUPTED;
    return finish_stage(s);
}

static int handle(sl_stage *s, sl_rx *rx)
{
    switch (rx->hdr.kind) {
    case SL_BATCH_DATA:
        return sl__deliver(s->insts[0], rx->hdr.slot, &rx->batch);
    case SL_BATCH_EOS:
        s->eos_seen++;
        return 0;
    default:
        return 0; /* watermarks and barriers: later issues */
    }
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
