/*
 * test_cache.c - the gateway's response cache: `cache` (request side) and
 * `cache.store` (response side) through the harness, one operator per run,
 * and both wired together in one real pipeline.
 *
 * The two operators share a table registered under the `cache` operator's
 * name ("op" in the harness). The test holds a reference on it across runs,
 * so a sequence miss -> response stored -> hit is three runs, each over one
 * input slot, in order. A miss that leaves `cache` is given a response the
 * way an endpoint would and pushed into `cache.store`. The clock is the
 * requests' `time`, so nothing sleeps.
 *
 * What it checks: a miss marked {hit: false, gen}, stored, then a hit with
 * the same body, x-cache HIT and age; query order and duplicate scopes do
 * not change the key, other scopes do (vary_scope), vary_consumer; POST is
 * never cached, HEAD is served from the GET entry, 404 only with
 * negative_ttl; ttl on the requests' own time; max-age, s-maxage,
 * no-store, private, no-cache, set-cookie, Vary, content-encoding; the
 * request's no-cache, no-store and max-age; ETags (made, or the
 * endpoint's), If-None-Match with *, lists and W/ -> 304 on hits and on
 * misses; gzip only when accepted (q-values, *), small bodies not
 * compressed, the gzip body inflating to the original, vary, gzip: false;
 * invalidation by key (not /apis/pay-10 for /apis/pay-1), by exact path
 * and query, by prefix and by "path?", on a successful write, and a
 * response older than an invalidation not stored; eviction by max_entries
 * (clock: used entries stay, expired ones go first) and max_bytes,
 * max_object; malformed events; configuration mistakes; the HTTP helpers
 * directly (Accept-Encoding, If-None-Match, Cache-Control, the canonical
 * key); and 5000 requests through source.file -> cache -> transform ->
 * cache.store -> sink.file, each answered once with its own body.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "cache.h"
#include "harness.h"
#include "json.h"
#include "pipeline.h"
#include "runtime.h"

static sl_cache_table *held; /* the test's reference: the table outlives each run */
static sl_harness *last;     /* the last run's harness, for its outputs and counters */

#define BASE "type: cache\n"

/* ------------------------------------------------------------ runs */

static int setup(void **st)
{
    (void)st;
    held = sl_cache_table_acquire("op", 1, NULL);
    return held ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    sl_harness_destroy(&last);
    sl_cache_table_release(&held);
    return 0;
}

/* Run `cache` with body `conf` (after "type: cache") over n requests. */
static void lookup_n(const char *conf, const char *const *reqs, size_t n)
{
    sl_harness_destroy(&last);
    char yaml[2048];
    snprintf(yaml, sizeof yaml, BASE "%s", conf);
    last = sl_harness_new(yaml);
    assert_non_null(last);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sl_harness_push(last, reqs[i]), 0);
    assert_int_equal(sl_harness_run(last), 0);
}

static void lookup1(const char *conf, const char *req)
{
    lookup_n(conf, &req, 1);
}

/* Run `cache.store` over answered events and invalidations, in this order. */
static void store_n(const char *const *evs, size_t n)
{
    sl_harness_destroy(&last);
    last = sl_harness_new("type: cache.store\ncache: op");
    assert_non_null(last);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sl_harness_push(last, evs[i]), 0);
    assert_int_equal(sl_harness_run(last), 0);
}

static void store1(const char *ev)
{
    store_n(&ev, 1);
}

/* An invalidation event: `members` is its keys and/or prefixes (JSON members text). */
static void invalidate1(const char *members)
{
    char ev[1024];
    snprintf(ev, sizeof ev, "{\"id\":\"i\",\"type\":\"cache.invalidate\",%s}", members);
    store1(ev);
}

static size_t count(const char *port)
{
    return sl_harness_count(last, port);
}
static const char *out(const char *port, size_t i)
{
    const char *s = sl_harness_out(last, port, i);
    assert_non_null(s);
    return s;
}
static unsigned long long ctr(const char *name)
{
    return sl_harness_counter(last, name);
}

/* ------------------------------------------------------------ events */

/*
 * A request: method, path, query (JSON object text or NULL), headers (JSON
 * members text or NULL), scopes (JSON array text or NULL), time in ms after
 * 2026-01-01T00:00:00Z. Returned in one of 16 rotating static buffers.
 */
static const char *req(const char *method, const char *path, const char *query, const char *headers,
                       const char *scopes, long ms)
{
    static char bufs[16][4096];
    static int k;
    char *b = bufs[k++ % 16], t[40];
    snprintf(b, 4096,
             "{\"id\":\"r\",\"type\":\"http.request\",\"time\":\"%s\",\"conn\":7,\"method\":\"%s\","
             "\"path\":\"%s\",\"query\":%s,\"headers\":{%s},\"body\":\"\",\"consumer\":\"acme\","
             "\"scopes\":%s}",
             sl_harness_time(t, ms), method, path, query ? query : "{}", headers ? headers : "",
             scopes ? scopes : "[\"catalog:read\"]");
    return b;
}

#define GET(path, ms) req("GET", path, NULL, NULL, NULL, ms)

/* Event json (an object) with `,"response":{"status":S,"headers":{H},"body":"B"}` added. */
static char *answered(const char *json, int status, const char *headers, const char *body)
{
    size_t n = strlen(json), cap = n + strlen(body) + 1024 + (headers ? strlen(headers) : 0);
    char *s = malloc(cap);
    assert_non_null(s);
    assert_true(n > 2 && json[n - 1] == '}');
    snprintf(s, cap, "%.*s,\"response\":{\"status\":%d,\"headers\":{%s},\"body\":\"%s\"}}",
             (int)(n - 1), json, status, headers ? headers : "\"content-type\":\"text/plain\"",
             body);
    return s;
}

/*
 * One miss through both operators: `request` through cache (must miss), the
 * miss answered (status, headers, body) through cache.store. Returns the
 * answer cache.store emitted (a copy, caller frees).
 */
static char *roundtrip(const char *conf, const char *request, int status, const char *headers,
                       const char *body)
{
    lookup1(conf, request);
    assert_int_equal(count("hits"), 0);
    assert_int_equal(count("out"), 1);
    char *a = answered(out("out", 0), status, headers, body);
    store1(a);
    free(a);
    assert_int_equal(count("out"), 1);
    return strdup(out("out", 0));
}

static void stored(const char *conf, const char *request, const char *body)
{
    free(roundtrip(conf, request, 200, NULL, body));
}

/* Whether request misses (1) or hits (0), through `cache` alone. */
static int misses(const char *conf, const char *request)
{
    lookup1(conf, request);
    assert_int_equal(count("out") + count("hits"), 1);
    return count("out") == 1;
}

static uint64_t entries(void)
{
    uint64_t n, bytes;
    sl_cache_table_stats(held, &n, &bytes);
    return n;
}

/* Start over with an empty table (the last run's harness holds a reference too). */
static void fresh_table(void)
{
    sl_harness_destroy(&last);
    sl_cache_table_release(&held);
    held = sl_cache_table_acquire("op", 1, NULL);
    assert_non_null(held);
    assert_int_equal(entries(), 0);
}

