/*
 * join.c - `join`: keyed interval join of two streams (Flink's interval join).
 *
 *   left: orders
 *   right: payments
 *   on: {left: orderId, right: orderId}     # key expressions, one per side
 *   within: 1h                              # |right.time - left.time| <= 1h
 *   # within: {before: 10m, after: 1h}      # left.time - 10m <= right.time <= left.time + 1h
 *   kind: inner                             # or left
 *   fields: {orderId: left.orderId, paid: right.amount}
 *
 * Every event waits in the join buffer (join_buffer.h) until no partner can
 * still arrive: a left event at tl pairs with right events at
 * [tl - before, tl + after], so it leaves once the watermark passes
 * tl + after (+ allowed_lateness); a right event at tr leaves after
 * tr + before. An arriving event probes the other side's events of its key
 * and emits one output per partner, so results are many-to-many and each
 * pair comes out once, when its second event arrives. An event older than
 * watermark - allowed_lateness could miss partners already expired: it leaves
 * by the `late` port instead (DESIGN.md: never silently away). A left join
 * emits a left event that never found a partner when it expires, with
 * `right` null.
 *
 * Output: the `fields` (expressions over `left` and `right`), or without
 * them {left: <event>, right: <event or null>}; plus `time` = the later of
 * the two times and `id` = "<left id>/<right id>" unless a field sets them.
 * State: in memory between checkpoints; snapshot/restore write/read it in
 * LMDB (database "" per instance: every waiting event, in arrival order).
 * A snapshot writes what changed since the previous one: events that
 * arrived, events that left, matched flags that flipped.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "field_set.h"
#include "join_buffer.h"
#include "sluice/operator.h"

static const sl_param params[] = {
    {"on", SL_PARAM_ANY, NULL, 1,
     "join key: {left: expr, right: expr}, or one expression for both sides", NULL},
    {"within", SL_PARAM_ANY, NULL, 1,
     "interval: D for |right.time - left.time| <= D, or {before: D, after: D}", NULL},
    {"kind", SL_PARAM_ENUM, "inner", 0, "inner, or left: unmatched left events too", "inner|left"},
    {"fields", SL_PARAM_MAP, NULL, 0, "output name -> expression over left and right", NULL},
    {"allowed_lateness", SL_PARAM_DURATION, "0s", 0,
     "keep state this much longer; only events older than watermark - this are late", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const inputs[] = {"left", "right", NULL};
static const char *const outputs[] = {"out", "late", "errors", NULL};
static const char *const vars[] = {"left", "right", NULL};

typedef struct join {
    const sl_expr *on[2];
    const char *on_text[2]; /* (borrowed) what the buffered keys were computed by */
    int64_t before, after, lateness;
    int left_join;
    int has_fields, sets_id, sets_time;
    sl_field_set fields;
    int late_port, errors_port;
    int64_t wm;
    sl_join_buffer buf;
    sl_kv *db, *meta_db;
    int restored;
    /* incremental snapshots: the database holds the entries with seq < snap_seq as of the
     * last snapshot, except those in `gone` (seqs that left since) and with a stale matched
     * flag for those in `rematched`; snap_full: rewrite it all (after a restore, which
     * renumbers the entries) */
    uint64_t snap_seq;
    int snap_full;
    sl_wbuf gone, rematched;
    /* per event */
    sl_wbuf key, out, ids;
    const uint8_t *ev;
    size_t len;
    int64_t time;
    int side;
    uint64_t pairs;
    char detail[256];
} join;

/* ------------------------------------------------------------ config */

static int read_within(join *j, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    const sl_node *w = h->param(ctx, "within");
    if (h->node_kind(w) == SL_NODE_SCALAR) {
        if (h->node_duration(w, &j->before) != 0 || j->before < 0)
            goto bad;
        j->after = j->before;
        return 0;
    }
    if (h->node_kind(w) != SL_NODE_MAP)
        goto bad;
    for (size_t i = 0; i < h->node_len(w); i++) {
        const char *k = h->node_key(w, i);
        if (strcmp(k, "before") != 0 && strcmp(k, "after") != 0) {
            h->config_error(ctx, h->node_at(w, i), "unknown key '%s' in 'within' (before, after)",
                            k);
            return -1;
        }
    }
    const sl_node *b = h->node_get(w, "before"), *a = h->node_get(w, "after");
    if (!b || !a)
        goto bad;
    if (h->node_duration(b, &j->before) != 0 || j->before < 0) {
        w = b;
        goto bad;
    }
    if (h->node_duration(a, &j->after) != 0 || j->after < 0) {
        w = a;
        goto bad;
    }
    return 0;
bad:
    h->config_error(ctx, w, "'within' takes a duration (|right.time - left.time| <= it) or "
                            "{before: D, after: D} (left.time - before <= right.time <= "
                            "left.time + after), durations >= 0");
    return -1;
}

