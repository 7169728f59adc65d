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
 * bytes, in the bounded table of bucket_table.h (shared with `ratelimit`):
 * once `max_keys` are held a full bucket is forgotten first (exact), else
 * the one that will be full soonest (counted "evicted"; see
 * docs/operators.md for why not the least recently used). No allocation per
 * event once the table has grown.
 *
 * Modes: drop (counted "dropped"), reroute (a drop-ledger envelope on
 * `over_limit` with retry_after_ms), delay (sleep on the stage thread until
 * the event conforms: the stage stops reading, which backpressures upstream
 * through ZeroMQ's high-water mark; one key's wait delays every event
 * behind it in this instance). A key or select expression that fails sends
 * the event to `errors`.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bucket_table.h"
#include "sluice/operator.h"

#define MAX_LIMITS 64
#define MAX_KEYS_LIMIT SL_BUCKET_MAX_KEYS
#define MIN_RATE 1e-9                             /* T <= 1e18 ns */
#define MAX_RATE 1e9                              /* T >= 1 ns */
#define MAX_TOLERANCE_NS SL_GCRA_MAX_TOLERANCE_NS /* (burst-1)*T: ~31 years */
#define SLICE_NS 50000000ll     /* delay: look at a hard stop at least this often */
#define WAKE_SLACK_NS 1000000ll /* delay: wake-up lateness not charged to the stream */

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
    sl_bucket_table buckets;
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
    l->burst = sl_gcra_default_burst(l->rate);
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
    sl_bucket_table_init(&t->buckets, t->max_keys);

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
    int64_t tat = sl_bucket_table_tat(&t->buckets, r);
    int64_t now = h->monotonic(ctx), at = tat - l->tol_ns; /* at: when it conforms */
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
    sl_bucket_table_set_tat(&t->buckets, r, (tat > now ? tat : now) + l->t_ns);
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
        int evicted;
        uint32_t r =
            sl_bucket_table_get(&t->buckets, (uint32_t)li, k, klen, h->monotonic(ctx), &evicted);
        t->c.evicted += (uint64_t)evicted;
        if (r == SL_BUCKET_NONE) {
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
    sl_bucket_table_fini(&t->buckets);
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
