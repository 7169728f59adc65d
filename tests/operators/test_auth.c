/*
 * test_auth.c - the gateway's `auth` operator through the harness: request
 * events (docs/gateway.md) in, authenticated requests on `out`, answers on
 * `answered`, malformed events on `errors`.
 *
 * What it checks: API keys (seeded as the key or as its SHA-256; unknown,
 * revoked), x-api-key and Authorization: Bearer, the exact WWW-Authenticate
 * of each refusal (401 without credentials, invalid_token, insufficient_scope
 * 403, invalid_request 400), HS256 and RS256 JWTs (valid, bad signature,
 * expired and within leeway, nbf and iat in the future, issuer, audience as a
 * string or an array, alg none, alg confusion with the RSA public key as the
 * HMAC secret, duplicate claims), scopes from claims, the validation cache
 * (hits, negative hits, eviction at max_entries, ttl 0), revocation of a key
 * and of a consumer through the admin API between two requests of one run,
 * the admin API (create, show, update, new key used in the next run,
 * 400/404/405/409), public paths, and configuration mistakes.
 *
 * JWTs are made here: HMAC with OpenSSL, and RSA keys generated once for
 * the group, the public one written as PEM to a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "auth.h"
#include "harness.h"

#define SECRET "0123456789abcdef0123456789abcdef-test-secret"
#define ACME_KEY "sk_test_acme_0001"
#define GLOBEX_KEY "sk_test_globex_0001"
#define OPS_KEY "sk_test_ops_0001"

static char dir[64]; /* seed file and PEM files */
static char seed_path[128], pem_path[128], pem2_path[128], bad_pem_path[128];
static EVP_PKEY *rsa, *rsa_other;
static char *pem_text; /* the public key's PEM text: the alg confusion "secret" */

/* ------------------------------------------------------------ helpers */

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = tab[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = tab[v & 63];
    }
    out[o] = '\0';
}

/*
 * A JWT with header {"alg": alg, "typ": "JWT"} and payload (JSON text),
 * signed with HMAC-SHA256 under `secret` (alg HS256), RSA key `key` (RS256),
 * or not at all (any other alg: empty signature). Static buffer.
 */
static const char *jwt_with(const char *header, const char *payload, const char *secret,
                            EVP_PKEY *key)
{
    static char tok[8192];
    char h64[1024], p64[4096], s64[1024];
    b64url((const unsigned char *)header, strlen(header), h64);
    b64url((const unsigned char *)payload, strlen(payload), p64);
    char input[6000];
    snprintf(input, sizeof input, "%s.%s", h64, p64);
    unsigned char sig[1024];
    size_t siglen = 0;
    if (secret) {
        unsigned int l = 0;
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)input, strlen(input),
             sig, &l);
        siglen = l;
    } else if (key) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        siglen = sizeof sig;
        assert_int_equal(EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, key), 1);
        assert_int_equal(
            EVP_DigestSign(c, sig, &siglen, (const unsigned char *)input, strlen(input)), 1);
        EVP_MD_CTX_free(c);
    }
    b64url(sig, siglen, s64);
    snprintf(tok, sizeof tok, "%s.%s", input, s64);
    return tok;
}

