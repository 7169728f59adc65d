/*
 * auth_cache.c - the auth operator's validation cache: SHA-256(credential) ->
 * the result of validating it (success with consumer, plan and scopes, or a
 * failure with its reason), until an expiry time.
 *
 * Layout: entries in one array that grows by doubling up to `max` (then it is
 * full and stays put); an open-addressing table of (tag, entry + 1) slots,
 * linear probing, at most half full, backward-shift deletion. The hash is the
 * first 8 bytes of the SHA-256 itself: already uniform, nothing to compute.
 * Removed entries go to a free list and keep their blob's memory, so once
 * warm neither a hit nor a miss allocates.
 *
 * Eviction when `max` entries are held: the clock (second chance). A hit sets
 * the entry's ref bit; the hand clears ref bits as it passes and takes the
 * first entry that is unreferenced or expired. Amortised O(1), no list to
 * maintain on a hit, close to LRU for a cache like this one.
 *
 * Invalidation: remove(sha) for one credential (an API key's SHA-256 is what
 * the key store holds, so a revoked key's entry is found directly); sweep(id)
 * for a consumer, a pass over the entries comparing a 64-bit hash of the
 * consumer id first. docs/gateway/auth.md says why a sweep rather than an
 * index or generation counters.
 *
 * Invariants: every used entry is in the table exactly once; unused entries
 * in [0, hw) are on the free list; n <= max; cap <= max.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "hash.h"

static uint64_t sha_hash(const uint8_t *sha)
{
    uint64_t h;
    memcpy(&h, sha, sizeof h);
    return h;
}

void auth_cache_init(auth_cache *c, uint32_t max)
{
    memset(c, 0, sizeof *c);
    c->max = max ? max : 1;
    c->free_head = AUTH_NONE;
}

void auth_cache_fini(auth_cache *c)
{
    for (uint32_t i = 0; i < c->hw; i++)
        free(c->e[i].blob);
    free(c->e);
    free(c->slots);
    memset(c, 0, sizeof *c);
}

/* The slot holding entry i (which is in the table). */
static uint32_t slot_of(const auth_cache *c, uint32_t i)
{
    uint32_t s = (uint32_t)sha_hash(c->e[i].sha) & c->mask;
    while (c->slots[s].e1 != i + 1)
        s = (s + 1) & c->mask;
    return s;
}

/* Take entry i out of the table (backward-shift deletion) and onto the free list. */
static void remove_at(auth_cache *c, uint32_t i)
{
    uint32_t s = slot_of(c, i);
    for (uint32_t j = s;;) {
        j = (j + 1) & c->mask;
        if (!c->slots[j].e1) break;
        uint32_t home = (uint32_t)sha_hash(c->e[c->slots[j].e1 - 1].sha) & c->mask;
        /* the entry at j may move to the hole at s unless its home lies cyclically in (s, j] */
        int stays = s <= j ? (home > s && home <= j) : (home > s || home <= j);
        if (!stays) {
            c->slots[s] = c->slots[j];
            s = j;
        }
    }
    c->slots[s].e1 = 0;
    auth_entry *e = &c->e[i];
    e->used = 0;
    e->blob_len = 0;
    e->next_free = c->free_head;
    c->free_head = i;
    c->n--;
}

auth_entry *auth_cache_find(auth_cache *c, const uint8_t *sha, int64_t now)
{
    if (!c->slots) return NULL;
    uint64_t h = sha_hash(sha);
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint32_t s = (uint32_t)h & c->mask; c->slots[s].e1; s = (s + 1) & c->mask) {
        if (c->slots[s].tag != tag) continue;
        uint32_t i = c->slots[s].e1 - 1;
        auth_entry *e = &c->e[i];
        if (memcmp(e->sha, sha, AUTH_SHA_LEN) != 0) continue;
        if (e->expires <= now) {
            remove_at(c, i);
            return NULL;
        }
        e->ref = 1;
        return e;
    }
    return NULL;
}

int auth_cache_remove(auth_cache *c, const uint8_t *sha)
{
    if (!c->slots) return 0;
    uint64_t h = sha_hash(sha);
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint32_t s = (uint32_t)h & c->mask; c->slots[s].e1; s = (s + 1) & c->mask) {
        uint32_t i = c->slots[s].e1 - 1;
        if (c->slots[s].tag == tag && memcmp(c->e[i].sha, sha, AUTH_SHA_LEN) == 0) {
            remove_at(c, i);
            return 1;
        }
    }
    return 0;
}

