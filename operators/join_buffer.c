/*
 * join_buffer.c - the interval join's waiting events (join_buffer.h).
 */
#include <stdlib.h>
#include <string.h>

#include "join_buffer.h"

#define CHUNK ((size_t)1 << 20)   /* chunks are CHUNK-aligned: an object finds its chunk */
#define BIG (CHUNK / 8)           /* objects larger than this are allocated alone */

typedef struct chunk_hdr {
    size_t live;
} chunk_hdr;

#define HDR ((sizeof(chunk_hdr) + 15) & ~(size_t)15)

void sl_join_buffer_init(sl_join_buffer *jb) { memset(jb, 0, sizeof *jb); }

/* ------------------------------------------------------------ memory */

static void *obj_alloc(sl_join_buffer *jb, size_t size, int *big)
{
    size = (size + 15) & ~(size_t)15;
    if (size > BIG) {
        *big = 1;
        jb->bytes += size;
        return malloc(size);
    }
    *big = 0;
    if (!jb->chunk || jb->chunk_used + size > CHUNK) {
        chunk_hdr *c = jb->chunk;
        if (c && c->live == 0) { /* the filled chunk already emptied: reuse it */
            jb->chunk_used = HDR;
        } else {
            void *n = jb->spare;
            jb->spare = NULL;
            if (!n) {
                n = aligned_alloc(CHUNK, CHUNK);
                if (!n)
                    return NULL;
                jb->bytes += CHUNK;
            }
            ((chunk_hdr *)n)->live = 0;
            jb->chunk = n;
            jb->chunk_used = HDR;
        }
    }
    void *p = (uint8_t *)jb->chunk + jb->chunk_used;
    jb->chunk_used += size;
    ((chunk_hdr *)jb->chunk)->live++;
    return p;
}

static void obj_free(sl_join_buffer *jb, void *p, int big, size_t size)
{
    if (big) {
        jb->bytes -= (size + 15) & ~(size_t)15;
        free(p);
        return;
    }
    chunk_hdr *c = (chunk_hdr *)((uintptr_t)p & ~(uintptr_t)(CHUNK - 1));
    if (--c->live > 0 || (void *)c == jb->chunk)
        return;
    if (!jb->spare) {
        jb->spare = c;
    } else {
        free(c);
        jb->bytes -= CHUNK;
    }
}

/* ------------------------------------------------------------ keys */

static int key_eq(const sl_join_slot *s, uint64_t hash, const void *key, size_t klen)
{
    return s->hash == hash && s->key->klen == klen && memcmp(s->key->bytes, key, klen) == 0;
}

static int table_grow(sl_join_buffer *jb)
{
    size_t n = jb->n_slots ? jb->n_slots * 2 : 1024;
    sl_join_slot *s = calloc(n, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < jb->n_slots; i++) {
        if (!jb->slots[i].key)
            continue;
        size_t j = jb->slots[i].hash & (n - 1);
        while (s[j].key)
            j = (j + 1) & (n - 1);
        s[j] = jb->slots[i];
    }
    free(jb->slots);
    jb->bytes += (n - jb->n_slots) * sizeof *s;
    jb->slots = s;
    jb->n_slots = n;
    return 0;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t key_slot(const sl_join_buffer *jb, uint64_t hash, const void *key, size_t klen)
{
    size_t mask = jb->n_slots - 1, i = hash & mask;
    while (jb->slots[i].key && !key_eq(&jb->slots[i], hash, key, klen))
        i = (i + 1) & mask;
    return i;
}

static void key_remove(sl_join_buffer *jb, sl_join_key *k)
{
    size_t mask = jb->n_slots - 1, i = key_slot(jb, k->hash, k->bytes, k->klen);
    /* backward-shift deletion keeps every probe chain unbroken without tombstones */
    for (size_t j = (i + 1) & mask; jb->slots[j].key; j = (j + 1) & mask) {
        size_t home = jb->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            jb->slots[i] = jb->slots[j];
            i = j;
        }
    }
    jb->slots[i].key = NULL;
    jb->n_keys--;
    obj_free(jb, k, (int)k->big, sizeof *k + k->klen);
}

/* ------------------------------------------------------------ expiry heap */

static int heap_push(sl_join_buffer *jb, sl_join_entry *e)
{
    if (jb->heap_n == jb->heap_cap) {
        size_t cap = jb->heap_cap ? jb->heap_cap * 2 : 1024;
        sl_join_heap_item *h = realloc(jb->heap, cap * sizeof *h);
        if (!h)
            return -1;
        jb->bytes += (cap - jb->heap_cap) * sizeof *h;
        jb->heap = h;
        jb->heap_cap = cap;
    }
    size_t i = jb->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (jb->heap[parent].expire <= e->expire)
            break;
        jb->heap[i] = jb->heap[parent];
        i = parent;
    }
    jb->heap[i] = (sl_join_heap_item){e->expire, e};
    return 0;
}

