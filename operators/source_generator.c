/*
 * source_generator.c - `source.generator`: the order/payment stream of
 * shared/bench/gen_events.py, generated in process.
 *
 * Same shape and semantics as the script: orders (order.created/updated/
 * completed by status) with customerId, total, status, items; every
 * completed order is followed 0-120 s of event time later by a
 * payment.processed event for the same orderId; a fraction of events are
 * late (time moved back by up to max_late) and a fraction are exact
 * re-sends of one of the last 1000 events. Deterministic for a seed, but
 * its own PRNG (xoshiro256**): not byte-identical to the Python script.
 *
 * Hot path: ids are formatted by hand, events are written into one reused
 * buffer, the duplicate ring reuses its slots: no allocation per event.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "position.h"
#include "sluice/operator.h"

#define RECENT 1000
#define PER_CALL 1024

static const char *const statuses[] = {"PENDING", "PAID", "SHIPPED", "COMPLETED", "CANCELLED"};
static const char *const pay_statuses[] = {"APPROVED", "APPROVED", "APPROVED", "DECLINED"};

typedef struct payment {
    uint64_t due;      /* event index at which it is emitted */
    uint64_t order_no;
    uint32_t cents;
    uint8_t status;
} payment;

/*
 * A zero-padded decimal counter kept as text ("evt-0000000042"), incremented
 * in place: ids of consecutive events cost a digit or two, not a division each.
 */
typedef struct dec {
    char text[32];
    size_t len, digits_at;
} dec;

typedef struct gen {
    /* parameters */
    uint64_t count;    /* 0 = unbounded */
    double rate;       /* events per wall-clock second, 0 = as fast as possible */
    uint64_t customers;
    double dup_frac, late_frac;
    int64_t max_late_ns;
    double event_rate; /* events per second of event time */
    int64_t t0;
    /* state */
    uint64_t s[4];
    uint64_t n, order_no;
    payment *heap;
    size_t heap_n, heap_cap;
    sl_wbuf recent[RECENT];
    size_t recent_n, recent_next;
    dec id;            /* "evt-" + n */
    dec oid;           /* "o-" + order_no */
    int64_t started;   /* monotonic ns of the first produce */
    uint64_t paced_from; /* events replayed by a restore: `rate` paces those after them */
    uint64_t seed;
    sl_kv *pos_db;     /* checkpoints: the position (events emitted) */
} gen;

