/*
 * bench_bloom.c - `sluice-bench-bloom [N] [ERROR_RATE]`: the blocked bloom filter
 * (engine/bloom.h) against a plain open-addressing hash set of the same keys.
 *
 * Keys are what dedup sees for the generator's ids: msgpack strings "evt-0000000042" (15
 * bytes); absent keys are "abs-...". The filter is sized for N keys (default 10M) at
 * ERROR_RATE (default 0.01) and gets all N present keys. Then N lookups of present keys and N
 * of absent keys, each three ways: plain (one after the other), batch (the blocks of 1024
 * keys prefetched, then their lookups) and ahead (as dedup does: in batches of 1024, the
 * block of key i + 8 prefetched before key i is looked up). Hashing is timed apart: the
 * lookup figures take the hash as given. The FPR is the share of absent keys answered
 * "maybe"; a present key answered "no" would be a bug and is reported.
 *
 * The hash set is the exact structure a filter saves dedup from consulting: 16-byte slots
 * (hash, key index), linear probing, load <= 1/2, the key bytes compared on a hash match; it
 * is timed the same three ways. Prints one line per figure; asserts nothing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bloom.h"

#define KEY_LEN 15 /* fixstr header + "evt-" + 10 digits */
#define BATCH 1024
#define AHEAD 8 /* dedup's prefetch distance */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_key(uint8_t *k, const char *prefix, uint64_t i)
{
    k[0] = 0xa0 | (KEY_LEN - 1);
    memcpy(k + 1, prefix, 4);
    for (int d = KEY_LEN - 1; d >= 5; d--) {
        k[d] = (uint8_t)('0' + i % 10);
        i /= 10;
    }
}

/* ---------------------------------------------------------- the hash set */

typedef struct slot {
    uint64_t hash;
    uint64_t idx; /* key index + 1; 0 = free */
} slot;

typedef struct set {
    slot *slots;
    uint64_t mask;
    const uint8_t *keys; /* KEY_LEN bytes per key */
} set;

static uint64_t set_home(const set *s, uint64_t h) { return (h ^ (h >> 29)) & s->mask; }

static void set_add(set *s, uint64_t h, uint64_t idx)
{
    uint64_t i = set_home(s, h);
    while (s->slots[i].idx)
        i = (i + 1) & s->mask;
    s->slots[i].hash = h;
    s->slots[i].idx = idx + 1;
}

static int set_has(const set *s, uint64_t h, const uint8_t *key)
{
    for (uint64_t i = set_home(s, h);; i = (i + 1) & s->mask) {
        const slot *sl = &s->slots[i];
        if (!sl->idx)
            return 0;
        if (sl->hash == h && memcmp(s->keys + (sl->idx - 1) * KEY_LEN, key, KEY_LEN) == 0)
            return 1;
    }
}

/* ------------------------------------------------------------ the runs */

typedef struct run {
    const sl_bloom *b;
    const set *s;
    const uint64_t *hashes;
    const uint8_t *keys;
    uint64_t n;
} run;

static uint64_t bloom_plain(const run *r)
{
    uint64_t hits = 0;
    for (uint64_t i = 0; i < r->n; i++)
        hits += (uint64_t)sl_bloom_may_contain(r->b, r->hashes[i]);
    return hits;
}

static uint64_t bloom_batched(const run *r)
{
    uint64_t hits = 0;
    for (uint64_t i = 0; i < r->n; i += BATCH) {
        uint64_t end = i + BATCH < r->n ? i + BATCH : r->n;
        for (uint64_t j = i; j < end; j++)
            sl_bloom_prefetch(r->b, r->hashes[j]);
        for (uint64_t j = i; j < end; j++)
            hits += (uint64_t)sl_bloom_may_contain(r->b, r->hashes[j]);
    }
    return hits;
}

static uint64_t bloom_ahead(const run *r)
{
    uint64_t hits = 0;
    for (uint64_t i = 0; i < r->n; i += BATCH) {
        uint64_t end = i + BATCH < r->n ? i + BATCH : r->n;
        for (uint64_t j = i; j < i + AHEAD && j < end; j++)
            sl_bloom_prefetch(r->b, r->hashes[j]);
        for (uint64_t j = i; j < end; j++) {
            if (j + AHEAD < end)
                sl_bloom_prefetch(r->b, r->hashes[j + AHEAD]);
            hits += (uint64_t)sl_bloom_may_contain(r->b, r->hashes[j]);
        }
    }
    return hits;
}

static uint64_t set_plain(const run *r)
{
    uint64_t hits = 0;
    for (uint64_t i = 0; i < r->n; i++)
        hits += (uint64_t)set_has(r->s, r->hashes[i], r->keys + i * KEY_LEN);
    return hits;
}

static uint64_t set_batched(const run *r)
{
    uint64_t hits = 0;
    for (uint64_t i = 0; i < r->n; i += BATCH) {
        uint64_t end = i + BATCH < r->n ? i + BATCH : r->n;
        for (uint64_t j = i; j < end; j++)
            __builtin_prefetch(&r->s->slots[set_home(r->s, r->hashes[j])], 0, 3);
        for (uint64_t j = i; j < end; j++)
            hits += (uint64_t)set_has(r->s, r->hashes[j], r->keys + j * KEY_LEN);
    }
    return hits;
}

