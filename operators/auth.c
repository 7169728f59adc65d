/*
 * auth.c - `auth`: the gateway's authentication. A request event (docs/gateway.md)
 * with a valid API key or JWT bearer token leaves by `out` with `consumer`,
 * `plan`, `scopes` and `auth: {method, cached}` added; one without leaves by
 * `answered` with a `response` (401 with WWW-Authenticate, 403 for a missing
 * scope, 400 for two credentials at once), and so do the admin API's answers.
 *
 *   keys: pipelines/gateway/consumers.yaml      seed file (consumers and their keys)
 *   jwt: {issuer, audience, hs256_secret, rs256_public_key, leeway, ...}
 *   cache: {ttl: 60s, negative_ttl: 5s, max_entries: 100000}
 *   public: ["/healthz"]                        no credentials needed (trailing * = prefix)
 *   require: [{method, path, scope}]            the first matching rule gives the scope
 *   admin_prefix: /admin                        consumers and keys, answered here
 *
 * Per request: the credential (x-api-key, or authorization: Bearer) is hashed
 * with SHA-256 and looked up in the validation cache (auth_cache.c); on a miss
 * it is validated - a JWT (three base64url segments) by auth_jwt.c, anything
 * else as an API key in the key store (auth_store.c, LMDB) - and the result,
 * success or failure, is cached (failures for the shorter negative_ttl; a
 * success never beyond a JWT's expiry). Then the scope, then the admin API
 * (auth_admin.c) or the way out. Events are handled strictly in order, so an
 * admin change applies to the very next request.
 *
 * The cache and the store handle of an instance are its own: a revocation
 * reaches only the instance that answered it. So parallelism > 1 is refused
 * (docs/gateway/auth.md has the reasoning and what it would take).
 */
/*
 * SHA-256 of every credential is the hot path of a cache hit. OpenSSL 3.0's EVP interface
 * allocates and frees its provider context in each EVP_DigestInit_ex2 (one malloc per
 * request, measured); the SHA256_Init family (deprecated in 3.0, present in every 3.x) does
 * not allocate and is ~30 ns faster on short input. It is used when the library has it;
 * a library built without deprecated interfaces gets the EVP path. docs/gateway/auth.md.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/opensslconf.h>
#ifndef OPENSSL_NO_DEPRECATED_3_0
#define AUTH_SHA256_DIRECT 1
#include <openssl/sha.h>
#endif

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "auth.h"
#include "diag.h"

#define MIN_RSA_BITS 2048
#define MAX_ENTRIES_LIMIT (1u << 26)
#define DESC_MAX 160 /* error_description: longer reasons are cut */