static const sl_param params[] = {
    {"count", SL_PARAM_INT, "100000", 0, "events to generate; 0 = unbounded", NULL},
    {"rate", SL_PARAM_DOUBLE, "0", 0, "events per second of wall-clock time; 0 = as fast as possible", NULL},
    {"seed", SL_PARAM_INT, "7", 0, "seed of the deterministic random stream", NULL},
    {"customers", SL_PARAM_INT, "1000", 0, "number of distinct customerId values", NULL},
    {"dup_frac", SL_PARAM_DOUBLE, "0.01", 0, "fraction of events that re-send a recent event", NULL},
    {"late_frac", SL_PARAM_DOUBLE, "0.02", 0, "fraction of events whose time is moved back", NULL},
    {"max_late", SL_PARAM_DURATION, "5s", 0, "how far back a late event's time may be", NULL},
    {"event_rate", SL_PARAM_DOUBLE, "1000", 0, "events per second of event time", NULL},
    {"start_time", SL_PARAM_STRING, "2026-01-01T00:00:00Z", 0, "event time of the first event (RFC 3339, UTC)", NULL},
    {"watermark", SL_PARAM_MAP, NULL, 0, "{max_out_of_order, idle_timeout}: event-time watermarks", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t next_u64(gen *g)
{
    uint64_t *s = g->s;
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static inline double next_double(gen *g) { return (double)(next_u64(g) >> 11) * 0x1.0p-53; }
static inline uint64_t below(gen *g, uint64_t n) { return n ? next_u64(g) % n : 0; }

static void seed(gen *g, uint64_t x)
{
    for (int i = 0; i < 4; i++) { /* splitmix64 to spread the seed */
        x += 0x9e3779b97f4a7c15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        g->s[i] = z ^ (z >> 31);
    }
}

/* "prefix" + value zero-padded to `width` digits, into buf; returns the length. */
static size_t padded(char *buf, const char *prefix, uint64_t v, int width)
{
    size_t n = strlen(prefix);
    memcpy(buf, prefix, n);
    char digits[24];
    int k = 0;
    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k < width)
        digits[k++] = '0';
    while (k)
        buf[n++] = digits[--k];
    return n;
}

static void dec_set(dec *d, const char *prefix, uint64_t v, int width)
{
    d->len = padded(d->text, prefix, v, width);
    d->digits_at = strlen(prefix);
}

static void dec_inc(dec *d)
{
    size_t i = d->len;
    while (i > d->digits_at) {
        if (d->text[--i] != '9') {
            d->text[i]++;
            return;
        }
        d->text[i] = '0';
    }
    /* all nines: widen by one digit */
    memmove(d->text + d->digits_at + 1, d->text + d->digits_at, d->len - d->digits_at);
    d->text[d->digits_at] = '1';
    d->len++;
}

static int heap_push(gen *g, payment p)
{
    if (g->heap_n == g->heap_cap) {
        size_t cap = g->heap_cap ? g->heap_cap * 2 : 256;
        payment *h = realloc(g->heap, cap * sizeof *h);
        if (!h)
            return -1;
        g->heap = h;
        g->heap_cap = cap;
    }
    size_t i = g->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        payment *q = &g->heap[parent];
        if (q->due < p.due || (q->due == p.due && q->order_no <= p.order_no))
            break;
        g->heap[i] = *q;
        i = parent;
    }
    g->heap[i] = p;
    return 0;
}

static payment heap_pop(gen *g)
{
    payment top = g->heap[0], last = g->heap[--g->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= g->heap_n)
            break;
        if (c + 1 < g->heap_n &&
            (g->heap[c + 1].due < g->heap[c].due ||
             (g->heap[c + 1].due == g->heap[c].due && g->heap[c + 1].order_no < g->heap[c].order_no)))
            c++;
        if (last.due < g->heap[c].due ||
            (last.due == g->heap[c].due && last.order_no <= g->heap[c].order_no))
            break;
        g->heap[i] = g->heap[c];
        i = c;
    }
    if (g->heap_n)
        g->heap[i] = last;
    return top;
}

/* A string literal key: its length is known at compile time. */
#define KEY(w, k) sl_mp_write_str((w), (k), sizeof(k) - 1)

static int write_kv_str(sl_wbuf *w, const char *k, size_t klen, const char *v, size_t vlen)
{
    return sl_mp_write_str(w, k, klen) | sl_mp_write_str(w, v, vlen);
}
#define KV(w, k, v, vlen) write_kv_str((w), (k), sizeof(k) - 1, (v), (vlen))

/* Build event number g->n into w. */
static int build(gen *g, sl_wbuf *w)
{
    char cust[32];
    int64_t t = g->t0 + (int64_t)((double)g->n * 1e9 / g->event_rate);
    sl_wbuf_reset(w);
    int bad = 0;
    if (g->heap_n && g->heap[0].due <= g->n) {
        payment p = heap_pop(g);
        char oid[32], pid[32];
        size_t on = padded(oid, "o-", p.order_no, 8);
        size_t pn = padded(pid, "pay-", p.order_no, 8);
        if (next_double(g) < g->late_frac)
            t -= (int64_t)(next_double(g) * (double)g->max_late_ns);
        t -= t % 1000000; /* millisecond precision, as the script writes */
        bad |= sl_mp_write_map(w, 5);
        bad |= KV(w, "id", g->id.text, g->id.len);
        bad |= KV(w, "type", "payment.processed", 17);
        bad |= KV(w, "source", "payment-service", 15);
        bad |= KEY(w, "time") | sl_mp_write_timestamp(w, t);
        bad |= KEY(w, "data") | sl_mp_write_map(w, 4);
        bad |= KV(w, "id", pid, pn);
        bad |= KV(w, "orderId", oid, on);
        bad |= KEY(w, "amount") | sl_mp_write_double(w, p.cents / 100.0);
        bad |= KEY(w, "status") | sl_mp_write_cstr(w, pay_statuses[p.status]);
        return bad ? -1 : 0;
    }
    uint64_t no = ++g->order_no;
    dec_inc(&g->oid);
    unsigned st = (unsigned)below(g, 5);
    const char *type = st == 3 ? "order.completed" : st == 0 ? "order.created" : "order.updated";
    size_t cn = padded(cust, "cust-", below(g, g->customers), 1);
    uint32_t cents = 100 + (uint32_t)below(g, 49901); /* 1.00 .. 500.00 */
    unsigned items = 1 + (unsigned)below(g, 8);
    if (st == 3) {
        uint64_t delay = below(g, (uint64_t)(g->event_rate * 120) + 1);
        payment p = {.due = g->n + 1 + delay, .order_no = no, .cents = cents,
                     .status = (uint8_t)below(g, 4)};
        if (heap_push(g, p) != 0)
            return -1;
    }
    if (next_double(g) < g->late_frac)
        t -= (int64_t)(next_double(g) * (double)g->max_late_ns);
    t -= t % 1000000;
    bad |= sl_mp_write_map(w, 5);
    bad |= KV(w, "id", g->id.text, g->id.len);
    bad |= KV(w, "type", type, st == 3 ? 15 : 13);
    bad |= KV(w, "source", "order-service", 13);
    bad |= KEY(w, "time") | sl_mp_write_timestamp(w, t);
    bad |= KEY(w, "data") | sl_mp_write_map(w, 5);
    bad |= KV(w, "orderId", g->oid.text, g->oid.len);
    bad |= KV(w, "customerId", cust, cn);
    bad |= KEY(w, "total") | sl_mp_write_double(w, cents / 100.0);
    bad |= KEY(w, "status") | sl_mp_write_cstr(w, statuses[st]);
    bad |= KEY(w, "items") | sl_mp_write_uint(w, items);
    return bad ? -1 : 0;
}

