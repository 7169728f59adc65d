/*
 * catalog.h - the `catalog` operator's state, shared by its files:
 *
 *   catalog.c         configuration, start, the data path: which requests are the
 *                     catalog's, GET /apis/{id} and /docs, answers and invalidations
 *   catalog_record.c  an API record: reading and checking one (JSON body, seed entry,
 *                     stored record), writing the stored form, rendering it as JSON,
 *                     the words of the search index
 *   catalog_store.c   the records and their indexes in the instance's LMDB databases,
 *                     kept consistent in one transaction; the seed applied at start
 *   catalog_search.c  GET /apis: category, q (all words), pages
 *   catalog_admin.c   POST/PUT/PATCH/DELETE under admin_prefix
 *   catalog_seed.c    the seed file: YAML -> records, checked by init at file:line:col
 *
 * docs/gateway/catalog.md is the user's reference and records the design choices.
 */
#ifndef SL_CATALOG_H
#define SL_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "sluice/operator.h"

/* Limits of a record (docs/gateway/catalog.md, "the record"). */
#define CAT_MAX_ID 64
#define CAT_MAX_NAME 200
#define CAT_MAX_SUMMARY 500
#define CAT_MAX_DESCRIPTION 8000
#define CAT_MAX_CATEGORY 64
#define CAT_MAX_TAGS 32
#define CAT_MAX_TAG 64
#define CAT_MAX_VERSION 64
#define CAT_MAX_URL 2048
#define CAT_MAX_PLANS 16
#define CAT_MAX_PLAN_NAME 64
#define CAT_MAX_PLAN_TEXT 200
#define CAT_MAX_DOC (1u << 20)  /* the OpenAPI document, as compact JSON */
#define CAT_MAX_BODY (2u << 20) /* an admin request's body */
/* Search */
#define CAT_MAX_WORD 64 /* longer words are cut to this, in the index and in queries alike */
#define CAT_MAX_QWORDS 8
#define CAT_MAX_Q 256
#define CAT_MIN_PREFIX 2 /* the last word of q matches as a prefix from this length on */
#define CAT_MAX_PAGE 1000000000
/* Configuration */
#define CAT_MAX_PREFIX 128
#define CAT_MAX_PER_PAGE_LIMIT 1000

enum { CAT_ORIGIN_SEED = 1, CAT_ORIGIN_ADMIN = 2 };

/* Members of a record, as bits of cat_api.have and .nulls. */
enum {
    CAT_F_ID = 1u << 0,
    CAT_F_NAME = 1u << 1,
    CAT_F_SUMMARY = 1u << 2,
    CAT_F_DESCRIPTION = 1u << 3,
    CAT_F_CATEGORY = 1u << 4,
    CAT_F_TAGS = 1u << 5,
    CAT_F_VERSION = 1u << 6,
    CAT_F_BASE_URL = 1u << 7,
    CAT_F_PLANS = 1u << 8,
    CAT_F_OPENAPI = 1u << 9,
    CAT_F_UPDATED = 1u << 10,
    CAT_F_ORIGIN = 1u << 11,
    CAT_F_SEED_HASH = 1u << 12,
    CAT_F_DOCS = 1u << 13,
};
#define CAT_F_REQUIRED (CAT_F_ID | CAT_F_NAME | CAT_F_CATEGORY | CAT_F_OPENAPI)

/* Where a record comes from: which members it may have. */
typedef enum cat_source {
    CAT_FROM_BODY,  /* an admin request: updated, docs and origin are read-only (ignored) */
    CAT_FROM_SEED,  /* a seed file entry: only the members one writes */
    CAT_FROM_STORE, /* the stored record: no openapi (kept apart), updated, origin, seed_hash */
} cat_source;

typedef struct cat_str {
    const char *p;
    uint32_t n;
} cat_str;

/*
 * A record, read in place: strings and the msgpack bytes of tags, plans and
 * openapi are borrowed from the buffer it was read from. Absent strings are
 * empty, absent arrays NULL.
 */
typedef struct cat_api {
    unsigned have;  /* CAT_F_* present with a value */
    unsigned nulls; /* CAT_F_* present as null (PATCH: remove) */
    cat_str id, name, summary, description, category, version, base_url, origin;
    const uint8_t *tags, *plans, *openapi;
    size_t tags_len, plans_len, openapi_len;
    int64_t updated;
    uint64_t seed_hash;
} cat_api;

