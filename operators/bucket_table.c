/*
 * bucket_table.c - the bounded GCRA bucket table of throttle and ratelimit
 * (design and invariants in bucket_table.h).
 */
#include "bucket_table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define FREE SL_BUCKET_NONE

void sl_bucket_table_init(sl_bucket_table *t, uint32_t max_keys)
{
    memset(t, 0, sizeof *t);
    t->max_keys = max_keys;
    t->free_head = FREE;
}

void sl_bucket_table_fini(sl_bucket_table *t)
{
    free(t->recs);
    free(t->heap);
    free(t->slots);
    sl_wbuf_fini(&t->arena[0]);
    sl_wbuf_fini(&t->arena[1]);
    memset(t, 0, sizeof *t);
    t->free_head = FREE;
}

int64_t sl_gcra_default_burst(double rate)
{
    double ceiled = ceil(rate);
    return ceiled < 1 ? 1 : (int64_t)ceiled;
}

/* Hash of (limit, key bytes): the key's, with the limit mixed in; never 0. */
static uint64_t key_hash(uint32_t li, const uint8_t *k, size_t n)
{
    uint64_t x = sl_hash_bytes(k, n) ^ ((uint64_t)li * 0x9e3779b97f4a7c15ull);
    return x ? x : 1;
}

static inline const uint8_t *key_of(const sl_bucket_table *t, const sl_bucket *b)
{
    return t->arena[t->cur].data + b->key_off;
}

static void heap_set(sl_bucket_table *t, uint32_t pos, uint32_t r)
{
    t->heap[pos] = r;
    t->recs[r].heap_pos = pos;
}

static void sift_up(sl_bucket_table *t, uint32_t pos)
{
    uint32_t r = t->heap[pos];
    int64_t tat = t->recs[r].tat;
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (t->recs[t->heap[parent]].tat <= tat) break;
        heap_set(t, pos, t->heap[parent]);
        pos = parent;
    }
    heap_set(t, pos, r);
}

static void sift_down(sl_bucket_table *t, uint32_t pos)
{
    uint32_t r = t->heap[pos], n = t->n_used;
    int64_t tat = t->recs[r].tat;
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= n) break;
        if (c + 1 < n && t->recs[t->heap[c + 1]].tat < t->recs[t->heap[c]].tat) c++;
        if (tat <= t->recs[t->heap[c]].tat) break;
        heap_set(t, pos, t->heap[c]);
        pos = c;
    }
    heap_set(t, pos, r);
}

void sl_bucket_table_set_tat(sl_bucket_table *t, uint32_t r, int64_t tat)
{
    int64_t old = t->recs[r].tat;
    t->recs[r].tat = tat;
    if (tat > old)
        sift_down(t, t->recs[r].heap_pos);
    else if (tat < old)
        sift_up(t, t->recs[r].heap_pos);
}

size_t sl_bucket_table_bytes(const sl_bucket_table *t)
{
    return (size_t)t->cap_recs * (sizeof *t->recs + sizeof *t->heap) +
           (t->slots ? ((size_t)t->mask + 1) * sizeof *t->slots : 0) + t->arena[0].cap +
           t->arena[1].cap;
}