static const sl_param params[] = {
    {"keys", SL_PARAM_STRING, NULL, 0,
     "seed file (YAML) of consumers {id, plan, scopes, keys: [{id, key | sha256}]}, added to "
     "the key store at start when absent; relative to the working directory",
     NULL},
    {"jwt", SL_PARAM_MAP, NULL, 0,
     "JWT bearer tokens: {issuer, audience, hs256_secret, rs256_public_key, leeway: 30s, "
     "consumer_claim: sub, plan_claim: plan, scopes_claim: scope, default_plan: default}; "
     "absent: API keys only",
     NULL},
    {"cache", SL_PARAM_MAP, "{ttl: 60s, negative_ttl: 5s, max_entries: 100000}", 0,
     "validation results cached under SHA-256 of the credential: {ttl, negative_ttl, "
     "max_entries}; ttl 0: no cache",
     NULL},
    {"public", SL_PARAM_LIST, NULL, 0,
     "path patterns that need no credentials (a trailing * matches any rest)", NULL},
    {"require", SL_PARAM_LIST, NULL, 0,
     "rules {path, method, scope}: the first that matches a request gives the scope it needs",
     NULL},
    {"admin_prefix", SL_PARAM_STRING, NULL, 0,
     "path prefix of the consumer and key admin API answered by auth (a require rule must "
     "give it a scope); absent: no admin API",
     NULL},
    {"realm", SL_PARAM_STRING, "sluice", 0, "realm of the WWW-Authenticate challenge", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "answered", "errors", NULL};

/* ------------------------------------------------------------ helpers */

int auth_sha256(auth *a, const void *s, size_t n, uint8_t *sha)
{
#ifdef AUTH_SHA256_DIRECT
    (void)a;
    SHA256_CTX c;
    int ok = SHA256_Init(&c) == 1 && SHA256_Update(&c, s, n) == 1 && SHA256_Final(sha, &c) == 1;
    OPENSSL_cleanse(&c, sizeof c); /* the credential's last block is in there */
    return ok ? 0 : -1;
#else
    unsigned int len = 0;
    if (EVP_DigestInit_ex2(a->md, a->sha256, NULL) != 1 || EVP_DigestUpdate(a->md, s, n) != 1 ||
        EVP_DigestFinal_ex(a->md, sha, &len) != 1 || len != AUTH_SHA_LEN) {
        ERR_clear_error();
        return -1;
    }
    return 0;
#endif
}

int auth_parse_json(auth *a, const void *s, size_t n, sl_wbuf *out, char *err, size_t errlen)
{
    sl_wbuf *pad = &a->pad;
    sl_wbuf_reset(pad);
    sl_wbuf_reset(out);
    if (sl_wbuf_reserve(pad, n + SL_JSON_PADDING) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (n) memcpy(pad->data, s, n);
    memset(pad->data + n, 0, SL_JSON_PADDING);
    return sl_json_to_msgpack(a->jp, (const char *)pad->data, n, n + SL_JSON_PADDING, 0, out, err,
                              errlen);
}

static int pat_match(const auth_pattern *p, const char *path, size_t n)
{
    return p->prefix ? n >= p->len && memcmp(path, p->s, p->len) == 0
                     : n == p->len && memcmp(path, p->s, n) == 0;
}

static const auth_rule *match_rule(const auth *a, const char *m, size_t mlen, const char *path,
                                   size_t plen)
{
    for (size_t i = 0; i < a->n_rules; i++) {
        const auth_rule *r = &a->rules[i];
        int mok = r->n_methods == 0;
        for (size_t j = 0; j < r->n_methods && !mok; j++)
            mok = strlen(r->methods[j]) == mlen && memcmp(r->methods[j], m, mlen) == 0;
        if (mok && pat_match(&r->path, path, plen)) return r;
    }
    return NULL;
}

static int is_public(const auth *a, const char *path, size_t n)
{
    for (size_t i = 0; i < a->n_pub; i++)
        if (pat_match(&a->pub[i], path, n)) return 1;
    return 0;
}

/* Length of the admin prefix if path is the admin API (the prefix, or below it), else 0. */
static size_t admin_match(const auth *a, const char *path, size_t n)
{
    if (!a->admin || n < a->admin_len || memcmp(path, a->admin, a->admin_len) != 0) return 0;
    return n == a->admin_len || path[a->admin_len] == '/' ? a->admin_len : 0;
}

/* ------------------------------------------------------------ configuration */

/* Report keys of map node m not in `allowed` (NULL-terminated). Returns the count. */
static int unknown_keys(sl_ctx *ctx, const sl_node *m, const char *what, const char *const *allowed)
{
    const sl_host *h = ctx->host;
    int bad = 0;
    for (size_t i = 0; i < h->node_len(m); i++) {
        const char *k = h->node_key(m, i);
        const char *const *p = allowed;
        while (*p && strcmp(*p, k) != 0)
            p++;
        if (*p) continue;
        const char *hint = sl_suggest(k, allowed);
        char list[256] = "";
        for (p = allowed; *p; p++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                     p == allowed ? "" : ", ", *p);
        if (hint)
            h->config_error(ctx, h->node_at(m, i), "%s: unknown key '%s' (did you mean '%s'?)",
                            what, k, hint);
        else
            h->config_error(ctx, h->node_at(m, i), "%s: unknown key '%s' (expected %s)", what, k,
                            list);
        bad++;
    }
    return bad;
}

/* A scalar's text, or NULL (reported) when n is not a non-empty scalar. */
static const char *scalar(sl_ctx *ctx, const sl_node *n, const char *what)
{
    const sl_host *h = ctx->host;
    const char *s = n && h->node_kind(n) == SL_NODE_SCALAR ? h->node_str(n) : NULL;
    if (!s || !*s) {
        h->config_error(ctx, n, "%s must be a non-empty string", what);
        return NULL;
    }
    return s;
}

/* Whether s is fit for a quoted-string in WWW-Authenticate (RFC 6750 section 3). */
static int header_safe(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\') return 0;
    return 1;
}

static int read_pattern(sl_ctx *ctx, const sl_node *n, auth_pattern *p, const char *what)
{
    const char *s = scalar(ctx, n, what);
    if (!s) return -1;
    size_t len = strlen(s);
    const char *star = strchr(s, '*');
    if (s[0] != '/' || (star && star != s + len - 1)) {
        ctx->host->config_error(ctx, n,
                                "%s '%s' must be a path starting with '/', with at most a "
                                "trailing '*' (matching any rest)",
                                what, s);
        return -1;
    }
    p->s = s;
    p->prefix = star != NULL;
    p->len = star ? len - 1 : len;
    return 0;
}

static int read_public(auth *a, sl_ctx *ctx, const sl_node *list)
{
    const sl_host *h = ctx->host;
    size_t n = h->node_len(list);
    if (!n) return 0;
    if (!(a->pub = calloc(n, sizeof *a->pub))) return -1;
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= read_pattern(ctx, h->node_at(list, i), &a->pub[i], "a public path") != 0;
    a->n_pub = n;
    return bad ? -1 : 0;
}

static int read_rules(auth *a, sl_ctx *ctx, const sl_node *list)
{
    static const char *const keys[] = {"path", "method", "scope", NULL};
    const sl_host *h = ctx->host;
    size_t n = h->node_len(list);
    if (!n) return 0;
    if (n > AUTH_MAX_RULES) {
        h->config_error(ctx, list, "'require' holds at most %d rules", AUTH_MAX_RULES);
        return -1;
    }
    if (!(a->rules = calloc(n, sizeof *a->rules))) return -1;
    a->n_rules = n;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const sl_node *r = h->node_at(list, i);
        auth_rule *rule = &a->rules[i];
        if (h->node_kind(r) != SL_NODE_MAP) {
            h->config_error(ctx, r, "a require rule is a map {path, method, scope}");
            bad = 1;
            continue;
        }
        bad |= unknown_keys(ctx, r, "require rule", keys) != 0;
        const sl_node *path = h->node_get(r, "path");
        if (!path) {
            h->config_error(ctx, r, "a require rule needs a path (e.g. \"/v1/*\")");
            bad = 1;
        } else {
            bad |= read_pattern(ctx, path, &rule->path, "a rule's path") != 0;
        }
        const sl_node *m = h->node_get(r, "method");
        if (m) {
            int seq = h->node_kind(m) == SL_NODE_SEQ;
            size_t nm = seq ? h->node_len(m) : 1;
            if (nm == 0 || nm > AUTH_MAX_METHODS) {
                h->config_error(ctx, m, "'method' is a method or a list of 1 to %d",
                                AUTH_MAX_METHODS);
                bad = 1;
            }
            for (size_t j = 0; j < nm && j < AUTH_MAX_METHODS; j++) {
                const sl_node *x = seq ? h->node_at(m, j) : m;
                const char *s = scalar(ctx, x, "a method");
                int ok = s != NULL;
                for (const char *q = s; ok && *q; q++)
                    ok = isupper((unsigned char)*q);
                if (s && !ok)
                    h->config_error(ctx, x, "method '%s' must be upper case (GET, POST, ...)", s);
                bad |= !ok;
                rule->methods[rule->n_methods++] = s;
            }
        }
        const sl_node *scope = h->node_get(r, "scope");
        if (scope) {
            rule->scope = scalar(ctx, scope, "a scope");
            if (!rule->scope) {
                bad = 1;
            } else if (!header_safe(rule->scope) || strchr(rule->scope, ' ') ||
                       strlen(rule->scope) > AUTH_MAX_ID) {
                h->config_error(ctx, scope,
                                "scope '%s' must be one word of printable characters without "
                                "quotes or backslashes, at most %d bytes",
                                rule->scope, AUTH_MAX_ID);
                bad = 1;
            } else {
                rule->scope_len = strlen(rule->scope);
            }
        }
    }
    return bad ? -1 : 0;
}

static int read_cache(auth *a, sl_ctx *ctx, const sl_node *m)
{
    static const char *const keys[] = {"ttl", "negative_ttl", "max_entries", NULL};
    const sl_host *h = ctx->host;
    int bad = unknown_keys(ctx, m, "cache", keys) != 0;
    const sl_node *ttl = h->node_get(m, "ttl"), *neg = h->node_get(m, "negative_ttl");
    const sl_node *max = h->node_get(m, "max_entries");
    a->ttl = 60000000000ll;
    if (ttl && (h->node_kind(ttl) != SL_NODE_SCALAR || h->node_duration(ttl, &a->ttl) != 0 ||
                a->ttl < 0)) {
        h->config_error(ctx, ttl, "cache.ttl must be a duration (60s; 0: no cache)");
        bad = 1;
    }
    a->negative_ttl = a->ttl < 5000000000ll ? a->ttl : 5000000000ll;
    if (neg && (h->node_kind(neg) != SL_NODE_SCALAR ||
                h->node_duration(neg, &a->negative_ttl) != 0 || a->negative_ttl < 0)) {
        h->config_error(ctx, neg, "cache.negative_ttl must be a duration (5s)");
        bad = 1;
    } else if (neg && a->negative_ttl > a->ttl) {
        h->config_error(ctx, neg, "cache.negative_ttl must not be longer than cache.ttl");
        bad = 1;
    }
    int64_t me = 100000;
    if (max && (h->node_kind(max) != SL_NODE_SCALAR || h->node_int(max, &me) != 0 || me < 1 ||
                me > (int64_t)MAX_ENTRIES_LIMIT)) {
        h->config_error(ctx, max, "cache.max_entries must be a whole number from 1 to %u",
                        MAX_ENTRIES_LIMIT);
        bad = 1;
    }
    a->max_entries = (uint32_t)me;
    return bad ? -1 : 0;
}

/* The RSA public key of PEM file `path` into a->rsa. 0, or -1 (reported at n). */
static int read_rsa_key(auth *a, sl_ctx *ctx, const sl_node *n, const char *path)
{
    const sl_host *h = ctx->host;
    BIO *bio = BIO_new_file(path, "r");
    if (!bio) {
        h->config_error(ctx, n, "jwt.rs256_public_key: cannot read '%s': %s", path,
                        strerror(errno));
        ERR_clear_error();
        return -1;
    }
    a->rsa = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ERR_clear_error();
    if (!a->rsa) {
        h->config_error(ctx, n,
                        "jwt.rs256_public_key: '%s' holds no PEM public key "
                        "(-----BEGIN PUBLIC KEY-----)",
                        path);
        return -1;
    }
    if (!EVP_PKEY_is_a(a->rsa, "RSA")) {
        h->config_error(ctx, n, "jwt.rs256_public_key: '%s' is not an RSA key", path);
        return -1;
    }
    if (EVP_PKEY_get_bits(a->rsa) < MIN_RSA_BITS) {
        h->config_error(ctx, n,
                        "jwt.rs256_public_key: '%s' is a %d-bit key; RS256 needs %d bits "
                        "or more",
                        path, EVP_PKEY_get_bits(a->rsa), MIN_RSA_BITS);
        return -1;
    }
    return (a->verify = EVP_MD_CTX_new()) ? 0 : -1;
}

static int read_hmac_key(auth *a, sl_ctx *ctx, const sl_node *n, const char *secret)
{
    const sl_host *h = ctx->host;
    size_t len = strlen(secret);
    if (len < 32)
        h->log(ctx, SL_LOG_WARN,
               "jwt.hs256_secret has %zu bytes: RFC 7518 asks for at least 32 (a shorter one "
               "can be guessed offline from any token)",
               len);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    a->hmac = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds its own reference */
    OSSL_PARAM ps[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                       OSSL_PARAM_construct_end()};
    if (!a->hmac || !EVP_MAC_init(a->hmac, (const unsigned char *)secret, len, ps)) {
        h->config_error(ctx, n, "jwt.hs256_secret: OpenSSL has no HMAC-SHA256");
        ERR_clear_error();
        return -1;
    }
    return 0;
}

static int read_jwt(auth *a, sl_ctx *ctx, const sl_node *m)
{
    static const char *const keys[] = {
        "issuer",         "audience",   "hs256_secret", "rs256_public_key", "leeway",
        "consumer_claim", "plan_claim", "scopes_claim", "default_plan",     NULL};
    const sl_host *h = ctx->host;
    int bad = unknown_keys(ctx, m, "jwt", keys) != 0;
    a->jwt = 1;
    const sl_node *n;
    if ((n = h->node_get(m, "issuer"))) bad |= !(a->issuer = scalar(ctx, n, "jwt.issuer"));
    if ((n = h->node_get(m, "audience"))) {
        int seq = h->node_kind(n) == SL_NODE_SEQ;
        size_t na = seq ? h->node_len(n) : 1;
        if (na == 0 || na > AUTH_MAX_AUD) {
            h->config_error(ctx, n, "jwt.audience is a string or a list of 1 to %d", AUTH_MAX_AUD);
            bad = 1;
        }
        for (size_t i = 0; i < na && i < AUTH_MAX_AUD; i++) {
            const char *s = scalar(ctx, seq ? h->node_at(n, i) : n, "an audience");
            bad |= !s;
            a->aud[a->n_aud++] = s;
        }
    }
    const sl_node *secret = h->node_get(m, "hs256_secret"),
                  *pem = h->node_get(m, "rs256_public_key");
    if (!secret && !pem) {
        h->config_error(ctx, m, "jwt needs hs256_secret, rs256_public_key or both");
        bad = 1;
    }
    const char *s;
    if (secret) {
        if (!(s = scalar(ctx, secret, "jwt.hs256_secret")) || read_hmac_key(a, ctx, secret, s) != 0)
            bad = 1;
    }
    if (pem) {
        if (!(s = scalar(ctx, pem, "jwt.rs256_public_key")) || read_rsa_key(a, ctx, pem, s) != 0)
            bad = 1;
    }
    a->leeway = 30000000000ll;
    if ((n = h->node_get(m, "leeway")) &&
        (h->node_kind(n) != SL_NODE_SCALAR || h->node_duration(n, &a->leeway) != 0 ||
         a->leeway < 0 || a->leeway > 3600000000000ll)) {
        h->config_error(ctx, n, "jwt.leeway must be a duration from 0 to 1h (30s)");
        bad = 1;
    }
    struct {
        const char *key, **dst, *def;
    } claims[] = {{"consumer_claim", &a->consumer_claim, "sub"},
                  {"plan_claim", &a->plan_claim, "plan"},
                  {"scopes_claim", &a->scopes_claim, "scope"},
                  {"default_plan", &a->default_plan, "default"}};
    for (size_t i = 0; i < sizeof claims / sizeof *claims; i++) {
        *claims[i].dst = claims[i].def;
        if ((n = h->node_get(m, claims[i].key))) {
            char what[64];
            snprintf(what, sizeof what, "jwt.%s", claims[i].key);
            const char *v = scalar(ctx, n, what);
            if (v)
                *claims[i].dst = v;
            else
                bad = 1;
        }
    }
    return bad ? -1 : 0;
}

/* ------------------------------------------------------------ the seed file */

static int hex_sha(const char *s, uint8_t *sha)
{
    if (strlen(s) != 2 * AUTH_SHA_LEN) return -1;
    for (int i = 0; i < AUTH_SHA_LEN; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
            sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        sha[i] = (uint8_t)v;
    }
    return 0;
}

/* Whether an API key can travel in a header as this operator reads it. */
static int key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > AUTH_MAX_TOKEN || auth_is_jwt(k, n)) return 0;
    for (; *k; k++)
        if (*k <= 0x20 || *k > 0x7e || *k == ',') return 0;
    return 1;
}

