/*
 * pipeline.h - a pipeline file, loaded and checked: operators with their
 * resolved types, inputs, ports and parallelism, in topological order.
 *
 * Loading reports every mistake it can find in one pass (config.h and
 * params.h do the per-node checks; this file does the graph: unknown types,
 * dangling or ambiguous inputs, unknown ports, cycles, an empty pipeline).
 * A loaded pipeline owns its configuration tree; operator nodes are borrowed
 * from it.
 */
#ifndef SL_PIPELINE_H
#define SL_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "diag.h"
#include "sluice/operator.h"

/* One input edge of an operator: slot <- (operator, port). */
typedef struct sl_input {
    int slot;               /* index into the operator's input slot names */
    size_t from;            /* index of the upstream operator */
    int port;               /* output port index on the upstream operator */
    const sl_node *at;      /* where it was written */
} sl_input;

/* The compiled form of a field path ("data.customerId") used to key edges. */
typedef struct sl_path {
    size_t n;
    char **parts;
    size_t *lens;
} sl_path;

typedef struct sl_opdef {
    char *name;
    const sl_operator *op;   /* borrowed from the registry */
    const char *origin;      /* built-in or plugin path (borrowed) */
    sl_node *node;           /* its YAML mapping (borrowed from the tree) */
    uint32_t parallelism;
    int fuse;                /* 1 fuse: true, 0 fuse: false, -1 not written (the planner decides) */
    sl_input *inputs;
    size_t n_inputs;
    char **ports;            /* output port names; [0] is the main port */
    size_t n_ports;
    /* partitioning key of each input slot (n_keys == 0: unkeyed); only with parallelism > 1 */
    sl_path *keys;
    size_t n_keys;
    /* sources: `watermark: {max_out_of_order, idle_timeout}` */
    int wm_enabled;          /* the source emits watermarks (else only +inf at its end) */
    int64_t wm_bound_ns;     /* max_out_of_order */
    int64_t wm_idle_ns;      /* idle_timeout; 0 = never idle */
} sl_opdef;

typedef struct sl_pipeline {
    char *name;
    char *file;
    char *state_dir;
    uint32_t batch_max_events;
    uint64_t batch_max_bytes;
    int64_t batch_linger_ns;
    int64_t checkpoint_interval_ns; /* 0: no checkpoints (no `checkpoint:` block) */
    char *admin_listen;      /* `admin: {listen}` as written, or NULL: no admin endpoint */
    sl_opdef *ops;
    size_t n_ops;
    size_t *topo;            /* operator indices, upstream first */
    sl_node *root;           /* owned */
} sl_pipeline;

/*
 * Load and check a pipeline file, applying `--set` assignments in order.
 * Returns 0 and *out, or SL_ECONFIG with every problem in d (nothing to free).
 */
int sl_pipeline_load(const char *path, const char *const *sets, size_t n_sets, sl_diag *d,
                     sl_pipeline **out);
/* The same from text in memory (tests); `name` is the file name in messages. */
int sl_pipeline_load_string(const char *name, const char *text, const char *const *sets,
                            size_t n_sets, sl_diag *d, sl_pipeline **out);
void sl_pipeline_destroy(sl_pipeline **pp);

/* Index of an operator by name, or -1. */
long sl_pipeline_find(const sl_pipeline *p, const char *name);
/* Number of consumers of (op, port). */
size_t sl_pipeline_consumers(const sl_pipeline *p, size_t op, int port);

/* The partitioning key of o's input slot `slot`, or NULL when o is not keyed. */
const sl_path *sl_opdef_key(const sl_opdef *o, int slot);

/* Split "HOST:PORT" (empty host: 127.0.0.1). 0, or -1 if malformed. */
int sl_listen_parse(const char *s, char *host, size_t n, int *port);

/* Parse "a.b.c" (or "a" ) into a path. Returns 0 or -1 (empty segment). */
int sl_path_parse(const char *s, sl_path *out);
void sl_path_fini(sl_path *p);

#endif
