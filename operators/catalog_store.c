/*
 * catalog_store.c - the catalog in the instance's LMDB databases (host kv_*),
 * with the indexes that make a search exact without reading every record.
 *
 * Databases:
 *   apis          id -> the stored record (msgpack map, catalog_record.c)
 *   docs          id -> the API's OpenAPI document, compact JSON text (served as is)
 *   by_name       sort name, NUL, id -> ""            every API in list order
 *   by_category   category, NUL, sort name, NUL, id -> ""   each category in list order
 *   words         word, NUL, id -> ""                 the search index
 *   meta          "generation" -> u64 big-endian      bumped by every change
 *   deleted       id -> time (i64 big-endian)         tombstones: ids DELETE removed
 *
 * The sort name is the name with ASCII lower-cased, so lists are in name
 * order (case-insensitive) and then id order, the same order the search sorts
 * its hits in. Names and categories hold no NUL (they are text without
 * control characters), so the NUL separators are unambiguous.
 *
 * Invariant: every record has exactly the index entries derived from it.
 * A change removes the entries derived from the old record and adds those of
 * the new one in the same write transaction as the record itself, so a
 * reader (which sees one transaction's snapshot) never finds an index entry
 * without its record or the other way round.
 *
 * The store is the state of record for the catalog, like auth's key store:
 * not part of checkpoints (a restore must not undo an admin change), each
 * change committed and synced before its answer (catalog_admin.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "hash.h"

static const char GEN_KEY[] = "generation";

static void put_be64(uint8_t *b, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

int cat_store_open(catalog *c, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    c->apis = h->kv_open(ctx, "apis");
    c->docs = h->kv_open(ctx, "docs");
    c->by_name = h->kv_open(ctx, "by_name");
    c->by_category = h->kv_open(ctx, "by_category");
    c->words = h->kv_open(ctx, "words");
    c->meta = h->kv_open(ctx, "meta");
    c->deleted = h->kv_open(ctx, "deleted");
    if (!c->apis || !c->docs || !c->by_name || !c->by_category || !c->words || !c->meta ||
        !c->deleted)
        return -1;
    if (h->kv_begin(ctx, 0) != 0) return -1;
    const void *v;
    size_t vlen;
    int r = h->kv_get(ctx, c->meta, GEN_KEY, sizeof GEN_KEY - 1, &v, &vlen);
    c->generation = r == 0 && vlen == 8 ? get_be64(v) : 0;
    c->n_apis = h->kv_count(ctx, c->apis);
    h->kv_abort(ctx);
    return r < 0 ? -1 : 0;
}

int cat_store_get(catalog *c, sl_ctx *ctx, const char *id, size_t n, const uint8_t **rec,
                  size_t *len)
{
    const void *v;
    int r = ctx->host->kv_get(ctx, c->apis, id, n, &v, len);
    if (r != 0) return r == 1 ? 0 : -1;
    *rec = v;
    return 1;
}

int cat_store_doc(catalog *c, sl_ctx *ctx, const char *id, size_t n, const uint8_t **doc,
                  size_t *len)
{
    const void *v;
    int r = ctx->host->kv_get(ctx, c->docs, id, n, &v, len);
    if (r != 0) return r == 1 ? 0 : -1;
    *doc = v;
    return 1;
}

int cat_store_bump(catalog *c, sl_ctx *ctx, uint64_t *gen)
{
    const sl_host *h = ctx->host;
    const void *v;
    size_t vlen;
    int r = h->kv_get(ctx, c->meta, GEN_KEY, sizeof GEN_KEY - 1, &v, &vlen);
    if (r < 0) return -1;
    uint64_t g = (r == 0 && vlen == 8 ? get_be64(v) : 0) + 1;
    uint8_t b[8];
    put_be64(b, g);
    if (h->kv_put(ctx, c->meta, GEN_KEY, sizeof GEN_KEY - 1, b, 8) != 0) return -1;
    *gen = g;
    return 0;
}

/* ------------------------------------------------------------ indexes */

