/*
 * handloop.c - `sluice-handloop`: each benchmark scenario as a plain C loop,
 * the yardstick tools/bench/bench.py prints beside the engine's figures.
 *
 *   sluice-handloop gen N          build N generator events, count them
 *   sluice-handloop chain N K      ... and copy each through K batch buffers
 *   sluice-handloop file IN OUT    JSON lines -> msgpack -> JSON lines, fsync
 *   sluice-handloop filter N [OUT] build N events, keep those with
 *                                  type.startsWith("order.") && data.total > 100.0
 *   sluice-handloop transform N [OUT]  build N events, reshape each into
 *                                  {id, time, orderId, customerId, amount, status, items}
 *   sluice-handloop agg-status N   build N events; count() and sum(data.total) of those
 *                                  with a total, per 1-minute tumbling window and
 *                                  data.status, flushed as the watermark passes
 *   sluice-handloop agg-customer N the same per data.customerId, with the generator's
 *                                  `customers: 1000000`, per 1-day window (so one window
 *                                  holds up to 1M groups)
 *
 * Prints "EVENTS SECONDS" on stdout (its own monotonic time, start to end of
 * the work); bench.py times the whole process from outside, as it does the
 * engine, and uses these numbers only as a cross-check. `filter` adds the
 * number of events kept, `transform` the number of outputs and of events
 * that had a field missing (the transform's eval errors). With OUT, they
 * also write what they keep or build to OUT as msgpack back to back (what
 * sink.file with format: msgpack writes), for bench.py to compare with the
 * engine's output; timed runs leave OUT out. `agg-*` print "EVENTS SECONDS
 * ROWS", ROWS the number of (window, group) results built.
 *
 * The work is what the engine must do and nothing else: no threads, no
 * batches handed between operators, no services table. It links the engine
 * library for its codecs only (sluice/msgpack.h writers, engine/json.h), so a
 * ratio engine/loop measures the engine's overhead, not a different codec.
 *
 * The generator below is copied from operators/source_generator.c (same
 * PRNG, seed derivation, defaults and writer calls): with the same seed it
 * builds byte-identical events. Keep the two in step when the generator
 * changes, or the `gen` and `chain` rows stop comparing like with like.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "sluice/msgpack.h"

#define RECENT 1000      /* duplicate ring, as the generator */
#define BATCH 1024       /* events per batch in `chain`: the engine's batch.max_events */
#define CHUNK (1u << 20) /* read size and write threshold in `file` */

/* ------------------------------------------------------------ generator */

/* The generator's defaults (operators/source_generator.c `params`). */
#define SEED 7
#define CUSTOMERS 1000
#define DUP_FRAC 0.01
#define LATE_FRAC 0.02
#define MAX_LATE_NS 5000000000ll
#define EVENT_RATE 1000.0
#define T0_NS 1767225600000000000ll /* 2026-01-01T00:00:00Z */

static const char *const statuses[] = {"PENDING", "PAID", "SHIPPED", "COMPLETED", "CANCELLED"};
static const char *const pay_statuses[] = {"APPROVED", "APPROVED", "APPROVED", "DECLINED"};

typedef struct payment {
    uint64_t due;
    uint64_t order_no;
    uint32_t cents;
    uint8_t status;
} payment;

typedef struct dec {
    char text[32];
    size_t len, digits_at;
} dec;

typedef struct gen {
    uint64_t s[4];
    uint64_t n, order_no;
    payment *heap;
    size_t heap_n, heap_cap;
    sl_wbuf recent[RECENT];
    size_t recent_n, recent_next;
    dec id, oid;
    uint64_t customers; /* the generator's `customers` parameter */
} gen;

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
             (g->heap[c + 1].due == g->heap[c].due &&
              g->heap[c + 1].order_no < g->heap[c].order_no)))
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

#define KEY(w, k) sl_mp_write_str((w), (k), sizeof(k) - 1)

static int write_kv_str(sl_wbuf *w, const char *k, size_t klen, const char *v, size_t vlen)
{
    return sl_mp_write_str(w, k, klen) | sl_mp_write_str(w, v, vlen);
}
#define KV(w, k, v, vlen) write_kv_str((w), (k), sizeof(k) - 1, (v), (vlen))

