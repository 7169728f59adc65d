/*
 * registry.c - operator types by name, kept sorted so listings are stable.
 * A small array: a pipeline has tens of types, lookups happen at load time.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "registry.h"

static sl_registry_entry *entries;
static size_t n_entries, cap_entries;
static const char **names; /* NULL-terminated mirror of the entry names */

static const char *const default_inputs[] = {"input", NULL};
static const char *const default_outputs[] = {"out", NULL};
static const char *const no_ports[] = {NULL};

const char *const *sl_operator_inputs(const sl_operator *op)
{
    if (op->flags & SL_OP_SOURCE)
        return no_ports;
    return op->inputs ? op->inputs : default_inputs;
}

const char *const *sl_operator_fixed_outputs(const sl_operator *op)
{
    return op->outputs ? op->outputs : default_outputs;
}

int sl_registry_check(const sl_operator *op)
{
    /* fields appended after `restore` are optional: read them through SL_OP_HAS */
    if (!op || op->abi_version != SL_ABI_VERSION ||
        op->struct_size < offsetof(sl_operator, checkpoint_done) ||
        (op->params && op->param_size < sizeof(sl_param)) || !op->name || !op->init)
        return SL_EABI;
    return sl_registry_find(op->name) ? SL_EDUPLICATE : 0;
}

int sl_registry_add(const sl_operator *op, const char *origin)
{
    int rc = sl_registry_check(op);
    if (rc != 0)
        return rc;
    if (n_entries + 1 >= cap_entries) {
        size_t cap = cap_entries ? cap_entries * 2 : 32;
        sl_registry_entry *e = realloc(entries, cap * sizeof *e);
        if (!e)
            return -12;
        entries = e;
        const char **nn = realloc(names, (cap + 1) * sizeof *nn);
        if (!nn)
            return -12;
        names = nn;
        cap_entries = cap;
    }
    size_t at = 0;
    while (at < n_entries && strcmp(entries[at].op->name, op->name) < 0)
        at++;
    memmove(entries + at + 1, entries + at, (n_entries - at) * sizeof *entries);
    entries[at].op = op;
    entries[at].origin = origin;
    n_entries++;
    for (size_t i = 0; i < n_entries; i++)
        names[i] = entries[i].op->name;
    names[n_entries] = NULL;
    return 0;
}

const sl_registry_entry *sl_registry_find(const char *name)
{
    for (size_t i = 0; i < n_entries; i++)
        if (strcmp(entries[i].op->name, name) == 0)
            return &entries[i];
    return NULL;
}

size_t sl_registry_count(void) { return n_entries; }

const sl_registry_entry *sl_registry_at(size_t i) { return i < n_entries ? &entries[i] : NULL; }

const char *const *sl_registry_names(void)
{
    static const char *const empty[] = {NULL};
    return names ? (const char *const *)names : empty;
}
