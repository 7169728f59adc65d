/*
 * test_events_api.c - the gateway's `events_api` operator through the
 * harness: request events (docs/gateway.md) in, answers on `answered`, other
 * paths on `out`, malformed requests on `errors`; the event log it writes is
 * then opened directly to check what is durable.
 *
 * What it checks: a single structured-mode event published (202 {"accepted":
 * 1, "duplicates": 0}) and fetched by id exactly as published, `time` added
 * from the request when absent; batches (cloudevents-batch+json and
 * application/json arrays), every accepted event found in the log after the
 * run; 300 single-event requests sharing a few appends (commit per batch
 * of requests, not per request); a full log (503, nothing stored); duplicates
 * by id (across runs and inside one request) answered 202
 * and stored once; each CloudEvents validation rule (400 listing the index
 * and reason of each invalid event; a batch with one invalid event stores
 * nothing); media types (415 with accept-post, charset, structured vs batch
 * shape, malformed JSON, 413 past max_batch); queries by type, source,
 * subject, time range, data.* (strings and numbers), order desc, limit and
 * cursor pages covering every match exactly once in both orders, pages cut
 * short by max_scan, and each bad parameter (400); 404, 405 with allow, 501
 * for the stream; scopes (403); requests for other paths passing unchanged;
 * events appended by sink.log (no specversion) read back as CloudEvents;
 * configuration mistakes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eventlog.h"
#include "harness.h"
#include "json.h"

static char root[64];     /* a temporary directory per test */
static char log_dir[128]; /* root/log: the event log */
static long next_conn;
static sl_json_parser *jp;

static int setup(void **st)
{
    if (!sl_harness_tmpdir(root)) return -1;
    snprintf(log_dir, sizeof log_dir, "%s/log", root);
    next_conn = 1;
    return jp || (jp = sl_json_parser_new()) ? 0 : -1;
}

static int teardown(void **st)
{
    if (access(log_dir, F_OK) == 0) sl_harness_rmdir(log_dir);
    return sl_harness_rmdir(root);
}

/* ------------------------------------------------------------ requests */

/* A harness on the log, with extra YAML lines (NULL: none). */
static sl_harness *api(const char *more)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "type: events_api\nlog: '%s'%s%s", log_dir, more ? "\n" : "",
             more ? more : "");
    sl_harness *h = sl_harness_new(yaml);
    assert_non_null(h);
    return h;
}

#define ALL_SCOPES "[\"events:read\",\"events:write\"]"

/*
 * Queue a request; returns its conn. query: a JSON object of string values or
 * NULL; ctype NULL: no content-type; scopes: a JSON array, or NULL for none.
 * The request was received at 2026-01-01T01:00:00Z.
 */
static long push_scoped(sl_harness *h, const char *method, const char *path, const char *query,
                        const char *ctype, const char *body, const char *scopes)
{
    sl_wbuf b = {0};
    char head[512];
    long conn = next_conn++;
    snprintf(head, sizeof head,
             "{\"id\":\"r-%ld\",\"type\":\"http.request\",\"time\":\"2026-01-01T01:00:00Z\","
             "\"conn\":%ld,\"method\":\"%s\",\"path\":",
             conn, conn, method);
    assert_int_equal(sl_wbuf_append(&b, head, strlen(head)), 0);
    assert_int_equal(sl_json_write_string(&b, path, strlen(path)), 0);
    snprintf(head, sizeof head, ",\"query\":%s,\"headers\":{", query ? query : "{}");
    assert_int_equal(sl_wbuf_append(&b, head, strlen(head)), 0);
    if (ctype) {
        assert_int_equal(sl_wbuf_append(&b, "\"content-type\":", 15), 0);
        assert_int_equal(sl_json_write_string(&b, ctype, strlen(ctype)), 0);
    }
    assert_int_equal(sl_wbuf_append(&b, "},\"body\":", 9), 0);
    assert_int_equal(sl_json_write_string(&b, body ? body : "", body ? strlen(body) : 0), 0);
    if (scopes) {
        assert_int_equal(sl_wbuf_append(&b, ",\"scopes\":", 10), 0);
        assert_int_equal(sl_wbuf_append(&b, scopes, strlen(scopes)), 0);
    }
    assert_int_equal(sl_wbuf_append(&b, "}", 2), 0); /* with the NUL */
    assert_int_equal(sl_harness_push(h, (const char *)b.data), 0);
    sl_wbuf_fini(&b);
    return conn;
}

static long push(sl_harness *h, const char *method, const char *path, const char *query,
                 const char *ctype, const char *body)
{
    return push_scoped(h, method, path, query, ctype, body, ALL_SCOPES);
}

static long post(sl_harness *h, const char *ctype, const char *body)
{
    return push(h, "POST", "/v1/events", NULL, ctype, body);
}

/* A CloudEvent's JSON: time_ms < 0 leaves `time` out; data is JSON text or NULL. */
static const char *ce(char *buf, size_t cap, const char *id, const char *type, const char *source,
                      long time_ms, const char *data)
{
    char t[40], tf[64] = "";
    if (time_ms >= 0) snprintf(tf, sizeof tf, ",\"time\":\"%s\"", sl_harness_time(t, time_ms));
    snprintf(buf, cap,
             "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"%s\",\"type\":\"%s\"%s%s%s%s}",
             id, source, type, tf, data ? ",\"data\":" : "", data ? data : "", "");
    return buf;
}

/* ------------------------------------------------------------ answers */

typedef struct resp {
    int status;
    char *body;        /* malloc'd */
    char headers[512]; /* "name: value\n" each */
} resp;