/* Build event number g->n into w (the generator's build(), verbatim). */
static int build(gen *g, sl_wbuf *w)
{
    char cust[32];
    int64_t t = T0_NS + (int64_t)((double)g->n * 1e9 / EVENT_RATE);
    sl_wbuf_reset(w);
    int bad = 0;
    if (g->heap_n && g->heap[0].due <= g->n) {
        payment p = heap_pop(g);
        char oid[32], pid[32];
        size_t on = padded(oid, "o-", p.order_no, 8);
        size_t pn = padded(pid, "pay-", p.order_no, 8);
        if (next_double(g) < LATE_FRAC)
            t -= (int64_t)(next_double(g) * (double)MAX_LATE_NS);
        t -= t % 1000000;
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
    uint32_t cents = 100 + (uint32_t)below(g, 49901);
    unsigned items = 1 + (unsigned)below(g, 8);
    if (st == 3) {
        uint64_t delay = below(g, (uint64_t)(EVENT_RATE * 120) + 1);
        payment p = {.due = g->n + 1 + delay, .order_no = no, .cents = cents,
                     .status = (uint8_t)below(g, 4)};
        if (heap_push(g, p) != 0)
            return -1;
    }
    if (next_double(g) < LATE_FRAC)
        t -= (int64_t)(next_double(g) * (double)MAX_LATE_NS);
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

static void gen_init(gen *g)
{
    memset(g, 0, sizeof *g);
    uint64_t x = SEED; /* + instance index 0, as the generator seeds itself */
    for (int i = 0; i < 4; i++) {
        x += 0x9e3779b97f4a7c15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        g->s[i] = z ^ (z >> 31);
    }
    dec_set(&g->id, "evt-", 0, 10);
    dec_set(&g->oid, "o-", 0, 8);
    g->customers = CUSTOMERS;
}

static void gen_fini(gen *g)
{
    for (size_t i = 0; i < RECENT; i++)
        sl_wbuf_fini(&g->recent[i]);
    free(g->heap);
}

/* The next event, as the generator's produce loop picks it: a re-send of a
 * recent event or a new one built into the ring. Borrowed from g. */
static const sl_wbuf *gen_next(gen *g)
{
    sl_wbuf *out;
    if (g->recent_n && next_double(g) < DUP_FRAC) {
        out = &g->recent[below(g, g->recent_n)];
    } else {
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

/* --------------------------------------------------------------- timing */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Printed so the compiler cannot drop the work whose result it is. */
static volatile uint64_t sink_value;

/* ------------------------------------------------------------ scenarios */

/* gen N: build N events, touch their bytes. */
static int run_gen(uint64_t n, uint64_t *events)
{
    gen g;
    gen_init(&g);
    uint64_t sum = 0;
    int rc = 0;
    for (uint64_t i = 0; i < n; i++) {
        const sl_wbuf *ev = gen_next(&g);
        if (!ev) {
            rc = -1;
            break;
        }
        sum += ev->len + ev->data[ev->len - 1];
    }
    sink_value = sum;
    *events = g.n;
    gen_fini(&g);
    return rc;
}

/* A batch buffer as a pass-through stage fills one: event bytes back to back
 * plus the end offset of each. */
typedef struct batch {
    sl_wbuf data;
    uint32_t ends[BATCH];
    uint32_t count;
} batch;

static int batch_append(batch *b, const uint8_t *ev, size_t len)
{
    if (sl_wbuf_append(&b->data, ev, len) != 0)
        return -1;
    b->ends[b->count++] = (uint32_t)b->data.len;
    return 0;
}

/* Copy the content of hops[0] through hops[1..k-1], then "sink" the last. */
static int chain_flush(batch *hops, uint64_t k, uint64_t *sum)
{
    for (uint64_t h = 1; h < k; h++) {
        const batch *in = &hops[h - 1];
        uint32_t start = 0;
        for (uint32_t i = 0; i < in->count; i++) {
            if (batch_append(&hops[h], in->data.data + start, in->ends[i] - start) != 0)
                return -1;
            start = in->ends[i];
        }
    }
    const batch *last = &hops[k - 1];
    *sum += last->count + last->data.len;
    for (uint64_t h = 0; h < k; h++) {
        hops[h].count = 0;
        sl_wbuf_reset(&hops[h].data);
    }
    return 0;
}

/* chain N K: build N events and copy each through K batch buffers. */
static int run_chain(uint64_t n, uint64_t k, uint64_t *events)
{
    gen g;
    gen_init(&g);
    batch *hops = calloc(k, sizeof *hops);
    uint64_t sum = 0;
    int rc = hops ? 0 : -1;
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        const sl_wbuf *ev = gen_next(&g);
        if (!ev || batch_append(&hops[0], ev->data, ev->len) != 0)
            rc = -1;
        else if (hops[0].count == BATCH)
            rc = chain_flush(hops, k, &sum);
    }
    if (rc == 0 && hops[0].count)
        rc = chain_flush(hops, k, &sum);
    sink_value = sum;
    *events = g.n;
    for (uint64_t h = 0; hops && h < k; h++)
        sl_wbuf_fini(&hops[h].data);
    free(hops);
    gen_fini(&g);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* file IN OUT: each line of IN to msgpack and back to a line of OUT. */
static int run_file(const char *in_path, const char *out_path, uint64_t *events)
{
    int in = -1, out = -1, rc = -1;
    sl_json_parser *jp = sl_json_parser_new();
    char *buf = malloc(CHUNK + SL_JSON_PADDING);
    sl_wbuf ev = {0}, text = {0};
    size_t start = 0, end = 0;
    int eof = 0;
    uint64_t n = 0;
    char err[256];

    if (!jp || !buf) {
        fprintf(stderr, "sluice-handloop: out of memory\n");
        goto done;
    }
    in = open(in_path, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        fprintf(stderr, "sluice-handloop: cannot open '%s': %s\n", in_path, strerror(errno));
        goto done;
    }
    out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (out < 0) {
        fprintf(stderr, "sluice-handloop: cannot open '%s': %s\n", out_path, strerror(errno));
        goto done;
    }
    for (;;) {
        char *p = buf + start;
        char *nl = end > start ? memchr(p, '\n', end - start) : NULL;
        if (!nl && !eof) {
            /* keep the partial line, read more behind it */
            memmove(buf, p, end - start);
            end -= start;
            start = 0;
            if (end == CHUNK) {
                fprintf(stderr, "sluice-handloop: line longer than %u bytes\n", CHUNK);
                goto done;
            }
            ssize_t r = read(in, buf + end, CHUNK - end);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                fprintf(stderr, "sluice-handloop: cannot read '%s': %s\n", in_path,
                        strerror(errno));
                goto done;
            }
            eof = r == 0;
            end += (size_t)r;
            continue;
        }
        size_t len = nl ? (size_t)(nl - p) : end - start;
        if (!nl && !len)
            break;
        start += len + (nl ? 1 : 0);
        if (len == 0)
            continue; /* a blank line: the engine skips it too */
        sl_wbuf_reset(&ev);
        size_t readable = CHUNK + SL_JSON_PADDING - (size_t)(p - buf);
        if (sl_json_to_msgpack(jp, p, len, readable, 1, &ev, err, sizeof err) != 0) {
            fprintf(stderr, "sluice-handloop: %s:%" PRIu64 ": %s\n", in_path, n + 1, err);
            goto done;
        }
        if (sl_msgpack_to_json(ev.data, ev.len, &text) != 0 ||
            sl_wbuf_append(&text, "\n", 1) != 0) {
            fprintf(stderr, "sluice-handloop: out of memory\n");
            goto done;
        }
        n++;
        if (text.len >= CHUNK) {
            int w = write_all(out, text.data, text.len);
            if (w != 0) {
                fprintf(stderr, "sluice-handloop: cannot write '%s': %s\n", out_path,
                        strerror(-w));
                goto done;
            }
            sl_wbuf_reset(&text);
        }
    }
    if (write_all(out, text.data, text.len) != 0 || fsync(out) != 0) {
        fprintf(stderr, "sluice-handloop: cannot write '%s': %s\n", out_path, strerror(errno));
        goto done;
    }
    *events = n;
    rc = 0;
done:
    if (out >= 0 && close(out) != 0 && rc == 0) {
        fprintf(stderr, "sluice-handloop: cannot close '%s': %s\n", out_path, strerror(errno));
        rc = -1;
    }
    if (in >= 0)
        close(in);
    sl_wbuf_fini(&ev);
    sl_wbuf_fini(&text);
    free(buf);
    sl_json_parser_destroy(&jp);
    return rc;
}

/* --------------------------------------------------- filter / transform */

/* An output file for the optional OUT of filter and transform. */
typedef struct outfile {
    int fd;
    sl_wbuf buf;
} outfile;

static int out_open(outfile *o, const char *path)
{
    sl_wbuf_init(&o->buf);
    o->fd = -1;
    if (!path)
        return 0;
    o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (o->fd < 0) {
        fprintf(stderr, "sluice-handloop: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int out_put(outfile *o, const uint8_t *p, size_t n)
{
    if (o->fd < 0)
        return 0;
    if (sl_wbuf_append(&o->buf, p, n) != 0)
        return -1;
    if (o->buf.len >= CHUNK) {
        if (write_all(o->fd, o->buf.data, o->buf.len) != 0)
            return -1;
        sl_wbuf_reset(&o->buf);
    }
    return 0;
}

static int out_close(outfile *o)
{
    int rc = 0;
    if (o->fd >= 0) {
        rc = write_all(o->fd, o->buf.data, o->buf.len) != 0 || close(o->fd) != 0 ? -1 : 0;
        if (rc)
            fprintf(stderr, "sluice-handloop: cannot write the output: %s\n", strerror(errno));
    }
    sl_wbuf_fini(&o->buf);
    return rc;
}

/*
 * type.startsWith("order.") && data.total > 100.0 straight on the bytes:
 * 1 true, 0 false, -1 an evaluation error. CEL's && rule: false if either
 * side is false, else an error if either erred, else true; the left side
 * is false for payments, so the right is not looked at then.
 */
static int filter_pred(const uint8_t *ev, size_t len)
{
    const uint8_t *end = ev + len, *p = ev;
    sl_mp_val v;
    int left = -1, right = -1;
    if (sl_mp_map_find(&p, end, "type", 4) == 1 && sl_mp_read(&p, end, &v) == 0 &&
        v.type == SL_MP_STR)
        left = v.v.str.len >= 6 && memcmp(v.v.str.ptr, "order.", 6) == 0;
    if (left == 0)
        return 0;
    p = ev;
    if (sl_mp_map_find(&p, end, "data", 4) == 1 && sl_mp_map_find(&p, end, "total", 5) == 1 &&
        sl_mp_read(&p, end, &v) == 0) {
        if (v.type == SL_MP_FLOAT)
            right = v.v.f > 100.0;
        else if (v.type == SL_MP_UINT)
            right = v.v.u > 100;
        else if (v.type == SL_MP_INT)
            right = 0; /* negative */
    }
    if (right == 0)
        return 0;
    return left < 0 || right < 0 ? -1 : 1;
}

/* filter N [OUT]: build N events, count (and write) those the predicate keeps. */
static int run_filter(uint64_t n, const char *out_path, uint64_t *events, uint64_t *kept,
                      uint64_t *errors)
{
    gen g;
    gen_init(&g);
    outfile o;
    int rc = out_open(&o, out_path);
    uint64_t sum = 0;
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        const sl_wbuf *ev = gen_next(&g);
        if (!ev) {
            rc = -1;
            break;
        }
        int r = filter_pred(ev->data, ev->len);
        if (r == 1) {
            ++*kept;
            sum += ev->len;
            rc = out_put(&o, ev->data, ev->len);
        } else if (r < 0) {
            ++*errors;
        }
    }
    if (out_close(&o) != 0)
        rc = -1;
    sink_value = sum;
    *events = g.n;
    gen_fini(&g);
    return rc;
}

/* The value at *p (a field read by a transform's plain path) written again. */
static int copy_value(sl_wbuf *w, const uint8_t **p, const uint8_t *end)
{
    const uint8_t *start = *p;
    sl_mp_val v;
    if (sl_mp_read(p, end, &v) != 0)
        return -1;
    switch (v.type) {
    case SL_MP_STR: return sl_mp_write_str(w, v.v.str.ptr, v.v.str.len);
    case SL_MP_FLOAT: return sl_mp_write_double(w, v.v.f);
    case SL_MP_UINT: return sl_mp_write_uint(w, v.v.u);
    case SL_MP_INT: return sl_mp_write_int(w, v.v.i);
    default: /* not in generated events: copy the bytes */
        *p = start;
        if (sl_mp_skip(p, end) != 0)
            return -1;
        return sl_wbuf_append(w, start, (size_t)(*p - start));
    }
}

/*
 * The transform of bench.py's scenario (e):
 *   fields: {orderId: data.orderId, customerId: data.customerId, amount: data.total,
 *            status: data.status, items: data.items}
 * Output {id, time, the five fields}: id and time copied as they are, the
 * fields read and written again. 1 built, 0 a field is missing (payments
 * have no customerId, total or items: the transform's eval error), -1 bad.
 */
static int transform_build(const uint8_t *ev, size_t len, sl_wbuf *w)
{
    static const struct {
        const char *out, *in;
    } fields[] = {{"orderId", "orderId"}, {"customerId", "customerId"}, {"amount", "total"},
                  {"status", "status"}, {"items", "items"}};
    const uint8_t *end = ev + len, *data = ev, *id = ev, *tm = ev, *at[5];
    if (sl_mp_map_find(&data, end, "data", 4) != 1)
        return 0;
    for (size_t i = 0; i < 5; i++) {
        at[i] = data;
        if (sl_mp_map_find(&at[i], end, fields[i].in, strlen(fields[i].in)) != 1)
            return 0;
    }
    int has_id = sl_mp_map_find(&id, end, "id", 2) == 1;
    int has_time = sl_mp_map_find(&tm, end, "time", 4) == 1;
    sl_wbuf_reset(w);
    int bad = sl_mp_write_map(w, (uint32_t)(5 + has_id + has_time));
    /* base attributes in input order: the generator writes id before time */
    if (has_id) {
        const uint8_t *s = id;
        bad |= KEY(w, "id") | sl_mp_skip(&s, end) | sl_wbuf_append(w, id, (size_t)(s - id));
    }
    if (has_time) {
        const uint8_t *s = tm;
        bad |= KEY(w, "time") | sl_mp_skip(&s, end) | sl_wbuf_append(w, tm, (size_t)(s - tm));
    }
    for (size_t i = 0; i < 5; i++)
        bad |= sl_mp_write_cstr(w, fields[i].out) | copy_value(w, &at[i], end);
    return bad ? -1 : 1;
}

/* transform N [OUT]: build N events, reshape each into a reused buffer. */
static int run_transform(uint64_t n, const char *out_path, uint64_t *events, uint64_t *built,
                         uint64_t *errors)
{
    gen g;
    gen_init(&g);
    outfile o;
    sl_wbuf w = {0};
    int rc = out_open(&o, out_path);
    uint64_t sum = 0;
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        const sl_wbuf *ev = gen_next(&g);
        int r = ev ? transform_build(ev->data, ev->len, &w) : -1;
        if (r < 0) {
            rc = -1;
        } else if (r == 0) {
            ++*errors;
        } else {
            ++*built;
            sum += w.len + w.data[w.len - 1];
            rc = out_put(&o, w.data, w.len);
        }
    }
    if (out_close(&o) != 0)
        rc = -1;
    sink_value = sum;
    *events = g.n;
    sl_wbuf_fini(&w);
    gen_fini(&g);
    return rc;
}

/* ------------------------------------------------------------ aggregate */

/*
 * The aggregate of bench.py's scenarios (f) and (g):
 *   source.generator (watermark: {max_out_of_order: 10s}) -> aggregate
 *     {windows: [{tumbling: 1m}], group_by: [[data.status]] (or [[data.customerId]]),
 *      where: has(data.total), compute: {n: count(), total: sum(data.total)}}
 * One open-addressing table (linear probing, power-of-two capacity, at most
 * half full) keyed by (window start, group value) holds count and sum. The
 * watermark is the largest event time seen minus 10 s, as the source's; when
 * it reaches the end of the oldest open window, every slot whose window has
 * ended is built into an output row {window: {start, end}, group: {name:
 * value}, n, total, time} (what the engine hands sink.null) and the rest are
 * put into a fresh table. An event whose window has already been flushed is
 * late and is counted apart (none are, with the generator's 6 s at most).
 * The end of the stream flushes everything.
 */
#define AGG_WINDOW_NS 60000000000ll      /* agg-status: 1-minute windows */
#define AGG_DAY_NS 86400000000000ll      /* agg-customer: one day, so 1M customers share a window */
#define AGG_OOO_NS 10000000000ll
#define AGG_KEY_MAX 32           /* group values are "cust-999999" at most */
#define AGG_CUSTOMERS 1000000    /* agg-customer: the generator's `customers` */

typedef struct agg_slot {
    int64_t start; /* window start; INT64_MIN: an empty slot */
    uint64_t hash;
    uint64_t count;
    double sum;
    uint8_t klen;
    char key[AGG_KEY_MAX];
} agg_slot;

typedef struct agg_table {
    agg_slot *slots;
    size_t cap, n; /* cap: a power of two */
} agg_table;

static uint64_t agg_hash(int64_t start, const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)start; /* FNV-1a, then a splitmix finish */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)key[i]) * 0x100000001b3ull;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

static int agg_table_init(agg_table *t, size_t cap)
{
    t->slots = malloc(cap * sizeof *t->slots);
    if (!t->slots)
        return -1;
    for (size_t i = 0; i < cap; i++)
        t->slots[i].start = INT64_MIN;
    t->cap = cap;
    t->n = 0;
    return 0;
}

/* The slot of (start, key), claimed (count 0) if it was not there. */
static agg_slot *agg_slot_of(agg_table *t, int64_t start, uint64_t hash, const char *key,
                             size_t len)
{
    size_t mask = t->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        agg_slot *s = &t->slots[i];
        if (s->start == INT64_MIN) {
            s->start = start;
            s->hash = hash;
            s->count = 0;
            s->sum = 0;
            s->klen = (uint8_t)len;
            memcpy(s->key, key, len);
            t->n++;
            return s;
        }
        if (s->hash == hash && s->start == start && s->klen == len && memcmp(s->key, key, len) == 0)
            return s;
    }
}

/* Move the slots of `from` for which keep(slot) into a fresh table of cap slots. */
static int agg_rebuild(agg_table *t, size_t cap, int64_t fired_before)
{
    agg_table nt;
    if (agg_table_init(&nt, cap) != 0)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        agg_slot *s = &t->slots[i];
        if (s->start == INT64_MIN || s->start < fired_before)
            continue;
        size_t mask = nt.cap - 1, j = s->hash & mask;
        while (nt.slots[j].start != INT64_MIN)
            j = (j + 1) & mask;
        nt.slots[j] = *s;
        nt.n++;
    }
    free(t->slots);
    *t = nt;
    return 0;
}

