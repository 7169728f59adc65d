/*
 * test_catalog.c - the gateway's `catalog` operator through the harness:
 * request events (docs/gateway.md) in; answers on `answered`, requests that
 * are not the catalog's on `out`, cache invalidations on `invalidate`,
 * malformed events on `errors`.
 *
 * What it checks: the real seed (pipelines/gateway/catalog.yaml) loads with
 * its 40 APIs in 8 categories; the list in name order (case-insensitive, then
 * id) with totals and next/prev links; the category filter; q with one and
 * several words, case-insensitive, the last word as a prefix, with a
 * category; one API and its OpenAPI document; 400/404/405; the admin API
 * (create, replace, change, delete, show) with its 400/403/404/405/409; the
 * indexes after updates and deletes, against a model over a random sequence
 * of writes; the invalidation events; the seed applied again at a restart
 * (updated while the file owns an API, not after an admin write, deletes
 * remembered); and configuration mistakes, seed mistakes at their
 * file:line:col.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "harness.h"

static char dir[64];             /* seed files */
static char real_seed[PATH_MAX]; /* pipelines/gateway/catalog.yaml */

/* ------------------------------------------------------------ helpers */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Append s to buf as JSON string contents. */
static void json_escape(char *buf, size_t cap, const char *s)
{
    size_t n = strlen(buf);
    for (; *s && n + 3 < cap; s++) {
        if (*s == '"' || *s == '\\') buf[n++] = '\\';
        if (*s == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
            continue;
        }
        buf[n++] = *s;
    }
    buf[n] = '\0';
}

/*
 * Push request `id`: method, path, query (a JSON object's members, or NULL),
 * scopes (a JSON array's elements, or NULL: no scopes field) and body (raw
 * text, or NULL).
 */
static void req(sl_harness *h, const char *id, const char *method, const char *path,
                const char *query, const char *scopes, const char *body)
{
    static char ev[65536];
    snprintf(
        ev, sizeof ev,
        "{\"id\":\"%s\",\"type\":\"http.request\",\"conn\":7,\"method\":\"%s\",\"path\":\"%s\","
        "\"query\":{%s},\"headers\":{\"accept\":\"*/*\"}",
        id, method, path, query ? query : "");
    if (scopes) {
        strncat(ev, ",\"scopes\":[", sizeof ev - strlen(ev) - 1);
        strncat(ev, scopes, sizeof ev - strlen(ev) - 1);
        strncat(ev, "]", sizeof ev - strlen(ev) - 1);
    }
    strncat(ev, ",\"body\":\"", sizeof ev - strlen(ev) - 1);
    if (body) json_escape(ev, sizeof ev, body);
    strncat(ev, "\"}", sizeof ev - strlen(ev) - 1);
    assert_int_equal(sl_harness_push(h, ev), 0);
}

#define ADMIN "\"events:read\",\"admin\""

static void get(sl_harness *h, const char *id, const char *path, const char *query)
{
    req(h, id, "GET", path, query, NULL, NULL);
}

/* The event with "id":"<id>" on port, or NULL. */
static const char *find(const sl_harness *h, const char *port, const char *id)
{
    char needle[96];
    snprintf(needle, sizeof needle, "{\"id\":\"%s\"", id);
    for (size_t i = 0; i < sl_harness_count(h, port); i++)
        if (strncmp(sl_harness_out(h, port, i), needle, strlen(needle)) == 0)
            return sl_harness_out(h, port, i);
    return NULL;
}

static const char *answered(const sl_harness *h, const char *id)
{
    const char *ev = find(h, "answered", id);
    if (!ev) {
        print_message("request %s was not answered; answered:\n", id);
        for (size_t i = 0; i < sl_harness_count(h, "answered"); i++)
            print_message("  %s\n", sl_harness_out(h, "answered", i));
    }
    assert_non_null(ev);
    return ev;
}

/* The response body of answered request id, unescaped (a static buffer of 4 in turn). */
static const char *body(const sl_harness *h, const char *id)
{
    static char bufs[4][65536];
    static int turn;
    char *out = bufs[turn = (turn + 1) % 4];
    const char *ev = answered(h, id), *r = strstr(ev, "\"response\":");
    assert_non_null(r);
    const char *s = strstr(r, "\"body\":\"");
    assert_non_null(s);
    size_t n = 0;
    for (s += 8; *s && *s != '"' && n + 1 < sizeof bufs[0]; s++) {
        if (*s != '\\') {
            out[n++] = *s;
            continue;
        }
        s++;
        switch (*s) {
        case 'n':
            out[n++] = '\n';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 'u':
            out[n++] = '?';
            s += 4;
            break;
        default:
            out[n++] = *s;
            break;
        }
    }
    out[n] = '\0';
    return out;
}

static int status(const sl_harness *h, const char *id)
{
    const char *r = strstr(answered(h, id), "\"response\":{\"status\":");
    assert_non_null(r);
    return atoi(r + 21);
}

/* Assert the answer's status and that its body holds each of the NULL-terminated strings. */
static void expect(const sl_harness *h, const char *id, int want, ...)
{
    int got = status(h, id);
    const char *b = body(h, id);
    if (got != want) print_message("request %s: status %d, wanted %d: %s\n", id, got, want, b);
    assert_int_equal(got, want);
    va_list ap;
    va_start(ap, want);
    for (const char *s; (s = va_arg(ap, const char *));) {
        if (!strstr(b, s)) print_message("request %s: wanted %s in\n  %s\n", id, s, b);
        assert_non_null(strstr(b, s));
    }
    va_end(ap);
}

/* Assert the answered event (not only its body) holds s, or does not with `absent`. */
static void expect_event(const sl_harness *h, const char *id, const char *s, int absent)
{
    const char *ev = answered(h, id);
    if ((strstr(ev, s) == NULL) != absent)
        print_message("request %s: %s %s in\n  %s\n", id, absent ? "did not want" : "wanted", s,
                      ev);
    assert_true((strstr(ev, s) == NULL) == absent);
}

/* The ids of the items of list answer id, comma-separated (a static buffer of 2 in turn). */
static const char *ids(const sl_harness *h, const char *id)
{
    static char bufs[2][8192];
    static int turn;
    char *out = bufs[turn = (turn + 1) % 2];
    const char *b = body(h, id), *p = strstr(b, "\"items\":[");
    assert_non_null(p);
    out[0] = '\0';
    const char *end = strstr(p, "],\"page\"");
    assert_non_null(end);
    while ((p = strstr(p, "{\"id\":\"")) && p < end) {
        p += 7;
        const char *q = strchr(p, '"');
        if (out[0]) strcat(out, ",");
        strncat(out, p, (size_t)(q - p));
        p = q;
    }
    return out;
}

static sl_harness *make_with(const char *yaml, const char *state_dir)
{
    sl_harness_opts o = {0};
    o.state_dir = state_dir;
    sl_harness *h = sl_harness_new_with(yaml, &o);
    if (!h) print_message("refused: %s\n", yaml);
    assert_non_null(h);
    return h;
}

static void run(sl_harness *h)
{
    assert_int_equal(sl_harness_run(h), 0);
}

/* The operator with seed file `seed` (NULL: none) and the admin API; `extra` lines appended. */
static const char *conf(const char *seed, const char *extra)
{
    static char y[PATH_MAX + 2048];
    int n = snprintf(y, sizeof y, "type: catalog\nadmin_prefix: /admin/apis\n");
    if (seed) n += snprintf(y + n, sizeof y - (size_t)n, "seed: %s\n", seed);
    if (extra) snprintf(y + n, sizeof y - (size_t)n, "%s", extra);
    return y;
}

