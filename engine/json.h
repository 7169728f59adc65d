/*
 * json.h - JSON at the edges: JSON text <-> msgpack events.
 *
 * Parsing (json_parse.cc) goes through simdjson's On-Demand API behind a C
 * interface; docs/json.md records the measurement that chose it over yajl
 * and jansson. Writing (json_write.c) is our own code (docs/json.md says why):
 * strings escaped per RFC 8259, doubles printed shortest-exact (they parse
 * back to the same bits), integers exact, msgpack timestamps as RFC 3339 text,
 * bin as base64 text.
 */
#ifndef SL_JSON_H
#define SL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/msgpack.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of readable memory the parser needs after the end of its input. */
#define SL_JSON_PADDING 64

typedef struct sl_json_parser sl_json_parser;

/* Returns NULL on out of memory. */
sl_json_parser *sl_json_parser_new(void);
/* Accepts NULL; sets *pp to NULL. */
void sl_json_parser_destroy(sl_json_parser **pp);

/*
 * Parse one JSON text `json` (`len` bytes; `capacity` >= len + SL_JSON_PADDING
 * bytes are readable from `json`) and append it as msgpack to `out`. When
 * `event` is nonzero the text must be an object, and its top-level "time"
 * member, if a string, must be RFC 3339 and is stored as a msgpack timestamp.
 * Integers that fit int64/uint64 stay integers, other numbers are doubles.
 * Returns 0; on error returns -1, leaves out->len as it was, and writes a
 * short reason ("malformed JSON: ...", "not an object", "bad time: ...") to err.
 */
int sl_json_to_msgpack(sl_json_parser *p, const char *json, size_t len, size_t capacity, int event,
                       sl_wbuf *out, char *err, size_t errlen);

/*
 * Append one msgpack value (`len` bytes at `mp`) as compact JSON to `out`
 * (no trailing newline). Returns 0, or -1 if the bytes are not valid msgpack
 * or out of memory (out->len is then restored).
 */
int sl_msgpack_to_json(const uint8_t *mp, size_t len, sl_wbuf *out);

/* Append n bytes of text as a quoted, escaped JSON string. 0, or -1 (out of memory). */
int sl_json_write_string(sl_wbuf *out, const char *s, size_t n);

/* Append a double, shortest text that parses back to the same value ("1.0" for integral). */
int sl_json_write_double(sl_wbuf *out, double d);

#ifdef __cplusplus
}
#endif

#endif
