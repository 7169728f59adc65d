/*
 * agg_compute.h - the aggregate's `compute:` functions: parsing "sum(amount)",
 * accumulating values, merging accumulators and writing results.
 *
 * An accumulator is a fixed-size struct per (group, function); count_distinct
 * and percentile own a sketch (sketch_hll.h, sketch_quantile.h) and first/last
 * a copy of the value's msgpack bytes, allocated when the group first sees a
 * value (per group, never per event).
 */
#ifndef SL_AGG_COMPUTE_H
#define SL_AGG_COMPUTE_H

#include <stdint.h>

#include "sketch_hll.h"
#include "sketch_quantile.h"
#include "sluice/msgpack.h"
#include "sluice/operator.h"

typedef enum agg_fn {
    AGG_COUNT,
    AGG_SUM,
    AGG_MIN,
    AGG_MAX,
    AGG_AVG,
    AGG_COUNT_DISTINCT,
    AGG_PERCENTILE,
    AGG_FIRST,
    AGG_LAST,
} agg_fn;

typedef struct agg_compute {
    const char *name;    /* output name (borrowed from the YAML) */
    agg_fn fn;
    const sl_expr *arg;  /* NULL for count() */
    const char *text;    /* "sum(amount)" (borrowed): what a checkpoint's state was made by */
    double q;            /* percentile */
} agg_compute;

/* A number or timestamp kept by min/max. */
typedef struct agg_num {
    uint8_t kind; /* 0 none yet, SL_MP_INT, SL_MP_UINT, SL_MP_FLOAT, SL_MP_EXT (timestamp) */
    union {
        int64_t i;
        uint64_t u;
        double d;
    } v;
} agg_num;

typedef struct agg_acc {
    union {
        uint64_t count;
        struct {
            double hi, lo;  /* Neumaier-compensated double part */
            int64_t i;      /* integer part while it fits */
            uint64_t n;     /* values summed (avg) */
            uint8_t doubles;/* a double was seen (or the ints overflowed): result is a double */
        } sum;
        agg_num mm;
        sl_hll *hll;
        sl_qsketch *qs;
        struct {
            int64_t t;      /* event time of the kept value */
            uint8_t *bytes; /* its msgpack (owned) */
            uint32_t len;
        } fl;
    } u;
} agg_acc;

/*
 * Parse `text` ("count()", "percentile(amount, 0.95)") for output `name`;
 * expressions are compiled through the host at `at`. Returns 0, or -1
 * after reporting the problem.
 */
int agg_compute_parse(sl_ctx *ctx, const sl_node *at, const char *name, const char *text,
                      agg_compute *out);

void agg_acc_init(const agg_compute *c, agg_acc *a);
void agg_acc_fini(const agg_compute *c, agg_acc *a);

/*
 * Add one value (msgpack bytes of the argument; NULL for count()) seen at
 * event time t. Returns 0, -1 for a value the function cannot take (the
 * reason in *why), -2 out of memory.
 */
int agg_acc_add(const agg_compute *c, agg_acc *a, const uint8_t *val, size_t len, int64_t t,
                const char **why);

/* Write the result as a msgpack value. Returns 0 or -1 (out of memory). */
int agg_acc_write(const agg_compute *c, const agg_acc *a, sl_wbuf *w);

/*
 * Add the partial result *from (borrowed) to *into, as if every value added
 * to it had been added to *into. `from_older`: from's values arrived before
 * into's (first/last break ties by arrival). Returns 0 or -2 (out of memory).
 */
int agg_acc_merge(const agg_compute *c, agg_acc *into, const agg_acc *from, int from_older);

/* Heap bytes the accumulator holds (sketches, kept values). */
size_t agg_acc_memory(const agg_compute *c, const agg_acc *a);

/*
 * The accumulator as bytes (appended to w; host byte order: state stays on
 * the machine that wrote it), and back into an initialised accumulator from
 * *p (advanced). Return 0, or -1 (out of memory; bytes not an accumulator).
 */
int agg_acc_encode(const agg_compute *c, const agg_acc *a, sl_wbuf *w);
int agg_acc_decode(const agg_compute *c, agg_acc *a, const uint8_t **p, const uint8_t *end);

#endif
