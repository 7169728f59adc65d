/*
 * barrier.c - checkpoint barriers inside a stage (the coordinator is
 * checkpoint.c).
 *
 * A source stage injects BARRIER n between two produce calls; a receiving
 * stage aligns: BARRIER n must have come on every input channel that has not
 * ended. Either way the stage then flushes everything it holds, sends
 * BARRIER n after it on every output channel, and parks until the
 * coordinator has taken checkpoint n (or the run stops).
 *
 * No batch ever needs holding back during alignment: an upstream stage parks
 * right after sending BARRIER n and is released only once every stage,
 * this one included, has parked at n. So nothing can follow a barrier on its
 * channel before this stage aligns; data that does is a protocol error.
 */
#include <signal.h>
#include <time.h>

#include "error.h"
#include "instance.h"

#define PARK_POLL_NS 20000000ll /* re-check the failure flag this often while parked */

/* Everything the stage's operators hold goes out, then BARRIER id on every output channel. */
static int flush_and_forward(sl_stage *s, uint64_t id)
{
    for (size_t i = 0; i < s->n_insts; i++) {
        int rc = sl__inst_flush_fused(s->insts[i]);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < s->n_insts; i++) {
        int rc = sl__inst_flush_all(s->insts[i]);
        if (rc == 0)
            rc = sl__inst_send_control(s->insts[i], SL_BATCH_BARRIER, INT64_MIN, id);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int sl__stage_checkpoint_done(sl_stage *s, uint64_t id)
{
    for (size_t i = 0; i < s->n_insts; i++) {
        sl_inst *in = s->insts[i];
        if (SL_OP_HAS(in->def->op, checkpoint_done) &&
            in->def->op->checkpoint_done(in->state, &in->ctx, id) != SL_OK) {
            sl__log(in->def->name, SL_LOG_ERROR, "failed completing checkpoint %llu",
                    (unsigned long long)id);
            return SL_EOPERATOR;
        }
    }
    return 0;
}

/* Tell the coordinator this stage is parked at id; wake it if we were the last one. */
static void report_parked(sl_stage *s, uint64_t id)
{
    sl_runtime *rt = s->rt;
    sl_ckpt *c = &rt->ckpt;
    pthread_mutex_lock(&c->mu);
    s->barrier = id;
    int last = ++c->parked == rt->n_stages;
    pthread_mutex_unlock(&c->mu);
    if (last && rt->wake_main)
        pthread_kill(rt->main_thread, SIGUSR1);
}

/* Wait for the release of id. 0 to go on, SL_EHALTED to stop, SL_EINTERRUPTED on a failure. */
static int park(sl_stage *s, uint64_t id)
{
    sl_runtime *rt = s->rt;
    sl_ckpt *c = &rt->ckpt;
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    while (c->released < id && !c->halt) {
        if (atomic_load(&rt->failed)) {
            rc = SL_EINTERRUPTED;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += PARK_POLL_NS;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    int halt = c->halt && c->released >= id;
    if (rc == 0 && c->released < id) /* halted without taking this checkpoint */
        rc = SL_EINTERRUPTED;
    pthread_mutex_unlock(&c->mu);
    if (rc != 0)
        return rc;
    /* checkpoint id is durable: transactional sinks publish what came before its barrier */
    rc = sl__stage_checkpoint_done(s, id);
    return rc != 0 ? rc : halt ? SL_EHALTED : 0;
}

static int take_part(sl_stage *s, uint64_t id)
{
    int rc = flush_and_forward(s, id);
    if (rc != 0)
        return rc;
    report_parked(s, id);
    return park(s, id);
}

int sl__barrier_poll_source(sl_stage *s)
{
    uint64_t want = atomic_load_explicit(&s->rt->ckpt.want, memory_order_acquire);
    return want > s->barrier ? take_part(s, want) : 0;
}

/* Whether every live channel has delivered barrier id. */
static int aligned(const sl_stage *s, uint64_t id)
{
    for (uint32_t c = 0; c < s->n_ch; c++)
        if (s->ch_state[c] != SL_CH_DONE && s->ch_barrier[c] < id)
            return 0;
    return 1;
}

static int try_align(sl_stage *s)
{
    uint64_t id = s->aligning;
    if (!id || !aligned(s, id))
        return 0;
    s->aligning = 0;
    return take_part(s, id);
}

int sl__barrier_received(sl_stage *s, uint32_t ch, uint64_t id)
{
    if (id <= s->barrier || id <= s->ch_barrier[ch] || (s->aligning && id != s->aligning)) {
        sl__log(s->insts[0]->def->name, SL_LOG_ERROR,
                "barrier %llu out of order on channel %u (aligning %llu, last %llu)",
                (unsigned long long)id, ch, (unsigned long long)s->aligning,
                (unsigned long long)s->barrier);
        return SL_EPROTO;
    }
    s->ch_barrier[ch] = id;
    s->aligning = id;
    return try_align(s);
}

int sl__barrier_blocked(const sl_stage *s, uint32_t ch)
{
    return s->aligning && s->ch_barrier[ch] >= s->aligning;
}

int sl__barrier_channel_done(sl_stage *s) { return try_align(s); }

void sl__barrier_stage_ended(sl_stage *s)
{
    sl_runtime *rt = s->rt;
    sl_ckpt *c = &rt->ckpt;
    if (!c->sync_ok)
        return;
    pthread_mutex_lock(&c->mu);
    s->ended = 1;
    /* a checkpoint in progress no longer waits for this stage */
    int counted = atomic_load(&c->want) > s->barrier;
    int last = counted && ++c->parked == rt->n_stages;
    pthread_mutex_unlock(&c->mu);
    if (last && rt->wake_main)
        pthread_kill(rt->main_thread, SIGUSR1);
}