static void resp_free(resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* Parse JSON text into msgpack (b reset first). */
static void parse(const char *json, size_t n, sl_wbuf *b)
{
    char err[128];
    char *pad = malloc(n + SL_JSON_PADDING);
    assert_non_null(pad);
    memcpy(pad, json, n);
    memset(pad + n, 0, SL_JSON_PADDING);
    sl_wbuf_reset(b);
    if (sl_json_to_msgpack(jp, pad, n, n + SL_JSON_PADDING, 0, b, err, sizeof err) != 0)
        fail_msg("not JSON (%s): %.*s", err, (int)n, json);
    free(pad);
}

/* The value at key of the map at *p (moves *p to it); fails the test if absent. */
static sl_mp_val get(const uint8_t **p, const uint8_t *end, const char *key)
{
    sl_mp_val v;
    const uint8_t *q = *p;
    if (sl_mp_map_find(&q, end, key, strlen(key)) != 1) fail_msg("no '%s'", key);
    *p = q;
    const uint8_t *r = q;
    assert_int_equal(sl_mp_read(&r, end, &v), 0);
    return v;
}

/* The answer to request conn in h (fails the test if there is none). */
static resp answer(const sl_harness *h, long conn)
{
    sl_wbuf b = {0};
    for (size_t i = 0; i < sl_harness_count(h, "answered"); i++) {
        const char *j = sl_harness_out(h, "answered", i);
        parse(j, strlen(j), &b);
        const uint8_t *p = b.data, *end = b.data + b.len;
        sl_mp_val c = get(&p, end, "conn");
        if (c.type != SL_MP_UINT || (long)c.v.u != conn) continue;
        resp r = {0};
        p = b.data;
        get(&p, end, "response");
        const uint8_t *resp_at = p;
        sl_mp_val st = get(&p, end, "status");
        r.status = (int)st.v.u;
        p = resp_at;
        sl_mp_val hm = get(&p, end, "headers");
        sl_mp_read(&p, end, &hm);
        for (uint32_t k = 0; k < hm.v.n; k++) {
            sl_mp_val hn, hv;
            sl_mp_read(&p, end, &hn);
            sl_mp_read(&p, end, &hv);
            snprintf(r.headers + strlen(r.headers), sizeof r.headers - strlen(r.headers),
                     "%.*s: %.*s\n", (int)hn.v.str.len, hn.v.str.ptr, (int)hv.v.str.len,
                     hv.v.str.ptr);
        }
        p = resp_at;
        sl_mp_val body = get(&p, end, "body");
        r.body = strndup(body.v.str.ptr, body.v.str.len);
        sl_wbuf_fini(&b);
        return r;
    }
    sl_wbuf_fini(&b);
    fail_msg("no answer for conn %ld", conn);
    return (resp){0};
}

/* Expect the answer to conn to have this status and a body containing `has` (if not NULL). */
static void expect(const sl_harness *h, long conn, int status, const char *has)
{
    resp r = answer(h, conn);
    if (r.status != status || (has && !strstr(r.body, has)))
        fail_msg("conn %ld: %d %s\nexpected %d with %s", conn, r.status, r.body, status,
                 has ? has : "(anything)");
    resp_free(&r);
}

/* The ids of a query's page (into ids, n), and its next_cursor ("" when null). */
static void page(const sl_harness *h, long conn, char ids[][32], size_t *n, char *cursor)
{
    resp r = answer(h, conn);
    if (r.status != 200) fail_msg("query %ld: %d %s", conn, r.status, r.body);
    sl_wbuf b = {0};
    parse(r.body, strlen(r.body), &b);
    const uint8_t *p = b.data, *end = b.data + b.len;
    sl_mp_val items = get(&p, end, "items");
    sl_mp_read(&p, end, &items);
    *n = items.v.n;
    for (uint32_t i = 0; i < items.v.n; i++) {
        const uint8_t *e = p;
        sl_mp_val id = get(&e, end, "id");
        snprintf(ids[i], 32, "%.*s", (int)id.v.str.len, id.v.str.ptr);
        assert_int_equal(sl_mp_skip(&p, end), 0);
    }
    p = b.data;
    sl_mp_val count = get(&p, end, "count");
    assert_int_equal(count.v.u, *n);
    p = b.data;
    sl_mp_val nc = get(&p, end, "next_cursor");
    if (nc.type == SL_MP_STR)
        snprintf(cursor, 64, "%.*s", (int)nc.v.str.len, nc.v.str.ptr);
    else
        cursor[0] = '\0';
    sl_wbuf_fini(&b);
    resp_free(&r);
}

/* Run h, checking nothing went to errors; then destroy it. */
static void run(sl_harness *h)
{
    assert_int_equal(sl_harness_run(h), 0);
    assert_int_equal(sl_harness_count(h, "errors"), 0);
}

/* The log's event with this id as JSON (static buffer), or NULL. */
static const char *stored(const char *id)
{
    static sl_wbuf json;
    sl_eventlog *log;
    char err[256];
    if (sl_eventlog_open(log_dir, NULL, &log, err, sizeof err) != 0) fail_msg("%s", err);
    sl_wbuf copy = {0};
    sl_eventlog_event e;
    int rc = sl_eventlog_get(log, id, strlen(id), &e, &copy);
    assert_true(rc == 0 || rc == 1);
    const char *out = NULL;
    if (rc == 0) {
        sl_wbuf_reset(&json);
        assert_int_equal(sl_msgpack_to_json(e.data, e.len, &json), 0);
        assert_int_equal(sl_wbuf_append(&json, "", 1), 0);
        out = (const char *)json.data;
    }
    sl_wbuf_fini(&copy);
    sl_eventlog_close(&log);
    return out;
}

static uint64_t stored_count(void)
{
    sl_eventlog *log;
    char err[256];
    sl_eventlog_stats s;
    if (sl_eventlog_open(log_dir, NULL, &log, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(sl_eventlog_stats_get(log, &s), 0);
    sl_eventlog_close(&log);
    return s.count;
}

/* ------------------------------------------------------------ publishing */

static void test_publish_one_then_get(void **st)
{
    char e1[512], e2[512];
    ce(e1, sizeof e1, "e1", "order.created", "/shop", 1000,
       "{\"orderId\":\"o1\",\"total\":12.5,\"items\":[1,2]}");
    ce(e2, sizeof e2, "e2", "order.created", "/shop", -1, "\"text\""); /* no time */
    sl_harness *h = api(NULL);
    long c1 = post(h, "application/cloudevents+json", e1);
    long c2 = post(h, "application/cloudevents+json; charset=utf-8", e2);
    run(h);
    expect(h, c1, 202, "{\"accepted\":1,\"duplicates\":0}");
    expect(h, c2, 202, "{\"accepted\":1,\"duplicates\":0}");
    resp r = answer(h, c1);
    assert_non_null(strstr(r.headers, "content-type: application/json\n"));
    resp_free(&r);
    assert_int_equal(sl_harness_counter(h, "published"), 2);
    assert_int_equal(sl_harness_count(h, "out"), 0);
    sl_harness_destroy(&h);

    h = api(NULL);
    long g1 = push(h, "GET", "/v1/events/e1", NULL, NULL, NULL);
    long g2 = push(h, "GET", "/v1/events/e2", NULL, NULL, NULL);
    run(h);
    r = answer(h, g1);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, e1); /* as published, attribute for attribute */
    assert_non_null(strstr(r.headers, "content-type: application/cloudevents+json\n"));
    resp_free(&r);
    /* without a time it got the request's receive time (added at the end) */
    expect(h, g2, 200,
           "\"type\":\"order.created\",\"data\":\"text\",\"time\":\"2026-01-01T01:00:00Z\"}");
    assert_int_equal(sl_harness_counter(h, "queries"), 2);
    sl_harness_destroy(&h);
}

/* n events "<prefix><i>" as a JSON array, type t<i%3>, source /s<i%2>, time i seconds. */
static char *batch_json(const char *prefix, int from, int n)
{
    size_t cap = (size_t)n * 300 + 16, len = 1;
    char *s = malloc(cap), ev[300], id[32];
    assert_non_null(s);
    strcpy(s, "[");
    for (int i = from; i < from + n; i++) {
        char type[8], src[8], data[96];
        snprintf(id, sizeof id, "%s%d", prefix, i);
        snprintf(type, sizeof type, "t%d", i % 3);
        snprintf(src, sizeof src, "/s%d", i % 2);
        snprintf(data, sizeof data, "{\"n\":%d,\"status\":\"%s\",\"total\":%s}", i,
                 i % 4 == 0 ? "PAID" : "NEW", i % 5 == 0 ? "100.0" : "100");
        ce(ev, sizeof ev, id, type, src, (long)i * 1000, data);
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i > from ? "," : "", ev);
    }
    snprintf(s + len, cap - len, "]");
    return s;
}

static void test_batches_are_durable(void **st)
{
    char *b1 = batch_json("b", 0, 100), *b2 = batch_json("b", 100, 50), one[300];
    sl_harness *h = api(NULL);
    long c1 = post(h, "application/cloudevents-batch+json", b1);
    long c2 = post(h, "application/json", b2); /* an array */
    long c3 = post(h, "application/json", ce(one, sizeof one, "j1", "t", "/s", 5, NULL)); /* one */
    long c4 = post(h, "application/cloudevents-batch+json", "[]"); /* empty: nothing to do */
    run(h);
    expect(h, c1, 202, "{\"accepted\":100,\"duplicates\":0}");
    expect(h, c2, 202, "{\"accepted\":50,\"duplicates\":0}");
    expect(h, c3, 202, "{\"accepted\":1,\"duplicates\":0}");
    expect(h, c4, 202, "{\"accepted\":0,\"duplicates\":0}");
    assert_int_equal(sl_harness_counter(h, "published"), 151);
    sl_harness_destroy(&h);
    /* every accepted event is in the log, opened afresh, as stored: time a timestamp */
    char id[32];
    for (int i = 0; i < 150; i++) {
        snprintf(id, sizeof id, "b%d", i);
        const char *j = stored(id);
        if (!j) fail_msg("event %s was acknowledged but is not in the log", id);
        char t[40], want[64];
        snprintf(want, sizeof want, "\"time\":\"%s\"", sl_harness_time(t, (long)i * 1000));
        assert_non_null(strstr(j, want));
    }
    assert_non_null(stored("j1"));
    assert_int_equal(stored_count(), 151);
    free(b1);
    free(b2);
}

/* Requests are committed together: 300 single-event requests take a few appends, not 300. */
static void test_requests_share_appends(void **st)
{
    sl_eventlog *log; /* held open: the harness's opens share it, and its counters */
    char err[256], e[300], id[16];
    sl_eventlog_opts o = {.create = 1};
    if (sl_eventlog_open(log_dir, &o, &log, err, sizeof err) != 0) fail_msg("%s", err);
    sl_harness *h = api(NULL);
    long first = 0;
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "one%d", i);
        long c = post(h, "application/cloudevents+json", ce(e, sizeof e, id, "t", "/s", i, NULL));
        first = first ? first : c;
    }
    run(h);
    for (int i = 0; i < 300; i++)
        expect(h, first + i, 202, "{\"accepted\":1,\"duplicates\":0}");
    sl_harness_destroy(&h);
    sl_eventlog_stats s;
    assert_int_equal(sl_eventlog_stats_get(log, &s), 0);
    assert_int_equal(s.appends, 300);
    if (s.commits > 30 || s.fsyncs > 30)
        fail_msg("300 requests took %llu commits and %llu fsyncs", (unsigned long long)s.commits,
                 (unsigned long long)s.fsyncs);
    sl_eventlog_close(&log);
}