static int read_on(join *j, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    const sl_node *on = h->param(ctx, "on");
    if (h->node_kind(on) == SL_NODE_SCALAR) {
        j->on_text[0] = j->on_text[1] = h->node_str(on);
        j->on[0] = h->expr_compile(ctx, on, NULL, NULL);
        j->on[1] = h->expr_compile(ctx, on, NULL, NULL);
        return j->on[0] && j->on[1] ? 0 : -1;
    }
    const sl_node *l = h->node_kind(on) == SL_NODE_MAP ? h->node_get(on, "left") : NULL;
    const sl_node *r = h->node_kind(on) == SL_NODE_MAP ? h->node_get(on, "right") : NULL;
    if (!l || !r || h->node_len(on) != 2) {
        h->config_error(ctx, on, "'on' takes {left: expression, right: expression} (each "
                                 "evaluated on its side's event), or one expression for both");
        return -1;
    }
    j->on_text[0] = h->node_str(l);
    j->on_text[1] = h->node_str(r);
    j->on[0] = h->expr_compile(ctx, l, NULL, NULL);
    j->on[1] = h->expr_compile(ctx, r, NULL, NULL);
    return j->on[0] && j->on[1] ? 0 : -1;
}

static int join_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    join *j = calloc(1, sizeof *j);
    if (!j)
        return SL_ERROR;
    *state = j;
    sl_join_buffer_init(&j->buf);
    j->wm = INT64_MIN;
    j->late_port = h->port(ctx, "late");
    j->errors_port = h->port(ctx, "errors");
    j->left_join = strcmp(h->node_str(h->param(ctx, "kind")), "left") == 0;
    h->node_duration(h->param(ctx, "allowed_lateness"), &j->lateness);
    const sl_node *fields = h->param(ctx, "fields");
    j->has_fields = fields != NULL;
    int bad = read_on(j, ctx) | read_within(j, ctx);
    bad |= sl_field_set_init(&j->fields, ctx, fields, vars);
    for (size_t i = 0; !bad && i < sl_field_set_top(&j->fields); i++) {
        j->sets_id |= strcmp(sl_field_set_top_name(&j->fields, i), "id") == 0;
        j->sets_time |= strcmp(sl_field_set_top_name(&j->fields, i), "time") == 0;
    }
    return bad ? SL_ERROR : SL_OK;
}

/* ------------------------------------------------------------ output */

static int drop(join *j, sl_ctx *ctx, int port, const char *reason, const uint8_t *ev,
                size_t len)
{
    ctx->host->count(ctx, port == j->late_port ? "late" : "errors", 1);
    return ctx->host->emit_drop(ctx, port, reason, j->detail, ev, len, NULL, 0) == 0 ? SL_OK
                                                                                    : SL_ERROR;
}

/* Append the string `id` of event ev to j->ids; returns 0, or -1 if it has none. */
static int append_id(join *j, const uint8_t *ev, size_t len)
{
    const uint8_t *p = ev;
    sl_mp_val v;
    if (sl_mp_map_find(&p, ev + len, "id", 2) != 1 || sl_mp_read(&p, ev + len, &v) != 0 ||
        v.type != SL_MP_STR)
        return -1;
    return sl_wbuf_append(&j->ids, v.v.str.ptr, v.v.str.len);
}

/*
 * Emit one output for (left, right); right NULL for an unmatched left event.
 * Times are the events' own.
 */
