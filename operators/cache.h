/*
 * cache.h - the gateway's response cache: what its files share.
 *
 *   cache.c        the `cache` operator: configuration, and the lookup on the
 *                  request path (hit: answered at once; miss: marked and sent on)
 *   cache_store.c  the `cache.store` operator: the response path (store, ETag,
 *                  304, gzip) and invalidation events
 *   cache_table.c  the table both operators share: entries by key, a clock
 *                  ring for eviction, a crit-bit tree of paths for exact and
 *                  prefix invalidation, the recent invalidations, the registry
 *   cache_http.c   reading request and response events, the key, the HTTP
 *                  rules (Cache-Control, Accept-Encoding, If-None-Match), ETags,
 *                  gzip, and writing answers
 *
 * Why two operators: a pipeline is a DAG (a cycle is refused at load), and
 * the endpoints sit between the lookup and the place where their responses
 * can be stored. So `cache` (before the endpoints) and `cache.store` (after
 * them) share one table, found by the `cache` operator's name in a
 * process-wide registry, as `respond` finds `source.http`'s server.
 * docs/gateway/cache.md is the user's reference and records the choices.
 */
#ifndef SL_CACHE_H
#define SL_CACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#include "sluice/operator.h"

#define CACHE_MAX_ENTRIES (1u << 26)
#define CACHE_MAX_QUERY 64    /* query parameters of a cacheable request */
#define CACHE_MAX_SCOPES 64   /* scopes of a cacheable request */
#define CACHE_MAX_PATH 4096   /* bytes of a cacheable path */
#define CACHE_INVAL_RING 4096 /* recent invalidations remembered against racing responses */
#define CACHE_ETAG_MAX 256    /* an origin's ETag longer than this is not used */

/* ------------------------------------------------------------ configuration */

/* What `cache` configures and `cache.store` reads (copied into the table). */
typedef struct cache_cfg {
    int64_t ttl_ns;          /* lifetime of a 200 (shortened by max-age / s-maxage) */
    int64_t negative_ttl_ns; /* lifetime of a 404 or 410; 0: not stored */
    uint64_t max_entries, max_bytes, max_object;
    int vary_scope, vary_consumer, invalidate_on_write;
    int gzip_level;    /* 0: no gzip */
    uint64_t gzip_min; /* bodies below this many bytes are sent as they are */
} cache_cfg;

/* ------------------------------------------------------------ events */

typedef struct cache_str {
    const char *p;
    uint32_t n;
} cache_str;

/* A value of the event: its msgpack bytes [v, end), and its pair [pair, end) (key first). */
typedef struct cache_field {
    const uint8_t *pair, *v, *end; /* v NULL: absent */
} cache_field;

/*
 * The parts of an event (request or answered request) the cache reads,
 * borrowed from the event. Strings are empty when absent or not strings.
 */
typedef struct cache_req {
    const uint8_t *ev, *body; /* the event, and its first pair (after the map header) */
    const uint8_t *end;
    uint32_t n_pairs;
    cache_str method, path;
    cache_field query, headers, scopes, consumer, response, marker, time;
    int64_t time_ns; /* the `time` timestamp; valid when has_time */
    int has_time;
    int path_is_str;       /* `path` present and a string */
    cache_str cc, inm, ae; /* request headers cache-control, if-none-match, accept-encoding */
} cache_req;

/*
 * Read event ev (len bytes). Returns 0, or -1 if it is not a msgpack map or
 * is malformed; `method` and `path` must then be checked by the caller.
 */
int cache_req_read(const uint8_t *ev, size_t len, cache_req *r);

/* The request's Cache-Control directives that matter to a cache. */
typedef struct cache_cc {
    int no_store, no_cache, private_, max_age_set, s_maxage_set;
    int64_t max_age, s_maxage; /* seconds */
} cache_cc;
/* Parse a Cache-Control value (n bytes; case-insensitive; unknown directives ignored). */
void cache_cc_parse(const char *s, size_t n, cache_cc *cc);

/* Whether Accept-Encoding value s (n bytes) accepts gzip: gzip or x-gzip, or *, with q > 0. */
int cache_accepts_gzip(const char *s, size_t n);