static const char *hs256(const char *payload)
{
    return jwt_with("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, SECRET, NULL);
}

static const char *rs256(const char *payload, EVP_PKEY *key)
{
    return jwt_with("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", payload, NULL, key);
}

/* A payload accepted by CONF's jwt block: sub, iss, aud and exp an hour away, plus `more`. */
static const char *claims(const char *sub, const char *more)
{
    static char p[2048];
    snprintf(p, sizeof p,
             "{\"sub\":\"%s\",\"iss\":\"https://id.example\",\"aud\":\"marketplace\","
             "\"exp\":%lld%s%s}",
             sub, (long long)time(NULL) + 3600, more ? "," : "", more ? more : "");
    return p;
}

/* Append s to buf as JSON string contents (quotes and backslashes escaped). */
static void json_escape(char *buf, size_t cap, const char *s)
{
    size_t n = strlen(buf);
    for (; *s && n + 2 < cap; s++) {
        if (*s == '"' || *s == '\\') buf[n++] = '\\';
        buf[n++] = *s;
    }
    buf[n] = '\0';
}

/*
 * Push request `id`: method, path, header (one "name":"value" pair of JSON, or
 * NULL) and body (raw text, or NULL).
 */
static void req(sl_harness *h, const char *id, const char *method, const char *path,
                const char *header, const char *body)
{
    static char ev[16384];
    snprintf(
        ev, sizeof ev,
        "{\"id\":\"%s\",\"type\":\"http.request\",\"conn\":7,\"method\":\"%s\",\"path\":\"%s\","
        "\"headers\":{\"accept\":\"*/*\"%s%s},\"body\":\"",
        id, method, path, header ? "," : "", header ? header : "");
    if (body) json_escape(ev, sizeof ev, body);
    strncat(ev, "\"}", sizeof ev - strlen(ev) - 1);
    assert_int_equal(sl_harness_push(h, ev), 0);
}

static const char *key_hdr(const char *key)
{
    static char b[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(b[i], sizeof b[i], "\"x-api-key\":\"%s\"", key);
    return b[i];
}

static const char *bearer(const char *tok)
{
    static char b[4][8300];
    static int i;
    i = (i + 1) % 4;
    snprintf(b[i], sizeof b[i], "\"authorization\":\"Bearer %s\"", tok);
    return b[i];
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

/* Assert that request id left by port and holds every one of the NULL-terminated strings. */
static void expect(const sl_harness *h, const char *port, const char *id, ...)
{
    const char *ev = find(h, port, id);
    if (!ev) {
        print_message("request %s did not leave by %s\n", id, port);
        for (size_t i = 0; i < sl_harness_count(h, "answered"); i++)
            print_message("  answered: %s\n", sl_harness_out(h, "answered", i));
        for (size_t i = 0; i < sl_harness_count(h, "out"); i++)
            print_message("  out: %s\n", sl_harness_out(h, "out", i));
    }
    assert_non_null(ev);
    va_list ap;
    va_start(ap, id);
    for (const char *s; (s = va_arg(ap, const char *));) {
        if (!strstr(ev, s)) print_message("request %s: wanted %s in\n  %s\n", id, s, ev);
        assert_non_null(strstr(ev, s));
    }
    va_end(ap);
}

/* The 401 an invalid credential gets, with error_description `desc`. */
static void expect_invalid(const sl_harness *h, const char *id, const char *desc)
{
    char www[512];
    snprintf(www, sizeof www,
             "\"www-authenticate\":\"Bearer realm=\\\"sluice\\\", error=\\\"invalid_token\\\", "
             "error_description=\\\"%s\\\"\"",
             desc);
    expect(h, "answered", id, "\"status\":401", www, "\\\"error\\\":\\\"unauthorized\\\"", NULL);
}

#define JWT_CONF                                                                                   \
    "jwt: {issuer: https://id.example, audience: marketplace, hs256_secret: \"" SECRET "\", "      \
    "rs256_public_key: %s, leeway: 30s}\n"
#define REQUIRE                                                                                    \
    "require: [{path: \"/admin/*\", scope: admin}, {method: POST, path: /v1/events, scope: "       \
    "\"events:write\"}, {path: \"/v1/*\", scope: \"events:read\"}]\n"
#define REST "public: [/healthz, \"/metrics\", \"/docs/*\"]\n" REQUIRE "admin_prefix: /admin\n"

/* The operator as the gateway configures it; `extra` lines are appended. */
static const char *conf(const char *extra)
{
    static char y[4096];
    int n = snprintf(y, sizeof y, "type: auth\nkeys: %s\n" JWT_CONF REST, seed_path, pem_path);
    if (extra) snprintf(y + n, sizeof y - (size_t)n, "%s", extra);
    return y;
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

static sl_harness *make(const char *yaml)
{
    return make_with(yaml, NULL);
}

static void run(sl_harness *h)
{
    assert_int_equal(sl_harness_run(h), 0);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ------------------------------------------------------------ setup */

static int group_setup(void **st)
{
    (void)st;
    if (!sl_harness_tmpdir(dir)) return -1;
    snprintf(seed_path, sizeof seed_path, "%s/consumers.yaml", dir);
    snprintf(pem_path, sizeof pem_path, "%s/jwt.pem", dir);
    snprintf(pem2_path, sizeof pem2_path, "%s/other.pem", dir);
    snprintf(bad_pem_path, sizeof bad_pem_path, "%s/not-a-key.pem", dir);
    /* globex's key is seeded as its SHA-256 only */
    unsigned char sha[32];
    char hex[65];
    EVP_Digest(GLOBEX_KEY, strlen(GLOBEX_KEY), sha, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", sha[i]);
    char seed[2048];
    snprintf(seed, sizeof seed,
             "# consumers for the auth tests\n"
             "consumers:\n"
             "  - id: acme\n"
             "    plan: pro\n"
             "    scopes: [\"events:read\", \"events:write\"]\n"
             "    keys:\n"
             "      - {id: acme-1, key: " ACME_KEY "}\n"
             "  - id: globex\n"
             "    plan: free\n"
             "    scopes: [\"events:read\"]\n"
             "    keys:\n"
             "      - {id: globex-1, sha256: %s}\n"
             "  - id: ops\n"
             "    plan: internal\n"
             "    scopes: [admin, \"events:read\"]\n"
             "    keys:\n"
             "      - {id: ops-1, key: " OPS_KEY "}\n",
             hex);
    write_file(seed_path, seed);
    write_file(bad_pem_path, "-----BEGIN NONSENSE-----\nAAAA\n-----END NONSENSE-----\n");
    rsa = EVP_RSA_gen(2048);
    rsa_other = EVP_RSA_gen(2048);
    if (!rsa || !rsa_other) return -1;
    FILE *f = fopen(pem_path, "w");
    if (!f || PEM_write_PUBKEY(f, rsa) != 1) return -1;
    fclose(f);
    f = fopen(pem2_path, "w");
    if (!f || PEM_write_PUBKEY(f, rsa_other) != 1) return -1;
    fclose(f);
    f = fopen(pem_path, "r");
    pem_text = calloc(1, 4096);
    if (!f || !pem_text || fread(pem_text, 1, 4095, f) == 0) return -1;
    fclose(f);
    return 0;
}

static int group_teardown(void **st)
{
    (void)st;
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa_other);
    free(pem_text);
    sl_harness_rmdir(dir);
    return 0;
}

/* ------------------------------------------------------------ API keys */

/*
 * A seeded key passes with consumer, plan, scopes and auth added; the same
 * key as a bearer token is the same credential: a cache hit. A key seeded as
 * its SHA-256 works the same. Nothing of the event is lost.
 */
static void test_api_key_ok(void **st)
{
    sl_harness *h = make(conf(NULL));
    req(h, "r1", "GET", "/v1/events", key_hdr(ACME_KEY), NULL);
    req(h, "r2", "GET", "/v1/events", bearer(ACME_KEY), NULL);
    req(h, "r3", "GET", "/v1/events", key_hdr(GLOBEX_KEY), NULL);
    run(h);
    assert_int_equal(sl_harness_count(h, "out"), 3);
    assert_int_equal(sl_harness_count(h, "answered"), 0);
    expect(h, "out", "r1",
           "\"conn\":7,\"method\":\"GET\",\"path\":\"/v1/events\",\"headers\":{\"accept\":\"*/*\","
           "\"x-api-key\":\"" ACME_KEY "\"},\"body\":\"\",\"consumer\":\"acme\",\"plan\":\"pro\","
           "\"scopes\":[\"events:read\",\"events:write\"],"
           "\"auth\":{\"method\":\"api_key\",\"cached\":false}}",
           NULL);
    expect(h, "out", "r2", "\"consumer\":\"acme\"",
           "\"auth\":{\"method\":\"api_key\",\"cached\":true}", NULL);
    expect(h, "out", "r3", "\"consumer\":\"globex\",\"plan\":\"free\",\"scopes\":[\"events:read\"]",
           NULL);
    assert_int_equal(sl_harness_counter(h, "cache_misses"), 2);
    assert_int_equal(sl_harness_counter(h, "cache_hits"), 1);
    assert_int_equal(sl_harness_counter(h, "authenticated"), 3);
    sl_harness_destroy(&h);
}

/* An unknown key: 401 invalid_token; the second time it is a negative cache hit. */
static void test_api_key_unknown_and_negative_cache(void **st)
{
    sl_harness *h = make(conf(NULL));
    req(h, "r1", "GET", "/v1/events", key_hdr("sk_nobody"), NULL);
    req(h, "r2", "GET", "/v1/events", key_hdr("sk_nobody"), NULL);
    run(h);
    assert_int_equal(sl_harness_count(h, "out"), 0);
    expect_invalid(h, "r1", "unknown API key");
    expect_invalid(h, "r2", "unknown API key");
    expect(
        h, "answered", "r1",
        "\"response\":{\"status\":401,\"headers\":{\"content-type\":\"application/json\","
        "\"www-authenticate\":",
        "\"body\":\"{\\\"error\\\":\\\"unauthorized\\\",\\\"detail\\\":\\\"unknown API key\\\"}\"",
        NULL);
    assert_null(strstr(find(h, "answered", "r1"), "\"consumer\""));
    assert_int_equal(sl_harness_counter(h, "cache_misses"), 1);
    assert_int_equal(sl_harness_counter(h, "negative_hits"), 1);
    assert_int_equal(sl_harness_counter(h, "failures"), 2);
    sl_harness_destroy(&h);
}

/* Without credentials, with another scheme, with two, with an empty one. */
static void test_missing_and_malformed_credentials(void **st)
{
    sl_harness *h = make(conf(NULL));
    req(h, "none", "GET", "/v1/events", NULL, NULL);
    req(h, "basic", "GET", "/v1/events", "\"authorization\":\"Basic dXNlcjpwYXNz\"", NULL);
    req(h, "two", "GET", "/v1/events",
        "\"x-api-key\":\"" ACME_KEY "\",\"authorization\":\"Bearer " ACME_KEY "\"", NULL);
    req(h, "empty", "GET", "/v1/events", "\"authorization\":\"Bearer   \"", NULL);
    req(h, "lower", "GET", "/v1/events", "\"authorization\":\"bearer " ACME_KEY "\"", NULL);
    run(h);
    expect(h, "answered", "none", "\"status\":401",
           "\"www-authenticate\":\"Bearer realm=\\\"sluice\\\"\"}", NULL);
    expect(h, "answered", "basic", "\"status\":401",
           "\"www-authenticate\":\"Bearer realm=\\\"sluice\\\"\"}", NULL);
    expect(h, "answered", "two", "\"status\":400",
           "\"www-authenticate\":\"Bearer realm=\\\"sluice\\\", error=\\\"invalid_request\\\", "
           "error_description=\\\"two credentials\\\"\"",
           NULL);
    expect(h, "answered", "empty", "\"status\":400", "error=\\\"invalid_request\\\"", NULL);
    expect(h, "out", "lower", "\"consumer\":\"acme\"", NULL); /* the scheme is case-insensitive */
    assert_int_equal(sl_harness_counter(h, "failures"), 4);
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ scopes, public */

/* The first matching rule gives the scope; 403 names it; the principal is on the answer. */
static void test_scopes_and_public_paths(void **st)
{
    sl_harness *h = make(conf(NULL));
    req(h, "post", "POST", "/v1/events", key_hdr(GLOBEX_KEY), "[]");
    req(h, "get", "GET", "/v1/events", key_hdr(GLOBEX_KEY), NULL);
    req(h, "adm", "GET", "/admin/consumers/acme", key_hdr(GLOBEX_KEY), NULL);
    req(h, "acme-post", "POST", "/v1/events", key_hdr(ACME_KEY), "[]");
    req(h, "free", "GET", "/catalog", key_hdr(GLOBEX_KEY), NULL); /* no rule: any consumer */
    req(h, "health", "GET", "/healthz", NULL, NULL);
    req(h, "docs", "GET", "/docs/events/publish", NULL, NULL);
    req(h, "notdocs", "GET", "/docs", NULL, NULL); /* the pattern /docs/ + star needs the slash */
    run(h);
    expect(h, "answered", "post", "\"status\":403",
           "\"www-authenticate\":\"Bearer realm=\\\"sluice\\\", error=\\\"insufficient_scope\\\", "
           "scope=\\\"events:write\\\"\"",
           "\\\"error\\\":\\\"forbidden\\\"", "\"consumer\":\"globex\"", NULL);
    expect(h, "answered", "adm", "\"status\":403", "scope=\\\"admin\\\"", NULL);
    expect(h, "out", "get", "\"consumer\":\"globex\"", NULL);
    expect(h, "out", "acme-post", "\"consumer\":\"acme\"", NULL);
    expect(h, "out", "free", "\"consumer\":\"globex\"", NULL);
    expect(h, "out", "health", "\"path\":\"/healthz\"", NULL);
    assert_null(strstr(find(h, "out", "health"), "consumer"));
    assert_null(strstr(find(h, "out", "health"), "\"auth\""));
    expect(h, "out", "docs", "\"path\":\"/docs/events/publish\"", NULL);
    expect(h, "answered", "notdocs", "\"status\":401", NULL);
    assert_int_equal(sl_harness_counter(h, "forbidden"), 2);
    assert_int_equal(sl_harness_counter(h, "public"), 2);
    sl_harness_destroy(&h);
}

/*
 * A request cannot bring its own consumer, plan, scopes or auth: auth's are
 * written in their place, and on a public path or a refusal they are dropped.
 */
static void test_request_cannot_claim_a_consumer(void **st)
{
    sl_harness *h = make(conf(NULL));
    static const char *const evs[] = {
        "{\"id\":\"k\",\"consumer\":\"ops\",\"method\":\"GET\",\"path\":\"/v1/events\","
        "\"plan\":\"internal\",\"headers\":{\"x-api-key\":\"" ACME_KEY "\"},\"scopes\":[\"admin\"],"
        "\"auth\":{\"method\":\"jwt\"}}",
        "{\"id\":\"p\",\"consumer\":\"ops\",\"method\":\"GET\",\"path\":\"/healthz\","
        "\"scopes\":[\"admin\"],\"x\":1}",
        "{\"id\":\"n\",\"consumer\":\"ops\",\"method\":\"GET\",\"path\":\"/v1/events\"}",
    };
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(sl_harness_push(h, evs[i]), 0);
    run(h);
    assert_string_equal(find(h, "out", "k"),
                        "{\"id\":\"k\",\"method\":\"GET\",\"path\":\"/v1/events\",\"headers\":{"
                        "\"x-api-key\":\"" ACME_KEY "\"},\"consumer\":\"acme\",\"plan\":\"pro\","
                        "\"scopes\":[\"events:read\",\"events:write\"],"
                        "\"auth\":{\"method\":\"api_key\",\"cached\":false}}");
    assert_string_equal(find(h, "out", "p"),
                        "{\"id\":\"p\",\"method\":\"GET\",\"path\":\"/healthz\",\"x\":1}");
    expect(h, "answered", "n", "\"status\":401", NULL);
    assert_null(strstr(find(h, "answered", "n"), "\"consumer\""));
    sl_harness_destroy(&h);
}

/* Events auth cannot read leave by `errors` as drop envelopes. */
static void test_malformed_events(void **st)
{
    sl_harness *h = make(conf(NULL));
    assert_int_equal(sl_harness_push(h, "{\"id\":\"m1\",\"path\":\"/v1/events\"}"), 0);
    assert_int_equal(
        sl_harness_push(h, "{\"id\":\"m2\",\"method\":\"GET\",\"path\":\"/v1\",\"headers\":[]}"),
        0);
    assert_int_equal(sl_harness_push(h, "{\"id\":\"m3\",\"method\":\"GET\",\"path\":\"/v1\","
                                        "\"headers\":{\"x-api-key\":42}}"),
                     0);
    run(h);
    assert_int_equal(sl_harness_count(h, "errors"), 3);
    assert_int_equal(sl_harness_count(h, "out") + sl_harness_count(h, "answered"), 0);
    const char *e = sl_harness_out(h, "errors", 0);
    assert_non_null(strstr(e, "\"reason\":\"malformed\""));
    assert_non_null(strstr(e, "\"detail\":\"the request has no method\""));
    assert_non_null(strstr(e, "\"original\":{\"id\":\"m1\""));
    assert_non_null(strstr(sl_harness_out(h, "errors", 1), "headers is not a map"));
    assert_non_null(strstr(sl_harness_out(h, "errors", 2), "header x-api-key is not a string"));
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ JWT */

static void test_jwt_hs256(void **st)
{
    sl_harness *h = make(conf(NULL));
    long long now = (long long)time(NULL);
    char more[256];
    req(h, "ok", "GET", "/v1/events",
        bearer(hs256(claims("acme", "\"plan\":\"gold\",\"scope\":\"events:read events:write\""))),
        NULL);
    /* a subject the store does not know: the default plan, scopes from the claim (an array) */
    req(h, "newsub", "GET", "/v1/events",
        bearer(hs256(claims("auth0|42", "\"scope\":[\"events:read\"]"))), NULL);
    /* signed with another secret */
    req(h, "badsig", "GET", "/v1/events",
        bearer(jwt_with("{\"alg\":\"HS256\"}", claims("acme", NULL), "another-secret", NULL)),
        NULL);
    snprintf(more, sizeof more,
             "{\"sub\":\"acme\",\"iss\":\"https://id.example\",\"aud\":\"marketplace\","
             "\"exp\":%lld}",
             now - 120);
    req(h, "expired", "GET", "/v1/events", bearer(hs256(more)), NULL);
    snprintf(more, sizeof more,
             "{\"sub\":\"acme\",\"iss\":\"https://id.example\",\"aud\":\"marketplace\","
             "\"exp\":%lld,\"scope\":\"events:read\"}",
             now - 10);
    req(h, "leeway", "GET", "/v1/events", bearer(hs256(more)), NULL);
    snprintf(more, sizeof more, "\"nbf\":%lld", now + 600);
    req(h, "nbf", "GET", "/v1/events", bearer(hs256(claims("acme", more))), NULL);
    snprintf(more, sizeof more, "\"iat\":%lld", now + 600);
    req(h, "iat", "GET", "/v1/events", bearer(hs256(claims("acme", more))), NULL);
    snprintf(more, sizeof more, "\"nbf\":%lld,\"iat\":%lld,\"scope\":\"events:read\"", now + 10,
             now + 10); /* within the leeway */
    req(h, "nbf-leeway", "GET", "/v1/events", bearer(hs256(claims("acme", more))), NULL);
    snprintf(more, sizeof more,
             "{\"sub\":\"acme\",\"iss\":\"https://evil.example\",\"aud\":\"marketplace\","
             "\"exp\":%lld}",
             now + 600);
    req(h, "iss", "GET", "/v1/events", bearer(hs256(more)), NULL);
    snprintf(more, sizeof more,
             "{\"sub\":\"acme\",\"iss\":\"https://id.example\",\"aud\":\"elsewhere\","
             "\"exp\":%lld}",
             now + 600);
    req(h, "aud", "GET", "/v1/events", bearer(hs256(more)), NULL);
    snprintf(more, sizeof more,
             "{\"sub\":\"acme\",\"iss\":\"https://id.example\",\"aud\":[\"x\",\"marketplace\"],"
             "\"exp\":%lld,\"scope\":\"events:read\"}",
             now + 600);
    req(h, "aud-array", "GET", "/v1/events", bearer(hs256(more)), NULL);
    snprintf(more, sizeof more,
             "{\"sub\":\"acme\",\"iss\":\"https://id.example\","
             "\"aud\":\"marketplace\"}");
    req(h, "noexp", "GET", "/v1/events", bearer(hs256(more)), NULL);
    snprintf(more, sizeof more,
             "{\"sub\":\"acme\",\"sub\":\"ops\",\"iss\":\"https://id.example\","
             "\"aud\":\"marketplace\",\"exp\":%lld}",
             now + 600);
    req(h, "dupclaim", "GET", "/v1/events", bearer(hs256(more)), NULL);
    req(h, "nosub", "GET", "/v1/events", bearer(hs256(claims("", NULL))), NULL);
    run(h);
    expect(h, "out", "ok",
           "\"consumer\":\"acme\",\"plan\":\"gold\",\"scopes\":[\"events:read\",\"events:write\"],"
           "\"auth\":{\"method\":\"jwt\",\"cached\":false}",
           NULL);
    expect(h, "out", "newsub",
           "\"consumer\":\"auth0|42\",\"plan\":\"default\",\"scopes\":[\"events:read\"]", NULL);
    expect_invalid(h, "badsig", "the token's signature is invalid");
    expect_invalid(h, "expired", "the token expired");
    expect(h, "out", "leeway", "\"consumer\":\"acme\"", NULL);
    expect_invalid(h, "nbf", "the token is not valid yet (nbf)");
    expect_invalid(h, "iat", "the token was issued in the future (iat)");
    expect(h, "out", "nbf-leeway", "\"consumer\":\"acme\"", NULL);
    expect_invalid(h, "iss", "the token's issuer (iss) is not accepted");
    expect_invalid(h, "aud", "the token's audience (aud) is not accepted");
    expect(h, "out", "aud-array", "\"consumer\":\"acme\"", NULL);
    expect_invalid(h, "noexp", "the token has no exp claim");
    expect_invalid(h, "dupclaim", "the token's payload is malformed: a claim appears twice");
    expect_invalid(h, "nosub", "the token has no usable 'sub' claim (a string of 1 to 128 bytes)");
    sl_harness_destroy(&h);
}

/*
 * alg none is refused; so is HS256 "signed" with the RSA public key's PEM
 * text: with an HMAC secret configured it fails the signature, without one
 * HS256 is not accepted at all.
 */
static void test_jwt_alg_none_and_confusion(void **st)
{
    sl_harness *h = make(conf(NULL));
    req(h, "none", "GET", "/v1/events",
        bearer(jwt_with("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims("acme", NULL), NULL, NULL)),
        NULL);
    req(h, "None", "GET", "/v1/events",
        bearer(jwt_with("{\"alg\":\"None\"}", claims("acme", NULL), NULL, NULL)), NULL);
    req(h, "confused", "GET", "/v1/events",
        bearer(jwt_with("{\"alg\":\"HS256\"}", claims("acme", NULL), pem_text, NULL)), NULL);
    req(h, "noalg", "GET", "/v1/events",
        bearer(jwt_with("{\"typ\":\"JWT\"}", claims("acme", NULL), SECRET, NULL)), NULL);
    req(h, "crit", "GET", "/v1/events",
        bearer(
            jwt_with("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", claims("acme", NULL), SECRET, NULL)),
        NULL);
    run(h);
    expect_invalid(h, "none", "alg 'none' is not accepted (accepted: HS256, RS256)");
    expect_invalid(h, "None", "alg 'None' is not accepted (accepted: HS256, RS256)");
    expect_invalid(h, "confused", "the token's signature is invalid");
    expect_invalid(h, "noalg", "the token's header has no alg");
    expect_invalid(h, "crit", "the token's header has crit: not supported");
    assert_int_equal(sl_harness_count(h, "out"), 0);
    sl_harness_destroy(&h);

    char y[1024];
    snprintf(y, sizeof y, "type: auth\njwt: {rs256_public_key: %s, issuer: https://id.example}\n",
             pem_path);
    h = make(y);
    req(h, "confused", "GET", "/v1/events",
        bearer(jwt_with("{\"alg\":\"HS256\"}", claims("acme", NULL), pem_text, NULL)), NULL);
    req(h, "rs", "GET", "/v1/events", bearer(rs256(claims("acme", NULL), rsa)), NULL);
    run(h);
    expect_invalid(h, "confused", "alg 'HS256' is not accepted (accepted: RS256)");
    expect(h, "out", "rs", "\"consumer\":\"acme\"", NULL);
    sl_harness_destroy(&h);
}

static void test_jwt_rs256(void **st)
{
    sl_harness *h = make(conf(NULL));
    req(h, "ok", "GET", "/v1/events", bearer(rs256(claims("globex", NULL), rsa)),
        NULL); /* plan, scopes: the store's */
    req(h, "other", "GET", "/v1/events", bearer(rs256(claims("globex", NULL), rsa_other)), NULL);
    /* a valid token with one byte of its payload changed */
    char tok[8192];
    snprintf(tok, sizeof tok, "%s", rs256(claims("acme", NULL), rsa));
    char *dot = strchr(tok, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    req(h, "tampered", "GET", "/v1/events", bearer(tok), NULL);
    /* an RS256 signature one byte short (340 of its 342 characters decode to 255 bytes) */
    snprintf(tok, sizeof tok, "%s", rs256(claims("acme", NULL), rsa));
    tok[strlen(tok) - 2] = '\0';
    req(h, "short", "GET", "/v1/events", bearer(tok), NULL);
    run(h);
    expect(h, "out", "ok", "\"consumer\":\"globex\",\"plan\":\"free\",\"scopes\":[\"events:read\"]",
           "\"method\":\"jwt\"", NULL);
    expect_invalid(h, "other", "the token's signature is invalid");
    expect_invalid(h, "tampered", "the token's signature is invalid");
    expect_invalid(h, "short", "the token's signature is invalid");
    sl_harness_destroy(&h);
}

/* ------------------------------------------------------------ the cache */

/* max_entries 1: A, A (hit), B (evicts A), A (miss again). ttl 0: no cache at all. */
static void test_cache_bound_and_ttl_zero(void **st)
{
    sl_harness *h = make(conf("cache: {ttl: 60s, negative_ttl: 1s, max_entries: 1}\n"));
    req(h, "a1", "GET", "/v1/events", key_hdr(ACME_KEY), NULL);
    req(h, "a2", "GET", "/v1/events", key_hdr(ACME_KEY), NULL);
    req(h, "b1", "GET", "/v1/events", key_hdr(GLOBEX_KEY), NULL);
    req(h, "a3", "GET", "/v1/events", key_hdr(ACME_KEY), NULL);
    run(h);
    assert_int_equal(sl_harness_count(h, "out"), 4);
    expect(h, "out", "a2", "\"cached\":true", NULL);
    expect(h, "out", "a3", "\"consumer\":\"acme\"", "\"cached\":false", NULL);
    assert_int_equal(sl_harness_counter(h, "cache_hits"), 1);
    assert_int_equal(sl_harness_counter(h, "cache_misses"), 3);
    sl_harness_destroy(&h);

    h = make(conf("cache: {ttl: 0}\n"));
    req(h, "a1", "GET", "/v1/events", key_hdr(ACME_KEY), NULL);
    req(h, "a2", "GET", "/v1/events", key_hdr(ACME_KEY), NULL);
    req(h, "x1", "GET", "/v1/events", key_hdr("sk_nobody"), NULL);
    req(h, "x2", "GET", "/v1/events", key_hdr("sk_nobody"), NULL);
    run(h);
    expect(h, "out", "a2", "\"cached\":false", NULL);
    assert_int_equal(sl_harness_counter(h, "cache_hits"), 0);
    assert_int_equal(sl_harness_counter(h, "negative_hits"), 0);
    assert_int_equal(sl_harness_counter(h, "cache_misses"), 4);
    sl_harness_destroy(&h);
}

/*
 * Many keys through a small cache: every answer stays right while entries are
 * evicted and reused (clock), and hits plus misses count every lookup.
 */
static void test_cache_churn(void **st)
{
    sl_harness *h = make(conf("cache: {max_entries: 8}\n"));
    const char *keys[] = {ACME_KEY, GLOBEX_KEY, OPS_KEY};
    char id[32], bad[32];
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "c%d", i);
        if (i % 4 == 3) {
            snprintf(bad, sizeof bad, "sk_bad_%d", i % 20);
            req(h, id, "GET", "/v1/events", key_hdr(bad), NULL);
        } else {
            req(h, id, "GET", "/v1/events", key_hdr(keys[i % 3]), NULL);
        }
    }
    run(h);
    assert_int_equal(sl_harness_count(h, "out"), 225);
    assert_int_equal(sl_harness_count(h, "answered"), 75);
    static const char *const who[] = {"\"consumer\":\"acme\"", "\"consumer\":\"globex\"",
                                      "\"consumer\":\"ops\""};
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "c%d", i);
        if (i % 4 == 3)
            expect_invalid(h, id, "unknown API key");
        else
            expect(h, "out", id, who[i % 3], NULL);
    }
    assert_int_equal(sl_harness_counter(h, "cache_hits") + sl_harness_counter(h, "negative_hits") +
                         sl_harness_counter(h, "cache_misses"),
                     300);
    assert_true(sl_harness_counter(h, "cache_hits") > 0);
    sl_harness_destroy(&h);
}

/*
 * The cache by itself (auth_cache.c), with time in our hands: entries expire
 * at their time, the clock evicts unreferenced entries first, remove and
 * sweep find what they must and nothing else, and the table stays consistent
 * through many deletions (backward shift).
 */
static void sha_of(int i, uint8_t *sha)
{
    char s[32];
    snprintf(s, sizeof s, "token-%d", i);
    EVP_Digest(s, strlen(s), sha, NULL, EVP_sha256(), NULL);
}

static void put(auth_cache *c, int i, const char *consumer, int64_t now, int64_t expires)
{
    uint8_t sha[32];
    sha_of(i, sha);
    auth_entry *e = auth_cache_add(c, sha, now);
    assert_non_null(e);
    assert_int_equal(auth_entry_set_blob(c, e, consumer, strlen(consumer)), 0);
    e->ok = 1;
    e->expires = expires;
    e->consumer_off = 0;
    e->consumer_len = (uint32_t)strlen(consumer);
    e->chash = auth_consumer_hash(consumer, strlen(consumer));
}

static int has(auth_cache *c, int i, int64_t now)
{
    uint8_t sha[32];
    sha_of(i, sha);
    return auth_cache_find(c, sha, now) != NULL;
}

static void test_cache_unit(void **st)
{
    auth_cache c;
    auth_cache_init(&c, 4);
    put(&c, 1, "acme", 0, 100);
    put(&c, 2, "acme", 0, 50);
    put(&c, 3, "globex", 0, 100);
    assert_true(has(&c, 1, 10) && has(&c, 2, 49) && has(&c, 3, 10));
    assert_false(has(&c, 2, 50)); /* expired: found no more, and gone */
    assert_int_equal(c.n, 2);
    /* full at 4: the clock passes over referenced entries and takes the unreferenced one */
    put(&c, 4, "initech", 10, 100);
    assert_true(has(&c, 1, 20) && has(&c, 3, 20));
    put(&c, 5, "acme", 20, 100); /* 4 entries now */
    put(&c, 6, "acme", 20, 100); /* evicts one: 4 or 5 were never looked up */
    assert_int_equal(c.n, 4);
    assert_true(has(&c, 6, 20));
    assert_int_equal(has(&c, 4, 20) + has(&c, 5, 20), 1);
    /* sweep removes every entry of the consumer, only those */
    uint32_t acme = (uint32_t)(has(&c, 1, 20) + has(&c, 5, 20) + has(&c, 6, 20));
    assert_int_equal(auth_cache_sweep(&c, "acme", 4), acme);
    assert_false(has(&c, 1, 20) || has(&c, 5, 20) || has(&c, 6, 20));
    assert_true(has(&c, 3, 20));
    uint8_t sha[32];
    sha_of(3, sha);
    assert_int_equal(auth_cache_remove(&c, sha), 1);
    assert_int_equal(auth_cache_remove(&c, sha), 0);
    auth_cache_fini(&c);

    /* many adds and removes through a bigger table: every live entry stays findable */
    auth_cache_init(&c, 1000);
    for (int i = 0; i < 1000; i++)
        put(&c, i, i % 2 ? "odd" : "even", 0, 1000);
    for (int i = 0; i < 1000; i += 3) {
        sha_of(i, sha);
        assert_int_equal(auth_cache_remove(&c, sha), 1);
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal(has(&c, i, 1), i % 3 != 0);
    assert_int_equal(auth_cache_sweep(&c, "odd", 3), 333);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(has(&c, i, 1), i % 3 != 0 && i % 2 == 0);
    assert_true(auth_cache_bytes(&c) > 0);
    auth_cache_fini(&c);
}

/* ------------------------------------------------------------ revocation */

/*
 * Revoking a key through the admin API between two requests with the same
 * (cached) key: the second gets 401 at once; the other keys are untouched.
 */
static void test_key_revocation_is_immediate(void **st)
{
    sl_harness *h = make(conf(NULL));
    req(h, "before", "GET", "/v1/events", key_hdr(ACME_KEY), NULL);
    req(h, "cached", "GET", "/v1/events", key_hdr(ACME_KEY), NULL);
    req(h, "revoke", "DELETE", "/admin/keys/acme-1", key_hdr(OPS_KEY), NULL);
    req(h, "after", "GET", "/v1/events", key_hdr(ACME_KEY), NULL);
    req(h, "again", "DELETE", "/admin/keys/acme-1", key_hdr(OPS_KEY), NULL); /* idempotent */
    req(h, "show", "GET", "/admin/keys/acme-1", key_hdr(OPS_KEY), NULL);
    req(h, "unknown", "DELETE", "/admin/keys/nope", key_hdr(OPS_KEY), NULL);
    req(h, "globex", "GET", "/v1/events", key_hdr(GLOBEX_KEY), NULL);
    run(h);
    expect(h, "out", "before", "\"consumer\":\"acme\"", NULL);
    expect(h, "out", "cached", "\"cached\":true", NULL);
    expect(h, "answered", "revoke", "\"response\":{\"status\":204,\"headers\":{},\"body\":\"\"}",
           "\"consumer\":\"ops\"", NULL);
    expect_invalid(h, "after", "the API key was revoked");
    expect(h, "answered", "again", "\"status\":204", NULL);
    expect(h, "answered", "show", "\"status\":200",
           "{\\\"id\\\":\\\"acme-1\\\",\\\"consumer\\\":\\\"acme\\\",\\\"revoked\\\":true}", NULL);
    expect(h, "answered", "unknown", "\"status\":404", NULL);
    expect(h, "out", "globex", "\"consumer\":\"globex\"", NULL);
    assert_int_equal(sl_harness_counter(h, "revocations"), 1);
    sl_harness_destroy(&h);
}

/*
 * Revoking a consumer kills its cached API key and its cached JWT at once;
 * a new JWT for it is refused too, and the seed does not bring it back in
 * the next run on the same state.
 */
static void test_consumer_revocation_kills_jwt(void **st)
{
    char state[64];
    assert_non_null(sl_harness_tmpdir(state));
    sl_harness *h = make_with(conf(NULL), state);
    char tok[8192];
    snprintf(tok, sizeof tok, "%s", hs256(claims("acme", "\"scope\":\"events:read\"")));
    req(h, "jwt1", "GET", "/v1/events", bearer(tok), NULL);
    req(h, "key1", "GET", "/v1/events", key_hdr(ACME_KEY), NULL);
    req(h, "jwt2", "GET", "/v1/events", bearer(tok), NULL);
    req(h, "revoke", "DELETE", "/admin/consumers/acme", key_hdr(OPS_KEY), NULL);
    req(h, "jwt3", "GET", "/v1/events", bearer(tok), NULL);
    req(h, "key2", "GET", "/v1/events", key_hdr(ACME_KEY), NULL);
    req(h, "fresh", "GET", "/v1/events", bearer(rs256(claims("acme", NULL), rsa)), NULL);
    req(h, "show", "GET", "/admin/consumers/acme", key_hdr(OPS_KEY), NULL);
    req(h, "newkey", "POST", "/admin/consumers/acme/keys", key_hdr(OPS_KEY), NULL);
    run(h);
    expect(h, "out", "jwt1", "\"consumer\":\"acme\"", NULL);
    expect(h, "out", "jwt2", "\"method\":\"jwt\",\"cached\":true", NULL);
    expect(h, "answered", "revoke", "\"status\":204", NULL);
    expect_invalid(h, "jwt3", "the consumer was revoked");
    expect_invalid(h, "key2", "the API key was revoked");
    expect_invalid(h, "fresh", "the consumer was revoked");
    expect(h, "answered", "show", "\"status\":200",
           "{\\\"id\\\":\\\"acme\\\",\\\"plan\\\":\\\"pro\\\",\\\"scopes\\\":[\\\"events:read\\\","
           "\\\"events:write\\\"],\\\"revoked\\\":true,\\\"keys\\\":[{\\\"id\\\":\\\"acme-1\\\","
           "\\\"revoked\\\":true}]}",
           NULL);
    expect(h, "answered", "newkey", "\"status\":409", NULL);
    assert_int_equal(sl_harness_counter(h, "revocations"), 1);
    sl_harness_destroy(&h);

    /* the next run reads the same store: still revoked, the seed notwithstanding */
    h = make_with(conf(NULL), state);
    req(h, "key3", "GET", "/v1/events", key_hdr(ACME_KEY), NULL);
    req(h, "ops", "GET", "/v1/events", key_hdr(OPS_KEY), NULL);
    run(h);
    expect_invalid(h, "key3", "the API key was revoked");
    expect(h, "out", "ops", "\"consumer\":\"ops\"", NULL);
    sl_harness_destroy(&h);
    sl_harness_rmdir(state);
}

/* ------------------------------------------------------------ the admin API */

/* The value of JSON member "name" inside an answered body (escaped), into out. */
static void body_member(const char *ev, const char *name, char *out, size_t cap)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\\\"%s\\\":\\\"", name);
    const char *s = strstr(ev, needle);
    assert_non_null(s);
    s += strlen(needle);
    const char *e = strstr(s, "\\\"");
    assert_non_null(e);
    assert_true((size_t)(e - s) < cap);
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
}

/*
 * Create a consumer and a key for it; the next run (same state) uses the key.
 * PATCH changes the plan of a cached key's consumer at once. Mistakes: 400
 * for bodies, 404, 405 with allow, 409 for an id taken.
 */
static void test_admin_api(void **st)
{
    char state[64];
    assert_non_null(sl_harness_tmpdir(state));
    sl_harness *h = make_with(conf(NULL), state);
    const char *ops = key_hdr(OPS_KEY);
    req(h, "create", "POST", "/admin/consumers", ops,
        "{\"id\":\"initech\",\"plan\":\"free\",\"scopes\":[\"events:read\"]}");
    req(h, "dup", "POST", "/admin/consumers", ops, "{\"id\":\"initech\",\"plan\":\"pro\"}");
    req(h, "key", "POST", "/admin/consumers/initech/keys", ops, NULL);
    req(h, "show", "GET", "/admin/consumers/initech", ops, NULL);
    req(h, "bad-json", "POST", "/admin/consumers", ops, "{\"id\":");
    req(h, "not-object", "POST", "/admin/consumers", ops, "[1,2]");
    req(h, "no-plan", "POST", "/admin/consumers", ops, "{\"id\":\"x\"}");
    req(h, "bad-id", "POST", "/admin/consumers", ops, "{\"id\":\"a b\",\"plan\":\"p\"}");
    req(h, "unknown-member", "POST", "/admin/consumers", ops,
        "{\"id\":\"y\",\"plan\":\"p\",\"color\":\"red\"}");
    req(h, "bad-scopes", "POST", "/admin/consumers", ops,
        "{\"id\":\"y\",\"plan\":\"p\",\"scopes\":\"a\"}");
    req(h, "405", "PUT", "/admin/consumers/initech", ops, "{}");
    req(h, "405b", "GET", "/admin/consumers", ops, NULL);
    req(h, "404", "GET", "/admin/consumers/nobody", ops, NULL);
    req(h, "404b", "GET", "/admin/widgets", ops, NULL);
    req(h, "404c", "POST", "/admin/consumers/nobody/keys", ops, NULL);
    /* PATCH while globex's key is cached: the next request carries the new plan */
    req(h, "g1", "GET", "/v1/events", key_hdr(GLOBEX_KEY), NULL);
    req(h, "patch", "PATCH", "/admin/consumers/globex", ops,
        "{\"plan\":\"enterprise\",\"scopes\":[\"events:read\",\"events:write\"]}");
    req(h, "g2", "POST", "/v1/events", key_hdr(GLOBEX_KEY), "[]");
    run(h);
    expect(h, "answered", "create", "\"status\":201", "\"location\":\"/admin/consumers/initech\"",
           "{\\\"id\\\":\\\"initech\\\",\\\"plan\\\":\\\"free\\\",\\\"scopes\\\":[\\\"events:"
           "read\\\"],"
           "\\\"revoked\\\":false,\\\"keys\\\":[]}",
           NULL);
    expect(h, "answered", "dup", "\"status\":409", "consumer 'initech' exists", NULL);
    expect(h, "answered", "key", "\"status\":201", "\"cache-control\":\"no-store\"",
           "\\\"key\\\":\\\"sk_", "\\\"consumer\\\":\\\"initech\\\"", NULL);
    char key[128], kid[64];
    body_member(find(h, "answered", "key"), "key", key, sizeof key);
    body_member(find(h, "answered", "key"), "key_id", kid, sizeof kid);
    assert_int_equal(strlen(key), 3 + 43);
    assert_int_equal(strlen(kid), 2 + 12);
    char want[128];
    snprintf(want, sizeof want, "\\\"keys\\\":[{\\\"id\\\":\\\"%s\\\",\\\"revoked\\\":false}]",
             kid);
    expect(h, "answered", "show", "\"status\":200", want, NULL);
    expect(h, "answered", "bad-json", "\"status\":400", "the body is not JSON", NULL);
    expect(h, "answered", "not-object", "\"status\":400", "must be a JSON object", NULL);
    expect(h, "answered", "no-plan", "\"status\":400", NULL);
    expect(h, "answered", "bad-id", "\"status\":400", NULL);
    expect(h, "answered", "unknown-member", "\"status\":400", "unknown member 'color'", NULL);
    expect(h, "answered", "bad-scopes", "\"status\":400", NULL);
    expect(h, "answered", "405", "\"status\":405", "\"allow\":\"GET, PATCH, DELETE\"", NULL);
    expect(h, "answered", "405b", "\"status\":405", "\"allow\":\"POST\"", NULL);
    expect(h, "answered", "404", "\"status\":404", NULL);
    expect(h, "answered", "404b", "\"status\":404", NULL);
    expect(h, "answered", "404c", "\"status\":404", NULL);
    expect(h, "out", "g1", "\"plan\":\"free\"", NULL);
    expect(h, "answered", "patch", "\"status\":200", "\\\"plan\\\":\\\"enterprise\\\"", NULL);
    expect(h, "out", "g2", "\"plan\":\"enterprise\"", "\"cached\":false", NULL);
    assert_int_equal(sl_harness_counter(h, "admin"), 16);
    sl_harness_destroy(&h);

    h = make_with(conf(NULL), state);
    req(h, "use", "GET", "/v1/events", key_hdr(key), NULL);
    req(h, "write", "POST", "/v1/events", key_hdr(key), "[]");
    run(h);
    expect(h, "out", "use", "\"consumer\":\"initech\",\"plan\":\"free\"", NULL);
    expect(h, "answered", "write", "\"status\":403", NULL);
    sl_harness_destroy(&h);
    sl_harness_rmdir(state);
}

/* ------------------------------------------------------------ configuration */

static void test_config_errors(void **st)
{
    char y[16][1024];
    const char *bad[16];
    size_t n = 0;
#define ADD(...) (snprintf(y[n], sizeof y[n], __VA_ARGS__), bad[n] = y[n], n++)
    ADD("type: auth\njwt: {rs256_public_key: %s/missing.pem}", dir);
    ADD("type: auth\njwt: {rs256_public_key: %s}", bad_pem_path);
    ADD("type: auth\njwt: {hs256_secret: " SECRET ", issuer: x, audiance: y}");
    ADD("type: auth\njwt: {issuer: x}");
    ADD("type: auth\ncache: {ttl: 1s, negative_ttl: 5s}");
    ADD("type: auth\ncache: {max_entries: 0}");
    ADD("type: auth\nkeyz: %s", seed_path);
    ADD("type: auth\nparallelism: 2");
    ADD("type: auth\nadmin_prefix: /admin");
    ADD("type: auth\nadmin_prefix: /admin\nrequire: [{path: \"/admin/*\"}]");
    ADD("type: auth\nrequire: [{path: \"/v1/*x\", scope: a}]");
    ADD("type: auth\nrequire: [{path: /v1, method: get, scope: a}]");
    ADD("type: auth\nkeys: %s/missing.yaml", dir);
    ADD("type: auth\npublic: [healthz]");
    ADD("type: auth\nrealm: 'a\"b'");
#undef ADD
    assert_int_equal(sl_harness_config_mismatches(bad, n, 0), 0);

    const char *good[] = {
        "type: auth",
        "type: auth\ncache: {ttl: 0}",
        "type: auth\njwt: {hs256_secret: " SECRET "}",
        "type: auth\nadmin_prefix: /admin\nrequire: [{path: \"/admin/*\", scope: admin}]",
        "type: auth\nrequire: [{path: /v1, method: [GET, HEAD], scope: a}, {path: \"/v2/*\"}]",
    };
    assert_int_equal(sl_harness_config_mismatches(good, sizeof good / sizeof *good, 1), 0);
    assert_int_equal(sl_harness_config_mismatches((const char *[]){conf(NULL)}, 1, 1), 0);
}

/* Mistakes in the seed file are reported at their place in it. */
static void test_seed_errors(void **st)
{
    static const char *const seeds[] = {
        "consumers:\n  - {id: a, plan: p}\n  - {id: a, plan: q}\n",
        "consumers:\n  - {id: a, plan: p, keys: [{id: k, key: s1}, {id: k, key: s2}]}\n",
        "consumers:\n  - {id: a, plan: p, keys: [{id: k1, key: same}, {id: k2, key: same}]}\n",
        "consumers:\n  - {id: a, plan: p, keys: [{id: k1, sha256: abc}]}\n",
        "consumers:\n  - {id: a, plan: p, keys: [{id: k1, key: a.b.c}]}\n",
        "consumers:\n  - {id: 'a b', plan: p}\n",
        "consumers:\n  - {id: a}\n",
        "consumers:\n  - {id: a, plan: p, colour: red}\n",
        "customers: []\n",
        "consumers: [\n",
    };
    char path[160], yaml[256];
    snprintf(path, sizeof path, "%s/seed-bad.yaml", dir);
    snprintf(yaml, sizeof yaml, "type: auth\nkeys: %s", path);
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
        write_file(path, seeds[i]);
        const char *one[] = {yaml};
        size_t wrong = sl_harness_config_mismatches(one, 1, 0);
        if (wrong) print_message("seed accepted:\n%s", seeds[i]);
        assert_int_equal(wrong, 0);
    }
    write_file(path, "consumers:\n  - {id: a, plan: p, keys: [{id: k1, key: sk_ok}]}\n");
    const char *one[] = {yaml};
    assert_int_equal(sl_harness_config_mismatches(one, 1, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_key_ok),
        cmocka_unit_test(test_api_key_unknown_and_negative_cache),
        cmocka_unit_test(test_missing_and_malformed_credentials),
        cmocka_unit_test(test_scopes_and_public_paths),
        cmocka_unit_test(test_request_cannot_claim_a_consumer),
        cmocka_unit_test(test_malformed_events),
        cmocka_unit_test(test_jwt_hs256),
        cmocka_unit_test(test_jwt_alg_none_and_confusion),
        cmocka_unit_test(test_jwt_rs256),
        cmocka_unit_test(test_cache_bound_and_ttl_zero),
        cmocka_unit_test(test_cache_churn),
        cmocka_unit_test(test_cache_unit),
        cmocka_unit_test(test_key_revocation_is_immediate),
        cmocka_unit_test(test_consumer_revocation_kills_jwt),
        cmocka_unit_test(test_admin_api),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_seed_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
