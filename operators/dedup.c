/*
 * dedup.c - `dedup`: let the first event of each key through; later events with the same
 * key within `horizon` (event time) leave by `duplicates`.
 *
 *   key: id                 an expression; keys compare by their msgpack bytes
 *   capacity: 1000000       distinct keys expected within one horizon
 *   error_rate: 0.01        bloom filter false-positive rate at capacity
 *   horizon: 24h            how long a key is remembered, in event time
 *   memory: 64MiB           new keys held in memory before they go to LMDB
 *
 * Rule: an event with key k and time t (its `time`, else the wall clock at arrival) is a
 * duplicate iff an earlier event with key k passed at a time t0 with t - t0 <= horizon (t0
 * after t counts as within). Otherwise it passes and k -> t is recorded. The events of a
 * key that pass are more than a horizon apart, so the latest record of k decides alone.
 *
 * State: a ring of up to N_LIVE generations, each a bloom filter (engine/bloom.h) and an
 * LMDB database "g<slot>" of key -> (time, epoch). New records go to the current generation:
 * first to memory (the pending records: an arena in arrival order, indexed by an
 * open-addressing table of hashes; no allocation per event), written to the generation's
 * database in key order, in one transaction, when they outgrow `memory`, at rotation and at
 * a snapshot.
 * A lookup asks the live generations newest first; a bloom "no" is final, a "maybe" is
 * confirmed exactly (pending table, then the database), so a false positive costs a lookup
 * and never drops a new event. The first record found decides.
 *
 * Ageing, driven by the watermark: the current generation is closed (flushed; a new one
 * opens) once the watermark is horizon/2 past its opening, and a closed one is dropped
 * (bloom cleared) once watermark - horizon > the latest time it holds: no event at or after
 * the watermark can match it. Without watermarks nothing ages out. A late event whose
 * original aged out passes.
 *
 * Checkpoints: a snapshot writes the pending records and a meta record in one transaction;
 * records carry the epoch they were written in (a snapshot starts a new one). So that a
 * restore puts back exactly what the checkpoint held, whatever the run after it did, a
 * restore deletes records of later epochs, a dropped generation's database is emptied only
 * at the next snapshot (or when its slot is needed again: N_SLOTS > N_LIVE), and a record
 * replaced in place after a checkpoint is first copied to the "undo" database.
 *
 * Per batch: every key is evaluated and hashed first; then events are decided in order,
 * the bloom blocks and table slot of the event AHEAD places on prefetched (a duplicate
 * inside the batch is caught: records go to memory at once); an LMDB read transaction is
 * open only while deciding; emits come last, with no transaction open. docs/dedup.md has
 * the reasoning and the numbers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bloom.h"
#include "sluice/operator.h"
#include "timefmt.h"

#define N_LIVE 4  /* generations in the ring at most */
#define N_SLOTS 6 /* databases g0..g5: the ring, and dropped ones kept until the next snapshot */
#define KEY_INLINE 440 /* keys up to this many bytes are their own LMDB key */
#define KEY_LONG 448   /* longer ones: their first KEY_INLINE bytes + 8 bytes of hash */
#define VAL_HEAD 12    /* a value: time (8 bytes), epoch (4), then a long key's full bytes */
#define MIN_SLOTS 16
#define MIN_ARENA 1024
#define AHEAD 8 /* events between a prefetch and the decision that uses it */
#define FLUSH_CHUNK 4096 /* records per write transaction of a flush (docs/dedup.md) */
#define MMAP_MIN (2u << 20) /* blocks this big come straight from the kernel (big_alloc) */
#define REC_HEAD 12 /* a pending record: time (8 bytes), key length | REPLACES (4), the key */
#define REPLACES 0x80000000u /* in a record's length: it replaces a stored record */
#define OFF_MASK 0x7fffffffu /* the arena offset */

/* A key no msgpack value starts with (0xc1 is unused): a database's generation number. */
static const uint8_t marker[1] = {0xc1};