/* Rebuild the slot table with n_slots (a power of two) slots. Returns 0 or -1 (out of memory). */
static int rehash(sl_bucket_table *t, uint32_t n_slots)
{
    sl_bucket_slot *s = calloc(n_slots, sizeof *s);
    if (!s) return -1;
    uint32_t mask = n_slots - 1;
    for (uint32_t i = 0; t->slots && i <= t->mask; i++) {
        if (!t->slots[i].rec1) continue;
        uint32_t j = (uint32_t)t->slots[i].hash & mask;
        while (s[j].rec1)
            j = (j + 1) & mask;
        s[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = s;
    t->mask = mask;
    return 0;
}

/* Room for one more record: slab, heap and a table at most half full. Returns 0 or -1. */
static int reserve_one(sl_bucket_table *t)
{
    if (t->free_head == FREE && t->hw == t->cap_recs) {
        uint32_t cap = t->cap_recs ? t->cap_recs * 2 : 16;
        if (cap > t->max_keys) cap = t->max_keys;
        sl_bucket *r = realloc(t->recs, (size_t)cap * sizeof *r);
        if (!r) return -1;
        t->recs = r;
        uint32_t *hp = realloc(t->heap, (size_t)cap * sizeof *hp);
        if (!hp) return -1;
        t->heap = hp;
        t->cap_recs = cap;
    }
    if (!t->slots || (uint64_t)(t->n_used + 1) * 2 > (uint64_t)t->mask + 1)
        return rehash(t, t->slots ? (t->mask + 1) * 2 : 32);
    return 0;
}

/* Copy the live keys into the other arena, so that dead bytes do not pile up. */
static int compact(sl_bucket_table *t)
{
    sl_wbuf *from = &t->arena[t->cur], *to = &t->arena[!t->cur];
    sl_wbuf_reset(to);
    if (sl_wbuf_reserve(to, from->len - t->dead) != 0) return -1;
    for (uint32_t i = 0; i < t->hw; i++) {
        sl_bucket *b = &t->recs[i];
        if (b->heap_pos == FREE) continue;
        uint32_t off = (uint32_t)to->len;
        sl_wbuf_append(to, from->data + b->key_off, b->key_len); /* reserved: cannot fail */
        b->key_off = off;
    }
    t->cur = !t->cur;
    t->dead = 0;
    return 0;
}

/* Forget record r: out of the table (backward-shift deletion), the heap and the arena. */
static void remove_bucket(sl_bucket_table *t, uint32_t r)
{
    sl_bucket *b = &t->recs[r];
    uint32_t i = (uint32_t)b->hash & t->mask;
    while (t->slots[i].rec1 != r + 1)
        i = (i + 1) & t->mask;
    for (uint32_t j = i;;) {
        j = (j + 1) & t->mask;
        if (!t->slots[j].rec1) break;
        uint32_t home = (uint32_t)t->slots[j].hash & t->mask;
        /* the entry at j may move to the hole at i unless its home lies cyclically in (i, j] */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].rec1 = 0;
    uint32_t pos = b->heap_pos, last = t->heap[--t->n_used];
    if (pos != t->n_used) {
        heap_set(t, pos, last);
        sift_up(t, pos);
        sift_down(t, t->recs[last].heap_pos);
    }
    t->dead += b->key_len;
    b->heap_pos = FREE;
    b->key_off = t->free_head;
    t->free_head = r;
}

uint32_t sl_bucket_table_get(sl_bucket_table *t, uint32_t li, const void *key, size_t klen,
                             int64_t now, int *evicted)
{
    const uint8_t *k = key;
    uint64_t hash = key_hash(li, k, klen);
    *evicted = 0;
    if (t->slots) {
        for (uint32_t i = (uint32_t)hash & t->mask; t->slots[i].rec1; i = (i + 1) & t->mask) {
            if (t->slots[i].hash != hash) continue;
            sl_bucket *b = &t->recs[t->slots[i].rec1 - 1];
            if (b->limit == li && b->key_len == klen &&
                (klen == 0 || memcmp(key_of(t, b), k, klen) == 0))
                return t->slots[i].rec1 - 1;
        }
    }
    if (t->n_used == t->max_keys) {
        uint32_t victim = t->heap[0];
        if (t->recs[victim].tat > now) /* not full: forgetting it forgives what it owes */
            *evicted = 1;
        remove_bucket(t, victim);
    }
    if (klen > UINT32_MAX / 2 || reserve_one(t) != 0) return FREE;
    sl_wbuf *a = &t->arena[t->cur];
    if (t->dead > 65536 && t->dead > a->len / 2) {
        if (compact(t) != 0) return FREE;
        a = &t->arena[t->cur];
    }
    if (a->len + klen > UINT32_MAX || (klen && sl_wbuf_append(a, k, klen) != 0)) return FREE;
    uint32_t r;
    if (t->free_head != FREE) {
        r = t->free_head;
        t->free_head = t->recs[r].key_off;
    } else {
        r = t->hw++;
    }
    sl_bucket *b = &t->recs[r];
    b->tat = now; /* full: the same as a bucket that was never used */
    b->hash = hash;
    b->key_off = (uint32_t)(a->len - klen);
    b->key_len = (uint32_t)klen;
    b->limit = li;
    t->heap[t->n_used] = r;
    b->heap_pos = t->n_used++;
    sift_up(t, b->heap_pos);
    uint32_t i = (uint32_t)hash & t->mask;
    while (t->slots[i].rec1)
        i = (i + 1) & t->mask;
    t->slots[i].hash = hash;
    t->slots[i].rec1 = r + 1;
    return r;
}
