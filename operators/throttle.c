/*
 * throttle.c - `throttle`: limit the rate of events, per key and per named limit.
 *
 *   rate: 1000                  events per second
 *   burst: 10                   default: rate rounded up (at least 1)
 *   key: data.customerId        one bucket per distinct value (optional)
 *   limits: {publish: {rate: 200, burst: 200}, query: 20}
 *   select: type == "publish" ? "publish" : "query"   the limit of an event
 *   mode: delay                 or drop, or reroute (to port over_limit)
 *   max_keys: 100000            bound of the bucket table
 *
 * Algorithm: GCRA, the token bucket written as one "theoretical arrival
 * time" (tat, int64 ns of host->monotonic) per bucket. With the emission
 * interval T = 1e9/rate and the tolerance (burst-1)*T, an event arriving at
 * `now` conforms iff now >= tat - tolerance, and then tat = max(tat, now) + T.
 * That is exactly a bucket of `burst` tokens refilled at `rate`, with no
 * floating point and no refill bookkeeping. A bucket whose tat <= now is
 * full: it behaves exactly like a bucket never seen, so it can be forgotten
 * without changing anything.
 *
 * Buckets: one per (limit, key value), the key compared by its msgpack
 * bytes. Records live in a slab (recs) with a free list; an open-addressing
 * table (linear probing, backward-shift deletion) maps a 64-bit hash of
 * (limit index, key bytes) to a record; key bytes live in an arena that is
 * compacted when more than half of it is dead. A min-heap on tat finds the
 * bucket to evict once `max_keys` are held: a full one when there is any
 * (exact), else the one that will be full soonest (counted "evicted"; see
 * docs/operators.md for why not the least recently used). Everything grows
 * by doubling up to max_keys: no allocation per event once warm.
 *
 * Modes: drop (counted "dropped"), reroute (a drop-ledger envelope on
 * `over_limit` with retry_after_ms), delay (sleep on the stage thread until
 * the event conforms: the stage stops reading, which backpressures upstream
 * through ZeroMQ's high-water mark; one key's wait delays every event
 * behind it in this instance). A key or select expression that fails sends
 * the event to `errors`.
 *
 * Invariants: every record in use is in the table exactly once and in the
 * heap at heap_pos; recs[i].heap_pos == FREE for records on the free list;
 * n_used <= max_keys.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "sluice/operator.h"

#define MAX_LIMITS 64
#define MAX_KEYS_LIMIT (1u << 28)
#define MIN_RATE 1e-9                          /* T <= 1e18 ns */
#define MAX_RATE 1e9                           /* T >= 1 ns */
#define MAX_TOLERANCE_NS 1000000000000000000ll /* (burst-1)*T: ~31 years */
#define SLICE_NS 50000000ll                    /* delay: look at a hard stop at least this often */
#define WAKE_SLACK_NS 1000000ll /* delay: wake-up lateness not charged to the stream */
#define FREE UINT32_MAX

enum { MODE_DELAY, MODE_DROP, MODE_REROUTE };

typedef struct limit {
    const char *name; /* NULL: the top-level rate */
    size_t name_len;
    double rate;
    int64_t burst;
    int64_t t_ns;     /* emission interval T */
    int64_t tol_ns;   /* (burst - 1) * T */
    char detail[192]; /* the envelope's detail, formatted once */
} limit;

typedef struct bucket {
    int64_t tat;
    uint64_t hash;
    uint32_t key_off, key_len; /* in the arena; key_off links the free list when free */
    uint32_t limit;
    uint32_t heap_pos; /* FREE: on the free list */
} bucket;

typedef struct slot {
    uint64_t hash;
    uint32_t rec1; /* record index + 1; 0: empty */
} slot;

typedef struct counts {
    uint64_t passed, dropped, rerouted, delayed, unlimited, evicted, errors;
} counts;

typedef struct throttle {
    limit limits[MAX_LIMITS + 1];
    uint32_t n_named; /* named limits are limits[0, n_named) */
    int top;          /* index of the top-level rate, or -1 */
    const sl_expr *key, *select;
    int mode;
    uint32_t max_keys;
    int over_port, errors_port;
    int checked_ports;
    /* buckets */
    bucket *recs;
    uint32_t cap_recs, hw, n_used, free_head;
    uint32_t *heap; /* n_used record indices, min tat on top */
    slot *slots;
    uint32_t mask; /* slot count - 1 (a power of two), or 0 before the first */
    sl_wbuf arena[2];
    int cur;     /* arena[cur] holds the keys */
    size_t dead; /* bytes of arena[cur] no record uses */
    /* per-event scratch, reused */
    sl_wbuf keybuf, selbuf, extra;
    counts c;
} throttle;