static void heap_pop(sl_join_buffer *jb)
{
    sl_join_heap_item last = jb->heap[--jb->heap_n];
    size_t i = 0, n = jb->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && jb->heap[c + 1].expire < jb->heap[c].expire)
            c++;
        if (last.expire <= jb->heap[c].expire)
            break;
        jb->heap[i] = jb->heap[c];
        i = c;
    }
    if (n)
        jb->heap[i] = last;
}

/* ------------------------------------------------------------ entries */

sl_join_entry *sl_join_buffer_add(sl_join_buffer *jb, int side, uint64_t hash, const void *key,
                                  size_t klen, int64_t time, int64_t expire, const void *ev,
                                  size_t len)
{
    if ((jb->n_keys + 1) * 2 > jb->n_slots && table_grow(jb) != 0)
        return NULL;
    size_t slot = key_slot(jb, hash, key, klen);
    sl_join_key *k = jb->slots[slot].key;
    int big;
    if (!k) {
        k = obj_alloc(jb, sizeof *k + klen, &big);
        if (!k)
            return NULL;
        memset(k, 0, sizeof *k);
        k->hash = hash;
        k->klen = (uint32_t)klen;
        k->big = (uint32_t)big;
        memcpy(k->bytes, key, klen);
        jb->slots[slot] = (sl_join_slot){hash, k};
        jb->n_keys++;
    }
    sl_join_entry *e = obj_alloc(jb, sizeof *e + len, &big);
    if (!e)
        goto nomem;
    memset(e, 0, sizeof *e);
    e->key = k;
    e->time = time;
    e->expire = expire;
    e->seq = jb->seq++;
    e->len = (uint32_t)len;
    e->side = (uint8_t)side;
    e->big = (uint8_t)big;
    memcpy(e->event, ev, len);
    if (heap_push(jb, e) != 0) {
        obj_free(jb, e, big, sizeof *e + len);
        goto nomem;
    }
    e->prev = k->tail[side];
    if (e->prev)
        e->prev->next = e;
    else
        k->head[side] = e;
    k->tail[side] = e;
    jb->n_entries++;
    return e;
nomem:
    if (!k->head[0] && !k->head[1])
        key_remove(jb, k);
    return NULL;
}

static void entry_remove(sl_join_buffer *jb, sl_join_entry *e)
{
    sl_join_key *k = e->key;
    if (e->prev)
        e->prev->next = e->next;
    else
        k->head[e->side] = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        k->tail[e->side] = e->prev;
    jb->n_entries--;
    obj_free(jb, e, e->big, sizeof *e + e->len);
    if (!k->head[0] && !k->head[1])
        key_remove(jb, k);
}

int sl_join_buffer_probe(sl_join_buffer *jb, int side, uint64_t hash, const void *key,
                         size_t klen, int64_t lo, int64_t hi, sl_join_visit visit, void *arg)
{
    if (!jb->n_keys)
        return 0;
    sl_join_key *k = jb->slots[key_slot(jb, hash, key, klen)].key;
    for (sl_join_entry *e = k ? k->head[side] : NULL; e; e = e->next) {
        if (e->time < lo || e->time > hi)
            continue;
        int rc = visit(arg, e);
        if (rc)
            return rc;
    }
    return 0;
}

int sl_join_buffer_expire(sl_join_buffer *jb, int64_t wm, sl_join_visit visit, void *arg)
{
    while (jb->heap_n && jb->heap[0].expire < wm) {
        sl_join_entry *e = jb->heap[0].e;
        int rc = visit ? visit(arg, e) : 0;
        if (rc)
            return rc;
        heap_pop(jb);
        entry_remove(jb, e);
    }
    return 0;
}

int sl_join_buffer_each(sl_join_buffer *jb, sl_join_visit visit, void *arg)
{
    for (size_t i = 0; i < jb->heap_n; i++) {
        int rc = visit(arg, jb->heap[i].e);
        if (rc)
            return rc;
    }
    return 0;
}

void sl_join_buffer_clear(sl_join_buffer *jb)
{
    while (jb->heap_n) {
        sl_join_entry *e = jb->heap[0].e;
        heap_pop(jb);
        entry_remove(jb, e);
    }
}

void sl_join_buffer_fini(sl_join_buffer *jb)
{
    sl_join_buffer_clear(jb);
    free(jb->chunk);
    free(jb->spare);
    free(jb->slots);
    free(jb->heap);
    memset(jb, 0, sizeof *jb);
}
