/*
 * harness.h - test one operator in isolation, as GStreamer's GstHarness
 * does: events (JSON text) go in through a feeding source, the operator runs
 * inside the real runtime, and what it emits on each output port is
 * collected as JSON text (a source operator runs without the feed:
 * sl_harness_opts.source). One harness at a time per process.
 */
#ifndef SL_TEST_HARNESS_H
#define SL_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_harness sl_harness;

/*
 * A harness around one operator whose YAML mapping body is `op_yaml`
 * (e.g. "type: filter\nwhere: data.total > 100.0"; one key per line, no
 * indentation). Returns NULL and prints the diagnostics if it is invalid.
 */
sl_harness *sl_harness_new(const char *op_yaml);

typedef struct sl_harness_opts {
    /* the pipeline's state_dir; NULL: a temporary directory the harness removes */
    const char *state_dir;
    /* non-NULL: the feed declares watermark {max_out_of_order: this} (events need a
     * `time`) and sends one event per batch, so event i is processed under the
     * watermark of the events before it */
    const char *max_out_of_order;
    /* non-NULL: the operator's input slots (e.g. {"left", "right", NULL}), each fed by
     * sl_harness_push_to; NULL: the one slot `input` */
    const char *const *inputs;
    /* nonzero: the operator is a source; no feed, nothing to push */
    int source;
} sl_harness_opts;
sl_harness *sl_harness_new_with(const char *op_yaml, const sl_harness_opts *opts);
/*
 * Before a run: restore the operator's state from checkpoint `restore_id`
 * first (0: no), and at the end of the input snapshot it as checkpoint
 * `snapshot_id` instead of flushing (0: flush as usual).
 */
void sl_harness_checkpoint(sl_harness *h, uint64_t restore_id, uint64_t snapshot_id);
/* Queue one input event as a JSON object. Returns 0 or -1 (not valid JSON). */
int sl_harness_push(sl_harness *h, const char *json);
/* Queue one input event for input slot `slot` (see sl_harness_opts.inputs). */
int sl_harness_push_to(sl_harness *h, const char *slot, const char *json);
/* Run the operator over everything queued, to end of stream. Returns 0 or the runtime's error. */
int sl_harness_run(sl_harness *h);
/* Number of events emitted on `port`, and the i-th as compact JSON (borrowed). */
size_t sl_harness_count(const sl_harness *h, const char *port);
const char *sl_harness_out(const sl_harness *h, const char *port, size_t i);
/* Counter `name` of the operator after the run (0 if never counted). */
unsigned long long sl_harness_counter(const sl_harness *h, const char *name);
void sl_harness_destroy(sl_harness **hp);

/* ------------------------------------------- helpers for operator tests */

/*
 * How many of the n operator bodies `yamls` load otherwise than `valid` says
 * (each such one printed: "accepted: ..." or "refused: ..."); 0 when all do.
 * For the tables of mistakes and of their valid neighbours.
 */
size_t sl_harness_config_mismatches(const char *const *yamls, size_t n, int valid);

/*
 * RFC 3339 text of 2026-01-01T00:00:00Z + ms (0 <= ms < 1 day), as operators
 * write times: no fraction when the time is whole seconds. Returns buf.
 */
const char *sl_harness_time(char buf[40], long ms);
/* Make a fresh directory under /tmp (a state_dir for harnesses to share); NULL on error. */
const char *sl_harness_tmpdir(char buf[64]);
/* Remove dir and the files in it (an LMDB state_dir). Returns 0 or -1. */
int sl_harness_rmdir(const char *dir);

/* Emitted events as JSON text, collected across runs (owned copies). */
typedef struct sl_harness_rows {
    char **v;
    size_t n, cap;
} sl_harness_rows;
/*
 * Append what h emitted on port. A drop envelope's "time" (the wall clock
 * when it was written) is left out, so that two runs compare equal.
 */
void sl_harness_rows_collect(sl_harness_rows *r, const sl_harness *h, const char *port);
void sl_harness_rows_free(sl_harness_rows *r);
/*
 * NULL if a and b hold the same rows (as multisets when `sorted`: both get
 * sorted; else in order); otherwise the first difference, as text valid
 * until the next call.
 */
const char *sl_harness_rows_differ(sl_harness_rows *a, sl_harness_rows *b, int sorted);

#endif
