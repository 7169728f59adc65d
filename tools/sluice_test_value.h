/*
 * sluice_test_value.h - the values `sluice test` moves between a test file and
 * a pipeline: YAML nodes as msgpack (typed as YAML's core schema types them),
 * YAML nodes back as flow-YAML text (for --set style overrides), msgpack as
 * short JSON text for messages, and a growable list of strings.
 *
 * Typing of plain scalars (as YAML 1.2's core schema): `~`/`null`/empty is
 * null, `true`/`false` a bool, a decimal (or 0x) integer an integer, a
 * decimal number a double; anything else, and every quoted scalar, a string.
 * So `total: 10` is the number 10 and `id: "10"` the string "10".
 */
#ifndef SLUICE_TEST_VALUE_H
#define SLUICE_TEST_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "sluice/msgpack.h"

/* A growable list of owned strings. Zero-initialise; sl__strs_fini frees. */
typedef struct sl__strs {
    char **v;
    size_t n, cap;
} sl__strs;

/* Append a copy of s. Returns 0 or -1 (out of memory). */
int sl__strs_add(sl__strs *l, const char *s);
/* Append a formatted string. Returns 0 or -1 (out of memory). */
int sl__strs_addf(sl__strs *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl__strs_fini(sl__strs *l);

/*
 * Append node n (borrowed) as one msgpack value to out: mappings as maps
 * (keys as strings), sequences as arrays, scalars typed as above.
 * Returns 0, or -1 on out of memory.
 */
int sl__node_to_msgpack(const sl_node *n, sl_wbuf *out);

/*
 * Append node n as flow YAML text to out (NUL-terminated) such that loading
 * it gives the same tree: plain scalars stay plain where flow syntax allows,
 * quoted ones are single-quoted, and '$' is doubled so that ${VAR} expansion
 * (already done when n was loaded) is not applied a second time.
 * Returns 0, or -1 on out of memory.
 */
int sl__node_to_flow(const sl_node *n, sl_wbuf *out);

/* Append s (NUL-terminated) as a single-quoted YAML scalar with '$' doubled. */
int sl__yaml_quote(sl_wbuf *out, const char *s);

/*
 * Compact JSON for the msgpack value at mp (len bytes) into buf (size n),
 * cut to at most `max` characters with "..." (max < n). Invalid msgpack
 * prints as "(invalid)". Returns buf.
 */
const char *sl__mp_json(const uint8_t *mp, size_t len, size_t max, char *buf, size_t n);

/* s cut to `max` bytes (at a UTF-8 boundary) with "...", into buf (size n > max + 3). */
const char *sl__cut(const char *s, size_t max, char *buf, size_t n);

#endif
