/*
 * registry.h - the operator types a pipeline may use, by YAML type name.
 *
 * Built-in operators register at start-up (operators/builtin.c); plugins add
 * theirs when loaded. Descriptors are borrowed (static storage in the binary
 * or in a plugin that stays loaded). Not thread-safe: fill it before running.
 */
#ifndef SL_REGISTRY_H
#define SL_REGISTRY_H

#include <stddef.h>

#include "sluice/operator.h"

typedef struct sl_registry_entry {
    const sl_operator *op; /* borrowed */
    const char *origin;    /* "built-in" or the plugin's path (borrowed) */
} sl_registry_entry;

/*
 * Add an operator type. Returns 0, SL_EDUPLICATE if the name is taken, or
 * SL_EABI if the descriptor's abi_version/struct_size/param_size do not fit.
 */
int sl_registry_add(const sl_operator *op, const char *origin);
/* What sl_registry_add would say of op, without adding it. */
int sl_registry_check(const sl_operator *op);
/* Entry for a type name, or NULL. */
const sl_registry_entry *sl_registry_find(const char *name);
/* Number of entries and the i-th (sorted by name). */
size_t sl_registry_count(void);
const sl_registry_entry *sl_registry_at(size_t i);
/* NULL-terminated array of all names (static storage, valid until the next add). */
const char *const *sl_registry_names(void);

/* Register every built-in operator (idempotent). Defined in operators/builtin.c. */
void sl_builtin_register(void);

/* Output ports of `op` for the given operator node: fixed ports then port_param keys. */
const char *const *sl_operator_fixed_outputs(const sl_operator *op);
const char *const *sl_operator_inputs(const sl_operator *op);

#endif
