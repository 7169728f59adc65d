/*
 * test_eventlog.c - the durable event log (engine/eventlog.h).
 *
 * Expectations: offsets are dense from 0 and events read back byte for byte
 * in offset order; an id already stored (in an earlier call or earlier in the
 * same call) is skipped and reported with the stored offset; events without
 * a string id, not maps, or with a bad time are refused with a reason and
 * take no offset; get by id copies the stored event; a query by type(s) and
 * time range returns exactly the matching events ordered by (time, offset),
 * ascending or descending, and paging with limit and a cursor returns each
 * once; retention by append age and by stored bytes removes the oldest events
 * and their index entries (ids become new again, readers see the gap);
 * a reader follows appends made by another thread; four threads appending one
 * event per call share fsyncs and every append is there after a reopen;
 * another process appends and this one reads; a log persists across close and
 * reopen; a missing, non-log or corrupt directory is refused with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eventlog.h"

#define T0 1767225600000000000ll /* 2026-01-01T00:00:00Z in ns */
#define SEC 1000000000ll

/* ------------------------------------------------------------ helpers */

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

static char tmp_dir[64];

static int setup(void **st)
{
    strcpy(tmp_dir, "/tmp/sluice-eventlog-XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown(void **st)
{
    rm_dir(tmp_dir);
    return 0;
}

static sl_eventlog *open_log(const sl_eventlog_opts *o)
{
    sl_eventlog_opts d = {.create = 1};
    sl_eventlog *log = NULL;
    char err[256];
    int rc = sl_eventlog_open(tmp_dir, o ? o : &d, &log, err, sizeof err);
    if (rc != 0)
        fail_msg("open: %s", err);
    return log;
}

/* {"id": id, "type": type (if any), "time": t (timestamp, if t != 0), "n": n} */
static void make_ev(sl_wbuf *b, const char *id, const char *type, int64_t t, int64_t n)
{
    sl_mp_write_map(b, 2 + (type != NULL) + (t != 0));
    sl_mp_write_cstr(b, "id");
    sl_mp_write_cstr(b, id);
    if (type) {
        sl_mp_write_cstr(b, "type");
        sl_mp_write_cstr(b, type);
    }
    if (t) {
        sl_mp_write_cstr(b, "time");
        sl_mp_write_timestamp(b, t);
    }
    sl_mp_write_cstr(b, "n");
    sl_mp_write_int(b, n);
}

/* A batch of events built back to back, with pointer and length arrays. */
typedef struct batch {
    sl_wbuf buf;
    size_t ends[4096];
    const uint8_t *evs[4096];
    size_t lens[4096];
    sl_eventlog_result res[4096];
    size_t n;
} batch;

static void add(batch *b, const char *id, const char *type, int64_t t, int64_t n)
{
    make_ev(&b->buf, id, type, t, n);
    b->ends[b->n++] = b->buf.len;
}

static void add_raw(batch *b, const void *bytes, size_t len)
{
    sl_wbuf_append(&b->buf, bytes, len);
    b->ends[b->n++] = b->buf.len;
}
#define ADD_RAW(b, lit) add_raw(b, lit, sizeof lit - 1)

/* Append everything in b durably; returns what append returned. */
static int flush(sl_eventlog *log, batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        size_t s = i ? b->ends[i - 1] : 0;
        b->evs[i] = b->buf.data + s;
        b->lens[i] = b->ends[i] - s;
    }
    return sl_eventlog_append(log, b->evs, b->lens, b->n, b->res);
}

static void reset(batch *b)
{
    sl_wbuf_reset(&b->buf);
    b->n = 0;
}

/* The "n" of an event. */
static int64_t ev_n(const sl_eventlog_event *ev)
{
    const uint8_t *p = ev->data;
    sl_mp_val v;
    assert_int_equal(sl_mp_map_find(&p, ev->data + ev->len, "n", 1), 1);
    assert_int_equal(sl_mp_read(&p, ev->data + ev->len, &v), 0);
    return v.type == SL_MP_INT ? v.v.i : (int64_t)v.v.u;
}

/* ------------------------------------------------------------ append and read */

static void test_append_and_read(void **st)
{
    sl_eventlog *log = open_log(NULL);
    batch *b = calloc(1, sizeof *b);
    char id[32];
    for (int call = 0; call < 3; call++) {
        reset(b);
        for (int i = 0; i < 4; i++) {
            snprintf(id, sizeof id, "e%d", call * 4 + i);
            add(b, id, "t.x", T0 + (call * 4 + i) * SEC, call * 4 + i);
        }
        assert_int_equal(flush(log, b), 4);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(b->res[i].status, SL_EVENTLOG_APPENDED);
            assert_int_equal(b->res[i].offset, (uint64_t)(call * 4 + i)); /* dense from 0 */
        }
    }
    uint64_t first, next;
    assert_int_equal(sl_eventlog_bounds(log, &first, &next), 0);
    assert_int_equal(first, 0);
    assert_int_equal(next, 12);

    /* read back byte for byte, in offset order, 5 at a time */
    sl_eventlog_reader *r;
    assert_int_equal(sl_eventlog_reader_open(log, 0, &r), 0);
    sl_eventlog_event evs[5];
    sl_wbuf want = {0};
    int total = 0, n;
    while ((n = sl_eventlog_reader_next(r, evs, 5)) > 0) {
        for (int i = 0; i < n; i++, total++) {
            assert_int_equal(evs[i].offset, (uint64_t)total);
            assert_int_equal(evs[i].time_ns, T0 + total * SEC);
            assert_true(evs[i].append_ns > T0); /* the wall clock, after 2026 */
            sl_wbuf_reset(&want);
            snprintf(id, sizeof id, "e%d", total);
            make_ev(&want, id, "t.x", T0 + total * SEC, total);
            assert_int_equal(evs[i].len, want.len);
            assert_memory_equal(evs[i].data, want.data, want.len);
        }
    }
    assert_int_equal(n, 0);
    assert_int_equal(total, 12);
    assert_int_equal(sl_eventlog_reader_offset(r), 12);
    /* seek back into the middle */
    sl_eventlog_reader_seek(r, 7);
    assert_int_equal(sl_eventlog_reader_next(r, evs, 2), 2);
    assert_int_equal(evs[0].offset, 7);
    assert_int_equal(ev_n(&evs[1]), 8);
    sl_eventlog_reader_close(&r);
    assert_null(r);

    /* an event without time gets the append time */
    reset(b);
    add(b, "no-time", NULL, 0, 99);
    assert_int_equal(flush(log, b), 1);
    assert_int_equal(sl_eventlog_reader_open(log, 12, &r), 0);
    assert_int_equal(sl_eventlog_reader_next(r, evs, 5), 1);
    assert_int_equal(evs[0].time_ns, evs[0].append_ns);
    sl_eventlog_reader_close(&r);

    sl_wbuf_fini(&want);
    sl_wbuf_fini(&b->buf);
    free(b);
    sl_eventlog_close(&log);
    assert_null(log);
}