/* A seed entry (YAML) with a minimal OpenAPI document; tags as a flow list's contents. */
static void entry(char *buf, size_t cap, const char *id, const char *name, const char *category,
                  const char *summary, const char *tags)
{
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n,
             "  - id: %s\n    name: \"%s\"\n    category: %s\n    summary: \"%s\"\n"
             "    tags: [%s]\n    openapi:\n      openapi: \"3.0.3\"\n"
             "      info: {title: \"%s\", version: \"1.0\"}\n"
             "      paths: {/ping: {get: {responses: {\"200\": {description: OK}}}}}\n",
             id, name, category, summary, tags ? tags : "", name);
}

/* A JSON admin body for an API. */
static const char *api_json(const char *id, const char *name, const char *category,
                            const char *summary, const char *tags)
{
    static char bufs[2][2048];
    static int turn;
    char *b = bufs[turn = (turn + 1) % 2];
    snprintf(b, sizeof bufs[0],
             "{\"id\":\"%s\",\"name\":\"%s\",\"category\":\"%s\",\"summary\":\"%s\",\"tags\":[%s],"
             "\"version\":\"1.0\",\"plans\":[{\"limits\":\"10/s\",\"name\":\"pro\"}],"
             "\"openapi\":{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"%s\",\"version\":\"1.0\"},"
             "\"paths\":{\"/x\":{\"get\":{\"responses\":{\"200\":{\"description\":\"OK\"}}}}}}}",
             id, name, category, summary, tags ? tags : "", name);
    return b;
}

/* The small seed most tests use: 8 APIs in 3 categories. */
static char small_seed[128];

static void write_small_seed(void)
{
    static char y[16384];
    snprintf(y, sizeof y, "apis:\n");
    entry(y, sizeof y, "pay-1", "CardPay", "payments", "Card payments and refunds",
          "cards, refunds");
    entry(y, sizeof y, "pay-2", "cardpay", "payments", "Card payments, the other one", "cards");
    entry(y, sizeof y, "pay-3", "Bank Transfers", "payments", "SEPA credit transfers", "sepa");
    entry(y, sizeof y, "pay-4", "Wallet Pay", "payments", "Apple Pay and Google Pay tokens",
          "wallets, mobile");
    entry(y, sizeof y, "geo-1", "Geocoder", "maps", "Addresses to coordinates", "geocoding");
    entry(y, sizeof y, "geo-2", "Route Planner", "maps", "Driving routes with live traffic",
          "routing");
    entry(y, sizeof y, "wx-1", "Forecast", "weather", "Hourly forecasts for any place", "forecast");
    entry(y, sizeof y, "wx-2", "air quality", "weather", "Air quality and pollen, card-free",
          "aqi, pollen");
    write_file(small_seed, y);
}

/* ------------------------------------------------------------ setup */

/* The source tree's root: __FILE__ is relative to the build directory, three levels above us. */
static int find_real_seed(void)
{
    char exe[PATH_MAX], path[PATH_MAX * 2];
    const char *file = __FILE__;
    if (file[0] == '/') {
        snprintf(path, sizeof path, "%s", file);
    } else {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) return -1;
        exe[n] = '\0';
        for (int up = 0; up < 3; up++) /* op_catalog, operators, tests: the build directory */
            *strrchr(exe, '/') = '\0';
        snprintf(path, sizeof path, "%s/%s", exe, file);
    }
    *strrchr(path, '/') = '\0'; /* tests/operators */
    strncat(path, "/../../pipelines/gateway/catalog.yaml", sizeof path - strlen(path) - 1);
    return realpath(path, real_seed) ? 0 : -1;
}

static int group_setup(void **st)
{
    (void)st;
    if (!sl_harness_tmpdir(dir)) return -1;
    snprintf(small_seed, sizeof small_seed, "%s/small.yaml", dir);
    write_small_seed();
    if (find_real_seed() != 0) {
        fprintf(stderr, "cannot find pipelines/gateway/catalog.yaml from %s\n", __FILE__);
        return -1;
    }
    return 0;
}

static int group_teardown(void **st)
{
    (void)st;
    sl_harness_rmdir(dir);
    return 0;
}

/* ------------------------------------------------------------ the real seed */

/* The seed of the gateway loads: 40 APIs, 5 in each of 8 categories, each with a document. */
static void test_real_seed(void **st)
{
    (void)st;
    char state[64];
    assert_non_null(sl_harness_tmpdir(state));
    sl_harness *h = make_with(conf(real_seed, NULL), state);
    static const char *const cats[] = {"payments", "maps", "weather", "messaging",
                                       "identity", "ml",   "finance", "logistics"};
    get(h, "all", "/apis", "\"per_page\":\"100\"");
    for (int i = 0; i < 8; i++) {
        char id[32], q[64];
        snprintf(id, sizeof id, "cat-%d", i);
        snprintf(q, sizeof q, "\"category\":\"%s\"", cats[i]);
        get(h, id, "/apis", q);
    }
    get(h, "card", "/apis", "\"q\":\"card\"");
    get(h, "doc", "/apis/cardpay/docs", NULL);
    get(h, "one", "/apis/forecast", NULL);
    run(h);
    expect(h, "all", 200, "\"total\":40", "\"next\":null", NULL);
    assert_int_equal(strlen(ids(h, "all")) > 0, 1);
    for (int i = 0; i < 8; i++) {
        char id[32];
        snprintf(id, sizeof id, "cat-%d", i);
        expect(h, id, 200, "\"total\":5", NULL);
    }
    /* "card" as a prefix: cardpay's name and tags, wallet tokens of cards, fraud scores of cards */
    expect(h, "card", 200, "{\"id\":\"cardpay\"", NULL);
    expect(h, "doc", 200, "{\"openapi\":\"3.0.3\",\"info\":{\"title\":\"CardPay Payments\"",
           "\"/charges/{id}\":{\"get\"", "\"required\":true", NULL);
    expect(h, "one", 200, "\"name\":\"Weather Forecast\"", "\"category\":\"weather\"",
           "\"docs\":\"/apis/forecast/docs\"", "\"plans\":[{\"name\":\"free\"", NULL);
    /* the first start added 40 APIs: the cache hears of it once, for every catalog path */
    assert_int_equal(sl_harness_count(h, "invalidate"), 1);
    const char *inv = sl_harness_out(h, "invalidate", 0);
    assert_non_null(strstr(inv, "\"type\":\"cache.invalidate\""));
    assert_non_null(strstr(inv, "\"keys\":[\"/apis\"],\"prefixes\":[\"/apis/\"]"));
    sl_harness_destroy(&h);

    /* again on the same state: nothing changed, nothing to invalidate, still 40 */
    h = make_with(conf(real_seed, NULL), state);
    get(h, "all", "/apis", NULL);
    run(h);
    expect(h, "all", 200, "\"total\":40", "\"page\":1,\"per_page\":20",
           "\"next\":\"/apis?page=2&per_page=20\"", "\"prev\":null", NULL);
    assert_int_equal(sl_harness_count(h, "invalidate"), 0);
    sl_harness_destroy(&h);
    sl_harness_rmdir(state);
}

/* ------------------------------------------------------------ lists */

