/*
 * bloom.h - a cache-line-blocked bloom filter (dedup's "surely new" test).
 *
 * The filter is an array of 64-byte blocks (512 bits). A key, given by one 64-bit hash
 * (sl_hash_bytes, hash.h), picks one block with the hash's high 32 bits, and k bit positions inside
 * it with its low 32 bits (multiplied by k odd constants; the top 9 bits of each product are
 * a position): a lookup or an insert touches exactly one cache line, so it costs at most one
 * cache miss, and sl_bloom_prefetch can start that miss early (Putze, Sanders, Singler,
 * "Cache-, Hash- and Space-Efficient Bloom Filters", 2007; the positions are derived as in
 * the split block bloom filter of Apache Parquet / Impala, but anywhere in the block).
 *
 * Blocking costs space: keys do not spread evenly over blocks (a block holds Poisson(lambda)
 * keys, lambda = keys / blocks), and a crowded block answers "maybe" more often. The sizing
 * (sl_bloom_size) therefore uses the blocked filter's own false-positive rate,
 *
 *     FPR(k, lambda) = sum_j Poisson(j; lambda) * (1 - (1 - 1/512)^(k j))^k
 *
 * and picks the k (1..SL_BLOOM_MAX_K) and block count that meet the error rate at
 * `capacity` keys with the fewest blocks. At 1% that is 9.9 bits per key (k = 6) where an
 * unblocked filter needs 9.6 (k = 7); at 0.1%, 15.5 against 14.4. docs/dedup.md has the
 * table and the measured rates.
 *
 * Never a false negative: a key added is always reported "maybe present" until the filter
 * is cleared. No global state; one filter must not be changed from two threads at once.
 */
#ifndef SL_BLOOM_H
#define SL_BLOOM_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SL_BLOOM_BLOCK_BITS 512u /* one 64-byte cache line */
#define SL_BLOOM_MAX_K 16u       /* bits set per key at most */

/*
 * A filter, embedded by the caller (caller-allocated; sl_bloom_init / sl_bloom_fini). The
 * fields are read-only outside bloom.c/bloom.h.
 */
typedef struct sl_bloom {
    uint64_t *blocks;    /* n_blocks * 8 words, 64-byte aligned; NULL before init */
    uint64_t n_blocks;   /* 1 .. 2^32 */
    uint32_t k;          /* bits per key, 1 .. SL_BLOOM_MAX_K */
    uint64_t capacity;   /* the keys it was sized for */
    double error_rate;   /* the false-positive rate it was sized for, at capacity keys */
    uint64_t added;      /* sl_bloom_add calls since init or the last clear */
} sl_bloom;

/* The multipliers that turn the low 32 bits of a hash into bit positions (bloom.c). */
extern const uint32_t sl__bloom_salt[SL_BLOOM_MAX_K];


/*
 * The blocked filter's false-positive rate (the formula above) with k bits per key and
 * lambda keys per block on average. k in 1..SL_BLOOM_MAX_K, lambda >= 0.
 */
double sl_bloom_fpr(uint32_t k, double lambda);

/*
 * The shape of a filter for `capacity` keys (>= 1) at `error_rate` (in (0, 1)): *k and
 * *n_blocks, the fewest blocks whose FPR at capacity keys is at most error_rate (ties: the
 * smaller k). Returns 0, or -1 if the arguments are out of range or the filter would need
 * more than 2^32 blocks (256 GiB). Allocates nothing.
 */
int sl_bloom_size(uint64_t capacity, double error_rate, uint32_t *k, uint64_t *n_blocks);

/*
 * Make *b an empty filter sized by sl_bloom_size. Returns 0, or -1 (arguments out of range,
 * out of memory), in which case *b holds nothing and sl_bloom_fini is optional.
 */
int sl_bloom_init(sl_bloom *b, uint64_t capacity, double error_rate);

/* Free what *b holds; it may be initialized again or dropped. Accepts a zeroed struct. */
void sl_bloom_fini(sl_bloom *b);

/* Remove every key (all bits to 0; added = 0). Keeps the memory. */
void sl_bloom_clear(sl_bloom *b);

/* The model's false-positive rate of *b once it holds n keys. */
double sl_bloom_expected_fpr(const sl_bloom *b, uint64_t n);

/* Bytes of the bit array. */
static inline size_t sl_bloom_memory(const sl_bloom *b)
{
    return (size_t)b->n_blocks * (SL_BLOOM_BLOCK_BITS / 8);
}

/* The first word of hash's block. */
static inline const uint64_t *sl__bloom_block(const sl_bloom *b, uint64_t hash)
{
    return b->blocks + (((hash >> 32) * b->n_blocks) >> 32) * (SL_BLOOM_BLOCK_BITS / 64);
}

/*
 * Start loading hash's block into the cache (a hint: no effect on results). always_inline:
 * GCC's IPA otherwise finds a function holding only a prefetch free of side effects and
 * deletes the calls (seen with GCC 12 at -O2).
 */
static inline __attribute__((always_inline)) void sl_bloom_prefetch(const sl_bloom *b,
                                                                    uint64_t hash)
{
    __builtin_prefetch(sl__bloom_block(b, hash), 0, 3);
}

/* Add the key with this hash. Never fails; adding a key twice changes nothing but `added`. */
static inline void sl_bloom_add(sl_bloom *b, uint64_t hash)
{
    uint64_t *w = (uint64_t *)sl__bloom_block(b, hash);
    uint32_t lo = (uint32_t)hash;
    for (uint32_t i = 0; i < b->k; i++) {
        uint32_t bit = (uint32_t)(lo * sl__bloom_salt[i]) >> 23; /* 0..511 */
        w[bit >> 6] |= UINT64_C(1) << (bit & 63);
    }
    b->added++;
}

/*
 * 0 if the key with this hash was surely never added (since the last clear); 1 if it may
 * have been (a false positive with probability about sl_bloom_expected_fpr).
 */
static inline int sl_bloom_may_contain(const sl_bloom *b, uint64_t hash)
{
    const uint64_t *w = sl__bloom_block(b, hash);
    uint32_t lo = (uint32_t)hash;
    uint64_t all = 1;
    for (uint32_t i = 0; i < b->k; i++) { /* no early exit: an unpredictable branch costs more */
        uint32_t bit = (uint32_t)(lo * sl__bloom_salt[i]) >> 23;
        all &= w[bit >> 6] >> (bit & 63);
    }
    return (int)(all & 1);
}

#ifdef __cplusplus
}
#endif

#endif