/* A log that cannot store the events: 503 with retry-after, nothing stored, the next works. */
static void test_a_full_log_answers_503(void **st)
{
    char *big = batch_json("f", 0, 10000), one[300]; /* 2.6 MB of JSON: more than the map */
    sl_harness *h = api("map_size: 1MiB\nmax_batch: 10000");
    long c1 = post(h, "application/cloudevents-batch+json", big);
    run(h);
    resp r = answer(h, c1);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.headers, "retry-after: 1\n"));
    assert_non_null(strstr(r.body, "the event log could not store the events (MDB_MAP_FULL"));
    resp_free(&r);
    assert_int_equal(sl_harness_counter(h, "failures"), 1);
    assert_int_equal(sl_harness_counter(h, "published"), 0);
    sl_harness_destroy(&h);
    assert_int_equal(stored_count(), 0);
    h = api("map_size: 1MiB");
    long c2 =
        post(h, "application/cloudevents+json", ce(one, sizeof one, "f1", "t", "/s", 1, NULL));
    run(h);
    expect(h, c2, 202, "{\"accepted\":1,\"duplicates\":0}");
    sl_harness_destroy(&h);
    assert_int_equal(stored_count(), 1);
    free(big);
}

static void test_duplicates_are_idempotent(void **st)
{
    char *b = batch_json("d", 0, 3);
    sl_harness *h = api(NULL);
    long c1 = post(h, "application/cloudevents-batch+json", b);
    run(h);
    expect(h, c1, 202, "{\"accepted\":3,\"duplicates\":0}");
    sl_harness_destroy(&h);
    char *again = batch_json("d", 1, 3); /* d1, d2 stored; d3 new */
    char twice[700], e[300];
    snprintf(twice, sizeof twice, "[%s,%s]", ce(e, sizeof e, "d9", "t", "/s", 1, NULL), e);
    h = api(NULL);
    long c2 = post(h, "application/cloudevents-batch+json", again);
    long c3 = post(h, "application/cloudevents-batch+json", b);     /* a retry of the first */
    long c4 = post(h, "application/cloudevents-batch+json", twice); /* twice in one request */
    run(h);
    expect(h, c2, 202, "{\"accepted\":1,\"duplicates\":2}");
    expect(h, c3, 202, "{\"accepted\":0,\"duplicates\":3}");
    expect(h, c4, 202, "{\"accepted\":1,\"duplicates\":1}");
    assert_int_equal(sl_harness_counter(h, "duplicates"), 6);
    assert_int_equal(sl_harness_counter(h, "published"), 2);
    sl_harness_destroy(&h);
    assert_int_equal(stored_count(), 5); /* d0..d3, d9: each once */
    free(b);
    free(again);
}