/* Why a record was refused, and where: up to 4 path steps (member, index, member, ...). */
typedef struct cat_err {
    char msg[320];
    int depth;
    struct {
        char key[48]; /* a member; "" for an array index */
        int index;
    } at[4];
} cat_err;

/* An answer being built: status, JSON body, up to three extra headers. */
typedef struct cat_reply {
    int status;
    sl_wbuf body;
    const char *hdr_name[3];
    char hdr_val[3][320];
    int n_hdr;
    char api[CAT_MAX_ID + 1]; /* the `api` the answered event gets; "" for none */
    char inv[CAT_MAX_ID + 1]; /* an admin write changed this API: emit an invalidation */
    int invalidate;
} cat_reply;

/* The parts of a request event the catalog reads (borrowed from the event). */
typedef struct cat_request {
    cat_str method, path, body;
    const uint8_t *query, *scopes; /* msgpack map / array, or NULL */
    const uint8_t *end;            /* the event's end: bound for reading query and scopes */
    int has_body;
} cat_request;

/* A search result: its sort key (at key_off in catalog.keys) and its record (borrowed). */
typedef struct cat_hit {
    size_t key_off, key_len;
    const uint8_t *key; /* set once every key is in catalog.keys (which may move as it grows) */
    const uint8_t *rec;
    size_t rec_len;
} cat_hit;

typedef struct cat_counts {
    uint64_t requests, not_found, admin_writes, bad_requests, forbidden, passed, store_errors;
} cat_counts;

typedef struct catalog {
    /* configuration */
    const char *prefix; /* "/apis" */
    size_t prefix_len;
    const char *admin; /* "/admin/apis", or NULL: no admin API */
    size_t admin_len;
    const char *admin_scope;
    size_t admin_scope_len;
    uint32_t per_page, max_per_page;
    const char *seed_path; /* NULL: no seed file */
    /* the seed file's entries, checked by init: records (CAT_FROM_SEED msgpack) back to back */
    sl_wbuf seed;
    size_t *seed_ends, n_seed;
    /* ports */
    int answered_port, invalidate_port, errors_port, checked_ports;
    /* state */
    sl_kv *apis, *docs, *by_name, *by_category, *words, *meta, *deleted;
    uint64_t generation; /* bumped by every change of the catalog (stored in meta) */
    uint64_t n_apis;
    int pending_invalidate; /* the seed changed the catalog at start: tell the cache once */
    /* the answer being built */
    cat_reply reply;
    cat_counts c;
    sl_json_parser *jp;
    /* scratch, reused across requests */
    sl_wbuf out, pairs, pad, body, keep, keep_doc, rec, doc, keys, ids, ids2, words_buf, qwords;
    cat_hit *hits;
    size_t hits_cap;
    uint32_t *set; /* a lone prefix's ids: open addressing over offsets into ids (+1) */
    size_t set_cap;
} catalog;

/* ------------------------------------------------------- catalog_record.c */

/*
 * Read the record at [p, p + len) (a msgpack map) from `src` into a, checking
 * every member it has (types, lengths, character sets; the OpenAPI document's
 * shape). Required members are not checked here (see cat_api_complete).
 * 0, or -1 with e filled.
 */
