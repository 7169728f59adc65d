/*
 * auth.h - the `auth` operator's state, shared by its files:
 *
 *   auth.c        configuration, start (seeding the key store), the data path
 *   auth_cache.c  the validation cache: SHA-256(token) -> result, bounded, clock eviction
 *   auth_jwt.c    base64url and JWT (HS256, RS256) validation
 *   auth_store.c  the key store in the instance's LMDB databases (API keys, consumers)
 *   auth_admin.c  the admin API (consumers and keys) answered by auth itself
 *   auth_reply.c  writing events: the authenticated request, responses (401, 403, ...)
 *
 * docs/gateway/auth.md is the user's reference and records the design choices.
 */
#ifndef SL_AUTH_H
#define SL_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "config.h"
#include "json.h"
#include "sluice/operator.h"

#define AUTH_SHA_LEN 32
#define AUTH_MAX_TOKEN 8192 /* longer credentials are refused without a lookup */
#define AUTH_MAX_ID 128     /* consumer and key ids, JWT subjects */
#define AUTH_MAX_RULES 256
#define AUTH_MAX_METHODS 8
#define AUTH_MAX_AUD 16
#define AUTH_NONE UINT32_MAX

enum { AUTH_API_KEY = 1, AUTH_JWT = 2 };

/* ------------------------------------------------------------ the cache */

/*
 * One validation result. `blob` holds, for a success, the msgpack pairs the
 * request gets ("consumer": str, "plan": str, "scopes": [str...]), for a
 * failure the reason text. The blob's memory is kept when the entry is
 * reused, so a warm cache stops allocating.
 */
typedef struct auth_entry {
    uint8_t sha[AUTH_SHA_LEN];
    int64_t expires; /* wall clock, ns: the entry is gone from then on */
    uint64_t chash;  /* hash of the consumer id (successes; sweeps), else 0 */
    uint8_t *blob;
    uint32_t blob_len, blob_cap;
    uint32_t consumer_off, consumer_len; /* the consumer id's bytes in blob */
    uint32_t scopes_off;                 /* the scopes array's header in blob */
    uint32_t next_free;                  /* free list link (AUTH_NONE: end) */
    uint8_t used, ok, method, ref;       /* ref: the clock's second-chance bit */
} auth_entry;

typedef struct auth_slot {
    uint32_t tag; /* high 32 bits of the hash: most mismatches need no entry */
    uint32_t e1;  /* entry index + 1; 0: empty */
} auth_slot;

typedef struct auth_cache {
    auth_entry *e;
    uint32_t cap, hw, n, max; /* allocated, ever used, in use, bound */
    uint32_t hand, free_head; /* the clock hand; the free list */
    auth_slot *slots;
    uint32_t mask; /* slot count - 1 (a power of two), 0 before the first entry */
    size_t blob_bytes;
} auth_cache;

/* Zero c and set its bound (max >= 1). */
void auth_cache_init(auth_cache *c, uint32_t max);
void auth_cache_fini(auth_cache *c);
/* The live entry of sha (its ref bit set), or NULL. An expired entry found is removed. */
auth_entry *auth_cache_find(auth_cache *c, const uint8_t *sha, int64_t now);
/*
 * A fresh entry for sha (which must not be in the cache), evicting one (clock: an
 * expired or unreferenced entry) when `max` are held. Its blob is empty, not freed.
 * NULL when out of memory. Pointers to other entries may move.
 */
auth_entry *auth_cache_add(auth_cache *c, const uint8_t *sha, int64_t now);
/* Remove the entry of sha if there is one; returns 1 if there was. */
int auth_cache_remove(auth_cache *c, const uint8_t *sha);
/* Remove every success of consumer id (len bytes); returns how many. O(entries). */
uint32_t auth_cache_sweep(auth_cache *c, const char *id, size_t len);
/* The hash sweeps compare first: e->chash of a success for consumer id. Never 0. */
uint64_t auth_consumer_hash(const char *id, size_t len);
/* Memory the cache holds, in bytes. */
size_t auth_cache_bytes(const auth_cache *c);
/* Copy n bytes into e's blob (growing it). 0 or -1 (out of memory). */
int auth_entry_set_blob(auth_cache *c, auth_entry *e, const void *data, size_t n);

/* ---------------------------------------------------- validation results */

/* A validation result, from the cache (borrowed from the entry) or fresh. */
typedef struct auth_view {
    const uint8_t *blob;
    size_t blob_len;
    uint32_t consumer_off, consumer_len, scopes_off;
    int ok, method, cached;
} auth_view;