static int emit_pair(join *j, sl_ctx *ctx, const uint8_t *lev, size_t llen, int64_t lt,
                     const uint8_t *rev, size_t rlen, int64_t rt)
{
    const sl_host *h = ctx->host;
    static const uint8_t nil = 0xc0;
    const uint8_t *docs[2] = {lev, rev ? rev : &nil};
    size_t lens[2] = {llen, rev ? rlen : 1};
    size_t failed;
    if (j->has_fields && sl_field_set_eval(&j->fields, ctx, docs, lens, 2, !rev, &failed) != 0) {
        /* the pair's events go to errors as one {left, right} document */
        snprintf(j->detail, sizeof j->detail, "field '%s': %s", j->fields.names[failed],
                 h->expr_error(ctx));
        sl_wbuf_reset(&j->out);
        if (sl_mp_write_map(&j->out, 2) | sl_mp_write_cstr(&j->out, "left") |
            sl_wbuf_append(&j->out, lev, llen) | sl_mp_write_cstr(&j->out, "right") |
            sl_wbuf_append(&j->out, docs[1], lens[1]))
            return SL_ERROR;
        return drop(j, ctx, j->errors_port, "eval_error", j->out.data, j->out.len);
    }
    sl_wbuf_reset(&j->ids);
    int with_id = !j->sets_id && append_id(j, lev, llen) == 0 && sl_wbuf_append(&j->ids, "/", 1) == 0 &&
                  (!rev || append_id(j, rev, rlen) == 0);
    size_t n = (j->has_fields ? sl_field_set_top(&j->fields) : 2) + (size_t)with_id + !j->sets_time;
    sl_wbuf_reset(&j->out);
    int bad = sl_mp_write_map(&j->out, (uint32_t)n);
    if (j->has_fields) {
        bad |= sl_field_set_write(&j->fields, &j->out);
    } else {
        bad |= sl_mp_write_cstr(&j->out, "left") | sl_wbuf_append(&j->out, lev, llen);
        bad |= sl_mp_write_cstr(&j->out, "right") | sl_wbuf_append(&j->out, docs[1], lens[1]);
    }
    if (with_id)
        bad |= sl_mp_write_cstr(&j->out, "id") |
               sl_mp_write_str(&j->out, (const char *)j->ids.data, j->ids.len);
    if (!j->sets_time)
        bad |= sl_mp_write_cstr(&j->out, "time") |
               sl_mp_write_timestamp(&j->out, rev && rt > lt ? rt : lt);
    if (bad || h->emit(ctx, 0, j->out.data, j->out.len) != 0)
        return SL_ERROR;
    j->pairs++;
    return SL_OK;
}

/* A partner of the arriving event (j->ev, j->time, j->side) was found. */
static int on_partner(void *arg, sl_join_entry *e)
{
    sl_ctx *ctx = ((void **)arg)[0];
    join *j = ((void **)arg)[1];
    if (!e->matched && e->seq < j->snap_seq &&
        sl_wbuf_append(&j->rematched, &e->seq, sizeof e->seq) != 0)
        return 1;
    e->matched = 1;
    int rc = j->side == SL_JOIN_LEFT
                 ? emit_pair(j, ctx, j->ev, j->len, j->time, e->event, e->len, e->time)
                 : emit_pair(j, ctx, e->event, e->len, e->time, j->ev, j->len, j->time);
    return rc == SL_OK ? 0 : 1;
}

/* An entry leaves the buffer: a left join's unmatched left events come out now. */
static int on_expire(void *arg, sl_join_entry *e)
{
    sl_ctx *ctx = ((void **)arg)[0];
    join *j = ((void **)arg)[1];
    if (e->seq < j->snap_seq && sl_wbuf_append(&j->gone, &e->seq, sizeof e->seq) != 0)
        return 1;
    if (!j->left_join || e->side != SL_JOIN_LEFT || e->matched)
        return 0;
    return emit_pair(j, ctx, e->event, e->len, e->time, NULL, 0, 0) == SL_OK ? 0 : 1;
}

/* ------------------------------------------------------------ data path */

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

/* What the first pass over a batch learned about one event. */
typedef struct prepared {
    int64_t time;
    uint64_t hash;
    uint32_t key_off, key_len;
    int ok; /* 0: already sent to errors */
} prepared;

/* First pass: time and key of event i (into j->key), its hash; prefetch its table slot. */
static int prepare(join *j, sl_ctx *ctx, int side, const uint8_t *ev, size_t len, prepared *pr)
{
    const sl_host *h = ctx->host;
    const uint8_t *p = ev;
    sl_mp_val tv;
    pr->ok = 0;
    if (sl_mp_map_find(&p, ev + len, "time", 4) != 1 || sl_mp_read(&p, ev + len, &tv) != 0 ||
        sl_mp_timestamp_ns(&tv, &pr->time) != 0) {
        snprintf(j->detail, sizeof j->detail, "no event time (a 'time' timestamp)");
        return drop(j, ctx, j->errors_port, "eval_error", ev, len);
    }
    size_t off = j->key.len;
    if (h->expr_value(ctx, j->on[side], &ev, &len, 1, &j->key) != 0) {
        j->key.len = off;
        snprintf(j->detail, sizeof j->detail, "on.%s: %s", side ? "right" : "left",
                 h->expr_error(ctx));
        return drop(j, ctx, j->errors_port, "eval_error", ev, len);
    }
    pr->key_off = (uint32_t)off;
    pr->key_len = (uint32_t)(j->key.len - off);
    pr->hash = sl_hash_bytes(j->key.data + off, pr->key_len);
    sl_join_buffer_prefetch(&j->buf, pr->hash);
    pr->ok = 1;
    return SL_OK;
}