typedef struct seen_key {
    uint8_t sha[AUTH_SHA_LEN];
    const char *id;
} seen_key;

/* Check one consumer of the seed file; keys seen so far are in seen[0, *n_seen). */
static int check_seed_consumer(auth *a, sl_ctx *ctx, const sl_node *c, seen_key *seen,
                               size_t *n_seen)
{
    static const char *const ckeys[] = {"id", "plan", "scopes", "keys", NULL};
    static const char *const kkeys[] = {"id", "key", "sha256", NULL};
    const sl_host *h = ctx->host;
    if (h->node_kind(c) != SL_NODE_MAP) {
        h->config_error(ctx, c, "a consumer is a map {id, plan, scopes, keys}");
        return -1;
    }
    int bad = unknown_keys(ctx, c, "consumer", ckeys) != 0;
    const sl_node *id = h->node_get(c, "id"), *plan = h->node_get(c, "plan");
    const sl_node *scopes = h->node_get(c, "scopes"), *keys = h->node_get(c, "keys");
    const char *s;
    if (!id || !plan) {
        h->config_error(ctx, c, "a consumer needs an id and a plan");
        bad = 1;
    }
    if (id && (s = scalar(ctx, id, "a consumer's id")) && !auth_id_valid(s, strlen(s))) {
        h->config_error(ctx, id,
                        "consumer id '%s': 1 to %d characters among A-Z a-z 0-9 . _ ~ : @ + -", s,
                        AUTH_MAX_ID);
        bad = 1;
    } else if (id && !s) {
        bad = 1;
    }
    if (plan && (!(s = scalar(ctx, plan, "a plan")) || strlen(s) > AUTH_MAX_ID)) {
        if (s) h->config_error(ctx, plan, "a plan has at most %d bytes", AUTH_MAX_ID);
        bad = 1;
    }
    if (scopes) {
        if (h->node_kind(scopes) != SL_NODE_SEQ) {
            h->config_error(ctx, scopes, "scopes is a list of strings");
            bad = 1;
        } else {
            for (size_t i = 0; i < h->node_len(scopes); i++)
                if (!(s = scalar(ctx, h->node_at(scopes, i), "a scope")) || strlen(s) > AUTH_MAX_ID)
                    bad = 1;
        }
    }
    if (!keys) return bad ? -1 : 0;
    if (h->node_kind(keys) != SL_NODE_SEQ) {
        h->config_error(ctx, keys, "keys is a list of {id, key} or {id, sha256}");
        return -1;
    }
    for (size_t i = 0; i < h->node_len(keys); i++) {
        const sl_node *k = h->node_at(keys, i);
        if (h->node_kind(k) != SL_NODE_MAP) {
            h->config_error(ctx, k, "a key is a map {id, key} or {id, sha256}");
            bad = 1;
            continue;
        }
        bad |= unknown_keys(ctx, k, "key", kkeys) != 0;
        const sl_node *kid = h->node_get(k, "id"), *key = h->node_get(k, "key");
        const sl_node *hex = h->node_get(k, "sha256");
        const char *kids = kid ? scalar(ctx, kid, "a key's id") : NULL;
        if (!kid) h->config_error(ctx, k, "a key needs an id");
        if (kids && !auth_id_valid(kids, strlen(kids)))
            h->config_error(ctx, kid,
                            "key id '%s': 1 to %d characters among A-Z a-z 0-9 . _ ~ : @ + -", kids,
                            AUTH_MAX_ID);
        int ok = kids && auth_id_valid(kids, strlen(kids));
        uint8_t sha[AUTH_SHA_LEN];
        if ((key != NULL) == (hex != NULL)) {
            h->config_error(ctx, k, "a key has either 'key' (the key) or 'sha256' (its hash)");
            ok = 0;
        } else if (key) {
            const char *ks = scalar(ctx, key, "a key");
            if (ks && !key_ok(ks))
                h->config_error(ctx, key,
                                "a key is 1 to %d printable characters without spaces or "
                                "commas, and not shaped like a JWT",
                                AUTH_MAX_TOKEN);
            if (!ks || !key_ok(ks) || auth_sha256(a, ks, strlen(ks), sha) != 0) ok = 0;
        } else {
            const char *hs = scalar(ctx, hex, "sha256");
            if (hs && hex_sha(hs, sha) != 0)
                h->config_error(ctx, hex, "sha256 is the key's SHA-256 as 64 hex digits");
            if (!hs || hex_sha(hs, sha) != 0) ok = 0;
        }
        for (size_t j = 0; ok && j < *n_seen; j++) {
            if (strcmp(seen[j].id, kids) == 0) {
                h->config_error(ctx, kid, "key id '%s' appears twice", kids);
                ok = 0;
            } else if (memcmp(seen[j].sha, sha, AUTH_SHA_LEN) == 0) {
                h->config_error(ctx, k, "the key of '%s' is the key of '%s' too", kids, seen[j].id);
                ok = 0;
            }
        }
        if (ok) {
            memcpy(seen[*n_seen].sha, sha, AUTH_SHA_LEN);
            seen[(*n_seen)++].id = kids;
        }
        bad |= !ok;
    }
    return bad ? -1 : 0;
}