/* ------------------------------------------------------------ validation */

typedef struct rule {
    const char *event;  /* JSON */
    const char *reason; /* a part of the reason given */
} rule;

#define CE_HEAD "\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"/s\",\"type\":\"t\""

static const rule rules[] = {
    {"{\"id\":\"x\",\"source\":\"/s\",\"type\":\"t\"}", "'specversion' is required"},
    {"{\"specversion\":\"0.3\",\"id\":\"x\",\"source\":\"/s\",\"type\":\"t\"}",
     "'specversion' must be"},
    {"{\"specversion\":1.0,\"id\":\"x\",\"source\":\"/s\",\"type\":\"t\"}",
     "'specversion' must be"},
    {"{\"specversion\":\"1.0\",\"source\":\"/s\",\"type\":\"t\"}", "'id' is required"},
    {"{\"specversion\":\"1.0\",\"id\":null,\"source\":\"/s\",\"type\":\"t\"}", "'id' is required"},
    {"{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"/s\",\"type\":\"t\"}",
     "'id' must be a non-empty string"},
    {"{\"specversion\":\"1.0\",\"id\":7,\"source\":\"/s\",\"type\":\"t\"}",
     "'id' must be a non-empty string"},
    {"{\"specversion\":\"1.0\",\"id\":\"a\\u0001b\",\"source\":\"/s\",\"type\":\"t\"}",
     "'id' contains control characters"},
    {"{\"specversion\":\"1.0\",\"id\":\"x\",\"type\":\"t\"}", "'source' is required"},
    {"{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"\",\"type\":\"t\"}",
     "'source' must be a non-empty URI-reference"},
    {"{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"a b\",\"type\":\"t\"}",
     "'source' must be"},
    {"{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"1a:b\",\"type\":\"t\"}",
     "'source' must be"},
    {"{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"/a%zz\",\"type\":\"t\"}",
     "'source' must be"},
    {"{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"/s\"}", "'type' is required"},
    {"{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"/s\",\"type\":\"\"}",
     "'type' must be a non-empty string"},
    {"{" CE_HEAD ",\"time\":\"yesterday\"}", "'time' must be an RFC 3339 timestamp"},
    {"{" CE_HEAD ",\"time\":1767225600}", "'time' must be an RFC 3339 timestamp"},
    {"{" CE_HEAD ",\"datacontenttype\":\"json\"}", "'datacontenttype' must be a media type"},
    {"{" CE_HEAD ",\"dataschema\":\"schemas/order\"}", "'dataschema' must be an absolute URI"},
    {"{" CE_HEAD ",\"subject\":\"\"}", "'subject' must be a non-empty string"},
    {"{" CE_HEAD ",\"data_base64\":\"not base64!\"}", "'data_base64' must be a base64 string"},
    {"{" CE_HEAD ",\"data_base64\":\"aGk=\",\"data\":1}", "'data' or 'data_base64', not both"},
    {"{" CE_HEAD ",\"Foo\":\"x\"}", "'Foo' is not a CloudEvents attribute name"},
    {"{" CE_HEAD ",\"my_ext\":\"x\"}", "'my_ext' is not a CloudEvents attribute name"},
    {"{" CE_HEAD ",\"abcdefghijklmnopqrstu\":1}", "is not a CloudEvents attribute name"},
    {"{" CE_HEAD ",\"Bad\":null}", "'Bad' is not a CloudEvents attribute name"},
    {"{" CE_HEAD ",\"ext\":{\"a\":1}}",
     "extension 'ext' must be a string, a boolean or an integer"},
    {"{" CE_HEAD ",\"ext\":1.5}", "extension 'ext' must be"},
    {"{" CE_HEAD ",\"ext\":2147483648}", "extension 'ext' must be"},
    {"{" CE_HEAD ",\"ext\":[1]}", "extension 'ext' must be"},
    {"{" CE_HEAD ",\"type\":\"u\"}", "attribute 'type' appears twice"},
    /* "a" and 21 two-byte characters: cut at 40 bytes, the half character becomes '?' */
    {"{" CE_HEAD ",\"aééééééééééééééééééééé\":1}",
     "'aééééééééééééééééééé?...' is not a CloudEvents attribute name"},
};

/* Valid events that look unusual: each must be accepted. */
static const char *const fine[] = {
    "{" CE_HEAD ",\"ext\":null,\"data\":null,\"subject\":null}", /* null: absent */
    "{" CE_HEAD ",\"data_base64\":\"aGVsbG8=\",\"datacontenttype\":\"application/octet-stream\"}",
    "{" CE_HEAD ",\"data_base64\":\"\"}",
    "{" CE_HEAD ",\"dataschema\":\"https://schemas.example/order.json#v2\"}",
    "{" CE_HEAD ",\"datacontenttype\":\"application/json; charset=utf-8\"}",
    "{" CE_HEAD ",\"time\":\"2026-01-01T00:00:00.123456789+02:00\"}",
    "{" CE_HEAD
    ",\"ext1\":true,\"ext2\":-2147483648,\"ext3\":2147483647,\"abcdefghijklmnopqrst\":\"x\"}",
    "{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"urn:uuid:6e8bc430-9c3a-11d9-9669-"
    "0800200c9a66\",\"type\":\"t\"}",
    "{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"https://github.com/cloudevents/spec/pull/"
    "123?a=b&c=%20\",\"type\":\"t\"}",
    "{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"relative/path:with-colon\",\"type\":\"t\"}",
};

