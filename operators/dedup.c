/*
 * dedup.c - `dedup`: let the first event of each key through; later events with the same
 * key within `horizon` (event time) leave by `duplicates`.
 *
 *   key: id                 an expression; keys compare by their msgpack bytes
 *   capacity: 1000000       distinct keys expected within one horizon
 *   error_rate: 0.01        bloom filter false-positive rate at capacity
 *   horizon: 24h            how long a key is remembered, in event time
 *   memory: 64MiB           new keys held in memory before they go to LMDB
 *
 * Rule: an event with key k and time t (its `time`, else the wall clock at arrival) is a
 * duplicate iff an earlier event with key k passed at a time t0 with t - t0 <= horizon (t0
 * after t counts as within). Otherwise it passes and k -> t is recorded. The events of a
 * key that pass are more than a horizon apart, so the latest record of k decides alone.
 *
 * State: a ring of up to N_LIVE generations, each a bloom filter (engine/bloom.h) and an
 * LMDB database "g<slot>" of key -> (time, epoch). New records go to the current generation:
 * first to memory (the pending records: an arena in arrival order, indexed by an
 * open-addressing table of hashes; no allocation per event), written to the generation's
 * database in key order, in one transaction, when they outgrow `memory`, at rotation and at
 * a snapshot.
 * A lookup asks the live generations newest first; a bloom "no" is final, a "maybe" is
 * confirmed exactly (pending table, then the database), so a false positive costs a lookup
 * and never drops a new event. The first record found decides.
 *
 * Ageing, driven by the watermark: the current generation is closed (flushed; a new one
 * opens) once the watermark is horizon/2 past its opening, and a closed one is dropped
 * (bloom cleared) once watermark - horizon > the latest time it holds: no event at or after
 * the watermark can match it. Without watermarks nothing ages out. A late event whose
 * original aged out passes.
 *
 * Checkpoints: a snapshot writes the pending records and a meta record in one transaction;
 * records carry the epoch they were written in (a snapshot starts a new one). So that a
 * restore puts back exactly what the checkpoint held, whatever the run after it did, a
 * restore deletes records of later epochs, a dropped generation's database is emptied only
 * at the next snapshot (or when its slot is needed again: N_SLOTS > N_LIVE), and a record
 * replaced in place after a checkpoint is first copied to the "undo" database.
 *
 * Per batch: every key is evaluated and hashed first; then events are decided in order,
 * the bloom blocks and table slot of the event AHEAD places on prefetched (a duplicate
 * inside the batch is caught: records go to memory at once); an LMDB read transaction is
 * open only while deciding; emits come last, with no transaction open. docs/dedup.md has
 * the reasoning and the numbers.
 */

#include "dedup.h"

static const sl_param params[] = {
    {"key", SL_PARAM_EXPR, "id", 0, "what makes two events the same (an expression)", NULL},
    {"capacity", SL_PARAM_INT, "1000000", 0, "distinct keys expected within one horizon", NULL},
    {"error_rate", SL_PARAM_DOUBLE, "0.01", 0,
     "bloom filter false-positive rate at capacity, in (0, 0.5]", NULL},
    {"horizon", SL_PARAM_DURATION, "24h", 0, "how long a key is remembered (event time)", NULL},
    {"memory", SL_PARAM_SIZE, "64MiB", 0,
     "new keys held in memory before they are written to LMDB under state_dir", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "duplicates", "errors", NULL};

/* ------------------------------------------------------------------ setup */

static int dedup_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    dedup *d = calloc(1, sizeof *d);
    if (!d)
        return SL_ERROR;
    *state = d;
    d->wm = INT64_MIN;
    d->dup_port = h->port(ctx, "duplicates");
    d->err_port = h->port(ctx, "errors");
    const sl_node *key = h->param(ctx, "key"), *cap = h->param(ctx, "capacity");
    const sl_node *err = h->param(ctx, "error_rate"), *hor = h->param(ctx, "horizon");
    const sl_node *mem = h->param(ctx, "memory");
    int64_t capacity;
    int bad = !(d->key = h->expr_compile(ctx, key, NULL, NULL));
    d->key_text = h->node_str(key);
    if (h->node_int(cap, &capacity) != 0 || capacity < 1) {
        h->config_error(ctx, cap, "'capacity' must be a whole number of keys, at least 1");
        bad = 1;
    }
    d->capacity = capacity > 0 ? (uint64_t)capacity : 1;
    if (h->node_double(err, &d->error_rate) != 0 || !(d->error_rate > 0) ||
        d->error_rate > 0.5) {
        h->config_error(ctx, err, "'error_rate' must be a number in (0, 0.5], e.g. 0.01");
        bad = 1;
    }
    if (h->node_duration(hor, &d->horizon) != 0 || d->horizon <= 0) {
        h->config_error(ctx, hor, "'horizon' must be a positive duration, e.g. 24h");
        bad = 1;
    }
    if (h->node_size(mem, &d->budget) != 0 || d->budget == 0) {
        h->config_error(ctx, mem, "'memory' must be a positive size, e.g. 64MiB");
        bad = 1;
    }
    uint32_t k;
    uint64_t nb;
    if (!bad && sl_bloom_size(d->capacity, d->error_rate, &k, &nb) != 0) {
        h->config_error(ctx, cap, "a bloom filter for %" PRIu64 " keys at error rate %g would "
                                  "exceed 256 GiB", d->capacity, d->error_rate);
        bad = 1;
    }
    return bad ? SL_ERROR : SL_OK;
}

