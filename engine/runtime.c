/*
 * runtime.c - build, run and tear down a pipeline's instances, sockets and
 * threads (life cycle and shutdown in runtime.h).
 *
 * Wiring: every stage instance whose head receives gets one PULL socket,
 * bound at inproc://sl.<stage>.<instance>. Every non-fused edge U -> D gives
 * each instance of U one PUSH socket per instance of D, so the sender picks
 * the target itself (round robin by batch, or by key hash) and a receiver
 * knows how many EOS to wait for: one per upstream instance per edge.
 * Sockets are created here and handed to the stage threads; pthread_create
 * is the memory barrier ZeroMQ asks for when a socket changes threads.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "admin.h"
#include "error.h"
#include "instance.h"

#define DEFAULT_HWM 8

void sl_run_opts_default(sl_run_opts *o)
{
    o->fusion = 1;
    o->progress = 0;
    o->hwm = DEFAULT_HWM;
    o->handle_signals = 1;
    o->restore_id = 0;
    o->snapshot_id = 0;
    o->fresh = 0;
}

static int add_edge(sl_out_port *port, sl_out_edge **out)
{
    sl_out_edge *e = realloc(port->edges, (port->n_edges + 1) * sizeof *e);
    if (!e)
        return -ENOMEM;
    port->edges = e;
    *out = &e[port->n_edges++];
    memset(*out, 0, sizeof **out);
    return 0;
}

static void endpoint(char *buf, size_t n, size_t stage_def, uint32_t index)
{
    snprintf(buf, n, "inproc://sl.%zu.%u", stage_def, index);
}

static int make_instances(sl_runtime *rt)
{
    const sl_pipeline *p = rt->p;
    rt->by_op = calloc(p->n_ops, sizeof *rt->by_op);
    if (!rt->by_op)
        return -ENOMEM;
    for (size_t o = 0; o < p->n_ops; o++) {
        const sl_opdef *d = &p->ops[o];
        rt->by_op[o] = calloc(d->parallelism, sizeof **rt->by_op);
        if (!rt->by_op[o])
            return -ENOMEM;
        for (uint32_t i = 0; i < d->parallelism; i++) {
            sl_inst *in = &rt->by_op[o][i];
            in->ctx.host = &sl__host;
            in->rt = rt;
            in->op = o;
            in->def = d;
            in->index = i;
            in->wm_out = INT64_MIN;
            atomic_store_explicit(&in->wm_pub, INT64_MIN, memory_order_relaxed);
            in->max_event_ns = INT64_MIN;
            in->n_ports = d->n_ports;
            in->ports = calloc(d->n_ports ? d->n_ports : 1, sizeof *in->ports);
            if (!in->ports)
                return -ENOMEM;
        }
    }
    return 0;
}

static int init_instances(sl_runtime *rt, sl_diag *d)
{
    int rc = 0;
    for (size_t t = 0; t < rt->p->n_ops; t++) {
        size_t o = rt->p->topo[t];
        const sl_opdef *def = &rt->p->ops[o];
        for (uint32_t i = 0; i < def->parallelism; i++) {
            sl_inst *in = &rt->by_op[o][i];
            size_t before = d->n;
            if (def->op->init(&in->ctx, &in->state) != SL_OK) {
                int plugin = def->origin && strcmp(def->origin, "built-in") != 0;
                if (d->n == before || plugin) /* a plugin's failure names its file */
                    sl_diag_add(d, def->node->file, def->node->line, def->node->col,
                                "operator '%s' (%s%s%s%s) failed to initialise", def->name,
                                def->op->name, plugin ? ", from plugin '" : "",
                                plugin ? def->origin : "", plugin ? "'" : "");
                rc = SL_ECONFIG;
                break; /* one report per operator is enough */
            }
            in->init_ok = 1;
        }
    }
    return rc;
}

