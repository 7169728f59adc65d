/*
 * agg_spill.c - the aggregate's state in LMDB (docs/state.md).
 *
 * Three databases per instance:
 *   ""         windows' partial results. Key: end, spec, set, start (8-byte
 *              big-endian, sign flipped, so keys sort by window end), the
 *              group's msgpack values, then a tag: 0 = base (as of the last
 *              snapshot; rewritten only by snapshots), 1 = spilled since.
 *              Value: a flags byte (bit 0: includes the base partial) and
 *              the accumulators (agg_acc_encode).
 *   "sessions" the session windows as of the last snapshot (sessions live in
 *              memory between snapshots; they are never spilled).
 *   "meta"     the snapshot's id, watermarks and a fingerprint of the
 *              configuration.
 *
 * Events never touch LMDB: memory over budget moves the coldest windows'
 * partials to tag 1 (merged with what is there), and whoever needs a full
 * result (firing, an update) folds LMDB's partials in. Writes happen in
 * short transactions that are committed before anything is emitted.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "hash.h"

#define HEAD 18          /* end, spec, set, start */
#define FIRE_CHUNK 1024  /* windows emitted from LMDB per transaction */
#define F_BASE 1         /* value flag: includes the base partial */

static void put64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v ^ (1ull << 63);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (56 - 8 * i));
}

static int64_t get64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)(u ^ (1ull << 63));
}

static int make_key(sl_wbuf *w, const entry *e, uint8_t tag)
{
    sl_wbuf_reset(w);
    if (sl_wbuf_reserve(w, HEAD + e->key_len + 1) != 0)
        return -1;
    put64(w->data, e->end);
    w->data[8] = (uint8_t)e->spec;
    w->data[9] = (uint8_t)e->set;
    put64(w->data + 10, e->start);
    memcpy(w->data + HEAD, e->key, e->key_len);
    w->data[HEAD + e->key_len] = tag;
    w->len = HEAD + e->key_len + 1;
    return 0;
}

static int encode(aggregate *a, const agg_acc *acc, uint8_t flags, sl_wbuf *w)
{
    sl_wbuf_reset(w);
    int bad = sl_wbuf_append(w, &flags, 1);
    for (size_t c = 0; c < a->n_comp; c++)
        bad |= agg_acc_encode(&a->comp[c], &acc[c], w);
    return bad ? -1 : 0;
}

/* Merge a stored value into acc. Returns 0 or -1 (out of memory, corrupt value). */
static int merge_value(aggregate *a, agg_acc *acc, const uint8_t *v, size_t vlen, int from_older,
                       uint8_t *flags)
{
    if (vlen < 1)
        return -1;
    *flags = v[0];
    const uint8_t *p = v + 1, *end = v + vlen;
    agg_acc tmp[AGG_MAX_COMPUTES];
    int rc = 0;
    for (size_t c = 0; c < a->n_comp; c++) {
        agg_acc_init(&a->comp[c], &tmp[c]);
        if (rc == 0 && (agg_acc_decode(&a->comp[c], &tmp[c], &p, end) != 0 ||
                        agg_acc_merge(&a->comp[c], &acc[c], &tmp[c], from_older) != 0))
            rc = -1;
    }
    for (size_t c = 0; c < a->n_comp; c++)
        agg_acc_fini(&a->comp[c], &tmp[c]);
    return rc == 0 && p == end ? 0 : -1;
}

static int corrupt(sl_ctx *ctx)
{
    ctx->host->log(ctx, SL_LOG_ERROR, "state: a stored window does not decode (out of memory, "
                                      "or the state belongs to a different configuration)");
    return SL_ERROR;
}

/*
 * Merge a window's stored partials into acc: the spilled one (NULL if none),
 * then the base one (NULL if none) unless acc or the spilled one has it in
 * already; *has_base says so afterwards. Returns 0 or -1.
 */
static int merge_parts(aggregate *a, agg_acc *acc, uint8_t *has_base, const uint8_t *spill,
                       size_t spill_len, const uint8_t *base, size_t base_len)
{
    uint8_t flags = 0;
    if (spill && merge_value(a, acc, spill, spill_len, 1, &flags) != 0)
        return -1;
    *has_base |= flags & F_BASE;
    if (base && !*has_base) {
        if (merge_value(a, acc, base, base_len, 1, &flags) != 0)
            return -1;
        *has_base = 1;
    }
    return 0;
}

