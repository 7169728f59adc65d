/*
 * handloop.c - `sluice-handloop`: each benchmark scenario as a plain C loop,
 * the yardstick tools/bench/bench.py prints beside the engine's figures.
 *
 *   sluice-handloop gen N          build N generator events, count them
 *   sluice-handloop chain N K      ... and copy each through K batch buffers
 *   sluice-handloop file IN OUT    JSON lines -> msgpack -> JSON lines, fsync
 *
 * Prints "EVENTS SECONDS" on stdout (its own monotonic time, start to end of
 * the work); bench.py times the whole process from outside, as it does the
 * engine, and uses these numbers only as a cross-check.
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
    size_t cn = padded(cust, "cust-", below(g, CUSTOMERS), 1);
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

/* ----------------------------------------------------------------- main */

static const char usage[] =
    "usage: sluice-handloop gen N\n"
    "       sluice-handloop chain N K\n"
    "       sluice-handloop file IN OUT\n"
    "Runs one benchmark scenario as a plain C loop; prints \"EVENTS SECONDS\".\n";

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
    uint64_t events = 0, n, k;
    int rc;
    double t0 = now_s();
    if (argc == 3 && strcmp(argv[1], "gen") == 0 && (n = parse_count(argv[2])) > 0) {
        rc = run_gen(n, &events);
    } else if (argc == 4 && strcmp(argv[1], "chain") == 0 && (n = parse_count(argv[2])) > 0 &&
               (k = parse_count(argv[3])) > 0) {
        rc = run_chain(n, k, &events);
    } else if (argc == 4 && strcmp(argv[1], "file") == 0) {
        rc = run_file(argv[2], argv[3], &events);
    } else {
        fputs(usage, stderr);
        return 2;
    }
    double secs = now_s() - t0;
    if (rc != 0) {
        if (argv[1][0] != 'f') /* file reports its own errors */
            fprintf(stderr, "sluice-handloop: out of memory\n");
        return 1;
    }
    printf("%" PRIu64 " %.6f\n", events, secs);
    return 0;
}
