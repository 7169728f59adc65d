/*
 * params.h - check an operator's YAML mapping against its parameter table
 * (sluice/operator.h sl_param): unknown keys (with "did you mean"), missing
 * required keys, wrong value types, bad durations/sizes/enums; then apply
 * defaults by inserting default nodes, so operators always find a value.
 */
#ifndef SL_PARAMS_H
#define SL_PARAMS_H

#include "config.h"

/*
 * Check map node `op` against `table` (entries `stride` bytes apart, ending
 * at name == NULL). Keys listed in `engine_keys` (NULL-terminated: type,
 * input, parallelism, ...) are accepted and not checked here. Every problem
 * goes to d with the offending node's position; returns the number of
 * problems found (0 = fine). Defaults are inserted into `op` only when the
 * check passes.
 */
int sl_params_check(sl_node *op, const sl_param *table, size_t stride,
                    const char *const *engine_keys, const char *op_name, sl_diag *d);

/* Check one scalar against a parameter type; on error writes a message (no position). */
int sl_param_check_value(const sl_param *p, const sl_node *v, char *msg, size_t n);

const char *sl_param_type_name(sl_param_type t);

#endif