uint64_t auth_consumer_hash(const char *id, size_t len)
{
    return sl_hash_bytes(id, len) | 1;
}

uint32_t auth_cache_sweep(auth_cache *c, const char *id, size_t len)
{
    uint64_t h = auth_consumer_hash(id, len);
    uint32_t removed = 0;
    for (uint32_t i = 0; i < c->hw; i++) {
        auth_entry *e = &c->e[i];
        if (e->used && e->ok && e->chash == h && e->consumer_len == len &&
            memcmp(e->blob + e->consumer_off, id, len) == 0) {
            remove_at(c, i);
            removed++;
        }
    }
    return removed;
}

/* Rebuild the table with n_slots (a power of two) slots. 0 or -1 (out of memory). */
static int rehash(auth_cache *c, uint32_t n_slots)
{
    auth_slot *s = calloc(n_slots, sizeof *s);
    if (!s) return -1;
    uint32_t mask = n_slots - 1;
    for (uint32_t i = 0; c->slots && i <= c->mask; i++) {
        if (!c->slots[i].e1) continue;
        uint32_t j = (uint32_t)sha_hash(c->e[c->slots[i].e1 - 1].sha) & mask;
        while (s[j].e1)
            j = (j + 1) & mask;
        s[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = s;
    c->mask = mask;
    return 0;
}

/* Make room for one more entry below `max`: entries and a table at most half full. */
static int grow(auth_cache *c)
{
    if (c->hw == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 64;
        if (cap > c->max || cap < c->cap) cap = c->max;
        auth_entry *e = realloc(c->e, (size_t)cap * sizeof *e);
        if (!e) return -1;
        memset(e + c->cap, 0, (size_t)(cap - c->cap) * sizeof *e);
        c->e = e;
        c->cap = cap;
    }
    uint64_t need = (uint64_t)c->cap * 2;
    if (!c->slots || need > (uint64_t)c->mask + 1) {
        uint64_t n = c->slots ? (uint64_t)c->mask + 1 : 128;
        while (n < need)
            n *= 2;
        return rehash(c, (uint32_t)n);
    }
    return 0;
}

/* Evict one entry with the clock: the first expired or unreferenced one the hand meets. */
static void evict(auth_cache *c, int64_t now)
{
    for (;;) {
        if (c->hand >= c->hw) c->hand = 0;
        uint32_t i = c->hand++;
        auth_entry *e = &c->e[i];
        if (!e->used) continue;
        if (e->ref && e->expires > now) {
            e->ref = 0;
            continue;
        }
        remove_at(c, i);
        return;
    }
}

auth_entry *auth_cache_add(auth_cache *c, const uint8_t *sha, int64_t now)
{
    if (c->n == c->max) evict(c, now);
    uint32_t i;
    if (c->free_head != AUTH_NONE) {
        i = c->free_head;
        c->free_head = c->e[i].next_free;
    } else {
        if (grow(c) != 0) return NULL;
        i = c->hw++;
    }
    auth_entry *e = &c->e[i];
    memcpy(e->sha, sha, AUTH_SHA_LEN);
    e->used = 1;
    e->ref = 0;
    e->ok = 0;
    e->chash = 0;
    e->blob_len = 0;
    e->next_free = AUTH_NONE;
    uint64_t h = sha_hash(sha);
    uint32_t s = (uint32_t)h & c->mask;
    while (c->slots[s].e1)
        s = (s + 1) & c->mask;
    c->slots[s].tag = (uint32_t)(h >> 32);
    c->slots[s].e1 = i + 1;
    c->n++;
    return e;
}

int auth_entry_set_blob(auth_cache *c, auth_entry *e, const void *data, size_t n)
{
    if (n > UINT32_MAX) return -1;
    if (n > e->blob_cap) {
        uint32_t cap = e->blob_cap ? e->blob_cap : 64;
        while (cap < n)
            cap *= 2;
        uint8_t *b = realloc(e->blob, cap);
        if (!b) return -1;
        c->blob_bytes += cap - e->blob_cap;
        e->blob = b;
        e->blob_cap = cap;
    }
    if (n) memcpy(e->blob, data, n);
    e->blob_len = (uint32_t)n;
    return 0;
}

size_t auth_cache_bytes(const auth_cache *c)
{
    return (size_t)c->cap * sizeof(auth_entry) +
           (c->slots ? ((size_t)c->mask + 1) * sizeof(auth_slot) : 0) + c->blob_bytes;
}