/* Load and check the seed file (read only: validate may run this). 0 or -1 (reported). */
static int read_seed(auth *a, sl_ctx *ctx, const sl_node *at)
{
    const sl_host *h = ctx->host;
    sl_diag d;
    sl_diag_init(&d);
    if (sl_config_load_file(a->seed_path, &d, &a->seed) != 0) {
        for (size_t i = 0; i < d.n; i++) {
            char line[512];
            h->config_error(ctx, at, "keys: %s", sl_diag_format(&d, i, line, sizeof line));
        }
        if (d.n == 0) h->config_error(ctx, at, "keys: cannot load '%s'", a->seed_path);
        sl_diag_fini(&d);
        return -1;
    }
    sl_diag_fini(&d);
    static const char *const top[] = {"consumers", NULL};
    const sl_node *root = a->seed;
    if (h->node_kind(root) != SL_NODE_MAP) {
        h->config_error(ctx, root, "a seed file is a map {consumers: [...]}");
        return -1;
    }
    int bad = unknown_keys(ctx, root, "seed file", top) != 0;
    const sl_node *list = h->node_get(root, "consumers");
    if (!list) return bad ? -1 : 0;
    if (h->node_kind(list) != SL_NODE_SEQ) {
        h->config_error(ctx, list, "consumers is a list of {id, plan, scopes, keys}");
        return -1;
    }
    size_t n_keys = 0;
    for (size_t i = 0; i < h->node_len(list); i++) {
        const sl_node *keys = h->node_kind(h->node_at(list, i)) == SL_NODE_MAP
                                  ? h->node_get(h->node_at(list, i), "keys")
                                  : NULL;
        n_keys += keys ? h->node_len(keys) : 0;
    }
    seen_key *seen = calloc(n_keys ? n_keys : 1, sizeof *seen);
    if (!seen) return -1;
    size_t n_seen = 0;
    for (size_t i = 0; i < h->node_len(list); i++) {
        const sl_node *c = h->node_at(list, i);
        bad |= check_seed_consumer(a, ctx, c, seen, &n_seen) != 0;
        const sl_node *id = h->node_kind(c) == SL_NODE_MAP ? h->node_get(c, "id") : NULL;
        const char *s = id ? h->node_str(id) : NULL;
        for (size_t j = 0; s && j < i; j++) {
            const sl_node *o = h->node_at(list, j);
            const sl_node *oid = h->node_kind(o) == SL_NODE_MAP ? h->node_get(o, "id") : NULL;
            const char *os = oid ? h->node_str(oid) : NULL;
            if (os && strcmp(os, s) == 0) {
                h->config_error(ctx, id, "consumer id '%s' appears twice", s);
                bad = 1;
                break;
            }
        }
    }
    free(seen);
    return bad ? -1 : 0;
}