/* What a lookup on a cache miss found: a view of `blob` plus the caps on its life. */
typedef struct auth_result {
    sl_wbuf blob;
    uint32_t consumer_off, consumer_len, scopes_off;
    int ok, method;
    int64_t not_after;  /* a success is not valid from then on (a JWT's exp + leeway) */
    int64_t fail_until; /* a failure may change then (a JWT's nbf - leeway); INT64_MAX: none */
} auth_result;

/* ------------------------------------------------------- configuration */

typedef struct auth_pattern {
    const char *s;
    size_t len;
    int prefix; /* written with a trailing '*': matches every path that starts with s */
} auth_pattern;

typedef struct auth_rule {
    auth_pattern path;
    const char *methods[AUTH_MAX_METHODS]; /* none: any method */
    size_t n_methods;
    const char *scope; /* NULL: authenticated is enough */
    size_t scope_len;
} auth_rule;

typedef struct auth_counts {
    uint64_t hits, misses, negative_hits, failures, forbidden, revocations, public_, admin, passed,
        store_errors;
} auth_counts;

/* An admin answer being built: status, JSON body, up to two extra headers. */
typedef struct auth_reply {
    int status;
    sl_wbuf body;
    const char *hdr_name[2];
    char hdr_val[2][512]; /* a challenge: realm (<= 64) and description (<= 160) fit */
    int n_hdr;
} auth_reply;

typedef struct auth {
    /* configuration */
    const char *realm;
    const char *seed_path; /* NULL: no seed file */
    sl_node *seed;         /* the seed file, loaded by init, applied by start */
    auth_pattern *pub;
    size_t n_pub;
    auth_rule *rules;
    size_t n_rules;
    const char *admin; /* admin_prefix, or NULL */
    size_t admin_len;
    int64_t ttl, negative_ttl; /* ns; ttl 0: no cache */
    uint32_t max_entries;
    /* JWT */
    int jwt;            /* JWTs are accepted at all */
    const char *issuer; /* NULL: not checked */
    const char *aud[AUTH_MAX_AUD];
    size_t n_aud; /* 0: not checked */
    const char *consumer_claim, *plan_claim, *scopes_claim, *default_plan;
    int64_t leeway;
    EVP_MAC_CTX *hmac;  /* HS256 with the secret set once; NULL: HS256 refused */
    EVP_PKEY *rsa;      /* RS256; NULL: refused */
    EVP_MD_CTX *verify; /* reused for RS256 */
    EVP_MD *sha256;
    EVP_MD_CTX *md; /* reused for SHA-256 of tokens */
    /* ports */
    int answered_port, errors_port, checked_ports;
    /* state */
    sl_kv *consumers, *keys, *key_ids, *consumer_keys;
    auth_cache cache;
    auth_result res;
    auth_reply reply;
    sl_json_parser *jp;
    sl_wbuf out, pairs, tmp, json, mp, mp2, sig, scratch, kids, shas, keep, pad, principal;
    auth_counts c;
} auth;

/* ------------------------------------------------------------ auth_jwt.c */

/* Whether t (n bytes) has the shape of a JWT: base64url segments a.b.c (c may be empty). */
int auth_is_jwt(const char *t, size_t n);
/* Append the bytes base64url text s (n chars, no padding) encodes. 0, -1 bad text or memory. */
int auth_b64url_decode(const char *s, size_t n, sl_wbuf *out);
/* Write base64url (no padding) of n bytes to out (room for 4*(n+2)/3 + 1), NUL-terminated. */
void auth_b64url_encode(const uint8_t *in, size_t n, char *out);
/*
 * Validate JWT t at wall-clock `now` into a->res (ok, or not with the reason as
 * blob). Returns 0, or -1 on an internal failure (memory, the key store; logged).
 */
int auth_jwt_check(auth *a, sl_ctx *ctx, const char *t, size_t n, int64_t now);

/* ---------------------------------------------------------------- auth.c */

/*
 * Parse JSON text s (n bytes) into out (reset first) as msgpack, through a
 * padded copy. 0, or -1 with the parser's reason in err.
 */
int auth_parse_json(auth *a, const void *s, size_t n, sl_wbuf *out, char *err, size_t errlen);
/* SHA-256 of n bytes at s into sha (32 bytes). 0, or -1 (out of memory; logged nowhere). */
int auth_sha256(auth *a, const void *s, size_t n, uint8_t *sha);

/* ---------------------------------------------------------- auth_store.c */