/* The event JSON with its id replaced by id (every rule uses "id":"x"). */
static const char *with_id(char *buf, size_t cap, const char *json, const char *id)
{
    const char *at = strstr(json, "\"id\":\"x\"");
    if (!at) return json;
    snprintf(buf, cap, "%.*s\"id\":\"%s\"%s", (int)(at - json), json, id, at + 8);
    return buf;
}

static void test_each_rule_is_checked(void **st)
{
    size_t nr = sizeof rules / sizeof *rules, nf = sizeof fine / sizeof *fine;
    long conns[64], fconns[16];
    char buf[600], id[16];
    sl_harness *h = api(NULL);
    for (size_t i = 0; i < nr; i++)
        conns[i] = post(h, "application/cloudevents+json", rules[i].event);
    for (size_t i = 0; i < nf; i++) {
        snprintf(id, sizeof id, "fine%zu", i);
        fconns[i] = post(h, "application/cloudevents+json", with_id(buf, sizeof buf, fine[i], id));
    }
    run(h);
    for (size_t i = 0; i < nr; i++) {
        resp r = answer(h, conns[i]);
        if (r.status != 400 || !strstr(r.body, "\"invalid\":[{\"index\":0,\"reason\":") ||
            !strstr(r.body, rules[i].reason))
            fail_msg("rule %zu (%s): %d %s\nexpected 400 with reason %s", i, rules[i].event,
                     r.status, r.body, rules[i].reason);
        resp_free(&r);
    }
    for (size_t i = 0; i < nf; i++) {
        resp r = answer(h, fconns[i]);
        if (r.status != 202) fail_msg("valid event %zu (%s): %d %s", i, fine[i], r.status, r.body);
        resp_free(&r);
    }
    assert_int_equal(sl_harness_counter(h, "rejected"), nr);
    assert_int_equal(sl_harness_counter(h, "published"), nf);
    sl_harness_destroy(&h);
    assert_int_equal(stored_count(), nf); /* no invalid event took an offset */
    /* nulls are left out of the stored event; the rest is kept as sent */
    const char *s = stored("fine0");
    assert_non_null(s);
    assert_null(strstr(s, "ext"));
    assert_null(strstr(s, "null"));
}

static void test_a_batch_is_all_or_nothing(void **st)
{
    char body[2048], a[300], b[300], c[300];
    snprintf(body, sizeof body, "[%s,%s,%s,%s,%s]", ce(a, sizeof a, "v0", "t", "/s", 1, NULL),
             "{\"specversion\":\"1.0\",\"id\":\"v1\",\"type\":\"t\"}",
             ce(b, sizeof b, "v2", "t", "/s", 2, NULL), "42",
             ce(c, sizeof c, "v4", "t", "/s", 3, NULL));
    char ok[400], long_id[1200], id[500];
    memset(id, 'i', 481);
    id[481] = '\0';
    snprintf(ok, sizeof ok, "[%s]", ce(a, sizeof a, "ok", "t", "/s", 1, NULL));
    snprintf(long_id, sizeof long_id,
             "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"/s\",\"type\":\"t\"}", id);
    sl_harness *h = api(NULL);
    long c1 = post(h, "application/cloudevents-batch+json", body);
    long c2 = post(h, "application/cloudevents+json", long_id);
    long c3 = post(h, "application/cloudevents-batch+json", ok); /* in the same operator batch */
    run(h);
    resp r = answer(h, c1);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "2 of 5 events are invalid; none of the 5 was stored"));
    assert_non_null(strstr(r.body, "{\"index\":1,\"reason\":\"'source' is required\"}"));
    assert_non_null(strstr(r.body, "{\"index\":3,\"reason\":\"an event must be a JSON object\"}"));
    assert_null(strstr(r.body, "\"index\":0"));
    resp_free(&r);
    expect(h, c2, 400, "'id' is longer than 480 bytes");
    expect(h, c3, 202, "{\"accepted\":1,\"duplicates\":0}");
    sl_harness_destroy(&h);
    assert_null(stored("v0")); /* nothing of the invalid batch */
    assert_null(stored("v4"));
    assert_non_null(stored("ok"));
    assert_int_equal(stored_count(), 1);
}

static void test_media_types_and_sizes(void **st)
{
    char one[300];
    ce(one, sizeof one, "m1", "t", "/s", 1, NULL);
    char arr[400];
    snprintf(arr, sizeof arr, "[%s]", one);
    sl_harness *h = api("max_batch: 3");
    long c1 = post(h, "text/plain", one);
    long c2 = post(h, NULL, one);
    long c3 = post(h, "application/json; charset=latin1", one);
    long c4 = post(h, "application/cloudevents+json", arr);       /* structured: an object */
    long c5 = post(h, "application/cloudevents-batch+json", one); /* batch: an array */
    long c6 = post(h, "application/json", "{\"specversion\":");
    long c7 = post(h, "application/json", "");
    char *four = batch_json("m", 10, 4);
    long c8 = post(h, "application/json", four);
    long c9 = post(h, "Application/CloudEvents-Batch+JSON ; charset=\"UTF-8\"", arr);
    long c10 = post(h, "application/json", "7");
    run(h);
    resp r = answer(h, c1);
    assert_int_equal(r.status, 415);
    assert_non_null(strstr(r.headers, "accept-post: application/cloudevents+json, "
                                      "application/cloudevents-batch+json, application/json\n"));
    resp_free(&r);
    expect(h, c2, 415, "the request has no content-type");
    expect(h, c3, 415, "not accepted");
    expect(h, c4, 400, "application/cloudevents+json is one event");
    expect(h, c5, 400, "application/cloudevents-batch+json is a JSON array");
    expect(h, c6, 400, "the body is not JSON");
    expect(h, c7, 400, "the body is not JSON");
    expect(h, c8, 413, "4 events in one request; at most 3");
    expect(h, c9, 202, "{\"accepted\":1,\"duplicates\":0}");
    expect(h, c10, 400, "a JSON object (one event) or an array");
    assert_int_equal(sl_harness_counter(h, "rejected"), 9);
    sl_harness_destroy(&h);
    assert_int_equal(stored_count(), 1);
    free(four);
}