/* The admin API must not be reachable without a scope: check what the rules give it. */
static int check_admin(auth *a, sl_ctx *ctx, const sl_node *at)
{
    static const char *const methods[] = {"GET", "POST", "PATCH", "DELETE"};
    /* (the bare prefix answers 404 to anyone authenticated: nothing to protect there) */
    static const char *const below[] = {"/consumers", "/consumers/x", "/consumers/x/keys",
                                        "/keys/x"};
    const sl_host *h = ctx->host;
    char path[512];
    for (size_t i = 0; i < sizeof below / sizeof *below; i++) {
        snprintf(path, sizeof path, "%s%s", a->admin, below[i]);
        size_t n = strlen(path);
        if (is_public(a, path, n)) {
            h->config_error(ctx, at, "admin_prefix: a public path pattern matches %s", path);
            return -1;
        }
        for (size_t j = 0; j < sizeof methods / sizeof *methods; j++) {
            const auth_rule *r = match_rule(a, methods[j], strlen(methods[j]), path, n);
            if (!r || !r->scope) {
                h->config_error(ctx, at,
                                "admin_prefix '%s': no require rule gives %s %s a scope, so any "
                                "consumer could manage keys; add one first in 'require', e.g. "
                                "{path: \"%s/*\", scope: admin}",
                                a->admin, methods[j], path, a->admin);
                return -1;
            }
        }
    }
    return 0;
}

