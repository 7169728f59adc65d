/*
 * harness.h - test one operator in isolation, as GStreamer's GstHarness
 * does: events (JSON text) go in through a feeding source, the operator runs
 * inside the real runtime, and what it emits on each output port is
 * collected as JSON text. One harness at a time per process.
 */
#ifndef SL_TEST_HARNESS_H
#define SL_TEST_HARNESS_H

#include <stddef.h>

typedef struct sl_harness sl_harness;

/*
 * A harness around one operator whose YAML mapping body is `op_yaml`
 * (e.g. "type: filter\nwhere: data.total > 100.0"; one key per line, no
 * indentation). Returns NULL and prints the diagnostics if it is invalid.
 */
sl_harness *sl_harness_new(const char *op_yaml);
/* Queue one input event as a JSON object. Returns 0 or -1 (not valid JSON). */
int sl_harness_push(sl_harness *h, const char *json);
/* Run the operator over everything queued, to end of stream. Returns 0 or the runtime's error. */
int sl_harness_run(sl_harness *h);
/* Number of events emitted on `port`, and the i-th as compact JSON (borrowed). */
size_t sl_harness_count(const sl_harness *h, const char *port);
const char *sl_harness_out(const sl_harness *h, const char *port, size_t i);
/* Counter `name` of the operator after the run (0 if never counted). */
unsigned long long sl_harness_counter(const sl_harness *h, const char *name);
void sl_harness_destroy(sl_harness **hp);

#endif