int dedup_open_dbs(dedup *d, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    if (d->meta_db)
        return SL_OK;
    for (int s = 0; s < N_SLOTS; s++) {
        char name[4] = {'g', (char)('0' + s), 0, 0};
        if (!(d->gens[s].db = h->kv_open(ctx, name)))
            return SL_ERROR;
    }
    if (!(d->undo_db = h->kv_open(ctx, "undo")))
        return SL_ERROR;
    return (d->meta_db = h->kv_open(ctx, "meta")) ? SL_OK : SL_ERROR;
}

/* Empty g's bloom filter (allocated on first use). */
int dedup_bloom_ready(dedup *d, sl_ctx *ctx, gen *g)
{
    if (!g->bloom.blocks && sl_bloom_init(&g->bloom, d->capacity, d->error_rate) != 0) {
        ctx->host->log(ctx, SL_LOG_ERROR, "out of memory for a bloom filter of %" PRIu64
                                          " keys", d->capacity);
        return SL_ERROR;
    }
    sl_bloom_clear(&g->bloom);
    return SL_OK;
}


/*
 * Make slot s a new, empty, live generation opened at watermark `opened` (inside the
 * caller's write transaction): its database emptied (a retired one's records go now) and
 * marked with a new generation number. Does not touch the ring.
 */
static int gen_open(dedup *d, sl_ctx *ctx, int s, int64_t opened)
{
    const sl_host *h = ctx->host;
    gen *g = &d->gens[s];
    uint8_t v[8];
    put_seq(v, ++d->next_seq);
    if (dedup_bloom_ready(d, ctx, g) != SL_OK || h->kv_clear(ctx, g->db) != 0 ||
        h->kv_put(ctx, g->db, DEDUP_MARKER, 1, v, sizeof v) != 0)
        return SL_ERROR;
    d->c.reclaimed += g->state == G_RETIRED;
    g->state = G_LIVE;
    g->seq = d->next_seq;
    g->opened = opened;
    g->max_time = INT64_MIN;
    g->records = g->stored = 0;
    return SL_OK;
}

