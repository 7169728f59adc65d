/*
 * checkpoint.c - the checkpoint coordinator: when to take one, taking it
 * (every snapshot, the record and the commit in one LMDB transaction), the
 * final one, and recovery at start (checkpoint.h; docs/checkpoints.md).
 *
 * The record (engine database "sluice", key "checkpoint") is a msgpack map:
 *   {id, time, pipeline, operators: [[name, type, parallelism, [source max
 *    event time per instance]], ...]}
 * listing the operators whose instances wrote state (those with snapshot).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "failpoint.h"
#include "instance.h"
#include "registry.h"
#include "timefmt.h"

#define READY_POLL_NS 5000000ll /* look for parked stages at least this often (a lost wake-up) */

static int stateful(const sl_opdef *d) { return d->op->snapshot != NULL; }

int sl__ckpt_init(sl_runtime *rt)
{
    sl_ckpt *c = &rt->ckpt;
    c->interval_ns = rt->p->checkpoint_interval_ns;
    if (pthread_mutex_init(&c->mu, NULL) != 0)
        return -ENOMEM;
    if (pthread_cond_init(&c->cv, NULL) != 0) {
        pthread_mutex_destroy(&c->mu);
        return -ENOMEM;
    }
    c->sync_ok = 1;
    return 0;
}

void sl__ckpt_fini(sl_runtime *rt)
{
    sl_ckpt *c = &rt->ckpt;
    if (!c->sync_ok)
        return;
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    c->sync_ok = 0;
}

void sl__ckpt_wake(sl_runtime *rt)
{
    sl_ckpt *c = &rt->ckpt;
    if (!c->sync_ok)
        return;
    pthread_mutex_lock(&c->mu);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------ the record */

static int write_record(sl_runtime *rt, uint64_t id, sl_wbuf *b)
{
    const sl_pipeline *p = rt->p;
    size_t n = 0;
    for (size_t o = 0; o < p->n_ops; o++)
        n += stateful(&p->ops[o]);
    int rc = sl_mp_write_map(b, 4) | sl_mp_write_cstr(b, "id") | sl_mp_write_uint(b, id) |
             sl_mp_write_cstr(b, "time") | sl_mp_write_timestamp(b, sl__wallclock()) |
             sl_mp_write_cstr(b, "pipeline") | sl_mp_write_cstr(b, p->name) |
             sl_mp_write_cstr(b, "operators") | sl_mp_write_array(b, (uint32_t)n);
    for (size_t o = 0; o < p->n_ops; o++) {
        const sl_opdef *d = &p->ops[o];
        if (!stateful(d))
            continue;
        rc |= sl_mp_write_array(b, 4) | sl_mp_write_cstr(b, d->name) |
              sl_mp_write_cstr(b, d->op->name) | sl_mp_write_uint(b, d->parallelism) |
              sl_mp_write_array(b, d->parallelism);
        for (uint32_t i = 0; i < d->parallelism; i++)
            rc |= sl_mp_write_int(b, rt->by_op[o][i].max_event_ns);
    }
    return rc ? -ENOMEM : 0;
}

typedef struct rec_op {
    char name[256], type[128];
    uint64_t parallelism;
    const uint8_t *wms; /* the msgpack array of max event times */
} rec_op;

static int read_str(const uint8_t **p, const uint8_t *end, char *out, size_t n)
{
    sl_mp_val v;
    if (sl_mp_read(p, end, &v) != 0 || v.type != SL_MP_STR || v.v.str.len >= n)
        return -1;
    memcpy(out, v.v.str.ptr, v.v.str.len);
    out[v.v.str.len] = '\0';
    return 0;
}

static int read_uint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    sl_mp_val v;
    if (sl_mp_read(p, end, &v) != 0 || v.type != SL_MP_UINT)
        return -1;
    *out = v.v.u;
    return 0;
}

/* Position *p at the operators array of the record and return the id; -1 if malformed. */
static int record_header(const uint8_t **p, const uint8_t *end, uint64_t *id, int64_t *time,
                         uint32_t *n_ops)
{
    const uint8_t *q = *p;
    sl_mp_val v;
    if (sl_mp_map_find(&q, end, "id", 2) != 1 || read_uint(&q, end, id) != 0)
        return -1;
    q = *p;
    *time = 0;
    if (sl_mp_map_find(&q, end, "time", 4) == 1 && sl_mp_read(&q, end, &v) == 0)
        sl_mp_timestamp_ns(&v, time);
    q = *p;
    if (sl_mp_map_find(&q, end, "operators", 9) != 1 || sl_mp_read(&q, end, &v) != 0 ||
        v.type != SL_MP_ARRAY)
        return -1;
    *n_ops = v.v.n;
    *p = q;
    return 0;
}