int cat_api_read(const uint8_t *p, size_t len, cat_source src, cat_api *a, cat_err *e);
/* Whether a has every required member (id, name, category, openapi); -1 with e if not. */
int cat_api_complete(const cat_api *a, cat_err *e);
/* Set e to msg (printf) at path step `key` (NULL: none). Returns -1. */
int cat_err_set(cat_err *e, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Whether s is an API id: 1 to 64 of [A-Za-z0-9._~-], starting with a letter or digit. */
int cat_id_valid(const char *s, size_t n);
/* Whether s is a category: 1 to 64 of [a-z0-9._-], starting with a letter or digit. */
int cat_category_valid(const char *s, size_t n);
/*
 * Append the stored form of a (without openapi) to out: a map with every
 * member (absent ones empty), `updated` (ns), `origin` and, for the seed's,
 * `seed_hash`. 0 or -1 (out of memory).
 */
int cat_api_encode(const cat_api *a, int64_t updated, int origin, uint64_t seed_hash, sl_wbuf *out);
/*
 * Append the JSON of stored record rec: every member but the internal ones,
 * then "docs": "<prefix>/<id>/docs"; with `admin`, also "origin" and
 * "openapi" (doc: the stored JSON text). 0 or -1.
 */
int cat_render_full(const catalog *c, const uint8_t *rec, size_t len, int admin, const char *doc,
                    size_t doc_len, sl_wbuf *out);
/* Append the list item of stored record rec: {id, name, summary, category, tags}. 0 or -1. */
int cat_render_item(const uint8_t *rec, size_t len, sl_wbuf *out);
/*
 * Append the words of text s to out, each as one length byte and its bytes:
 * runs of ASCII letters and digits and of bytes >= 0x80 (UTF-8), ASCII
 * lower-cased, cut to CAT_MAX_WORD bytes.
 */
int cat_words(const char *s, size_t n, sl_wbuf *out);
/* Sort the words list in w (cat_words format) and drop repeats, in place. 0 or -1. */
int cat_words_unique(sl_wbuf *w);
/* Append the sort key of a name to out: the name with ASCII lower-cased. */
int cat_sort_name(const char *s, size_t n, sl_wbuf *out);

/* -------------------------------------------------------- catalog_store.c */

/* Open the instance's databases and read the generation and count. 0 or -1 (logged). */
int cat_store_open(catalog *c, sl_ctx *ctx);
/*
 * The stored record of id in the open transaction: 1 with *rec, *len
 * (borrowed until the next write or the transaction's end), 0 if absent, -1.
 */
int cat_store_get(catalog *c, sl_ctx *ctx, const char *id, size_t n, const uint8_t **rec,
                  size_t *len);
/* The OpenAPI document (JSON text) of id: 1, 0 if absent, -1. Borrowed as cat_store_get. */
int cat_store_doc(catalog *c, sl_ctx *ctx, const char *id, size_t n, const uint8_t **doc,
                  size_t *len);
/*
 * In a write transaction: store a (and doc, its OpenAPI document as JSON text)
 * with its index entries; `old` is a copy of the record it replaces (its
 * index entries are removed first), or NULL. 0 or -1 (logged).
 */
int cat_store_put(catalog *c, sl_ctx *ctx, const cat_api *a, const uint8_t *doc, size_t doc_len,
                  int origin, uint64_t seed_hash, int64_t now, const uint8_t *old, size_t old_len);
/* In a write transaction: remove the API of stored record old (a copy), its doc and indexes. */
int cat_store_remove(catalog *c, sl_ctx *ctx, const uint8_t *old, size_t old_len);
/* Tombstones: the ids DELETE removed, which the seed must not bring back. */
int cat_store_tombstone(catalog *c, sl_ctx *ctx, const char *id, size_t n, int64_t now);
int cat_store_untombstone(catalog *c, sl_ctx *ctx, const char *id, size_t n);
/* In a write transaction: generation + 1, stored; c->generation is set after the commit. */
int cat_store_bump(catalog *c, sl_ctx *ctx, uint64_t *gen);
/* Bring the store in line with the seed file (docs: "the seed file"), one transaction. */
int cat_store_seed(catalog *c, sl_ctx *ctx, int64_t now);

/* ------------------------------------------------------- catalog_search.c */

/* Answer GET <prefix> (the list and the search) into c->reply. 0, or -1 (out of memory). */
int cat_search(catalog *c, sl_ctx *ctx, const cat_request *r);
/* The string value of query parameter name of r: 1 with *v, 0 if absent. */
int cat_query(const cat_request *r, const char *name, cat_str *v);

/* -------------------------------------------------------- catalog_admin.c */

/* Answer a request below admin_prefix (rest: the path after it) into c->reply. 0 or -1. */
int cat_admin(catalog *c, sl_ctx *ctx, const cat_request *r, const char *rest, size_t rlen);

/* --------------------------------------------------------- catalog_seed.c */

/* Load and check the seed file c->seed_path (init; reports at file:line:col). 0 or -1. */
int cat_seed_load(catalog *c, sl_ctx *ctx, const sl_node *at);

/* -------------------------------------------------------------- catalog.c */

/* Set c->reply to an error answer {"error", "detail"} (detail: printf). 0 or -1. */
int cat_fail(catalog *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Add header name (a literal) with value (printf) to c->reply. */
void cat_header(catalog *c, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Set c->reply to status with the body already in c->reply.body. */
void cat_ok(catalog *c, int status);
/* A 500 after a store failure: aborts the transaction, counts it. 0 or -1. */
int cat_store_failed(catalog *c, sl_ctx *ctx);
/* Parse JSON text s into out (reset first) as msgpack. 0, or -1 with the reason in err. */
int cat_parse_json(catalog *c, const char *s, size_t n, sl_wbuf *out, char *err, size_t errlen);

#endif