static const sl_param params[] = {
    {"rate", SL_PARAM_DOUBLE, NULL, 0, "events per second (> 0); required unless 'limits' is given",
     NULL},
    {"burst", SL_PARAM_INT, NULL, 0,
     "events let through at once (bucket size); default: rate rounded up, at least 1", NULL},
    {"key", SL_PARAM_EXPR, NULL, 0,
     "one bucket per distinct value of this expression (compared as msgpack); absent: one bucket",
     NULL},
    {"limits", SL_PARAM_MAP, NULL, 0,
     "name -> {rate, burst} (or name -> rate): several named limits, chosen by 'select'", NULL},
    {"select", SL_PARAM_EXPR, NULL, 0,
     "expression giving the name of an event's limit; required with 'limits'", NULL},
    {"mode", SL_PARAM_ENUM, "delay", 0,
     "over the limit: wait (backpressure), drop (counted), or reroute to port over_limit",
     "delay|drop|reroute"},
    {"max_keys", SL_PARAM_INT, "100000", 0,
     "buckets kept; beyond, full ones are forgotten first, else the soonest full", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "over_limit", "errors", NULL};

/* ------------------------------------------------------------ configuration */

/*
 * Fill l from a rate node and an optional burst node (both may be NULL, then
 * the caller has reported). `what` names it in messages. Returns 0 or -1 (reported).
 */
static int set_limit(sl_ctx *ctx, limit *l, const char *what, const sl_node *rate_at,
                     const sl_node *burst_at)
{
    const sl_host *h = ctx->host;
    if (h->node_kind(rate_at) != SL_NODE_SCALAR || h->node_double(rate_at, &l->rate) != 0 ||
        !isfinite(l->rate) || l->rate < MIN_RATE || l->rate > MAX_RATE) {
        h->config_error(ctx, rate_at,
                        "%s: rate must be a number of events per second from 1e-9 to 1e9", what);
        return -1;
    }
    double ceiled = ceil(l->rate);
    l->burst = ceiled < 1 ? 1 : (int64_t)ceiled;
    if (burst_at && (h->node_kind(burst_at) != SL_NODE_SCALAR ||
                     h->node_int(burst_at, &l->burst) != 0 || l->burst < 1)) {
        h->config_error(ctx, burst_at, "%s: burst must be an integer of at least 1", what);
        return -1;
    }
    l->t_ns = llround(1e9 / l->rate);
    if (l->t_ns < 1) l->t_ns = 1;
    if (l->burst - 1 > MAX_TOLERANCE_NS / l->t_ns) {
        h->config_error(ctx, burst_at ? burst_at : rate_at,
                        "%s: burst %lld at %.15g/s would take more than 31 years to refill", what,
                        (long long)l->burst, l->rate);
        return -1;
    }
    l->tol_ns = (l->burst - 1) * l->t_ns;
    if (l->name)
        snprintf(l->detail, sizeof l->detail, "limit '%.*s': %.15g/s, burst %lld",
                 (int)(l->name_len > 100 ? 100 : l->name_len), l->name, l->rate,
                 (long long)l->burst);
    else
        snprintf(l->detail, sizeof l->detail, "rate %.15g/s, burst %lld", l->rate,
                 (long long)l->burst);
    return 0;
}

/* The `limits` map: name -> {rate, burst} or name -> rate. Returns 0 or -1 (reported). */
static int read_limits(sl_ctx *ctx, throttle *t, const sl_node *limits)
{
    const sl_host *h = ctx->host;
    size_t n = h->node_len(limits);
    if (n == 0 || n > MAX_LIMITS) {
        h->config_error(ctx, limits, "'limits' names 1 to %d limits", MAX_LIMITS);
        return -1;
    }
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        limit *l = &t->limits[i];
        const sl_node *v = h->node_at(limits, i);
        l->name = h->node_key(limits, i);
        l->name_len = strlen(l->name);
        char what[160];
        snprintf(what, sizeof what, "limit '%.100s'", l->name);
        if (h->node_kind(v) == SL_NODE_SCALAR) { /* name: rate */
            bad |= set_limit(ctx, l, what, v, NULL);
            continue;
        }
        if (h->node_kind(v) != SL_NODE_MAP) {
            h->config_error(ctx, v, "%s: expected {rate, burst} or a rate", what);
            bad = 1;
            continue;
        }
        int ok = 1;
        for (size_t k = 0; k < h->node_len(v); k++) {
            const char *kname = h->node_key(v, k);
            if (strcmp(kname, "rate") != 0 && strcmp(kname, "burst") != 0) {
                h->config_error(ctx, h->node_at(v, k),
                                "%s: unknown key '%s' (expected rate, burst)", what, kname);
                ok = 0;
            }
        }
        const sl_node *rate = h->node_get(v, "rate");
        if (!rate) {
            h->config_error(ctx, v, "%s: needs a rate", what);
            ok = 0;
        }
        if (!ok || set_limit(ctx, l, what, rate, h->node_get(v, "burst")) != 0) bad = 1;
    }
    t->n_named = (uint32_t)n;
    return bad ? -1 : 0;
}