static void test_duplicates_are_idempotent(void **st)
{
    sl_eventlog *log = open_log(NULL);
    batch *b = calloc(1, sizeof *b);
    add(b, "a", NULL, T0, 1);
    add(b, "b", NULL, T0, 2);
    assert_int_equal(flush(log, b), 2);
    reset(b);
    add(b, "b", NULL, T0, 3); /* stored earlier: skipped, its offset reported */
    add(b, "c", NULL, T0, 4);
    add(b, "c", NULL, T0, 5); /* earlier in the same call */
    add(b, "a", NULL, T0, 6);
    assert_int_equal(flush(log, b), 1);
    assert_int_equal(b->res[0].status, SL_EVENTLOG_DUPLICATE);
    assert_int_equal(b->res[0].offset, 1);
    assert_int_equal(b->res[1].status, SL_EVENTLOG_APPENDED);
    assert_int_equal(b->res[1].offset, 2);
    assert_int_equal(b->res[2].status, SL_EVENTLOG_DUPLICATE);
    assert_int_equal(b->res[2].offset, 2);
    assert_int_equal(b->res[3].status, SL_EVENTLOG_DUPLICATE);
    assert_int_equal(b->res[3].offset, 0);
    /* the first stored version stays */
    sl_wbuf copy = {0};
    sl_eventlog_event ev;
    assert_int_equal(sl_eventlog_get(log, "c", 1, &ev, &copy), 0);
    assert_int_equal(ev_n(&ev), 4);
    sl_eventlog_stats s;
    assert_int_equal(sl_eventlog_stats_get(log, &s), 0);
    assert_int_equal(s.count, 3);
    assert_int_equal(s.next_offset, 3);
    assert_int_equal(s.appends, 3);
    assert_int_equal(s.duplicates, 3);
    sl_wbuf_fini(&copy);
    sl_wbuf_fini(&b->buf);
    free(b);
    sl_eventlog_close(&log);
}