static int dedup_start(void *state, sl_ctx *ctx)
{
    dedup *d = state;
    const sl_host *h = ctx->host;
    if (d->restored)
        return SL_OK;
    if (dedup_open_dbs(d, ctx) != SL_OK || h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    int bad = h->kv_clear(ctx, d->meta_db) != 0 || h->kv_clear(ctx, d->undo_db) != 0;
    for (int s = 0; s < N_SLOTS && !bad; s++)
        bad = h->kv_clear(ctx, d->gens[s].db) != 0;
    if (bad || gen_open(d, ctx, 0, INT64_MIN) != SL_OK) {
        h->kv_abort(ctx);
        return SL_ERROR;
    }
    d->epoch = 1;
    d->order[0] = 0;
    d->n_live = 1;
    return h->kv_commit(ctx) == 0 ? SL_OK : SL_ERROR;
}

static inline int within(const dedup *d, int64_t t, int64_t t0)
{
    return t <= t0 || (uint64_t)t - (uint64_t)t0 <= (uint64_t)d->horizon;
}

/* Decide event e (phase 2): a duplicate, or a pass that is recorded now. */
static int decide(dedup *d, sl_ctx *ctx, ev_info *e)
{
    const uint8_t *key = d->keys.data + e->off;
    uint32_t cur = d->n_live - 1;
    int64_t t0 = 0, at = -1; /* at: the key's pending record */
    int found = 0;
    uint32_t in_gen = N_LIVE; /* where it was found */
    for (uint32_t i = cur + 1; i-- > 0 && !found;) {
        gen *g = &d->gens[d->order[i]];
        d->c.checks++;
        if (!sl_bloom_may_contain(&g->bloom, e->hash))
            continue;
        d->c.hits++;
        if (i == cur && (at = dedup_pending_find(d, e->hash, key, e->len)) >= 0) {
            t0 = rec_time(d, (uint32_t)at);
            found = 1;
        } else {
            int r = dedup_stored_find(d, ctx, g, key, e->len, e->hash, &t0);
            if (r < 0)
                return SL_ERROR;
            found = r;
        }
        if (found)
            in_gen = i;
        else
            d->c.fps++; /* the filter said maybe; the exact lookup says new */
    }
    if (found && within(d, e->t, t0)) {
        e->status = ST_DUP;
        e->t0 = t0;
        d->c.dups++;
        return SL_OK;
    }
    /* it passes: k -> t, in the current generation (replacing an older record) */
    e->status = ST_PASS;
    gen *g = &d->gens[d->order[cur]];
    if (at >= 0) {
        memcpy(d->arena + at, &e->t, 8);
    } else {
        if (dedup_make_room(d, ctx, e->len) != SL_OK)
            return SL_ERROR;
        /* found in the current generation's database: the flush replaces that record */
        dedup_pending_put(d, e->hash, e->t, key, e->len, in_gen == cur ? REPLACES : 0);
        if (in_gen != cur) {
            sl_bloom_add(&g->bloom, e->hash);
            g->records++;
        }
    }
    if (e->t > g->max_time)
        g->max_time = e->t;
    if (g->records > d->capacity && !d->warned_capacity) {
        d->warned_capacity = 1;
        ctx->host->log(ctx, SL_LOG_WARN, "a generation holds more than capacity (%" PRIu64
                       ") keys: the bloom filter's false-positive rate rises above %g; "
                       "raise 'capacity'", d->capacity, d->error_rate);
    }
    return SL_OK;
}

/* ------------------------------------------------------------------ events */

static int64_t event_time(const uint8_t *ev, size_t len, int64_t now)
{
    const uint8_t *p = ev;
    sl_mp_val v;
    int64_t t;
    if (sl_mp_map_find(&p, ev + len, "time", 4) == 1 && sl_mp_read(&p, ev + len, &v) == 0 &&
        sl_mp_timestamp_ns(&v, &t) == 0)
        return t;
    return now;
}

/*
 * Start loading what deciding e will touch: its bloom blocks and its table slot.
 * always_inline: see sl_bloom_prefetch (GCC deletes calls of a prefetch-only function).
 */
static inline __attribute__((always_inline)) void prefetch(const dedup *d, const ev_info *e)
{
    if (e->status == ST_ERR)
        return;
    for (uint32_t g = 0; g < d->n_live; g++)
        sl_bloom_prefetch(&d->gens[d->order[g]].bloom, e->hash);
    if (d->cap)
        __builtin_prefetch(&d->slots[home(e->hash, d->cap)], 1, 3);
}

void dedup_report_counts(dedup *d, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
#define SEND(field, name)                                                                      \
    do {                                                                                       \
        if (d->c.field != d->sent.field)                                                       \
            h->count(ctx, name, d->c.field - d->sent.field);                                   \
    } while (0)
    SEND(dups, "duplicates");
    SEND(checks, "bloom_checks");
    SEND(hits, "bloom_hits");
    SEND(fps, "bloom_false_positives");
    SEND(lookups, "lmdb_lookups");
    SEND(expired, "expired");
    SEND(dropped, "generations_dropped");
    SEND(rotations, "rotations");
    SEND(flushes, "flushes");
    SEND(key_errors, "key_errors");
    SEND(reclaimed, "generations_reclaimed");
#undef SEND
    d->sent = d->c;
    /* state gauges (docs/operations.md): keys the live generations hold and their memory */
    uint64_t keys = 0, bytes = (uint64_t)d->cap * sizeof(slot) + d->arena_cap;
    for (uint32_t g = 0; g < d->n_live; g++) {
        keys += d->gens[d->order[g]].records;
        bytes += sl_bloom_memory(&d->gens[d->order[g]].bloom);
    }
    h->gauge(ctx, "state_entries", (int64_t)keys);
    h->gauge(ctx, "state_bytes", (int64_t)bytes);
}

static int emit_dup(dedup *d, sl_ctx *ctx, const ev_info *e, const uint8_t *ev, size_t len)
{
    const sl_host *h = ctx->host;
    if (!h->port_connected(ctx, d->dup_port)) /* counted all the same */
        return h->emit_drop(ctx, d->dup_port, "duplicate", NULL, ev, len, NULL, 0);
    char detail[64];
    memcpy(detail, "first seen ", 11);
    detail[11 + sl_time_format(e->t0, detail + 11)] = '\0';
    sl_wbuf_reset(&d->extra);
    if (sl_mp_write_map(&d->extra, 1) != 0 || sl_mp_write_cstr(&d->extra, "first_time") != 0 ||
        sl_mp_write_timestamp(&d->extra, e->t0) != 0)
        return -1;
    return h->emit_drop(ctx, d->dup_port, "duplicate", detail, ev, len, d->extra.data,
                        d->extra.len);
}

static int dedup_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    dedup *d = state;
    const sl_host *h = ctx->host;
    if (b->count > d->ev_cap) {
        ev_info *ev = realloc(d->ev, b->count * sizeof *ev);
        if (!ev)
            return SL_ERROR;
        d->ev = ev;
        d->ev_cap = b->count;
    }
    /* 1: keys, times and hashes */
    sl_wbuf_reset(&d->keys);
    int64_t now = h->now(ctx);
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        ev_info *e = &d->ev[i];
        size_t off = d->keys.len;
        if (h->expr_value(ctx, d->key, &ev, &len, 1, &d->keys) != 0) {
            d->keys.len = off;
            e->status = ST_ERR;
            d->c.key_errors++;
            if (h->emit_drop(ctx, d->err_port, "key", h->expr_error(ctx), ev, len, NULL, 0) != 0)
                return SL_ERROR;
            continue;
        }
        e->off = (uint32_t)off;
        e->len = (uint32_t)(d->keys.len - off);
        e->t = event_time(ev, len, now);
        e->hash = sl_hash_bytes(d->keys.data + off, e->len);
        e->status = ST_PASS;
    }
    /* 2: decide in order, the bloom blocks and table slots of event i + AHEAD on their way */
    for (uint32_t i = 0; i < AHEAD && i < b->count; i++)
        prefetch(d, &d->ev[i]);
    for (uint32_t i = 0; i < b->count; i++) {
        if (i + AHEAD < b->count)
            prefetch(d, &d->ev[i + AHEAD]);
        if (d->ev[i].status != ST_ERR && decide(d, ctx, &d->ev[i]) != SL_OK) {
            dedup_end_read(d, ctx);
            return SL_ERROR;
        }
    }
    dedup_end_read(d, ctx);
    /* 3: emit, no transaction open */
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        int rc = d->ev[i].status == ST_PASS  ? h->emit(ctx, 0, ev, len)
                 : d->ev[i].status == ST_DUP ? emit_dup(d, ctx, &d->ev[i], ev, len)
                                             : 0;
        if (rc != 0)
            return SL_ERROR;
    }
    d->c.events += b->count;
    dedup_report_counts(d, ctx);
    return SL_OK;
}