/* Open the instance's databases. 0 or -1 (logged). */
int auth_store_open(auth *a, sl_ctx *ctx);
/* Insert the seed file's consumers and keys that the store lacks. 0 or -1 (logged). */
int auth_store_seed(auth *a, sl_ctx *ctx);
/* Validate the API key whose SHA-256 is sha into a->res. 0, or -1 (store failure; logged). */
int auth_store_check_key(auth *a, sl_ctx *ctx, const uint8_t *sha);
/*
 * Read consumer id (len bytes) inside the open transaction: 1 and its record's
 * plan, scopes (msgpack array bytes) and revoked flag (all borrowed until the
 * transaction ends), 0 if absent, -1 on a failure or a malformed record.
 */
int auth_store_consumer(auth *a, sl_ctx *ctx, const char *id, size_t len, sl_mp_val *plan,
                        const uint8_t **scopes, size_t *scopes_len, int *revoked);
/* The API key record of SHA-256 sha in the open transaction: 1 (id, consumer borrowed), 0, -1. */
int auth_store_key(auth *a, sl_ctx *ctx, const uint8_t *sha, sl_mp_val *id, sl_mp_val *consumer,
                   int *revoked);
/* Write consumer id's record (in a write transaction). 0 or -1. */
int auth_store_put_consumer(auth *a, sl_ctx *ctx, const char *id, size_t len, const char *plan,
                            size_t plen, const uint8_t *scopes, size_t scopes_len, int revoked);
/*
 * Write the record of the key whose SHA-256 is sha; with `index`, also its
 * key_ids and consumer_keys records (a new key). 0 or -1.
 */
int auth_store_put_key(auth *a, sl_ctx *ctx, const uint8_t *sha, const char *kid, size_t klen,
                       const char *consumer, size_t clen, int revoked, int index);
/*
 * Set a->res to a success: consumer, plan and scopes (a msgpack array of strings,
 * `scopes_len` bytes) as the request's pairs. 0 or -1 (out of memory).
 */
int auth_result_ok(auth *a, int method, const char *consumer, size_t clen, const char *plan,
                   size_t plen, const uint8_t *scopes, size_t scopes_len);
/* Set a->res to a failure with reason text (printf). 0 or -1 (out of memory). */
int auth_result_fail(auth *a, int method, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Whether s (n bytes) is a valid consumer or key id: 1 to AUTH_MAX_ID of [A-Za-z0-9._~:@+-]. */
int auth_id_valid(const char *s, size_t n);
/* Whether msgpack bytes [p, end) are one array of strings (of at most AUTH_MAX_ID bytes each). */
int auth_scopes_valid(const uint8_t *p, const uint8_t *end);

/* ---------------------------------------------------------- auth_admin.c */

/*
 * Answer an admin request (method, the path below admin_prefix, body) into
 * a->reply. Returns 0, or -1 on out of memory. Store failures become 500.
 */
int auth_admin(auth *a, sl_ctx *ctx, const char *method, size_t mlen, const char *rest, size_t rlen,
               const char *body, size_t blen);

/* ---------------------------------------------------------- auth_reply.c */

/*
 * Append to out the event ev with the pairs of `extra` (n_extra msgpack pairs)
 * added; a pair of ev whose key one of `names` (n_names strings) replaces is
 * left out. 0, or -1 (ev is not a map, out of memory).
 */
int auth_write_event(sl_wbuf *out, const uint8_t *ev, size_t len, const char *const *names,
                     size_t n_names, const uint8_t *extra, size_t extra_len, uint32_t n_extra);
/* The fields auth writes: consumer, plan, scopes, auth (a request's own are dropped), response. */
extern const char *const auth_fields[5];
/* Append {"error": error, "detail": detail} to body. 0 or -1. */
int auth_error_body(sl_wbuf *body, const char *error, const char *detail, size_t dlen);
/*
 * Emit ev on the `answered` port with response {status, headers, body} (the
 * headers named in r, content-type when the body is not empty), and the
 * principal's pairs when who is not NULL. 0 or -1.
 */
int auth_answer(auth *a, sl_ctx *ctx, const uint8_t *ev, size_t len, const auth_reply *r,
                const auth_view *who);
/* Set reply r to status with an error body and the given header (may be NULL). */
int auth_reply_error(auth_reply *r, int status, const char *error, const char *detail, size_t dlen);
/* Add header name (a literal) with value (printf) to r. */
void auth_reply_header(auth_reply *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Whether the array of scopes at v->blob + v->scopes_off holds scope (n bytes). */
int auth_has_scope(const auth_view *v, const char *scope, size_t n);

#endif