/* Name order, case-insensitive, then id; pages, totals and links. */
static void test_list_pages(void **st)
{
    (void)st;
    sl_harness *h = make_with(conf(small_seed, "per_page: 3\nmax_per_page: 5\n"), NULL);
    get(h, "p1", "/apis", NULL);
    get(h, "p2", "/apis", "\"page\":\"2\"");
    get(h, "p3", "/apis", "\"page\":\"3\"");
    get(h, "p9", "/apis", "\"page\":\"9\"");
    get(h, "five", "/apis", "\"per_page\":\"5\",\"page\":\"2\"");
    run(h);
    /* air quality, Bank Transfers, CardPay (pay-1), cardpay (pay-2), Forecast, Geocoder,
     * Route Planner, Wallet Pay */
    assert_string_equal(ids(h, "p1"), "wx-2,pay-3,pay-1");
    assert_string_equal(ids(h, "p2"), "pay-2,wx-1,geo-1");
    assert_string_equal(ids(h, "p3"), "geo-2,pay-4");
    assert_string_equal(ids(h, "p9"), "");
    expect(h, "p1", 200, "\"page\":1,\"per_page\":3,\"total\":8",
           "\"next\":\"/apis?page=2&per_page=3\",\"prev\":null", NULL);
    expect(h, "p2", 200,
           "\"next\":\"/apis?page=3&per_page=3\",\"prev\":\"/apis?page=1&per_page=3\"", NULL);
    expect(h, "p3", 200, "\"next\":null,\"prev\":\"/apis?page=2&per_page=3\"", NULL);
    /* past the end: empty, and prev leads back to the last page */
    expect(h, "p9", 200, "\"total\":8", "\"next\":null,\"prev\":\"/apis?page=3&per_page=3\"", NULL);
    assert_string_equal(ids(h, "five"), "geo-1,geo-2,pay-4");
    /* items are short: no description, plans or document */
    expect(h, "p1", 200,
           "{\"id\":\"wx-2\",\"name\":\"air quality\",\"summary\":\"Air quality and pollen, "
           "card-free\",\"category\":\"weather\",\"tags\":[\"aqi\",\"pollen\"]}",
           NULL);
    assert_null(strstr(body(h, "p1"), "openapi"));
    assert_null(strstr(body(h, "p1"), "plans"));
    sl_harness_destroy(&h);
}

static void test_category_filter(void **st)
{
    (void)st;
    sl_harness *h = make_with(conf(small_seed, NULL), NULL);
    get(h, "pay", "/apis", "\"category\":\"payments\"");
    get(h, "pay2", "/apis", "\"category\":\"payments\",\"per_page\":\"2\",\"page\":\"1\"");
    get(h, "upper", "/apis", "\"category\":\"Maps\"");
    get(h, "none", "/apis", "\"category\":\"logistics\"");
    get(h, "empty", "/apis", "\"category\":\"\"");
    get(h, "bad", "/apis", "\"category\":\"pay ments\"");
    run(h);
    assert_string_equal(ids(h, "pay"), "pay-3,pay-1,pay-2,pay-4");
    expect(h, "pay", 200, "\"total\":4", NULL);
    assert_string_equal(ids(h, "pay2"), "pay-3,pay-1");
    expect(h, "pay2", 200, "\"next\":\"/apis?category=payments&page=2&per_page=2\"", NULL);
    assert_string_equal(ids(h, "upper"), "geo-1,geo-2");
    expect(h, "none", 200, "\"items\":[],\"page\":1,\"per_page\":20,\"total\":0", NULL);
    expect(h, "empty", 200, "\"total\":8", NULL); /* category= is no filter */
    expect(h, "bad", 400, "\"error\":\"bad request\"", "category must be", NULL);
    sl_harness_destroy(&h);
}