/* The `response` member of an answered event's JSON (its body is the last "body" there). */
static const char *resp_of(const char *json)
{
    const char *r = strstr(json, "\"response\":{");
    assert_non_null(r);
    return r;
}

#define CONF "ttl: 60s\n"

/* ------------------------------------------------------------ the basic cycle */

static void test_miss_store_hit(void **st)
{
    (void)st;
    lookup1(CONF, GET("/apis/pay-1", 1000));
    assert_int_equal(count("out"), 1);
    assert_int_equal(count("hits"), 0);
    assert_int_equal(ctr("misses"), 1);
    /* the miss goes on, marked, otherwise as it came */
    const char *m = out("out", 0);
    assert_non_null(strstr(m, "\"path\":\"/apis/pay-1\",\"query\":{}"));
    assert_non_null(strstr(m, "\"cache\":{\"hit\":false,\"gen\":0}"));
    assert_null(strstr(m, "\"response\""));

    char *a = answered(m, 200, "\"content-type\":\"application/json\",\"content-length\":\"13\"",
                       "api pay-1 v1");
    store1(a);
    free(a);
    assert_int_equal(count("out"), 1);
    assert_int_equal(ctr("stores"), 1);
    const char *s = out("out", 0);
    assert_non_null(strstr(s, "\"status\":200"));
    assert_non_null(strstr(s, "\"x-cache\":\"MISS\""));
    assert_non_null(strstr(s, "\"etag\":\"\\\""));
    assert_null(strstr(s, "content-length")); /* respond writes it */
    assert_non_null(strstr(resp_of(s), "\"body\":\"api pay-1 v1\""));
    assert_int_equal(entries(), 1);
    const char *etag = strstr(s, "\"etag\":");
    char tag[64];
    assert_int_equal(sscanf(etag, "\"etag\":%40[^,}]", tag), 1);

    lookup1(CONF, GET("/apis/pay-1", 6500));
    assert_int_equal(count("hits"), 1);
    assert_int_equal(count("out"), 0);
    assert_int_equal(ctr("hits"), 1);
    const char *h = out("hits", 0);
    assert_non_null(strstr(h, "\"conn\":7"));
    assert_non_null(strstr(h, "\"consumer\":\"acme\""));
    assert_non_null(strstr(h, "\"status\":200"));
    assert_non_null(strstr(h, "\"content-type\":\"application/json\""));
    assert_non_null(strstr(h, "\"age\":\"5\""));
    assert_non_null(strstr(h, "\"x-cache\":\"HIT\""));
    assert_non_null(strstr(h, tag));
    assert_non_null(strstr(resp_of(h), "\"body\":\"api pay-1 v1\""));
    assert_non_null(strstr(h, "\"cache\":{\"hit\":true}"));
}

static void test_query_order_is_one_key(void **st)
{
    (void)st;
    stored(CONF, req("GET", "/apis", "{\"page\":\"2\",\"category\":\"pay\"}", NULL, NULL, 0), "p2");
    assert_int_equal(misses(CONF, req("GET", "/apis", "{\"category\":\"pay\",\"page\":\"2\"}", NULL,
                                      NULL, 1000)),
                     0);
    assert_non_null(strstr(resp_of(out("hits", 0)), "\"body\":\"p2\""));
    assert_int_equal(misses(CONF, req("GET", "/apis", "{\"category\":\"pay\",\"page\":\"3\"}", NULL,
                                      NULL, 1000)),
                     1);
    assert_int_equal(misses(CONF, req("GET", "/apis", "{\"category\":\"pay\"}", NULL, NULL, 1000)),
                     1);
    assert_int_equal(misses(CONF, GET("/apis", 1000)), 1);
}

static void test_scopes_vary(void **st)
{
    (void)st;
    stored(CONF, req("GET", "/apis/x", NULL, NULL, "[\"b\",\"a\"]", 0), "ab");
    assert_int_equal(misses(CONF, req("GET", "/apis/x", NULL, NULL, "[\"a\",\"b\"]", 1)), 0);
    assert_int_equal(misses(CONF, req("GET", "/apis/x", NULL, NULL, "[\"a\",\"b\",\"a\"]", 1)), 0);
    assert_int_equal(misses(CONF, req("GET", "/apis/x", NULL, NULL, "[\"a\"]", 1)), 1);
    assert_int_equal(misses(CONF, req("GET", "/apis/x", NULL, NULL, "[]", 1)), 1);
    /* another entry for the other scopes: both kept */
    stored(CONF, req("GET", "/apis/x", NULL, NULL, "[\"a\"]", 2), "a only");
    assert_int_equal(entries(), 2);
    assert_int_equal(misses(CONF, req("GET", "/apis/x", NULL, NULL, "[\"a\"]", 3)), 0);
    assert_non_null(strstr(resp_of(out("hits", 0)), "\"body\":\"a only\""));
    assert_int_equal(misses(CONF, req("GET", "/apis/x", NULL, NULL, "[\"b\",\"a\"]", 3)), 0);
    assert_non_null(strstr(resp_of(out("hits", 0)), "\"body\":\"ab\""));
}

static void test_scopes_not_varied_and_consumer(void **st)
{
    (void)st;
    const char *conf = CONF "vary_scope: false\n";
    stored(conf, req("GET", "/apis/x", NULL, NULL, "[\"b\",\"a\"]", 0), "shared");
    assert_int_equal(misses(conf, req("GET", "/apis/x", NULL, NULL, "[\"z\"]", 1)), 0);
    /* vary_consumer: the consumer is part of the key (another table: another name) */
    fresh_table();
    const char *per = CONF "vary_consumer: true\n";
    stored(per, GET("/v1/mine", 0), "acme's");
    assert_int_equal(misses(per, GET("/v1/mine", 1)), 0);
    char other[4096];
    snprintf(other, sizeof other, "%s", GET("/v1/mine", 1));
    char *c = strstr(other, "\"acme\"");
    memcpy(c, "\"beta\"", 6);
    assert_int_equal(misses(per, other), 1);
}