static int make_stages(sl_runtime *rt)
{
    size_t n = 0;
    for (size_t s = 0; s < rt->plan.n_stages; s++)
        n += rt->plan.stages[s].parallelism;
    rt->stages = calloc(n, sizeof *rt->stages);
    if (!rt->stages)
        return -ENOMEM;
    rt->n_stages = n;
    size_t k = 0;
    for (size_t s = 0; s < rt->plan.n_stages; s++) {
        const sl_stage_def *sd = &rt->plan.stages[s];
        for (uint32_t i = 0; i < sd->parallelism; i++, k++) {
            sl_stage *st = &rt->stages[k];
            st->rt = rt;
            st->def = sd;
            st->index = i;
            st->n_insts = sd->n_ops;
            st->insts = calloc(sd->n_ops, sizeof *st->insts);
            if (!st->insts)
                return -ENOMEM;
            for (size_t j = 0; j < sd->n_ops; j++) {
                st->insts[j] = &rt->by_op[sd->ops[j]][i];
                st->insts[j]->stage = st;
            }
            if (!(rt->p->ops[sd->head].op->flags & SL_OP_SOURCE)) {
                char ep[64];
                int hwm = rt->opts.hwm, zero = 0;
                st->pull = zmq_socket(rt->zctx, ZMQ_PULL);
                if (!st->pull)
                    return -errno;
                zmq_setsockopt(st->pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
                zmq_setsockopt(st->pull, ZMQ_LINGER, &zero, sizeof zero);
                endpoint(ep, sizeof ep, s, i);
                if (zmq_bind(st->pull, ep) != 0)
                    return -errno;
            }
        }
    }
    return 0;
}

/* The stage instance that runs instance i of operator `op` (which heads it). */
static sl_stage *stage_of(sl_runtime *rt, size_t op, uint32_t i)
{
    return rt->by_op[op][i].stage;
}

static int wire_edge(sl_runtime *rt, size_t to, const sl_input *in)
{
    const sl_pipeline *p = rt->p;
    const sl_opdef *from = &p->ops[in->from], *dst = &p->ops[to];
    sl_edge_kind kind = sl_plan_edge_kind(&rt->plan, p, to, in);
    for (uint32_t u = 0; u < from->parallelism; u++) {
        sl_inst *src = &rt->by_op[in->from][u];
        sl_out_edge *e;
        if (add_edge(&src->ports[in->port], &e) != 0)
            return -ENOMEM;
        e->kind = kind;
        e->slot = in->slot;
        e->key = sl_opdef_key(dst, in->slot);
        e->n_b = kind == SL_EDGE_KEYED ? dst->parallelism : 1;
        e->b = calloc(e->n_b, sizeof *e->b);
        if (!e->b)
            return -ENOMEM;
        if (kind == SL_EDGE_FUSED) {
            e->fused = &rt->by_op[to][u];
            continue;
        }
        e->n_socks = dst->parallelism;
        e->socks = calloc(e->n_socks, sizeof *e->socks);
        e->chan = calloc(e->n_socks, sizeof *e->chan);
        e->wm_sent = calloc(e->n_socks, sizeof *e->wm_sent);
        e->idle_sent = calloc(e->n_socks, sizeof *e->idle_sent);
        e->dst = calloc(e->n_socks, sizeof *e->dst);
        if (!e->socks || !e->chan || !e->wm_sent || !e->idle_sent || !e->dst)
            return -ENOMEM;
        e->rr = u; /* start senders on different receivers */
        for (uint32_t j = 0; j < dst->parallelism; j++) {
            sl_stage *st = stage_of(rt, to, j);
            char ep[64];
            int hwm = rt->opts.hwm, zero = 0;
            void *s = zmq_socket(rt->zctx, ZMQ_PUSH);
            if (!s)
                return -errno;
            e->socks[j] = s;
            e->dst[j] = st;
            zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
            zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
            endpoint(ep, sizeof ep, (size_t)(st->def - rt->plan.stages), j);
            if (zmq_connect(s, ep) != 0)
                return -errno;
            e->chan[j] = st->eos_expected++; /* one channel, and one EOS, per sender instance */
            e->wm_sent[j] = INT64_MIN;
        }
    }
    return 0;
}

static int wire(sl_runtime *rt)
{
    for (size_t o = 0; o < rt->p->n_ops; o++)
        for (size_t k = 0; k < rt->p->ops[o].n_inputs; k++) {
            int rc = wire_edge(rt, o, &rt->p->ops[o].inputs[k]);
            if (rc != 0)
                return rc;
        }
    /* every receiving stage tracks the watermark of each of its input channels */
    for (size_t s = 0; s < rt->n_stages; s++) {
        sl_stage *st = &rt->stages[s];
        st->wm = INT64_MIN;
        if (!st->pull)
            continue;
        st->n_ch = st->eos_expected;
        st->ch_wm = malloc((st->n_ch ? st->n_ch : 1) * sizeof *st->ch_wm);
        st->ch_state = calloc(st->n_ch ? st->n_ch : 1, sizeof *st->ch_state);
        st->ch_barrier = calloc(st->n_ch ? st->n_ch : 1, sizeof *st->ch_barrier);
        if (!st->ch_wm || !st->ch_state || !st->ch_barrier)
            return -ENOMEM;
        for (uint32_t c = 0; c < st->n_ch; c++)
            st->ch_wm[c] = INT64_MIN;
    }
    return 0;
}

int sl_runtime_new(const sl_pipeline *p, const sl_run_opts *opts, sl_diag *d, sl_runtime **out)
{
    *out = NULL;
    sl_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return -ENOMEM;
    rt->p = p;
    if (opts)
        rt->opts = *opts;
    else
        sl_run_opts_default(&rt->opts);
    if (rt->opts.hwm <= 0)
        rt->opts.hwm = DEFAULT_HWM;
    rt->timing = p->admin_listen != NULL; /* batch durations are measured for the endpoint */
    int rc = sl_plan_build(p, rt->opts.fusion, &rt->plan);
    if (rc != 0)
        goto err;
    rc = make_instances(rt);
    if (rc == 0)
        rc = sl__ckpt_init(rt);
    if (rc != 0)
        goto err;
    unsigned n_inst = 0;
    for (size_t o = 0; o < p->n_ops; o++)
        n_inst += p->ops[o].parallelism;
    rt->state = sl__state_new(p->state_dir, 8 * n_inst + 16);
    if (!rt->state) {
        rc = -ENOMEM;
        goto err;
    }
    rt->diag = d;
    rc = init_instances(rt, d);
    rt->diag = NULL;
    if (rc != 0)
        goto err;
    rt->zctx = zmq_ctx_new();
    if (!rt->zctx) {
        rc = -errno;
        goto err;
    }
    rc = make_stages(rt);
    if (rc == 0)
        rc = wire(rt);
    if (rc != 0)
        goto err;
    *out = rt;
    return 0;
err:
    if (rc != SL_ECONFIG)
        sl_diag_add(d, p->file, 0, 0, "cannot set up the pipeline: %s", sl_strerror(rc));
    sl_runtime_destroy(&rt);
    return rc;
}

size_t sl_runtime_stats(sl_runtime *rt, sl_op_stats *out, size_t n)
{
    size_t k = 0;
    for (size_t o = 0; o < rt->p->n_ops && k < n; o++, k++) {
        sl_op_stats s = {.name = rt->p->ops[o].name};
        for (uint32_t i = 0; i < rt->p->ops[o].parallelism; i++) {
            sl_inst *in = &rt->by_op[o][i];
            s.in += atomic_load_explicit(&in->n_in, memory_order_relaxed);
            s.out += atomic_load_explicit(&in->n_out, memory_order_relaxed);
            s.errors += atomic_load_explicit(&in->n_err, memory_order_relaxed);
        }
        out[k] = s;
    }
    return k;
}

/* One line per operator: events in and out, and their rate since the last report. */
static void print_progress(sl_runtime *rt, uint64_t *last, double dt)
{
    size_t n = rt->p->n_ops;
    sl_op_stats st[n ? n : 1];
    sl_runtime_stats(rt, st, n);
    double elapsed = (double)(sl__monotonic() - rt->started_ns) / 1e9;
    fprintf(stderr, "--- %s %.1fs\n", rt->p->name, elapsed);
    for (size_t o = 0; o < n; o++) {
        uint64_t moved = st[o].in + st[o].out;
        char in[16], outb[16], rate[16];
        sl_metrics_human(in, sizeof in, (double)st[o].in);
        sl_metrics_human(outb, sizeof outb, (double)st[o].out);
        sl_metrics_human(rate, sizeof rate, dt > 0 ? (double)(moved - last[o]) / dt : 0);
        last[o] = moved;
        fprintf(stderr, "  %-20s in %8s  out %8s  %8s ev/s%s\n", st[o].name, in, outb, rate,
                st[o].errors ? "  (errors)" : "");
    }
}

int sl_runtime_run(sl_runtime *rt)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1); /* sent by the last stage thread to end: see stage.c */
    if (rt->opts.handle_signals) {
        pthread_sigmask(SIG_BLOCK, &set, &old); /* threads inherit it: only we see signals */
        rt->main_thread = pthread_self();
        rt->wake_main = 1;
    }

    int rc = sl__ckpt_recover(rt);
    for (size_t o = 0; o < rt->p->n_ops && rc == 0 && rt->opts.restore_id; o++)
        for (uint32_t i = 0; i < rt->p->ops[o].parallelism && rc == 0; i++) {
            sl_inst *in = &rt->by_op[o][i];
            if (in->def->op->restore &&
                in->def->op->restore(in->state, &in->ctx, rt->opts.restore_id) != SL_OK)
                rc = SL_EOPERATOR;
        }
    for (size_t o = 0; o < rt->p->n_ops && rc == 0; o++)
        for (uint32_t i = 0; i < rt->p->ops[o].parallelism && rc == 0; i++) {
            sl_inst *in = &rt->by_op[o][i];
            if (in->def->op->start && in->def->op->start(in->state, &in->ctx) != SL_OK)
                rc = SL_EOPERATOR;
        }
    rt->started_ns = sl__monotonic();
    rt->started_wall_ns = sl__wallclock();
    if (rc == 0 && rt->p->admin_listen && sl__admin_start(rt, rt->p->admin_listen, &rt->admin) != 0)
        rc = SL_ECONFIG;
    atomic_store(&rt->running, (int)rt->n_stages);
    size_t started = 0;
    for (size_t s = 0; s < rt->n_stages && rc == 0; s++) {
        if (pthread_create(&rt->stages[s].thread, NULL, sl__stage_main, &rt->stages[s]) != 0) {
            rc = -EAGAIN;
            break;
        }
        rt->stages[s].started = 1;
        started++;
    }
    if (rc != 0) {
        sl__fail(rt);
        atomic_fetch_sub(&rt->running, (int)(rt->n_stages - started));
    }

    uint64_t *last = calloc(rt->p->n_ops + 1, sizeof *last);
    int64_t last_report = rt->started_ns;
    int shut = 0, signals = 0;
    int64_t wait_ns = 0;
    while (atomic_load(&rt->running) > 0) {
        if (atomic_load(&rt->failed) && !shut) {
            zmq_ctx_shutdown(rt->zctx); /* unblock every send and receive */
            sl__ckpt_wake(rt);
            shut = 1;
        }
        if (rt->opts.handle_signals) {
            struct timespec ts = {0, (long)wait_ns};
            int sig = sigtimedwait(&set, NULL, &ts);
            if (sig == SIGINT || sig == SIGTERM) {
                if (signals++ == 0 && !atomic_load(&rt->failed) && rt->ckpt.interval_ns) {
                    sl__log(NULL, SL_LOG_INFO, "stopping: taking a checkpoint, then stopping "
                                               "(signal again to stop at once)");
                    sl__ckpt_request_halt(rt);
                } else if (signals == 1 && !atomic_load(&rt->failed)) {
                    sl__log(NULL, SL_LOG_INFO, "stopping: draining events in flight "
                                               "(signal again to stop at once)");
                    atomic_store(&rt->stop, 1);
                } else {
                    sl__log(NULL, SL_LOG_WARN, "stopping at once");
                    sl__fail(rt);
                }
            }
        } else {
            struct timespec ts = {0, wait_ns < 1000000 ? (long)wait_ns : 1000000};
            nanosleep(&ts, NULL);
        }
        int64_t now = sl__monotonic();
        wait_ns = 100 * 1000000;
        if (!atomic_load(&rt->failed) && rc == 0 && sl__ckpt_tick(rt, now, &wait_ns) != 0) {
            sl__log(NULL, SL_LOG_ERROR, "checkpoint %llu failed: stopping",
                    (unsigned long long)atomic_load(&rt->ckpt.want));
            sl__fail(rt);
        }
        if (wait_ns < 0)
            wait_ns = 0;
        if (rt->opts.progress && last && now - last_report >= 1000000000ll) {
            print_progress(rt, last, (double)(now - last_report) / 1e9);
            last_report = now;
        }
    }
    for (size_t s = 0; s < rt->n_stages; s++)
        if (rt->stages[s].started) {
            pthread_join(rt->stages[s].thread, NULL);
            rt->stages[s].started = 0;
        }
    if (rt->opts.progress && last)
        print_progress(rt, last, (double)(sl__monotonic() - last_report) / 1e9);
    free(last);
    if (rt->opts.handle_signals) {
        struct timespec zero = {0, 0};
        sigset_t usr1;
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        while (sigtimedwait(&usr1, NULL, &zero) == SIGUSR1)
            ; /* consume the wake-up so it does not outlive the run */
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    for (size_t o = 0; o < rt->p->n_ops && rc == 0 && rt->opts.snapshot_id &&
                       !atomic_load(&rt->failed); o++)
        for (uint32_t i = 0; i < rt->p->ops[o].parallelism && rc == 0; i++) {
            sl_inst *in = &rt->by_op[o][i];
            if (in->def->op->snapshot &&
                in->def->op->snapshot(in->state, &in->ctx, rt->opts.snapshot_id) != SL_OK)
                rc = SL_EOPERATOR;
        }
    if (rc == 0 && !atomic_load(&rt->failed) && !rt->ckpt.halt && sl__ckpt_final(rt) != 0) {
        sl__log(NULL, SL_LOG_ERROR, "the final checkpoint failed");
        sl__fail(rt);
    }
    sl__ckpt_report(rt);
    sl__admin_stop(&rt->admin);
    if (signals > 1)
        rc = SL_EINTERRUPTED; /* stopped at once on request, whatever the stages were doing */
    else if (rc == 0 && atomic_load(&rt->failed))
        rc = SL_EOPERATOR;
    return rc;
}

