/*
 * join_buffer.h - the state of an interval join: the events of both sides
 * waiting for partners, by key, until the watermark expires them.
 *
 * Each side's events of one key form a list in arrival order; keys live in
 * an open-addressing table; an expiry heap orders every event by the time
 * after which no partner can arrive. Events and key records are carved from
 * aligned chunks that count their live objects and are freed (kept for
 * reuse, one spare) when that count reaches zero: no malloc per event, and
 * memory comes back as the watermark passes, roughly in time order.
 *
 * Not thread-safe: one buffer per join instance.
 */
#ifndef SL_JOIN_BUFFER_H
#define SL_JOIN_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h" /* keys are given by sl_hash_bytes of their bytes */

enum { SL_JOIN_LEFT = 0, SL_JOIN_RIGHT = 1 };

typedef struct sl_join_key sl_join_key;

typedef struct sl_join_entry {
    struct sl_join_entry *prev, *next; /* this key's events of this side, oldest first */
    sl_join_key *key;
    int64_t time;      /* event time */
    int64_t expire;    /* the watermark must pass this for the entry to go */
    uint64_t seq;      /* arrival number: snapshot order */
    uint32_t len;      /* event bytes */
    uint8_t side;      /* SL_JOIN_LEFT or SL_JOIN_RIGHT */
    uint8_t matched;   /* found a partner at least once */
    uint8_t big;       /* allocated alone (larger than a chunk) */
    uint8_t pad;
    uint8_t event[];   /* msgpack */
} sl_join_entry;

struct sl_join_key {
    sl_join_entry *head[2], *tail[2];
    uint64_t hash;
    uint32_t klen;
    uint32_t big;
    uint8_t bytes[];   /* the key's msgpack encoding */
};

typedef struct sl_join_heap_item {
    int64_t expire;
    sl_join_entry *e;
} sl_join_heap_item;

typedef struct sl_join_slot {
    uint64_t hash;         /* the key's, kept here so probing touches no key record */
    sl_join_key *key;      /* NULL: empty */
} sl_join_slot;

typedef struct sl_join_buffer {
    sl_join_slot *slots;   /* open addressing, linear probing */
    size_t n_slots, n_keys;
    sl_join_heap_item *heap;
    size_t heap_n, heap_cap;
    void *chunk;           /* the chunk being filled */
    size_t chunk_used;
    void *spare;           /* one empty chunk kept for reuse */
    uint64_t seq;
    size_t n_entries;
    uint64_t bytes;        /* memory held: chunks, big entries, table, heap */
} sl_join_buffer;

void sl_join_buffer_init(sl_join_buffer *jb);
void sl_join_buffer_fini(sl_join_buffer *jb);

/*
 * Add an event of `side` with key (hash, bytes), event time `time`, to be
 * expired once the watermark passes `expire`. The bytes are copied. Returns
 * the entry (owned by the buffer) or NULL when out of memory.
 */
sl_join_entry *sl_join_buffer_add(sl_join_buffer *jb, int side, uint64_t hash, const void *key,
                                  size_t klen, int64_t time, int64_t expire, const void *ev,
                                  size_t len);

/* Start loading the table slot of `hash` (a batch hashes its keys first, then probes). */
static inline void sl_join_buffer_prefetch(const sl_join_buffer *jb, uint64_t hash)
{
    if (jb->n_slots)
        __builtin_prefetch(&jb->slots[hash & (jb->n_slots - 1)]);
}

/* Called for each partner; returns 0 to go on, nonzero to stop (returned by probe). */
typedef int (*sl_join_visit)(void *arg, sl_join_entry *e);

/*
 * Visit, in arrival order, the entries of `side` with this key whose time is
 * within [lo, hi]. Returns 0 or the visitor's nonzero result.
 */
int sl_join_buffer_probe(sl_join_buffer *jb, int side, uint64_t hash, const void *key,
                         size_t klen, int64_t lo, int64_t hi, sl_join_visit visit, void *arg);

/*
 * Remove every entry whose expire < wm, earliest expiry first, calling
 * `visit` on it before it goes (a left join emits its unmatched events
 * there). Returns 0 or the visitor's nonzero result (the entry it failed on
 * stays).
 */
int sl_join_buffer_expire(sl_join_buffer *jb, int64_t wm, sl_join_visit visit, void *arg);

/* Visit every entry (both sides, any order). Returns 0 or the visitor's result. */
int sl_join_buffer_each(sl_join_buffer *jb, sl_join_visit visit, void *arg);

/* Remove everything. */
void sl_join_buffer_clear(sl_join_buffer *jb);

#endif