static void test_search(void **st)
{
    (void)st;
    sl_harness *h = make_with(conf(small_seed, NULL), NULL);
    get(h, "card", "/apis", "\"q\":\"card\"");        /* exact word in summaries */
    get(h, "CARD", "/apis", "\"q\":\"CARD\"");        /* case-insensitive */
    get(h, "cards", "/apis", "\"q\":\"cards \"");     /* a tag; trailing space: exact */
    get(h, "car", "/apis", "\"q\":\"car\"");          /* last word as a prefix */
    get(h, "car-exact", "/apis", "\"q\":\"car \"");   /* followed by a space: exact, no match */
    get(h, "two", "/apis", "\"q\":\"card refunds\""); /* every word must match */
    get(h, "two-rev", "/apis", "\"q\":\"Refunds, CARD\"");
    get(h, "no", "/apis", "\"q\":\"card sepa\""); /* no API has both */
    get(h, "desc", "/apis", "\"q\":\"pollen\"");  /* summary and tags */
    get(h, "cat", "/apis", "\"q\":\"card\",\"category\":\"weather\"");
    get(h, "page", "/apis", "\"q\":\"card payments\",\"per_page\":\"1\",\"page\":\"1\"");
    get(h, "punct", "/apis", "\"q\":\"--\""); /* no words: no filter */
    get(h, "many", "/apis", "\"q\":\"a b c d e f g h i\"");
    get(h, "p", "/apis", "\"q\":\"p\"");                   /* one letter: exact, not a prefix */
    get(h, "then-summary", "/apis", "\"q\":\"sepa cre\""); /* the prefix after a word... */
    get(h, "then-tag", "/apis", "\"q\":\"apple mob\"");    /* ...in the summary, in a tag */
    get(h, "then-none", "/apis", "\"q\":\"apple cre\"");
    run(h);
    /* card: pay-1 "Card payments and refunds", pay-2 "Card payments, ...", wx-2 "card-free" */
    assert_string_equal(ids(h, "card"), "wx-2,pay-1,pay-2");
    assert_string_equal(ids(h, "CARD"), "wx-2,pay-1,pay-2");
    assert_string_equal(ids(h, "cards"), "pay-1,pay-2");
    /* car: card, cardpay, cards */
    assert_string_equal(ids(h, "car"), "wx-2,pay-1,pay-2");
    assert_string_equal(ids(h, "car-exact"), "");
    assert_string_equal(ids(h, "two"), "pay-1");
    assert_string_equal(ids(h, "two-rev"), "pay-1");
    assert_string_equal(ids(h, "no"), "");
    expect(h, "no", 200, "\"total\":0", NULL);
    assert_string_equal(ids(h, "desc"), "wx-2");
    assert_string_equal(ids(h, "cat"), "wx-2");
    assert_string_equal(ids(h, "page"), "pay-1");
    expect(h, "page", 200, "\"total\":2", "\"next\":\"/apis?q=card%20payments&page=2&per_page=1\"",
           NULL);
    expect(h, "punct", 200, "\"total\":8", NULL);
    expect(h, "many", 400, "at most 8 words", NULL);
    assert_string_equal(ids(h, "p"), "");
    assert_string_equal(ids(h, "then-summary"), "pay-3");
    assert_string_equal(ids(h, "then-tag"), "pay-4");
    assert_string_equal(ids(h, "then-none"), "");
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ one API */

static void test_get_and_docs(void **st)
{
    (void)st;
    sl_harness *h = make_with(conf(small_seed, NULL), NULL);
    get(h, "one", "/apis/pay-1", NULL);
    get(h, "docs", "/apis/pay-1/docs", NULL);
    get(h, "missing", "/apis/nope", NULL);
    get(h, "missing-docs", "/apis/nope/docs", NULL);
    get(h, "deeper", "/apis/pay-1/docs/x", NULL);
    get(h, "other", "/apis/pay-1/spec", NULL);
    get(h, "slash", "/apis/", NULL);
    get(h, "bad-id", "/apis/.hidden", NULL);
    req(h, "post-one", "POST", "/apis/pay-1", NULL, NULL, "{}");
    req(h, "delete-docs", "DELETE", "/apis/pay-1/docs", NULL, NULL, NULL);
    req(h, "post-list", "POST", "/apis", NULL, NULL, "{}");
    get(h, "page0", "/apis", "\"page\":\"0\"");
    get(h, "pageX", "/apis", "\"page\":\"2x\"");
    get(h, "per0", "/apis", "\"per_page\":\"0\"");
    get(h, "per-big", "/apis", "\"per_page\":\"101\"");
    get(h, "page-neg", "/apis", "\"page\":\"-1\"");
    run(h);
    expect(h, "one", 200,
           "{\"id\":\"pay-1\",\"name\":\"CardPay\",\"summary\":\"Card payments and refunds\","
           "\"description\":\"\",\"category\":\"payments\",\"tags\":[\"cards\",\"refunds\"],"
           "\"version\":\"\",\"base_url\":\"\",\"plans\":[],\"updated\":\"",
           "\"docs\":\"/apis/pay-1/docs\"}", NULL);
    assert_null(strstr(body(h, "one"), "origin"));
    assert_null(strstr(body(h, "one"), "seed_hash"));
    expect_event(h, "one", "\"content-type\":\"application/json\"", 0);
    expect_event(h, "one", "\"api\":\"pay-1\"", 0);
    expect_event(h, "one", "\"conn\":7", 0); /* the request's fields stay for respond */
    expect(h, "docs", 200,
           "{\"openapi\":\"3.0.3\",\"info\":{\"title\":\"CardPay\",\"version\":\"1.0\"},"
           "\"paths\":{\"/ping\":{\"get\":{\"responses\":{\"200\":{\"description\":\"OK\"}}}}}}",
           NULL);
    expect_event(h, "docs", "\"api\":\"pay-1\"", 0);
    expect(h, "missing", 404, "\"error\":\"not found\"", "no API 'nope'", NULL);
    expect_event(h, "missing", "\"api\":", 1); /* no usage series for ids that do not exist */
    expect(h, "missing-docs", 404, NULL);
    expect(h, "deeper", 404, NULL);
    expect(h, "other", 404, NULL);
    expect(h, "slash", 404, NULL);
    expect(h, "bad-id", 404, NULL);
    expect(h, "post-one", 405, NULL);
    expect_event(h, "post-one", "\"allow\":\"GET\"", 0);
    expect(h, "delete-docs", 405, NULL);
    expect(h, "post-list", 405, NULL);
    expect_event(h, "post-list", "\"allow\":\"GET\"", 0);
    expect(h, "page0", 400, "page must be a whole number from 1", NULL);
    expect(h, "pageX", 400, NULL);
    expect(h, "per0", 400, "per_page must be a whole number from 1 to 100", NULL);
    expect(h, "per-big", 400, NULL);
    expect(h, "page-neg", 400, NULL);
    assert_int_equal(sl_harness_counter(h, "requests"), 16);
    assert_int_equal(sl_harness_counter(h, "not_found"), 6);
    assert_int_equal(sl_harness_counter(h, "bad_requests"), 5);
    sl_harness_destroy(&h);
}

/* Requests that are not the catalog's go on unchanged; events that are not requests to errors. */
static void test_passthrough_and_errors(void **st)
{
    (void)st;
    sl_harness *h = make_with(conf(small_seed, NULL), NULL);
    static const char *const ev[] = {
        "{\"id\":\"e1\",\"method\":\"GET\",\"path\":\"/v1/events\",\"query\":{\"q\":\"x\"},"
        "\"conn\":9,\"api\":\"keep-me\"}",
        "{\"id\":\"e2\",\"method\":\"GET\",\"path\":\"/apisx\",\"body\":\"\"}",
        "{\"id\":\"e3\",\"method\":\"GET\",\"path\":\"/admin/apisx\"}",
        "{\"id\":\"e4\",\"method\":\"GET\",\"path\":\"/api\"}",
    };
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(sl_harness_push(h, ev[i]), 0);
    assert_int_equal(sl_harness_push(h, "{\"id\":\"bad1\",\"method\":\"GET\"}"), 0);
    assert_int_equal(sl_harness_push(h, "{\"id\":\"bad2\",\"method\":\"GET\",\"path\":7}"), 0);
    assert_int_equal(
        sl_harness_push(h, "{\"id\":\"bad3\",\"method\":\"GET\",\"path\":\"/apis\",\"query\":[1]}"),
        0);
    /* fields the catalog does not write stay; `api` is replaced only when it sets one */
    assert_int_equal(sl_harness_push(h, "{\"id\":\"list\",\"method\":\"GET\",\"path\":\"/apis\","
                                        "\"api\":\"from-routing\",\"cache\":{\"gen\":3}}"),
                     0);
    assert_int_equal(sl_harness_push(h, "{\"id\":\"one\",\"method\":\"GET\",\"path\":"
                                        "\"/apis/geo-1\",\"api\":\"from-routing\",\"response\":1}"),
                     0);
    run(h);
    expect_event(h, "list", "\"api\":\"from-routing\",\"cache\":{\"gen\":3},\"response\":{", 0);
    expect_event(h, "one", "\"path\":\"/apis/geo-1\",\"response\":{\"status\":200", 0);
    expect_event(h, "one", "\"api\":\"geo-1\"}", 0);
    expect_event(h, "one", "from-routing", 1);
    assert_int_equal(sl_harness_count(h, "out"), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(sl_harness_out(h, "out", i), ev[i]);
    assert_int_equal(sl_harness_count(h, "answered"), 2);
    assert_int_equal(sl_harness_count(h, "errors"), 3);
    assert_non_null(strstr(sl_harness_out(h, "errors", 0), "\"reason\":\"malformed\""));
    assert_non_null(strstr(sl_harness_out(h, "errors", 2), "query is not a map"));
    assert_int_equal(sl_harness_counter(h, "passed"), 4);
    assert_int_equal(sl_harness_counter(h, "requests"), 2);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ the admin API */

static void test_admin_create_update_delete(void **st)
{
    (void)st;
    sl_harness *h = make_with(conf(small_seed, NULL), NULL);
    /* create, then read it back in the same run */
    req(h, "create", "POST", "/admin/apis", NULL, ADMIN,
        api_json("sms-1", "Zeta SMS", "messaging", "Send SMS worldwide", "\"sms\",\"otp\""));
    get(h, "c-get", "/apis/sms-1", NULL);
    get(h, "c-cat", "/apis", "\"category\":\"messaging\"");
    get(h, "c-q", "/apis", "\"q\":\"worldwide\"");
    get(h, "c-all", "/apis", "\"per_page\":\"100\"");
    req(h, "dup", "POST", "/admin/apis", NULL, ADMIN,
        api_json("sms-1", "Other", "messaging", "x", NULL));
    /* replace: a new name and category move it between lists and searches */
    req(h, "put", "PUT", "/admin/apis/sms-1", NULL, ADMIN,
        api_json("sms-1", "Alpha Voice", "voice", "Calls with text to speech", NULL));
    get(h, "u-old-cat", "/apis", "\"category\":\"messaging\"");
    get(h, "u-new-cat", "/apis", "\"category\":\"voice\"");
    get(h, "u-old-q", "/apis", "\"q\":\"worldwide\"");
    get(h, "u-old-tag", "/apis", "\"q\":\"otp\"");
    get(h, "u-new-q", "/apis", "\"q\":\"speech\"");
    get(h, "u-all", "/apis", "\"per_page\":\"100\"");
    /* change one member: the rest stays, the document too */
    req(h, "patch", "PATCH", "/admin/apis/sms-1", NULL, ADMIN,
        "{\"summary\":\"Programmable phone calls\",\"tags\":null}");
    get(h, "p-q-old", "/apis", "\"q\":\"speech\"");
    get(h, "p-q-new", "/apis", "\"q\":\"programmable\"");
    get(h, "p-docs", "/apis/sms-1/docs", NULL);
    req(h, "show", "GET", "/admin/apis/sms-1", NULL, ADMIN, NULL);
    /* what GET shows can be PUT back: its read-only members are ignored */
    char back[4096];
    snprintf(back, sizeof back,
             "{\"updated\":\"2020-01-01T00:00:00Z\",\"origin\":\"admin\","
             "\"docs\":\"/apis/sms-1/docs\",%s",
             api_json("sms-1", "Alpha Voice", "voice", "Programmable phone calls", NULL) + 1);
    req(h, "put-back", "PUT", "/admin/apis/sms-1", NULL, ADMIN, back);
    /* a seeded API can be changed too */
    req(h, "patch-seeded", "PATCH", "/admin/apis/geo-1", NULL, ADMIN, "{\"category\":\"places\"}");
    get(h, "s-maps", "/apis", "\"category\":\"maps\"");
    get(h, "s-places", "/apis", "\"category\":\"places\"");
    /* delete: gone from everything */
    req(h, "delete", "DELETE", "/admin/apis/sms-1", NULL, ADMIN, NULL);
    get(h, "d-get", "/apis/sms-1", NULL);
    get(h, "d-docs", "/apis/sms-1/docs", NULL);
    get(h, "d-cat", "/apis", "\"category\":\"voice\"");
    get(h, "d-q", "/apis", "\"q\":\"programmable\"");
    get(h, "d-all", "/apis", "\"per_page\":\"100\"");
    req(h, "delete-again", "DELETE", "/admin/apis/sms-1", NULL, ADMIN, NULL);
    run(h);

    expect(h, "create", 201, "\"id\":\"sms-1\",\"name\":\"Zeta SMS\"",
           "\"plans\":[{\"name\":\"pro\",\"limits\":\"10/s\"}]", "\"docs\":\"/apis/sms-1/docs\"",
           NULL);
    expect_event(h, "create", "\"location\":\"/apis/sms-1\"", 0);
    expect_event(h, "create", "\"cache-control\":\"no-store\"", 0);
    expect_event(h, "create", "\"api\":\"sms-1\"", 0);
    expect(h, "c-get", 200, "\"summary\":\"Send SMS worldwide\"", "\"version\":\"1.0\"", NULL);
    assert_string_equal(ids(h, "c-cat"), "sms-1");
    assert_string_equal(ids(h, "c-q"), "sms-1");
    expect(h, "c-all", 200, "\"total\":9", NULL);
    expect(h, "dup", 409, "\"error\":\"conflict\"", "API 'sms-1' exists", NULL);

    expect(h, "put", 200, "\"name\":\"Alpha Voice\"", "\"category\":\"voice\"", "\"tags\":[]",
           NULL);
    assert_string_equal(ids(h, "u-old-cat"), "");
    assert_string_equal(ids(h, "u-new-cat"), "sms-1");
    assert_string_equal(ids(h, "u-old-q"), "");
    assert_string_equal(ids(h, "u-old-tag"), "");
    assert_string_equal(ids(h, "u-new-q"), "sms-1");
    /* its new name sorts it after "air quality" and before the rest */
    assert_string_equal(ids(h, "u-all"), "wx-2,sms-1,pay-3,pay-1,pay-2,wx-1,geo-1,geo-2,pay-4");

    expect(h, "patch", 200, "\"name\":\"Alpha Voice\"", "\"summary\":\"Programmable phone calls\"",
           "\"category\":\"voice\"", "\"tags\":[]", NULL);
    assert_string_equal(ids(h, "p-q-old"), "");
    assert_string_equal(ids(h, "p-q-new"), "sms-1");
    expect(h, "p-docs", 200, "{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"Alpha Voice\"", NULL);
    expect(h, "show", 200, "\"origin\":\"admin\"", "\"openapi\":{\"openapi\":\"3.1.0\"", NULL);
    expect(h, "put-back", 200, "\"summary\":\"Programmable phone calls\"", NULL);
    assert_null(strstr(body(h, "put-back"), "2020-01-01"));
    expect(h, "patch-seeded", 200, "\"category\":\"places\"", "\"name\":\"Geocoder\"", NULL);
    assert_string_equal(ids(h, "s-maps"), "geo-2");
    assert_string_equal(ids(h, "s-places"), "geo-1");

    assert_int_equal(status(h, "delete"), 204);
    assert_string_equal(body(h, "delete"), "");
    expect_event(h, "delete", "\"api\":\"sms-1\"", 0);
    expect(h, "d-get", 404, NULL);
    expect(h, "d-docs", 404, NULL);
    assert_string_equal(ids(h, "d-cat"), "");
    assert_string_equal(ids(h, "d-q"), "");
    expect(h, "d-all", 200, "\"total\":8", NULL);
    expect(h, "delete-again", 404, NULL);
    assert_int_equal(sl_harness_counter(h, "admin_writes"), 6);

    /* one invalidation per write, naming exactly what changed, with the generation after it */
    assert_int_equal(sl_harness_count(h, "invalidate"), 1 + 6); /* the seed's first start, then */
    const char *inv = sl_harness_out(h, "invalidate", 1);
    assert_non_null(strstr(inv, "\"type\":\"cache.invalidate\",\"source\":\"op\""));
    assert_non_null(strstr(inv, "\"generation\":2,\"keys\":[\"/apis\",\"/apis/sms-1\","
                                "\"/apis/sms-1/docs\"],\"prefixes\":[]"));
    assert_non_null(strstr(sl_harness_out(h, "invalidate", 5),
                           "\"keys\":[\"/apis\",\"/apis/geo-1\",\"/apis/geo-1/docs\"]"));
    assert_non_null(strstr(sl_harness_out(h, "invalidate", 6), "\"generation\":7"));
    /* the event is the request plus response (and api): nothing else changes */
    expect_event(h, "c-get", "\"generation\"", 1);
    sl_harness_destroy(&h);
}

static void test_admin_refusals(void **st)
{
    (void)st;
    sl_harness *h = make_with(conf(small_seed, NULL), NULL);
    const char *ok = api_json("new-1", "New", "maps", "s", NULL);
    req(h, "no-scopes", "POST", "/admin/apis", NULL, NULL, ok);
    req(h, "wrong-scope", "POST", "/admin/apis", NULL, "\"events:read\"", ok);
    req(h, "403-delete", "DELETE", "/admin/apis/pay-1", NULL, "\"events:write\"", NULL);
    req(h, "bad-json", "POST", "/admin/apis", NULL, ADMIN, "{\"id\":");
    req(h, "no-body", "POST", "/admin/apis", NULL, ADMIN, NULL);
    req(h, "array", "POST", "/admin/apis", NULL, ADMIN, "[1]");
    req(h, "no-name", "POST", "/admin/apis", NULL, ADMIN,
        "{\"id\":\"x\",\"category\":\"maps\",\"openapi\":{}}");
    req(h, "no-openapi", "POST", "/admin/apis", NULL, ADMIN,
        "{\"id\":\"x\",\"name\":\"X\",\"category\":\"maps\"}");
    req(h, "bad-openapi", "POST", "/admin/apis", NULL, ADMIN,
        "{\"id\":\"x\",\"name\":\"X\",\"category\":\"maps\",\"openapi\":{\"openapi\":\"2.0\","
        "\"info\":{\"title\":\"x\",\"version\":\"1\"},\"paths\":{}}}");
    req(h, "no-paths", "POST", "/admin/apis", NULL, ADMIN,
        "{\"id\":\"x\",\"name\":\"X\",\"category\":\"maps\",\"openapi\":{\"openapi\":\"3.0.0\","
        "\"info\":{\"title\":\"x\",\"version\":\"1\"}}}");
    req(h, "bad-id", "POST", "/admin/apis", NULL, ADMIN, api_json("a b", "X", "maps", "s", NULL));
    req(h, "bad-cat", "POST", "/admin/apis", NULL, ADMIN, api_json("x", "X", "Maps", "s", NULL));
    req(h, "unknown", "POST", "/admin/apis", NULL, ADMIN,
        "{\"id\":\"x\",\"name\":\"X\",\"catgory\":\"maps\",\"openapi\":{}}");
    req(h, "twice", "POST", "/admin/apis", NULL, ADMIN,
        "{\"id\":\"x\",\"id\":\"y\",\"name\":\"X\"}");
    req(h, "bad-tags", "POST", "/admin/apis", NULL, ADMIN,
        "{\"id\":\"x\",\"name\":\"X\",\"category\":\"maps\",\"tags\":[\"a\",3]}");
    req(h, "bad-plan", "POST", "/admin/apis", NULL, ADMIN,
        "{\"id\":\"x\",\"name\":\"X\",\"category\":\"maps\",\"plans\":[{\"limits\":\"1/s\"}]}");
    req(h, "bad-url", "POST", "/admin/apis", NULL, ADMIN,
        "{\"id\":\"x\",\"name\":\"X\",\"category\":\"maps\",\"base_url\":\"ftp://x\"}");
    req(h, "put-other-id", "PUT", "/admin/apis/pay-1", NULL, ADMIN,
        api_json("pay-2", "X", "maps", "s", NULL));
    req(h, "put-missing", "PUT", "/admin/apis/nope", NULL, ADMIN,
        api_json("nope", "X", "maps", "s", NULL));
    req(h, "put-partial", "PUT", "/admin/apis/pay-1", NULL, ADMIN, "{\"name\":\"X\"}");
    req(h, "patch-null-name", "PATCH", "/admin/apis/pay-1", NULL, ADMIN, "{\"name\":null}");
    req(h, "patch-empty", "PATCH", "/admin/apis/pay-1", NULL, ADMIN, "{}");
    req(h, "patch-read-only", "PATCH", "/admin/apis/pay-1", NULL, ADMIN,
        "{\"updated\":null,\"docs\":\"/x\",\"origin\":\"admin\"}");
    req(h, "patch-missing", "PATCH", "/admin/apis/nope", NULL, ADMIN, "{\"name\":\"X\"}");
    req(h, "get-list", "GET", "/admin/apis", NULL, ADMIN, NULL);
    req(h, "post-item", "POST", "/admin/apis/pay-1", NULL, ADMIN, "{}");
    req(h, "deep", "GET", "/admin/apis/pay-1/x", NULL, ADMIN, NULL);
    req(h, "show-missing", "GET", "/admin/apis/nope", NULL, ADMIN, NULL);
    get(h, "after", "/apis/pay-1", NULL);
    run(h);
    expect(h, "no-scopes", 403, "\"error\":\"forbidden\"", "needs scope 'admin'", NULL);
    expect(h, "wrong-scope", 403, NULL);
    expect(h, "403-delete", 403, NULL);
    expect(h, "bad-json", 400, "the body is not JSON", NULL);
    expect(h, "no-body", 400, "the body must be the API as a JSON object", NULL);
    expect(h, "array", 400, "an API is an object", NULL);
    expect(h, "no-name", 400, NULL);
    expect(h, "no-openapi", 400, "an API needs 'openapi'", NULL);
    expect(h, "bad-openapi", 400, "openapi.openapi must be the OpenAPI version", NULL);
    expect(h, "no-paths", 400, "needs 'paths'", NULL);
    expect(h, "bad-id", 400, "'id' must be", NULL);
    expect(h, "bad-cat", 400, "'category' must be", NULL);
    expect(h, "unknown", 400, "unknown member 'catgory' (did you mean 'category'?)", NULL);
    expect(h, "twice", 400, "member 'id' appears twice", NULL);
    expect(h, "bad-tags", 400, "tags[1] must be a string", NULL);
    expect(h, "bad-plan", 400, "plans[0] needs a name", NULL);
    expect(h, "bad-url", 400, "'base_url' must be", NULL);
    expect(h, "put-other-id", 400, "the body's id 'pay-2' is not the path's 'pay-1'", NULL);
    expect(h, "put-missing", 404, "no API 'nope'", NULL);
    expect(h, "put-partial", 400, "PUT replaces the whole API", NULL);
    expect(h, "patch-null-name", 400, "'name' cannot be removed", NULL);
    expect(h, "patch-empty", 400, "give at least one member", NULL);
    expect(h, "patch-read-only", 400, "give at least one member", NULL); /* read-only: ignored */
    expect(h, "patch-missing", 404, NULL);
    expect(h, "get-list", 405, NULL);
    expect_event(h, "get-list", "\"allow\":\"POST\"", 0);
    expect(h, "post-item", 405, NULL);
    expect_event(h, "post-item", "\"allow\":\"GET, PUT, PATCH, DELETE\"", 0);
    expect(h, "deep", 404, NULL);
    expect(h, "show-missing", 404, NULL);
    /* nothing changed */
    expect(h, "after", 200, "\"name\":\"CardPay\"", NULL);
    assert_int_equal(sl_harness_count(h, "invalidate"), 1); /* the seed's, at start */
    assert_int_equal(sl_harness_counter(h, "admin_writes"), 0);
    assert_int_equal(sl_harness_counter(h, "forbidden"), 3);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ the seed at a restart */

static void test_seed_ownership(void **st)
{
    (void)st;
    char state[64], path[160], y[16384];
    assert_non_null(sl_harness_tmpdir(state));
    snprintf(path, sizeof path, "%s/owned.yaml", dir);
    snprintf(y, sizeof y, "apis:\n");
    entry(y, sizeof y, "a1", "One", "maps", "first version", NULL);
    entry(y, sizeof y, "a2", "Two", "maps", "first version", NULL);
    entry(y, sizeof y, "a3", "Three", "maps", "first version", NULL);
    entry(y, sizeof y, "a5", "Five", "maps", "first version", NULL);
    write_file(path, y);
    sl_harness *h = make_with(conf(path, NULL), state);
    req(h, "take-a2", "PATCH", "/admin/apis/a2", NULL, ADMIN, "{\"summary\":\"admin's version\"}");
    req(h, "del-a3", "DELETE", "/admin/apis/a3", NULL, ADMIN, NULL);
    run(h);
    assert_int_equal(status(h, "take-a2"), 200);
    assert_int_equal(status(h, "del-a3"), 204);
    sl_harness_destroy(&h);

    /* the file changes: a1 and a2 edited, a4 new, a5 gone, a3 still listed */
    snprintf(y, sizeof y, "apis:\n");
    entry(y, sizeof y, "a1", "One", "maps", "second version", NULL);
    entry(y, sizeof y, "a2", "Two", "maps", "second version", NULL);
    entry(y, sizeof y, "a3", "Three", "maps", "second version", NULL);
    entry(y, sizeof y, "a4", "Four", "maps", "first version", NULL);
    write_file(path, y);
    h = make_with(conf(path, NULL), state);
    get(h, "a1", "/apis/a1", NULL);
    get(h, "a2", "/apis/a2", NULL);
    get(h, "a3", "/apis/a3", NULL);
    get(h, "a4", "/apis/a4", NULL);
    get(h, "a5", "/apis/a5", NULL);
    get(h, "old", "/apis", "\"q\":\"first\"");
    get(h, "all", "/apis", NULL);
    req(h, "recreate-a3", "POST", "/admin/apis", NULL, ADMIN,
        api_json("a3", "Three", "maps", "admin's own", NULL));
    run(h);
    expect(h, "a1", 200, "\"summary\":\"second version\"", NULL);  /* the file's: follows it */
    expect(h, "a2", 200, "\"summary\":\"admin's version\"", NULL); /* taken over: stays */
    expect(h, "a3", 404, NULL);                                    /* deleted: stays deleted */
    expect(h, "a4", 200, NULL);
    expect(h, "a5", 404, NULL); /* the file's, and the file dropped it */
    assert_string_equal(ids(h, "old"), "a4");
    assert_string_equal(ids(h, "all"), "a4,a1,a2");
    expect(h, "recreate-a3", 201, NULL);
    /* the start changed answers: one invalidation for everything, then the POST's */
    assert_int_equal(sl_harness_count(h, "invalidate"), 2);
    assert_non_null(strstr(sl_harness_out(h, "invalidate", 0), "\"prefixes\":[\"/apis/\"]"));
    sl_harness_destroy(&h);

    /* the same file again: nothing to do; the re-created a3 is the admin's */
    h = make_with(conf(path, NULL), state);
    get(h, "a3", "/apis/a3", NULL);
    get(h, "all", "/apis", NULL);
    run(h);
    expect(h, "a3", 200, "\"summary\":\"admin's own\"", NULL);
    assert_string_equal(ids(h, "all"), "a4,a1,a3,a2");
    assert_int_equal(sl_harness_count(h, "invalidate"), 0);
    sl_harness_destroy(&h);

    /* without a seed parameter the store is left as it is */
    h = make_with(conf(NULL, NULL), state);
    get(h, "all", "/apis", NULL);
    run(h);
    assert_string_equal(ids(h, "all"), "a4,a1,a3,a2");
    sl_harness_destroy(&h);
    sl_harness_rmdir(state);
}

/* ------------------------------------------------------------ the indexes against a model */

#define M_IDS 10
#define M_OPS 120
static const char *const vocab[] = {"alpha", "bravo",   "charlie", "delta",
                                    "echo",  "foxtrot", "golf",    "hotel"};
static const char *const mcats[] = {"cat-a", "cat-b", "cat-c"};

typedef struct mapi {
    int exists;
    char name[64], summary[64];
    int cat;
} mapi;

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void random_words(char *out, size_t cap, int n)
{
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        char w[16];
        snprintf(w, sizeof w, "%s", vocab[rnd(8)]);
        if (rnd(2)) w[0] = (char)(w[0] - 32); /* case must not matter */
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? " " : "", w);
    }
}

static int has_word(const char *text, const char *w)
{
    char t[64];
    snprintf(t, sizeof t, "%s", text);
    for (char *p = t; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
    for (char *tok = strtok(t, " "); tok; tok = strtok(NULL, " "))
        if (!strcmp(tok, w)) return 1;
    return 0;
}

static const mapi *sort_model;
static int cmp_model(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    int r = strcasecmp(sort_model[a].name, sort_model[b].name);
    if (r) return r;
    char ia[16], ib[16];
    snprintf(ia, sizeof ia, "api-%d", a);
    snprintf(ib, sizeof ib, "api-%d", b);
    return strcmp(ia, ib);
}

/* The expected ids of a query on the model: word w (or NULL) and category c (or -1). */
static void model_query(const mapi *m, const char *w1, const char *w2, int c, char *out)
{
    int v[M_IDS], n = 0;
    for (int i = 0; i < M_IDS; i++) {
        if (!m[i].exists || (c >= 0 && m[i].cat != c)) continue;
        if (w1 && !has_word(m[i].name, w1) && !has_word(m[i].summary, w1)) continue;
        if (w2 && !has_word(m[i].name, w2) && !has_word(m[i].summary, w2)) continue;
        v[n++] = i;
    }
    sort_model = m;
    qsort(v, (size_t)n, sizeof *v, cmp_model);
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        sprintf(out + strlen(out), "%sapi-%d", i ? "," : "", v[i]);
}

/*
 * A random sequence of creates, replaces, changes and deletes over 10 ids,
 * with a word and category query of every kind after every 12 writes: each
 * answer must be what a model of the catalog gives. Stale index entries
 * (an old word, an old category) would show as extra hits.
 */
static void test_index_model(void **st)
{
    (void)st;
    sl_harness *h = make_with(conf(NULL, NULL), NULL);
    static mapi m[M_IDS];
    static char expected[600][256];
    static char qid[600][16];
    int nq = 0;
    memset(m, 0, sizeof m);
    char id[16], rid[16], body[1024], name[64], summary[64];
    for (int op = 0; op < M_OPS; op++) {
        int i = (int)rnd(M_IDS);
        snprintf(id, sizeof id, "api-%d", i);
        snprintf(rid, sizeof rid, "w%d", op);
        random_words(name, sizeof name, 1 + (int)rnd(2));
        random_words(summary, sizeof summary, (int)rnd(3));
        int cat = (int)rnd(3);
        unsigned kind = rnd(4);
        char path[64];
        snprintf(path, sizeof path, "/admin/apis/%s", id);
        if (!m[i].exists) {
            req(h, rid, "POST", "/admin/apis", NULL, ADMIN,
                api_json(id, name, mcats[cat], summary, NULL));
            m[i].exists = 1;
            snprintf(m[i].name, sizeof m[i].name, "%s", name);
            snprintf(m[i].summary, sizeof m[i].summary, "%s", summary);
            m[i].cat = cat;
        } else if (kind == 0) {
            req(h, rid, "DELETE", path, NULL, ADMIN, NULL);
            m[i].exists = 0;
        } else if (kind == 1) {
            req(h, rid, "PUT", path, NULL, ADMIN, api_json(id, name, mcats[cat], summary, NULL));
            snprintf(m[i].name, sizeof m[i].name, "%s", name);
            snprintf(m[i].summary, sizeof m[i].summary, "%s", summary);
            m[i].cat = cat;
        } else if (kind == 2) {
            snprintf(body, sizeof body, "{\"name\":\"%s\"}", name);
            req(h, rid, "PATCH", path, NULL, ADMIN, body);
            snprintf(m[i].name, sizeof m[i].name, "%s", name);
        } else {
            snprintf(body, sizeof body, "{\"category\":\"%s\",\"summary\":\"%s\"}", mcats[cat],
                     summary);
            req(h, rid, "PATCH", path, NULL, ADMIN, body);
            m[i].cat = cat;
            snprintf(m[i].summary, sizeof m[i].summary, "%s", summary);
        }
        if (op % 12 != 11) continue;
        for (int w = -1; w < 8; w++)
            for (int c = -1; c < 3; c++) {
                char q[128] = "\"per_page\":\"100\"";
                /* with a trailing space the word is exact, without it a prefix: the same hits
                 * (no word of the vocabulary begins another), by the two ways of matching */
                if (w >= 0)
                    snprintf(q + strlen(q), sizeof q - strlen(q), ",\"q\":\"%s%s\"", vocab[w],
                             c % 2 ? "" : " ");
                if (c >= 0)
                    snprintf(q + strlen(q), sizeof q - strlen(q), ",\"category\":\"%s\"", mcats[c]);
                snprintf(qid[nq], sizeof qid[nq], "q%d", nq);
                get(h, qid[nq], "/apis", q);
                model_query(m, w >= 0 ? vocab[w] : NULL, NULL, c, expected[nq]);
                nq++;
            }
        /* two words, the last one as a prefix of itself */
        int w1 = (int)rnd(8), w2 = (int)rnd(8);
        char q[128];
        snprintf(q, sizeof q, "\"per_page\":\"100\",\"q\":\"%s %s\"", vocab[w1], vocab[w2]);
        snprintf(qid[nq], sizeof qid[nq], "q%d", nq);
        get(h, qid[nq], "/apis", q);
        model_query(m, vocab[w1], vocab[w2], -1, expected[nq]);
        nq++;
    }
    run(h);
    for (int i = 0; i < nq; i++) {
        const char *got = ids(h, qid[i]);
        if (strcmp(got, expected[i]) != 0)
            print_message("query %s: got [%s], model [%s]\n", qid[i], got, expected[i]);
        assert_string_equal(got, expected[i]);
    }
    assert_int_equal(sl_harness_counter(h, "admin_writes"), M_OPS);
    assert_int_equal(sl_harness_count(h, "invalidate"), M_OPS);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ configuration */

/* What sl_harness_new printed to stderr for yaml (which must be refused). */
static const char *refusal(const char *yaml)
{
    static char text[8192];
    char path[160];
    snprintf(path, sizeof path, "%s/stderr.txt", dir);
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    dup2(fileno(f), 2);
    sl_harness *h = sl_harness_new(yaml);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(f);
    assert_null(h);
    f = fopen(path, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

static void test_config_errors(void **st)
{
    (void)st;
    char y[16][512];
    const char *bad[16];
    size_t n = 0;
#define ADD(...) (snprintf(y[n], sizeof y[n], __VA_ARGS__), bad[n] = y[n], n++)
    ADD("type: catalog\nseed: %s/missing.yaml", dir);
    ADD("type: catalog\nprefix: apis");
    ADD("type: catalog\nprefix: /apis/");
    ADD("type: catalog\nprefix: \"/apis*\"");
    ADD("type: catalog\nadmin_prefix: /apis/admin");
    ADD("type: catalog\nprefix: /admin/apis\nadmin_prefix: /admin");
    ADD("type: catalog\nper_page: 0");
    ADD("type: catalog\nper_page: 50\nmax_per_page: 20");
    ADD("type: catalog\nmax_per_page: 1001");
    ADD("type: catalog\nparallelism: 2");
    ADD("type: catalog\nadmin_scope: \"\"");
    ADD("type: catalog\nseeds: %s", small_seed);
#undef ADD
    assert_int_equal(sl_harness_config_mismatches(bad, n, 0), 0);
    const char *good[] = {
        "type: catalog",
        "type: catalog\nprefix: /v1/apis\nadmin_prefix: /v1/admin/apis\nadmin_scope: catalog:write",
        "type: catalog\nper_page: 100\nmax_per_page: 100",
        conf(small_seed, NULL),
    };
    assert_int_equal(sl_harness_config_mismatches(good, sizeof good / sizeof *good, 1), 0);
    char missing[256];
    snprintf(missing, sizeof missing, "type: catalog\nseed: %s/missing.yaml", dir);
    assert_non_null(strstr(refusal(missing), "missing.yaml"));
}

/* Mistakes in a seed file are refused at their file:line:col. */
static void test_seed_errors(void **st)
{
    (void)st;
    static const char head[] = "apis:\n  - id: ok-1\n    name: OK\n    category: maps\n"
                               "    openapi: {openapi: \"3.0.3\", info: {title: t, version: \"1\"},"
                               " paths: {}}\n";
    static const struct {
        const char *text;  /* appended to head (lines 1-5) */
        const char *where; /* ":line:col:" expected in the message */
        const char *what;
    } cases[] = {
        {"  - id: ok-1\n    name: Dup\n    category: maps\n"
         "    openapi: {openapi: \"3.0.3\", info: {title: t, version: \"1\"}, paths: {}}\n",
         ":6:9:", "API id 'ok-1' appears twice (first at line 2)"},
        {"  - id: x\n    category: maps\n", ":6:5:", "an API needs 'name'"},
        {"  - id: x\n    name: X\n    category: Maps\n", ":8:15:", "'category' must be"},
        {"  - id: x\n    name: X\n    category: maps\n    openapi: {openapi: 3.0, info: {}, "
         "paths: {}}\n",
         ":9:24:", "openapi.openapi must be the OpenAPI version"},
        {"  - id: x\n    name: X\n    category: maps\n    openapi:\n      openapi: \"3.0.0\"\n"
         "      info: {title: x, version: 1.0}\n      paths: {}\n",
         ":11:33:", "openapi.info.version must be a string"},
        {"  - id: x\n    name: X\n    category: maps\n    colour: red\n",
         ":9:13:", "unknown member 'colour'"},
        {"  - id: x\n    name: X\n    category: maps\n    plans: [{name: free}, {limit: 1/s}]\n",
         ":9:27:", "plans[1]: unknown member 'limit'"},
        {"  - id: x\n    name: X\n    category: maps\n    tags: [ok, [nested]]\n",
         ":9:16:", "tags[1] must be a string"},
        {"  - just a string\n", ":6:5:", "an API is a map"},
        {"  - id: x\n    name: [\n", ":", "seed:"}, /* YAML syntax */
    };
    char path[160], text[4096], yaml[256];
    snprintf(path, sizeof path, "%s/seed-bad.yaml", dir);
    snprintf(yaml, sizeof yaml, "type: catalog\nseed: %s", path);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(text, sizeof text, "%s%s", head, cases[i].text);
        write_file(path, text);
        const char *msg = refusal(yaml);
        char want[256];
        snprintf(want, sizeof want, "seed-bad.yaml%s", cases[i].where);
        if (!strstr(msg, want) || !strstr(msg, cases[i].what))
            print_message("case %zu: wanted '%s' and '%s' in:\n%s\n", i, want, cases[i].what, msg);
        assert_non_null(strstr(msg, want));
        assert_non_null(strstr(msg, cases[i].what));
    }
    snprintf(text, sizeof text, "apiz: []\n");
    write_file(path, text);
    assert_non_null(strstr(refusal(yaml), "unknown key 'apiz' (did you mean 'apis'?)"));
    /* the head alone is fine, and so is an empty catalog */
    write_file(path, head);
    const char *one[] = {yaml};
    assert_int_equal(sl_harness_config_mismatches(one, 1, 1), 0);
    write_file(path, "apis: []\n");
    assert_int_equal(sl_harness_config_mismatches(one, 1, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_seed),
        cmocka_unit_test(test_list_pages),
        cmocka_unit_test(test_category_filter),
        cmocka_unit_test(test_search),
        cmocka_unit_test(test_get_and_docs),
        cmocka_unit_test(test_passthrough_and_errors),
        cmocka_unit_test(test_admin_create_update_delete),
        cmocka_unit_test(test_admin_refusals),
        cmocka_unit_test(test_seed_ownership),
        cmocka_unit_test(test_index_model),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_seed_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