void sl_runtime_stop(sl_runtime *rt) { atomic_store(&rt->stop, 1); }

void sl_runtime_destroy(sl_runtime **rtp)
{
    sl_runtime *rt = rtp ? *rtp : NULL;
    if (!rt)
        return;
    for (size_t s = 0; s < rt->n_stages; s++) {
        if (rt->stages[s].pull)
            zmq_close(rt->stages[s].pull);
        free(rt->stages[s].insts);
        free(rt->stages[s].ch_wm);
        free(rt->stages[s].ch_state);
        free(rt->stages[s].ch_barrier);
    }
    free(rt->stages);
    for (size_t o = 0; rt->by_op && o < rt->p->n_ops; o++) {
        if (!rt->by_op[o])
            continue;
        for (uint32_t i = 0; i < rt->p->ops[o].parallelism; i++) {
            sl_inst *in = &rt->by_op[o][i];
            if (in->init_ok || in->state)
                in->def->op->destroy(in->state);
            for (size_t k = 0; in->ports && k < in->n_ports; k++) {
                for (size_t j = 0; j < in->ports[k].n_edges; j++) {
                    sl_out_edge *e = &in->ports[k].edges[j];
                    for (uint32_t b = 0; b < e->n_b; b++)
                        sl_builder_fini(&e->b[b]);
                    free(e->b);
                    for (uint32_t q = 0; q < e->n_socks; q++)
                        if (e->socks[q])
                            zmq_close(e->socks[q]);
                    free(e->socks);
                    free(e->chan);
                    free(e->wm_sent);
                    free(e->idle_sent);
                    free(e->dst);
                }
                free(in->ports[k].edges);
            }
            free(in->ports);
            sl__inst_release(in);
        }
        free(rt->by_op[o]);
    }
    free(rt->by_op);
    sl__state_free(&rt->state);
    sl__ckpt_fini(rt);
    if (rt->zctx)
        zmq_ctx_term(rt->zctx);
    sl_plan_fini(&rt->plan);
    free(rt);
    *rtp = NULL;
}
