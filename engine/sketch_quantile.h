/*
 * sketch_quantile.h - DDSketch quantile sketch (percentile), mergeable and serializable.
 *
 * Relative accuracy alpha = 0.01: a quantile it answers is within 1% of the true value of
 * that rank, for positive and negative values alike, as long as the sketch has not collapsed
 * (more than 2048 buckets per sign, i.e. values of one sign spanning more than about 17
 * decimal orders of magnitude; see docs/sketches.md). Values with |v| < 1e-9 count as 0.
 * The minimum and the maximum are kept exactly.
 *
 * No global state: distinct sketches may be used from distinct threads; one sketch must not
 * be used from two threads at once unless every use is a const one.
 */
#ifndef SL_SKETCH_QUANTILE_H
#define SL_SKETCH_QUANTILE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SL_QSKETCH_ALPHA 0.01    /* relative accuracy */
#define SL_QSKETCH_MAX_BINS 2048 /* buckets per sign before the lowest ones collapse */
#define SL_QSKETCH_ZERO 1e-9     /* |v| below this counts as 0 */

/* One sign's buckets; private to sketch_quantile.c. */
typedef struct sl_qstore {
    uint64_t *bins; /* bins[k] counts bucket index base + k; NULL until the first value */
    int32_t base;   /* bucket index of bins[0] */
    uint32_t cap;   /* allocated bins, at most SL_QSKETCH_MAX_BINS */
    int32_t lo, hi; /* lowest and highest bucket with a count (both counts > 0); lo > hi: empty */
} sl_qstore;

/*
 * A sketch, embedded by the caller (caller-allocated; sl_qsketch_init / sl_qsketch_fini).
 * The fields are private to sketch_quantile.c; they are here only so that the struct can be
 * embedded.
 */
typedef struct sl_qsketch {
    sl_qstore pos;  /* v >= 1e-9, by bucket of v */
    sl_qstore neg;  /* v <= -1e-9, by bucket of -v */
    uint64_t zero;  /* |v| < 1e-9 */
    uint64_t count; /* all values */
    double min, max;
} sl_qsketch;

/* Make *s an empty sketch. Allocates nothing. */
void sl_qsketch_init(sl_qsketch *s);

/* Free what *s holds and leave it empty (as after sl_qsketch_init). */
void sl_qsketch_fini(sl_qsketch *s);

/*
 * Add one value (ints are passed as doubles). Returns 0; or -1, leaving *s unchanged, if v is
 * NaN or infinite (the caller reports it) or when out of memory.
 */
int sl_qsketch_add(sl_qsketch *s, double v);

/*
 * Add the content of *from (borrowed, unchanged) to *into: afterwards *into is the same
 * sketch as one that had every value of both added to it, in any order. `into` and `from`
 * must be different sketches (asserted). Returns 0, or -1 when out of memory, with *into unchanged.
 */
int sl_qsketch_merge(sl_qsketch *into, const sl_qsketch *from);

/* Number of values added. */
uint64_t sl_qsketch_count(const sl_qsketch *s);

/*
 * The q-quantile into *out: an estimate of the value of rank floor(q * (count - 1)) (0-based,
 * in ascending order), within 1% of it (see the top of the file); q = 0 gives the exact
 * minimum and q = 1 the exact maximum, and no answer is outside [min, max]. Returns 0, or -1
 * (*out untouched) if the sketch is empty or q is not in [0, 1].
 */
int sl_qsketch_quantile(const sl_qsketch *s, double q, double *out);

/* Bytes sl_qsketch_serialize writes for *s: 23 to 41000; about 2 per bucket in use. */
size_t sl_qsketch_serialized_size(const sl_qsketch *s);

/*
 * Write *s to out (sl_qsketch_serialized_size(s) bytes, caller-owned) in the portable format
 * of docs/sketches.md. Equal sketches give equal bytes. Returns 0 (it cannot fail).
 */
int sl_qsketch_serialize(const sl_qsketch *s, uint8_t *out);

/*
 * Replace the content of *s (an initialized sketch) by the sketch serialized in in[0..len)
 * (borrowed). Returns 0; or -1, leaving *s unchanged, when the bytes are not exactly one
 * valid serialized sketch (any length, any content is safe to pass) or when out of memory.
 */
int sl_qsketch_deserialize(sl_qsketch *s, const uint8_t *in, size_t len);

/* Heap bytes held by *s (not counting the struct itself, nor malloc's own overhead). */
size_t sl_qsketch_memory(const sl_qsketch *s);

#ifdef __cplusplus
}
#endif

#endif
