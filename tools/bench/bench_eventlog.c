/*
 * bench_eventlog.c - `sluice-bench-eventlog`: durable appends to the event
 * log with group commit, reads, and a plain loop doing the same durable work
 * (docs/eventlog.md records the numbers). Not a test: it prints and asserts
 * nothing.
 *
 *   sluice-bench-eventlog [--dir DIR] [--events N] [--seconds S]
 *
 * Events are ~200-byte order events shaped like shared/bench/gen_events.py's
 * (id evt-%010d, type, source, time as a msgpack timestamp, data with
 * orderId, customerId, total, status, items), built once before timing.
 * Each append scenario opens a fresh log in DIR (default: a new directory
 * under /tmp), runs T appender threads that each call sl_eventlog_append
 * (returns durable) with B events per call, until the events run out or S
 * seconds pass, and prints events/s, fsyncs/s and events per fsync: the
 * median of three runs, with the slowest and fastest (a shared machine's disk
 * varies a lot from one run to the next).
 *
 * The hand loop beside each row does the same durable work without a log:
 * T threads each write B length-prefixed events to one O_APPEND file and
 * fdatasync after every write (no index, no sharing of syncs between
 * threads beyond what the kernel does); the ratio is log / loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "eventlog.h"
#include "sluice/msgpack.h"

#define T0_NS 1767225600000000000ll

static const char *const STATUSES[] = {"PENDING", "PAID", "SHIPPED", "COMPLETED", "CANCELLED"};

typedef struct pool {
    sl_wbuf buf;
    size_t *ends;
    size_t n;
} pool;

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void build(pool *p, size_t n)
{
    char s[64];
    p->ends = malloc(n * sizeof *p->ends);
    for (size_t i = 0; i < n; i++) {
        sl_wbuf *b = &p->buf;
        int st = (int)(next_rand() % 5);
        sl_mp_write_map(b, 5);
        sl_mp_write_cstr(b, "id");
        snprintf(s, sizeof s, "evt-%010zu", i);
        sl_mp_write_cstr(b, s);
        sl_mp_write_cstr(b, "type");
        sl_mp_write_cstr(b, st == 3 ? "order.completed" : st == 0 ? "order.created" : "order.updated");
        sl_mp_write_cstr(b, "source");
        sl_mp_write_cstr(b, "order-service");
        sl_mp_write_cstr(b, "time");
        sl_mp_write_timestamp(b, T0_NS + (int64_t)i * 1000000);
        sl_mp_write_cstr(b, "data");
        sl_mp_write_map(b, 5);
        sl_mp_write_cstr(b, "orderId");
        snprintf(s, sizeof s, "o-%08zu", i + 1);
        sl_mp_write_cstr(b, s);
        sl_mp_write_cstr(b, "customerId");
        snprintf(s, sizeof s, "cust-%d", (int)(next_rand() % 1000));
        sl_mp_write_cstr(b, s);
        sl_mp_write_cstr(b, "total");
        sl_mp_write_double(b, (double)(next_rand() % 49900 + 100) / 100.0);
        sl_mp_write_cstr(b, "status");
        sl_mp_write_cstr(b, STATUSES[st]);
        sl_mp_write_cstr(b, "items");
        sl_mp_write_uint(b, next_rand() % 8 + 1);
        p->ends[i] = b->len;
    }
    p->n = n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char p[4200];
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

/* ------------------------------------------------------------ appenders */

typedef struct shared_run {
    const pool *p;
    sl_eventlog *log;     /* NULL: the hand loop */
    int fd;
    size_t batch;
    atomic_size_t next;   /* next event index to take */
    double deadline;
    atomic_int failed;
} shared_run;

