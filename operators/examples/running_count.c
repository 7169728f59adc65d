/*
 * running_count.c - example plugin: `example.running_count`, a stateful
 * operator that survives checkpoints and crashes (docs/plugins.md).
 *
 *   counted:
 *     type: example.running_count
 *     input: events
 *     key: data.status     # field path (dotted = nested maps); default: type
 *     into: count          # top-level field that receives the count
 *
 * Each event comes out with `into` set to how many events of its key value
 * the operator has seen so far, this one included (1, 2, 3, ...). Key values
 * compare by their msgpack bytes (1 and "1" are two keys, so are 1 and
 * 1.0). An event without the key leaves by `errors` (reason missing_field).
 *
 * State: the count table in memory (open addressing; keys packed in one
 * buffer), one entry per distinct key value, never expired. With a
 * `checkpoint:` block, snapshot writes the whole table into the instance's
 * database "" (one record per key: an 8-byte sequence number -> the count,
 * 8 bytes in host order, then the key value's msgpack bytes, which may be
 * longer than the 511 bytes LMDB allows in a key) in one kv_begin/kv_commit, with a record "m" in database "meta" holding the
 * checkpoint id, a fingerprint of `key` and the key's text. restore reads it
 * back and refuses a record of another checkpoint or another key: counts per
 * `type` are no counts per `data.status`. The engine replays the source from
 * the checkpoint's position, so after a crash every count comes out exactly
 * as in an uninterrupted run.
 *
 * Parallelism: `key` is the operator's key_param, so with parallelism > 1
 * the engine partitions the input by it and each key lives in one instance.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/operator.h>

#define MAX_SEGS 8

static const sl_param params[] = {
    {"key", SL_PARAM_STRING, "type", 0, "field path whose values are counted (dotted = nested)",
     NULL},
    {"into", SL_PARAM_STRING, "count", 0, "top-level field that receives the running count", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "errors", NULL};

/* One counted key value: its msgpack bytes live in keys at [off, off + len); len 0 = empty slot. */
typedef struct entry {
    uint64_t hash, count;
    uint32_t off, len;
} entry;

typedef struct counter {
    const char *key_text; /* borrowed from the configuration */
    const char *seg[MAX_SEGS];
    size_t seg_len[MAX_SEGS], n_segs;
    const char *into;
    size_t into_len;
    int errors_port;
    entry *slots; /* capacity a power of two, at most half full */
    size_t cap, n;
    sl_wbuf keys; /* the key values' bytes, back to back */
    sl_wbuf out;  /* the event being written; reused */
    sl_kv *db, *meta_db;
    uint64_t missing;
} counter;

/* ------------------------------------------------------------ the table */

/* FNV-1a: plenty for an example; keys are a few bytes. */
static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static int table_grow(counter *c)
{
    size_t cap = c->cap ? c->cap * 2 : 64;
    entry *s = calloc(cap, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots[i].len)
            continue;
        size_t j = c->slots[i].hash & (cap - 1);
        while (s[j].len)
            j = (j + 1) & (cap - 1);
        s[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = s;
    c->cap = cap;
    return 0;
}

/* The entry of key value k (klen bytes), added with count 0 if new; NULL when out of memory. */
static entry *table_get(counter *c, const uint8_t *k, size_t klen)
{
    if (klen > UINT32_MAX || ((c->n + 1) * 2 > c->cap && table_grow(c) != 0))
        return NULL;
    uint64_t h = hash_bytes(k, klen);
    size_t j = h & (c->cap - 1);
    for (; c->slots[j].len; j = (j + 1) & (c->cap - 1)) {
        entry *e = &c->slots[j];
        if (e->hash == h && e->len == klen && memcmp(c->keys.data + e->off, k, klen) == 0)
            return e;
    }
    if (c->keys.len > UINT32_MAX - klen)
        return NULL;
    entry *e = &c->slots[j];
    e->hash = h;
    e->count = 0;
    e->off = (uint32_t)c->keys.len;
    e->len = (uint32_t)klen;
    if (sl_wbuf_append(&c->keys, k, klen) != 0) {
        e->len = 0;
        return NULL;
    }
    c->n++;
    return e;
}

/* ------------------------------------------------------------ configuration */

static int rc_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    counter *c = calloc(1, sizeof *c);
    *state = c;
    if (!c)
        return SL_ERROR;
    const sl_node *kn = h->param(ctx, "key"), *in = h->param(ctx, "into");
    c->key_text = h->node_str(kn);
    c->into = h->node_str(in);
    int bad = 0;
    for (const char *s = c->key_text; s && !bad;) {
        const char *dot = strchr(s, '.');
        size_t len = dot ? (size_t)(dot - s) : strlen(s);
        if (len == 0 || c->n_segs == MAX_SEGS)
            bad = 1;
        else {
            c->seg[c->n_segs] = s;
            c->seg_len[c->n_segs++] = len;
        }
        s = dot ? dot + 1 : NULL;
    }
    if (!c->key_text || bad) {
        h->config_error(ctx, kn, "'key' must be a field path like data.customerId (at most %d "
                        "levels)", MAX_SEGS);
        return SL_ERROR;
    }
    if (!c->into || !*c->into || strchr(c->into, '.')) {
        h->config_error(ctx, in, "'into' must be a top-level field name like count");
        return SL_ERROR;
    }
    c->into_len = strlen(c->into);
    c->errors_port = h->port(ctx, "errors");
    return SL_OK;
}