typedef struct agg_run {
    agg_table t;
    const char *group_name; /* "status" or "customerId" */
    int64_t max_time, next_fire;
    int64_t window_ns;
    uint64_t rows, late, sum;
    sl_wbuf row;
} agg_run;

/* Build the row of every slot whose window ends at or before wm; drop them. */
static int agg_flush(agg_run *a, int64_t wm)
{
    int64_t fired_before = INT64_MIN, oldest = INT64_MAX;
    for (size_t i = 0; i < a->t.cap; i++) {
        agg_slot *s = &a->t.slots[i];
        if (s->start == INT64_MIN)
            continue;
        if (s->start > wm - a->window_ns) { /* still open */
            if (s->start < oldest)
                oldest = s->start;
            continue;
        }
        sl_wbuf *w = &a->row;
        sl_wbuf_reset(w);
        int bad = sl_mp_write_map(w, 5);
        bad |= KEY(w, "window") | sl_mp_write_map(w, 2);
        bad |= KEY(w, "start") | sl_mp_write_timestamp(w, s->start);
        bad |= KEY(w, "end") | sl_mp_write_timestamp(w, s->start + a->window_ns);
        bad |= KEY(w, "group") | sl_mp_write_map(w, 1);
        bad |= sl_mp_write_cstr(w, a->group_name) | sl_mp_write_str(w, s->key, s->klen);
        bad |= KEY(w, "n") | sl_mp_write_uint(w, s->count);
        bad |= KEY(w, "total") | sl_mp_write_double(w, s->sum);
        bad |= KEY(w, "time") | sl_mp_write_timestamp(w, s->start + a->window_ns);
        if (bad)
            return -1;
        a->sum += w->len + w->data[w->len - 1];
        a->rows++;
        if (s->start + 1 > fired_before)
            fired_before = s->start + 1;
    }
    a->next_fire = oldest == INT64_MAX ? INT64_MAX : oldest + a->window_ns;
    if (fired_before == INT64_MIN)
        return 0;
    return agg_rebuild(&a->t, a->t.cap, fired_before);
}