static void test_invalid_events(void **st)
{
    sl_eventlog *log = open_log(NULL);
    batch *b = calloc(1, sizeof *b);
    sl_wbuf w = {0};
    add(b, "ok1", NULL, 0, 1);
    ADD_RAW(b, "\x93\x01\x02\x03");                 /* an array */
    ADD_RAW(b, "\x81\xa1x\x01");                    /* {x: 1}: no id */
    ADD_RAW(b, "\x81\xa2id\x05");                   /* {id: 5} */
    ADD_RAW(b, "\x81\xa2id\xa0");                   /* {id: ""} */
    ADD_RAW(b, "\x82\xa2id\xa1z\xa4time\xa3" "bad"); /* time: "bad" */
    ADD_RAW(b, "\x82\xa2id\xa1y\xa4type\x07");     /* type: 7 */
    ADD_RAW(b, "\x81\xa2id\xa1q\x00");              /* a byte after the map */
    char longid[600];
    memset(longid, 'L', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    add(b, longid, NULL, 0, 0);
    sl_mp_write_map(&w, 2); /* time as RFC 3339 text and as integer ns are accepted */
    sl_mp_write_cstr(&w, "id");
    sl_mp_write_cstr(&w, "txt");
    sl_mp_write_cstr(&w, "time");
    sl_mp_write_cstr(&w, "2026-01-01T00:00:01Z");
    add_raw(b, w.data, w.len);
    sl_wbuf_reset(&w);
    sl_mp_write_map(&w, 2);
    sl_mp_write_cstr(&w, "id");
    sl_mp_write_cstr(&w, "int");
    sl_mp_write_cstr(&w, "time");
    sl_mp_write_int(&w, T0 + 2 * SEC);
    add_raw(b, w.data, w.len);
    assert_int_equal(flush(log, b), 3);
    static const int want[] = {0, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0};
    for (size_t i = 0; i < b->n; i++) {
        assert_int_equal(b->res[i].status, want[i]);
        if (want[i] == SL_EVENTLOG_INVALID)
            assert_non_null(b->res[i].why);
    }
    assert_string_equal(b->res[1].why, "not a msgpack map");
    assert_string_equal(b->res[2].why, "no 'id'");
    assert_string_equal(b->res[3].why, "'id' is not a string");
    assert_int_equal(b->res[9].offset, 1); /* refused events take no offset */
    assert_int_equal(b->res[10].offset, 2);
    sl_eventlog_reader *r;
    sl_eventlog_event evs[4];
    assert_int_equal(sl_eventlog_reader_open(log, 0, &r), 0);
    assert_int_equal(sl_eventlog_reader_next(r, evs, 4), 3);
    assert_int_equal(evs[1].time_ns, T0 + SEC);
    assert_int_equal(evs[2].time_ns, T0 + 2 * SEC);
    sl_eventlog_reader_close(&r);
    sl_wbuf_fini(&w);
    sl_wbuf_fini(&b->buf);
    free(b);
    sl_eventlog_close(&log);
}

static void test_get_by_id(void **st)
{
    sl_eventlog *log = open_log(NULL);
    batch *b = calloc(1, sizeof *b);
    char id[32];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        add(b, id, "t", T0 + i, i);
    }
    assert_int_equal(flush(log, b), 100);
    sl_wbuf copy = {0}, want = {0};
    sl_eventlog_event ev;
    assert_int_equal(sl_eventlog_get(log, "id-42", 5, &ev, &copy), 0);
    assert_int_equal(ev.offset, 42);
    assert_int_equal(ev.time_ns, T0 + 42);
    make_ev(&want, "id-42", "t", T0 + 42, 42);
    assert_int_equal(ev.len, want.len);
    assert_memory_equal(ev.data, want.data, want.len);
    assert_ptr_equal(ev.data, copy.data); /* a copy: valid after the call */
    assert_int_equal(sl_eventlog_get(log, "id-100", 6, &ev, &copy), 1);
    assert_int_equal(sl_eventlog_get(log, "", 0, &ev, &copy), 1);
    sl_wbuf_fini(&copy);
    sl_wbuf_fini(&want);
    sl_wbuf_fini(&b->buf);
    free(b);
    sl_eventlog_close(&log);
}