/* Look up e's record with `tag`: 0 found (*v, *vlen), 1 none, -1 error. */
static int get_part(aggregate *a, sl_ctx *ctx, const entry *e, uint8_t tag, sl_wbuf *key,
                    const void **v, size_t *vlen)
{
    if (make_key(key, e, tag) != 0)
        return -1;
    return ctx->host->kv_get(ctx, a->db, key->data, key->len, v, vlen);
}

/* Fold spilled (and, if not in yet, base) partials of e into it; deletes the spilled one. */
static int fold(aggregate *a, sl_ctx *ctx, entry *e, int *found)
{
    const void *spill = NULL, *base = NULL;
    size_t spill_len = 0, base_len = 0;
    int rs = get_part(a, ctx, e, 1, &a->dbkey, &spill, &spill_len);
    if (rs < 0)
        return SL_ERROR;
    int rb = 1; /* the base is needed only if neither e nor the spilled partial has it */
    if (!e->has_base && !(rs == 0 && spill_len && (((const uint8_t *)spill)[0] & F_BASE)) &&
        (rb = get_part(a, ctx, e, 0, &a->dbval, &base, &base_len)) < 0)
        return SL_ERROR;
    *found = rs == 0 || rb == 0;
    if (merge_parts(a, e->acc, &e->has_base, rs == 0 ? spill : NULL, spill_len,
                    rb == 0 ? base : NULL, base_len) != 0)
        return corrupt(ctx);
    /* a->dbkey still holds the spilled record's key */
    if (rs == 0 && ctx->host->kv_del(ctx, a->db, a->dbkey.data, a->dbkey.len) < 0)
        return SL_ERROR;
    agg_account(a, e);
    return SL_OK;
}

/* Merge e into its spilled partial and free it (inside a write transaction). */
static int spill_one(aggregate *a, sl_ctx *ctx, uint32_t idx)
{
    const sl_host *h = ctx->host;
    entry *e = a->entries[idx];
    const void *v;
    size_t vlen;
    uint8_t flags;
    if (make_key(&a->dbkey, e, 1) != 0)
        return SL_ERROR;
    int r = h->kv_get(ctx, a->db, a->dbkey.data, a->dbkey.len, &v, &vlen);
    if (r < 0)
        return SL_ERROR;
    if (r == 0) {
        if (merge_value(a, e->acc, v, vlen, 1, &flags) != 0)
            return corrupt(ctx);
        e->has_base |= flags & F_BASE;
    }
    if (encode(a, e->acc, e->has_base ? F_BASE : 0, &a->dbval) != 0 ||
        h->kv_put(ctx, a->db, a->dbkey.data, a->dbkey.len, a->dbval.data, a->dbval.len) != 0)
        return SL_ERROR;
    agg_release(a, idx);
    a->spilled++;
    return SL_OK;
}

int agg_spill_open(aggregate *a, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    if (a->db)
        return SL_OK;
    a->db = h->kv_open(ctx, "");
    a->sessions_db = a->db ? h->kv_open(ctx, "sessions") : NULL;
    a->meta_db = a->sessions_db ? h->kv_open(ctx, "meta") : NULL;
    return a->meta_db ? SL_OK : SL_ERROR;
}

int agg_spill_reset(aggregate *a, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    if (h->kv_clear(ctx, a->db) != 0 || h->kv_clear(ctx, a->sessions_db) != 0 ||
        h->kv_clear(ctx, a->meta_db) != 0) {
        h->kv_abort(ctx);
        return SL_ERROR;
    }
    a->db_any = 0;
    return h->kv_commit(ctx) == 0 ? SL_OK : SL_ERROR;
}

/* ------------------------------------------------------------ eviction */

