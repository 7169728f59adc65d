/*
 * expr_arena.c - the bump allocator behind expression constants and the
 * evaluator's per-event scratch (string results, built lists, messages).
 *
 * Blocks are chained and never move or shrink; reset rewinds to the first
 * block and reuses the chain, so a warm evaluator allocates nothing. A
 * request larger than what is left in the current block moves on to the
 * next block in the chain that fits it (skipping is cheaper than a search),
 * or appends a new block twice the size of the last.
 */
#include <stdlib.h>
#include <string.h>

#include "expr_internal.h"

struct sl__xblock {
    sl__xblock *next;
    size_t cap, used;
    /* followed by cap bytes, 16-aligned through the padding below */
    uint64_t pad_;
};

#define FIRST_BLOCK 1024

void sl__xarena_init(sl__xarena *a)
{
    a->head = a->cur = NULL;
    a->blocks = 0;
}

void sl__xarena_fini(sl__xarena *a)
{
    sl__xblock *b = a->head;
    while (b) {
        sl__xblock *next = b->next;
        free(b);
        b = next;
    }
    sl__xarena_init(a);
}

void sl__xarena_reset(sl__xarena *a)
{
    for (sl__xblock *b = a->head; b; b = b->next)
        b->used = 0;
    a->cur = a->head;
}

static uint8_t *block_data(sl__xblock *b)
{
    return (uint8_t *)(b + 1);
}

void *sl__xarena_alloc(sl__xarena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n == 0) n = 8;
    sl__xblock *b = a->cur;
    while (b && b->cap - b->used < n)
        b = b->next;
    if (!b) {
        size_t cap = FIRST_BLOCK;
        sl__xblock *last = a->head;
        while (last && last->next)
            last = last->next;
        if (last) cap = last->cap * 2;
        while (cap < n) {
            if (cap > SIZE_MAX / 4) return NULL;
            cap *= 2;
        }
        if (cap > SIZE_MAX - sizeof *b) return NULL;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = NULL;
        b->cap = cap;
        b->used = 0;
        if (last)
            last->next = b;
        else
            a->head = b;
        a->blocks++;
    }
    a->cur = b;
    void *p = block_data(b) + b->used;
    b->used += n;
    return p;
}

char *sl__xarena_strdup(sl__xarena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX) return NULL;
    char *d = sl__xarena_alloc(a, n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