/* One event: where has(data.total), group by data.<group_name>, count and sum. */
static int agg_event(agg_run *a, const uint8_t *ev, size_t len)
{
    const uint8_t *end = ev + len, *p = ev, *data = ev, *q;
    sl_mp_val v, tv, gv;
    int64_t t;
    if (sl_mp_map_find(&p, end, "time", 4) != 1 || sl_mp_read(&p, end, &tv) != 0 ||
        sl_mp_timestamp_ns(&tv, &t) != 0)
        return -1; /* every generated event has a time */
    if (sl_mp_map_find(&data, end, "data", 4) != 1)
        return 0;
    q = data;
    if (sl_mp_map_find(&q, end, "total", 5) != 1)
        return 0; /* a payment: where has(data.total) is false */
    if (sl_mp_read(&q, end, &v) != 0 || v.type != SL_MP_FLOAT)
        return -1;
    q = data;
    if (sl_mp_map_find(&q, end, a->group_name, strlen(a->group_name)) != 1 ||
        sl_mp_read(&q, end, &gv) != 0 || gv.type != SL_MP_STR || gv.v.str.len >= AGG_KEY_MAX)
        return -1;
    int64_t start = t - (((t % a->window_ns) + a->window_ns) % a->window_ns);
    int64_t wm = a->max_time == INT64_MIN ? INT64_MIN : a->max_time - AGG_OOO_NS;
    if (wm != INT64_MIN && start + a->window_ns <= wm) {
        a->late++;
    } else {
        const char *key = (const char *)gv.v.str.ptr;
        size_t klen = gv.v.str.len;
        if (2 * (a->t.n + 1) > a->t.cap && agg_rebuild(&a->t, 2 * a->t.cap, INT64_MIN) != 0)
            return -1;
        agg_slot *s = agg_slot_of(&a->t, start, agg_hash(start, key, klen), key, klen);
        s->count++;
        s->sum += v.v.f;
        if (start + a->window_ns < a->next_fire)
            a->next_fire = start + a->window_ns;
    }
    if (t > a->max_time) {
        a->max_time = t;
        if (t - AGG_OOO_NS >= a->next_fire)
            return agg_flush(a, t - AGG_OOO_NS);
    }
    return 0;
}