/* --------------------------------------------------------------- the events */

/* Copy the event map at ev with top-level `into` set to n (replaced in place, or appended). */
static int write_counted(counter *c, const uint8_t *ev, const uint8_t *end, uint64_t n)
{
    const uint8_t *q = ev, *probe = ev;
    int has = sl_mp_map_find(&probe, end, c->into, c->into_len);
    sl_mp_val m;
    if (has < 0 || sl_mp_read(&q, end, &m) != 0 || m.type != SL_MP_MAP ||
        sl_mp_write_map(&c->out, m.v.n + (has ? 0 : 1)) != 0)
        return -1;
    for (uint32_t i = 0; i < m.v.n; i++) {
        const uint8_t *key = q, *kq = q;
        sl_mp_val k;
        if (sl_mp_skip(&q, end) != 0)
            return -1;
        const uint8_t *val = q;
        int match = sl_mp_read(&kq, val, &k) == 0 && k.type == SL_MP_STR &&
                    k.v.str.len == c->into_len && memcmp(k.v.str.ptr, c->into, c->into_len) == 0;
        if (sl_mp_skip(&q, end) != 0)
            return -1;
        if (match ? sl_wbuf_append(&c->out, key, (size_t)(val - key)) != 0 ||
                        sl_mp_write_uint(&c->out, n) != 0
                  : sl_wbuf_append(&c->out, key, (size_t)(q - key)) != 0)
            return -1;
    }
    if (!has && (sl_mp_write_str(&c->out, c->into, c->into_len) != 0 ||
                 sl_mp_write_uint(&c->out, n) != 0))
        return -1;
    return 0;
}

static int rc_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    counter *c = state;
    const sl_host *h = ctx->host;
    (void)input;
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len), *end = ev + len, *k = ev;
        int found = 1;
        for (size_t s = 0; s < c->n_segs && found == 1; s++)
            found = sl_mp_map_find(&k, end, c->seg[s], c->seg_len[s]);
        const uint8_t *kend = k;
        if (found != 1 || sl_mp_skip(&kend, end) != 0) {
            char detail[256];
            snprintf(detail, sizeof detail, "no field '%s'", c->key_text);
            c->missing++;
            if (h->emit_drop(ctx, c->errors_port, "missing_field", detail, ev, len, NULL, 0) != 0)
                return SL_ERROR;
            continue;
        }
        entry *e = table_get(c, k, (size_t)(kend - k));
        sl_wbuf_reset(&c->out);
        if (!e || write_counted(c, ev, end, e->count + 1) != 0) {
            h->log(ctx, SL_LOG_ERROR, e ? "cannot write an event of %zu bytes (out of memory?)"
                                        : "out of memory counting a key (%zu bytes)", len);
            return SL_ERROR;
        }
        e->count++; /* only once the event is written: a failure leaves the count as it was */
        if (sl_emit(ctx, 0, c->out.data, c->out.len) != 0)
            return SL_ERROR;
    }
    return SL_OK;
}

/* ------------------------------------------------------------ checkpoints */

/* Record "m" of database "meta"; followed by the key's text. */
typedef struct meta {
    uint64_t checkpoint, fingerprint, n_keys;
} meta;

static int open_dbs(counter *c, sl_ctx *ctx)
{
    if (!c->db)
        c->db = ctx->host->kv_open(ctx, "");
    if (c->db && !c->meta_db)
        c->meta_db = ctx->host->kv_open(ctx, "meta");
    return c->meta_db ? 0 : -1;
}

/*
 * The whole table, every checkpoint: simple, and proportional to the number
 * of keys. (A table of millions of keys would write only the entries changed
 * since the last snapshot, as the built-in join does.) Runs on the main
 * thread while this instance's stage is parked, so nothing else touches c.
 */