/* ------------------------------------------------------------ queries */

enum { NQ = 60 }; /* events q0..q59: type t<i%3>, source /s<i%2>, time i s, status PAID if i%4==0 */

static void publish_query_events(void)
{
    char *b = batch_json("q", 0, NQ);
    sl_harness *h = api(NULL);
    long c = post(h, "application/cloudevents-batch+json", b);
    run(h);
    expect(h, c, 202, "{\"accepted\":60,\"duplicates\":0}");
    sl_harness_destroy(&h);
    free(b);
}

/* One GET /v1/events?<query JSON> through a fresh harness: the page. */
static void query(const char *q, const char *more, char ids[][32], size_t *n, char *cursor)
{
    sl_harness *h = api(more);
    long c = push(h, "GET", "/v1/events", q, NULL, NULL);
    run(h);
    page(h, c, ids, n, cursor);
    sl_harness_destroy(&h);
}

/* The ids of the query's whole answer must be exactly q<i> for the i that pass, in order. */
static void expect_ids(const char *q, int (*pass)(int), int desc)
{
    char ids[NQ + 1][32], cursor[64], want[32];
    size_t n, k = 0;
    query(q, NULL, ids, &n, cursor);
    for (int j = 0; j < NQ; j++) {
        int i = desc ? NQ - 1 - j : j;
        if (!pass(i)) continue;
        snprintf(want, sizeof want, "q%d", i);
        if (k >= n || strcmp(ids[k], want) != 0)
            fail_msg("%s: item %zu is %s, expected %s", q, k, k < n ? ids[k] : "(none)", want);
        k++;
    }
    assert_int_equal(n, k);
    assert_string_equal(cursor, "");
}

static int all(int i)
{
    return 1;
}
static int t1(int i)
{
    return i % 3 == 1;
}
static int t0_or_t2(int i)
{
    return i % 3 != 1;
}
static int s1(int i)
{
    return i % 2 == 1;
}
static int range(int i)
{
    return i >= 10 && i < 20;
}
static int paid(int i)
{
    return i % 4 == 0;
}
static int paid_t0_s0_late(int i)
{
    return i % 4 == 0 && i % 3 == 0 && i >= 30;
}

static void test_queries(void **st)
{
    publish_query_events();
    expect_ids("{\"limit\":\"100\"}", all, 0);
    expect_ids("{\"limit\":\"100\",\"order\":\"desc\"}", all, 1);
    expect_ids("{\"type\":\"t1\",\"limit\":\"100\"}", t1, 0);
    expect_ids("{\"type\":\"t2,t0\",\"limit\":\"100\"}", t0_or_t2, 0);
    expect_ids("{\"source\":\"/s1\",\"limit\":\"100\"}", s1, 0);
    expect_ids("{\"start\":\"2026-01-01T00:00:10Z\",\"end\":\"2026-01-01T00:00:20Z\"}", range, 0);
    expect_ids("{\"data.status\":\"PAID\",\"limit\":\"100\",\"order\":\"desc\"}", paid, 1);
    expect_ids("{\"data.status\":\"PAID\",\"type\":\"t0\",\"source\":\"/s0\",\"start\":"
               "\"2026-01-01T00:00:30Z\"}",
               paid_t0_s0_late, 0);
    /* numbers compare by value: 100 matches 100 and 100.0; 100.0 matches both too */
    expect_ids("{\"data.total\":\"100\",\"limit\":\"100\"}", all, 0);
    expect_ids("{\"data.total\":\"1e2\",\"limit\":\"100\"}", all, 0);
}

static int is7(int i)
{
    return i == 7;
}
static int none(int i)
{
    return 0;
}

static void test_query_values(void **st)
{
    publish_query_events();
    expect_ids("{\"data.n\":\"7\"}", is7, 0);
    expect_ids("{\"data.n\":\"7.0\"}", is7, 0);
    expect_ids("{\"data.status\":\"paid\"}", none, 0); /* strings exactly */
    expect_ids("{\"data.nothere\":\"x\"}", none, 0);
    expect_ids("{\"type\":\"nosuch\"}", none, 0);
    expect_ids("{\"subject\":\"x\"}", none, 0);
}

/* Pages of `limit` from the start, following next_cursor: every match exactly once, in order. */
static void walk(const char *filter, const char *more, int limit, int desc, int (*pass)(int),
                 int expect_short_pages)
{
    char ids[NQ + 1][32], cursor[64] = "", q[512], want[32];
    size_t n, k = 0;
    int pages = 0, short_pages = 0, j = 0;
    for (;;) {
        snprintf(q, sizeof q, "{\"limit\":\"%d\"%s%s%s%s%s}", limit,
                 desc ? ",\"order\":\"desc\"" : "", *cursor ? ",\"cursor\":\"" : "", cursor,
                 *cursor ? "\"" : "", filter ? filter : "");
        query(q, more, ids, &n, cursor);
        assert_true(n <= (size_t)limit);
        pages++;
        short_pages += n < (size_t)limit && *cursor;
        for (size_t m = 0; m < n; m++) {
            int i;
            do { /* the next i that passes, in the walk's order */
                i = desc ? NQ - 1 - j : j;
                j++;
            } while (j <= NQ && !pass(i));
            snprintf(want, sizeof want, "q%d", i);
            if (strcmp(ids[m], want) != 0)
                fail_msg("page %d item %zu: %s, expected %s", pages, m, ids[m], want);
            k++;
        }
        if (!*cursor) break;
        assert_true(pages < 100);
    }
    size_t total = 0;
    for (int i = 0; i < NQ; i++)
        total += pass(i) != 0;
    assert_int_equal(k, total);
    if (expect_short_pages) assert_true(short_pages > 0);
}

static void test_cursor_pages(void **st)
{
    publish_query_events();
    walk(NULL, NULL, 7, 0, all, 0);
    walk(NULL, NULL, 7, 1, all, 0);
    walk(NULL, NULL, 60, 0, all, 0); /* exactly one page: no cursor after it */
}

static int t1_or_t2(int i)
{
    return i % 3 != 0;
}