static int throttle_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    throttle *t = calloc(1, sizeof *t);
    if (!t) return SL_ERROR;
    *state = t;
    t->top = -1;
    t->free_head = FREE;
    t->over_port = h->port(ctx, "over_limit");
    t->errors_port = h->port(ctx, "errors");
    const char *mode = h->node_str(h->param(ctx, "mode"));
    t->mode = strcmp(mode, "drop") == 0      ? MODE_DROP
              : strcmp(mode, "reroute") == 0 ? MODE_REROUTE
                                             : MODE_DELAY;
    int bad = 0;
    const sl_node *max_keys = h->param(ctx, "max_keys");
    int64_t mk = 0;
    if (h->node_int(max_keys, &mk) != 0 || mk < 1 || mk > (int64_t)MAX_KEYS_LIMIT) {
        h->config_error(ctx, max_keys, "'max_keys' must be between 1 and %u", MAX_KEYS_LIMIT);
        bad = 1;
    }
    t->max_keys = (uint32_t)mk;

    const sl_node *rate = h->param(ctx, "rate"), *burst = h->param(ctx, "burst");
    const sl_node *limits = h->param(ctx, "limits"), *select = h->param(ctx, "select");
    if (limits && read_limits(ctx, t, limits) != 0) bad = 1;
    if (rate) {
        t->top = (int)t->n_named;
        if (set_limit(ctx, &t->limits[t->top], "throttle", rate, burst) != 0) bad = 1;
    } else if (burst) {
        h->config_error(ctx, burst, "'burst' goes with 'rate' (a named limit has its own burst)");
        bad = 1;
    }
    if (!rate && !limits) {
        h->config_error(ctx, NULL, "throttle needs 'rate' or 'limits'");
        bad = 1;
    }
    if (limits && !select) {
        h->config_error(ctx, limits,
                        "'limits' needs 'select', an expression giving each event's limit name");
        bad = 1;
    }
    if (select && !limits) {
        h->config_error(ctx, select, "'select' chooses among 'limits', which is missing");
        bad = 1;
    }
    if (select && limits) {
        t->select = h->expr_compile(ctx, select, NULL, NULL);
        bad |= !t->select;
    }
    const sl_node *key = h->param(ctx, "key");
    if (key) {
        t->key = h->expr_compile(ctx, key, NULL, NULL);
        bad |= !t->key;
    }
    uint32_t n_inst = 1;
    h->instance(ctx, &n_inst);
    if (n_inst > 1 && !key) {
        h->config_error(ctx, NULL,
                        "throttle with parallelism %u needs 'key' (the instances would each "
                        "let the whole rate through: %u times the limit); set key or "
                        "parallelism: 1",
                        n_inst, n_inst);
        bad = 1;
    }
    return bad ? SL_ERROR : SL_OK;
}

/* ---------------------------------------------------------------- buckets */

/* Hash of (limit, key bytes): the key's, with the limit mixed in; never 0. */
static uint64_t key_hash(uint32_t li, const uint8_t *k, size_t n)
{
    uint64_t x = sl_hash_bytes(k, n) ^ ((uint64_t)li * 0x9e3779b97f4a7c15ull);
    return x ? x : 1;
}

static inline const uint8_t *key_of(const throttle *t, const bucket *b)
{
    return t->arena[t->cur].data + b->key_off;
}

static void heap_set(throttle *t, uint32_t pos, uint32_t r)
{
    t->heap[pos] = r;
    t->recs[r].heap_pos = pos;
}