/* Second pass: late check, probe the other side, then wait in the buffer. */
static int apply(join *j, sl_ctx *ctx, int side, const uint8_t *ev, size_t len,
                 const prepared *pr, int64_t wm)
{
    const sl_host *h = ctx->host;
    int64_t t = pr->time;
    const uint8_t *key = j->key.data + pr->key_off;
    if (wm != INT64_MIN && t < sat_add(wm, -j->lateness)) {
        snprintf(j->detail, sizeof j->detail, "%s event older than the watermark%s",
                 side ? "right" : "left", j->lateness ? " - allowed_lateness" : "");
        return drop(j, ctx, j->late_port, "late", ev, len);
    }
    if (pr->key_len == 1 && key[0] == 0xc0) { /* a null key matches nothing */
        h->count(ctx, "null_keys", 1);
        if (j->left_join && side == SL_JOIN_LEFT)
            return emit_pair(j, ctx, ev, len, t, NULL, 0, 0);
        return SL_OK;
    }
    /* a left event at t pairs with right events at [t - before, t + after], and back */
    int64_t lo = side == SL_JOIN_LEFT ? sat_add(t, -j->before) : sat_add(t, -j->after);
    int64_t hi = side == SL_JOIN_LEFT ? sat_add(t, j->after) : sat_add(t, j->before);
    j->ev = ev;
    j->len = len;
    j->time = t;
    j->side = side;
    uint64_t before = j->pairs;
    void *arg[2] = {ctx, j};
    if (sl_join_buffer_probe(&j->buf, !side, pr->hash, key, pr->key_len, lo, hi, on_partner,
                             arg) != 0)
        return SL_ERROR;
    int64_t expire = sat_add(t, side == SL_JOIN_LEFT ? j->after : j->before);
    sl_join_entry *e =
        sl_join_buffer_add(&j->buf, side, pr->hash, key, pr->key_len, t, expire, ev, len);
    if (!e) {
        h->log(ctx, SL_LOG_ERROR, "out of memory holding %zu events", j->buf.n_entries);
        return SL_ERROR;
    }
    e->matched = j->pairs != before;
    return SL_OK;
}

/* State gauges (docs/operations.md): events buffered, and their memory. */
static void report_state(const join *j, sl_ctx *ctx)
{
    ctx->host->gauge(ctx, "state_entries", (int64_t)j->buf.n_entries);
    ctx->host->gauge(ctx, "state_bytes", (int64_t)j->buf.bytes);
}

static int join_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    join *j = state;
    int64_t wm = b->watermark > j->wm ? b->watermark : j->wm; /* a restored one may be ahead */
    enum { CHUNK = 256 }; /* events prepared ahead: their table slots load meanwhile */
    prepared pr[CHUNK];
    for (uint32_t at = 0; at < b->count; at += CHUNK) {
        uint32_t n = b->count - at < CHUNK ? b->count - at : CHUNK;
        sl_wbuf_reset(&j->key);
        for (uint32_t i = 0; i < n; i++) {
            size_t len;
            const uint8_t *ev = sl_batch_event(b, at + i, &len);
            if (prepare(j, ctx, input, ev, len, &pr[i]) != SL_OK)
                return SL_ERROR;
        }
        for (uint32_t i = 0; i < n; i++) {
            size_t len;
            const uint8_t *ev = sl_batch_event(b, at + i, &len);
            if (pr[i].ok && apply(j, ctx, input, ev, len, &pr[i], wm) != SL_OK)
                return SL_ERROR;
        }
    }
    report_state(j, ctx);
    return SL_OK;
}

static int join_watermark(void *state, sl_ctx *ctx, int64_t wm)
{
    join *j = state;
    if (wm <= j->wm)
        return SL_OK;
    j->wm = wm;
    void *arg[2] = {ctx, j};
    if (sl_join_buffer_expire(&j->buf, sat_add(wm, -j->lateness), on_expire, arg) != 0)
        return SL_ERROR;
    report_state(j, ctx);
    return SL_OK;
}