static int by_key(const void *x, const void *y, void *arg)
{
    aggregate *a = arg;
    const entry *p = a->entries[*(const uint32_t *)x], *q = a->entries[*(const uint32_t *)y];
    if (p->end != q->end)
        return p->end < q->end ? -1 : 1;
    if (p->spec != q->spec || p->set != q->set)
        return p->spec != q->spec ? (p->spec < q->spec ? -1 : 1) : (p->set < q->set ? -1 : 1);
    if (p->start != q->start)
        return p->start < q->start ? -1 : 1;
    size_t n = p->key_len < q->key_len ? p->key_len : q->key_len;
    int c = n ? memcmp(p->key, q->key, n) : 0;
    return c ? c : (p->key_len > q->key_len) - (p->key_len < q->key_len);
}

/* Whether e may leave memory now. */
static int evictable(const aggregate *a, const entry *e)
{
    /* sessions never spill; a dirty or assumed entry is resolved at the batch's end; an
     * unfired window at or before fired_upto fires at the next watermark from memory */
    return !a->specs[e->spec].session && !e->dirty && !e->assumed &&
           (e->fired || e->end > a->fired_upto);
}

static int spill_all(aggregate *a, sl_ctx *ctx, uint32_t *v, size_t n)
{
    qsort_r(v, n, sizeof *v, by_key, a); /* LMDB likes its keys in order */
    for (size_t i = 0; i < n; i++)
        if (spill_one(a, ctx, v[i]) != SL_OK)
            return SL_ERROR;
    a->db_any = 1;
    return SL_OK;
}

int agg_spill_evict(aggregate *a, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    uint64_t target = a->budget / 4 * 3, freed = 0;
    size_t n = 0;
    uint32_t *v = malloc((a->live ? a->live : 1) * sizeof *v);
    if (!v)
        return SL_ERROR;
    /* the clock: a window touched since the hand last passed gets another round */
    for (size_t steps = 0; steps < 2 * a->n_entries && a->mem - freed > target; steps++) {
        size_t i = a->clock++ % a->n_entries;
        entry *e = a->entries[i];
        if (!e || !evictable(a, e))
            continue;
        if (e->ref) {
            e->ref = 0;
            continue;
        }
        e->ref = 1; /* taken: a second pass of the hand must not take it again */
        v[n++] = (uint32_t)i;
        freed += e->mem;
    }
    int rc = SL_OK;
    if (n) {
        if (h->kv_begin(ctx, 1) != 0) {
            free(v);
            return SL_ERROR;
        }
        rc = spill_all(a, ctx, v, n);
        if (rc == SL_OK)
            rc = h->kv_commit(ctx) == 0 ? SL_OK : SL_ERROR;
        else
            h->kv_abort(ctx);
        a->evictions++;
    }
    free(v);
    return rc;
}

int agg_spill_promote(aggregate *a, sl_ctx *ctx, const uint32_t *idx, size_t n)
{
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    for (size_t i = 0; i < n; i++) {
        entry *e = a->entries[idx[i]];
        if (!e || !e->dirty || a->specs[e->spec].session)
            continue;
        int found;
        if (fold(a, ctx, e, &found) != SL_OK) {
            h->kv_abort(ctx);
            return SL_ERROR;
        }
        if (e->assumed && !found) { /* never fired: it will, at the next watermark */
            e->fired = 0;
            e->dirty = 0;
        }
        e->assumed = 0;
    }
    return h->kv_commit(ctx) == 0 ? SL_OK : SL_ERROR;
}

/* -------------------------------------------------------------- firing */

/* A scan that groups a window's base and spilled records (adjacent: same prefix). */
typedef struct group_scan {
    aggregate *a;
    sl_ctx *ctx;
    int64_t limit;       /* windows ending after this stop the scan */
    sl_wbuf prefix;      /* the current group's key without the tag */
    sl_wbuf base, spill; /* its values, copied (records may be deleted under us) */
    int has_base, has_spill, open;
    sl_wbuf resume;      /* where the next transaction goes on; empty: the scan ended */
    size_t groups, max_groups;
    int failed;
    int (*on_group)(struct group_scan *g); /* at the end of a group */
    int (*on_record)(struct group_scan *g, uint8_t tag); /* SL_KV_DELETE or 0 */
    /* fire */
    entry *mem;          /* the window's memory entry, if any */
    entry **out;         /* windows only LMDB held, to emit after the commit */
    size_t n_out;
    /* snapshot: new base records, put after the scan (not under its cursor) */
    sl_wbuf puts;        /* (u32 key length, key, u32 value length, value)... */
    int (*before_commit)(struct group_scan *g);
    int in_txn;          /* the caller's transaction: one pass, no commit */
} group_scan;

