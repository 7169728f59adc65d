/*
 * cache_table.c - the response cache's table, shared by `cache` (readers)
 * and `cache.store` (the writer), found by name in a process-wide registry.
 *
 * Layout:
 *   - entries: one allocation each (the struct, then key, headers, ETag,
 *     body and gzip form), in a chained hash table on a 64-bit hash of the
 *     key; the full key is compared, so a collision never serves another
 *     key's response;
 *   - a clock ring (array of entries) for eviction: a hit sets the entry's
 *     `ref` bit, the hand clears set bits and evicts the first entry whose
 *     bit is clear; an expired entry under the hand goes at once;
 *   - paths: each distinct path a leaf of a crit-bit tree (ordered, so all
 *     paths with a prefix are one subtree) holding the list of its entries
 *     (all queries, all scopes). An exact invalidation is one walk down the
 *     tree; a prefix invalidation one walk to the subtree, then exactly the
 *     entries under it: nothing else is scanned;
 *   - the last CACHE_INVAL_RING invalidations with their number (`gen`).
 *     A miss carries the number current when it was looked up; its response
 *     is not stored if an invalidation made since covers it (the write it
 *     reflects may predate the invalidation that arrived first).
 *
 * Locking: a readers-writer lock. Lookups (any number of `cache`
 * instances) hold it shared while they copy an entry into their answer;
 * put and invalidate hold it exclusively. Entries are freed only under the
 * exclusive lock, so a reader never sees one go. The `ref` bits and `gen`
 * are atomics (written under the shared lock, or read without it).
 *
 * Invariants: every entry is in the hash table once, in its path's list,
 * and in ring[entry->ring]; a path leaf exists iff it has entries;
 * t->n <= max_entries after every put; bytes counts entries, paths and
 * crit-bit nodes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "hash.h"

struct cache_path {
    cache_entry *entries;
    uint32_t n_entries;
    uint32_t len;
    char s[]; /* NUL-terminated (paths hold no NUL) */
};

/* A crit-bit internal node; pointers to it are tagged with the low bit. */
typedef struct cb_node {
    void *child[2];
    uint32_t byte;
    uint8_t otherbits;
} cb_node;

typedef struct inval {
    char *s;
    uint32_t len;
    int prefix;
} inval;