/* ------------------------------------------------------------ state */

/*
 * Database "": key = arrival number (8 bytes, big-endian), value = side,
 * matched, time, expire (8 bytes each, host order), key length (4),
 * key bytes, event bytes. "meta": the snapshot's id, a fingerprint of the
 * configuration and the watermark.
 */
typedef struct meta {
    uint64_t id, fingerprint;
    int64_t wm;
} meta;

static uint64_t fingerprint(const join *j)
{
    uint64_t x[6] = {(uint64_t)j->before, (uint64_t)j->after, (uint64_t)j->lateness,
                     (uint64_t)j->left_join};
    for (int s = 0; s < 2; s++)
        x[4 + s] = j->on_text[s] ? sl_hash_bytes(j->on_text[s], strlen(j->on_text[s])) : 0;
    return sl_hash_bytes(x, sizeof x);
}

static int open_dbs(join *j, sl_ctx *ctx)
{
    if (j->db)
        return SL_OK;
    j->db = ctx->host->kv_open(ctx, "");
    j->meta_db = j->db ? ctx->host->kv_open(ctx, "meta") : NULL;
    return j->meta_db ? SL_OK : SL_ERROR;
}

static int join_start(void *state, sl_ctx *ctx)
{
    join *j = state;
    const sl_host *h = ctx->host;
    if (j->restored)
        return SL_OK;
    if (open_dbs(j, ctx) != SL_OK || h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    if (h->kv_clear(ctx, j->db) != 0 || h->kv_clear(ctx, j->meta_db) != 0) {
        h->kv_abort(ctx);
        return SL_ERROR;
    }
    return h->kv_commit(ctx) == 0 ? SL_OK : SL_ERROR;
}

static void seq_key(uint8_t k[8], uint64_t seq)
{
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t)(seq >> (56 - 8 * i));
}

static int put_entry(void *arg, sl_join_entry *e)
{
    sl_ctx *ctx = ((void **)arg)[0];
    join *j = ((void **)arg)[1];
    if (e->seq < j->snap_seq)
        return 0; /* stored by an earlier snapshot */
    uint8_t k[8];
    seq_key(k, e->seq);
    uint32_t klen = e->key->klen;
    sl_wbuf_reset(&j->out);
    uint8_t hdr[2] = {e->side, e->matched};
    if (sl_wbuf_append(&j->out, hdr, 2) || sl_wbuf_append(&j->out, &e->time, 8) ||
        sl_wbuf_append(&j->out, &e->expire, 8) || sl_wbuf_append(&j->out, &klen, 4) ||
        sl_wbuf_append(&j->out, e->key->bytes, klen) ||
        sl_wbuf_append(&j->out, e->event, e->len))
        return 1;
    return ctx->host->kv_put(ctx, j->db, k, 8, j->out.data, j->out.len) != 0;
}

/* What changed in the stored entries since the last snapshot: matched flags, then departures. */
static int update_stored(join *j, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    uint8_t k[8];
    for (size_t i = 0; i + 8 <= j->rematched.len; i += 8) {
        uint64_t seq;
        memcpy(&seq, j->rematched.data + i, 8);
        seq_key(k, seq);
        const void *v;
        size_t vlen;
        int rc = h->kv_get(ctx, j->db, k, 8, &v, &vlen);
        if (rc < 0 || (rc == 0 && vlen < 2))
            return SL_ERROR;
        if (rc == 0 && ((const uint8_t *)v)[1] == 0) {
            sl_wbuf_reset(&j->out);
            if (sl_wbuf_append(&j->out, v, vlen) != 0)
                return SL_ERROR;
            j->out.data[1] = 1;
            if (h->kv_put(ctx, j->db, k, 8, j->out.data, j->out.len) != 0)
                return SL_ERROR;
        }
    }
    for (size_t i = 0; i + 8 <= j->gone.len; i += 8) {
        uint64_t seq;
        memcpy(&seq, j->gone.data + i, 8);
        seq_key(k, seq);
        if (h->kv_del(ctx, j->db, k, 8) < 0)
            return SL_ERROR;
    }
    return SL_OK;
}