static int end_group(group_scan *g)
{
    if (!g->open)
        return 0;
    g->open = 0;
    g->groups++;
    return g->on_group(g);
}

static int visit_group(void *arg, const void *kp, size_t klen, const void *v, size_t vlen)
{
    group_scan *g = arg;
    const uint8_t *k = kp;
    if (klen < HEAD + 1 || get64(k) > g->limit) {
        g->failed |= end_group(g) != 0;
        sl_wbuf_reset(&g->resume);
        return SL_KV_STOP;
    }
    size_t plen = klen - 1;
    if (!g->open || plen != g->prefix.len || memcmp(g->prefix.data, k, plen) != 0) {
        if (end_group(g) != 0) {
            g->failed = 1;
            return SL_KV_STOP;
        }
        if (g->groups >= g->max_groups) { /* this transaction did enough: resume here */
            sl_wbuf_reset(&g->resume);
            g->failed |= sl_wbuf_append(&g->resume, k, klen) != 0;
            return SL_KV_STOP;
        }
        sl_wbuf_reset(&g->prefix);
        g->failed |= sl_wbuf_append(&g->prefix, k, plen) != 0;
        g->open = 1;
        g->has_base = g->has_spill = 0;
        g->mem = NULL;
    }
    uint8_t tag = k[plen];
    sl_wbuf *dst = tag == 0 ? &g->base : &g->spill;
    sl_wbuf_reset(dst);
    g->failed |= sl_wbuf_append(dst, v, vlen) != 0;
    *(tag == 0 ? &g->has_base : &g->has_spill) = 1;
    int r = g->on_record ? g->on_record(g, tag) : 0;
    return g->failed ? SL_KV_STOP : r;
}

/* Run a grouped scan over [from, limit] in transactions of max_groups windows each;
 * after_commit (may be NULL) runs after each. */
static int scan_groups(group_scan *g, const uint8_t *from, size_t flen,
                       int (*after_commit)(group_scan *g))
{
    const sl_host *h = g->ctx->host;
    sl_wbuf_reset(&g->resume);
    if (flen && sl_wbuf_append(&g->resume, from, flen) != 0)
        return SL_ERROR;
    int first = 1, rc = SL_OK;
    while (rc == SL_OK && (first || g->resume.len)) {
        int whole = first && !flen;
        first = 0;
        g->groups = 0;
        g->open = 0;
        if (!g->in_txn && h->kv_begin(g->ctx, 1) != 0)
            return SL_ERROR;
        sl_wbuf start = g->resume; /* the scan rewrites resume: keep the start apart */
        g->resume = (sl_wbuf){0};
        int scan = h->kv_scan(g->ctx, g->a->db, whole ? NULL : start.data, whole ? 0 : start.len,
                              visit_group, g);
        sl_wbuf_fini(&start);
        if (scan == 0 && g->open) { /* the records ran out before the limit */
            g->failed |= end_group(g) != 0;
            sl_wbuf_reset(&g->resume);
        }
        if (scan == 0 && !g->failed && g->before_commit && g->before_commit(g) != 0)
            g->failed = 1;
        if (g->in_txn)
            return scan != 0 || g->failed || g->resume.len ? SL_ERROR : SL_OK;
        if (scan != 0 || g->failed) {
            h->kv_abort(g->ctx);
            return SL_ERROR;
        }
        if (h->kv_commit(g->ctx) != 0)
            return SL_ERROR;
        if (after_commit)
            rc = after_commit(g);
    }
    return rc;
}

static void group_fini(group_scan *g)
{
    sl_wbuf_fini(&g->prefix);
    sl_wbuf_fini(&g->base);
    sl_wbuf_fini(&g->spill);
    sl_wbuf_fini(&g->resume);
    sl_wbuf_fini(&g->puts);
    for (size_t i = 0; i < g->n_out; i++) {
        for (size_t c = 0; c < g->a->n_comp; c++)
            agg_acc_fini(&g->a->comp[c], &g->out[i]->acc[c]);
        free(g->out[i]);
    }
    free(g->out);
}