static int auth_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    auth *a = calloc(1, sizeof *a);
    *state = a;
    if (!a) return SL_ERROR;
    a->answered_port = h->port(ctx, "answered");
    a->errors_port = h->port(ctx, "errors");
    a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    a->md = EVP_MD_CTX_new();
    a->jp = sl_json_parser_new();
    if (!a->sha256 || !a->md || !a->jp) {
        h->config_error(ctx, NULL, "auth: out of memory, or OpenSSL has no SHA-256");
        return SL_ERROR;
    }
    int bad = 0;
    uint32_t n_inst = 1;
    h->instance(ctx, &n_inst);
    if (n_inst > 1) {
        h->config_error(ctx, NULL,
                        "auth cannot run with parallelism %u: each instance has its own "
                        "validation cache, so a key or consumer revoked through one instance "
                        "would stay valid in the others' caches until their ttl; use "
                        "parallelism: 1 (a cached request costs one instance about half a "
                        "microsecond of CPU: docs/gateway/auth.md)",
                        n_inst);
        bad = 1;
    }
    a->realm = h->node_str(h->param(ctx, "realm"));
    if (!a->realm || !*a->realm || !header_safe(a->realm) || strlen(a->realm) > 64) {
        h->config_error(ctx, h->param(ctx, "realm"),
                        "realm must be 1 to 64 printable characters without quotes or "
                        "backslashes");
        bad = 1;
    }
    const sl_node *n;
    if ((n = h->param(ctx, "cache"))) bad |= read_cache(a, ctx, n) != 0;
    auth_cache_init(&a->cache, a->max_entries);
    if ((n = h->param(ctx, "jwt"))) bad |= read_jwt(a, ctx, n) != 0;
    if ((n = h->param(ctx, "public"))) bad |= read_public(a, ctx, n) != 0;
    if ((n = h->param(ctx, "require"))) bad |= read_rules(a, ctx, n) != 0;
    const sl_node *admin = h->param(ctx, "admin_prefix");
    if (admin) {
        const char *s = scalar(ctx, admin, "admin_prefix");
        size_t len = s ? strlen(s) : 0;
        if (s && (s[0] != '/' || len < 2 || s[len - 1] == '/' || strchr(s, '*') || len > 256)) {
            h->config_error(ctx, admin,
                            "admin_prefix '%s' must be a path like /admin (no trailing '/', no "
                            "'*')",
                            s);
            s = NULL;
        }
        a->admin = s;
        a->admin_len = len;
        bad |= !s;
    }
    if (!bad && a->admin) bad |= check_admin(a, ctx, admin) != 0;
    if ((n = h->param(ctx, "keys"))) {
        if (!(a->seed_path = scalar(ctx, n, "keys")) || read_seed(a, ctx, n) != 0) bad = 1;
    }
    return bad ? SL_ERROR : SL_OK;
}

static int auth_start(void *state, sl_ctx *ctx)
{
    auth *a = state;
    if (auth_store_open(a, ctx) != 0 || auth_store_seed(a, ctx) != 0) return SL_ERROR;
    return SL_OK;
}

/* ------------------------------------------------------------ the data path */

typedef struct request {
    const char *method, *path, *authz, *apikey, *body;
    size_t mlen, plen, alen, klen, blen;
    int has_authz, has_apikey;
} request;

/* Read the fields auth needs from a request event. NULL, or why it is malformed. */
static const char *read_request(const uint8_t *ev, size_t len, request *r)
{
    const uint8_t *p = ev, *end = ev + len;
    sl_mp_val m;
    memset(r, 0, sizeof *r);
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) return "the event is not a map";
    for (uint32_t i = 0; i < m.v.n; i++) {
        const uint8_t *kp = p, *vp;
        sl_mp_val k, v;
        if (sl_mp_read(&kp, end, &k) != 0 || sl_mp_skip(&p, end) != 0)
            return "the event is not valid msgpack";
        vp = p;
        if (sl_mp_read(&vp, end, &v) != 0) return "the event is not valid msgpack";
        if (k.type == SL_MP_STR && k.v.str.len == 6 && memcmp(k.v.str.ptr, "method", 6) == 0) {
            if (v.type != SL_MP_STR) return "method is not a string";
            r->method = v.v.str.ptr;
            r->mlen = v.v.str.len;
        } else if (k.type == SL_MP_STR && k.v.str.len == 4 && memcmp(k.v.str.ptr, "path", 4) == 0) {
            if (v.type != SL_MP_STR) return "path is not a string";
            r->path = v.v.str.ptr;
            r->plen = v.v.str.len;
        } else if (k.type == SL_MP_STR && k.v.str.len == 4 && memcmp(k.v.str.ptr, "body", 4) == 0) {
            if (v.type == SL_MP_STR || v.type == SL_MP_BIN) {
                r->body = v.v.str.ptr;
                r->blen = v.v.str.len;
            } else if (v.type != SL_MP_NIL) {
                return "body is not a string";
            }
        } else if (k.type == SL_MP_STR && k.v.str.len == 7 &&
                   memcmp(k.v.str.ptr, "headers", 7) == 0) {
            if (v.type != SL_MP_MAP) return "headers is not a map";
            for (uint32_t j = 0; j < v.v.n; j++) {
                const uint8_t *hk = vp, *hv;
                sl_mp_val name, val;
                if (sl_mp_read(&hk, end, &name) != 0 || sl_mp_skip(&vp, end) != 0)
                    return "the event is not valid msgpack";
                hv = vp;
                if (sl_mp_read(&hv, end, &val) != 0 || sl_mp_skip(&vp, end) != 0)
                    return "the event is not valid msgpack";
                int az = name.type == SL_MP_STR && name.v.str.len == 13 &&
                         memcmp(name.v.str.ptr, "authorization", 13) == 0;
                int ak = name.type == SL_MP_STR && name.v.str.len == 9 &&
                         memcmp(name.v.str.ptr, "x-api-key", 9) == 0;
                if ((az || ak) && val.type != SL_MP_STR)
                    return az ? "header authorization is not a string"
                              : "header x-api-key is not a string";
                if (az) {
                    r->authz = val.v.str.ptr;
                    r->alen = val.v.str.len;
                    r->has_authz = 1;
                } else if (ak) {
                    r->apikey = val.v.str.ptr;
                    r->klen = val.v.str.len;
                    r->has_apikey = 1;
                }
            }
        }
        if (sl_mp_skip(&p, end) != 0) return "the event is not valid msgpack";
    }
    if (!r->method || !r->mlen) return "the request has no method";
    if (!r->path || !r->plen || r->path[0] != '/')
        return "the request has no path (starting with '/')";
    return NULL;
}

/* Copy reason text into buf for a quoted-string (RFC 6750: no '"', no '\\', printable). */
static size_t description(const uint8_t *s, size_t n, char *buf)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < DESC_MAX; i++) {
        char c = (char)s[i];
        buf[o++] = c == '"' ? '\'' : c == '\\' ? '/' : (c < 0x20 || c > 0x7e) ? '?' : c;
    }
    buf[o] = '\0';
    return o;
}

/*
 * The credential of request r into *tok, *tlen: 0; or 1 with a->reply set to
 * the answer (401 without credentials, 400 for two at once or an empty one).
 */