static void test_methods(void **st)
{
    (void)st;
    /* POST is never cached: it goes on untouched, and its answer is not stored */
    const char *post = req("POST", "/apis", NULL, NULL, NULL, 0);
    lookup1(CONF, post);
    assert_int_equal(count("out"), 1);
    assert_int_equal(ctr("bypass"), 1);
    assert_null(strstr(out("out", 0), "\"cache\""));
    char *a = answered(out("out", 0), 201, NULL, "made");
    store1(a);
    free(a);
    assert_int_equal(ctr("stores"), 0);
    assert_null(strstr(out("out", 0), "x-cache"));
    assert_null(strstr(out("out", 0), "etag"));
    assert_int_equal(entries(), 0);
    /* a GET's entry answers HEAD; a HEAD miss is not stored */
    lookup1(CONF, req("HEAD", "/apis/h", NULL, NULL, NULL, 0));
    a = answered(out("out", 0), 200, NULL, "");
    store1(a);
    free(a);
    assert_int_equal(ctr("stores"), 0);
    stored(CONF, GET("/apis/h", 0), "head me");
    assert_int_equal(misses(CONF, req("HEAD", "/apis/h", NULL, NULL, NULL, 1)), 0);
    assert_non_null(strstr(out("hits", 0), "\"status\":200"));
    /* other statuses are not stored (404 only with negative_ttl) */
    free(roundtrip(CONF, GET("/apis/none", 0), 404, NULL, "no"));
    free(roundtrip(CONF, GET("/apis/err", 0), 500, NULL, "oops"));
    assert_int_equal(ctr("stores"), 0);
    assert_int_equal(ctr("uncacheable"), 1);
    const char *neg = CONF "negative_ttl: 5s\n";
    free(roundtrip(neg, GET("/apis/none", 0), 404, NULL, "no"));
    assert_int_equal(ctr("stores"), 1);
    assert_int_equal(misses(neg, GET("/apis/none", 4999)), 0);
    assert_non_null(strstr(out("hits", 0), "\"status\":404"));
    assert_null(strstr(out("hits", 0), "etag")); /* ETags are for 200s */
    assert_int_equal(misses(neg, GET("/apis/none", 5000)), 1);
}

/* ------------------------------------------------------------ freshness */

static void test_ttl_on_request_time(void **st)
{
    (void)st;
    const char *conf = "ttl: 10s\n";
    stored(conf, GET("/apis/t", 1000), "t");
    assert_int_equal(misses(conf, GET("/apis/t", 10999)), 0);
    assert_non_null(strstr(out("hits", 0), "\"age\":\"9\""));
    assert_int_equal(misses(conf, GET("/apis/t", 11000)), 1);
    /* a request stamped before the store (another loop's clock): age 0 */
    assert_int_equal(misses(conf, GET("/apis/t", 500)), 0);
    assert_non_null(strstr(out("hits", 0), "\"age\":\"0\""));
}

static void test_response_cache_control(void **st)
{
    (void)st;
    free(roundtrip(CONF, GET("/apis/m", 0), 200, "\"cache-control\":\"public, max-age=5\"", "m"));
    assert_int_equal(misses(CONF, GET("/apis/m", 4999)), 0);
    assert_non_null(strstr(out("hits", 0), "\"cache-control\":\"public, max-age=5\""));
    assert_int_equal(misses(CONF, GET("/apis/m", 5000)), 1);
    /* s-maxage wins over max-age for a shared cache */
    free(roundtrip(CONF, GET("/apis/s", 0), 200, "\"cache-control\":\"max-age=100, s-maxage=2\"",
                   "s"));
    assert_int_equal(misses(CONF, GET("/apis/s", 1999)), 0);
    assert_int_equal(misses(CONF, GET("/apis/s", 2000)), 1);
    /* max-age longer than ttl: ttl */
    free(roundtrip("ttl: 3s\n", GET("/apis/l", 0), 200, "\"cache-control\":\"max-age=600\"", "l"));
    assert_int_equal(misses("ttl: 3s\n", GET("/apis/l", 3000)), 1);
    /* not stored: no-store, private, no-cache, max-age=0, set-cookie, Vary on another header */
    static const char *const refuse[] = {
        "\"cache-control\":\"no-store\"",
        "\"cache-control\":\"Private\"",
        "\"cache-control\":\"private=\\\"x\\\", max-age=60\"",
        "\"cache-control\":\"no-cache\"",
        "\"cache-control\":\"max-age=0\"",
        "\"cache-control\":\"max-age=abc\"",
        "\"set-cookie\":\"a=b\"",
        "\"vary\":\"origin\"",
        "\"vary\":\"*\"",
        "\"content-encoding\":\"br\"",
    };
    for (size_t i = 0; i < sizeof refuse / sizeof *refuse; i++) {
        char path[32];
        snprintf(path, sizeof path, "/apis/r%zu", i);
        char *s = roundtrip(CONF, GET(path, 0), 200, refuse[i], "r");
        assert_int_equal(ctr("stores"), 0);
        assert_int_equal(ctr("uncacheable"), 1);
        assert_non_null(strstr(s, "\"x-cache\":\"MISS\""));
        free(s);
        assert_int_equal(misses(CONF, GET(path, 1)), 1);
    }
    /* Vary: accept-encoding alone is fine */
    free(roundtrip(CONF, GET("/apis/v", 0), 200, "\"vary\":\"Accept-Encoding\"", "v"));
    assert_int_equal(ctr("stores"), 1);
}

static void test_request_cache_control(void **st)
{
    (void)st;
    stored(CONF, GET("/apis/q", 0), "v1");
    /* no-cache: a miss (revalidate), and the new answer is stored */
    const char *nc = req("GET", "/apis/q", NULL, "\"cache-control\":\"no-cache\"", NULL, 1000);
    free(roundtrip(CONF, nc, 200, NULL, "v2"));
    assert_int_equal(ctr("stores"), 1);
    assert_int_equal(misses(CONF, GET("/apis/q", 2000)), 0);
    assert_non_null(strstr(resp_of(out("hits", 0)), "\"body\":\"v2\""));
    /* no-store: a miss, and its answer is not stored */
    const char *ns = req("GET", "/apis/q", NULL, "\"cache-control\":\"no-store\"", NULL, 3000);
    char *s = roundtrip(CONF, ns, 200, NULL, "v3");
    assert_non_null(strstr(resp_of(s), "\"body\":\"v3\""));
    free(s);
    assert_int_equal(ctr("stores"), 0);
    assert_int_equal(misses(CONF, GET("/apis/q", 4000)), 0);
    assert_non_null(strstr(resp_of(out("hits", 0)), "\"body\":\"v2\""));
    /* max-age: an entry older than that is a miss (v2 was stored at 1 s: age 3 s at 4 s) */
    const char *young = req("GET", "/apis/q", NULL, "\"cache-control\":\"max-age=3\"", NULL, 4000);
    assert_int_equal(misses(CONF, young), 0);
    const char *strict = req("GET", "/apis/q", NULL, "\"cache-control\":\"max-age=2\"", NULL, 4000);
    assert_int_equal(misses(CONF, strict), 1);
}

/* ------------------------------------------------------------ ETag and 304 */