/* The memory entry of the window whose key prefix is p, if any. */
static entry *mem_entry(aggregate *a, const uint8_t *p, size_t plen)
{
    uint32_t idx;
    return agg_find(a, p[8], p[9], get64(p + 10), p + HEAD, plen - HEAD, &idx);
}

static int fire_record(group_scan *g, uint8_t tag)
{
    aggregate *a = g->a;
    if (tag == 0) /* base records stay until the next snapshot */
        return 0;
    if (!g->mem)
        g->mem = mem_entry(a, g->prefix.data, g->prefix.len);
    /* folded into memory, or past its lateness: the spilled record goes */
    return g->mem || get64(g->prefix.data) <= a->wm - a->lateness ? SL_KV_DELETE : 0;
}

/* A window's full result from the scanned records: spilled, and base unless already in. */
static int fold_records(group_scan *g, agg_acc *acc, uint8_t *has_base)
{
    return merge_parts(g->a, acc, has_base, g->has_spill ? g->spill.data : NULL, g->spill.len,
                       g->has_base ? g->base.data : NULL, g->base.len);
}

static int fire_group(group_scan *g)
{
    aggregate *a = g->a;
    const uint8_t *p = g->prefix.data;
    if (!g->mem)
        g->mem = mem_entry(a, p, g->prefix.len);
    if (g->mem) { /* it fires from memory (the heap), LMDB's part folded in */
        if (fold_records(g, g->mem->acc, &g->mem->has_base) != 0)
            return corrupt(g->ctx);
        agg_account(a, g->mem);
        return 0;
    }
    size_t klen = g->prefix.len - HEAD;
    entry *e = calloc(1, sizeof *e + a->n_comp * sizeof(agg_acc) + klen);
    entry **out = realloc(g->out, (g->n_out + 1) * sizeof *out);
    if (out)
        g->out = out;
    if (!e || !out) {
        free(e);
        return -1;
    }
    e->spec = p[8];
    e->set = p[9];
    e->end = get64(p);
    e->start = get64(p + 10);
    e->key = (uint8_t *)(e->acc + a->n_comp);
    e->key_len = (uint32_t)klen;
    memcpy(e->key, p + HEAD, klen);
    g->out[g->n_out++] = e;
    return fold_records(g, e->acc, &e->has_base) == 0 ? 0 : corrupt(g->ctx);
}

static int emit_fired(group_scan *g)
{
    int rc = SL_OK;
    for (size_t i = 0; i < g->n_out; i++) {
        if (rc == SL_OK)
            rc = agg_emit_entry(g->a, g->ctx, g->out[i], 0);
        for (size_t c = 0; c < g->a->n_comp; c++)
            agg_acc_fini(&g->a->comp[c], &g->out[i]->acc[c]);
        free(g->out[i]);
    }
    g->n_out = 0;
    return rc;
}

static int purge_record(group_scan *g, uint8_t tag) { return tag == 1 ? SL_KV_DELETE : 0; }
static int no_group(group_scan *g) { return 0; }

int agg_spill_fire(aggregate *a, sl_ctx *ctx, int64_t wm)
{
    uint8_t from[8];
    group_scan g = {.a = a, .ctx = ctx, .limit = wm, .max_groups = FIRE_CHUNK,
                    .on_group = fire_group, .on_record = fire_record};
    int first = a->fired_upto == INT64_MIN;
    put64(from, first ? INT64_MIN : a->fired_upto + 1);
    int rc = scan_groups(&g, from, sizeof from, emit_fired);
    group_fini(&g);
    if (rc != SL_OK || a->lateness == 0 || wm - a->lateness <= a->purged_upto)
        return rc;
    /* spilled partials of windows past their lateness */
    group_scan p = {.a = a, .ctx = ctx, .limit = wm - a->lateness, .max_groups = SIZE_MAX,
                    .on_group = no_group, .on_record = purge_record};
    put64(from, a->purged_upto == INT64_MIN ? INT64_MIN : a->purged_upto + 1);
    rc = scan_groups(&p, from, sizeof from, NULL);
    group_fini(&p);
    a->purged_upto = wm - a->lateness;
    return rc;
}