static const sl_param params[] = {
    {"key", SL_PARAM_EXPR, "id", 0, "what makes two events the same (an expression)", NULL},
    {"capacity", SL_PARAM_INT, "1000000", 0, "distinct keys expected within one horizon", NULL},
    {"error_rate", SL_PARAM_DOUBLE, "0.01", 0,
     "bloom filter false-positive rate at capacity, in (0, 0.5]", NULL},
    {"horizon", SL_PARAM_DURATION, "24h", 0, "how long a key is remembered (event time)", NULL},
    {"memory", SL_PARAM_SIZE, "64MiB", 0,
     "new keys held in memory before they are written to LMDB under state_dir", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "duplicates", "errors", NULL};

/*
 * The pending records live in the arena in arrival order (REC_HEAD, then the key); the table
 * indexes them by hash. A flush walks the arena in order (no random access), and keys that
 * grow with time (sequence numbers, ULIDs, the generator's ids) are then already in LMDB's
 * order: no sort.
 */

/* A slot of the pending table; len 0: free. */
typedef struct slot {
    uint64_t hash;
    uint32_t off, len; /* the record's offset in the arena, its key's length */
} slot;

/*
 * A pending record as a flush sorts it, written over the table (no longer needed then): `a`,
 * 8 bytes of its key big-endian from where the flush's keys start to differ, decides most
 * comparisons.
 */
typedef struct rec {
    uint64_t a;
    uint32_t off, len; /* the record's offset in the arena, its key's length */
} rec;
_Static_assert(sizeof(rec) <= sizeof(slot), "a flush sorts its records in the table's place");

enum { G_FREE, G_LIVE, G_RETIRED }; /* retired: dropped, its database kept until a snapshot */

typedef struct gen {
    sl_bloom bloom;   /* allocated on first use of the slot, kept (cleared) after */
    sl_kv *db;        /* "g<slot>" */
    int state;
    uint64_t seq;     /* the generation's number (its database's marker record) */
    int64_t opened;   /* watermark when it opened; INT64_MIN: none seen yet */
    int64_t max_time; /* latest record time; INT64_MIN: no record */
    uint64_t records; /* keys recorded in it */
    uint64_t stored;  /* records written to db (nonzero: lookups go there too) */
} gen;

enum { ST_PASS, ST_DUP, ST_ERR };

/* What phase 1 learns about event i of a batch, and phase 2 decides. */
typedef struct ev_info {
    uint64_t hash;
    int64_t t, t0;     /* its time; a duplicate's first time */
    uint32_t off, len; /* its key in d->keys */
    int status;
} ev_info;

typedef struct counts {
    uint64_t events, dups, checks, hits, fps, lookups, expired, dropped, rotations, flushes,
        key_errors, reclaimed;
} counts;

typedef struct dedup {
    const sl_expr *key;
    const char *key_text;
    uint64_t capacity, budget;
    double error_rate;
    int64_t horizon;
    int dup_port, err_port;

    gen gens[N_SLOTS];
    uint8_t order[N_LIVE]; /* live slots, oldest first; the last is the current one */
    uint32_t n_live;
    sl_kv *meta_db, *undo_db;
    uint64_t next_seq;
    int64_t wm;
    uint32_t epoch;        /* records written now carry it; a snapshot moves it on */
    int restored, warned_full, warned_capacity;

    slot *slots;           /* the pending table, of the current generation */
    uint32_t cap, used;
    uint8_t *arena;
    size_t arena_len, arena_cap;

    ev_info *ev;
    size_t ev_cap;
    sl_wbuf keys;          /* the batch's keys, back to back */
    sl_wbuf extra;         /* a duplicate's {first_time: t0} */
    uint8_t dbkey[KEY_LONG], cmp[2][KEY_LONG];
    sl_wbuf dbval, undo;
    int reading;           /* an LMDB read transaction is open */
    counts c, sent;        /* totals; what host->count has been given */
} dedup;

/* ------------------------------------------------------------------ setup */

static int dedup_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    dedup *d = calloc(1, sizeof *d);
    if (!d)
        return SL_ERROR;
    *state = d;
    d->wm = INT64_MIN;
    d->dup_port = h->port(ctx, "duplicates");
    d->err_port = h->port(ctx, "errors");
    const sl_node *key = h->param(ctx, "key"), *cap = h->param(ctx, "capacity");
    const sl_node *err = h->param(ctx, "error_rate"), *hor = h->param(ctx, "horizon");
    const sl_node *mem = h->param(ctx, "memory");
    int64_t capacity;
    int bad = !(d->key = h->expr_compile(ctx, key, NULL, NULL));
    d->key_text = h->node_str(key);
    if (h->node_int(cap, &capacity) != 0 || capacity < 1) {
        h->config_error(ctx, cap, "'capacity' must be a whole number of keys, at least 1");
        bad = 1;
    }
    d->capacity = capacity > 0 ? (uint64_t)capacity : 1;
    if (h->node_double(err, &d->error_rate) != 0 || !(d->error_rate > 0) ||
        d->error_rate > 0.5) {
        h->config_error(ctx, err, "'error_rate' must be a number in (0, 0.5], e.g. 0.01");
        bad = 1;
    }
    if (h->node_duration(hor, &d->horizon) != 0 || d->horizon <= 0) {
        h->config_error(ctx, hor, "'horizon' must be a positive duration, e.g. 24h");
        bad = 1;
    }
    if (h->node_size(mem, &d->budget) != 0 || d->budget == 0) {
        h->config_error(ctx, mem, "'memory' must be a positive size, e.g. 64MiB");
        bad = 1;
    }
    uint32_t k;
    uint64_t nb;
    if (!bad && sl_bloom_size(d->capacity, d->error_rate, &k, &nb) != 0) {
        h->config_error(ctx, cap, "a bloom filter for %" PRIu64 " keys at error rate %g would "
                                  "exceed 256 GiB", d->capacity, d->error_rate);
        bad = 1;
    }
    return bad ? SL_ERROR : SL_OK;
}