static void test_etag_and_304(void **st)
{
    (void)st;
    char *s = roundtrip(CONF, GET("/apis/e", 0), 200, NULL, "etag me");
    char tag[64], inm[160];
    assert_int_equal(sscanf(strstr(s, "\"etag\":"), "\"etag\":%40[^,}]", tag), 1);
    free(s);
    /* tag is the JSON text "\"0123456789abcdef\"": the header's value with its quotes */
    assert_int_equal(strlen(tag), 22);
    char bare[32];
    snprintf(bare, sizeof bare, "%.16s", tag + 3);
    static const char *const match[] = {"\\\"%s\\\"", "W/\\\"%s\\\"", "\\\"x\\\", \\\"%s\\\"",
                                        " \\\"a\\\",W/\\\"%s\\\" ", "*"};
    for (size_t i = 0; i < sizeof match / sizeof *match; i++) {
        char v[96];
        snprintf(v, sizeof v, match[i], bare);
        snprintf(inm, sizeof inm, "\"if-none-match\":\"%s\"", v);
        assert_int_equal(misses(CONF, req("GET", "/apis/e", NULL, inm, NULL, 1000)), 0);
        const char *h = out("hits", 0);
        assert_non_null(strstr(h, "\"status\":304"));
        assert_non_null(strstr(resp_of(h), "\"body\":\"\""));
        assert_non_null(strstr(h, tag));
        assert_non_null(strstr(h, "\"x-cache\":\"HIT\""));
        assert_null(strstr(h, "content-type")); /* a 304 repeats only the validator fields */
        assert_int_equal(ctr("not_modified"), 1);
    }
    static const char *const differ[] = {"\\\"x\\\"", "\\\"%s-gz\\\"", "%s", "\\\"%s"};
    for (size_t i = 0; i < sizeof differ / sizeof *differ; i++) {
        char v[96];
        snprintf(v, sizeof v, differ[i], bare);
        snprintf(inm, sizeof inm, "\"if-none-match\":\"%s\"", v);
        assert_int_equal(misses(CONF, req("GET", "/apis/e", NULL, inm, NULL, 1000)), 0);
        assert_non_null(strstr(out("hits", 0), "\"status\":200"));
        assert_non_null(strstr(resp_of(out("hits", 0)), "\"body\":\"etag me\""));
    }
    /* on a miss too: the response passing through becomes a 304 when it matches */
    s = roundtrip(CONF, req("GET", "/apis/e2", NULL, "\"if-none-match\":\"\\\"zz\\\"\"", NULL, 0),
                  200, NULL, "other");
    assert_non_null(strstr(s, "\"status\":200"));
    free(s);
    snprintf(inm, sizeof inm, "\"if-none-match\":\"\\\"%s\\\"\"", bare);
    s = roundtrip(CONF, req("GET", "/apis/e3", NULL, inm, NULL, 0), 200, NULL, "etag me");
    assert_non_null(strstr(s, "\"status\":304"));
    assert_non_null(strstr(s, "\"x-cache\":\"MISS\""));
    assert_non_null(strstr(resp_of(s), "\"body\":\"\""));
    assert_int_equal(ctr("not_modified"), 1);
    free(s);
    assert_int_equal(misses(CONF, GET("/apis/e3", 1)), 0); /* stored all the same */
    assert_non_null(strstr(resp_of(out("hits", 0)), "\"body\":\"etag me\""));
}

static void test_endpoint_etag_kept(void **st)
{
    (void)st;
    char *s = roundtrip(CONF, GET("/apis/o", 0), 200, "\"etag\":\"W/\\\"v42\\\"\"", "o");
    assert_non_null(strstr(s, "\"etag\":\"W/\\\"v42\\\"\""));
    free(s);
    assert_int_equal(
        misses(CONF, req("GET", "/apis/o", NULL, "\"if-none-match\":\"\\\"v42\\\"\"", NULL, 1)), 0);
    assert_non_null(strstr(out("hits", 0), "\"status\":304"));
    /* kept on answers the cache does not make conditional too (a POST's, compressed) */
    char big[700];
    memset(big, 'b', 699);
    big[699] = '\0';
    lookup1(CONF, req("POST", "/apis", NULL, "\"accept-encoding\":\"gzip\"", NULL, 2));
    char *a = answered(out("out", 0), 201, "\"etag\":\"\\\"p1\\\"\"", big);
    store1(a);
    free(a);
    assert_non_null(strstr(out("out", 0), "\"content-encoding\":\"gzip\""));
    assert_non_null(strstr(out("out", 0), "\"etag\":\"\\\"p1-gz\\\"\""));
}

/* ------------------------------------------------------------ gzip */

