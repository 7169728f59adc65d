/*
 * ratelimit_headers.h - the rate-limit response header fields of the
 * gateway, rendered from the `ratelimit` field that the `ratelimit`
 * operator adds to each request it lets through (docs/gateway/ratelimit.md).
 *
 * Five fields, names in lower case as in the event's `response.headers`:
 *
 *   ratelimit-policy       "publish";q=200;w=1           IETF draft -08 (below)
 *   ratelimit              "publish";r=17;t=1            IETF draft -08
 *   x-ratelimit-limit      200                           legacy (de facto)
 *   x-ratelimit-remaining  17
 *   x-ratelimit-reset      1                             seconds, not a date
 *
 * The draft is draft-ietf-httpapi-ratelimit-headers-08 (October 2024):
 * both fields are Structured Field Lists (RFC 8941) of one Item, a String
 * naming the policy, with Integer parameters: q (quota), w (window,
 * seconds), r (remaining quota units), t (seconds until the quota resets).
 * When the bucket's size differs from q it is added to the policy as the
 * vendor parameter `sluice-burst` (the draft asks such parameters to carry
 * a vendor prefix). Integers are clamped to the 15 digits an sf-integer
 * holds.
 *
 * The `respond` sink calls sl_ratelimit_headers for a successful response
 * of an event that has `ratelimit`. A request the operator limited carries
 * these fields (and Retry-After) already in response.headers and has no
 * `ratelimit` field, so nothing is written twice.
 *
 * Nothing here allocates; everything runs on the caller's thread.
 */
#ifndef SL_RATELIMIT_HEADERS_H
#define SL_RATELIMIT_HEADERS_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/msgpack.h"

/* Longest policy name rendered (bytes, before escaping). */
#define SL_RATELIMIT_NAME_MAX 128

/* What the fields say about one bucket. */
typedef struct sl_ratelimit_values {
    const char *name; /* the policy's name (printable ASCII), borrowed; not NUL-terminated */
    size_t name_len;
    int64_t limit;     /* q: requests per window */
    int64_t window;    /* w: the window in seconds; 0: not stated */
    int64_t burst;     /* the bucket's size; 0 or == limit: not stated */
    int64_t remaining; /* r: requests that would pass right now */
    int64_t reset;     /* t: seconds until the bucket is full again (a 429: until Retry-After) */
} sl_ratelimit_values;

/*
 * Receives one header field: `name` is a NUL-terminated lower-case literal,
 * `value` (len bytes, also NUL-terminated) is borrowed for the call. A
 * nonzero return stops the rendering and is returned by it.
 */
typedef int (*sl_ratelimit_header_fn)(void *arg, const char *name, const char *value, size_t len);

/*
 * Call add for each of the five fields of v, in the order listed at the top
 * of this file. Returns 0, -1 if v is not renderable (a name that is empty,
 * longer than SL_RATELIMIT_NAME_MAX or not printable ASCII, a negative
 * number), or add's nonzero return.
 */
int sl_ratelimit_render(const sl_ratelimit_values *v, sl_ratelimit_header_fn add, void *arg);

/*
 * Read a `ratelimit` field value (a msgpack map, len bytes, borrowed) into v:
 * integers `limit`, `remaining` and `reset` are required; `name` (string,
 * default "default"), `burst` (integer) and `policy` (string "200;w=1", from
 * which the window is read) are optional; other keys are ignored. v->name
 * points into map. Returns 0, or -1 if the map lacks a required key or is
 * malformed.
 */
int sl_ratelimit_parse(const uint8_t *map, size_t len, sl_ratelimit_values *v);

/*
 * For `respond`: the five header fields of the `ratelimit` map (len bytes,
 * borrowed), each passed to add. Returns 0, -1 if the map is malformed (then
 * nothing was passed to add), or add's nonzero return.
 */
int sl_ratelimit_headers(const uint8_t *ratelimit_map, size_t len, sl_ratelimit_header_fn add,
                         void *arg);

/*
 * The same fields appended to out as HTTP/1.1 header lines, "name: value\r\n".
 * Returns 0, or -1 if the map is malformed or out of memory (out is then left
 * as it was).
 */
int sl_ratelimit_headers_http(const uint8_t *ratelimit_map, size_t len, sl_wbuf *out);

#endif