/* ------------------------------------------------------------ queries */

typedef struct got {
    uint64_t off[512];
    int64_t t[512];
    size_t n;
} got;

static int collect(void *arg, const sl_eventlog_event *ev)
{
    got *g = arg;
    g->off[g->n] = ev->offset;
    g->t[g->n++] = ev->time_ns;
    return 0;
}

/* The events of the query computed by brute force over the model (types[i], times[i]). */
static size_t model(const char *const *types, const int64_t *times, size_t n,
                    const sl_eventlog_query *q, uint64_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int type_ok = q->n_types == 0;
        for (size_t j = 0; j < q->n_types; j++)
            type_ok |= types[i] && strcmp(types[i], q->types[j]) == 0;
        if (type_ok && times[i] >= q->from_ns && times[i] < q->to_ns)
            out[k++] = i;
    }
    /* sort by (time, offset) */
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && (times[out[j]] < times[out[j - 1]] ||
                                     (times[out[j]] == times[out[j - 1]] && out[j] < out[j - 1]));
             j--) {
            uint64_t x = out[j];
            out[j] = out[j - 1];
            out[j - 1] = x;
        }
    if (q->desc)
        for (size_t i = 0; i < k / 2; i++) {
            uint64_t x = out[i];
            out[i] = out[k - 1 - i];
            out[k - 1 - i] = x;
        }
    return k;
}

static void test_query_by_type_and_time(void **st)
{
    sl_eventlog *log = open_log(NULL);
    batch *b = calloc(1, sizeof *b);
    enum { N = 300 };
    static const char *const names[] = {"order.created", "order.paid", "payment", NULL};
    const char *types[N];
    int64_t times[N];
    char id[32];
    unsigned x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        types[i] = names[(x >> 16) % 4];               /* some events have no type */
        times[i] = T0 + (int64_t)((x >> 8) % 50) * SEC; /* out of order, many ties */
        if (i % 7 == 0)
            times[i] = T0 - (int64_t)(i + 1) * SEC;     /* before the epoch of the range */
        snprintf(id, sizeof id, "q%d", i);
        add(b, id, types[i], times[i], i);
    }
    assert_int_equal(flush(log, b), N);

    static const char *const paid[] = {"order.paid"};
    static const char *const two[] = {"payment", "order.created", "payment"}; /* a repeat */
    static const char *const none[] = {"no.such.type"};
    sl_eventlog_query qs[] = {
        {paid, 1, INT64_MIN, INT64_MAX, 0, 0, 0, 0, 0, 0},
        {paid, 1, INT64_MIN, INT64_MAX, 0, 0, 0, 1, 0, 0},
        {two, 3, T0 + 10 * SEC, T0 + 20 * SEC, 0, 0, 0, 0, 0, 0},
        {two, 3, T0 + 10 * SEC, T0 + 20 * SEC, 0, 0, 0, 1, 0, 0},
        {NULL, 0, INT64_MIN, INT64_MAX, 0, 0, 0, 0, 0, 0},   /* every type, untyped included */
        {NULL, 0, T0, T0 + 5 * SEC, 0, 0, 0, 1, 0, 0},
        {none, 1, INT64_MIN, INT64_MAX, 0, 0, 0, 0, 0, 0},
        {paid, 1, T0 + 7 * SEC, T0 + 7 * SEC, 0, 0, 0, 0, 0, 0}, /* empty range */
    };
    uint64_t want[N];
    got *g = calloc(1, sizeof *g);
    for (size_t qi = 0; qi < sizeof qs / sizeof *qs; qi++) {
        size_t k = model(types, times, N, &qs[qi], want);
        /* whole result */
        g->n = 0;
        assert_int_equal(sl_eventlog_query_run(log, &qs[qi], collect, g), (int64_t)k);
        for (size_t i = 0; i < k; i++)
            if (g->off[i] != want[i])
                fail_msg("query %zu: result %zu is offset %llu, expected %llu", qi, i,
                         (unsigned long long)g->off[i], (unsigned long long)want[i]);
        /* pages of 7 with a cursor: the same events, each once; the cursor is the offset
         * alone (looked up) or (time, offset) as the visit saw them */
        for (int with_time = 0; with_time < 2; with_time++) {
            sl_eventlog_query q = qs[qi];
            q.limit = 7;
            size_t seen = 0;
            for (;;) {
                g->n = 0;
                int64_t n = sl_eventlog_query_run(log, &q, collect, g);
                assert_true(n >= 0 && n <= 7);
                for (int64_t i = 0; i < n; i++)
                    assert_int_equal(g->off[i], want[seen++]);
                if (n < 7)
                    break;
                q.has_after = 1;
                q.after = g->off[n - 1];
                q.after_has_time = with_time;
                q.after_time_ns = g->t[n - 1];
            }
            assert_int_equal(seen, k);
        }
    }
    assert_true(model(types, times, N, &qs[2], want) > 10); /* the checks above were not vacuous */
    sl_eventlog_query bad = {NULL, 0, T0 + 1, T0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(sl_eventlog_query_run(log, &bad, collect, g), -EINVAL);
    sl_eventlog_stats s;
    assert_int_equal(sl_eventlog_stats_get(log, &s), 0);
    assert_int_equal(s.types, 4); /* three names and the untyped */
    free(g);
    sl_wbuf_fini(&b->buf);
    free(b);
    sl_eventlog_close(&log);
}