struct sl_cache_table {
    struct sl_cache_table *next_reg; /* the registry's list */
    char *name;
    int refs, lookups, configured; /* under the registry's mutex */
    pthread_rwlock_t lock;
    cache_cfg cfg;
    cache_entry **buckets;
    uint32_t mask; /* buckets - 1 */
    cache_entry **ring;
    uint32_t n, cap, hand;
    size_t bytes; /* entries + paths + nodes */
    void *root;   /* crit-bit tree of cache_path leaves */
    size_t n_paths, n_nodes;
    atomic_uint_fast64_t gen;       /* invalidations made */
    inval recent[CACHE_INVAL_RING]; /* invalidation k at recent[(k - 1) % RING] */
    void **todo, **found;           /* scratch of a prefix walk */
    size_t todo_cap, found_cap;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static sl_cache_table *registry;

/* ------------------------------------------------------------ crit-bit tree */

static int internal(const void *p)
{
    return (int)((uintptr_t)p & 1);
}
static cb_node *node_of(void *p)
{
    return (cb_node *)((uintptr_t)p - 1);
}

static int direction(const cb_node *q, const uint8_t *u, size_t len)
{
    uint8_t c = q->byte < len ? u[q->byte] : 0;
    return (1 + (q->otherbits | c)) >> 8;
}

static cache_path *cb_find(const sl_cache_table *t, const char *s, size_t len)
{
    void *p = t->root;
    if (!p) return NULL;
    while (internal(p)) {
        cb_node *q = node_of(p);
        p = q->child[direction(q, (const uint8_t *)s, len)];
    }
    cache_path *l = p;
    return l->len == len && memcmp(l->s, s, len) == 0 ? l : NULL;
}

/* Insert leaf l (not in the tree). 0, or -1 out of memory. */
static int cb_insert(sl_cache_table *t, cache_path *l)
{
    const uint8_t *u = (const uint8_t *)l->s;
    size_t len = l->len;
    if (!t->root) {
        t->root = l;
        return 0;
    }
    void *p = t->root;
    while (internal(p)) {
        cb_node *q = node_of(p);
        p = q->child[direction(q, u, len)];
    }
    const uint8_t *b = (const uint8_t *)((cache_path *)p)->s;
    uint32_t newbyte;
    uint32_t newotherbits;
    for (newbyte = 0; newbyte < len; newbyte++)
        if (b[newbyte] != u[newbyte]) {
            newotherbits = b[newbyte] ^ u[newbyte];
            goto different;
        }
    if (b[newbyte] == 0) return 0; /* already there: not called so */
    newotherbits = b[newbyte];
different:
    newotherbits |= newotherbits >> 1;
    newotherbits |= newotherbits >> 2;
    newotherbits |= newotherbits >> 4;
    newotherbits = (newotherbits & ~(newotherbits >> 1)) ^ 255;
    int newdirection = (1 + (newotherbits | b[newbyte])) >> 8;
    cb_node *nn = malloc(sizeof *nn);
    if (!nn) return -1;
    nn->byte = newbyte;
    nn->otherbits = (uint8_t)newotherbits;
    nn->child[1 - newdirection] = l;
    void **wherep = &t->root;
    for (;;) {
        void *w = *wherep;
        if (!internal(w)) break;
        cb_node *q = node_of(w);
        if (q->byte > newbyte) break;
        if (q->byte == newbyte && q->otherbits > newotherbits) break;
        wherep = &q->child[direction(q, u, len)];
    }
    nn->child[newdirection] = *wherep;
    *wherep = (void *)((uintptr_t)nn + 1);
    t->n_nodes++;
    t->bytes += sizeof *nn;
    return 0;
}

static void cb_delete(sl_cache_table *t, const cache_path *l)
{
    const uint8_t *u = (const uint8_t *)l->s;
    void **wherep = &t->root, **whereq = NULL;
    void *p = t->root;
    cb_node *q = NULL;
    int dir = 0;
    while (internal(p)) {
        whereq = wherep;
        q = node_of(p);
        dir = direction(q, u, l->len);
        wherep = &q->child[dir];
        p = *wherep;
    }
    if (p != l) return; /* not in the tree (cannot happen) */
    if (!whereq) {
        t->root = NULL;
        return;
    }
    *whereq = q->child[1 - dir];
    free(q);
    t->n_nodes--;
    t->bytes -= sizeof *q;
}

/* Append x to the growable array *a (*n used of *cap). 0 or -1. */
static int push(void ***a, size_t *n, size_t *cap, void *x)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        void **b = realloc(*a, c * sizeof *b);
        if (!b) return -1;
        *a = b;
        *cap = c;
    }
    (*a)[(*n)++] = x;
    return 0;
}

/*
 * The leaves whose path starts with s (n bytes) into t->found[0, *count):
 * one walk down to the subtree of the prefix, then that subtree only.
 * 0, or -1 out of memory.
 */