/* Put (or delete) key k of db; an absent key is fine when deleting. */
static int index_op(sl_ctx *ctx, sl_kv *db, const sl_wbuf *k, int put)
{
    if (put) return ctx->host->kv_put(ctx, db, k->data, k->len, "", 0);
    return ctx->host->kv_del(ctx, db, k->data, k->len) < 0 ? -1 : 0;
}

/* Add (put) or remove the index entries derived from record a. 0 or -1. */
static int index_apply(catalog *c, sl_ctx *ctx, const cat_api *a, int put)
{
    sl_wbuf *k = &c->keys, *w = &c->words_buf;
    sl_wbuf_reset(k);
    if (cat_sort_name(a->name.p, a->name.n, k) != 0 || sl_wbuf_append(k, "", 1) != 0 ||
        sl_wbuf_append(k, a->id.p, a->id.n) != 0 || index_op(ctx, c->by_name, k, put) != 0)
        return -1;
    sl_wbuf_reset(k);
    if (sl_wbuf_append(k, a->category.p, a->category.n) != 0 || sl_wbuf_append(k, "", 1) != 0 ||
        cat_sort_name(a->name.p, a->name.n, k) != 0 || sl_wbuf_append(k, "", 1) != 0 ||
        sl_wbuf_append(k, a->id.p, a->id.n) != 0 || index_op(ctx, c->by_category, k, put) != 0)
        return -1;
    sl_wbuf_reset(w);
    if (cat_words(a->name.p, a->name.n, w) != 0 || cat_words(a->summary.p, a->summary.n, w) != 0 ||
        cat_words(a->description.p, a->description.n, w) != 0)
        return -1;
    if (a->tags) {
        const uint8_t *p = a->tags, *end = a->tags + a->tags_len;
        sl_mp_val arr, t;
        if (sl_mp_read(&p, end, &arr) != 0 || arr.type != SL_MP_ARRAY) return -1;
        for (uint32_t i = 0; i < arr.v.n; i++)
            if (sl_mp_read(&p, end, &t) != 0 || t.type != SL_MP_STR ||
                cat_words(t.v.str.ptr, t.v.str.len, w) != 0)
                return -1;
    }
    if (cat_words_unique(w) != 0) return -1;
    for (size_t off = 0; off < w->len; off += 1 + w->data[off]) {
        sl_wbuf_reset(k);
        if (sl_wbuf_append(k, w->data + off + 1, w->data[off]) != 0 ||
            sl_wbuf_append(k, "", 1) != 0 || sl_wbuf_append(k, a->id.p, a->id.n) != 0 ||
            index_op(ctx, c->words, k, put) != 0)
            return -1;
    }
    return 0;
}

/* Read stored record old (a copy) into o, logging a malformed one. */
static int read_stored(sl_ctx *ctx, const uint8_t *old, size_t old_len, cat_api *o)
{
    cat_err e;
    if (cat_api_read(old, old_len, CAT_FROM_STORE, o, &e) == 0 && o->have & CAT_F_ID) return 0;
    ctx->host->log(ctx, SL_LOG_ERROR, "catalog store: a stored record is malformed: %s", e.msg);
    return -1;
}

int cat_store_put(catalog *c, sl_ctx *ctx, const cat_api *a, const uint8_t *doc, size_t doc_len,
                  int origin, uint64_t seed_hash, int64_t now, const uint8_t *old, size_t old_len)
{
    const sl_host *h = ctx->host;
    if (old) {
        cat_api o;
        if (read_stored(ctx, old, old_len, &o) != 0 || index_apply(c, ctx, &o, 0) != 0) return -1;
    }
    sl_wbuf_reset(&c->rec);
    if (cat_api_encode(a, now, origin, seed_hash, &c->rec) != 0 ||
        h->kv_put(ctx, c->apis, a->id.p, a->id.n, c->rec.data, c->rec.len) != 0 ||
        h->kv_put(ctx, c->docs, a->id.p, a->id.n, doc, doc_len) != 0 ||
        index_apply(c, ctx, a, 1) != 0)
        return -1;
    return 0;
}