static void test_cursor_pages_filtered(void **st)
{
    publish_query_events();
    walk(",\"type\":\"t1,t2\"", NULL, 4, 1, t1_or_t2, 0);
    walk(",\"data.status\":\"PAID\"", NULL, 3, 0, paid, 0);
    /* max_scan 5: a page examines at most 5 events, so the PAID ones (1 in 4) come in pages
     * cut short, some empty, each with a cursor; together they are every PAID event once */
    walk(",\"data.status\":\"PAID\"", "max_limit: 5\nmax_scan: 5", 5, 0, paid, 1);
    walk(",\"data.status\":\"PAID\"", "max_limit: 5\nmax_scan: 5", 5, 1, paid, 1);
}

static void test_events_sharing_a_time_page_once(void **st)
{
    /* 25 events without time in one request: all at the request's receive time */
    char body[8192], e[300];
    size_t len = 1;
    strcpy(body, "[");
    for (int i = 0; i < 25; i++) {
        char id[16];
        snprintf(id, sizeof id, "z%02d", i);
        len += (size_t)snprintf(body + len, sizeof body - len, "%s%s", i ? "," : "",
                                ce(e, sizeof e, id, "same", "/s", -1, NULL));
    }
    snprintf(body + len, sizeof body - len, "]");
    sl_harness *h = api(NULL);
    long c = post(h, "application/cloudevents-batch+json", body);
    run(h);
    expect(h, c, 202, "{\"accepted\":25,\"duplicates\":0}");
    sl_harness_destroy(&h);
    for (int desc = 0; desc < 2; desc++) {
        char ids[32][32], cursor[64] = "", q[256];
        int seen = 0;
        do {
            size_t n;
            snprintf(q, sizeof q, "{\"type\":\"same\",\"limit\":\"4\"%s%s%s%s}",
                     desc ? ",\"order\":\"desc\"" : "", *cursor ? ",\"cursor\":\"" : "", cursor,
                     *cursor ? "\"" : "");
            query(q, NULL, ids, &n, cursor);
            for (size_t m = 0; m < n; m++, seen++) {
                char want[16];
                snprintf(want, sizeof want, "z%02d", desc ? 24 - seen : seen);
                assert_string_equal(ids[m], want); /* ties ordered by offset */
            }
        } while (*cursor);
        assert_int_equal(seen, 25);
    }
}

static void test_bad_queries(void **st)
{
    static const struct {
        const char *q, *has;
    } bad[] = {
        {"{\"limit\":\"0\"}", "limit=0: give an integer from 1 to 1000"},
        {"{\"limit\":\"1001\"}", "limit=1001"},
        {"{\"limit\":\"ten\"}", "limit=ten"},
        {"{\"limit\":\"-1\"}", "limit=-1"},
        {"{\"order\":\"up\"}", "order=up: give asc or desc"},
        {"{\"cursor\":\"abc\"}", "not a cursor of this API"},
        {"{\"cursor\":\"YQAAAAAAAAAAAAAAAAAAAAA!\"}", "not a cursor of this API"},
        {"{\"start\":\"yesterday\"}", "start=yesterday: not an RFC 3339 time"},
        {"{\"end\":\"2026-13-01T00:00:00Z\"}", "end=2026-13-01T00:00:00Z: not an RFC 3339 time"},
        {"{\"start\":\"2026-01-02T00:00:00Z\",\"end\":\"2026-01-01T00:00:00Z\"}",
         "start is after end"},
        {"{\"types\":\"a\"}", "unknown query parameter 'types'"},
        {"{\"type\":\"a,,b\"}", "an empty type"},
        {"{\"type\":\"\"}", "an empty type"},
        {"{\"data.\":\"x\"}", "unknown query parameter 'data.'"},
        {"{\"data.a..b\":\"x\"}", "not a field path"},
    };
    size_t nb = sizeof bad / sizeof *bad;
    long conns[32];
    sl_harness *h = api(NULL);
    for (size_t i = 0; i < nb; i++)
        conns[i] = push(h, "GET", "/v1/events", bad[i].q, NULL, NULL);
    run(h);
    for (size_t i = 0; i < nb; i++)
        expect(h, conns[i], 400, bad[i].has);
    assert_int_equal(sl_harness_counter(h, "rejected"), nb);
    assert_int_equal(sl_harness_counter(h, "queries"), 0); /* none read the log */
    sl_harness_destroy(&h);

    /* a cursor continues in its own order: another one given is refused */
    publish_query_events();
    char ids[NQ + 1][32], cursor[64], q[256];
    size_t n;
    query("{\"limit\":\"2\"}", NULL, ids, &n, cursor);
    assert_int_equal(n, 2);
    assert_true(*cursor);
    h = api(NULL);
    snprintf(q, sizeof q, "{\"order\":\"desc\",\"cursor\":\"%s\"}", cursor);
    long c1 = push(h, "GET", "/v1/events", q, NULL, NULL);
    snprintf(q, sizeof q, "{\"order\":\"asc\",\"limit\":\"1\",\"cursor\":\"%s\"}", cursor);
    long c2 = push(h, "GET", "/v1/events", q, NULL, NULL);
    run(h);
    expect(h, c1, 400, "the cursor continues a query in asc order");
    expect(h, c2, 200, "\"id\":\"q2\"");
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ routes, scopes */

static void test_routes(void **st)
{
    char one[300];
    ce(one, sizeof one, "r1", "t", "/s", 1, NULL);
    sl_harness *h = api(NULL);
    long c1 = push(h, "GET", "/v1/events/nope", NULL, NULL, NULL);
    long c2 = push(h, "DELETE", "/v1/events", NULL, NULL, NULL);
    long c3 = push(h, "POST", "/v1/events/r1", NULL, "application/cloudevents+json", one);
    long c4 = push(h, "GET", "/v1/events/stream", NULL, NULL, NULL);
    long c5 = push(h, "GET", "/v1/events/", NULL, NULL, NULL);
    push(h, "GET", "/v1/eventsx", NULL, NULL, NULL); /* not under the prefix: out */
    push(h, "GET", "/healthz", NULL, NULL, NULL);
    assert_int_equal(sl_harness_push(h, "{\"conn\":99,\"method\":\"GET\"}"), 0); /* no path */
    assert_int_equal(sl_harness_run(h), 0);
    expect(h, c1, 404, "no event with id 'nope'");
    resp r = answer(h, c2);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.headers, "allow: GET, POST\n"));
    resp_free(&r);
    r = answer(h, c3);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.headers, "allow: GET\n"));
    resp_free(&r);
    expect(h, c4, 501, "server-sent events");
    expect(h, c5, 404, "no event with id ''");
    assert_int_equal(sl_harness_count(h, "answered"), 5);
    assert_int_equal(sl_harness_count(h, "out"), 2);
    /* unchanged: no response added */
    assert_non_null(strstr(sl_harness_out(h, "out", 0), "\"path\":\"/v1/eventsx\""));
    assert_null(strstr(sl_harness_out(h, "out", 0), "response"));
    assert_int_equal(sl_harness_count(h, "errors"), 1);
    assert_non_null(strstr(sl_harness_out(h, "errors", 0), "\"reason\":\"malformed\""));
    assert_int_equal(sl_harness_counter(h, "queries"), 2); /* the two 404s read the log */
    sl_harness_destroy(&h);
    assert_int_equal(stored_count(), 0);

    /* another prefix */
    h = api("prefix: /events");
    long c6 = push(h, "GET", "/events", NULL, NULL, NULL);
    push(h, "GET", "/v1/events", NULL, NULL, NULL);
    run(h);
    expect(h, c6, 200, "{\"items\":[],\"count\":0,\"next_cursor\":null}");
    assert_int_equal(sl_harness_count(h, "out"), 1);
    sl_harness_destroy(&h);
}