static int cb_prefix(sl_cache_table *t, const char *s, size_t n, size_t *count)
{
    *count = 0;
    void *p = t->root, *top = p;
    if (!p) return 0;
    const uint8_t *u = (const uint8_t *)s;
    while (internal(p)) {
        cb_node *q = node_of(p);
        p = q->child[direction(q, u, n)];
        if (q->byte < n) top = p;
    }
    cache_path *l = p;
    if (l->len < n || memcmp(l->s, s, n) != 0) return 0; /* no path has the prefix */
    size_t todo = 0;
    if (push(&t->todo, &todo, &t->todo_cap, top) != 0) return -1;
    while (todo) {
        void *x = t->todo[--todo];
        if (!internal(x)) {
            if (push(&t->found, count, &t->found_cap, x) != 0) return -1;
            continue;
        }
        cb_node *q = node_of(x);
        if (push(&t->todo, &todo, &t->todo_cap, q->child[1]) != 0 ||
            push(&t->todo, &todo, &t->todo_cap, q->child[0]) != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ entries */

static size_t path_bytes(size_t len)
{
    return sizeof(cache_path) + len + 1;
}

static void entry_remove(sl_cache_table *t, cache_entry *e)
{
    cache_entry **pp = &t->buckets[e->hash & t->mask];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    *e->pprev = e->pnext;
    if (e->pnext) e->pnext->pprev = e->pprev;
    cache_path *path = e->path;
    if (--path->n_entries == 0) {
        cb_delete(t, path);
        t->n_paths--;
        t->bytes -= path_bytes(path->len);
        free(path);
    }
    uint32_t last = --t->n;
    if (e->ring != last) {
        t->ring[e->ring] = t->ring[last];
        t->ring[e->ring]->ring = e->ring;
    }
    if (t->hand >= t->n) t->hand = 0;
    t->bytes -= e->bytes;
    free(e);
}

/* Evict one entry by the clock (expired ones at once). */
static void evict_one(sl_cache_table *t, int64_t now, cache_table_counts *c)
{
    for (uint32_t steps = 0; t->n; steps++) {
        if (t->hand >= t->n) t->hand = 0;
        cache_entry *e = t->ring[t->hand];
        if (e->expires_ns <= now) {
            c->expired++;
            entry_remove(t, e);
            return;
        }
        if (atomic_load_explicit(&e->ref, memory_order_relaxed) && steps < 2 * t->n) {
            atomic_store_explicit(&e->ref, 0, memory_order_relaxed);
            t->hand++;
            continue;
        }
        c->evictions++;
        entry_remove(t, e);
        return;
    }
}

static cache_entry *find_locked(sl_cache_table *t, uint64_t hash, const void *key, size_t klen)
{
    if (!t->buckets) return NULL;
    for (cache_entry *e = t->buckets[hash & t->mask]; e; e = e->next)
        if (e->hash == hash && e->key_len == klen && memcmp(e->data, key, klen) == 0) return e;
    return NULL;
}

static int grow_buckets(sl_cache_table *t)
{
    uint32_t nb = t->buckets ? (t->mask + 1) * 2 : 1024;
    cache_entry **b = calloc(nb, sizeof *b);
    if (!b) return -1;
    for (uint32_t i = 0; t->buckets && i <= t->mask; i++)
        for (cache_entry *e = t->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    free(t->buckets);
    t->buckets = b;
    t->mask = nb - 1;
    return 0;
}

/* Whether invalidation iv covers the entry with path-and-query pq (pq_len bytes). */
static int covers(const inval *iv, const uint8_t *pq, size_t pq_len)
{
    if (iv->prefix) return pq_len >= iv->len && memcmp(pq, iv->s, iv->len) == 0;
    if (memchr(iv->s, '?', iv->len)) return pq_len == iv->len && memcmp(pq, iv->s, iv->len) == 0;
    const uint8_t *q = memchr(pq, '?', pq_len);
    size_t plen = q ? (size_t)(q - pq) : pq_len;
    return plen == iv->len && memcmp(pq, iv->s, plen) == 0;
}

/* Whether an invalidation made after count `gen` covers pq (the lock held). */
static int invalidated_since(sl_cache_table *t, uint64_t gen, const uint8_t *pq, size_t pq_len)
{
    uint64_t now = atomic_load_explicit(&t->gen, memory_order_relaxed);
    if (gen > now) return 1;                    /* from another table's life: be safe */
    if (now - gen > CACHE_INVAL_RING) return 1; /* forgotten: cannot tell */
    for (uint64_t k = gen + 1; k <= now; k++)
        if (covers(&t->recent[(k - 1) % CACHE_INVAL_RING], pq, pq_len)) return 1;
    return 0;
}

int sl_cache_table_put(sl_cache_table *t, const void *key, size_t klen, size_t pq_len,
                       const cache_resp *resp, int64_t now_ns, int64_t expires_ns, uint64_t gen,
                       cache_table_counts *c)
{
    size_t data = klen + resp->hdrs_len + resp->etag_len + resp->body_len + resp->gz_len;
    size_t bytes = sizeof(cache_entry) + data + 2 * sizeof(void *);
    const uint8_t *pq = key;
    if (data > UINT32_MAX) return 0;
    /* build the entry outside the lock */
    cache_entry *e = malloc(sizeof *e + data);
    if (!e) return -1;
    memset(e, 0, sizeof *e);
    uint8_t *d = e->data;
    memcpy(d, key, klen);
    d += klen;
    e->resp = *resp;
    e->resp.hdrs = d;
    if (resp->hdrs_len) memcpy(d, resp->hdrs, resp->hdrs_len);
    d += resp->hdrs_len;
    e->resp.etag = resp->etag ? (const char *)d : NULL;
    if (resp->etag_len) memcpy(d, resp->etag, resp->etag_len);
    d += resp->etag_len;
    e->resp.body = d;
    memcpy(d, resp->body, resp->body_len);
    d += resp->body_len;
    e->resp.gz = resp->gz ? d : NULL;
    if (resp->gz_len) memcpy(d, resp->gz, resp->gz_len);
    e->hash = sl_hash_bytes(key, klen);
    e->key_len = (uint32_t)klen;
    e->pq_len = (uint32_t)pq_len;
    e->stored_ns = now_ns;
    e->expires_ns = expires_ns;
    e->bytes = bytes;
    atomic_init(&e->ref, 0);

    pthread_rwlock_wrlock(&t->lock);
    int rc = 0;
    cache_path *path = NULL;
    if (data > t->cfg.max_object || bytes + path_bytes(pq_len) + sizeof(cb_node) > t->cfg.max_bytes)
        goto done; /* too large for this cache */
    if (invalidated_since(t, gen, pq, pq_len)) {
        c->stale++;
        goto done;
    }
    cache_entry *old = find_locked(t, e->hash, key, klen);
    if (old) entry_remove(t, old);
    size_t plen =
        memchr(pq, '?', pq_len) ? (size_t)((const uint8_t *)memchr(pq, '?', pq_len) - pq) : pq_len;
    while (t->n && (t->n >= t->cfg.max_entries ||
                    t->bytes + bytes + path_bytes(plen) + sizeof(cb_node) > t->cfg.max_bytes))
        evict_one(t, now_ns, c);
    if (t->n + 1 > (uint64_t)t->mask + 1 || !t->buckets) {
        if (grow_buckets(t) != 0) goto oom;
    }
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 1024;
        cache_entry **r = realloc(t->ring, cap * sizeof *r);
        if (!r) goto oom;
        t->ring = r;
        t->cap = cap;
    }
    path = cb_find(t, (const char *)pq, plen);
    if (!path) {
        path = malloc(path_bytes(plen));
        if (!path) goto oom;
        path->entries = NULL;
        path->n_entries = 0;
        path->len = (uint32_t)plen;
        memcpy(path->s, pq, plen);
        path->s[plen] = '\0';
        if (cb_insert(t, path) != 0) {
            free(path);
            goto oom;
        }
        t->n_paths++;
        t->bytes += path_bytes(plen);
    }
    e->path = path;
    e->pnext = path->entries;
    if (e->pnext) e->pnext->pprev = &e->pnext;
    e->pprev = &path->entries;
    path->entries = e;
    path->n_entries++;
    e->next = t->buckets[e->hash & t->mask];
    t->buckets[e->hash & t->mask] = e;
    e->ring = t->n;
    t->ring[t->n++] = e;
    t->bytes += bytes;
    c->stores++;
    e = NULL;
    rc = 1;
    goto done;
oom:
    rc = -1;
done:
    pthread_rwlock_unlock(&t->lock);
    free(e);
    return rc;
}

/* Remember an invalidation (the lock held). 0 or -1. */
static int remember(sl_cache_table *t, const char *s, size_t n, int prefix)
{
    char *copy = malloc(n + 1);
    if (!copy) return -1;
    memcpy(copy, s, n);
    copy[n] = '\0';
    uint64_t k = atomic_load_explicit(&t->gen, memory_order_relaxed) + 1;
    inval *iv = &t->recent[(k - 1) % CACHE_INVAL_RING];
    free(iv->s);
    iv->s = copy;
    iv->len = (uint32_t)n;
    iv->prefix = prefix;
    atomic_store_explicit(&t->gen, k, memory_order_release);
    return 0;
}

/* Remove the entries of path leaf l whose path-and-query starts with (or is) s. */
static long remove_path(sl_cache_table *t, cache_path *l, const char *s, size_t n, int exact)
{
    long removed = 0;
    cache_entry *e = l->entries;
    uint32_t left = l->n_entries;
    while (e && left) {
        cache_entry *next = e->pnext;
        int hit = exact ? e->pq_len == n && memcmp(e->data, s, n) == 0
                        : e->pq_len >= n && memcmp(e->data, s, n) == 0;
        left--;
        if (hit) {
            int last = l->n_entries == 1;
            entry_remove(t, e);
            removed++;
            if (last) break; /* l is gone */
        }
        e = next;
    }
    return removed;
}

long sl_cache_table_invalidate(sl_cache_table *t, const char *s, size_t n, int prefix,
                               cache_table_counts *c)
{
    long removed = 0;
    pthread_rwlock_wrlock(&t->lock);
    if (remember(t, s, n, prefix) != 0) {
        removed = -1;
        goto done;
    }
    const char *q = memchr(s, '?', n);
    if (q) { /* path, then a query (prefix) or an exact path and query */
        cache_path *l = cb_find(t, s, (size_t)(q - s));
        if (l) removed = remove_path(t, l, s, n, !prefix);
    } else if (!prefix) {
        cache_path *l = cb_find(t, s, n);
        if (l) removed = remove_path(t, l, s, 0, 0);
    } else {
        size_t count;
        if (cb_prefix(t, s, n, &count) != 0) {
            removed = -1;
            goto done;
        }
        for (size_t i = 0; i < count; i++)
            removed += remove_path(t, t->found[i], s, 0, 0);
    }
    if (removed > 0) c->invalidated += (uint64_t)removed;
done:
    pthread_rwlock_unlock(&t->lock);
    return removed;
}

/* ------------------------------------------------------------ readers */

void sl_cache_table_rdlock(sl_cache_table *t)
{
    pthread_rwlock_rdlock(&t->lock);
}
void sl_cache_table_unlock(sl_cache_table *t)
{
    pthread_rwlock_unlock(&t->lock);
}

cache_entry *sl_cache_table_find(sl_cache_table *t, uint64_t hash, const void *key, size_t klen)
{
    return find_locked(t, hash, key, klen);
}

uint64_t sl_cache_table_gen(const sl_cache_table *t)
{
    return atomic_load_explicit(&((sl_cache_table *)t)->gen, memory_order_acquire);
}

void sl_cache_table_stats(sl_cache_table *t, uint64_t *entries, uint64_t *bytes)
{
    pthread_rwlock_rdlock(&t->lock);
    *entries = t->n;
    *bytes = t->bytes + (t->buckets ? ((size_t)t->mask + 1) * sizeof *t->buckets : 0) +
             (size_t)t->cap * sizeof *t->ring + (t->todo_cap + t->found_cap) * sizeof(void *) +
             sizeof *t;
    pthread_rwlock_unlock(&t->lock);
}

/* ------------------------------------------------------------ registry */

sl_cache_table *sl_cache_table_acquire(const char *name, int create, int *several)
{
    if (several) *several = 0;
    pthread_mutex_lock(&reg_lock);
    sl_cache_table *t = NULL;
    if (!name) { /* the only one */
        int n = 0;
        for (sl_cache_table *x = registry; x; x = x->next_reg, n++)
            t = x;
        if (n != 1) t = NULL;
        if (several) *several = n > 1;
    } else {
        for (t = registry; t && strcmp(t->name, name) != 0; t = t->next_reg)
            ;
    }
    if (!t && name && create) {
        t = calloc(1, sizeof *t);
        if (t && !(t->name = strdup(name))) {
            free(t);
            t = NULL;
        }
        if (t && pthread_rwlock_init(&t->lock, NULL) != 0) {
            free(t->name);
            free(t);
            t = NULL;
        }
        if (t) {
            atomic_init(&t->gen, 0);
            t->next_reg = registry;
            registry = t;
        }
    }
    if (t) t->refs++;
    pthread_mutex_unlock(&reg_lock);
    return t;
}

void sl_cache_table_release(sl_cache_table **tp)
{
    sl_cache_table *t = tp ? *tp : NULL;
    if (!t) return;
    *tp = NULL;
    pthread_mutex_lock(&reg_lock);
    int last = --t->refs == 0;
    if (last) {
        sl_cache_table **pp = &registry;
        while (*pp != t)
            pp = &(*pp)->next_reg;
        *pp = t->next_reg;
    }
    pthread_mutex_unlock(&reg_lock);
    if (!last) return;
    while (t->n)
        entry_remove(t, t->ring[t->n - 1]);
    for (size_t i = 0; i < CACHE_INVAL_RING; i++)
        free(t->recent[i].s);
    free(t->buckets);
    free(t->ring);
    free(t->todo);
    free(t->found);
    pthread_rwlock_destroy(&t->lock);
    free(t->name);
    free(t);
}

const char *sl_cache_table_name(const sl_cache_table *t)
{
    return t->name;
}

void sl_cache_table_attach(sl_cache_table *t, const cache_cfg *cfg)
{
    pthread_mutex_lock(&reg_lock);
    if (t->lookups++ == 0) {
        pthread_rwlock_wrlock(&t->lock);
        t->cfg = *cfg;
        t->configured = 1;
        pthread_rwlock_unlock(&t->lock);
    }
    pthread_mutex_unlock(&reg_lock);
}

void sl_cache_table_detach(sl_cache_table *t)
{
    pthread_mutex_lock(&reg_lock);
    t->lookups--;
    pthread_mutex_unlock(&reg_lock);
}

int sl_cache_table_configured(sl_cache_table *t, cache_cfg *cfg)
{
    pthread_mutex_lock(&reg_lock);
    int ok = t->configured;
    pthread_rwlock_rdlock(&t->lock);
    if (ok && cfg) *cfg = t->cfg;
    pthread_rwlock_unlock(&t->lock);
    pthread_mutex_unlock(&reg_lock);
    return ok;
}