static int open_dbs(dedup *d, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    if (d->meta_db)
        return SL_OK;
    for (int s = 0; s < N_SLOTS; s++) {
        char name[4] = {'g', (char)('0' + s), 0, 0};
        if (!(d->gens[s].db = h->kv_open(ctx, name)))
            return SL_ERROR;
    }
    if (!(d->undo_db = h->kv_open(ctx, "undo")))
        return SL_ERROR;
    return (d->meta_db = h->kv_open(ctx, "meta")) ? SL_OK : SL_ERROR;
}

/* Empty g's bloom filter (allocated on first use). */
static int bloom_ready(dedup *d, sl_ctx *ctx, gen *g)
{
    if (!g->bloom.blocks && sl_bloom_init(&g->bloom, d->capacity, d->error_rate) != 0) {
        ctx->host->log(ctx, SL_LOG_ERROR, "out of memory for a bloom filter of %" PRIu64
                                          " keys", d->capacity);
        return SL_ERROR;
    }
    sl_bloom_clear(&g->bloom);
    return SL_OK;
}

static void put_seq(uint8_t out[8], uint64_t seq) { memcpy(out, &seq, 8); }

/*
 * Make slot s a new, empty, live generation opened at watermark `opened` (inside the
 * caller's write transaction): its database emptied (a retired one's records go now) and
 * marked with a new generation number. Does not touch the ring.
 */
static int gen_open(dedup *d, sl_ctx *ctx, int s, int64_t opened)
{
    const sl_host *h = ctx->host;
    gen *g = &d->gens[s];
    uint8_t v[8];
    put_seq(v, ++d->next_seq);
    if (bloom_ready(d, ctx, g) != SL_OK || h->kv_clear(ctx, g->db) != 0 ||
        h->kv_put(ctx, g->db, marker, sizeof marker, v, sizeof v) != 0)
        return SL_ERROR;
    d->c.reclaimed += g->state == G_RETIRED;
    g->state = G_LIVE;
    g->seq = d->next_seq;
    g->opened = opened;
    g->max_time = INT64_MIN;
    g->records = g->stored = 0;
    return SL_OK;
}