static int credential(auth *a, const request *r, const char **tok, size_t *tlen)
{
    auth_reply *rep = &a->reply;
    const char *d;
    if (r->has_authz && r->has_apikey) {
        d = "send one credential: an x-api-key header or an authorization header, not both";
        if (auth_reply_error(rep, 400, "bad request", d, strlen(d)) != 0) return -1;
        auth_reply_header(rep, "www-authenticate",
                          "Bearer realm=\"%s\", error=\"invalid_request\", "
                          "error_description=\"two credentials\"",
                          a->realm);
        return 1;
    }
    if (!r->has_authz && !r->has_apikey) {
        d = "send an API key (x-api-key header) or a bearer token (authorization: Bearer ...)";
        if (auth_reply_error(rep, 401, "unauthorized", d, strlen(d)) != 0) return -1;
        auth_reply_header(rep, "www-authenticate", "Bearer realm=\"%s\"", a->realm);
        return 1;
    }
    const char *s = r->has_authz ? r->authz : r->apikey, *e;
    size_t n = r->has_authz ? r->alen : r->klen;
    e = s + n;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (r->has_authz) {
        const char *sp = s;
        while (sp < e && *sp != ' ')
            sp++;
        if ((size_t)(sp - s) != 6 || strncasecmp(s, "bearer", 6) != 0) {
            d = "only bearer tokens are accepted: authorization: Bearer <token>, or an "
                "x-api-key header";
            if (auth_reply_error(rep, 401, "unauthorized", d, strlen(d)) != 0) return -1;
            auth_reply_header(rep, "www-authenticate", "Bearer realm=\"%s\"", a->realm);
            return 1;
        }
        s = sp;
        while (s < e && *s == ' ')
            s++;
    }
    if (s == e) {
        d = r->has_authz ? "the bearer token is empty" : "the x-api-key header is empty";
        if (auth_reply_error(rep, 400, "bad request", d, strlen(d)) != 0) return -1;
        auth_reply_header(rep, "www-authenticate",
                          "Bearer realm=\"%s\", error=\"invalid_request\", "
                          "error_description=\"empty credential\"",
                          a->realm);
        return 1;
    }
    *tok = s;
    *tlen = (size_t)(e - s);
    return 0;
}

static void view_of_entry(const auth_entry *e, auth_view *v)
{
    v->blob = e->blob;
    v->blob_len = e->blob_len;
    v->consumer_off = e->consumer_off;
    v->consumer_len = e->consumer_len;
    v->scopes_off = e->scopes_off;
    v->ok = e->ok;
    v->method = e->method;
}

static void view_of_result(const auth_result *r, auth_view *v)
{
    v->blob = r->blob.data;
    v->blob_len = r->blob.len;
    v->consumer_off = r->consumer_off;
    v->consumer_len = r->consumer_len;
    v->scopes_off = r->scopes_off;
    v->ok = r->ok;
    v->method = r->method;
    v->cached = 0;
}

/* Validate credential t: from the cache, or looked up and cached. 0, or -1 (store failure). */
static int validate(auth *a, sl_ctx *ctx, const char *t, size_t n, int64_t now, auth_view *v)
{
    if (n > AUTH_MAX_TOKEN) {
        if (auth_result_fail(a, AUTH_API_KEY, "the credential is longer than %d bytes",
                             AUTH_MAX_TOKEN) != 0)
            return -1;
        view_of_result(&a->res, v);
        return 0;
    }
    uint8_t sha[AUTH_SHA_LEN];
    if (auth_sha256(a, t, n, sha) != 0) return -1;
    auth_entry *e = a->ttl > 0 ? auth_cache_find(&a->cache, sha, now) : NULL;
    if (e) {
        view_of_entry(e, v);
        v->cached = 1;
        if (e->ok)
            a->c.hits++;
        else
            a->c.negative_hits++;
        return 0;
    }
    a->c.misses++;
    int jwt = auth_is_jwt(t, n), rc;
    if (jwt && !a->jwt)
        rc = auth_result_fail(a, AUTH_JWT, "JWT bearer tokens are not accepted here");
    else
        rc = jwt ? auth_jwt_check(a, ctx, t, n, now) : auth_store_check_key(a, ctx, sha);
    if (rc != 0) return -1;
    const auth_result *r = &a->res;
    view_of_result(r, v);
    if (a->ttl <= 0) return 0;
    int64_t life = r->ok ? a->ttl : a->negative_ttl;
    int64_t expires = now > INT64_MAX - life ? INT64_MAX : now + life;
    int64_t cap = r->ok ? r->not_after : r->fail_until;
    if (cap < expires) expires = cap;
    if (expires <= now) return 0;
    if (!(e = auth_cache_add(&a->cache, sha, now)) ||
        auth_entry_set_blob(&a->cache, e, r->blob.data, r->blob.len) != 0) {
        if (e) auth_cache_remove(&a->cache, sha);
        return 0; /* out of memory for the cache: the result stands, uncached */
    }
    e->expires = expires;
    e->ok = (uint8_t)r->ok;
    e->method = (uint8_t)r->method;
    e->consumer_off = r->consumer_off;
    e->consumer_len = r->consumer_len;
    e->scopes_off = r->scopes_off;
    e->chash =
        r->ok ? auth_consumer_hash((const char *)r->blob.data + r->consumer_off, r->consumer_len)
              : 0;
    return 0;
}

