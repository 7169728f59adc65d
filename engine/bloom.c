/*
 * bloom.c - sizing, allocation and clearing of the blocked bloom filter (bloom.h); the
 * per-key calls are inline in the header.
 *
 * Sizing: for each k, bisect the largest mean load lambda (keys per block) whose FPR(k,
 * lambda) is still within the error rate (FPR grows with lambda), take blocks = ceil(capacity
 * / lambda), and keep the k with the fewest blocks. FPR is the Poisson mixture of bloom.h,
 * summed in log space over the j that carry any weight (lambda +- 12 sqrt(lambda) + 30).
 */
#include "bloom.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

/* Odd 32-bit multipliers: the first eight are Parquet's split block filter salts. */
const uint32_t sl__bloom_salt[SL_BLOOM_MAX_K] = {
    0x47b6137bu, 0x44974d91u, 0x8824ad5bu, 0xa2b7289du, 0x705495c7u, 0x2df1424bu,
    0x9efc4947u, 0x5c6bfb31u, 0x9e3779b1u, 0x85ebca77u, 0xc2b2ae3du, 0x27d4eb2fu,
    0x165667b1u, 0xd3a2646du, 0xfd7046c5u, 0xb55a4f09u,
};

#define MAX_BLOCKS (UINT64_C(1) << 32)

double sl_bloom_fpr(uint32_t k, double lambda)
{
    if (lambda <= 0)
        return 0;
    /* q^j: the chance that one given bit is still 0 after j keys set k bits each */
    double log_q = (double)k * log1p(-1.0 / SL_BLOOM_BLOCK_BITS);
    double spread = 12 * sqrt(lambda) + 30;
    double lo = floor(lambda - spread), hi = ceil(lambda + spread);
    if (lo < 0)
        lo = 0;
    double sum = 0, log_lambda = log(lambda);
    for (double j = lo; j <= hi; j++) {
        double p = exp(-lambda + j * log_lambda - lgamma(j + 1));
        sum += p * pow(-expm1(j * log_q), (double)k);
    }
    return sum > 1 ? 1 : sum;
}

int sl_bloom_size(uint64_t capacity, double error_rate, uint32_t *k, uint64_t *n_blocks)
{
    if (capacity == 0 || !(error_rate > 0) || !(error_rate < 1))
        return -1;
    uint64_t best_blocks = 0;
    uint32_t best_k = 0;
    for (uint32_t kk = 1; kk <= SL_BLOOM_MAX_K; kk++) {
        /* largest lambda with FPR <= error_rate: FPR(lo) fits, FPR(hi) does not */
        double lo = 0, hi = SL_BLOOM_BLOCK_BITS * 4.0;
        if (sl_bloom_fpr(kk, hi) <= error_rate) {
            lo = hi;
        } else {
            for (int it = 0; it < 60 && hi - lo > 1e-9 * hi; it++) {
                double mid = (lo + hi) / 2;
                if (sl_bloom_fpr(kk, mid) <= error_rate)
                    lo = mid;
                else
                    hi = mid;
            }
        }
        if (lo <= 0)
            continue;
        double blocks = ceil((double)capacity / lo);
        if (blocks < 1)
            blocks = 1;
        if (blocks > (double)MAX_BLOCKS)
            continue;
        uint64_t nb = (uint64_t)blocks;
        if (best_k == 0 || nb < best_blocks) {
            best_blocks = nb;
            best_k = kk;
        }
    }
    if (best_k == 0)
        return -1;
    *k = best_k;
    *n_blocks = best_blocks;
    return 0;
}

int sl_bloom_init(sl_bloom *b, uint64_t capacity, double error_rate)
{
    memset(b, 0, sizeof *b);
    uint32_t k;
    uint64_t nb;
    if (sl_bloom_size(capacity, error_rate, &k, &nb) != 0)
        return -1;
    size_t bytes = (size_t)nb * (SL_BLOOM_BLOCK_BITS / 8);
    void *p = aligned_alloc(64, bytes); /* bytes is a multiple of 64, as C11 wants */
    if (!p)
        return -1;
    memset(p, 0, bytes);
    b->blocks = p;
    b->n_blocks = nb;
    b->k = k;
    b->capacity = capacity;
    b->error_rate = error_rate;
    return 0;
}

void sl_bloom_fini(sl_bloom *b)
{
    free(b->blocks);
    memset(b, 0, sizeof *b);
}

void sl_bloom_clear(sl_bloom *b)
{
    if (b->blocks)
        memset(b->blocks, 0, sl_bloom_memory(b));
    b->added = 0;
}

double sl_bloom_expected_fpr(const sl_bloom *b, uint64_t n)
{
    return b->n_blocks ? sl_bloom_fpr(b->k, (double)n / (double)b->n_blocks) : 1;
}