static int dedup_start(void *state, sl_ctx *ctx)
{
    dedup *d = state;
    const sl_host *h = ctx->host;
    if (d->restored)
        return SL_OK;
    if (open_dbs(d, ctx) != SL_OK || h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    int bad = h->kv_clear(ctx, d->meta_db) != 0 || h->kv_clear(ctx, d->undo_db) != 0;
    for (int s = 0; s < N_SLOTS && !bad; s++)
        bad = h->kv_clear(ctx, d->gens[s].db) != 0;
    if (bad || gen_open(d, ctx, 0, INT64_MIN) != SL_OK) {
        h->kv_abort(ctx);
        return SL_ERROR;
    }
    d->epoch = 1;
    d->order[0] = 0;
    d->n_live = 1;
    return h->kv_commit(ctx) == 0 ? SL_OK : SL_ERROR;
}

/* -------------------------------------------------------- the pending table */

/*
 * Zeroed memory for the table and the arena; free with big_free(p, bytes). Big blocks come
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

static void big_free(void *p, size_t bytes)
{
    if (p && bytes < MMAP_MIN)
        free(p);
    else if (p)
        munmap(p, bytes);
}

/* Records a table of cap slots holds at most: 3/4 of them. */
static inline uint32_t max_used(uint64_t cap) { return (uint32_t)(cap * 3 / 4); }

/* Bytes of a table of cap slots: with the arena's, what `memory` counts. */
static inline uint64_t table_bytes(uint64_t cap) { return cap * sizeof(slot); }

static inline uint32_t home(uint64_t hash, uint32_t cap)
{
    return (uint32_t)(((hash & 0xffffffffu) * cap) >> 32);
}

static inline int64_t rec_time(const dedup *d, uint32_t off)
{
    int64_t t;
    memcpy(&t, d->arena + off, 8);
    return t;
}

/* The arena offset of key's pending record, or -1. */
static int64_t pending_find(const dedup *d, uint64_t hash, const uint8_t *key, uint32_t len)
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
static void pending_put(dedup *d, uint64_t hash, int64_t t, const uint8_t *key, uint32_t len,
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
    big_free(d->slots, (size_t)d->cap * sizeof *d->slots);
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
    size_t la = db_key(d->cmp[0], ka, p->len, p->len > KEY_INLINE ? sl_bloom_hash(ka, p->len) : 0,
                       &a);
    size_t lb = db_key(d->cmp[1], kb, q->len, q->len > KEY_INLINE ? sl_bloom_hash(kb, q->len) : 0,
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

static void end_read(dedup *d, sl_ctx *ctx)
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
static int flush_in_txn(dedup *d, sl_ctx *ctx, uint32_t chunk)
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
        size_t kl = db_key(d->dbkey, key, r->len, long_key ? sl_bloom_hash(key, r->len) : 0, &k);
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

static int flush(dedup *d, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    end_read(d, ctx);
    if (!d->used)
        return SL_OK;
    if (h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    if (flush_in_txn(d, ctx, FLUSH_CHUNK) != SL_OK) {
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
static int make_room(dedup *d, sl_ctx *ctx, uint32_t len)
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
        if (flush(d, ctx) != SL_OK) /* over the budget: out to LMDB */
            return SL_ERROR;
        ncap = d->cap; /* empty now: the table has room (cap >= MIN_SLOTS) */
    }
    if (ncap != d->cap && table_resize(d, (uint32_t)ncap) != 0)
        goto oom;
    if (d->arena_len + REC_HEAD + len > d->arena_cap) { /* a key longer than the arena */
        uint8_t *a = big_alloc(REC_HEAD + len);
        if (!a)
            goto oom;
        big_free(d->arena, d->arena_cap);
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
static int stored_find(dedup *d, sl_ctx *ctx, gen *g, const uint8_t *key, uint32_t len,
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

static inline int within(const dedup *d, int64_t t, int64_t t0)
{
    return t <= t0 || (uint64_t)t - (uint64_t)t0 <= (uint64_t)d->horizon;
}

/* Decide event e (phase 2): a duplicate, or a pass that is recorded now. */
static int decide(dedup *d, sl_ctx *ctx, ev_info *e)
{
    const uint8_t *key = d->keys.data + e->off;
    uint32_t cur = d->n_live - 1;
    int64_t t0 = 0, at = -1; /* at: the key's pending record */
    int found = 0;
    uint32_t in_gen = N_LIVE; /* where it was found */
    for (uint32_t i = cur + 1; i-- > 0 && !found;) {
        gen *g = &d->gens[d->order[i]];
        d->c.checks++;
        if (!sl_bloom_may_contain(&g->bloom, e->hash))
            continue;
        d->c.hits++;
        if (i == cur && (at = pending_find(d, e->hash, key, e->len)) >= 0) {
            t0 = rec_time(d, (uint32_t)at);
            found = 1;
        } else {
            int r = stored_find(d, ctx, g, key, e->len, e->hash, &t0);
            if (r < 0)
                return SL_ERROR;
            found = r;
        }
        if (found)
            in_gen = i;
        else
            d->c.fps++; /* the filter said maybe; the exact lookup says new */
    }
    if (found && within(d, e->t, t0)) {
        e->status = ST_DUP;
        e->t0 = t0;
        d->c.dups++;
        return SL_OK;
    }
    /* it passes: k -> t, in the current generation (replacing an older record) */
    e->status = ST_PASS;
    gen *g = &d->gens[d->order[cur]];
    if (at >= 0) {
        memcpy(d->arena + at, &e->t, 8);
    } else {
        if (make_room(d, ctx, e->len) != SL_OK)
            return SL_ERROR;
        /* found in the current generation's database: the flush replaces that record */
        pending_put(d, e->hash, e->t, key, e->len, in_gen == cur ? REPLACES : 0);
        if (in_gen != cur) {
            sl_bloom_add(&g->bloom, e->hash);
            g->records++;
        }
    }
    if (e->t > g->max_time)
        g->max_time = e->t;
    if (g->records > d->capacity && !d->warned_capacity) {
        d->warned_capacity = 1;
        ctx->host->log(ctx, SL_LOG_WARN, "a generation holds more than capacity (%" PRIu64
                       ") keys: the bloom filter's false-positive rate rises above %g; "
                       "raise 'capacity'", d->capacity, d->error_rate);
    }
    return SL_OK;
}

/* ------------------------------------------------------------------ events */

static int64_t event_time(const uint8_t *ev, size_t len, int64_t now)
{
    const uint8_t *p = ev;
    sl_mp_val v;
    int64_t t;
    if (sl_mp_map_find(&p, ev + len, "time", 4) == 1 && sl_mp_read(&p, ev + len, &v) == 0 &&
        sl_mp_timestamp_ns(&v, &t) == 0)
        return t;
    return now;
}

/*
 * Start loading what deciding e will touch: its bloom blocks and its table slot.
 * always_inline: see sl_bloom_prefetch (GCC deletes calls of a prefetch-only function).
 */
static inline __attribute__((always_inline)) void prefetch(const dedup *d, const ev_info *e)
{
    if (e->status == ST_ERR)
        return;
    for (uint32_t g = 0; g < d->n_live; g++)
        sl_bloom_prefetch(&d->gens[d->order[g]].bloom, e->hash);
    if (d->cap)
        __builtin_prefetch(&d->slots[home(e->hash, d->cap)], 1, 3);
}

static void report_counts(dedup *d, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
#define SEND(field, name)                                                                      \
    do {                                                                                       \
        if (d->c.field != d->sent.field)                                                       \
            h->count(ctx, name, d->c.field - d->sent.field);                                   \
    } while (0)
    SEND(dups, "duplicates");
    SEND(checks, "bloom_checks");
    SEND(hits, "bloom_hits");
    SEND(fps, "bloom_false_positives");
    SEND(lookups, "lmdb_lookups");
    SEND(expired, "expired");
    SEND(dropped, "generations_dropped");
    SEND(rotations, "rotations");
    SEND(flushes, "flushes");
    SEND(key_errors, "key_errors");
    SEND(reclaimed, "generations_reclaimed");
#undef SEND
    d->sent = d->c;
}

static int emit_dup(dedup *d, sl_ctx *ctx, const ev_info *e, const uint8_t *ev, size_t len)
{
    const sl_host *h = ctx->host;
    if (!h->port_connected(ctx, d->dup_port)) /* counted all the same */
        return h->emit_drop(ctx, d->dup_port, "duplicate", NULL, ev, len, NULL, 0);
    char detail[64];
    memcpy(detail, "first seen ", 11);
    detail[11 + sl_time_format(e->t0, detail + 11)] = '\0';
    sl_wbuf_reset(&d->extra);
    if (sl_mp_write_map(&d->extra, 1) != 0 || sl_mp_write_cstr(&d->extra, "first_time") != 0 ||
        sl_mp_write_timestamp(&d->extra, e->t0) != 0)
        return -1;
    return h->emit_drop(ctx, d->dup_port, "duplicate", detail, ev, len, d->extra.data,
                        d->extra.len);
}

static int dedup_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    dedup *d = state;
    const sl_host *h = ctx->host;
    if (b->count > d->ev_cap) {
        ev_info *ev = realloc(d->ev, b->count * sizeof *ev);
        if (!ev)
            return SL_ERROR;
        d->ev = ev;
        d->ev_cap = b->count;
    }
    /* 1: keys, times and hashes */
    sl_wbuf_reset(&d->keys);
    int64_t now = h->now(ctx);
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        ev_info *e = &d->ev[i];
        size_t off = d->keys.len;
        if (h->expr_value(ctx, d->key, &ev, &len, 1, &d->keys) != 0) {
            d->keys.len = off;
            e->status = ST_ERR;
            d->c.key_errors++;
            if (h->emit_drop(ctx, d->err_port, "key", h->expr_error(ctx), ev, len, NULL, 0) != 0)
                return SL_ERROR;
            continue;
        }
        e->off = (uint32_t)off;
        e->len = (uint32_t)(d->keys.len - off);
        e->t = event_time(ev, len, now);
        e->hash = sl_bloom_hash(d->keys.data + off, e->len);
        e->status = ST_PASS;
    }
    /* 2: decide in order, the bloom blocks and table slots of event i + AHEAD on their way */
    for (uint32_t i = 0; i < AHEAD && i < b->count; i++)
        prefetch(d, &d->ev[i]);
    for (uint32_t i = 0; i < b->count; i++) {
        if (i + AHEAD < b->count)
            prefetch(d, &d->ev[i + AHEAD]);
        if (d->ev[i].status != ST_ERR && decide(d, ctx, &d->ev[i]) != SL_OK) {
            end_read(d, ctx);
            return SL_ERROR;
        }
    }
    end_read(d, ctx);
    /* 3: emit, no transaction open */
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        int rc = d->ev[i].status == ST_PASS  ? h->emit(ctx, 0, ev, len)
                 : d->ev[i].status == ST_DUP ? emit_dup(d, ctx, &d->ev[i], ev, len)
                                             : 0;
        if (rc != 0)
            return SL_ERROR;
    }
    d->c.events += b->count;
    report_counts(d, ctx);
    return SL_OK;
}

/* ------------------------------------------------------------------ ageing */

/* Drop live generation order[i]: no lookup sees it again; its records go at the next snapshot. */
static void gen_drop(dedup *d, uint32_t i)
{
    gen *g = &d->gens[d->order[i]];
    d->c.expired += g->records;
    d->c.dropped++;
    sl_bloom_clear(&g->bloom);
    g->state = G_RETIRED;
    g->records = g->stored = 0;
    memmove(&d->order[i], &d->order[i + 1], d->n_live - i - 1);
    d->n_live--;
}

/* Close the current generation (its records written out) and open one at watermark wm. */
static int rotate(dedup *d, sl_ctx *ctx, int64_t wm)
{
    const sl_host *h = ctx->host;
    int s = -1;
    for (int k = 0; k < N_SLOTS && s < 0; k++) /* a free slot, else the first retired one */
        if (d->gens[k].state == G_FREE)
            s = k;
    for (int k = 0; k < N_SLOTS && s < 0; k++)
        if (d->gens[k].state == G_RETIRED)
            s = k; /* (a restore of the last checkpoint then misses its records: logged then) */
    if (s < 0 || flush(d, ctx) != SL_OK || h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    if (gen_open(d, ctx, s, wm) != SL_OK) {
        h->kv_abort(ctx);
        return SL_ERROR;
    }
    d->order[d->n_live++] = (uint8_t)s;
    d->c.rotations++;
    return h->kv_commit(ctx) == 0 ? SL_OK : SL_ERROR;
}

static int dedup_watermark(void *state, sl_ctx *ctx, int64_t wm)
{
    dedup *d = state;
    /* the end of the stream ages nothing: no event comes after it */
    if (wm <= d->wm || wm == INT64_MAX)
        return SL_OK;
    d->wm = wm;
    /* closed generations every record of which is more than a horizon behind */
    for (uint32_t i = 0; i + 1 < d->n_live;) {
        const gen *g = &d->gens[d->order[i]];
        if (g->max_time == INT64_MIN ||
            (wm > g->max_time && (uint64_t)wm - (uint64_t)g->max_time > (uint64_t)d->horizon))
            gen_drop(d, i);
        else
            i++;
    }
    gen *cur = &d->gens[d->order[d->n_live - 1]];
    if (cur->opened == INT64_MIN) {
        cur->opened = wm;
    } else if (wm > cur->opened &&
               (uint64_t)wm - (uint64_t)cur->opened >= (uint64_t)(d->horizon / 2)) {
        if (d->n_live == N_LIVE) { /* correct all the same; the current one grows */
            if (!d->warned_full)
                ctx->host->log(ctx, SL_LOG_INFO, "all %d generations are live (events far "
                               "ahead of the watermark?): the current one stays open",
                               N_LIVE);
            d->warned_full = 1;
        } else if (rotate(d, ctx, wm) != SL_OK) {
            return SL_ERROR;
        }
    }
    report_counts(d, ctx);
    return SL_OK;
}

/* ------------------------------------------------------ snapshot and restore */

typedef struct meta {
    uint64_t id, fingerprint, next_seq;
    int64_t wm;
    uint32_t epoch, n_live;
    uint8_t order[N_LIVE];
    uint32_t pad;
    struct {
        uint64_t seq;
        int64_t opened, max_time;
    } g[N_SLOTS];
} meta;

/* Changes when what the stored records mean changes: the key and the horizon. */
static uint64_t fingerprint(const dedup *d)
{
    uint64_t f = 1469598103934665603ull;
    for (const char *p = d->key_text ? d->key_text : ""; *p; p++)
        f = (f ^ (uint8_t)*p) * 1099511628211ull;
    f = (f ^ (uint64_t)d->horizon) * 1099511628211ull;
    return (f ^ (VAL_HEAD << 8 | N_SLOTS)) * 1099511628211ull; /* the format */
}

static int dedup_snapshot(void *state, sl_ctx *ctx, uint64_t id)
{
    dedup *d = state;
    const sl_host *h = ctx->host;
    end_read(d, ctx);
    meta m;
    memset(&m, 0, sizeof m);
    if (h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    /* one transaction: the new records, the end of what earlier checkpoints needed kept, and
     * the meta record that describes the result */
    if (flush_in_txn(d, ctx, 0) != SL_OK || h->kv_clear(ctx, d->undo_db) != 0)
        goto err;
    for (int s = 0; s < N_SLOTS; s++)
        if (d->gens[s].state == G_RETIRED) {
            if (h->kv_clear(ctx, d->gens[s].db) != 0)
                goto err;
            d->gens[s].state = G_FREE;
        }
    m.id = id;
    m.fingerprint = fingerprint(d);
    m.next_seq = d->next_seq;
    m.wm = d->wm;
    m.epoch = d->epoch;
    m.n_live = d->n_live;
    memcpy(m.order, d->order, sizeof m.order);
    for (int s = 0; s < N_SLOTS; s++) {
        m.g[s].seq = d->gens[s].seq;
        m.g[s].opened = d->gens[s].opened;
        m.g[s].max_time = d->gens[s].max_time;
    }
    if (h->kv_put(ctx, d->meta_db, "checkpoint", 10, &m, sizeof m) != 0)
        goto err;
    if (h->kv_commit(ctx) != 0 || h->kv_sync(ctx) != 0)
        return SL_ERROR;
    d->epoch++; /* records written from now on are not part of this checkpoint */
    report_counts(d, ctx);
    return SL_OK;
err:
    h->kv_abort(ctx);
    return SL_ERROR;
}

typedef struct rebuild {
    gen *g;
    uint32_t epoch;
    int bad;
} rebuild;

/* Add a stored record to its generation's filter. Returns 0, or -1 if it does not decode. */
static int readd(gen *g, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    if (vlen < VAL_HEAD || (klen != KEY_LONG && klen > KEY_INLINE) ||
        (klen == KEY_LONG && vlen == VAL_HEAD))
        return -1;
    if (klen == KEY_LONG) /* the whole key is in the value */
        sl_bloom_add(&g->bloom, sl_bloom_hash(v + VAL_HEAD, vlen - VAL_HEAD));
    else
        sl_bloom_add(&g->bloom, sl_bloom_hash(k, klen));
    g->stored++;
    return 0;
}

/* A stored record back into its bloom filter; records newer than the checkpoint go. */
static int rebuild_one(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
    rebuild *r = arg;
    uint32_t epoch;
    if (klen == sizeof marker && memcmp(k, marker, klen) == 0)
        return 0;
    if (vlen >= VAL_HEAD) {
        memcpy(&epoch, (const uint8_t *)v + 8, 4);
        if (epoch > r->epoch) /* written after the checkpoint by a run that did not finish */
            return SL_KV_DELETE;
    }
    if (readd(r->g, k, klen, v, vlen) != 0) {
        r->bad = 1;
        return SL_KV_STOP;
    }
    return 0;
}

/* Collect the undo records (slot, LMDB key, value) as (u32 klen, key, u32 vlen, value)... */
static int collect_undo(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
    sl_wbuf *w = arg;
    uint32_t kl = (uint32_t)klen, vl = (uint32_t)vlen;
    if (sl_wbuf_append(w, &kl, 4) != 0 || sl_wbuf_append(w, k, klen) != 0 ||
        sl_wbuf_append(w, &vl, 4) != 0 || sl_wbuf_append(w, v, vlen) != 0) {
        w->len = SIZE_MAX; /* out of memory: say so */
        return SL_KV_STOP;
    }
    return 0;
}

/* Put back the records replaced since the checkpoint (after rebuild deleted the new ones). */
static int apply_undo(dedup *d, sl_ctx *ctx, const int *lost)
{
    const sl_host *h = ctx->host;
    sl_wbuf_reset(&d->undo);
    if (h->kv_scan(ctx, d->undo_db, NULL, 0, collect_undo, &d->undo) != 0)
        return -1;
    if (d->undo.len == SIZE_MAX)
        return -1;
    for (const uint8_t *p = d->undo.data, *end = p + d->undo.len; p < end;) {
        uint32_t kl, vl;
        memcpy(&kl, p, 4);
        const uint8_t *k = p + 4;
        memcpy(&vl, k + kl, 4);
        const uint8_t *v = k + kl + 4;
        p = v + vl;
        if (kl < 2 || k[0] >= N_SLOTS || d->gens[k[0]].state != G_LIVE || lost[k[0]])
            continue;
        gen *g = &d->gens[k[0]];
        if (h->kv_put(ctx, g->db, k + 1, kl - 1, v, vl) != 0 || readd(g, k + 1, kl - 1, v, vl) != 0)
            return -1;
    }
    sl_wbuf_reset(&d->undo);
    return h->kv_clear(ctx, d->undo_db) == 0 ? 0 : -1;
}

static int dedup_restore(void *state, sl_ctx *ctx, uint64_t id)
{
    dedup *d = state;
    const sl_host *h = ctx->host;
    if (open_dbs(d, ctx) != SL_OK || h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    const void *v;
    size_t vlen;
    meta m;
    int r = h->kv_get(ctx, d->meta_db, "checkpoint", 10, &v, &vlen), lost[N_SLOTS] = {0};
    if (r != 0 || vlen != sizeof m) {
        if (r >= 0)
            h->log(ctx, SL_LOG_ERROR, "state: no checkpoint %" PRIu64 " to restore", id);
        goto err;
    }
    memcpy(&m, v, sizeof m);
    if (m.id != id) {
        h->log(ctx, SL_LOG_ERROR, "state: holds checkpoint %" PRIu64 ", not %" PRIu64, m.id,
               id);
        goto err;
    }
    if (m.fingerprint != fingerprint(d)) {
        h->log(ctx, SL_LOG_ERROR, "state: the key or the horizon changed since checkpoint %" PRIu64
                                  "; its records cannot be used", id);
        goto err;
    }
    if (m.n_live < 1 || m.n_live > N_LIVE)
        goto corrupt;
    for (uint32_t i = 0; i < m.n_live; i++)
        if (m.order[i] >= N_SLOTS || memchr(m.order + i + 1, m.order[i], m.n_live - i - 1))
            goto corrupt;
    d->n_live = m.n_live;
    memcpy(d->order, m.order, sizeof d->order);
    d->next_seq = m.next_seq;
    d->epoch = m.epoch;
    for (int s = 0; s < N_SLOTS; s++) {
        gen *g = &d->gens[s];
        if (!memchr(d->order, s, d->n_live)) {
            if (h->kv_clear(ctx, g->db) != 0)
                goto err;
            g->state = G_FREE;
            continue;
        }
        g->state = G_LIVE;
        g->seq = m.g[s].seq;
        g->opened = m.g[s].opened;
        g->max_time = m.g[s].max_time;
        g->stored = 0;
        uint64_t seq = 0;
        if (bloom_ready(d, ctx, g) != SL_OK ||
            (r = h->kv_get(ctx, g->db, marker, sizeof marker, &v, &vlen)) < 0)
            goto err;
        if (r == 0 && vlen == 8)
            memcpy(&seq, v, 8);
        if (seq != g->seq) { /* its slot was needed again after the checkpoint */
            h->log(ctx, SL_LOG_WARN, "state: a generation of checkpoint %" PRIu64 " was dropped "
                   "after it; re-sends of its keys pass once", id);
            uint8_t sv[8];
            put_seq(sv, g->seq);
            if (h->kv_clear(ctx, g->db) != 0 ||
                h->kv_put(ctx, g->db, marker, sizeof marker, sv, sizeof sv) != 0)
                goto err;
            lost[s] = 1;
            g->records = 0;
            continue;
        }
        rebuild rb = {g, m.epoch, 0};
        if (h->kv_scan(ctx, g->db, NULL, 0, rebuild_one, &rb) != 0)
            goto err;
        if (rb.bad)
            goto corrupt;
    }
    if (apply_undo(d, ctx, lost) != 0)
        goto err;
    for (int s = 0; s < N_SLOTS; s++)
        d->gens[s].records = d->gens[s].stored;
    if (h->kv_commit(ctx) != 0)
        return SL_ERROR;
    d->wm = m.wm;
    d->epoch = m.epoch + 1;
    d->restored = 1;
    return SL_OK;
corrupt:
    h->log(ctx, SL_LOG_ERROR, "state: checkpoint %" PRIu64 " does not decode", id);
err:
    h->kv_abort(ctx);
    return SL_ERROR;
}

/* ------------------------------------------------------------------ the end */

static int dedup_finish(void *state, sl_ctx *ctx)
{
    dedup *d = state;
    report_counts(d, ctx);
    /* a bloom query about a key absent from that generation: checks - true hits */
    uint64_t negatives = d->c.checks - (d->c.hits - d->c.fps);
    double fpr = negatives ? 100.0 * (double)d->c.fps / (double)negatives : 0;
    ctx->host->log(ctx, SL_LOG_INFO, "%" PRIu64 " events, %" PRIu64 " duplicates, bloom "
                   "false-positive rate %.3f%% (configured %g%%)", d->c.events, d->c.dups, fpr,
                   100 * d->error_rate);
    return SL_OK;
}

static void dedup_destroy(void *state)
{
    dedup *d = state;
    if (!d)
        return;
    for (int s = 0; s < N_SLOTS; s++)
        sl_bloom_fini(&d->gens[s].bloom);
    big_free(d->slots, (size_t)d->cap * sizeof *d->slots);
    big_free(d->arena, d->arena_cap);
    free(d->ev);
    sl_wbuf_fini(&d->keys);
    sl_wbuf_fini(&d->extra);
    sl_wbuf_fini(&d->dbval);
    sl_wbuf_fini(&d->undo);
    free(d);
}

const sl_operator sl_op_dedup = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "dedup",
    .summary = "Drops events whose key was seen within a horizon (bloom filter, exact LMDB check)",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .key_param = "key",
    .init = dedup_init,
    .start = dedup_start,
    .process = dedup_process,
    .on_watermark = dedup_watermark,
    .finish = dedup_finish,
    .destroy = dedup_destroy,
    .snapshot = dedup_snapshot,
    .restore = dedup_restore,
};