static void *appender(void *arg)
{
    shared_run *r = arg;
    const pool *p = r->p;
    const uint8_t **evs = malloc(r->batch * sizeof *evs);
    size_t *lens = malloc(r->batch * sizeof *lens);
    sl_eventlog_result *res = malloc(r->batch * sizeof *res);
    uint8_t *flat = malloc(r->batch * 512);
    for (;;) {
        if (now_s() > r->deadline)
            break;
        size_t i0 = atomic_fetch_add(&r->next, r->batch);
        if (i0 + r->batch > p->n)
            break;
        size_t fl = 0;
        for (size_t k = 0; k < r->batch; k++) {
            size_t s = i0 + k ? p->ends[i0 + k - 1] : 0;
            evs[k] = p->buf.data + s;
            lens[k] = p->ends[i0 + k] - s;
            if (!r->log) { /* the loop's format: u32 length, bytes */
                uint32_t l = (uint32_t)lens[k];
                memcpy(flat + fl, &l, 4);
                memcpy(flat + fl + 4, evs[k], lens[k]);
                fl += 4 + lens[k];
            }
        }
        if (r->log) {
            if (sl_eventlog_append(r->log, evs, lens, r->batch, res) != (int)r->batch)
                atomic_store(&r->failed, 1);
        } else if (write(r->fd, flat, fl) != (ssize_t)fl || fdatasync(r->fd) != 0) {
            atomic_store(&r->failed, 1);
        }
    }
    free(evs);
    free(lens);
    free(res);
    free(flat);
    return NULL;
}

typedef struct result {
    size_t events;
    double secs;
    uint64_t fsyncs, commits;
} result;

/* One timed run: T threads, B per call, into a log (ordered: its sync mode) or the loop. */
static int run(const pool *p, const char *dir, int threads, size_t batch, int use_log, int ordered,
               double seconds, result *out)
{
    shared_run r = {.p = p, .batch = batch, .fd = -1};
    char err[512], file[4200];
    rm_dir(dir);
    if (use_log) {
        sl_eventlog_opts o = {.create = 1, .ordered_sync = ordered};
        if (sl_eventlog_open(dir, &o, &r.log, err, sizeof err) != 0) {
            fprintf(stderr, "bench: %s\n", err);
            return -1;
        }
    } else {
        mkdir(dir, 0777);
        snprintf(file, sizeof file, "%s/flat.log", dir);
        if ((r.fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644)) < 0) {
            perror("bench: open");
            return -1;
        }
    }
    pthread_t th[16];
    double t0 = now_s();
    r.deadline = t0 + seconds;
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, appender, &r);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    out->secs = now_s() - t0;
    size_t taken = atomic_load(&r.next);
    out->events = 0;
    out->fsyncs = out->commits = 0;
    if (r.log) {
        sl_eventlog_stats s;
        sl_eventlog_stats_get(r.log, &s);
        out->events = s.appends;
        out->fsyncs = s.fsyncs;
        out->commits = s.commits;
        sl_eventlog_close(&r.log);
    } else {
        /* every call that did not overrun the pool wrote one batch */
        size_t calls = taken / batch;
        size_t full = p->n / batch;
        out->events = (calls < full ? calls : full) * batch;
        out->fsyncs = out->events / batch;
        out->commits = out->fsyncs;
        close(r.fd);
    }
    if (atomic_load(&r.failed)) {
        fprintf(stderr, "bench: an append failed\n");
        return -1;
    }
    return 0;
}

#define REPS 3

static int by_rate(const void *a, const void *b)
{
    const result *x = a, *y = b;
    double rx = (double)x->events / x->secs, ry = (double)y->events / y->secs;
    return (rx > ry) - (rx < ry);
}

/* "min..max" of sorted results (static buffer). */
static const char *spread(const result *r)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%.0f..%.0f", (double)r[0].events / r[0].secs,
             (double)r[REPS - 1].events / r[REPS - 1].secs);
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%*s", (int)(19 - strlen(buf)), "");
    return buf;
}

/* ------------------------------------------------------------ reading */