/* ------------------------------------------------------------ retention */

static void test_retention_by_age(void **st)
{
    sl_eventlog_opts o = {.create = 1, .max_age_ns = 300000000ll};
    sl_eventlog *log = open_log(&o);
    batch *b = calloc(1, sizeof *b);
    char id[32];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "old%d", i);
        add(b, id, "t", T0 + i, i);
    }
    assert_int_equal(flush(log, b), 5);
    assert_int_equal(sl_eventlog_retain(log), 0); /* not old yet */
    usleep(450000);
    reset(b);
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "new%d", i);
        add(b, id, "t", T0 + 10 + i, 10 + i);
    }
    assert_int_equal(flush(log, b), 3);
    assert_int_equal(sl_eventlog_retain(log), 5);
    uint64_t first, next;
    assert_int_equal(sl_eventlog_bounds(log, &first, &next), 0);
    assert_int_equal(first, 5);
    assert_int_equal(next, 8);
    /* the index entries went with them */
    sl_wbuf copy = {0};
    sl_eventlog_event ev;
    assert_int_equal(sl_eventlog_get(log, "old1", 4, &ev, &copy), 1);
    got *g = calloc(1, sizeof *g);
    static const char *const t[] = {"t"};
    sl_eventlog_query q = {t, 1, INT64_MIN, INT64_MAX, 0, 0, 0, 0, 0, 0};
    assert_int_equal(sl_eventlog_query_run(log, &q, collect, g), 3);
    assert_int_equal(g->off[0], 5);
    /* a cursor on a removed event: refused without its time, followed with it */
    q.has_after = 1;
    q.after = 2;
    g->n = 0;
    assert_int_equal(sl_eventlog_query_run(log, &q, collect, g), -ENOENT);
    q.after_has_time = 1;
    q.after_time_ns = T0 + 2;
    assert_int_equal(sl_eventlog_query_run(log, &q, collect, g), 3);
    assert_int_equal(g->off[0], 5);
    q.desc = 1; /* newest first: before (T0 + 2, 2) there is nothing left */
    assert_int_equal(sl_eventlog_query_run(log, &q, collect, g), 0);
    q.desc = 0; /* a made-up cursor at the largest offset: after it comes the next time */
    q.after = UINT64_MAX;
    q.after_time_ns = T0 + 10;
    g->n = 0;
    assert_int_equal(sl_eventlog_query_run(log, &q, collect, g), 2);
    assert_int_equal(g->off[0], 6);
    q.after_time_ns = INT64_MAX;
    assert_int_equal(sl_eventlog_query_run(log, &q, collect, g), 0);
    q.has_after = q.after_has_time = 0;
    /* a reader left behind sees the gap: the first event it gets is 5 */
    sl_eventlog_reader *r;
    sl_eventlog_event evs[8];
    assert_int_equal(sl_eventlog_reader_open(log, 1, &r), 0);
    assert_int_equal(sl_eventlog_reader_next(r, evs, 8), 3);
    assert_int_equal(evs[0].offset, 5);
    sl_eventlog_reader_close(&r);
    /* a removed id is new again (idempotency holds while the event is kept) */
    reset(b);
    add(b, "old1", "t", T0, 1);
    assert_int_equal(flush(log, b), 1);
    assert_int_equal(b->res[0].offset, 8);
    sl_eventlog_stats s;
    assert_int_equal(sl_eventlog_stats_get(log, &s), 0);
    assert_int_equal(s.count, 4);
    assert_int_equal(s.removed, 5);
    free(g);
    sl_wbuf_fini(&copy);
    sl_wbuf_fini(&b->buf);
    free(b);
    sl_eventlog_close(&log);
}