/* ------------------------------------------------- snapshot and restore */

typedef struct meta {
    uint64_t id, fingerprint;
    int64_t wm, fired_upto, purged_upto;
} meta;

/* Changes when what the stored state means changes (windows, sets, computes). */
static uint64_t fingerprint(const aggregate *a)
{
    uint64_t f = 1469598103934665603ull;
#define MIX(x) (f = (f ^ (uint64_t)(x)) * 1099511628211ull)
#define MIX_TEXT(s) MIX(sl_hash_bytes((s) ? (s) : "", (s) ? strlen(s) : 0))
    MIX(a->n_specs);
    for (size_t i = 0; i < a->n_specs; i++) {
        MIX(a->specs[i].size);
        MIX(a->specs[i].every);
        MIX(a->specs[i].session);
    }
    MIX(a->n_sets);
    for (size_t i = 0; i < a->n_sets; i++) {
        MIX(a->sets[i].n_keys);
        for (size_t k = 0; k < a->sets[i].n_keys; k++)
            MIX_TEXT(a->sets[i].texts[k]);
    }
    MIX(a->n_comp);
    for (size_t i = 0; i < a->n_comp; i++) {
        MIX(a->comp[i].fn);
        MIX(a->comp[i].q * 1e9);
        MIX_TEXT(a->comp[i].text);
    }
#undef MIX_TEXT
#undef MIX
    return f;
}

/* Snapshot: fold each window's spilled partial into its base, drop the dead ones. */
static int snap_record(group_scan *g, uint8_t tag)
{
    if (get64(g->prefix.data) <= g->a->wm - g->a->lateness && g->a->wm != INT64_MIN)
        return SL_KV_DELETE; /* past its lateness: gone */
    return tag == 1 ? SL_KV_DELETE : 0;
}

static int append_blob(sl_wbuf *w, const void *p, size_t n)
{
    uint32_t len = (uint32_t)n;
    return sl_wbuf_append(w, &len, sizeof len) | sl_wbuf_append(w, p, n);
}

static int snap_group(group_scan *g)
{
    aggregate *a = g->a;
    if (!g->has_spill || (get64(g->prefix.data) <= a->wm - a->lateness && a->wm != INT64_MIN))
        return 0;
    agg_acc acc[AGG_MAX_COMPUTES];
    for (size_t c = 0; c < a->n_comp; c++)
        agg_acc_init(&a->comp[c], &acc[c]);
    uint8_t has_base = 0;
    int rc = fold_records(g, acc, &has_base) != 0 ? corrupt(g->ctx) : 0;
    sl_wbuf_reset(&a->dbkey);
    if (rc == 0 && (sl_wbuf_append(&a->dbkey, g->prefix.data, g->prefix.len) != 0 ||
                    sl_wbuf_append(&a->dbkey, "", 1) != 0 || encode(a, acc, F_BASE, &a->dbval) != 0 ||
                    append_blob(&g->puts, a->dbkey.data, a->dbkey.len) != 0 ||
                    append_blob(&g->puts, a->dbval.data, a->dbval.len) != 0))
        rc = -1;
    for (size_t c = 0; c < a->n_comp; c++)
        agg_acc_fini(&a->comp[c], &acc[c]);
    return rc;
}

static int snap_puts(group_scan *g)
{
    const uint8_t *p = g->puts.data, *end = p + g->puts.len;
    while (p < end) {
        uint32_t kl, vl;
        memcpy(&kl, p, 4);
        const uint8_t *k = p + 4;
        memcpy(&vl, k + kl, 4);
        const uint8_t *v = k + kl + 4;
        if (g->ctx->host->kv_put(g->ctx, g->a->db, k, kl, v, vl) != 0)
            return -1;
        p = v + vl;
    }
    sl_wbuf_reset(&g->puts);
    return 0;
}