static void sift_up(throttle *t, uint32_t pos)
{
    uint32_t r = t->heap[pos];
    int64_t tat = t->recs[r].tat;
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (t->recs[t->heap[parent]].tat <= tat) break;
        heap_set(t, pos, t->heap[parent]);
        pos = parent;
    }
    heap_set(t, pos, r);
}

static void sift_down(throttle *t, uint32_t pos)
{
    uint32_t r = t->heap[pos], n = t->n_used;
    int64_t tat = t->recs[r].tat;
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= n) break;
        if (c + 1 < n && t->recs[t->heap[c + 1]].tat < t->recs[t->heap[c]].tat) c++;
        if (tat <= t->recs[t->heap[c]].tat) break;
        heap_set(t, pos, t->heap[c]);
        pos = c;
    }
    heap_set(t, pos, r);
}

/* Rebuild the slot table with n_slots (a power of two) slots. Returns 0 or -1 (out of memory). */
static int rehash(throttle *t, uint32_t n_slots)
{
    slot *s = calloc(n_slots, sizeof *s);
    if (!s) return -1;
    uint32_t mask = n_slots - 1;
    for (uint32_t i = 0; t->slots && i <= t->mask; i++) {
        if (!t->slots[i].rec1) continue;
        uint32_t j = (uint32_t)t->slots[i].hash & mask;
        while (s[j].rec1)
            j = (j + 1) & mask;
        s[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = s;
    t->mask = mask;
    return 0;
}

/* Room for one more record: slab, heap and a table at most half full. Returns 0 or -1. */
static int reserve_one(throttle *t)
{
    if (t->free_head == FREE && t->hw == t->cap_recs) {
        uint32_t cap = t->cap_recs ? t->cap_recs * 2 : 16;
        if (cap > t->max_keys) cap = t->max_keys;
        bucket *r = realloc(t->recs, (size_t)cap * sizeof *r);
        if (!r) return -1;
        t->recs = r;
        uint32_t *hp = realloc(t->heap, (size_t)cap * sizeof *hp);
        if (!hp) return -1;
        t->heap = hp;
        t->cap_recs = cap;
    }
    if (!t->slots || (uint64_t)(t->n_used + 1) * 2 > (uint64_t)t->mask + 1)
        return rehash(t, t->slots ? (t->mask + 1) * 2 : 32);
    return 0;
}

/* Copy the live keys into the other arena, so that dead bytes do not pile up. */
static int compact(throttle *t)
{
    sl_wbuf *from = &t->arena[t->cur], *to = &t->arena[!t->cur];
    sl_wbuf_reset(to);
    if (sl_wbuf_reserve(to, from->len - t->dead) != 0) return -1;
    for (uint32_t i = 0; i < t->hw; i++) {
        bucket *b = &t->recs[i];
        if (b->heap_pos == FREE) continue;
        uint32_t off = (uint32_t)to->len;
        sl_wbuf_append(to, from->data + b->key_off, b->key_len); /* reserved: cannot fail */
        b->key_off = off;
    }
    t->cur = !t->cur;
    t->dead = 0;
    return 0;
}

/* Forget record r: out of the table (backward-shift deletion), the heap and the arena. */
static void remove_bucket(throttle *t, uint32_t r)
{
    bucket *b = &t->recs[r];
    uint32_t i = (uint32_t)b->hash & t->mask;
    while (t->slots[i].rec1 != r + 1)
        i = (i + 1) & t->mask;
    for (uint32_t j = i;;) {
        j = (j + 1) & t->mask;
        if (!t->slots[j].rec1) break;
        uint32_t home = (uint32_t)t->slots[j].hash & t->mask;
        /* the entry at j may move to the hole at i unless its home lies cyclically in (i, j] */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].rec1 = 0;
    uint32_t pos = b->heap_pos, last = t->heap[--t->n_used];
    if (pos != t->n_used) {
        heap_set(t, pos, last);
        sift_up(t, pos);
        sift_down(t, t->recs[last].heap_pos);
    }
    t->dead += b->key_len;
    b->heap_pos = FREE;
    b->key_off = t->free_head;
    t->free_head = r;
}

/*
 * The bucket of (limit li, key k), made (full) if new, evicting one when
 * max_keys are held. Returns the record index, or FREE when out of memory.
 */
static uint32_t get_bucket(throttle *t, uint32_t li, const uint8_t *k, size_t klen, int64_t now)
{
    uint64_t hash = key_hash(li, k, klen);
    if (t->slots) {
        for (uint32_t i = (uint32_t)hash & t->mask; t->slots[i].rec1; i = (i + 1) & t->mask) {
            if (t->slots[i].hash != hash) continue;
            bucket *b = &t->recs[t->slots[i].rec1 - 1];
            if (b->limit == li && b->key_len == klen &&
                (klen == 0 || memcmp(key_of(t, b), k, klen) == 0))
                return t->slots[i].rec1 - 1;
        }
    }
    if (t->n_used == t->max_keys) {
        uint32_t victim = t->heap[0];
        if (t->recs[victim].tat > now) /* not full: forgetting it forgives what it owes */
            t->c.evicted++;
        remove_bucket(t, victim);
    }
    if (klen > UINT32_MAX / 2 || reserve_one(t) != 0) return FREE;
    sl_wbuf *a = &t->arena[t->cur];
    if (t->dead > 65536 && t->dead > a->len / 2) {
        if (compact(t) != 0) return FREE;
        a = &t->arena[t->cur];
    }
    if (a->len + klen > UINT32_MAX || (klen && sl_wbuf_append(a, k, klen) != 0)) return FREE;
    uint32_t r;
    if (t->free_head != FREE) {
        r = t->free_head;
        t->free_head = t->recs[r].key_off;
    } else {
        r = t->hw++;
    }
    bucket *b = &t->recs[r];
    b->tat = now; /* full: the same as a bucket that was never used */
    b->hash = hash;
    b->key_off = (uint32_t)(a->len - klen);
    b->key_len = (uint32_t)klen;
    b->limit = li;
    t->heap[t->n_used] = r;
    b->heap_pos = t->n_used++;
    sift_up(t, b->heap_pos);
    uint32_t i = (uint32_t)hash & t->mask;
    while (t->slots[i].rec1)
        i = (i + 1) & t->mask;
    t->slots[i].hash = hash;
    t->slots[i].rec1 = r + 1;
    return r;
}

/* --------------------------------------------------------------- data path */

static void flush_counts(throttle *t, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    counts *c = &t->c;
    if (c->passed) h->count(ctx, "passed", c->passed);
    if (c->dropped) h->count(ctx, "dropped", c->dropped);
    if (c->rerouted) h->count(ctx, "rerouted", c->rerouted);
    if (c->delayed) h->count(ctx, "delayed", c->delayed);
    if (c->unlimited) h->count(ctx, "unlimited", c->unlimited);
    if (c->evicted) h->count(ctx, "evicted", c->evicted);
    if (c->errors) h->count(ctx, "eval_errors", c->errors);
    memset(c, 0, sizeof *c);
}

static int to_errors(throttle *t, sl_ctx *ctx, const char *reason, const char *detail,
                     const uint8_t *ev, size_t len)
{
    t->c.errors++;
    return ctx->host->emit_drop(ctx, t->errors_port, reason, detail, ev, len, NULL, 0);
}

/*
 * The limit of an event: its index, -1 for none (unthrottled), or -2 after
 * sending the event to `errors`, -3 when that failed.
 */
static int pick_limit(throttle *t, sl_ctx *ctx, const uint8_t *ev, size_t len)
{
    const sl_host *h = ctx->host;
    if (!t->select) return t->top;
    sl_wbuf_reset(&t->selbuf);
    const char *why;
    if (h->expr_value(ctx, t->select, &ev, &len, 1, &t->selbuf) != 0) {
        why = h->expr_error(ctx);
    } else {
        const uint8_t *p = t->selbuf.data;
        sl_mp_val v;
        if (sl_mp_read(&p, p + t->selbuf.len, &v) == 0 && v.type == SL_MP_STR) {
            for (uint32_t i = 0; i < t->n_named; i++)
                if (t->limits[i].name_len == v.v.str.len &&
                    memcmp(t->limits[i].name, v.v.str.ptr, v.v.str.len) == 0)
                    return (int)i;
            return t->top; /* no such limit: the top-level rate, or none */
        }
        why = "select did not give a string (a limit name)";
    }
    return to_errors(t, ctx, "select", why, ev, len) == 0 ? -2 : -3;
}

/* Sleep for ns (> 0) of the monotonic clock. */
static void nap(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
}

/*
 * One event against bucket r of limit l. Returns 1 to emit it on `out`, 0
 * when it was handled (dropped, rerouted), -1 on a failure, -2 on a hard stop.
 */
static int police(throttle *t, sl_ctx *ctx, uint32_t r, const limit *l, const uint8_t *ev,
                  size_t len)
{
    const sl_host *h = ctx->host;
    bucket *b = &t->recs[r];
    int64_t now = h->monotonic(ctx), at = b->tat - l->tol_ns; /* at: when it conforms */
    if (now < at) {
        if (t->mode == MODE_DROP) {
            t->c.dropped++;
            return 0;
        }
        if (t->mode == MODE_REROUTE) {
            t->c.rerouted++;
            int64_t wait_ms = (at - now + 999999) / 1000000;
            sl_wbuf_reset(&t->extra);
            int bad = sl_mp_write_map(&t->extra, 1) |
                      sl_mp_write_cstr(&t->extra, "retry_after_ms") |
                      sl_mp_write_int(&t->extra, wait_ms);
            if (bad || h->emit_drop(ctx, t->over_port, "over_limit", l->detail, ev, len,
                                    t->extra.data, t->extra.len) != 0)
                return -1;
            return 0;
        }
        t->c.delayed++;
        while ((now = h->monotonic(ctx)) < at) {
            if (h->stopping(ctx) == 2) return -2;
            nap(at - now < SLICE_NS ? at - now : SLICE_NS);
        }
        /*
         * It arrived, for the bucket, when it conformed: waking up late by a little is
         * not charged to the stream (so burst 1 does not drift by the sleep's overshoot);
         * beyond WAKE_SLACK_NS the time is lost rather than caught up with a burst.
         */
        now = now - at <= WAKE_SLACK_NS ? at : now - WAKE_SLACK_NS;
    }
    b->tat = (b->tat > now ? b->tat : now) + l->t_ns;
    sift_down(t, b->heap_pos); /* tat only grows */
    t->c.passed++;
    return 1;
}

static int throttle_process(void *state, sl_ctx *ctx, int input, const sl_batch *batch)
{
    throttle *t = state;
    const sl_host *h = ctx->host;
    if (!t->checked_ports) {
        t->checked_ports = 1;
        if (t->mode == MODE_REROUTE && !h->port_connected(ctx, t->over_port))
            h->log(ctx, SL_LOG_WARN,
                   "mode reroute, but nothing reads port 'over_limit': "
                   "events over the limit are discarded");
    }
    int rc = SL_OK;
    for (uint32_t i = 0; i < batch->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(batch, i, &len);
        int li = pick_limit(t, ctx, ev, len);
        if (li == -2) continue;
        if (li == -3) {
            rc = SL_ERROR;
            break;
        }
        if (li == -1) { /* a name that matches no limit and no top-level rate */
            t->c.unlimited++;
            if (h->emit(ctx, 0, ev, len) != 0) {
                rc = SL_ERROR;
                break;
            }
            continue;
        }
        const uint8_t *k = NULL;
        size_t klen = 0;
        if (t->key) {
            sl_wbuf_reset(&t->keybuf);
            if (h->expr_value(ctx, t->key, &ev, &len, 1, &t->keybuf) != 0) {
                if (to_errors(t, ctx, "key", h->expr_error(ctx), ev, len) != 0) {
                    rc = SL_ERROR;
                    break;
                }
                continue;
            }
            k = t->keybuf.data;
            klen = t->keybuf.len;
        }
        uint32_t r = get_bucket(t, (uint32_t)li, k, klen, h->monotonic(ctx));
        if (r == FREE) {
            h->log(ctx, SL_LOG_ERROR, "out of memory for the bucket table");
            rc = SL_ERROR;
            break;
        }
        int v = police(t, ctx, r, &t->limits[li], ev, len);
        if (v == -2) break; /* a hard stop: the rest of the batch is abandoned with the pipeline */
        if (v < 0 || (v == 1 && h->emit(ctx, 0, ev, len) != 0)) {
            rc = SL_ERROR;
            break;
        }
    }
    flush_counts(t, ctx);
    return rc;
}

static void throttle_destroy(void *state)
{
    throttle *t = state;
    if (!t) return;
    free(t->recs);
    free(t->heap);
    free(t->slots);
    sl_wbuf_fini(&t->arena[0]);
    sl_wbuf_fini(&t->arena[1]);
    sl_wbuf_fini(&t->keybuf);
    sl_wbuf_fini(&t->selbuf);
    sl_wbuf_fini(&t->extra);
    free(t);
}

const sl_operator sl_op_throttle = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "throttle",
    .summary =
        "Limits the event rate (token bucket, per key, named limits): delay, drop or reroute",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .key_param = "key",
    .init = throttle_init,
    .process = throttle_process,
    .destroy = throttle_destroy,
};