static void read_all(const char *dir)
{
    sl_eventlog *log;
    char err[512];
    if (sl_eventlog_open(dir, NULL, &log, err, sizeof err) != 0) {
        fprintf(stderr, "bench: %s\n", err);
        return;
    }
    for (int pass = 0; pass < 2; pass++) { /* the first pass warms the page cache */
        sl_eventlog_reader *r;
        sl_eventlog_event evs[1024];
        sl_eventlog_reader_open(log, 0, &r);
        double t0 = now_s();
        uint64_t n = 0, bytes = 0;
        int k;
        while ((k = sl_eventlog_reader_next(r, evs, 1024)) > 0)
            for (int i = 0; i < k; i++) {
                n++;
                bytes += evs[i].len + evs[i].data[evs[i].len - 1]; /* touch each event */
            }
        double secs = now_s() - t0;
        sl_eventlog_reader_close(&r);
        if (pass == 1)
            printf("read (reader, 1024 per call)       %9" PRIu64 " events  %6.2f s  %10.0f events/s"
                   "  (%.0f MB/s)\n", n, secs, (double)n / secs, (double)bytes / secs / 1e6);
    }
    sl_eventlog_close(&log);
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    size_t n = 2000000;
    double seconds = 1.5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: sluice-bench-eventlog [--dir DIR] [--events N] [--seconds S]\n");
            return 2;
        }
    }
    char tmp[64] = "/tmp/sluice-bench-eventlog-XXXXXX", logdir[4200];
    if (!dir && !(dir = mkdtemp(tmp))) {
        perror("bench: mkdtemp");
        return 1;
    }
    snprintf(logdir, sizeof logdir, "%s/log", dir);
    pool p = {{0}, NULL, 0};
    build(&p, n);
    printf("events: %zu built, %.0f bytes each on average; up to %.1f s per row; dir %s\n\n",
           p.n, (double)p.buf.len / (double)p.n, seconds, dir);
    printf("%-34s %9s %7s %11s %9s %8s  %-19s  %11s %6s\n", "durable append (median of 3)",
           "events", "secs", "events/s", "fsyncs/s", "ev/fsync", "events/s min..max", "loop ev/s",
           "ratio");
    static const int threads[] = {1, 4};
    static const size_t batches[] = {1, 100, 1024};
    for (int ordered = 0; ordered < 2; ordered++)
        for (size_t ti = 0; ti < 2; ti++)
            for (size_t bi = 0; bi < 3; bi++) {
                if (ordered && batches[bi] != 1024 && !(batches[bi] == 1 && threads[ti] == 4))
                    continue; /* the ordered mode: the rows that show its cost */
                /* the disk of a shared machine varies run to run: interleave the log and the
                 * loop, REPS times each, and print the medians */
                result lr[REPS], hr[REPS];
                for (int k = 0; k < REPS; k++) {
                    if (run(&p, logdir, threads[ti], batches[bi], 1, ordered, seconds, &lr[k]) != 0)
                        return 1;
                    if (!ordered &&
                        run(&p, logdir, threads[ti], batches[bi], 0, 0, seconds, &hr[k]) != 0)
                        return 1;
                }
                qsort(lr, REPS, sizeof *lr, by_rate);
                char name[64];
                snprintf(name, sizeof name, "%s%d thread%s, batch %zu", ordered ? "ordered: " : "",
                         threads[ti], threads[ti] > 1 ? "s" : "", batches[bi]);
                const result *m = &lr[REPS / 2];
                double ev = (double)m->events / m->secs;
                printf("%-34s %9zu %7.2f %11.0f %9.0f %8.1f  %s", name, m->events, m->secs, ev,
                       (double)m->fsyncs / m->secs,
                       (double)m->events / (double)(m->fsyncs ? m->fsyncs : 1),
                       spread(lr));
                if (!ordered) {
                    qsort(hr, REPS, sizeof *hr, by_rate);
                    double hev = (double)hr[REPS / 2].events / hr[REPS / 2].secs;
                    printf("  %11.0f %6.2f", hev, ev / hev);
                }
                printf("\n");
                fflush(stdout);
            }
    /* a full log to read: every event of the pool */
    result lr;
    if (run(&p, logdir, 1, 1024, 1, 0, 1e9, &lr) != 0)
        return 1;
    printf("\n");
    read_all(logdir);
    rm_dir(logdir);
    if (dir == tmp)
        rmdir(tmp);
    sl_wbuf_fini(&p.buf);
    free(p.ends);
    return 0;
}