static int rc_snapshot(void *state, sl_ctx *ctx, uint64_t checkpoint_id)
{
    counter *c = state;
    const sl_host *h = ctx->host;
    if (open_dbs(c, ctx) != 0 || h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    if (h->kv_clear(ctx, c->db) != 0)
        goto err;
    uint64_t seq = 0;
    for (size_t i = 0; i < c->cap; i++) {
        const entry *e = &c->slots[i];
        if (!e->len)
            continue;
        uint8_t k[8];
        for (int b = 0; b < 8; b++)
            k[b] = (uint8_t)(seq >> (56 - 8 * b));
        seq++;
        sl_wbuf_reset(&c->out);
        if (sl_wbuf_append(&c->out, &e->count, sizeof e->count) != 0 ||
            sl_wbuf_append(&c->out, c->keys.data + e->off, e->len) != 0 ||
            h->kv_put(ctx, c->db, k, sizeof k, c->out.data, c->out.len) != 0)
            goto err;
    }
    meta m = {checkpoint_id, hash_bytes(c->key_text, strlen(c->key_text)), c->n};
    sl_wbuf_reset(&c->out);
    if (sl_wbuf_append(&c->out, &m, sizeof m) != 0 ||
        sl_wbuf_append(&c->out, c->key_text, strlen(c->key_text)) != 0 ||
        h->kv_put(ctx, c->meta_db, "m", 1, c->out.data, c->out.len) != 0)
        goto err;
    return h->kv_commit(ctx) == 0 ? SL_OK : SL_ERROR;
err:
    h->kv_abort(ctx);
    return SL_ERROR;
}

static int restore_entry(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    counter *c = arg;
    const uint8_t *v = val;
    entry *e = vlen > sizeof e->count ? table_get(c, v + sizeof e->count, vlen - sizeof e->count)
                                      : NULL;
    (void)key;
    (void)klen;
    if (!e || e->count)
        return SL_KV_STOP; /* short, out of memory or a key twice: restore says so */
    memcpy(&e->count, v, sizeof e->count);
    return 0;
}

/* Runs on the main thread after init, before start; only if the checkpoint has our state. */
static int rc_restore(void *state, sl_ctx *ctx, uint64_t checkpoint_id)
{
    counter *c = state;
    const sl_host *h = ctx->host;
    const void *v;
    size_t vlen;
    meta m;
    if (open_dbs(c, ctx) != 0 || h->kv_begin(ctx, 0) != 0)
        return SL_ERROR;
    if (h->kv_get(ctx, c->meta_db, "m", 1, &v, &vlen) != 0 || vlen < sizeof m) {
        h->kv_abort(ctx);
        h->log(ctx, SL_LOG_ERROR, "no running counts stored for checkpoint %" PRIu64,
               checkpoint_id);
        return SL_ERROR;
    }
    memcpy(&m, v, sizeof m);
    if (m.checkpoint != checkpoint_id) {
        h->kv_abort(ctx);
        h->log(ctx, SL_LOG_ERROR, "the stored counts are of checkpoint %" PRIu64 ", not %" PRIu64,
               m.checkpoint, checkpoint_id);
        return SL_ERROR;
    }
    if (m.fingerprint != hash_bytes(c->key_text, strlen(c->key_text))) {
        int n = (int)(vlen - sizeof m);
        h->log(ctx, SL_LOG_ERROR, "the stored counts are per '%.*s', this configuration counts "
               "per '%s'", n, (const char *)v + sizeof m, c->key_text);
        h->kv_abort(ctx); /* v is borrowed until here */
        return SL_ERROR;
    }
    int rc = h->kv_scan(ctx, c->db, NULL, 0, restore_entry, c);
    h->kv_abort(ctx); /* a read transaction: nothing to commit */
    if (rc != 0 || c->n != m.n_keys) {
        h->log(ctx, SL_LOG_ERROR, "cannot restore the running counts (%zu of %" PRIu64 " keys)",
               c->n, m.n_keys);
        return SL_ERROR;
    }
    h->log(ctx, SL_LOG_DEBUG, "restored %zu counts of checkpoint %" PRIu64, c->n, checkpoint_id);
    return SL_OK;
}

static int rc_finish(void *state, sl_ctx *ctx)
{
    counter *c = state;
    ctx->host->count(ctx, "keys", c->n);
    ctx->host->count(ctx, "missing_field", c->missing);
    return SL_OK;
}

static void rc_destroy(void *state)
{
    counter *c = state;
    if (!c)
        return;
    free(c->slots);
    sl_wbuf_fini(&c->keys);
    sl_wbuf_fini(&c->out);
    free(c);
}

static const sl_operator running_count_op = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "example.running_count",
    .summary = "Adds to each event how many events of its key came so far; checkpointed "
               "(example plugin)",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .key_param = "key",
    .init = rc_init,
    .process = rc_process,
    .finish = rc_finish,
    .destroy = rc_destroy,
    .snapshot = rc_snapshot,
    .restore = rc_restore,
};

static const sl_operator *const operators[] = {&running_count_op, NULL};

static const sl_plugin plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin),
    .name = "example-running-count",
    .version = "1.0",
    .operators = operators,
};

const sl_plugin *sluice_plugin(void);
const sl_plugin *sluice_plugin(void) { return &plugin; }