static void test_retention_by_size(void **st)
{
    batch *b = calloc(1, sizeof *b);
    add(b, "s000", "t", T0, 0);
    size_t one = b->buf.len + 16; /* stored bytes of one event: msgpack and header */
    reset(b);
    sl_eventlog_opts o = {.create = 1, .max_bytes = 10 * one + one / 2};
    sl_eventlog *log = open_log(&o);
    char id[32];
    for (int i = 0; i < 100; i++) {
        reset(b);
        snprintf(id, sizeof id, "s%03d", i);
        add(b, id, "t", T0, i);
        assert_int_equal(flush(log, b), 1);
        sl_eventlog_stats s;
        assert_int_equal(sl_eventlog_stats_get(log, &s), 0);
        /* after every append: within the limit, and only what had to go went */
        assert_true(s.bytes <= o.max_bytes);
        assert_int_equal(s.count, i < 10 ? (uint64_t)i + 1 : 10);
        assert_int_equal(s.bytes, s.count * one);
        assert_int_equal(s.first_offset, i < 10 ? 0 : (uint64_t)i - 9);
    }
    sl_wbuf copy = {0};
    sl_eventlog_event ev;
    assert_int_equal(sl_eventlog_get(log, "s089", 4, &ev, &copy), 1);
    assert_int_equal(sl_eventlog_get(log, "s090", 4, &ev, &copy), 0);
    sl_wbuf_fini(&copy);
    sl_wbuf_fini(&b->buf);
    free(b);
    sl_eventlog_close(&log);
}

/* ------------------------------------------------------------ threads, processes */

typedef struct appender {
    sl_eventlog *log;
    int thread, count, per_call, failed;
} appender;

static void *append_thread(void *arg)
{
    appender *a = arg;
    batch *b = calloc(1, sizeof *b);
    char id[32];
    for (int i = 0; i < a->count; i += a->per_call) {
        reset(b);
        for (int j = 0; j < a->per_call; j++) {
            snprintf(id, sizeof id, "t%d-%06d", a->thread, i + j);
            add(b, id, "t", T0 + i + j, i + j);
        }
        if (flush(a->log, b) != a->per_call)
            a->failed = 1;
        if (a->thread < 0)
            usleep(200); /* the follower test: give the reader a chance to catch up */
    }
    sl_wbuf_fini(&b->buf);
    free(b);
    return NULL;
}

static void test_reader_follows_another_thread(void **st)
{
    sl_eventlog *log = open_log(NULL);
    appender a = {log, -1, 2000, 10, 0};
    pthread_t th;
    sl_eventlog_reader *r;
    assert_int_equal(sl_eventlog_reader_open(log, 0, &r), 0);
    assert_int_equal(pthread_create(&th, NULL, append_thread, &a), 0);
    sl_eventlog_event evs[64];
    int total = 0, empty_reads = 0;
    while (total < 2000) {
        int n = sl_eventlog_reader_next(r, evs, 64);
        assert_true(n >= 0);
        if (n == 0) {
            empty_reads++;
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            int w = sl_eventlog_wait(log, sl_eventlog_reader_offset(r), 5 * SEC);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            assert_int_equal(w, 1);
            /* woken by the append (one commit and fsync away), not by the 5 s timeout */
            assert_true((t1.tv_sec - t0.tv_sec) * SEC + (t1.tv_nsec - t0.tv_nsec) < 2 * SEC);
            continue;
        }
        for (int i = 0; i < n; i++, total++) {
            assert_int_equal(evs[i].offset, (uint64_t)total);
            assert_int_equal(ev_n(&evs[i]), total);
        }
    }
    assert_true(empty_reads > 0); /* it did catch up and wait at least once */
    pthread_join(th, NULL);
    assert_false(a.failed);
    assert_int_equal(sl_eventlog_reader_next(r, evs, 64), 0);
    assert_int_equal(sl_eventlog_wait(log, 2000, 20000000ll), 0); /* nothing more: times out */
    sl_eventlog_reader_close(&r);
    sl_eventlog_close(&log);
}