static int handle(auth *a, sl_ctx *ctx, const uint8_t *ev, size_t len, int64_t now)
{
    const sl_host *h = ctx->host;
    request r;
    const char *why = read_request(ev, len, &r);
    if (why) return h->emit_drop(ctx, a->errors_port, "malformed", why, ev, len, NULL, 0);
    if (is_public(a, r.path, r.plen)) {
        /* as it came, less any consumer, plan, scopes or auth it claims: those are auth's to set */
        a->c.public_++;
        sl_wbuf_reset(&a->out);
        if (auth_write_event(&a->out, ev, len, auth_fields, 4, NULL, 0, 0) != 0) return -1;
        return h->emit(ctx, 0, a->out.data, a->out.len);
    }
    const char *tok = NULL;
    size_t tlen = 0;
    int c = credential(a, &r, &tok, &tlen);
    if (c < 0) return -1;
    if (c > 0) {
        a->c.failures++;
        return auth_answer(a, ctx, ev, len, &a->reply, NULL);
    }
    auth_view v;
    if (validate(a, ctx, tok, tlen, now, &v) != 0) {
        a->c.store_errors++;
        const char *d = "credentials cannot be checked now (the gateway's log says why)";
        if (auth_reply_error(&a->reply, 500, "internal error", d, strlen(d)) != 0) return -1;
        return auth_answer(a, ctx, ev, len, &a->reply, NULL);
    }
    if (!v.ok) {
        a->c.failures++;
        char desc[DESC_MAX + 1];
        size_t dl = description(v.blob, v.blob_len, desc);
        if (auth_reply_error(&a->reply, 401, "unauthorized", desc, dl) != 0) return -1;
        auth_reply_header(&a->reply, "www-authenticate",
                          "Bearer realm=\"%s\", error=\"invalid_token\", error_description=\"%s\"",
                          a->realm, desc);
        return auth_answer(a, ctx, ev, len, &a->reply, NULL);
    }
    const auth_rule *rule = match_rule(a, r.method, r.mlen, r.path, r.plen);
    if (rule && rule->scope && !auth_has_scope(&v, rule->scope, rule->scope_len)) {
        a->c.forbidden++;
        char d[256];
        int dl = snprintf(d, sizeof d, "this request needs scope '%s'", rule->scope);
        if (auth_reply_error(&a->reply, 403, "forbidden", d, (size_t)dl) != 0) return -1;
        auth_reply_header(&a->reply, "www-authenticate",
                          "Bearer realm=\"%s\", error=\"insufficient_scope\", scope=\"%s\"",
                          a->realm, rule->scope);
        return auth_answer(a, ctx, ev, len, &a->reply, &v);
    }
    size_t pre = admin_match(a, r.path, r.plen);
    if (pre) {
        a->c.admin++;
        /* the view may point into the cache, which admin changes: keep a copy of the principal */
        sl_wbuf_reset(&a->principal);
        if (sl_wbuf_append(&a->principal, v.blob, v.blob_len) != 0) return -1;
        v.blob = a->principal.data;
        if (auth_admin(a, ctx, r.method, r.mlen, r.path + pre, r.plen - pre, r.body ? r.body : "",
                       r.blen) != 0)
            return -1;
        return auth_answer(a, ctx, ev, len, &a->reply, &v);
    }
    a->c.passed++;
    sl_wbuf *b = &a->pairs;
    sl_wbuf_reset(b);
    if ((sl_wbuf_append(b, v.blob, v.blob_len) | sl_mp_write_cstr(b, "auth") |
         sl_mp_write_map(b, 2) | sl_mp_write_cstr(b, "method") |
         sl_mp_write_cstr(b, v.method == AUTH_JWT ? "jwt" : "api_key") |
         sl_mp_write_cstr(b, "cached") | sl_mp_write_bool(b, v.cached != 0)) != 0)
        return -1;
    sl_wbuf_reset(&a->out);
    if (auth_write_event(&a->out, ev, len, auth_fields, 4, b->data, b->len, 4) != 0) return -1;
    return h->emit(ctx, 0, a->out.data, a->out.len);
}

static void flush_counts(auth *a, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    auth_counts *c = &a->c;
    if (c->hits) h->count(ctx, "cache_hits", c->hits);
    if (c->misses) h->count(ctx, "cache_misses", c->misses);
    if (c->negative_hits) h->count(ctx, "negative_hits", c->negative_hits);
    if (c->failures) h->count(ctx, "failures", c->failures);
    if (c->forbidden) h->count(ctx, "forbidden", c->forbidden);
    if (c->revocations) h->count(ctx, "revocations", c->revocations);
    if (c->public_) h->count(ctx, "public", c->public_);
    if (c->admin) h->count(ctx, "admin", c->admin);
    if (c->passed) h->count(ctx, "authenticated", c->passed);
    if (c->store_errors) h->count(ctx, "store_errors", c->store_errors);
    memset(c, 0, sizeof *c);
    if (SL_HOST_HAS(h, gauge)) {
        h->gauge(ctx, "state_entries", (int64_t)a->cache.n);
        h->gauge(ctx, "state_bytes", (int64_t)auth_cache_bytes(&a->cache));
    }
}

static int auth_process(void *state, sl_ctx *ctx, int input, const sl_batch *batch)
{
    auth *a = state;
    (void)input;
    int64_t now = ctx->host->now(ctx);
    int rc = SL_OK;
    if (!a->checked_ports) { /* port_connected is for the stage thread */
        a->checked_ports = 1;
        if (!ctx->host->port_connected(ctx, a->answered_port))
            ctx->host->log(ctx, SL_LOG_WARN,
                           "nothing reads port 'answered': refused requests (401, 403) and "
                           "admin requests get no answer and time out");
    }
    for (uint32_t i = 0; i < batch->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(batch, i, &len);
        if (handle(a, ctx, ev, len, now) != 0) {
            ctx->host->log(ctx, SL_LOG_ERROR, "out of memory, or the pipeline is stopping");
            rc = SL_ERROR;
            break;
        }
    }
    flush_counts(a, ctx);
    return rc;
}

static void auth_destroy(void *state)
{
    auth *a = state;
    if (!a) return;
    auth_cache_fini(&a->cache);
    EVP_MAC_CTX_free(a->hmac);
    EVP_PKEY_free(a->rsa);
    EVP_MD_CTX_free(a->verify);
    EVP_MD_CTX_free(a->md);
    EVP_MD_free(a->sha256);
    sl_json_parser_destroy(&a->jp);
    sl_node_destroy(&a->seed);
    free(a->pub);
    free(a->rules);
    sl_wbuf *bufs[] = {&a->res.blob, &a->reply.body, &a->out,  &a->pairs, &a->tmp,
                       &a->json,     &a->mp,         &a->mp2,  &a->sig,   &a->scratch,
                       &a->kids,     &a->shas,       &a->keep, &a->pad,   &a->principal};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        sl_wbuf_fini(bufs[i]);
    free(a);
}

const sl_operator sl_op_auth = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "auth",
    .summary = "Gateway authentication: API keys and JWT (HS256/RS256), a validation cache, "
               "scopes, 401/403, and a key admin API",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .init = auth_init,
    .start = auth_start,
    .process = auth_process,
    .destroy = auth_destroy,
};