/* agg-status N / agg-customer N: build N events and aggregate them. */
static int run_agg(uint64_t n, int by_customer, uint64_t *events, uint64_t *rows)
{
    gen g;
    gen_init(&g);
    agg_run a = {.group_name = by_customer ? "customerId" : "status", .max_time = INT64_MIN,
                 .next_fire = INT64_MAX, .window_ns = by_customer ? AGG_DAY_NS : AGG_WINDOW_NS};
    if (by_customer)
        g.customers = AGG_CUSTOMERS;
    int rc = agg_table_init(&a.t, 1024);
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        const sl_wbuf *ev = gen_next(&g);
        rc = ev ? agg_event(&a, ev->data, ev->len) : -1;
    }
    if (rc == 0)
        rc = agg_flush(&a, INT64_MAX); /* the end of the stream: watermark +infinity */
    if (a.late)
        fprintf(stderr, "sluice-handloop: %" PRIu64 " late events\n", a.late);
    sink_value = a.sum;
    *events = g.n;
    *rows = a.rows;
    free(a.t.slots);
    sl_wbuf_fini(&a.row);
    gen_fini(&g);
    return rc;
}

/* ------------------------------------------------------------ dedup */

/*
 * bench.py's dedup scenario: source.generator (dup_frac 0.01) -> dedup {key:
 * id} -> sink.null. A plain open-addressing set of the ids seen (inline
 * keys, linear probing, at most half full): an id already in it is a
 * duplicate. No bloom filter, no time, no state store: the floor.
 */
