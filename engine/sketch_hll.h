/*
 * sketch_hll.h - HyperLogLog distinct counter (count_distinct), mergeable and serializable.
 *
 * Precision 14 (16384 registers) over 64-bit hashes. A sketch starts sparse (an exact set of
 * 32-bit entries, a few bytes per distinct value) and turns dense (16384 one-byte registers)
 * once the sparse table would outgrow the registers. Relative error about 0.8% (one standard
 * deviation) once dense; exact up to a few thousand distinct values. See docs/sketches.md for
 * the measured error, the memory and the serialized format.
 *
 * No global state: distinct sketches may be used from distinct threads; one sketch must not
 * be used from two threads at once unless every use is a const one.
 */
#ifndef SL_SKETCH_HLL_H
#define SL_SKETCH_HLL_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SL_HLL_P 14                       /* precision: index bits of a hash */
#define SL_HLL_REGISTERS (1u << SL_HLL_P) /* 16384 registers, one byte each when dense */

/*
 * A sketch, embedded by the caller (caller-allocated; sl_hll_init / sl_hll_fini). The fields
 * are private to sketch_hll.c; they are here only so that the struct can be embedded.
 */
typedef struct sl_hll {
    union {
        uint32_t *slots; /* sparse: open-addressing table of `cap` entries, 0 = free */
        uint8_t *regs;   /* dense: SL_HLL_REGISTERS registers */
    } u;                 /* NULL while sparse with no entry */
    uint32_t n;          /* sparse: entries in the table */
    uint32_t cap;        /* sparse: slots in the table (0 or a power of two); 0 when dense */
    uint32_t dense;      /* 0 sparse, 1 dense */
} sl_hll;

/* Make *h an empty sketch. Allocates nothing. */
void sl_hll_init(sl_hll *h);

/* Free what *h holds and leave it empty (as after sl_hll_init); h may be reused or dropped. */
void sl_hll_fini(sl_hll *h);

/*
 * Add one value, given by its hash (sl_hash_bytes, hash.h). Adding a hash twice has no effect.
 * Returns 0, or -1 when out of memory, in which case *h is unchanged. Only a sparse sketch
 * allocates (amortized table growth, and the one switch to dense); a dense one never does.
 */
int sl_hll_add(sl_hll *h, uint64_t hash);

/*
 * Add the content of *from (borrowed, unchanged) to *into: afterwards *into is the sketch of
 * the union, the same as if every hash of both had been added to it (in either order).
 * Merging a sketch into itself changes nothing. Returns 0, or -1 when out of memory, in which
 * case *into is unchanged.
 */
int sl_hll_merge(sl_hll *into, const sl_hll *from);

/*
 * Estimated number of distinct hashes added; 0 for an empty sketch. While sparse (up to 3072
 * distinct) the count is exact except that hashes sharing their top 25 bits count once (at
 * 300 values the chance of any such pair is 0.13%, at 3000 about 13%; linear counting adds
 * the expected number back). Once dense: Ertl's improved estimator (2017), no bias tables.
 */
uint64_t sl_hll_estimate(const sl_hll *h);

/* Bytes sl_hll_serialize writes for *h: 8 + 4 per entry sparse, 16388 dense. */
size_t sl_hll_serialized_size(const sl_hll *h);

/*
 * Write *h to out (sl_hll_serialized_size(h) bytes, caller-owned), in the portable format
 * of docs/sketches.md. Two sketches with the same content serialize to the same bytes,
 * whatever the order of the adds and merges that built them. Returns 0 (it cannot fail;
 * the int is for symmetry with the other calls).
 */
int sl_hll_serialize(const sl_hll *h, uint8_t *out);

/*
 * Replace the content of *h (an initialized sketch) by the sketch serialized in
 * in[0..len) (borrowed). Returns 0; or -1, leaving *h unchanged, when the bytes are not
 * exactly one valid serialized sketch (any length, any content is safe to pass) or when
 * out of memory.
 */
int sl_hll_deserialize(sl_hll *h, const uint8_t *in, size_t len);

/* Heap bytes held by *h (not counting the struct itself, nor malloc's own overhead). */
size_t sl_hll_memory(const sl_hll *h);

#ifdef __cplusplus
}
#endif

#endif