static int put_sessions(aggregate *a, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    if (h->kv_clear(ctx, a->sessions_db) != 0)
        return SL_ERROR;
    for (size_t i = 0; i < a->n_entries; i++) {
        entry *e = a->entries[i];
        if (!e || !a->specs[e->spec].session)
            continue;
        /* key: the window key with its index, so that equal ones stay apart */
        if (make_key(&a->dbkey, e, 0) != 0 || sl_wbuf_append(&a->dbkey, &i, sizeof i) != 0 ||
            encode(a, e->acc, e->fired, &a->dbval) != 0 ||
            h->kv_put(ctx, a->sessions_db, a->dbkey.data, a->dbkey.len, a->dbval.data,
                      a->dbval.len) != 0)
            return SL_ERROR;
    }
    return SL_OK;
}

/* Base records of windows past their lateness: a key range at the start (keys sort by end). */
static int drop_dead(void *arg, const void *kp, size_t klen, const void *v, size_t vlen)
{
    const aggregate *a = arg;
    if (klen < HEAD || a->wm == INT64_MIN || get64(kp) > a->wm - a->lateness)
        return SL_KV_STOP;
    return SL_KV_DELETE;
}

/*
 * Nothing was spilled since the last snapshot, so LMDB holds base records only:
 * each window changed since then becomes its new base (its old base merged in
 * first if memory does not have it yet) and stays in memory. Costs what changed.
 */
static int snapshot_changed(aggregate *a, sl_ctx *ctx, uint32_t *v, size_t n)
{
    const sl_host *h = ctx->host;
    qsort_r(v, n, sizeof *v, by_key, a); /* LMDB likes its keys in order */
    for (size_t i = 0; i < n; i++) {
        entry *e = a->entries[v[i]];
        const void *base;
        size_t blen;
        if (!e->has_base) {
            int r = get_part(a, ctx, e, 0, &a->dbkey, &base, &blen);
            uint8_t flags;
            if (r < 0 || (r == 0 && merge_value(a, e->acc, base, blen, 1, &flags) != 0))
                return r < 0 ? SL_ERROR : corrupt(ctx);
            e->has_base = 1;
            agg_account(a, e);
        }
        if (make_key(&a->dbkey, e, 0) != 0 || encode(a, e->acc, F_BASE, &a->dbval) != 0 ||
            h->kv_put(ctx, a->db, a->dbkey.data, a->dbkey.len, a->dbval.data, a->dbval.len) != 0)
            return SL_ERROR;
        e->changed = 0;
    }
    /* Memory past half the budget: let the written windows go (their base has them), or the
     * next interval would spend its time evicting; below it, keep them for the next events. */
    if (a->mem > a->budget / 2)
        for (size_t i = 0; i < a->n_entries; i++) {
            const entry *e = a->entries[i];
            if (e && !a->specs[e->spec].session && e->has_base && !e->changed)
                agg_release(a, (uint32_t)i);
        }
    return h->kv_scan(ctx, a->db, NULL, 0, drop_dead, a) == 0 ? SL_OK : SL_ERROR;
}

/* Something was spilled since: every window in memory joins its spilled partial, then every
 * spilled partial is folded into its base (a pass over the stored windows). */
static int snapshot_all(aggregate *a, sl_ctx *ctx, uint32_t *v, size_t n)
{
    int rc = spill_all(a, ctx, v, n);
    group_scan g = {.a = a, .ctx = ctx, .limit = INT64_MAX, .max_groups = SIZE_MAX,
                    .on_group = snap_group, .on_record = snap_record, .before_commit = snap_puts,
                    .in_txn = 1};
    if (rc == SL_OK)
        rc = scan_groups(&g, NULL, 0, NULL);
    group_fini(&g);
    return rc;
}

