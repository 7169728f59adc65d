/*
 * sluice_test_spec.h - a pipeline's test file (X.test.yaml), loaded and
 * checked: which pipeline, and per test its overrides, the events given to
 * each source and what each sink or port must emit (docs/testing.md).
 *
 * Loading checks the file's own shape (unknown keys with a suggestion,
 * wrong kinds, bad durations) and reports every mistake as
 * file:line:col: message in one pass, as the pipeline loader does.
 * Checking a test against its loaded pipeline (sl__test_case_check) adds
 * the mistakes only the pipeline can show: an input for an operator that is
 * not a source, an expectation for something that is not a sink or port.
 *
 * Ownership: a loaded file owns its YAML tree; names and nodes in its
 * tests are borrowed from that tree and live until sl__test_file_destroy.
 */
#ifndef SLUICE_TEST_SPEC_H
#define SLUICE_TEST_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "diag.h"
#include "pipeline.h"
#include "sluice_test_match.h"
#include "sluice_test_value.h"

/* The events one source gets. */
typedef struct sl__test_input {
    const char *source;     /* the source's name (borrowed) */
    const sl_node *at;      /* where it is written (its key) */
    const sl_node *events;  /* a sequence of events (mappings, or strings as raw lines); NULL
                               when there are none or they come from `file` */
    char *file;             /* `{file: x.jsonl}` resolved against the test file (owned) */
} sl__test_input;

/* What one sink or port must emit. */
typedef struct sl__test_expect {
    const char *target;     /* "sink", "operator" or "operator.port" (borrowed) */
    const sl_node *at;      /* where it is written */
    sl__test_events events; /* the expected events as msgpack (owned); unused with a count */
    sl__test_rule rule;
} sl__test_expect;

typedef struct sl__test_case {
    const char *name;       /* borrowed */
    const sl_node *at;      /* the test's mapping */
    sl__strs sets;          /* the file's and then the test's `set`, as KEY=VALUE (owned) */
    int own_sets;           /* the test has a `set` of its own */
    int64_t timeout_ns;     /* 0: not written (the command's default applies) */
    sl__test_input *inputs;
    size_t n_inputs;
    sl__test_expect *expects;
    size_t n_expects;
} sl__test_case;

typedef struct sl__test_file {
    char *path;             /* the test file as named on the command line (owned) */
    char *pipeline;         /* the pipeline file it tests, resolved (owned) */
    sl_node *root;          /* owned */
    sl__test_case *tests;
    size_t n_tests;
} sl__test_file;

/*
 * Load and check the test file at `path`. Returns 0 and *out, with every
 * mistake found added to d: a file with mistakes is loaded as far as it
 * goes, so that sl__test_case_check can add the rest, but must not be run.
 * Returns -1 (*out NULL) when it cannot be read as a YAML mapping at all.
 */
int sl__test_file_load(const char *path, sl_diag *d, sl__test_file **out);

/* Free a loaded file; accepts NULL; sets *fp to NULL. */
void sl__test_file_destroy(sl__test_file **fp);

/* Where an expectation's events come from in pipeline p. */
typedef struct sl__test_target {
    long op;                /* operator index in p */
    const char *port;       /* output port name (borrowed from p); NULL: the sink itself */
} sl__test_target;

/*
 * Resolve an expectation target ("sink", "operator" for its only main
 * port, "operator.port") against p. Returns 0, or -1 with a one-line
 * reason in err.
 */
int sl__test_resolve(const sl_pipeline *p, const char *target, sl__test_target *t, char *err,
                     size_t errlen);

/*
 * Check test tc against its pipeline p: every input names a source, every
 * expectation a sink or an output port. Adds one diagnostic per problem at
 * the test file's position; returns the number of problems.
 */
size_t sl__test_case_check(const sl__test_case *tc, const sl_pipeline *p, sl_diag *d);

#endif