int cat_store_remove(catalog *c, sl_ctx *ctx, const uint8_t *old, size_t old_len)
{
    const sl_host *h = ctx->host;
    cat_api o;
    if (read_stored(ctx, old, old_len, &o) != 0 || index_apply(c, ctx, &o, 0) != 0 ||
        h->kv_del(ctx, c->apis, o.id.p, o.id.n) < 0 || h->kv_del(ctx, c->docs, o.id.p, o.id.n) < 0)
        return -1;
    return 0;
}

int cat_store_tombstone(catalog *c, sl_ctx *ctx, const char *id, size_t n, int64_t now)
{
    uint8_t b[8];
    put_be64(b, (uint64_t)now);
    return ctx->host->kv_put(ctx, c->deleted, id, n, b, 8);
}

int cat_store_untombstone(catalog *c, sl_ctx *ctx, const char *id, size_t n)
{
    return ctx->host->kv_del(ctx, c->deleted, id, n) < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ the seed */

typedef struct seed_id {
    const char *p;
    uint32_t n;
} seed_id;

static int cmp_id(const void *x, const void *y)
{
    const seed_id *a = x, *b = y;
    int r = memcmp(a->p, b->p, a->n < b->n ? a->n : b->n);
    return r ? r : (a->n > b->n) - (a->n < b->n);
}

typedef struct scan_ids {
    const seed_id *seed; /* the seed's ids, sorted */
    size_t n_seed;
    int only_seeded; /* apis: only records of origin seed */
    sl_wbuf *out;    /* ids to drop: one length byte, then the id */
    int oom;
} scan_ids;

/* Collect the keys (ids) that the seed does not list: records (of origin seed) or tombstones. */
static int collect_unlisted(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    scan_ids *s = arg;
    if (klen == 0 || klen > CAT_MAX_ID) return 0;
    seed_id k = {key, (uint32_t)klen};
    if (bsearch(&k, s->seed, s->n_seed, sizeof *s->seed, cmp_id)) return 0;
    if (s->only_seeded) {
        const uint8_t *p = val;
        sl_mp_val o;
        if (sl_mp_map_find(&p, p + vlen, "origin", 6) != 1 ||
            sl_mp_read(&p, (const uint8_t *)val + vlen, &o) != 0 || o.type != SL_MP_STR ||
            o.v.str.len != 4 || memcmp(o.v.str.ptr, "seed", 4) != 0)
            return 0;
    }
    uint8_t l8 = (uint8_t)klen;
    if (sl_wbuf_append(s->out, &l8, 1) != 0 || sl_wbuf_append(s->out, key, klen) != 0) {
        s->oom = 1;
        return SL_KV_STOP;
    }
    return 0;
}

/*
 * Apply the seed: each API the file lists is added when the store lacks it,
 * replaced when the stored one is still the file's (origin seed) and the
 * file's entry changed; an API the file no longer lists is removed if it
 * was the file's. APIs an admin wrote (origin admin) and tombstoned ids are
 * left alone. One transaction; the generation moves once if anything changed.
 */
int cat_store_seed(catalog *c, sl_ctx *ctx, int64_t now)
{
    const sl_host *h = ctx->host;
    seed_id *ids = calloc(c->n_seed ? c->n_seed : 1, sizeof *ids);
    size_t added = 0, updated = 0, removed = 0;
    if (!ids) return -1;
    if (h->kv_begin(ctx, 1) != 0) goto err_nt;
    for (size_t i = 0; i < c->n_seed; i++) {
        size_t start = i ? c->seed_ends[i - 1] : 0, len = c->seed_ends[i] - start;
        const uint8_t *entry = c->seed.data + start;
        cat_api a;
        cat_err e;
        if (cat_api_read(entry, len, CAT_FROM_SEED, &a, &e) != 0) goto err; /* init checked it */
        ids[i] = (seed_id){a.id.p, a.id.n};
        uint64_t hash = sl_hash_bytes(entry, len);
        const void *tv;
        size_t tl;
        int tomb = h->kv_get(ctx, c->deleted, a.id.p, a.id.n, &tv, &tl);
        if (tomb < 0) goto err;
        if (tomb == 0) continue; /* deleted through the admin API: stays deleted */
        const uint8_t *rec;
        size_t rlen;
        int r = cat_store_get(c, ctx, a.id.p, a.id.n, &rec, &rlen);
        if (r < 0) goto err;
        const uint8_t *old = NULL;
        size_t old_len = 0;
        if (r == 1) {
            cat_api s;
            if (read_stored(ctx, rec, rlen, &s) != 0) goto err;
            int seeded = s.origin.n == 4 && memcmp(s.origin.p, "seed", 4) == 0;
            if (!seeded || s.seed_hash == hash) continue;
            sl_wbuf_reset(&c->keep);
            if (sl_wbuf_append(&c->keep, rec, rlen) != 0) goto err;
            old = c->keep.data;
            old_len = c->keep.len;
        }
        sl_wbuf_reset(&c->doc);
        if (sl_msgpack_to_json(a.openapi, a.openapi_len, &c->doc) != 0 ||
            cat_store_put(c, ctx, &a, c->doc.data, c->doc.len, CAT_ORIGIN_SEED, hash, now, old,
                          old_len) != 0)
            goto err;
        if (old)
            updated++;
        else
            added++;
    }
    qsort(ids, c->n_seed, sizeof *ids, cmp_id);
    /* what the file no longer lists: its records, and tombstones that can no longer matter */
    for (int pass = 0; pass < 2; pass++) {
        sl_wbuf_reset(&c->ids);
        scan_ids s = {ids, c->n_seed, pass == 0, &c->ids, 0};
        if (h->kv_scan(ctx, pass == 0 ? c->apis : c->deleted, NULL, 0, collect_unlisted, &s) != 0 ||
            s.oom)
            goto err;
        for (size_t off = 0; off < c->ids.len; off += 1 + c->ids.data[off]) {
            const char *id = (const char *)c->ids.data + off + 1;
            size_t n = c->ids.data[off];
            if (pass == 1) {
                if (h->kv_del(ctx, c->deleted, id, n) < 0) goto err;
                continue;
            }
            const uint8_t *rec;
            size_t rlen;
            if (cat_store_get(c, ctx, id, n, &rec, &rlen) != 1) goto err;
            sl_wbuf_reset(&c->keep);
            if (sl_wbuf_append(&c->keep, rec, rlen) != 0 ||
                cat_store_remove(c, ctx, c->keep.data, c->keep.len) != 0)
                goto err;
            removed++;
        }
    }
    uint64_t gen = c->generation;
    if ((added || updated || removed) && cat_store_bump(c, ctx, &gen) != 0) goto err;
    c->n_apis = h->kv_count(ctx, c->apis);
    if (h->kv_commit(ctx) != 0) goto err_nt;
    if (h->kv_sync(ctx) != 0)
        h->log(ctx, SL_LOG_WARN, "catalog store: sync failed: a crash may lose the seed's changes");
    c->generation = gen;
    c->pending_invalidate = added || updated || removed;
    h->log(ctx, SL_LOG_INFO,
           "seed %s: %zu APIs added, %zu updated, %zu removed; %llu in the "
           "catalog",
           c->seed_path, added, updated, removed, (unsigned long long)c->n_apis);
    free(ids);
    return 0;
err:
    h->kv_abort(ctx);
err_nt:
    h->log(ctx, SL_LOG_ERROR, "catalog store: could not apply the seed file %s", c->seed_path);
    free(ids);
    return -1;
}
