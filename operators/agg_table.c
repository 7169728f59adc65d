/*
 * agg_table.c - the aggregate's in-memory windows: a chained hash table of
 * entries (one per window and group) and a min-heap of when each entry's
 * next step is due (fire at its end, free at end + allowed_lateness).
 *
 * Heap items are not removed when an entry goes (spilled, merged, freed):
 * a popped item counts only if its entry is still due then (agg_due), and
 * the heap is rebuilt once stale items outnumber live entries.
 */
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"

uint64_t agg_hash(uint32_t spec, uint32_t set, int64_t start, const uint8_t *k, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)spec << 40 | (uint64_t)set << 32 | n);
    h = (h ^ (uint64_t)start) * 0xbf58476d1ce4e5b9ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, k + i, 8);
        h = (h ^ w) * 0x94d049bb133111ebull;
        h ^= h >> 29;
    }
    uint64_t tail = 0;
    if (i < n)
        memcpy(&tail, k + i, n - i);
    h = (h ^ tail) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h * 0xd6e8feb86659fd93ull;
}

static int grow_buckets(aggregate *a)
{
    size_t n = a->n_buckets ? a->n_buckets * 2 : 1024;
    uint32_t *b = calloc(n, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < a->n_entries; i++) {
        entry *e = a->entries[i];
        if (!e) /* a freed slot */
            continue;
        size_t bi = e->hash & (n - 1);
        e->next = b[bi];
        b[bi] = (uint32_t)i + 1;
    }
    free(a->buckets);
    a->buckets = b;
    a->n_buckets = n;
    return 0;
}

int64_t agg_due(const aggregate *a, const entry *e)
{
    if (!e->fired)
        return e->end;
    return e->end > INT64_MAX - a->lateness ? INT64_MAX : e->end + a->lateness;
}

int agg_heap_push(aggregate *a, int64_t at, uint32_t idx)
{
    if (a->n_heap == a->cap_heap) {
        size_t cap = a->cap_heap ? a->cap_heap * 2 : 256;
        heap_item *h = realloc(a->heap, cap * sizeof *h);
        if (!h)
            return -1;
        a->heap = h;
        a->cap_heap = cap;
    }
    size_t i = a->n_heap++;
    while (i > 0 && a->heap[(i - 1) / 2].at > at) {
        a->heap[i] = a->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    a->heap[i] = (heap_item){at, idx};
    return 0;
}

heap_item agg_heap_pop(aggregate *a)
{
    heap_item top = a->heap[0], last = a->heap[--a->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= a->n_heap)
            break;
        if (c + 1 < a->n_heap && a->heap[c + 1].at < a->heap[c].at)
            c++;
        if (a->heap[c].at >= last.at)
            break;
        a->heap[i] = a->heap[c];
        i = c;
    }
    if (a->n_heap)
        a->heap[i] = last;
    return top;
}

int agg_heap_compact(aggregate *a)
{
    if (a->n_heap < 2 * a->live + 4096)
        return 0;
    a->n_heap = 0;
    for (size_t i = 0; i < a->n_entries; i++)
        if (a->entries[i] && agg_heap_push(a, agg_due(a, a->entries[i]), (uint32_t)i) != 0)
            return -1;
    return 0;
}

entry *agg_find(aggregate *a, uint32_t spec, uint32_t set, int64_t start, const uint8_t *key,
                size_t key_len, uint32_t *idx)
{
    if (!a->n_buckets)
        return NULL;
    uint64_t hv = agg_hash(spec, set, start, key, key_len);
    for (uint32_t i = a->buckets[hv & (a->n_buckets - 1)]; i; i = a->entries[i - 1]->next) {
        entry *e = a->entries[i - 1];
        if (e->hash == hv && e->spec == spec && e->set == set && e->start == start &&
            e->key_len == key_len && (key_len == 0 || memcmp(e->key, key, key_len) == 0)) {
            *idx = i - 1;
            return e;
        }
    }
    return NULL;
}

void agg_account(aggregate *a, entry *e)
{
    size_t m = sizeof *e + a->n_comp * sizeof(agg_acc) + e->key_len + 64; /* + table, heap, malloc */
    for (size_t c = 0; a->var_mem && c < a->n_comp; c++)
        m += agg_acc_memory(&a->comp[c], &e->acc[c]);
    a->mem += m - e->mem;
    e->mem = (uint32_t)m;
}

entry *agg_insert(aggregate *a, uint32_t spec, uint32_t set, int64_t start, int64_t end,
                  const uint8_t *key, size_t key_len, uint32_t *idx_out)
{
    if (a->live + 1 > a->n_buckets / 2 && grow_buckets(a) != 0)
        return NULL;
    size_t accs = a->n_comp * sizeof(agg_acc);
    entry *e = malloc(sizeof *e + accs + key_len);
    if (!e)
        return NULL;
    uint32_t idx;
    if (a->n_free) {
        idx = a->free_list[--a->n_free];
    } else {
        if (a->n_entries == a->cap_entries) {
            size_t cap = a->cap_entries ? a->cap_entries * 2 : 1024;
            entry **p = realloc(a->entries, cap * sizeof *p);
            uint32_t *f = realloc(a->free_list, cap * sizeof *f);
            if (p)
                a->entries = p;
            if (f)
                a->free_list = f;
            if (!p || !f) {
                free(e);
                return NULL;
            }
            a->cap_entries = cap;
        }
        idx = (uint32_t)a->n_entries++;
    }
    memset(e, 0, sizeof *e + accs);
    e->spec = spec;
    e->set = set;
    e->start = start;
    e->end = end;
    e->key = (uint8_t *)e + sizeof *e + accs;
    if (key_len)
        memcpy(e->key, key, key_len);
    e->key_len = (uint32_t)key_len;
    e->hash = agg_hash(spec, set, a->specs[spec].session ? INT64_MIN : start, key, key_len);
    e->ref = 1;
    e->changed = 1;
    for (size_t c = 0; c < a->n_comp; c++)
        agg_acc_init(&a->comp[c], &e->acc[c]);
    size_t bi = e->hash & (a->n_buckets - 1);
    e->next = a->buckets[bi];
    a->buckets[bi] = idx + 1;
    a->entries[idx] = e;
    a->live++;
    agg_account(a, e);
    if (agg_heap_push(a, e->end, idx) != 0)
        return NULL;
    *idx_out = idx;
    return e;
}

void agg_release(aggregate *a, uint32_t idx)
{
    entry *e = a->entries[idx];
    uint32_t *link = &a->buckets[e->hash & (a->n_buckets - 1)];
    while (*link != idx + 1)
        link = &a->entries[*link - 1]->next;
    *link = e->next;
    for (size_t c = 0; c < a->n_comp; c++)
        agg_acc_fini(&a->comp[c], &e->acc[c]);
    a->mem -= e->mem;
    free(e);
    a->entries[idx] = NULL;
    a->free_list[a->n_free++] = idx;
    a->live--;
}

int agg_mark_dirty(aggregate *a, entry *e, uint32_t idx)
{
    if (e->dirty)
        return 0;
    if (a->n_dirty == a->cap_dirty) {
        size_t cap = a->cap_dirty ? a->cap_dirty * 2 : 64;
        uint32_t *d = realloc(a->dirty, cap * sizeof *d);
        if (!d)
            return -1;
        a->dirty = d;
        a->cap_dirty = cap;
    }
    e->dirty = 1;
    a->dirty[a->n_dirty++] = idx;
    return 0;
}