int agg_spill_snapshot(aggregate *a, sl_ctx *ctx, uint64_t id)
{
    const sl_host *h = ctx->host;
    int fast = a->evictions == a->evictions_at_snap;
    size_t n = 0;
    uint32_t *v = malloc((a->live ? a->live : 1) * sizeof *v);
    if (!v)
        return SL_ERROR;
    for (size_t i = 0; i < a->n_entries; i++) {
        const entry *e = a->entries[i];
        if (e && !a->specs[e->spec].session && (!fast || e->changed))
            v[n++] = (uint32_t)i;
    }
    if (h->kv_begin(ctx, 1) != 0) {
        free(v);
        return SL_ERROR;
    }
    /* one transaction: the snapshot is all there or not at all */
    int64_t t0 = h->monotonic(ctx);
    int rc = fast ? snapshot_changed(a, ctx, v, n) : snapshot_all(a, ctx, v, n);
    h->log(ctx, SL_LOG_DEBUG, "snapshot %" PRIu64 ": %zu of %zu windows in memory written (%s) "
           "in %.1f ms", id, n, a->live, fast ? "changed ones" : "after a spill: all, and a pass "
           "over the stored ones", (double)(h->monotonic(ctx) - t0) / 1e6);
    free(v);
    if (rc != SL_OK) {
        h->kv_abort(ctx);
        return SL_ERROR;
    }
    meta m = {id, fingerprint(a), a->wm, a->fired_upto, a->purged_upto};
    if (put_sessions(a, ctx) != SL_OK ||
        h->kv_put(ctx, a->meta_db, "checkpoint", 10, &m, sizeof m) != 0) {
        h->kv_abort(ctx);
        return SL_ERROR;
    }
    a->db_any = h->kv_count(ctx, a->db) > 0;
    if (h->kv_commit(ctx) != 0 || h->kv_sync(ctx) != 0)
        return SL_ERROR;
    a->evictions_at_snap = a->evictions; /* no spilled partial is left */
    return SL_OK;
}

static int restore_session(void *arg, const void *kp, size_t klen, const void *v, size_t vlen)
{
    group_scan *g = arg; /* only a and ctx are used */
    aggregate *a = g->a;
    const uint8_t *k = kp;
    size_t glen = klen - HEAD - 1 - sizeof(size_t);
    uint32_t idx;
    entry *e = klen < HEAD + 1 + sizeof(size_t) || k[8] >= a->n_specs || k[9] >= a->n_sets
                   ? NULL
                   : agg_insert(a, k[8], k[9], get64(k + 10), get64(k), k + HEAD, glen, &idx);
    uint8_t flags;
    if (!e || merge_value(a, e->acc, v, vlen, 1, &flags) != 0) {
        g->failed = 1;
        return SL_KV_STOP;
    }
    e->fired = flags & 1;
    agg_account(a, e);
    if (e->fired && agg_heap_push(a, agg_due(a, e), idx) != 0)
        g->failed = 1;
    return g->failed ? SL_KV_STOP : 0;
}

static int drop_spilled(void *arg, const void *kp, size_t klen, const void *v, size_t vlen)
{
    return klen && ((const uint8_t *)kp)[klen - 1] == 1 ? SL_KV_DELETE : 0;
}

int agg_spill_restore(aggregate *a, sl_ctx *ctx, uint64_t id)
{
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    const void *v;
    size_t vlen;
    meta m;
    int r = h->kv_get(ctx, a->meta_db, "checkpoint", 10, &v, &vlen);
    if (r != 0 || vlen != sizeof m) {
        h->kv_abort(ctx);
        if (r >= 0)
            h->log(ctx, SL_LOG_ERROR, "state: no checkpoint %" PRIu64 " to restore", id);
        return SL_ERROR;
    }
    memcpy(&m, v, sizeof m);
    if (m.id != id || m.fingerprint != fingerprint(a)) {
        h->kv_abort(ctx);
        if (m.id != id)
            h->log(ctx, SL_LOG_ERROR, "state: holds checkpoint %" PRIu64 ", not %" PRIu64, m.id, id);
        else
            h->log(ctx, SL_LOG_ERROR, "state: the windows, grouping sets or computes changed "
                                      "since checkpoint %" PRIu64 "; its state cannot be used", id);
        return SL_ERROR;
    }
    group_scan g = {.a = a, .ctx = ctx};
    /* partials spilled after that checkpoint belong to a run that did not finish */
    if (h->kv_scan(ctx, a->db, NULL, 0, drop_spilled, NULL) != 0 ||
        h->kv_scan(ctx, a->sessions_db, NULL, 0, restore_session, &g) != 0 || g.failed) {
        h->kv_abort(ctx);
        return g.failed ? corrupt(ctx) : SL_ERROR;
    }
    a->wm = m.wm;
    a->fired_upto = m.fired_upto;
    a->purged_upto = m.purged_upto;
    a->db_any = h->kv_count(ctx, a->db) > 0;
    return h->kv_commit(ctx) == 0 ? SL_OK : SL_ERROR;
}
