/*
 * dedup_checkpoint.c - snapshot and restore of the dedup operator: the
 * pending records written, a meta record, epochs and undo records so a
 * restore can take back what a later, unfinished run wrote (docs/dedup.md).
 */
#include "dedup.h"

/* ------------------------------------------------------ snapshot and restore */

typedef struct meta {
    uint64_t id, fingerprint, next_seq;
    int64_t wm;
    uint32_t epoch, n_live;
    uint8_t order[N_LIVE];
    uint32_t pad;
    struct {
        uint64_t seq;
        int64_t opened, max_time;
    } g[N_SLOTS];
} meta;

/* Changes when what the stored records mean changes: the key and the horizon. */
static uint64_t fingerprint(const dedup *d)
{
    uint64_t f = 1469598103934665603ull;
    for (const char *p = d->key_text ? d->key_text : ""; *p; p++)
        f = (f ^ (uint8_t)*p) * 1099511628211ull;
    f = (f ^ (uint64_t)d->horizon) * 1099511628211ull;
    return (f ^ (VAL_HEAD << 8 | N_SLOTS)) * 1099511628211ull; /* the format */
}

int dedup_snapshot(void *state, sl_ctx *ctx, uint64_t id)
{
    dedup *d = state;
    const sl_host *h = ctx->host;
    dedup_end_read(d, ctx);
    meta m;
    memset(&m, 0, sizeof m);
    if (h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    /* one transaction: the new records, the end of what earlier checkpoints needed kept, and
     * the meta record that describes the result */
    if (dedup_flush_in_txn(d, ctx, 0) != SL_OK || h->kv_clear(ctx, d->undo_db) != 0)
        goto err;
    for (int s = 0; s < N_SLOTS; s++)
        if (d->gens[s].state == G_RETIRED) {
            if (h->kv_clear(ctx, d->gens[s].db) != 0)
                goto err;
            d->gens[s].state = G_FREE;
        }
    m.id = id;
    m.fingerprint = fingerprint(d);
    m.next_seq = d->next_seq;
    m.wm = d->wm;
    m.epoch = d->epoch;
    m.n_live = d->n_live;
    memcpy(m.order, d->order, sizeof m.order);
    for (int s = 0; s < N_SLOTS; s++) {
        m.g[s].seq = d->gens[s].seq;
        m.g[s].opened = d->gens[s].opened;
        m.g[s].max_time = d->gens[s].max_time;
    }
    if (h->kv_put(ctx, d->meta_db, "checkpoint", 10, &m, sizeof m) != 0)
        goto err;
    if (h->kv_commit(ctx) != 0 || h->kv_sync(ctx) != 0)
        return SL_ERROR;
    d->epoch++; /* records written from now on are not part of this checkpoint */
    dedup_report_counts(d, ctx);
    return SL_OK;
err:
    h->kv_abort(ctx);
    return SL_ERROR;
}

typedef struct rebuild {
    gen *g;
    uint32_t epoch;
    int bad;
} rebuild;

/* Add a stored record to its generation's filter. Returns 0, or -1 if it does not decode. */
static int readd(gen *g, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    if (vlen < VAL_HEAD || (klen != KEY_LONG && klen > KEY_INLINE) ||
        (klen == KEY_LONG && vlen == VAL_HEAD))
        return -1;
    if (klen == KEY_LONG) /* the whole key is in the value */
        sl_bloom_add(&g->bloom, sl_hash_bytes(v + VAL_HEAD, vlen - VAL_HEAD));
    else
        sl_bloom_add(&g->bloom, sl_hash_bytes(k, klen));
    g->stored++;
    return 0;
}

/* A stored record back into its bloom filter; records newer than the checkpoint go. */
static int rebuild_one(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
    rebuild *r = arg;
    uint32_t epoch;
    if (klen == 1 && memcmp(k, DEDUP_MARKER, 1) == 0)
        return 0;
    if (vlen >= VAL_HEAD) {
        memcpy(&epoch, (const uint8_t *)v + 8, 4);
        if (epoch > r->epoch) /* written after the checkpoint by a run that did not finish */
            return SL_KV_DELETE;
    }
    if (readd(r->g, k, klen, v, vlen) != 0) {
        r->bad = 1;
        return SL_KV_STOP;
    }
    return 0;
}

/* Collect the undo records (slot, LMDB key, value) as (u32 klen, key, u32 vlen, value)... */
static int collect_undo(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
    sl_wbuf *w = arg;
    uint32_t kl = (uint32_t)klen, vl = (uint32_t)vlen;
    if (sl_wbuf_append(w, &kl, 4) != 0 || sl_wbuf_append(w, k, klen) != 0 ||
        sl_wbuf_append(w, &vl, 4) != 0 || sl_wbuf_append(w, v, vlen) != 0) {
        w->len = SIZE_MAX; /* out of memory: say so */
        return SL_KV_STOP;
    }
    return 0;
}

/* Put back the records replaced since the checkpoint (after rebuild deleted the new ones). */
static int apply_undo(dedup *d, sl_ctx *ctx, const int *lost)
{
    const sl_host *h = ctx->host;
    sl_wbuf_reset(&d->undo);
    if (h->kv_scan(ctx, d->undo_db, NULL, 0, collect_undo, &d->undo) != 0)
        return -1;
    if (d->undo.len == SIZE_MAX)
        return -1;
    for (const uint8_t *p = d->undo.data, *end = p + d->undo.len; p < end;) {
        uint32_t kl, vl;
        memcpy(&kl, p, 4);
        const uint8_t *k = p + 4;
        memcpy(&vl, k + kl, 4);
        const uint8_t *v = k + kl + 4;
        p = v + vl;
        if (kl < 2 || k[0] >= N_SLOTS || d->gens[k[0]].state != G_LIVE || lost[k[0]])
            continue;
        gen *g = &d->gens[k[0]];
        if (h->kv_put(ctx, g->db, k + 1, kl - 1, v, vl) != 0 || readd(g, k + 1, kl - 1, v, vl) != 0)
            return -1;
    }
    sl_wbuf_reset(&d->undo);
    return h->kv_clear(ctx, d->undo_db) == 0 ? 0 : -1;
}

int dedup_restore(void *state, sl_ctx *ctx, uint64_t id)
{
    dedup *d = state;
    const sl_host *h = ctx->host;
    if (dedup_open_dbs(d, ctx) != SL_OK || h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    const void *v;
    size_t vlen;
    meta m;
    int r = h->kv_get(ctx, d->meta_db, "checkpoint", 10, &v, &vlen), lost[N_SLOTS] = {0};
    if (r != 0 || vlen != sizeof m) {
        if (r >= 0)
            h->log(ctx, SL_LOG_ERROR, "state: no checkpoint %" PRIu64 " to restore", id);
        goto err;
    }
    memcpy(&m, v, sizeof m);
    if (m.id != id) {
        h->log(ctx, SL_LOG_ERROR, "state: holds checkpoint %" PRIu64 ", not %" PRIu64, m.id,
               id);
        goto err;
    }
    if (m.fingerprint != fingerprint(d)) {
        h->log(ctx, SL_LOG_ERROR, "state: the key or the horizon changed since checkpoint %" PRIu64
                                  "; its records cannot be used", id);
        goto err;
    }
    if (m.n_live < 1 || m.n_live > N_LIVE)
        goto corrupt;
    for (uint32_t i = 0; i < m.n_live; i++)
        if (m.order[i] >= N_SLOTS || memchr(m.order + i + 1, m.order[i], m.n_live - i - 1))
            goto corrupt;
    d->n_live = m.n_live;
    memcpy(d->order, m.order, sizeof d->order);
    d->next_seq = m.next_seq;
    d->epoch = m.epoch;
    for (int s = 0; s < N_SLOTS; s++) {
        gen *g = &d->gens[s];
        if (!memchr(d->order, s, d->n_live)) {
            if (h->kv_clear(ctx, g->db) != 0)
                goto err;
            g->state = G_FREE;
            continue;
        }
        g->state = G_LIVE;
        g->seq = m.g[s].seq;
        g->opened = m.g[s].opened;
        g->max_time = m.g[s].max_time;
        g->stored = 0;
        uint64_t seq = 0;
        if (dedup_bloom_ready(d, ctx, g) != SL_OK ||
            (r = h->kv_get(ctx, g->db, DEDUP_MARKER, 1, &v, &vlen)) < 0)
            goto err;
        if (r == 0 && vlen == 8)
            memcpy(&seq, v, 8);
        if (seq != g->seq) { /* its slot was needed again after the checkpoint */
            h->log(ctx, SL_LOG_WARN, "state: a generation of checkpoint %" PRIu64 " was dropped "
                   "after it; re-sends of its keys pass once", id);
            uint8_t sv[8];
            put_seq(sv, g->seq);
            if (h->kv_clear(ctx, g->db) != 0 ||
                h->kv_put(ctx, g->db, DEDUP_MARKER, 1, sv, sizeof sv) != 0)
                goto err;
            lost[s] = 1;
            g->records = 0;
            continue;
        }
        rebuild rb = {g, m.epoch, 0};
        if (h->kv_scan(ctx, g->db, NULL, 0, rebuild_one, &rb) != 0)
            goto err;
        if (rb.bad)
            goto corrupt;
    }
    if (apply_undo(d, ctx, lost) != 0)
        goto err;
    for (int s = 0; s < N_SLOTS; s++)
        d->gens[s].records = d->gens[s].stored;
    if (h->kv_commit(ctx) != 0)
        return SL_ERROR;
    d->wm = m.wm;
    d->epoch = m.epoch + 1;
    d->restored = 1;
    return SL_OK;
corrupt:
    h->log(ctx, SL_LOG_ERROR, "state: checkpoint %" PRIu64 " does not decode", id);
err:
    h->kv_abort(ctx);
    return SL_ERROR;
}