#define DD_KEY_MAX 23

typedef struct dd_slot {
    uint64_t hash; /* 0: empty */
    uint8_t klen;
    char key[DD_KEY_MAX]; /* 32 bytes a slot */
} dd_slot;

static uint64_t bytes_hash(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return (h ^ (h >> 31)) | 1;
}

static int run_dedup(uint64_t n, uint64_t *events, uint64_t *dups)
{
    gen g;
    gen_init(&g);
    size_t cap = 1;
    while (cap < n + n / 4) /* at most 80% full: ids are unique but for the 1% re-sent */
        cap <<= 1;
    dd_slot *t = calloc(cap, sizeof *t);
    int rc = t ? 0 : -1;
    uint64_t passed = 0;
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        const sl_wbuf *ev = gen_next(&g);
        const uint8_t *p = ev ? ev->data : NULL;
        sl_mp_val v;
        if (!ev || sl_mp_map_find(&p, ev->data + ev->len, "id", 2) != 1 ||
            sl_mp_read(&p, ev->data + ev->len, &v) != 0 || v.type != SL_MP_STR ||
            v.v.str.len > DD_KEY_MAX) {
            rc = -1;
            break;
        }
        uint64_t h = bytes_hash(v.v.str.ptr, v.v.str.len);
        size_t j = h & (cap - 1);
        while (t[j].hash && !(t[j].hash == h && t[j].klen == v.v.str.len &&
                              memcmp(t[j].key, v.v.str.ptr, v.v.str.len) == 0))
            j = (j + 1) & (cap - 1);
        if (t[j].hash) {
            ++*dups;
            continue;
        }
        t[j].hash = h;
        t[j].klen = (uint8_t)v.v.str.len;
        memcpy(t[j].key, v.v.str.ptr, v.v.str.len);
        passed += ev->len;
    }
    sink_value = passed;
    *events = g.n;
    free(t);
    gen_fini(&g);
    return rc;
}

/* ------------------------------------------------------------ join */

/*
 * bench.py's join scenario: source.generator (watermark: {max_out_of_order:
 * 10s}) -> route {orders: order.*, payments: payment.processed} -> join {on:
 * data.orderId both sides, within: 90s, fields: {orderId, total, amount}} ->
 * sink.null. One open-addressing table by orderId whose slot holds up to
 * JL_PER_SIDE events of each side inline (time, value, id); an arriving
 * event pairs with the other side's events within 90 s and builds the row
 * {orderId, total, amount, id: "<left id>/<right id>", time} the engine
 * builds; slots are swept (table rebuilt) whenever the watermark (largest
 * time - 10 s) has moved 90 s, dropping events whose interval it passed.
 */
#define JL_WITHIN_NS 90000000000ll
#define JL_OOO_NS 10000000000ll
#define JL_PER_SIDE 4
#define JL_KEY_MAX 16
#define JL_ID_MAX 24

typedef struct jl_ev {
    int64_t t;
    double v;
    uint8_t idlen;
    char id[JL_ID_MAX];
} jl_ev;

typedef struct jl_slot {
    uint64_t hash; /* 0: empty */
    uint8_t klen, n[2];
    char key[JL_KEY_MAX];
    uint32_t ev[2][JL_PER_SIDE]; /* indices into the event ring */
} jl_slot;

typedef struct jl_table {
    jl_slot *s;
    size_t cap, n;
} jl_table;

/* Events by arrival, in a ring far larger than the ~100k within a sweep's reach. */
#define JL_RING (1u << 21)
static jl_ev *jl_ring;