static int record_op(const uint8_t **p, const uint8_t *end, rec_op *r)
{
    sl_mp_val v;
    if (sl_mp_read(p, end, &v) != 0 || v.type != SL_MP_ARRAY || v.v.n != 4 ||
        read_str(p, end, r->name, sizeof r->name) != 0 ||
        read_str(p, end, r->type, sizeof r->type) != 0 ||
        read_uint(p, end, &r->parallelism) != 0)
        return -1;
    r->wms = *p;
    return sl_mp_skip(p, end);
}

/* ------------------------------------------------------------- recovery */

static void restore_watermarks(sl_runtime *rt, size_t o, const rec_op *r, const uint8_t *end)
{
    const uint8_t *q = r->wms;
    sl_mp_val v;
    if (sl_mp_read(&q, end, &v) != 0 || v.type != SL_MP_ARRAY)
        return;
    for (uint32_t i = 0; i < v.v.n && i < rt->p->ops[o].parallelism; i++) {
        sl_mp_val w;
        if (sl_mp_read(&q, end, &w) != 0)
            return;
        rt->by_op[o][i].max_event_ns = w.type == SL_MP_INT ? w.v.i : (int64_t)w.v.u;
    }
}

#define FRESH_HINT "run with --fresh to discard the state and start from empty state"

/* Check one operator of the record against the pipeline and restore its instances. */
static int restore_op(sl_runtime *rt, uint64_t id, const rec_op *r, const uint8_t *end,
                      uint8_t *seen)
{
    const sl_pipeline *p = rt->p;
    const char *dir = sl__state_dir(rt->state);
    long o = sl_pipeline_find(p, r->name);
    const sl_registry_entry *was = sl_registry_find(r->type);
    if (o < 0 && was && (was->op->flags & SL_OP_SINK)) {
        /* what it published stays; what it had pending is no one's output now */
        sl__log(NULL, SL_LOG_WARN, "sink '%s' (%s) of checkpoint %" PRIu64 " was removed",
                r->name, r->type, id);
        return 0;
    }
    if (o < 0 || !stateful(&p->ops[o])) {
        sl__log(NULL, SL_LOG_ERROR,
                "state_dir '%s': checkpoint %" PRIu64 " holds the state of operator '%s' (%s), "
                "which the pipeline no longer has: put it back, or " FRESH_HINT,
                dir, id, r->name, r->type);
        return SL_ESTATE;
    }
    const sl_opdef *d = &p->ops[o];
    if (strcmp(d->op->name, r->type) != 0) {
        sl__log(d->name, SL_LOG_ERROR,
                "state_dir '%s': operator '%s' is a %s now, but checkpoint %" PRIu64
                " holds the state of a %s: " FRESH_HINT,
                dir, d->name, d->op->name, id, r->type);
        return SL_ESTATE;
    }
    if (d->parallelism != r->parallelism) {
        sl__log(d->name, SL_LOG_ERROR,
                "state_dir '%s': operator '%s' has parallelism %u now, but checkpoint %" PRIu64
                " was taken with %" PRIu64 " (state is not redistributed between instances): "
                "set it back, or " FRESH_HINT,
                dir, d->name, d->parallelism, id, r->parallelism);
        return SL_ESTATE;
    }
    seen[o] = 1;
    restore_watermarks(rt, (size_t)o, r, end);
    for (uint32_t i = 0; i < d->parallelism; i++) {
        sl_inst *in = &rt->by_op[o][i];
        if (d->op->restore && d->op->restore(in->state, &in->ctx, id) != SL_OK) {
            sl__log(d->name, SL_LOG_ERROR,
                    "state_dir '%s': cannot restore operator '%s' from checkpoint %" PRIu64
                    " (see above); if its configuration changed in a way its state cannot "
                    "follow, " FRESH_HINT,
                    dir, d->name, id);
            return SL_ESTATE;
        }
    }
    return 0;
}

