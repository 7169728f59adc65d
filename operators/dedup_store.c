/*
 * dedup_store.c - the dedup operator's pending records (an arena in arrival
 * order indexed by an open-addressing table), their flushes into the current
 * generation's LMDB database, and exact lookups there (docs/dedup.md).
 */
#include "dedup.h"

/* -------------------------------------------------------- the pending table */

/*
 * Zeroed memory for the table and the arena; free with dedup_big_free(p, bytes). Big blocks come
 * straight from the kernel: their pages cost nothing until touched, so the arena is reserved
 * at its largest once and never copied. (Huge pages, MADV_HUGEPAGE, were measured slower:
 * docs/dedup.md.)
 */
static void *big_alloc(size_t bytes)
{
    if (bytes < MMAP_MIN)
        return calloc(1, bytes ? bytes : 1);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void dedup_big_free(void *p, size_t bytes)
{
    if (p && bytes < MMAP_MIN)
        free(p);
    else if (p)
        munmap(p, bytes);
}

/* Records a table of cap slots holds at most: 3/4 of them. */

/* Bytes of a table of cap slots: with the arena's, what `memory` counts. */
static inline uint64_t table_bytes(uint64_t cap) { return cap * sizeof(slot); }



/* The arena offset of key's pending record, or -1. */
int64_t dedup_pending_find(const dedup *d, uint64_t hash, const uint8_t *key, uint32_t len)
{
    if (!d->cap)
        return -1;
    for (uint32_t i = home(hash, d->cap);;) {
        const slot *s = &d->slots[i];
        if (!s->len)
            return -1;
        if (s->hash == hash && s->len == len &&
            memcmp(d->arena + s->off + REC_HEAD, key, len) == 0)
            return s->off;
        if (++i == d->cap)
            i = 0;
    }
}

/* Add a record (flags: 0 or REPLACES); make_room has made room for it. */
void dedup_pending_put(dedup *d, uint64_t hash, int64_t t, const uint8_t *key, uint32_t len,
                        uint32_t flags)
{
    uint32_t i = home(hash, d->cap), head = len | flags;
    while (d->slots[i].len)
        if (++i == d->cap)
            i = 0;
    d->slots[i] = (slot){hash, (uint32_t)d->arena_len, len};
    uint8_t *r = d->arena + d->arena_len;
    memcpy(r, &t, 8);
    memcpy(r + 8, &head, 4);
    memcpy(r + REC_HEAD, key, len);
    d->arena_len += REC_HEAD + len;
    d->used++;
}

static int table_resize(dedup *d, uint32_t cap)
{
    slot *ns = big_alloc((size_t)cap * sizeof *ns);
    if (!ns)
        return -1;
    for (uint32_t j = 0; j < d->cap; j++) {
        if (j + 8 < d->cap && d->slots[j + 8].len) /* the writes are random: start them early */
            __builtin_prefetch(&ns[home(d->slots[j + 8].hash, cap)], 1, 1);
        if (!d->slots[j].len)
            continue;
        uint32_t i = home(d->slots[j].hash, cap);
        while (ns[i].len)
            if (++i == cap)
                i = 0;
        ns[i] = d->slots[j];
    }
    dedup_big_free(d->slots, (size_t)d->cap * sizeof *d->slots);
    d->slots = ns;
    d->cap = cap;
    return 0;
}

/* The LMDB key of key into buf (KEY_LONG bytes); returns its length and where it is. */
static size_t db_key(uint8_t *buf, const uint8_t *key, uint32_t len, uint64_t hash,
                     const uint8_t **out)
{
    if (len <= KEY_INLINE) {
        *out = key;
        return len;
    }
    memcpy(buf, key, KEY_INLINE);
    for (int i = 0; i < 8; i++)
        buf[KEY_INLINE + i] = (uint8_t)(hash >> (56 - 8 * i));
    *out = buf;
    return KEY_LONG;
}

/* Bytes [from, from + 8) of key, zero-padded, as a big-endian number. */
static inline uint64_t be_bytes(const uint8_t *key, uint32_t len, uint32_t from)
{
    uint64_t v = 0;
    for (uint32_t i = from; i < from + 8; i++)
        v = v << 8 | (i < len ? key[i] : 0);
    return v;
}

/* Two records with the same `a`, in LMDB's order. */
static int by_whole_key(dedup *d, const rec *p, const rec *q)
{
    const uint8_t *ka = d->arena + p->off + REC_HEAD, *kb = d->arena + q->off + REC_HEAD;
    const uint8_t *a, *b;
    size_t la = db_key(d->cmp[0], ka, p->len, p->len > KEY_INLINE ? sl_hash_bytes(ka, p->len) : 0,
                       &a);
    size_t lb = db_key(d->cmp[1], kb, q->len, q->len > KEY_INLINE ? sl_hash_bytes(kb, q->len) : 0,
                       &b);
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

/*
 * LMDB's default order (bytewise, then shorter first). Every key of a flush starts with the
 * same bytes up to where `a` is taken, so `a` decides most pairs (zero padding agrees with
 * that order: a tie falls through to the whole keys).
 */
static inline int rec_cmp(dedup *d, const rec *p, const rec *q)
{
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    return by_whole_key(d, p, q);
}

static int by_db_key(const void *x, const void *y, void *arg) { return rec_cmp(arg, x, y); }

static inline void rec_swap(rec *x, rec *y)
{
    rec t = *x;
    *x = *y;
    *y = t;
}

/*
 * Sort v[0, n) by rec_cmp: quicksort (median of three, Hoare partition) with the compare
 * inlined, insertion sort for short runs, qsort_r (a merge sort in glibc) past a depth limit.
 * glibc's qsort_r alone took 40% of a flush: a call per compare and 32-byte copies.
 */
static void rec_sort(dedup *d, rec *v, size_t n, int depth)
{
    while (n > 16) {
        if (depth-- == 0) {
            qsort_r(v, n, sizeof *v, by_db_key, d);
            return;
        }
        rec *l = v, *m = v + n / 2, *r = v + n - 1;
        if (rec_cmp(d, m, l) < 0)
            rec_swap(m, l);
        if (rec_cmp(d, r, m) < 0) {
            rec_swap(r, m);
            if (rec_cmp(d, m, l) < 0)
                rec_swap(m, l);
        }
        rec pivot = *m;
        size_t i = 0, j = n - 1;
        for (;;) {
            while (rec_cmp(d, &v[i], &pivot) < 0)
                i++;
            while (rec_cmp(d, &pivot, &v[j]) < 0)
                j--;
            if (i >= j)
                break;
            rec_swap(&v[i++], &v[j--]);
        }
        /* [0, j] <= pivot <= [j + 1, n): recurse into the smaller side, loop on the other */
        size_t left = j + 1;
        if (left < n - left) {
            rec_sort(d, v, left, depth);
            v += left;
            n -= left;
        } else {
            rec_sort(d, v + left, n - left, depth);
            n = left;
        }
    }
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && rec_cmp(d, &v[k], &v[k - 1]) < 0; k--)
            rec_swap(&v[k], &v[k - 1]);
}

void dedup_end_read(dedup *d, sl_ctx *ctx)
{
    if (d->reading)
        ctx->host->kv_abort(ctx); /* read only: nothing to commit */
    d->reading = 0;
}

/*
 * Before a record of the current generation is replaced: if the stored one belongs to a
 * checkpoint (an earlier epoch), keep it in "undo" (the first one only), for a restore of
 * that checkpoint to put back.
 */
static int save_undo(dedup *d, sl_ctx *ctx, const uint8_t *k, size_t kl)
{
    const sl_host *h = ctx->host;
    const void *v, *u;
    size_t vlen, ulen;
    uint32_t epoch;
    int r = h->kv_get(ctx, d->gens[d->order[d->n_live - 1]].db, k, kl, &v, &vlen);
    if (r != 0 || vlen < VAL_HEAD)
        return r < 0 ? SL_ERROR : SL_OK;
    memcpy(&epoch, (const uint8_t *)v + 8, 4);
    if (epoch >= d->epoch)
        return SL_OK;
    sl_wbuf_reset(&d->undo); /* key: slot, LMDB key; then the value (borrowed until a put) */
    uint8_t s = d->order[d->n_live - 1];
    if (sl_wbuf_append(&d->undo, &s, 1) != 0 || sl_wbuf_append(&d->undo, k, kl) != 0 ||
        sl_wbuf_append(&d->undo, v, vlen) != 0)
        return SL_ERROR;
    if ((r = h->kv_get(ctx, d->undo_db, d->undo.data, kl + 1, &u, &ulen)) != 1)
        return r == 0 ? SL_OK : SL_ERROR;
    return h->kv_put(ctx, d->undo_db, d->undo.data, kl + 1, d->undo.data + kl + 1, vlen) == 0
               ? SL_OK
               : SL_ERROR;
}

/*
 * Write the pending records into the current generation's database in key order, inside
 * the caller's write transaction (committed and begun again every `chunk` records unless
 * chunk is 0), and empty the table. On failure the table is lost: the caller stops.
 */
int dedup_flush_in_txn(dedup *d, sl_ctx *ctx, uint32_t chunk)
{
    const sl_host *h = ctx->host;
    gen *g = &d->gens[d->order[d->n_live - 1]];
    uint32_t n = 0;
    if (!d->used)
        return SL_OK;
    rec *recs = (rec *)d->slots; /* the table is done with: the records go in its place */
    /* where the keys start to differ (ids share a prefix): `a` is taken from there, within
     * the first KEY_INLINE bytes, which a long key's LMDB key shares with it */
    uint32_t head, from = KEY_INLINE - 8;
    const uint8_t *first = d->arena + REC_HEAD;
    for (size_t off = 0; off < d->arena_len && from;) {
        memcpy(&head, d->arena + off + 8, 4);
        uint32_t len = head & OFF_MASK, i = 0;
        const uint8_t *key = d->arena + off + REC_HEAD;
        while (i < from && i < len && key[i] == first[i])
            i++;
        from = i;
        off += REC_HEAD + len;
    }
    int sorted = 1; /* (in arrival order: as often as not, already in key order) */
    for (size_t off = 0; off < d->arena_len;) {
        memcpy(&head, d->arena + off + 8, 4);
        uint32_t len = head & OFF_MASK;
        rec *r = &recs[n];
        *r = (rec){be_bytes(d->arena + off + REC_HEAD, len, from), (uint32_t)off, len};
        if (n++ && sorted && rec_cmp(d, r - 1, r) > 0)
            sorted = 0;
        off += REC_HEAD + len;
    }
    if (!sorted) /* LMDB likes its keys in order */
        rec_sort(d, recs, n, 64);
    uint8_t val[VAL_HEAD];
    memcpy(val + 8, &d->epoch, 4);
    for (uint32_t j = 0; j < n; j++) {
        const rec *r = &recs[j];
        const uint8_t *k, *key = d->arena + r->off + REC_HEAD;
        memcpy(&head, d->arena + r->off + 8, 4);
        int long_key = r->len > KEY_INLINE;
        size_t kl = db_key(d->dbkey, key, r->len, long_key ? sl_hash_bytes(key, r->len) : 0, &k);
        memcpy(val, d->arena + r->off, 8); /* the time */
        const void *v = val;
        size_t vl = VAL_HEAD;
        if (long_key) { /* the whole key goes in the value */
            sl_wbuf_reset(&d->dbval);
            if (sl_wbuf_append(&d->dbval, val, VAL_HEAD) != 0 ||
                sl_wbuf_append(&d->dbval, key, r->len) != 0)
                return SL_ERROR;
            v = d->dbval.data;
            vl = d->dbval.len;
        }
        if ((head & REPLACES) && save_undo(d, ctx, k, kl) != SL_OK)
            return SL_ERROR;
        if (h->kv_put(ctx, g->db, k, kl, v, vl) != 0)
            return SL_ERROR;
        if (chunk && (j + 1) % chunk == 0 && j + 1 < n &&
            (h->kv_commit(ctx) != 0 || h->kv_begin(ctx, 1) != 0))
            return SL_ERROR;
    }
    g->stored += n;
    if (d->cap)
        memset(d->slots, 0, (size_t)d->cap * sizeof *d->slots);
    d->used = 0;
    d->arena_len = 0;
    d->c.flushes += n > 0;
    return SL_OK;
}

int dedup_flush(dedup *d, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    dedup_end_read(d, ctx);
    if (!d->used)
        return SL_OK;
    if (h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    if (dedup_flush_in_txn(d, ctx, FLUSH_CHUNK) != SL_OK) {
        h->kv_abort(ctx);
        return SL_ERROR;
    }
    return h->kv_commit(ctx) == 0 ? SL_OK : SL_ERROR;
}

/*
 * The table size to grow to: double, but no more than `memory` holds at the mean key length
 * so far (at 3/4 load a record costs 4/3 slots and its arena bytes), so that
 * the table and the arena fill up about together.
 */
static uint64_t table_target(const dedup *d)
{
    uint64_t n = (uint64_t)d->cap * 2;
    if (d->used) {
        double mean = (double)d->arena_len / d->used; /* header and key */
        double per_slot = (double)sizeof(slot) + 0.75 * mean;
        uint64_t fit = (uint64_t)((double)d->budget / per_slot);
        if (n > fit)
            n = fit;
    }
    if (n > UINT32_MAX / 2)
        n = UINT32_MAX / 2;
    return n > d->cap ? n : d->cap;
}

/*
 * The first table: room for `capacity` keys if `memory` holds them at 16 bytes a key, so
 * that a well-sized dedup never rehashes (a rehash of millions of records costs more than
 * the inserts did).
 */
static uint64_t table_first(const dedup *d)
{
    uint64_t want = d->capacity + d->capacity / 3 + MIN_SLOTS;
    uint64_t fit = (uint64_t)((double)d->budget / (sizeof(slot) + 0.75 * (REC_HEAD + 16.0)));
    uint64_t n = want < fit ? want : fit;
    if (n > UINT32_MAX / 2)
        n = UINT32_MAX / 2;
    return n > MIN_SLOTS ? n : MIN_SLOTS;
}

/*
 * Room for one more record of len key bytes: grow the table while it and the arena's bytes
 * fit in `memory`, else write the pending records out (a single record always gets room).
 */
int dedup_make_room(dedup *d, sl_ctx *ctx, uint32_t len)
{
    if (!d->arena) { /* reserved once at its largest: pages are used only as it fills */
        d->arena_cap = d->budget < (uint64_t)OFF_MASK + 1 ? d->budget : (uint64_t)OFF_MASK + 1;
        if (d->arena_cap < MIN_ARENA)
            d->arena_cap = MIN_ARENA;
        if (!(d->arena = big_alloc(d->arena_cap)))
            goto oom;
    }
    int table_full = d->used + 1 > max_used(d->cap);
    uint64_t ncap = d->cap, need = d->arena_len + REC_HEAD + len;
    if (!table_full && table_bytes(d->cap) + need <= d->budget && need <= d->arena_cap)
        return SL_OK;
    if (table_full) {
        ncap = d->cap ? table_target(d) : table_first(d);
        if (d->used + 1 > max_used(ncap) || (d->used && table_bytes(ncap) + need > d->budget))
            ncap = d->cap; /* cannot grow */
    }
    if (d->used && ((table_full && ncap == d->cap) || table_bytes(ncap) + need > d->budget ||
                    need > d->arena_cap)) {
        if (dedup_flush(d, ctx) != SL_OK) /* over the budget: out to LMDB */
            return SL_ERROR;
        ncap = d->cap; /* empty now: the table has room (cap >= MIN_SLOTS) */
    }
    if (ncap != d->cap && table_resize(d, (uint32_t)ncap) != 0)
        goto oom;
    if (d->arena_len + REC_HEAD + len > d->arena_cap) { /* a key longer than the arena */
        uint8_t *a = big_alloc(REC_HEAD + len);
        if (!a)
            goto oom;
        dedup_big_free(d->arena, d->arena_cap);
        d->arena = a;
        d->arena_cap = REC_HEAD + len;
    }
    return SL_OK;
oom:
    ctx->host->log(ctx, SL_LOG_ERROR, "out of memory for the table of new keys");
    return SL_ERROR;
}

/* ---------------------------------------------------------------- lookups */

/* Read the time of a stored value (and check a long key). 1 found, 0 not this key, -1 bad. */
static int read_value(const uint8_t *v, size_t vlen, const uint8_t *key, uint32_t len,
                      int64_t *t0)
{
    if (vlen < VAL_HEAD)
        return -1;
    if (len > KEY_INLINE && (vlen - VAL_HEAD != len || memcmp(v + VAL_HEAD, key, len) != 0))
        return 0; /* another long key with the same prefix and hash: new, never dropped */
    memcpy(t0, v, 8);
    return 1;
}

/* Key's record in g's database: 1 found (*t0), 0 none, -1 error. */
int dedup_stored_find(dedup *d, sl_ctx *ctx, gen *g, const uint8_t *key, uint32_t len,
                       uint64_t hash, int64_t *t0)
{
    const sl_host *h = ctx->host;
    if (!g->stored)
        return 0;
    if (!d->reading) {
        if (h->kv_begin(ctx, 0) != 0)
            return -1;
        d->reading = 1;
    }
    d->c.lookups++;
    const uint8_t *k;
    size_t kl = db_key(d->dbkey, key, len, hash, &k);
    const void *v;
    size_t vlen;
    int r = h->kv_get(ctx, g->db, k, kl, &v, &vlen);
    if (r != 0)
        return r == 1 ? 0 : -1;
    r = read_value(v, vlen, key, len, t0);
    if (r < 0)
        h->log(ctx, SL_LOG_ERROR, "state: a stored record does not decode");
    return r;
}