static int join_snapshot(void *state, sl_ctx *ctx, uint64_t id)
{
    join *j = state;
    const sl_host *h = ctx->host;
    if (open_dbs(j, ctx) != SL_OK || h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    void *arg[2] = {ctx, j};
    meta m = {id, fingerprint(j), j->wm};
    if (j->snap_full) {
        j->snap_seq = 0;
        if (h->kv_clear(ctx, j->db) != 0)
            goto err;
    } else if (update_stored(j, ctx) != SL_OK) {
        goto err;
    }
    if (sl_join_buffer_each(&j->buf, put_entry, arg) != 0 ||
        h->kv_put(ctx, j->meta_db, "m", 1, &m, sizeof m) != 0)
        goto err;
    if (h->kv_commit(ctx) != 0 || h->kv_sync(ctx) != 0)
        return SL_ERROR;
    j->snap_seq = j->buf.seq;
    j->snap_full = 0;
    sl_wbuf_reset(&j->gone);
    sl_wbuf_reset(&j->rematched);
    return SL_OK;
err:
    h->kv_abort(ctx);
    return SL_ERROR;
}

static int restore_entry(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    join *j = arg;
    const uint8_t *v = val;
    uint32_t kl;
    int64_t t, expire;
    if (vlen < 22)
        return SL_KV_STOP;
    memcpy(&t, v + 2, 8);
    memcpy(&expire, v + 10, 8);
    memcpy(&kl, v + 18, 4);
    if (22 + (size_t)kl > vlen)
        return SL_KV_STOP;
    sl_join_entry *e = sl_join_buffer_add(&j->buf, v[0], sl_hash_bytes(v + 22, kl), v + 22, kl, t,
                                          expire, v + 22 + kl, vlen - 22 - kl);
    if (!e)
        return SL_KV_STOP;
    e->matched = v[1];
    (void)key;
    (void)klen;
    return 0;
}

static int join_restore(void *state, sl_ctx *ctx, uint64_t id)
{
    join *j = state;
    const sl_host *h = ctx->host;
    const void *v;
    size_t vlen;
    meta m;
    if (open_dbs(j, ctx) != SL_OK || h->kv_begin(ctx, 0) != 0)
        return SL_ERROR;
    int rc = h->kv_get(ctx, j->meta_db, "m", 1, &v, &vlen);
    if (rc != 0 || vlen != sizeof m) {
        h->kv_abort(ctx);
        h->log(ctx, SL_LOG_ERROR, "no join state for checkpoint %" PRIu64, id);
        return SL_ERROR;
    }
    memcpy(&m, v, sizeof m);
    if (m.id != id || m.fingerprint != fingerprint(j)) {
        h->kv_abort(ctx);
        h->log(ctx, SL_LOG_ERROR, "the join state is from %s (checkpoint %" PRIu64 "); start "
               "fresh to drop it", m.id != id ? "another checkpoint" : "another on/within/kind/"
               "allowed_lateness", m.id);
        return SL_ERROR;
    }
    uint64_t want = h->kv_count(ctx, j->db);
    sl_join_buffer_clear(&j->buf);
    rc = h->kv_scan(ctx, j->db, NULL, 0, restore_entry, j);
    h->kv_abort(ctx);
    if (rc != 0 || j->buf.n_entries != want) {
        h->log(ctx, SL_LOG_ERROR, "cannot restore the join state (%zu of %" PRIu64 " events)",
               j->buf.n_entries, want);
        return SL_ERROR;
    }
    j->wm = m.wm;
    j->restored = 1;
    j->snap_full = 1; /* the buffer numbered the entries anew */
    return SL_OK;
}

static int join_finish(void *state, sl_ctx *ctx)
{
    join *j = state;
    ctx->host->count(ctx, "pairs", j->pairs);
    return SL_OK;
}

static void join_destroy(void *state)
{
    join *j = state;
    if (!j)
        return;
    sl_join_buffer_fini(&j->buf);
    sl_field_set_fini(&j->fields);
    sl_wbuf_fini(&j->key);
    sl_wbuf_fini(&j->out);
    sl_wbuf_fini(&j->ids);
    sl_wbuf_fini(&j->gone);
    sl_wbuf_fini(&j->rematched);
    free(j);
}

const sl_operator sl_op_join = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "join",
    .summary = "Keyed interval join of two streams (inner or left), state expired by the watermark",
    .param_size = sizeof(sl_param),
    .params = params,
    .inputs = inputs,
    .outputs = outputs,
    .key_param = "on",
    .init = join_init,
    .start = join_start,
    .process = join_process,
    .on_watermark = join_watermark,
    .finish = join_finish,
    .destroy = join_destroy,
    .snapshot = join_snapshot,
    .restore = join_restore,
};