static int gen_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    gen *g = calloc(1, sizeof *g);
    if (!g)
        return SL_ERROR;
    *state = g;
    int64_t count, sd, customers;
    int bad = h->node_int(h->param(ctx, "count"), &count);
    bad |= h->node_double(h->param(ctx, "rate"), &g->rate);
    bad |= h->node_int(h->param(ctx, "seed"), &sd);
    bad |= h->node_int(h->param(ctx, "customers"), &customers);
    bad |= h->node_double(h->param(ctx, "dup_frac"), &g->dup_frac);
    bad |= h->node_double(h->param(ctx, "late_frac"), &g->late_frac);
    bad |= h->node_duration(h->param(ctx, "max_late"), &g->max_late_ns);
    bad |= h->node_double(h->param(ctx, "event_rate"), &g->event_rate);
    if (bad)
        return SL_ERROR; /* types were checked against the table: cannot happen */
    if (count < 0)
        h->config_error(ctx, h->param(ctx, "count"), "'count' must be 0 or more");
    if (g->rate < 0)
        h->config_error(ctx, h->param(ctx, "rate"), "'rate' must be 0 or more");
    if (customers < 1)
        h->config_error(ctx, h->param(ctx, "customers"), "'customers' must be at least 1");
    if (g->dup_frac < 0 || g->dup_frac > 1)
        h->config_error(ctx, h->param(ctx, "dup_frac"), "'dup_frac' must be between 0 and 1");
    if (g->late_frac < 0 || g->late_frac > 1)
        h->config_error(ctx, h->param(ctx, "late_frac"), "'late_frac' must be between 0 and 1");
    if (g->event_rate <= 0)
        h->config_error(ctx, h->param(ctx, "event_rate"), "'event_rate' must be positive");
    const sl_node *st = h->param(ctx, "start_time");
    struct tm tm = {0};
    const char *s = h->node_str(st);
    char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end || (*end != 'Z' && *end != 'z') || end[1]) {
        h->config_error(ctx, st, "invalid start_time '%s' (expected e.g. 2026-01-01T00:00:00Z)",
                        s ? s : "");
        return SL_ERROR;
    }
    if (count < 0 || g->rate < 0 || customers < 1 || g->dup_frac < 0 || g->dup_frac > 1 ||
        g->late_frac < 0 || g->late_frac > 1 || g->event_rate <= 0)
        return SL_ERROR;
    g->t0 = (int64_t)timegm(&tm) * 1000000000;
    g->count = (uint64_t)count;
    g->customers = (uint64_t)customers;
    uint32_t n;
    uint32_t idx = h->instance(ctx, &n);
    g->seed = (uint64_t)sd;
    seed(g, (uint64_t)sd + idx);
    dec_set(&g->id, "evt-", 0, 10);
    dec_set(&g->oid, "o-", 0, 8);
    return SL_OK;
}