static void test_scopes(void **st)
{
    char one[300], two[300];
    ce(one, sizeof one, "s1", "t", "/s", 1, NULL);
    ce(two, sizeof two, "s2", "t", "/s", 1, NULL);
    sl_harness *h = api(NULL);
    long c1 = push_scoped(h, "POST", "/v1/events", NULL, "application/cloudevents+json", one, NULL);
    long c2 = push_scoped(h, "POST", "/v1/events", NULL, "application/cloudevents+json", one,
                          "[\"events:read\"]");
    long c3 = push_scoped(h, "GET", "/v1/events", NULL, NULL, NULL, "[\"events:read\"]");
    long c4 = push_scoped(h, "GET", "/v1/events/s1", NULL, NULL, NULL, "[\"events:write\"]");
    long c5 = push_scoped(h, "POST", "/v1/events", NULL, "application/cloudevents+json", two,
                          "[\"events:write\"]");
    run(h);
    expect(h, c1, 403, "this request needs scope 'events:write' (the request carries no scopes");
    expect(h, c2, 403, "this request needs scope 'events:write'");
    expect(h, c3, 200, "\"items\":[]");
    expect(h, c4, 403, "this request needs scope 'events:read'");
    expect(h, c5, 202, "\"accepted\":1");
    sl_harness_destroy(&h);
    /* '' turns the check off */
    h = api("read_scope: ''\nwrite_scope: ''");
    long c6 = push_scoped(h, "POST", "/v1/events", NULL, "application/cloudevents+json", one, NULL);
    long c7 = push_scoped(h, "GET", "/v1/events/s2", NULL, NULL, NULL, NULL);
    run(h);
    expect(h, c6, 202, "\"accepted\":1");
    expect(h, c7, 200, "\"id\":\"s2\"");
    sl_harness_destroy(&h);
}

/* Events appended by sink.log (no specversion) are served as CloudEvents. */
static void test_events_from_sink_log(void **st)
{
    char yaml[256];
    snprintf(yaml, sizeof yaml, "type: sink.log\npath: '%s'", log_dir);
    sl_harness *h = sl_harness_new(yaml);
    assert_non_null(h);
    assert_int_equal(sl_harness_push(h, "{\"id\":\"k1\",\"type\":\"order\",\"source\":\"/p\","
                                        "\"time\":\"2026-01-01T00:00:05Z\",\"data\":{\"a\":1}}"),
                     0);
    assert_int_equal(sl_harness_run(h), 0);
    sl_harness_destroy(&h);
    h = api(NULL);
    long c1 = push(h, "GET", "/v1/events/k1", NULL, NULL, NULL);
    long c2 = push(h, "GET", "/v1/events", "{\"type\":\"order\"}", NULL, NULL);
    run(h);
    const char *want =
        "{\"specversion\":\"1.0\",\"id\":\"k1\",\"type\":\"order\",\"source\":\"/p\","
        "\"time\":\"2026-01-01T00:00:05Z\",\"data\":{\"a\":1}}";
    resp r = answer(h, c1);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, want);
    resp_free(&r);
    expect(h, c2, 200, want);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ configuration */

static void test_config_mistakes(void **st)
{
    static const char *const bad[] = {
        "type: events_api",
        "type: events_api\nlog: ''",
        "type: events_api\nlog: x\nsync: full",
        "type: events_api\nlog: x\nprefix: v1/events",
        "type: events_api\nlog: x\nprefix: /v1/events/",
        "type: events_api\nlog: x\nprefix: /v1/*",
        "type: events_api\nlog: x\nmax_batch: 0",
        "type: events_api\nlog: x\nmax_limit: 0",
        "type: events_api\nlog: x\ndefault_limit: 2000",
        "type: events_api\nlog: x\nmax_limit: 50\nmax_scan: 10",
        "type: events_api\nlog: x\nmap_size: 1KiB",
        "type: events_api\nlog: x\nretention: {max_age: forever}",
        "type: events_api\nlog: x\nretention: {max_count: 5}",
        "type: events_api\nlog: x\nmax_limt: 5",
    };
    assert_int_equal(sl_harness_config_mismatches(bad, sizeof bad / sizeof *bad, 0), 0);
    static const char *const good[] = {
        "type: events_api\nlog: x",
        "type: events_api\nlog: x\nsync: fast",
        "type: events_api\nlog: x\nprefix: /events",
        "type: events_api\nlog: x\nmax_batch: 1",
        "type: events_api\nlog: x\nmax_limit: 1\ndefault_limit: 1\nmax_scan: 1",
        "type: events_api\nlog: x\nretention: {max_age: 7d, max_size: 1GiB}",
        "type: events_api\nlog: x\nread_scope: ''\nwrite_scope: publish",
    };
    assert_int_equal(sl_harness_config_mismatches(good, sizeof good / sizeof *good, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_publish_one_then_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_are_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests_share_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_full_log_answers_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_are_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_rule_is_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_is_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_media_types_and_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_pages_filtered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_sharing_a_time_page_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_queries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scopes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_from_sink_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_mistakes, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sl_json_parser_destroy(&jp);
    return rc;
}