int sl__ckpt_recover(sl_runtime *rt)
{
    sl_ckpt *c = &rt->ckpt;
    if (!c->interval_ns)
        return 0;
    if (rt->opts.fresh)
        sl__state_set_fresh(rt->state);
    if (sl__state_open(rt->state) != 0)
        return SL_ESTATE;
    sl_wbuf rec = {0};
    int rc = sl__state_record_get(rt->state, "checkpoint", &rec);
    if (rc != 0) {
        sl_wbuf_fini(&rec);
        return rc < 0 ? SL_ESTATE : 0; /* 1: no checkpoint yet, a first run */
    }
    const uint8_t *q = rec.data, *end = rec.data + rec.len;
    uint64_t id;
    int64_t time;
    uint32_t n_ops;
    const sl_pipeline *p = rt->p;
    uint8_t *seen = calloc(p->n_ops + 1, 1);
    if (!seen) {
        sl_wbuf_fini(&rec);
        return -ENOMEM;
    }
    rc = record_header(&q, end, &id, &time, &n_ops);
    for (uint32_t k = 0; rc == 0 && k < n_ops; k++) {
        rec_op r;
        rc = record_op(&q, end, &r);
        if (rc == 0)
            rc = restore_op(rt, id, &r, end, seen);
    }
    if (rc == -1)
        sl__log(NULL, SL_LOG_ERROR,
                "state_dir '%s': the checkpoint record is corrupt: move the directory away, "
                "or " FRESH_HINT, sl__state_dir(rt->state));
    if (rc == 0) {
        for (size_t o = 0; o < p->n_ops; o++)
            if (stateful(&p->ops[o]) && !seen[o])
                sl__log(p->ops[o].name, SL_LOG_INFO,
                        "new since checkpoint %" PRIu64 ": starts with empty state", id);
        char when[64] = "";
        sl_time_format(time, when);
        sl__log(NULL, SL_LOG_INFO, "restored checkpoint %" PRIu64 " (%s) from state_dir '%s'",
                id, when, sl__state_dir(rt->state));
        c->last = id;
        atomic_store(&c->want, id);
        atomic_store_explicit(&c->pub.id, id, memory_order_relaxed);
        atomic_store_explicit(&c->pub.wall_ns, time, memory_order_relaxed);
        atomic_store_explicit(&c->pub.bytes, sl__state_bytes(rt->state), memory_order_relaxed);
        for (size_t s = 0; s < rt->n_stages; s++)
            rt->stages[s].barrier = id;
    }
    free(seen);
    sl_wbuf_fini(&rec);
    return rc == -1 ? SL_ESTATE : rc;
}

/* ------------------------------------------------------ taking checkpoints */

static void begin(sl_runtime *rt, int64_t now)
{
    sl_ckpt *c = &rt->ckpt;
    uint64_t id = c->last + 1;
    pthread_mutex_lock(&c->mu);
    uint32_t ended = 0;
    for (size_t s = 0; s < rt->n_stages; s++)
        ended += rt->stages[s].ended;
    c->parked = ended;
    atomic_store_explicit(&c->want, id, memory_order_release);
    pthread_mutex_unlock(&c->mu);
    c->in_progress = 1;
    c->begun_at = now;
}