static void test_group_commit_threads(void **st)
{
    enum { THREADS = 4, EACH = 400 };
    sl_eventlog *log = open_log(NULL);
    appender a[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        a[i] = (appender){log, i, EACH, 1, 0};
        assert_int_equal(pthread_create(&th[i], NULL, append_thread, &a[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_false(a[i].failed);
    }
    sl_eventlog_stats s;
    assert_int_equal(sl_eventlog_stats_get(log, &s), 0);
    assert_int_equal(s.appends, THREADS * EACH);
    /* each append returned durable, yet they shared syncs */
    assert_true(s.fsyncs < s.appends);
    assert_true(s.fsyncs > 0);
    print_message("    %d durable appends of one event from %d threads: %llu commits, %llu fsyncs\n",
                  THREADS * EACH, THREADS, (unsigned long long)s.commits,
                  (unsigned long long)s.fsyncs);
    sl_eventlog_close(&log);

    /* all there after a reopen, offsets dense, each thread's in its order */
    sl_eventlog_opts o = {0};
    log = open_log(&o);
    sl_eventlog_reader *r;
    sl_eventlog_event evs[256];
    int last[THREADS], total = 0, n;
    for (int i = 0; i < THREADS; i++)
        last[i] = -1;
    assert_int_equal(sl_eventlog_reader_open(log, 0, &r), 0);
    while ((n = sl_eventlog_reader_next(r, evs, 256)) > 0)
        for (int i = 0; i < n; i++, total++) {
            assert_int_equal(evs[i].offset, (uint64_t)total);
            const uint8_t *p = evs[i].data;
            sl_mp_val v;
            assert_int_equal(sl_mp_map_find(&p, evs[i].data + evs[i].len, "id", 2), 1);
            assert_int_equal(sl_mp_read(&p, evs[i].data + evs[i].len, &v), 0);
            int t = v.v.str.ptr[1] - '0';
            int k = (int)ev_n(&evs[i]);
            assert_int_equal(k, last[t] + 1);
            last[t] = k;
        }
    assert_int_equal(total, THREADS * EACH);
    sl_eventlog_reader_close(&r);
    sl_eventlog_close(&log);
}

static void test_async_then_sync(void **st)
{
    sl_eventlog *log = open_log(NULL);
    batch *b = calloc(1, sizeof *b);
    add(b, "x", NULL, T0, 1);
    for (size_t i = 0; i < b->n; i++) {
        b->evs[i] = b->buf.data;
        b->lens[i] = b->ends[0];
    }
    uint64_t seq = 0;
    assert_int_equal(sl_eventlog_append_async(log, b->evs, b->lens, 1, b->res, &seq), 1);
    assert_true(seq > 0);
    uint64_t next;
    assert_int_equal(sl_eventlog_bounds(log, NULL, &next), 0);
    assert_int_equal(next, 1); /* visible before it is durable */
    sl_eventlog_stats s;
    assert_int_equal(sl_eventlog_stats_get(log, &s), 0);
    assert_int_equal(s.fsyncs, 0);
    assert_int_equal(sl_eventlog_sync(log, seq), 0);
    assert_int_equal(sl_eventlog_stats_get(log, &s), 0);
    assert_int_equal(s.fsyncs, 1);
    assert_int_equal(sl_eventlog_sync(log, seq), 0); /* already durable: no second sync */
    assert_int_equal(sl_eventlog_stats_get(log, &s), 0);
    assert_int_equal(s.fsyncs, 1);
    sl_wbuf_fini(&b->buf);
    free(b);
    sl_eventlog_close(&log);
}

static void test_another_process_appends(void **st)
{
    sl_eventlog *log = open_log(NULL); /* open here first: the child must not reuse it */
    sl_eventlog_reader *r;
    assert_int_equal(sl_eventlog_reader_open(log, 0, &r), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sl_eventlog *clog = NULL;
        char err[256];
        sl_eventlog_opts o = {0};
        if (sl_eventlog_open(tmp_dir, &o, &clog, err, sizeof err) != 0)
            _exit(2);
        appender a = {clog, 7, 300, 30, 0};
        append_thread(&a);
        sl_eventlog_close(&clog);
        _exit(a.failed ? 3 : 0);
    }
    /* follow while the child writes: polls see its commits */
    sl_eventlog_event evs[64];
    int total = 0;
    int64_t waited = 0;
    while (total < 300 && waited < 10000) {
        int n = sl_eventlog_reader_next(r, evs, 64);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++, total++)
            assert_int_equal(ev_n(&evs[i]), total);
        if (n == 0) {
            sl_eventlog_wait(log, sl_eventlog_reader_offset(r), 1000000ll);
            waited++;
        }
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(total, 300);
    /* and this process can append after it, offsets going on */
    batch *b = calloc(1, sizeof *b);
    add(b, "parent", NULL, T0, 300);
    assert_int_equal(flush(log, b), 1);
    assert_int_equal(b->res[0].offset, 300);
    sl_wbuf_fini(&b->buf);
    free(b);
    sl_eventlog_reader_close(&r);
    sl_eventlog_close(&log);
}

/* ------------------------------------------------------------ opening */

static void test_reopen_and_shared_handles(void **st)
{
    sl_eventlog *log = open_log(NULL);
    batch *b = calloc(1, sizeof *b);
    add(b, "p1", "t", T0, 1);
    add(b, "p2", "t", T0, 2);
    assert_int_equal(flush(log, b), 2);
    /* a second handle in this process shares the environment */
    sl_eventlog *log2 = open_log(NULL);
    uint64_t next;
    assert_int_equal(sl_eventlog_bounds(log2, NULL, &next), 0);
    assert_int_equal(next, 2);
    sl_eventlog_close(&log);
    sl_eventlog_close(&log2);

    sl_eventlog_opts o = {0}; /* no create: it must be there */
    log = open_log(&o);
    reset(b);
    add(b, "p2", "t", T0, 3); /* still a duplicate after the reopen */
    add(b, "p3", "t", T0, 4);
    assert_int_equal(flush(log, b), 1);
    assert_int_equal(b->res[0].status, SL_EVENTLOG_DUPLICATE);
    assert_int_equal(b->res[1].offset, 2);
    sl_eventlog_stats s;
    assert_int_equal(sl_eventlog_stats_get(log, &s), 0);
    assert_int_equal(s.count, 3);
    assert_int_equal(s.first_time_ns, T0);
    assert_true(s.file_bytes > 0 && s.used_bytes > 0 && s.used_bytes <= s.file_bytes);
    sl_wbuf_fini(&b->buf);
    free(b);
    sl_eventlog_close(&log);
}

static void expect_open_error(const char *dir, const char *substr)
{
    sl_eventlog *log = NULL;
    char err[512] = "";
    sl_eventlog_opts o = {0};
    int rc = sl_eventlog_open(dir, &o, &log, err, sizeof err);
    assert_true(rc < 0);
    assert_null(log);
    if (!strstr(err, substr))
        fail_msg("opening '%s': message '%s' does not say '%s'", dir, err, substr);
}

static void test_bad_directories(void **st)
{
    char p[256];
    snprintf(p, sizeof p, "%s/missing", tmp_dir);
    expect_open_error(p, "no event log at");
    snprintf(p, sizeof p, "%s/empty", tmp_dir);
    mkdir(p, 0777);
    expect_open_error(p, "no event log at");
    rmdir(p);
    snprintf(p, sizeof p, "%s/afile", tmp_dir);
    FILE *f = fopen(p, "w");
    fputs("x", f);
    fclose(f);
    expect_open_error(p, "not a directory");
    unlink(p);

    /* garbage where data.mdb should be */
    char data[300];
    snprintf(data, sizeof data, "%s/data.mdb", tmp_dir);
    f = fopen(data, "w");
    for (int i = 0; i < 20000; i++)
        fputc(i * 7 & 0xff, f);
    fclose(f);
    expect_open_error(tmp_dir, "is not an event log");
    unlink(data);
    snprintf(data, sizeof data, "%s/lock.mdb", tmp_dir);
    unlink(data);

    /* an LMDB environment that is not an event log */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, tmp_dir, 0, 0666), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "other", MDB_CREATE, &dbi), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    expect_open_error(tmp_dir, "not an event log");
    sl_eventlog_opts o = {.create = 1}; /* not even with create: it is somebody else's */
    sl_eventlog *log = NULL;
    char err[256];
    assert_true(sl_eventlog_open(tmp_dir, &o, &log, err, sizeof err) < 0);
    assert_non_null(strstr(err, "not an event log"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_and_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_are_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_by_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_by_type_and_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_by_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_by_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_follows_another_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_then_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_another_process_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_and_shared_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_directories, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
