/*
 * graph_dot.h - a pipeline as a Graphviz DOT graph: operators with their
 * ports and parallelism, stages (fused chains) as clusters, edges labelled
 * with how they are carried (fused, forward, round-robin, keyed).
 */
#ifndef SL_GRAPH_DOT_H
#define SL_GRAPH_DOT_H

#include <stdio.h>

#include "pipeline.h"
#include "plan.h"

/* Write the DOT text for p as planned by plan. Returns 0 or -errno. */
int sl_graph_write_dot(const sl_pipeline *p, const sl_plan *plan, FILE *out);

#endif