static jl_slot *jl_find(jl_table *t, uint64_t h, const char *k, size_t kl)
{
    size_t j = h & (t->cap - 1);
    while (t->s[j].hash && !(t->s[j].hash == h && t->s[j].klen == kl &&
                             memcmp(t->s[j].key, k, kl) == 0))
        j = (j + 1) & (t->cap - 1);
    return &t->s[j];
}

/*
 * Rebuild into a table of cap slots keeping the events whose interval end >=
 * wm. The old table's memory is kept as the next rebuild's (no page faults
 * for a fresh allocation each sweep).
 */
static jl_slot *jl_spare;
static size_t jl_spare_cap;

static int jl_rebuild(jl_table *t, size_t cap, int64_t wm)
{
    jl_table nt = {NULL, cap, 0};
    if (jl_spare && jl_spare_cap == cap) {
        nt.s = jl_spare;
        memset(nt.s, 0, cap * sizeof *nt.s);
    } else {
        free(jl_spare);
        nt.s = calloc(cap, sizeof *nt.s);
    }
    jl_spare = NULL;
    if (!nt.s)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        jl_slot *o = &t->s[i];
        if (!o->hash)
            continue;
        jl_slot keep = *o;
        for (int side = 0; side < 2; side++) {
            keep.n[side] = 0;
            for (int e = 0; e < o->n[side]; e++)
                if (jl_ring[o->ev[side][e]].t + JL_WITHIN_NS >= wm)
                    keep.ev[side][keep.n[side]++] = o->ev[side][e];
        }
        if (!keep.n[0] && !keep.n[1])
            continue;
        *jl_find(&nt, keep.hash, keep.key, keep.klen) = keep;
        nt.n++;
    }
    jl_spare = t->s;
    jl_spare_cap = t->cap;
    *t = nt;
    return 0;
}

static int str_field(const uint8_t *m, const uint8_t *end, const char *k, sl_mp_val *v)
{
    const uint8_t *p = m;
    return sl_mp_map_find(&p, end, k, strlen(k)) == 1 && sl_mp_read(&p, end, v) == 0 ? 0 : -1;
}

static int run_join(uint64_t n, uint64_t *events, uint64_t *pairs)
{
    gen g;
    gen_init(&g);
    jl_table t = {calloc(1024, sizeof *t.s), 1024, 0};
    jl_ring = malloc(JL_RING * sizeof *jl_ring);
    uint32_t next = 0;
    sl_wbuf row = {0};
    int64_t max_time = INT64_MIN, swept = INT64_MIN;
    uint64_t sum = 0;
    int rc = t.s && jl_ring ? 0 : -1;
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        const sl_wbuf *ev = gen_next(&g);
        if (!ev) {
            rc = -1;
            break;
        }
        const uint8_t *end = ev->data + ev->len, *data = ev->data;
        sl_mp_val type, idv, tv, ov, vv;
        int64_t time;
        if (str_field(ev->data, end, "type", &type) || str_field(ev->data, end, "id", &idv) ||
            str_field(ev->data, end, "time", &tv) || sl_mp_timestamp_ns(&tv, &time) != 0 ||
            sl_mp_map_find(&data, end, "data", 4) != 1) {
            rc = -1;
            break;
        }
        int side;
        if (type.v.str.len > 6 && memcmp(type.v.str.ptr, "order.", 6) == 0)
            side = 0;
        else if (type.v.str.len == 17 && memcmp(type.v.str.ptr, "payment.processed", 17) == 0)
            side = 1;
        else
            continue;
        if (str_field(data, end, "orderId", &ov) || ov.v.str.len > JL_KEY_MAX ||
            str_field(data, end, side ? "amount" : "total", &vv) || vv.type != SL_MP_FLOAT ||
            idv.v.str.len > JL_ID_MAX) {
            rc = -1;
            break;
        }
        int64_t wm = max_time == INT64_MIN ? INT64_MIN : max_time - JL_OOO_NS;
        if (wm != INT64_MIN && time < wm)
            continue; /* late (none are: the generator is at most ~6 s out of order) */
        if (2 * (t.n + 1) > t.cap && jl_rebuild(&t, 2 * t.cap, wm) != 0) {
            rc = -1;
            break;
        }
        uint64_t h = bytes_hash(ov.v.str.ptr, ov.v.str.len);
        jl_slot *s = jl_find(&t, h, ov.v.str.ptr, ov.v.str.len);
        if (!s->hash) {
            s->hash = h;
            s->klen = (uint8_t)ov.v.str.len;
            memcpy(s->key, ov.v.str.ptr, ov.v.str.len);
            t.n++;
        }
        for (int e = 0; e < s->n[!side]; e++) {
            const jl_ev *o = &jl_ring[s->ev[!side][e]];
            if (o->t < time - JL_WITHIN_NS || o->t > time + JL_WITHIN_NS)
                continue;
            const jl_ev *l = side ? o : NULL;
            double total = side ? o->v : vv.v.f, amount = side ? vv.v.f : o->v;
            sl_wbuf_reset(&row);
            char id[2 * JL_ID_MAX + 1];
            const char *lid = l ? l->id : (const char *)idv.v.str.ptr;
            const char *rid = l ? (const char *)idv.v.str.ptr : o->id;
            size_t ll = l ? l->idlen : idv.v.str.len, rl = l ? idv.v.str.len : o->idlen;
            memcpy(id, lid, ll);
            id[ll] = '/';
            memcpy(id + ll + 1, rid, rl);
            size_t idl = ll + 1 + rl;
            if (sl_mp_write_map(&row, 5) || sl_mp_write_cstr(&row, "orderId") ||
                sl_mp_write_str(&row, s->key, s->klen) || sl_mp_write_cstr(&row, "total") ||
                sl_mp_write_double(&row, total) || sl_mp_write_cstr(&row, "amount") ||
                sl_mp_write_double(&row, amount) || sl_mp_write_cstr(&row, "id") ||
                sl_mp_write_str(&row, id, idl) || sl_mp_write_cstr(&row, "time") ||
                sl_mp_write_timestamp(&row, o->t > time ? o->t : time)) {
                rc = -1;
                break;
            }
            sum += row.len;
            ++*pairs;
        }
        if (s->n[side] == JL_PER_SIDE) {
            fprintf(stderr, "sluice-handloop: more than %d events of one key\n", JL_PER_SIDE);
            rc = -1;
            break;
        }
        s->ev[side][s->n[side]++] = next;
        jl_ev *me = &jl_ring[next];
        next = (next + 1) & (JL_RING - 1);
        me->t = time;
        me->v = vv.v.f;
        me->idlen = (uint8_t)idv.v.str.len;
        memcpy(me->id, idv.v.str.ptr, idv.v.str.len);
        if (time > max_time) {
            max_time = time;
            if (swept == INT64_MIN)
                swept = max_time;
            if (max_time - swept > JL_WITHIN_NS) { /* sweep what the watermark passed */
                swept = max_time;
                rc = jl_rebuild(&t, t.cap, max_time - JL_OOO_NS);
            }
        }
    }
    sink_value = sum;
    *events = g.n;
    free(t.s);
    free(jl_spare);
    free(jl_ring);
    sl_wbuf_fini(&row);
    gen_fini(&g);
    return rc;
}