/*
 * Whether If-None-Match value inm (n bytes) matches entity-tag etag (with its
 * quotes, maybe W/): `*`, or a listed tag equal by the weak comparison
 * (RFC 9110 section 8.8.3.2: opaque-tags equal, W/ ignored). An unparsable
 * list matches nothing.
 */
int cache_inm_match(const char *inm, size_t n, const char *etag, size_t elen);

/* Whether s (n bytes) is an entity-tag: "..." or W/"..." with etagc characters. */
int cache_etag_valid(const char *s, size_t n);

/* The strong ETag of a body: '"' + the first 16 hex digits of its SHA-256 + '"' (18 bytes + NUL).
 */
int cache_etag_make(const void *body, size_t n, char out[19]);

/*
 * The key of a cacheable request into key: the path, then '?' and the query
 * (parameters sorted by name, name=value joined by '&', '%' '&' '=' '#' '+'
 * and bytes outside 0x21-0x7e percent-encoded), then NUL, then the sorted,
 * distinct scopes (each a 32-bit length and its bytes) when vary_scope,
 * then 0x01 and the consumer's msgpack when vary_consumer. *pq_len is the
 * length of the path-and-query part. Returns 0; 1 when the request cannot
 * be cached (*why says why: a path with '?' or NUL, too many parameters, a
 * query value or scope that is not a string); -1 out of memory.
 */
int cache_key(const cache_req *r, const cache_cfg *cfg, sl_wbuf *key, size_t *pq_len,
              const char **why);

/* ------------------------------------------------------------ responses */

/*
 * A response as the cache serves it: a stored entry's, or one being passed
 * on by cache.store. The pieces are msgpack, borrowed.
 */
typedef struct cache_resp {
    uint32_t status;
    const uint8_t *hdrs; /* header pairs (names lower case), without etag, age, x-cache */
    uint32_t hdrs_len, n_hdrs;
    const char *etag; /* the identity variant's entity-tag, or NULL */
    uint32_t etag_len;
    const uint8_t *body; /* the body value as it came (str or bin) */
    uint32_t body_len;
    const uint8_t *gz; /* the gzip form as a bin value, or NULL */
    uint32_t gz_len;
} cache_resp;

enum {
    CACHE_ANSWER_GZIP = 1u << 0, /* the gzip form, content-encoding: gzip */
    CACHE_ANSWER_304 = 1u << 1,  /* 304 Not Modified without a body */
    CACHE_ANSWER_HIT = 1u << 2,  /* x-cache: HIT (and age) */
    CACHE_ANSWER_MISS = 1u << 3, /* x-cache: MISS */
};

/*
 * Append to out the event r->ev with `response` set to resp (as flags say;
 * `age` seconds written when CACHE_ANSWER_HIT) and, when marker is not NULL,
 * `cache` set to the msgpack value marker (mlen bytes). Pairs the event had
 * under those names are replaced. Returns 0 or -1 (out of memory).
 */
int cache_write_answer(sl_wbuf *out, const cache_req *r, const cache_resp *resp, unsigned flags,
                       int64_t age, const uint8_t *marker, size_t mlen);

/*
 * Append r->ev with `cache` set to the marker (a miss on its way to the
 * endpoints). 0 or -1.
 */
int cache_write_marked(sl_wbuf *out, const cache_req *r, const uint8_t *marker, size_t mlen);

/* The gzip form of the body variant (with the -gz suffix when the tag is quoted). */
size_t cache_etag_variant(const cache_resp *resp, int gz, char *out, size_t cap);

/* A reusable deflate stream (gzip wrapper) for one thread. */
typedef struct cache_gzip {
    z_stream z;
    int level, ready;
} cache_gzip;
int cache_gzip_init(cache_gzip *g, int level);
void cache_gzip_fini(cache_gzip *g);
/* Append to out a bin value (bin32 header) holding the gzip form of in. 0 or -1. */
int cache_gzip_bin(cache_gzip *g, const void *in, size_t n, sl_wbuf *out);

/* ------------------------------------------------------------ the table */

typedef struct cache_path cache_path;

