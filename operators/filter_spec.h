/*
 * filter_spec.h - the seed-style filter spec (types, sources, start_time,
 * end_time, data) turned into expression text, so it compiles to the same
 * form as a `where:` expression.
 */
#ifndef SL_OP_FILTER_SPEC_H
#define SL_OP_FILTER_SPEC_H

#include "sluice/operator.h"

/*
 * Build the expression for the spec parameters present on the operator:
 * *text (malloc'ed; NULL when no spec key is present) and *at, the node to
 * report compile errors at. Returns 0, or -1 after reporting a
 * configuration error.
 */
int sl_filter_spec_text(sl_ctx *ctx, char **text, const sl_node **at);

#endif
