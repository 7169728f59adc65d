/*
 * sluice_test_match.h - `sluice test`'s matcher: does what a sink or port
 * emitted meet what the test expects, and if not, where exactly not.
 *
 * Values on both sides are msgpack (expected events converted from the
 * test file's YAML, actual events parsed from the captured JSON lines), so
 * one reader serves both.
 *
 * Matching one event (docs/testing.md):
 * - partial (default): every key of an expected mapping must be present in
 *   the actual one with a matching value; other keys are ignored. Nested
 *   mappings match the same way. `exact`: the key sets must also be equal.
 * - sequences match element by element and must have the same length;
 * - numbers compare numerically (10 == 10.0); strings byte for byte, or as
 *   instants when both are RFC 3339 times ("...T00:00:00Z" equals
 *   "...T00:00:00.000Z"); null, booleans and everything else by value.
 *
 * Matching a list: `strict` order compares actual i with expected i;
 * `any` order finds a distinct actual event for each expected one (first
 * fit, in expected order). Either way the counts must be equal.
 */
#ifndef SLUICE_TEST_MATCH_H
#define SLUICE_TEST_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "sluice_test_value.h"

/* One event: its msgpack bytes and where it came from. */
typedef struct sl__test_event {
    uint8_t *mp;  /* owned */
    size_t len;
    int line;     /* expected: its line in the test file; actual: its line in the capture */
    char *json;   /* actual: the captured JSON line (owned); expected: NULL */
} sl__test_event;

typedef struct sl__test_events {
    sl__test_event *v;
    size_t n, cap;
} sl__test_events;

/* Append an event; takes ownership of mp and json, even on failure. Returns 0 or -1. */
int sl__test_events_add(sl__test_events *l, uint8_t *mp, size_t len, int line, char *json);
void sl__test_events_fini(sl__test_events *l);

/*
 * Compare the actual value `act` with the expected value `exp` (msgpack, one
 * value each, borrowed). Returns the number of differences (0: they match).
 * With `why` non-NULL, appends one line per difference, like
 *   at .data.total: expected 10, got 12
 *   at .status: missing (expected "PAID")
 * (-1 only on out of memory).
 */
long sl__test_compare(const uint8_t *exp, size_t exp_len, const uint8_t *act, size_t act_len,
                      int exact, sl__strs *why);

/* How a list of actual events is checked. */
typedef struct sl__test_rule {
    int64_t count;  /* >= 0: only the number of events is checked; -1: compare `exp` */
    int any_order;  /* order: any */
    int exact;      /* match: exact */
} sl__test_rule;

/*
 * Check the events `act` against `exp` under `rule` (all borrowed). Returns
 * 0 when they meet it, 1 when not - then the report lines (without
 * indentation) are appended to `out` - or -1 on out of memory.
 */
int sl__test_check(const sl__test_events *exp, const sl__test_rule *rule,
                   const sl__test_events *act, sl__strs *out);

#endif
