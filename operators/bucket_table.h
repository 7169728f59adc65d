/*
 * bucket_table.h - a bounded table of GCRA buckets, one per (limit, key):
 * the state of `throttle` and `ratelimit`.
 *
 * GCRA (the generic cell rate algorithm) is the token bucket written as one
 * "theoretical arrival time" per bucket (tat, int64 ns on whatever clock the
 * operator uses). With the emission interval T = 1/rate and the tolerance
 * (burst - 1) * T, an event at `now` conforms iff now >= tat - tolerance,
 * and then tat = max(tat, now) + T: exactly a bucket of `burst` tokens
 * refilled at `rate`, in integers. A bucket whose tat <= now is *full*: it
 * behaves exactly like a bucket never seen, so it can be forgotten without
 * changing any result.
 *
 * Layout: records in a slab with a free list; an open-addressing table
 * (linear probing, backward-shift deletion) from a 64-bit hash of (limit,
 * key bytes) to a record; key bytes in an arena that is compacted once more
 * than half of it is dead; a min-heap on tat. Once `max_keys` buckets are
 * held, a new key evicts the heap's top: a full bucket if there is any
 * (changes nothing), else the one that will be full soonest (reported, so
 * the operator counts it "evicted": that key starts over full). Everything
 * grows by doubling up to max_keys: no allocation per event once warm.
 *
 * Invariants: every record in use is in the table once and in the heap at
 * heap_pos; heap_pos == SL_BUCKET_NONE for records on the free list;
 * n_used <= max_keys. Not thread-safe: one table per operator instance.
 */
#ifndef SL_BUCKET_TABLE_H
#define SL_BUCKET_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/msgpack.h" /* sl_wbuf */

#define SL_BUCKET_NONE UINT32_MAX
#define SL_BUCKET_MAX_KEYS (1u << 28)
/* Largest tolerance (burst - 1) * T accepted: about 31 years. */
#define SL_GCRA_MAX_TOLERANCE_NS 1000000000000000000ll

typedef struct sl_bucket {
    int64_t tat;
    uint64_t hash;
    uint32_t key_off, key_len; /* in the arena; key_off links the free list when free */
    uint32_t limit;
    uint32_t heap_pos; /* SL_BUCKET_NONE: on the free list */
} sl_bucket;

typedef struct sl_bucket_slot {
    uint64_t hash;
    uint32_t rec1; /* record index + 1; 0: empty */
} sl_bucket_slot;

typedef struct sl_bucket_table {
    uint32_t max_keys;
    sl_bucket *recs;
    uint32_t cap_recs, hw, n_used, free_head;
    uint32_t *heap; /* n_used record indices, smallest tat on top */
    sl_bucket_slot *slots;
    uint32_t mask; /* slot count - 1 (a power of two), or 0 before the first */
    sl_wbuf arena[2];
    int cur;     /* arena[cur] holds the keys */
    size_t dead; /* bytes of arena[cur] no record uses */
} sl_bucket_table;

/* An empty table that will hold at most max_keys (1 to SL_BUCKET_MAX_KEYS) buckets. */
void sl_bucket_table_init(sl_bucket_table *t, uint32_t max_keys);
/* Free everything the table holds. */
void sl_bucket_table_fini(sl_bucket_table *t);

/*
 * The bucket of (limit, key) - key is klen bytes, borrowed (copied if new) -
 * made full (tat = now) if new. When max_keys buckets are held, one is
 * forgotten first (see the top of this file); *evicted is set to 1 when that
 * one was not full, else 0. Returns the record index, valid until the next
 * call, or SL_BUCKET_NONE when out of memory.
 */
uint32_t sl_bucket_table_get(sl_bucket_table *t, uint32_t limit, const void *key, size_t klen,
                             int64_t now, int *evicted);

/* The tat of record r. */
static inline int64_t sl_bucket_table_tat(const sl_bucket_table *t, uint32_t r)
{
    return t->recs[r].tat;
}

/* Set the tat of record r (keeps the heap in order). */
void sl_bucket_table_set_tat(sl_bucket_table *t, uint32_t r, int64_t tat);

/* Buckets held. */
static inline uint32_t sl_bucket_table_count(const sl_bucket_table *t)
{
    return t->n_used;
}

/* Bytes of memory the table holds (records, heap, slots, key arenas). */
size_t sl_bucket_table_bytes(const sl_bucket_table *t);

/*
 * The default burst of a limit of `rate` events per second, as `throttle`
 * and `ratelimit` both use it: the rate rounded up, at least 1.
 */
int64_t sl_gcra_default_burst(double rate);

#endif