/* ------------------------------------------------------------------ ageing */

/* Drop live generation order[i]: no lookup sees it again; its records go at the next snapshot. */
static void gen_drop(dedup *d, uint32_t i)
{
    gen *g = &d->gens[d->order[i]];
    d->c.expired += g->records;
    d->c.dropped++;
    sl_bloom_clear(&g->bloom);
    g->state = G_RETIRED;
    g->records = g->stored = 0;
    memmove(&d->order[i], &d->order[i + 1], d->n_live - i - 1);
    d->n_live--;
}

/* Close the current generation (its records written out) and open one at watermark wm. */
static int rotate(dedup *d, sl_ctx *ctx, int64_t wm)
{
    const sl_host *h = ctx->host;
    int s = -1;
    for (int k = 0; k < N_SLOTS && s < 0; k++) /* a free slot, else the first retired one */
        if (d->gens[k].state == G_FREE)
            s = k;
    for (int k = 0; k < N_SLOTS && s < 0; k++)
        if (d->gens[k].state == G_RETIRED)
            s = k; /* (a restore of the last checkpoint then misses its records: logged then) */
    if (s < 0 || dedup_flush(d, ctx) != SL_OK || h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    if (gen_open(d, ctx, s, wm) != SL_OK) {
        h->kv_abort(ctx);
        return SL_ERROR;
    }
    d->order[d->n_live++] = (uint8_t)s;
    d->c.rotations++;
    return h->kv_commit(ctx) == 0 ? SL_OK : SL_ERROR;
}

static int dedup_watermark(void *state, sl_ctx *ctx, int64_t wm)
{
    dedup *d = state;
    /* the end of the stream ages nothing: no event comes after it */
    if (wm <= d->wm || wm == INT64_MAX)
        return SL_OK;
    d->wm = wm;
    /* closed generations every record of which is more than a horizon behind */
    for (uint32_t i = 0; i + 1 < d->n_live;) {
        const gen *g = &d->gens[d->order[i]];
        if (g->max_time == INT64_MIN ||
            (wm > g->max_time && (uint64_t)wm - (uint64_t)g->max_time > (uint64_t)d->horizon))
            gen_drop(d, i);
        else
            i++;
    }
    gen *cur = &d->gens[d->order[d->n_live - 1]];
    if (cur->opened == INT64_MIN) {
        cur->opened = wm;
    } else if (wm > cur->opened &&
               (uint64_t)wm - (uint64_t)cur->opened >= (uint64_t)(d->horizon / 2)) {
        if (d->n_live == N_LIVE) { /* correct all the same; the current one grows */
            if (!d->warned_full)
                ctx->host->log(ctx, SL_LOG_INFO, "all %d generations are live (events far "
                               "ahead of the watermark?): the current one stays open",
                               N_LIVE);
            d->warned_full = 1;
        } else if (rotate(d, ctx, wm) != SL_OK) {
            return SL_ERROR;
        }
    }
    dedup_report_counts(d, ctx);
    return SL_OK;
}

/* ------------------------------------------------------------------ the end */

static int dedup_finish(void *state, sl_ctx *ctx)
{
    dedup *d = state;
    dedup_report_counts(d, ctx);
    /* a bloom query about a key absent from that generation: checks - true hits */
    uint64_t negatives = d->c.checks - (d->c.hits - d->c.fps);
    double fpr = negatives ? 100.0 * (double)d->c.fps / (double)negatives : 0;
    ctx->host->log(ctx, SL_LOG_INFO, "%" PRIu64 " events, %" PRIu64 " duplicates, bloom "
                   "false-positive rate %.3f%% (configured %g%%)", d->c.events, d->c.dups, fpr,
                   100 * d->error_rate);
    return SL_OK;
}

static void dedup_destroy(void *state)
{
    dedup *d = state;
    if (!d)
        return;
    for (int s = 0; s < N_SLOTS; s++)
        sl_bloom_fini(&d->gens[s].bloom);
    dedup_big_free(d->slots, (size_t)d->cap * sizeof *d->slots);
    dedup_big_free(d->arena, d->arena_cap);
    free(d->ev);
    sl_wbuf_fini(&d->keys);
    sl_wbuf_fini(&d->extra);
    sl_wbuf_fini(&d->dbval);
    sl_wbuf_fini(&d->undo);
    free(d);
}

const sl_operator sl_op_dedup = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "dedup",
    .summary = "Drops events whose key was seen within a horizon (bloom filter, exact LMDB check)",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .key_param = "key",
    .init = dedup_init,
    .start = dedup_start,
    .process = dedup_process,
    .on_watermark = dedup_watermark,
    .finish = dedup_finish,
    .destroy = dedup_destroy,
    .snapshot = dedup_snapshot,
    .restore = dedup_restore,
};
