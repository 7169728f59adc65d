/*
 * graph_dot.h - a pipeline as a Graphviz DOT graph: operators with their
 * ports and parallelism, stages (fused chains) as clusters, edges labelled
 * with how they are carried (fused, forward, round-robin, keyed); optionally
 * with the rates a running engine measured.
 */
#ifndef SL_GRAPH_DOT_H
#define SL_GRAPH_DOT_H

#include <stdio.h>

#include "pipeline.h"
#include "plan.h"

/* Measured rates to draw on the operators (`sluice graph --from`), in pipeline order. */
typedef struct sl_graph_rates {
    int known;                 /* 0: the running pipeline has no such operator */
    double in, out, errors;    /* events per second */
    double busy, backpressure; /* fractions of time; busy < 0: not measured */
} sl_graph_rates;

/*
 * Write the DOT text for p as planned by plan. With rates (one per operator,
 * may be NULL) each operator shows them and is shaded by how busy it is;
 * `caption` (may be NULL) labels the graph. Returns 0 or -errno.
 */
int sl_graph_write_dot(const sl_pipeline *p, const sl_plan *plan, const sl_graph_rates *rates,
                       const char *caption, FILE *out);

#endif