static uint64_t set_ahead(const run *r)
{
    uint64_t hits = 0;
    for (uint64_t i = 0; i < r->n; i += BATCH) {
        uint64_t end = i + BATCH < r->n ? i + BATCH : r->n;
        for (uint64_t j = i; j < i + AHEAD && j < end; j++)
            __builtin_prefetch(&r->s->slots[set_home(r->s, r->hashes[j])], 0, 3);
        for (uint64_t j = i; j < end; j++) {
            if (j + AHEAD < end)
                __builtin_prefetch(&r->s->slots[set_home(r->s, r->hashes[j + AHEAD])], 0, 3);
            hits += (uint64_t)set_has(r->s, r->hashes[j], r->keys + j * KEY_LEN);
        }
    }
    return hits;
}

/* Time f over r: best of 3; returns ns per lookup and its hit count. */
static double timed(uint64_t (*f)(const run *), const run *r, uint64_t *hits)
{
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_s();
        *hits = f(r);
        double dt = now_s() - t0;
        if (dt < best)
            best = dt;
    }
    return best * 1e9 / (double)r->n;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
    double eps = argc > 2 ? strtod(argv[2], NULL) : 0.01;
    if (n == 0 || !(eps > 0 && eps < 1)) {
        fprintf(stderr, "usage: sluice-bench-bloom [N > 0] [ERROR_RATE in (0, 1)]\n");
        return 2;
    }
    uint8_t *present = malloc(n * KEY_LEN), *absent = malloc(n * KEY_LEN);
    uint64_t *hp = malloc(n * sizeof *hp), *ha = malloc(n * sizeof *ha);
    uint64_t cap = 1;
    while (cap < 2 * n)
        cap <<= 1;
    set s = {calloc(cap, sizeof(slot)), cap - 1, present};
    sl_bloom b;
    if (!present || !absent || !hp || !ha || !s.slots || sl_bloom_init(&b, n, eps) != 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (uint64_t i = 0; i < n; i++) {
        make_key(present + i * KEY_LEN, "evt-", i);
        make_key(absent + i * KEY_LEN, "abs-", i);
    }
    memset(hp, 0, n * sizeof *hp); /* fault the pages in: the timing is the hash's */
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++)
        hp[i] = sl_hash_bytes(present + i * KEY_LEN, KEY_LEN);
    double t_hash = now_s() - t0;
    for (uint64_t i = 0; i < n; i++)
        ha[i] = sl_hash_bytes(absent + i * KEY_LEN, KEY_LEN);

    printf("bloom: %" PRIu64 " keys at %g: k = %u, %" PRIu64 " blocks, %.1f MiB, %.2f bits/key, "
           "model FPR %.4f%%\n",
           n, eps, b.k, b.n_blocks, (double)sl_bloom_memory(&b) / 1048576.0,
           (double)sl_bloom_memory(&b) * 8 / (double)n, 100 * sl_bloom_expected_fpr(&b, n));
    printf("hash (XXH64 of %d bytes): %.1f ns/key\n", KEY_LEN, t_hash * 1e9 / (double)n);

    t0 = now_s();
    for (uint64_t i = 0; i < n; i++)
        sl_bloom_add(&b, hp[i]);
    printf("bloom insert:                 %6.1f ns/key (%.1f MiB)\n",
           (now_s() - t0) * 1e9 / (double)n, (double)sl_bloom_memory(&b) / 1048576.0);
    t0 = now_s();
    for (uint64_t i = 0; i < n; i++)
        set_add(&s, hp[i], i);
    printf("hash set insert:              %6.1f ns/key (%.1f MiB)\n",
           (now_s() - t0) * 1e9 / (double)n, (double)(cap * sizeof(slot)) / 1048576.0);

    run rp = {&b, &s, hp, present, n}, ra = {&b, &s, ha, absent, n};
    uint64_t h1, h2, h3;
    printf("lookups, ns each:             plain   batch   ahead\n");
    double p1 = timed(bloom_plain, &rp, &h1);
    double p2 = timed(bloom_batched, &rp, &h2);
    double p3 = timed(bloom_ahead, &rp, &h3);
    printf("bloom, present keys:         %6.1f  %6.1f  %6.1f   (%" PRIu64 " of %" PRIu64
           " found%s)\n",
           p1, p2, p3, h1, n, h1 == n && h2 == n && h3 == n ? "" : ": FALSE NEGATIVES");
    p1 = timed(bloom_plain, &ra, &h1);
    p2 = timed(bloom_batched, &ra, &h2);
    p3 = timed(bloom_ahead, &ra, &h3);
    printf("bloom, absent keys:          %6.1f  %6.1f  %6.1f   (FPR %.4f%%, configured %g%%)\n",
           p1, p2, p3, 100.0 * (double)h1 / (double)n, 100 * eps);
    p1 = timed(set_plain, &rp, &h1);
    p2 = timed(set_batched, &rp, &h2);
    p3 = timed(set_ahead, &rp, &h3);
    printf("hash set, present keys:      %6.1f  %6.1f  %6.1f   (%" PRIu64 " found)\n", p1, p2,
           p3, h1);
    p1 = timed(set_plain, &ra, &h1);
    p2 = timed(set_batched, &ra, &h2);
    p3 = timed(set_ahead, &ra, &h3);
    printf("hash set, absent keys:       %6.1f  %6.1f  %6.1f   (%" PRIu64 " found)\n", p1, p2,
           p3, h1);
    sl_bloom_fini(&b);
    free(s.slots);
    free(present);
    free(absent);
    free(hp);
    free(ha);
    return 0;
}