/* ----------------------------------------------------------------- main */

static const char usage[] =
    "usage: sluice-handloop gen N\n"
    "       sluice-handloop chain N K\n"
    "       sluice-handloop file IN OUT\n"
    "       sluice-handloop filter N [OUT]\n"
    "       sluice-handloop transform N [OUT]\n"
    "       sluice-handloop agg-status N\n"
    "       sluice-handloop agg-customer N\n"
    "       sluice-handloop dedup N\n"
    "       sluice-handloop join N\n"
    "Runs one benchmark scenario as a plain C loop; prints \"EVENTS SECONDS\"\n"
    "(filter: \"EVENTS SECONDS KEPT ERRORS\", transform: \"EVENTS SECONDS BUILT ERRORS\",\n"
    "agg-*: \"EVENTS SECONDS ROWS\", dedup: \"EVENTS SECONDS DUPLICATES\", join:\n"
    "\"EVENTS SECONDS PAIRS\").\n";

/* A positive decimal count, or 0 if arg is not one. */
static uint64_t parse_count(const char *arg)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-')
        return 0;
    return (uint64_t)v;
}

int main(int argc, char **argv)
{
    uint64_t events = 0, n, k, out = 0, errors = 0;
    int rc, counts = 0, agg_rows = 0;
    double t0 = now_s();
    if (argc == 3 && strcmp(argv[1], "gen") == 0 && (n = parse_count(argv[2])) > 0) {
        rc = run_gen(n, &events);
    } else if (argc == 4 && strcmp(argv[1], "chain") == 0 && (n = parse_count(argv[2])) > 0 &&
               (k = parse_count(argv[3])) > 0) {
        rc = run_chain(n, k, &events);
    } else if (argc == 4 && strcmp(argv[1], "file") == 0) {
        rc = run_file(argv[2], argv[3], &events);
    } else if ((argc == 3 || argc == 4) && strcmp(argv[1], "filter") == 0 &&
               (n = parse_count(argv[2])) > 0) {
        rc = run_filter(n, argc == 4 ? argv[3] : NULL, &events, &out, &errors);
        counts = 1;
    } else if ((argc == 3 || argc == 4) && strcmp(argv[1], "transform") == 0 &&
               (n = parse_count(argv[2])) > 0) {
        rc = run_transform(n, argc == 4 ? argv[3] : NULL, &events, &out, &errors);
        counts = 1;
    } else if (argc == 3 &&
               (strcmp(argv[1], "agg-status") == 0 || strcmp(argv[1], "agg-customer") == 0) &&
               (n = parse_count(argv[2])) > 0) {
        rc = run_agg(n, strcmp(argv[1], "agg-customer") == 0, &events, &out);
        agg_rows = 1;
    } else if (argc == 3 && strcmp(argv[1], "dedup") == 0 && (n = parse_count(argv[2])) > 0) {
        rc = run_dedup(n, &events, &out);
        agg_rows = 1;
    } else if (argc == 3 && strcmp(argv[1], "join") == 0 && (n = parse_count(argv[2])) > 0) {
        rc = run_join(n, &events, &out);
        agg_rows = 1;
    } else {
        fputs(usage, stderr);
        return 2;
    }
    double secs = now_s() - t0;
    if (rc != 0) {
        if (strcmp(argv[1], "file") != 0) /* file reports its own errors */
            fprintf(stderr, "sluice-handloop: %s: out of memory or a write error\n", argv[1]);
        return 1;
    }
    if (counts)
        printf("%" PRIu64 " %.6f %" PRIu64 " %" PRIu64 "\n", events, secs, out, errors);
    else if (agg_rows)
        printf("%" PRIu64 " %.6f %" PRIu64 "\n", events, secs, out);
    else
        printf("%" PRIu64 " %.6f\n", events, secs);
    return 0;
}