/* One stored response. Immutable once in the table but for `ref`. */
typedef struct cache_entry {
    struct cache_entry *next;           /* hash chain */
    struct cache_entry *pnext, **pprev; /* the entries of one path */
    cache_path *path;
    uint64_t hash;
    int64_t stored_ns, expires_ns; /* the request time of the response; + lifetime */
    size_t bytes;                  /* accounted against max_bytes */
    uint32_t ring;                 /* index in the clock ring */
    uint32_t key_len, pq_len;
    atomic_uchar ref; /* the clock's "used since last pass" bit */
    cache_resp resp;  /* pointing into data */
    uint8_t data[];   /* key, headers, etag, body, gzip form */
} cache_entry;

/* Totals a table's writer reports back (added to by put and invalidate). */
typedef struct cache_table_counts {
    uint64_t stores, evictions, expired, invalidated, stale;
} cache_table_counts;

typedef struct sl_cache_table sl_cache_table;

/*
 * The table named `name` in this process's registry, with one reference
 * taken: found, or made (empty, unconfigured) when create is nonzero.
 * NULL if absent (create 0) or out of memory. name NULL (create 0): the
 * only one registered (NULL if none or several; *several set). Any thread.
 */
sl_cache_table *sl_cache_table_acquire(const char *name, int create, int *several);
/* Drop a reference, NULL *tp (accepts NULL); the last one frees the table and its entries. */
void sl_cache_table_release(sl_cache_table **tp);
/* The name it is registered under (borrowed, lives as long as the table). */
const char *sl_cache_table_name(const sl_cache_table *t);

/*
 * A `cache` operator instance attaches: the first one of a set (none
 * attached) applies cfg (entries kept, bounds enforced from the next store);
 * later ones (parallel instances) share it. detach undoes attach.
 */
void sl_cache_table_attach(sl_cache_table *t, const cache_cfg *cfg);
void sl_cache_table_detach(sl_cache_table *t);
/* Whether a `cache` operator ever configured it, and a copy of its configuration. */
int sl_cache_table_configured(sl_cache_table *t, cache_cfg *cfg);

/* The invalidation count: a miss carries it, a put compares it. */
uint64_t sl_cache_table_gen(const sl_cache_table *t);

/*
 * Lookup (reader side). Between rdlock and unlock the entries found stay
 * valid; find returns the entry of key (hash = sl_hash_bytes(key)), or NULL.
 * touch marks it used (for the clock).
 */
void sl_cache_table_rdlock(sl_cache_table *t);
void sl_cache_table_unlock(sl_cache_table *t);
cache_entry *sl_cache_table_find(sl_cache_table *t, uint64_t hash, const void *key, size_t klen);
static inline void sl_cache_entry_touch(cache_entry *e)
{
    if (!atomic_load_explicit(&e->ref, memory_order_relaxed))
        atomic_store_explicit(&e->ref, 1, memory_order_relaxed);
}

/*
 * Store resp under key (pq_len bytes of path and query first), stored at
 * now_ns, fresh until expires_ns, for a miss looked up at invalidation count
 * `gen`: refused (*c->stale) when an invalidation since then covers it.
 * Replaces an entry of the same key; evicts (clock, expired first) to stay
 * within max_entries and max_bytes. Returns 1 stored, 0 not (stale, or
 * larger than max_object / max_bytes), -1 out of memory. Takes the lock.
 */
int sl_cache_table_put(sl_cache_table *t, const void *key, size_t klen, size_t pq_len,
                       const cache_resp *resp, int64_t now_ns, int64_t expires_ns, uint64_t gen,
                       cache_table_counts *c);

/*
 * Remove the entries of path s (n bytes; all queries and scopes; with a '?'
 * in s: that exact path and query), or when prefix is nonzero those whose
 * path-and-query starts with s, and remember the invalidation. Returns the
 * number removed (also added to c->invalidated), -1 out of memory. Takes the lock.
 */
long sl_cache_table_invalidate(sl_cache_table *t, const char *s, size_t n, int prefix,
                               cache_table_counts *c);

/* Entries held, and bytes (entries, paths, index, arrays). */
void sl_cache_table_stats(sl_cache_table *t, uint64_t *entries, uint64_t *bytes);

#endif