/* Every stage is parked or ended: snapshot everything, record, commit, release. */
static int complete(sl_runtime *rt)
{
    sl_ckpt *c = &rt->ckpt;
    const sl_pipeline *p = rt->p;
    uint64_t id = atomic_load(&c->want);
    int64_t t0 = sl__monotonic();
    if (sl__state_open(rt->state) != 0 || sl__state_ckpt_begin(rt->state) != 0)
        return SL_ESTATE;
    int rc = 0;
    for (size_t t = 0; t < p->n_ops && rc == 0; t++) {
        size_t o = p->topo[t];
        for (uint32_t i = 0; i < p->ops[o].parallelism && rc == 0; i++) {
            sl_inst *in = &rt->by_op[o][i];
            int64_t ts = sl__monotonic();
            if (in->def->op->snapshot && in->def->op->snapshot(in->state, &in->ctx, id) != SL_OK) {
                sl__log(in->def->name, SL_LOG_ERROR, "failed writing checkpoint %" PRIu64, id);
                rc = SL_EOPERATOR;
            }
            if (in->def->op->snapshot)
                sl__log(in->def->name, SL_LOG_DEBUG, "snapshot %" PRIu64 ": %.1f ms", id,
                        (double)(sl__monotonic() - ts) / 1e6);
            if (in->kv.txn) { /* left open by the operator: not part of the checkpoint */
                sl__kv_abort(&in->ctx);
                if (rc == 0) {
                    sl__log(in->def->name, SL_LOG_ERROR, "snapshot left a transaction open");
                    rc = SL_EOPERATOR;
                }
            }
        }
    }
    sl_wbuf rec = {0};
    if (rc == 0 && write_record(rt, id, &rec) != 0)
        rc = -ENOMEM;
    if (rc == 0 && sl__state_ckpt_put(rt->state, "checkpoint", rec.data, rec.len) != 0)
        rc = SL_ESTATE;
    sl_wbuf_fini(&rec);
    if (rc != 0) {
        sl__state_ckpt_abort(rt->state);
        return rc;
    }
    int64_t tc = sl__monotonic();
    sl_failpoint("checkpoint.before_commit");
    if (sl__state_ckpt_commit(rt->state) != 0)
        return SL_ESTATE;
    sl_failpoint("checkpoint.after_commit");
    int64_t t1 = sl__monotonic();
    sl__log(NULL, SL_LOG_DEBUG, "checkpoint %" PRIu64 ": barriers %.1f ms, snapshots %.1f ms, "
            "commit and sync %.1f ms", id, (double)(t0 - c->begun_at) / 1e6,
            (double)(tc - t0) / 1e6, (double)(t1 - tc) / 1e6);
    c->last = id;
    c->in_progress = 0;
    c->count++;
    c->snapshot_ns += t1 - t0;
    c->total_ns += t1 - c->begun_at;
    if (t1 - c->begun_at > c->max_ns)
        c->max_ns = t1 - c->begun_at;
    uint64_t bytes = sl__state_bytes(rt->state);
    if (bytes > c->bytes)
        c->bytes = bytes;
    atomic_store_explicit(&c->pub.id, id, memory_order_relaxed);
    atomic_store_explicit(&c->pub.count, c->count, memory_order_relaxed);
    atomic_store_explicit(&c->pub.wall_ns, sl__wallclock(), memory_order_relaxed);
    atomic_store_explicit(&c->pub.pause_ns, t1 - c->begun_at, memory_order_relaxed);
    atomic_store_explicit(&c->pub.write_ns, t1 - t0, memory_order_relaxed);
    atomic_store_explicit(&c->pub.bytes, bytes, memory_order_relaxed);
    /* the next one after the interval, and never sooner than a quarter of it after this one
     * ended: checkpoints slower than their interval must leave the pipeline time to run */
    c->next_at = c->begun_at + c->interval_ns;
    if (c->next_at < t1 + c->interval_ns / 4)
        c->next_at = t1 + c->interval_ns / 4;

    pthread_mutex_lock(&c->mu);
    c->released = id;
    c->halt = c->halt_after;
    pthread_cond_broadcast(&c->cv);
    /* stages that ended cannot publish for themselves: their threads are gone */
    rc = 0;
    for (size_t s = 0; s < rt->n_stages && rc == 0; s++)
        if (rt->stages[s].ended)
            rc = sl__stage_checkpoint_done(&rt->stages[s], id);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int sl__ckpt_tick(sl_runtime *rt, int64_t now, int64_t *wait_ns)
{
    sl_ckpt *c = &rt->ckpt;
    if (!c->interval_ns)
        return 0;
    if (!c->next_at)
        c->next_at = now + c->interval_ns;
    if (!c->in_progress) {
        if (now < c->next_at && !c->halt_after) {
            if (c->next_at - now < *wait_ns)
                *wait_ns = c->next_at - now;
            return 0;
        }
        begin(rt, now);
    }
    pthread_mutex_lock(&c->mu);
    int ready = c->parked == rt->n_stages;
    pthread_mutex_unlock(&c->mu);
    if (ready)
        return complete(rt);
    if (*wait_ns > READY_POLL_NS)
        *wait_ns = READY_POLL_NS;
    return 0;
}

void sl__ckpt_request_halt(sl_runtime *rt) { rt->ckpt.halt_after = 1; }

int sl__ckpt_final(sl_runtime *rt)
{
    sl_ckpt *c = &rt->ckpt;
    if (!c->interval_ns)
        return 0;
    if (!c->in_progress)
        begin(rt, sl__monotonic());
    return complete(rt); /* every stage has ended: all parked */
}

void sl__ckpt_report(sl_runtime *rt)
{
    sl_ckpt *c = &rt->ckpt;
    if (!c->count)
        return;
    sl__log(NULL, SL_LOG_INFO,
            "checkpoints: %" PRIu64 " taken, last %" PRIu64 "; pause %.1f ms average, %.1f ms "
            "max; snapshots and sync %.1f ms average; state_dir %.1f MiB at most",
            c->count, c->last, (double)c->total_ns / 1e6 / (double)c->count,
            (double)c->max_ns / 1e6, (double)c->snapshot_ns / 1e6 / (double)c->count,
            (double)c->bytes / (1024.0 * 1024.0));
}