/* The next event of the stream (borrowed until the next call), or NULL out of memory. */
static const sl_wbuf *next_event(gen *g)
{
    sl_wbuf *out;
    if (g->recent_n && next_double(g) < g->dup_frac) {
        out = &g->recent[below(g, g->recent_n)];
    } else {
        /* build straight into the ring slot it is kept in for re-sends */
        out = &g->recent[g->recent_next];
        if (build(g, out) != 0)
            return NULL;
        g->recent_next = (g->recent_next + 1) % RECENT;
        if (g->recent_n < RECENT)
            g->recent_n++;
    }
    g->n++;
    dec_inc(&g->id);
    return out;
}

static int gen_produce(void *state, sl_ctx *ctx, int64_t deadline_ns)
{
    gen *g = state;
    const sl_host *h = ctx->host;
    uint64_t budget = PER_CALL;
    if (g->rate > 0) {
        int64_t now = h->monotonic(ctx);
        if (!g->started)
            g->started = now;
        double due = (double)(now - g->started) / 1e9 * g->rate;
        double paced = (double)(g->n - g->paced_from);
        if (paced >= due) {
            /* sleep until the next event is due, but not past the deadline */
            int64_t next = g->started + (int64_t)((paced + 1) / g->rate * 1e9);
            if (next > deadline_ns)
                next = deadline_ns;
            if (next > now) {
                struct timespec ts = {(time_t)((next - now) / 1000000000),
                                      (long)((next - now) % 1000000000)};
                nanosleep(&ts, NULL);
            }
            return SL_IDLE;
        }
        if (due - paced < (double)budget)
            budget = (uint64_t)(due - paced) + 1;
    }
    for (uint64_t k = 0; k < budget; k++) {
        if (g->count && g->n >= g->count)
            return SL_EOS;
        const sl_wbuf *out = next_event(g);
        if (!out || sl_emit(ctx, 0, out->data, out->len) != 0)
            return SL_ERROR;
    }
    return SL_OK;
}

/* ------------------------------------------------------------ checkpoints */

/* What the stream depends on: a position is only meaningful in the same stream. */
static void fingerprint(const gen *g, sl_ctx *ctx, char *buf, size_t n)
{
    uint32_t count;
    uint32_t idx = ctx->host->instance(ctx, &count);
    snprintf(buf, n, "seed=%" PRIu64 "/%u customers=%" PRIu64 " dup=%g late=%g max_late=%" PRId64
             " event_rate=%g t0=%" PRId64, g->seed, idx, g->customers, g->dup_frac, g->late_frac,
             g->max_late_ns, g->event_rate, g->t0);
}

static int gen_snapshot(void *state, sl_ctx *ctx, uint64_t id)
{
    gen *g = state;
    char fp[256];
    fingerprint(g, ctx, fp, sizeof fp);
    if (!g->pos_db && !(g->pos_db = sl_position_open(ctx)))
        return SL_ERROR;
    return sl_position_save(ctx, g->pos_db, id, fp, &g->n, 1);
}

/* Replay the stream up to the stored position without emitting it (it is deterministic). */
static int gen_restore(void *state, sl_ctx *ctx, uint64_t id)
{
    gen *g = state;
    char fp[256];
    uint64_t n;
    fingerprint(g, ctx, fp, sizeof fp);
    if (!(g->pos_db = sl_position_open(ctx)) ||
        sl_position_load(ctx, g->pos_db, id, fp, "the generator's stream", &n, 1) != SL_OK)
        return SL_ERROR;
    while (g->n < n)
        if (!next_event(g))
            return SL_ERROR;
    g->paced_from = g->n;
    return SL_OK;
}

static void gen_destroy(void *state)
{
    gen *g = state;
    if (!g)
        return;
    for (size_t i = 0; i < RECENT; i++)
        sl_wbuf_fini(&g->recent[i]);
    free(g->heap);
    free(g);
}

const sl_operator sl_op_source_generator = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "source.generator",
    .summary = "Generates the order/payment event stream (as shared/bench/gen_events.py)",
    .flags = SL_OP_SOURCE,
    .param_size = sizeof(sl_param),
    .params = params,
    .init = gen_init,
    .produce = gen_produce,
    .destroy = gen_destroy,
    .snapshot = gen_snapshot,
    .restore = gen_restore,
};