static size_t b64dec(const char *s, size_t n, unsigned char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *c = strchr(tab, s[i]);
        assert_non_null(c);
        acc = acc << 6 | (uint32_t)(c - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

/* The body of an answer with a gzip body (base64 in JSON), inflated into buf. */
static size_t gunzip_body(const char *answer, char *buf, size_t cap)
{
    const char *b = strstr(resp_of(answer), "\"body\":\"");
    assert_non_null(b);
    b += 8;
    const char *e = strchr(b, '"');
    unsigned char *raw = malloc((size_t)(e - b));
    size_t rn = b64dec(b, (size_t)(e - b), raw);
    assert_true(raw[0] == 0x1f && raw[1] == 0x8b); /* the gzip magic */
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = raw;
    z.avail_in = (uInt)rn;
    z.next_out = (Bytef *)buf;
    z.avail_out = (uInt)cap;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = cap - z.avail_out;
    inflateEnd(&z);
    free(raw);
    return n;
}

static void test_gzip(void **st)
{
    (void)st;
    char body[2100] = "";
    for (int i = 0; i < 100; i++)
        snprintf(body + strlen(body), sizeof body - strlen(body), "api-%03d payments; ", i);
    const char *gz = "\"accept-encoding\":\"gzip, deflate, br\"";
    char *s = roundtrip(CONF, req("GET", "/apis/z", NULL, gz, NULL, 0), 200, NULL, body);
    assert_non_null(strstr(s, "\"content-encoding\":\"gzip\""));
    assert_non_null(strstr(s, "\"vary\":\"accept-encoding\""));
    assert_non_null(strstr(s, "-gz\\\"\"")); /* the gzip form has its own ETag */
    char plain[4096];
    size_t n = gunzip_body(s, plain, sizeof plain);
    assert_int_equal(n, strlen(body));
    assert_memory_equal(plain, body, n);
    free(s);
    assert_int_equal(ctr("gzip_served"), 1);
    /* hits: gzip when accepted, else the identity body, vary on both */
    static const struct {
        const char *ae;
        int gz;
    } cases[] = {
        {"\"accept-encoding\":\"gzip\"", 1},
        {"\"accept-encoding\":\"GZIP;q=0.5\"", 1},
        {"\"accept-encoding\":\"x-gzip\"", 1},
        {"\"accept-encoding\":\"*\"", 1},
        {"\"accept-encoding\":\"br;q=1.0, *;q=0.1\"", 1},
        {"\"accept-encoding\":\"gzip;q=0\"", 0},
        {"\"accept-encoding\":\"gzip; q=0.000\"", 0},
        {"\"accept-encoding\":\"gzip;q=0, *\"", 0},
        {"\"accept-encoding\":\"*;q=0\"", 0},
        {"\"accept-encoding\":\"identity\"", 0},
        {"\"accept-encoding\":\"br, deflate\"", 0},
        {"\"accept-encoding\":\"\"", 0},
        {NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(misses(CONF, req("GET", "/apis/z", NULL, cases[i].ae, NULL, 1)), 0);
        const char *h = out("hits", 0);
        assert_non_null(strstr(h, "\"vary\":\"accept-encoding\""));
        if (cases[i].gz) {
            assert_non_null(strstr(h, "\"content-encoding\":\"gzip\""));
            assert_int_equal(gunzip_body(h, plain, sizeof plain), strlen(body));
            assert_int_equal(ctr("gzip_served"), 1);
        } else {
            assert_null(strstr(h, "content-encoding"));
            assert_non_null(strstr(h, body));
            assert_int_equal(ctr("gzip_served"), 0);
        }
    }
    /* stored from a client without gzip: compressed once all the same, for the next one */
    stored(CONF, GET("/apis/z2", 0), body);
    assert_int_equal(misses(CONF, req("GET", "/apis/z2", NULL, gz, NULL, 1)), 0);
    assert_non_null(strstr(out("hits", 0), "\"content-encoding\":\"gzip\""));
    /* small bodies are sent as they are, without vary */
    s = roundtrip(CONF, req("GET", "/apis/small", NULL, gz, NULL, 0), 200, NULL, "tiny");
    assert_null(strstr(s, "content-encoding"));
    assert_null(strstr(s, "vary"));
    free(s);
    /* an uncacheable response is compressed for a client that accepts gzip */
    s = roundtrip(CONF, req("GET", "/apis/ns", NULL, gz, NULL, 0), 200,
                  "\"cache-control\":\"no-store\"", body);
    assert_non_null(strstr(s, "\"content-encoding\":\"gzip\""));
    free(s);
    /* a POST's answer too, without ETag or x-cache */
    lookup1(CONF, req("POST", "/v1/events", NULL, gz, NULL, 0));
    char *a = answered(out("out", 0), 202, NULL, body);
    store1(a);
    free(a);
    assert_non_null(strstr(out("out", 0), "\"content-encoding\":\"gzip\""));
    assert_null(strstr(out("out", 0), "etag"));
    assert_null(strstr(out("out", 0), "x-cache"));
    /* gzip: false */
    fresh_table();
    const char *off = CONF "gzip: false\n";
    s = roundtrip(off, req("GET", "/apis/z", NULL, gz, NULL, 0), 200, NULL, body);
    assert_null(strstr(s, "content-encoding"));
    free(s);
    assert_int_equal(misses(off, req("GET", "/apis/z", NULL, gz, NULL, 1)), 0);
    assert_null(strstr(out("hits", 0), "content-encoding"));
}

/* ------------------------------------------------------------ invalidation */

static void fill_catalog(void)
{
    stored(CONF, GET("/apis/pay-1", 0), "pay-1");
    stored(CONF, req("GET", "/apis/pay-1", "{\"v\":\"2\"}", NULL, NULL, 0), "pay-1 v2");
    stored(CONF, req("GET", "/apis/pay-1", NULL, NULL, "[\"admin\"]", 0), "pay-1 admin");
    stored(CONF, GET("/apis/pay-1/docs", 0), "docs");
    stored(CONF, GET("/apis/pay-10", 0), "pay-10");
    stored(CONF, GET("/apis", 0), "list");
    stored(CONF, req("GET", "/apis", "{\"category\":\"pay\"}", NULL, NULL, 0), "list pay");
    stored(CONF, req("GET", "/apis", "{\"category\":\"pa&y\"}", NULL, NULL, 0), "list pa&y");
    stored(CONF, GET("/apisx", 0), "apisx");
    assert_int_equal(entries(), 9);
}

/* The bodies of the catalog entries still cached, as one string "a|b|...". */
static const char *left(void)
{
    static char s[512];
    const char *reqs[] = {
        GET("/apis/pay-1", 1),
        req("GET", "/apis/pay-1", "{\"v\":\"2\"}", NULL, NULL, 1),
        req("GET", "/apis/pay-1", NULL, NULL, "[\"admin\"]", 1),
        GET("/apis/pay-1/docs", 1),
        GET("/apis/pay-10", 1),
        GET("/apis", 1),
        req("GET", "/apis", "{\"category\":\"pay\"}", NULL, NULL, 1),
        req("GET", "/apis", "{\"category\":\"pa&y\"}", NULL, NULL, 1),
        GET("/apisx", 1),
    };
    lookup_n(CONF, reqs, sizeof reqs / sizeof *reqs);
    s[0] = '\0';
    for (size_t i = 0; i < count("hits"); i++) {
        const char *b = strstr(resp_of(out("hits", i)), "\"body\":\"") + 8;
        snprintf(s + strlen(s), sizeof s - strlen(s), "%s%.*s", *s ? "|" : "",
                 (int)(strchr(b, '"') - b), b);
    }
    return s;
}

static void test_invalidate_by_key(void **st)
{
    (void)st;
    fill_catalog();
    invalidate1("\"keys\":[\"/apis/pay-1\"]");
    assert_int_equal(count("errors"), 0);
    assert_int_equal(ctr("invalidated"), 3); /* every query and scope of the path */
    assert_string_equal(left(), "docs|pay-10|list|list pay|list pa&y|apisx");
    /* an exact path and query */
    invalidate1("\"keys\":[\"/apis?category=pa%26y\"]");
    assert_int_equal(ctr("invalidated"), 1);
    assert_string_equal(left(), "docs|pay-10|list|list pay|apisx");
    invalidate1("\"keys\":[\"/apis/none\", \"/apis/pay-1\"]");
    assert_int_equal(ctr("invalidated"), 0);
}

static void test_invalidate_by_prefix(void **st)
{
    (void)st;
    fill_catalog();
    invalidate1("\"prefixes\":[\"/apis?\"]");
    assert_int_equal(ctr("invalidated"), 2);
    assert_string_equal(left(), "pay-1|pay-1 v2|pay-1 admin|docs|pay-10|list|apisx");
    invalidate1("\"prefixes\":[\"/apis/pay-1/\"]");
    assert_string_equal(left(), "pay-1|pay-1 v2|pay-1 admin|pay-10|list|apisx");
    invalidate1("\"prefixes\":[\"/apis/pay-1?\"]");
    assert_string_equal(left(), "pay-1|pay-1 admin|pay-10|list|apisx");
    invalidate1("\"prefixes\":[\"/apis/pay-1\"]"); /* a plain prefix: pay-10 too */
    assert_string_equal(left(), "list|apisx");
    invalidate1("\"prefixes\":[\"/apis/\"]");
    assert_int_equal(ctr("invalidated"), 0);
    invalidate1("\"prefixes\":[\"/apis\"]");
    assert_int_equal(ctr("invalidated"), 2);
    assert_int_equal(entries(), 0);
    fill_catalog();
    /* keys are paths: every query of /apis goes */
    invalidate1("\"keys\":[\"/apis\"],\"prefixes\":[\"/apis/pay-1\", \"/nothing\"]");
    assert_int_equal(ctr("invalidated"), 8);
    assert_string_equal(left(), "apisx");
    invalidate1("\"prefixes\":[\"\"]"); /* everything */
    assert_int_equal(entries(), 0);
}

static void test_invalidate_on_write(void **st)
{
    (void)st;
    stored(CONF, GET("/apis/w", 0), "w");
    stored(CONF, GET("/apis/w/docs", 0), "wd");
    /* a failed write changes nothing */
    lookup1(CONF, req("PUT", "/apis/w", NULL, NULL, NULL, 1));
    char *a = answered(out("out", 0), 400, NULL, "bad");
    store1(a);
    free(a);
    assert_int_equal(entries(), 2);
    lookup1(CONF, req("PUT", "/apis/w", NULL, NULL, NULL, 1));
    a = answered(out("out", 0), 200, NULL, "ok");
    store1(a);
    free(a);
    assert_int_equal(ctr("invalidated"), 1);
    assert_int_equal(misses(CONF, GET("/apis/w", 2)), 1);
    assert_int_equal(misses(CONF, GET("/apis/w/docs", 2)), 0);
    /* off */
    const char *off = CONF "invalidate_on_write: false\n";
    stored(off, GET("/apis/w", 3), "w");
    lookup1(off, req("DELETE", "/apis/w", NULL, NULL, NULL, 4));
    a = answered(out("out", 0), 204, NULL, "");
    store1(a);
    free(a);
    assert_int_equal(misses(off, GET("/apis/w", 5)), 0);
}

static void test_response_older_than_invalidation(void **st)
{
    (void)st;
    /* the miss is looked up, then the catalog writes and invalidates, then the (old) answer comes
     */
    lookup1(CONF, GET("/apis/race", 0));
    char *old = answered(out("out", 0), 200, NULL, "before the write");
    lookup1(CONF, GET("/apis/other", 0));
    char *other = answered(out("out", 0), 200, NULL, "unrelated");
    invalidate1("\"keys\":[\"/apis/race\"]");
    store1(old);
    assert_int_equal(ctr("stores"), 0);
    assert_int_equal(ctr("stale"), 1);
    assert_non_null(
        strstr(resp_of(out("out", 0)), "\"body\":\"before the write\"")); /* still answered */
    store1(other); /* an invalidation of another path does not stop it */
    assert_int_equal(ctr("stores"), 1);
    free(old);
    free(other);
    assert_int_equal(misses(CONF, GET("/apis/race", 1)), 1);
    const char *m = out("out", 0);
    assert_non_null(strstr(m, "\"gen\":1"));
    char *fresh = answered(m, 200, NULL, "after the write");
    store1(fresh);
    free(fresh);
    assert_int_equal(ctr("stores"), 1);
    assert_int_equal(misses(CONF, GET("/apis/race", 2)), 0);
}

/* ------------------------------------------------------------ memory bounds */

static void test_evict_by_entries(void **st)
{
    (void)st;
    const char *conf = CONF "max_entries: 3\n";
    stored(conf, GET("/a", 0), "a");
    stored(conf, GET("/b", 0), "b");
    stored(conf, GET("/c", 0), "c");
    const char *used[] = {GET("/a", 1), GET("/b", 1)};
    lookup_n(conf, used, 2);
    assert_int_equal(count("hits"), 2);
    stored(conf, GET("/d", 2), "d");
    assert_int_equal(ctr("evictions"), 1);
    assert_int_equal(entries(), 3);
    assert_int_equal(misses(conf, GET("/c", 3)), 1); /* the one not used since */
    assert_int_equal(misses(conf, GET("/a", 3)), 0);
    assert_int_equal(misses(conf, GET("/b", 3)), 0);
    assert_int_equal(misses(conf, GET("/d", 3)), 0);
    /* an expired entry goes first, whatever its use */
    const char *short_ttl = "ttl: 1s\nmax_entries: 3\n";
    fresh_table();
    stored(short_ttl, GET("/x", 0), "x");
    stored(short_ttl, GET("/y", 5000), "y");
    stored(short_ttl, GET("/z", 5000), "z");
    stored(short_ttl, GET("/w", 5000), "w");
    assert_int_equal(ctr("expired"), 1);
    assert_int_equal(ctr("evictions"), 0);
    assert_int_equal(misses(short_ttl, GET("/y", 5001)), 0);
}

static void test_evict_by_bytes(void **st)
{
    (void)st;
    /* incompressible bodies of 8000 bytes (gzip off keeps sizes plain) into 64 KiB */
    const char *conf = CONF "max_bytes: 64KiB\ngzip: false\n";
    static char body[8001];
    uint32_t x = 12345;
    for (int i = 0; i < 8000; i++) {
        x = x * 1103515245u + 12345u;
        body[i] = (char)('a' + (x >> 16) % 26);
    }
    for (int i = 0; i < 12; i++) {
        char path[16];
        snprintf(path, sizeof path, "/big/%d", i);
        stored(conf, GET(path, i), body);
        uint64_t n, bytes;
        sl_cache_table_stats(held, &n, &bytes);
        assert_true(n >= 1 && n <= 7);
    }
    uint64_t n, bytes;
    sl_cache_table_stats(held, &n, &bytes);
    assert_true(n >= 5);
    assert_int_equal(misses(conf, GET("/big/11", 20)), 0);
    assert_int_equal(misses(conf, GET("/big/0", 20)), 1);
    /* max_object: larger entries are not stored (default: max_bytes / 8 = 8 KiB) */
    stored(conf, GET("/big/huge", 30), body);
    assert_int_equal(ctr("stores"), 1); /* 8000 + key + headers: under 8 KiB */
    static char huge[9000];
    memset(huge, 'h', sizeof huge - 1);
    stored(conf, GET("/big/huger", 30), huge);
    assert_int_equal(ctr("stores"), 0);
}

/* ------------------------------------------------------------ errors and config */

static void test_malformed(void **st)
{
    (void)st;
    const char *bad[] = {
        "{\"id\":\"no method\",\"path\":\"/apis\"}",
        "{\"id\":\"no path\",\"method\":\"GET\"}",
        "{\"id\":\"path not a string\",\"method\":\"GET\",\"path\":7}",
        "{\"id\":\"answered\",\"method\":\"GET\",\"path\":\"/a\",\"response\":{\"status\":200}}",
    };
    lookup_n(CONF, bad, 4);
    assert_int_equal(count("errors"), 4);
    assert_non_null(strstr(out("errors", 0), "\"reason\":\"malformed\""));
    assert_non_null(strstr(out("errors", 3), "\"reason\":\"answered\""));
    /* not cacheable, but fine: on, untouched */
    const char *odd[] = {
        req("GET", "/apis", "{\"n\":5}", NULL, NULL, 0), /* a query value not a string */
        req("GET", "/a%3Fb?", NULL, NULL, NULL, 0),      /* '?' in the path */
        req("GET", "/apis", NULL, NULL, "[1]", 0),       /* a scope not a string */
        req("GET", "relative", NULL, NULL, NULL, 0),
    };
    lookup_n(CONF, odd, 4);
    assert_int_equal(count("out"), 4);
    assert_int_equal(ctr("bypass"), 4);
    for (size_t i = 0; i < 4; i++)
        assert_null(strstr(out("out", i), "\"cache\""));
    /* cache.store: unanswered events, bad invalidations */
    store1(GET("/apis", 0));
    assert_int_equal(count("errors"), 1);
    assert_non_null(strstr(out("errors", 0), "\"reason\":\"unanswered\""));
    const char *inv[] = {
        "{\"type\":\"cache.invalidate\",\"keys\":\"/apis\"}",
        "{\"type\":\"cache.invalidate\"}",
        "{\"type\":\"cache.invalidate\",\"prefixes\":[1]}",
        "{\"type\":\"cache.invalidate\",\"keys\":[\"/a\"],\"prefixes\":{}}",
        "{\"type\":\"cache.invalidated\",\"keys\":[\"/a\"]}", /* not an invalidation */
    };
    store_n(inv, 5);
    assert_int_equal(count("errors"), 5);
    assert_non_null(strstr(out("errors", 0), "\"reason\":\"malformed\""));
    assert_non_null(strstr(out("errors", 4), "\"reason\":\"unanswered\""));
    /* a response cache.store cannot read passes on untouched, for respond to judge */
    char *a = answered(GET("/apis", 0), 200, NULL, "x");
    char *p = strstr(a, "\"status\":200");
    memcpy(p, "\"status\":\"2\"", 12);
    store1(a);
    assert_int_equal(count("out"), 1);
    assert_null(strstr(out("out", 0), "etag"));
    free(a);
}

static void test_store_needs_cache(void **st)
{
    (void)st;
    sl_harness_destroy(&last);
    last = sl_harness_new("type: cache.store\ncache: nope");
    assert_non_null(last);
    assert_int_not_equal(sl_harness_run(last), 0);
    /* without `cache:`: the only one registered ("op", held here) */
    lookup1(CONF, GET("/only", 0));
    char *a = answered(out("out", 0), 200, NULL, "only");
    sl_harness_destroy(&last);
    last = sl_harness_new("type: cache.store");
    assert_non_null(last);
    assert_int_equal(sl_harness_push(last, a), 0);
    assert_int_equal(sl_harness_run(last), 0);
    assert_int_equal(ctr("stores"), 1);
    free(a);
}

static void test_config_errors(void **st)
{
    (void)st;
    static const char *const bad[] = {
        BASE "ttl: 0s",
        BASE "ttl: 500ms",
        BASE "ttl: 400d",
        BASE "ttl: 10s\nnegative_ttl: 11s",
        BASE "max_entries: 0",
        BASE "max_entries: 100000000",
        BASE "max_bytes: 1KiB",
        BASE "max_bytes: 1MiB\nmax_object: 600KiB",
        BASE "max_object: 0",
        BASE "gzip: {level: 10}",
        BASE "gzip: {levle: 5}",
        BASE "gzip: {min_size: lots}",
        BASE "gzip: true",
        BASE "gzip: [1]",
        BASE "paths: [apis]",
        BASE "paths: [\"/a*b\"]",
        BASE "paths: [\"/a?b\"]",
        BASE "paths: []",
        BASE "vary_scope: maybe",
        BASE "ttls: 5s",
        "type: cache.store\ncache: \"\"",
    };
    assert_int_equal(sl_harness_config_mismatches(bad, sizeof bad / sizeof *bad, 0), 0);
    static const char *const good[] = {
        BASE "ttl: 1s",
        BASE "ttl: 10s\nnegative_ttl: 10s",
        BASE "max_entries: 1\nmax_bytes: 64KiB\nmax_object: 32KiB",
        BASE "gzip: {level: 0}",
        BASE "gzip: {min_size: 1KiB}",
        BASE "gzip: false",
        BASE "paths: [/apis, \"/apis/*\", \"/*\"]",
        BASE "vary_scope: false\nvary_consumer: true\ninvalidate_on_write: off",
        "type: cache.store",
    };
    assert_int_equal(sl_harness_config_mismatches(good, sizeof good / sizeof *good, 1), 0);
}

static void test_paths(void **st)
{
    (void)st;
    const char *conf = CONF "paths: [/apis, \"/apis/*\"]\n";
    const char *reqs[] = {GET("/apis", 0), GET("/apis/x", 0), GET("/apisx", 0),
                          GET("/v1/events", 0)};
    lookup_n(conf, reqs, 4);
    assert_int_equal(ctr("misses"), 2);
    assert_int_equal(ctr("bypass"), 2);
}

/* ------------------------------------------------------------ the helpers directly */

static void test_http_helpers(void **st)
{
    (void)st;
#define AE(s) cache_accepts_gzip(s, strlen(s))
    assert_true(AE("gzip"));
    assert_true(AE(" gzip ; q=1 "));
    assert_true(AE("deflate, gzip;q=0.001"));
    assert_true(AE("gzip;q=0, gzip"));
    assert_false(AE("gzip;q=0"));
    assert_false(AE("gzip;q=0.0"));
    assert_false(AE("gzip;q=2"));
    assert_false(AE("gzip;q=0.1234"));
    assert_false(AE("gzipx"));
    assert_false(AE(""));
    assert_true(AE("*;q=0.5, br"));
    assert_false(AE("*, gzip;q=0"));
#define INM(i, e) cache_inm_match(i, strlen(i), e, strlen(e))
    assert_true(INM("\"a\"", "\"a\""));
    assert_true(INM("W/\"a\"", "\"a\""));
    assert_true(INM("\"a\"", "W/\"a\""));
    assert_true(INM("\"x\" , \"a\"", "\"a\""));
    assert_true(INM(" * ", "\"a\""));
    assert_false(INM("\"a,b\"", "\"a\""));
    assert_false(INM("a", "\"a\""));
    assert_false(INM("\"a", "\"a\""));
    assert_false(INM("*, \"a\"", "\"a\""));
    assert_false(INM("\"a\"", "a")); /* not an entity-tag */
    assert_true(cache_etag_valid("W/\"x\"", 5));
    assert_false(cache_etag_valid("W/x", 3));
    assert_false(cache_etag_valid("\"a b\"", 5));
    cache_cc cc;
    const char *t = "Max-Age=60, s-maxage=\"5\", no-cache=\"set-cookie, x\", private";
    cache_cc_parse(t, strlen(t), &cc);
    assert_true(cc.max_age_set && cc.max_age == 60 && cc.s_maxage_set && cc.s_maxage == 5);
    assert_true(cc.no_cache && cc.private_ && !cc.no_store);
    t = "max-age=99999999999999999999,no-store";
    cache_cc_parse(t, strlen(t), &cc);
    assert_true(cc.max_age == 2147483648ll && cc.no_store);
    t = "max-age=-1";
    cache_cc_parse(t, strlen(t), &cc);
    assert_true(cc.max_age_set && cc.max_age == 0);
}

static void test_key(void **st)
{
    (void)st;
    sl_json_parser *jp = sl_json_parser_new();
    sl_wbuf ev = {0}, key = {0};
    char err[128];
    const char *j =
        "{\"method\":\"GET\",\"path\":\"/apis\",\"query\":{\"b\":\"x y\",\"a\":\"1&2=3%\","
        "\"ab\":\"\"},\"scopes\":[\"w\",\"r\",\"w\"],\"consumer\":\"acme\"}";
    char buf[512] = {0};
    memcpy(buf, j, strlen(j));
    assert_int_equal(sl_json_to_msgpack(jp, buf, strlen(j), sizeof buf, 1, &ev, err, sizeof err),
                     0);
    cache_req r;
    assert_int_equal(cache_req_read(ev.data, ev.len, &r), 0);
    cache_cfg cfg = {.vary_scope = 1};
    size_t pq = 0;
    const char *why = NULL;
    assert_int_equal(cache_key(&r, &cfg, &key, &pq, &why), 0);
    const char want[] = "/apis?a=1%262%3D3%25&ab=&b=x%20y";
    assert_int_equal(pq, sizeof want - 1);
    assert_memory_equal(key.data, want, pq);
    const uint8_t scopes[] = {0, 0, 0, 0, 1, 'r', 0, 0, 0, 1, 'w'};
    assert_int_equal(key.len, pq + sizeof scopes);
    assert_memory_equal(key.data + pq, scopes, sizeof scopes);
    cfg.vary_scope = 0;
    cfg.vary_consumer = 1;
    assert_int_equal(cache_key(&r, &cfg, &key, &pq, &why), 0);
    assert_int_equal(key.len, pq + 1 + 1 + 5);
    assert_memory_equal(key.data + pq + 1,
                        "\x01\xa4"
                        "acme",
                        6);
    sl_wbuf_fini(&ev);
    sl_wbuf_fini(&key);
    sl_json_parser_destroy(&jp);
}

/* ------------------------------------------------------------ a whole pipeline */

/*
 * Both operators wired as in the gateway, on their own threads: requests
 * from a file through `cache`, a transform standing in for the endpoint,
 * `cache.store`, and hits and answers into one file. Which requests hit
 * depends on timing; that every request is answered once, with its own
 * path's body (gzip when accepted), does not.
 */
static void test_pipeline(void **st)
{
    (void)st;
    sl_harness_destroy(&last);
    char dir[64], path[128], outp[128];
    assert_non_null(sl_harness_tmpdir(dir));
    snprintf(path, sizeof path, "%s/requests.jsonl", dir);
    snprintf(outp, sizeof outp, "%s/answers.jsonl", dir);
    enum { N = 5000, PATHS = 20 };
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < N; i++) {
        char p[32];
        snprintf(p, sizeof p, "/apis/p%d", i % PATHS);
        fprintf(f, "%s\n",
                req("GET", p, NULL, i % 2 ? "\"accept-encoding\":\"gzip\"" : NULL, NULL, i));
    }
    fclose(f);
    char filler[700];
    memset(filler, 'f', 600);
    filler[600] = '\0';
    char *yaml = malloc(8192);
    snprintf(yaml, 8192,
             "pipeline: cache-e2e\nstate_dir: '%s'\nbatch: {max_events: 64}\noperators:\n"
             "  src: {type: source.file, path: '%s', format: jsonl}\n"
             "  cached: {type: cache, input: src, ttl: 60s}\n"
             "  endpoint:\n    type: transform\n    input: cached\n"
             "    fields: {response.status: 200, response.body: '\"%s \" + path'}\n"
             "    keep: [type, conn, method, path, query, headers, body, consumer, scopes, cache]\n"
             "  stored: {type: cache.store, input: endpoint}\n"
             "  answers: {type: sink.file, input: [cached.hits, stored], path: '%s'}\n"
             "  errs: {type: sink.null, input: [cached.errors, stored.errors, endpoint.errors]}\n",
             dir, path, filler, outp);
    sl_diag d;
    sl_diag_init(&d);
    sl_pipeline *p = NULL;
    sl_runtime *rt = NULL;
    sl_run_opts o;
    sl_run_opts_default(&o);
    o.handle_signals = 0;
    int rc = sl_pipeline_load_string("e2e.yaml", yaml, NULL, 0, &d, &p);
    if (rc == 0) rc = sl_runtime_new(p, &o, &d, &rt);
    if (rc == 0) rc = sl_runtime_run(rt);
    sl_diag_print(&d, stderr);
    assert_int_equal(rc, 0);
    sl_runtime_destroy(&rt);
    sl_pipeline_destroy(&p);
    sl_diag_fini(&d);
    free(yaml);
    f = fopen(outp, "r");
    assert_non_null(f);
    static char line[16384], plain[4096];
    int n = 0, hits = 0, misses_ = 0, gz = 0;
    int seen[N] = {0};
    while (fgets(line, sizeof line, f)) {
        n++;
        hits += strstr(line, "\"x-cache\":\"HIT\"") != NULL;
        misses_ += strstr(line, "\"x-cache\":\"MISS\"") != NULL;
        const char *t = strstr(line, "\"time\":\"2026-01-01T");
        assert_non_null(t);
        int hh, mm, ss, ms = 0;
        assert_true(sscanf(t + 19, "%d:%d:%d.%d", &hh, &mm, &ss, &ms) >= 3);
        int i = ((hh * 60 + mm) * 60 + ss) * 1000 + ms;
        assert_true(i >= 0 && i < N && !seen[i]);
        seen[i] = 1;
        char want[720];
        snprintf(want, sizeof want, "%s /apis/p%d", filler, i % PATHS);
        assert_non_null(strstr(line, "\"status\":200"));
        if (i % 2) {
            assert_non_null(strstr(line, "\"content-encoding\":\"gzip\""));
            size_t k = gunzip_body(line, plain, sizeof plain);
            assert_int_equal(k, strlen(want));
            assert_memory_equal(plain, want, k);
            gz++;
        } else {
            char body[760];
            snprintf(body, sizeof body, "\"body\":\"%s\"", want);
            assert_non_null(strstr(resp_of(line), body));
        }
    }
    fclose(f);
    sl_harness_rmdir(dir);
    printf("pipeline: %d answers, %d hits, %d misses, %d gzip\n", n, hits, misses_, gz);
    assert_int_equal(n, N);
    assert_int_equal(hits + misses_, N);
    assert_int_equal(gz, N / 2);
    assert_true(misses_ >= PATHS);
    assert_true(hits > 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_miss_store_hit),
        T(test_query_order_is_one_key),
        T(test_scopes_vary),
        T(test_scopes_not_varied_and_consumer),
        T(test_methods),
        T(test_ttl_on_request_time),
        T(test_response_cache_control),
        T(test_request_cache_control),
        T(test_etag_and_304),
        T(test_endpoint_etag_kept),
        T(test_gzip),
        T(test_invalidate_by_key),
        T(test_invalidate_by_prefix),
        T(test_invalidate_on_write),
        T(test_response_older_than_invalidation),
        T(test_evict_by_entries),
        T(test_evict_by_bytes),
        T(test_malformed),
        T(test_store_needs_cache),
        T(test_config_errors),
        T(test_paths),
        cmocka_unit_test(test_http_helpers),
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_pipeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
