/*
 * sluice_test_run.h - run one test of a test file: the pipeline with its
 * sources fed from the test's events and its sinks and named ports
 * captured, in process, in a temporary directory, under a time limit.
 *
 * The pipeline is rewritten before it is planned, through the same
 * KEY=VALUE overrides as `sluice run --set` (config.h), so nothing in the
 * engine knows about tests:
 * - every source becomes a `source.file` (jsonl) reading the test's events
 *   for it, or an empty file; its `watermark:` is kept, so windows and joins
 *   behave as in production, and at the end of the input every window
 *   closes as at the end of a stream;
 * - every sink becomes a `sink.file` writing JSON lines into the temporary
 *   directory (the real sinks never open their files or sockets);
 * - every expected port that is not a sink gets an added capturing
 *   `sink.file` reading it;
 * - state_dir moves into the temporary directory, checkpoints are off (and
 *   an `admin:` server too), so a test touches nothing outside it.
 */
#ifndef SLUICE_TEST_RUN_H
#define SLUICE_TEST_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "sluice_test_match.h"
#include "sluice_test_spec.h"

/* What one capturing sink received. */
typedef struct sl__test_capture {
    char *label;            /* the sink's name or the expectation's target (owned) */
    char *path;             /* its JSON-lines file (owned; gone unless the directory is kept) */
    sl__test_events events; /* in arrival order */
} sl__test_capture;

typedef enum sl__test_status {
    SL__TEST_RAN,         /* the pipeline ran to its end: compare the captures */
    SL__TEST_ERROR,       /* it could not be set up, or failed (see d / the log) */
    SL__TEST_TIMEOUT,     /* stopped at the time limit */
    SL__TEST_INTERRUPTED, /* SIGINT/SIGTERM from the user: stop testing */
} sl__test_status;

typedef struct sl__test_outcome {
    sl__test_status status;
    sl__test_capture *caps; /* every sink, then every captured port */
    size_t n_caps;
    size_t *expect_cap;     /* per expectation of the test: its index in caps */
    double seconds;         /* of the run itself */
    char *dir;              /* the temporary directory, when kept (owned) */
} sl__test_outcome;

typedef struct sl__test_opts {
    const char *const *sets; /* the command line's --set, applied before the test's own */
    size_t n_sets;
    int64_t timeout_ns;      /* for tests that set none */
    int keep;                /* keep the temporary directory */
} sl__test_opts;

/*
 * Run test tc of file f. Returns 0 with *out filled (its status says how
 * the run went; problems that kept it from running are in d), or -1 on out
 * of memory. *out must be released with sl__test_outcome_fini either way.
 * Must be called with SIGINT and SIGTERM blocked in every thread: the
 * calling thread watches for them and for the time limit while the pipeline
 * runs on another.
 */
int sl__test_run(const sl__test_file *f, const sl__test_case *tc, const sl__test_opts *o,
                 sl_diag *d, sl__test_outcome *out);

void sl__test_outcome_fini(sl__test_outcome *o);

#endif
