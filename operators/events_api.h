/*
 * events_api.h - the `events_api` operator's state, shared by its files:
 *
 *   events_api.c           configuration, start, the data path: routing, publishing
 *                          (one durable append per batch of requests), answers
 *   events_api_validate.c  CloudEvents 1.0 (JSON format) validation, and the event as stored
 *   events_api_query.c     GET /v1/events (query, filters, cursors) and GET /v1/events/{id}
 *
 * docs/gateway/events.md is the user's reference and records the design choices.
 */
#ifndef SL_EVENTS_API_H
#define SL_EVENTS_API_H

#include <stddef.h>
#include <stdint.h>

#include "eventlog.h"
#include "json.h"
#include "sluice/operator.h"

#define EVAPI_MAX_ATTRS 100          /* attributes of one event (duplicate checks are quadratic) */
#define EVAPI_MAX_TYPES 32           /* types in one query's type=a,b,... */
#define EVAPI_MAX_FILTERS 16         /* data.* filters in one query */
#define EVAPI_HOLD_BYTES (16u << 20) /* events and requests waiting past this: append at once */

/* A request event (docs/gateway.md) as read in place: pointers borrow from the event. */
typedef struct evapi_request {
    const char *method, *path, *body, *ctype;
    size_t mlen, plen, blen, clen;
    int has_ctype, binary_mode; /* a content-type header; a ce-specversion header */
    const uint8_t *query;       /* the `query` map's msgpack, or NULL */
    const uint8_t *scopes;      /* the `scopes` array's msgpack, or NULL */
    const uint8_t *end;         /* end of the event: bound for query and scopes */
    int64_t time_ns;            /* `time`: when it was received */
    int has_time;
} evapi_request;

/* A valid publish request waiting for the append. */
typedef struct evapi_pending {
    size_t req_off, req_len; /* the request event, copied into reqs */
    size_t first, n;         /* its events: [first, first + n) of the waiting events */
} evapi_pending;

typedef struct evapi_counts {
    uint64_t published, duplicates, rejected, queries, failures;
} evapi_counts;

typedef struct evapi {
    /* configuration */
    const char *log_path;
    sl_eventlog_opts opts;
    const char *prefix;
    size_t prefix_len;
    uint32_t max_batch, max_limit, default_limit;
    uint64_t max_scan;
    const char *read_scope, *write_scope; /* NULL: not checked */
    int answered_port, errors_port;
    /* running */
    sl_eventlog *log;
    sl_json_parser *jp;
    sl_wbuf pad;    /* a request body, padded for the parser */
    sl_wbuf parsed; /* the body as msgpack */
    sl_wbuf store;  /* the waiting requests' events as stored, back to back */
    sl_wbuf reqs;   /* the waiting requests, copied */
    sl_wbuf body;   /* a response body being written */
    sl_wbuf resp;   /* the `response` value (msgpack) */
    sl_wbuf out;    /* the answered request */
    sl_wbuf tmp;    /* scratch: one event's JSON, a query's strings */
    sl_wbuf copy;   /* an event read by id */
    /* the waiting events (offsets into store until the append) and publish requests */
    size_t *ev_off, *ev_len;
    const uint8_t **evs;
    sl_eventlog_result *res;
    size_t n_ev, cap_ev;
    evapi_pending *pend;
    size_t n_pend, cap_pend;
    evapi_counts c, reported;
} evapi;

/* ------------------------------------------------------------ events_api.c */

/* Write the `response` value {status, headers, body} into a->resp. 0 or -1 (out of memory). */
int evapi_response(evapi *a, int status, const char *ctype, const void *body, size_t body_len,
                   const char *hname, const char *hval);
/*
 * Answer request ev (len bytes, borrowed) with status, content type and body
 * (body_len bytes; NULL for none) and up to one extra header (hname NULL for
 * none): the request leaves by `answered` with `response` set. 0, or -1 (out of
 * memory, or the pipeline stopping).
 */
int evapi_answer(evapi *a, sl_ctx *ctx, const uint8_t *ev, size_t len, int status,
                 const char *ctype, const void *body, size_t body_len, const char *hname,
                 const char *hval);
/* Replace each byte of s (n bytes) that is not part of a whole UTF-8 sequence with '?'. */
void evapi_utf8_clean(char *s, size_t n);
/* Answer with an error body {"error": error, "detail": printf(fmt, ...)}. 0 or -1. */
int evapi_answer_error(evapi *a, sl_ctx *ctx, const uint8_t *ev, size_t len, int status,
                       const char *error, const char *hname, const char *hval, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));

/* --------------------------------------------------- events_api_validate.c */

/*
 * Check the msgpack map at *p (a JSON-format CloudEvent, parsed; not past end)
 * against CloudEvents 1.0 and append it to `out` as stored: the same pairs in
 * their order, attributes whose value is null left out (JSON format: null is
 * absent), `time` as a msgpack timestamp, and `time: recv_ns` added when it has
 * none. *p is moved past the value either way. Returns NULL, or the reason it
 * is invalid (a sentence in `why`, or static text), or evapi_oom when out
 * could not grow; out->len is then as it was.
 */
extern const char evapi_oom[];
const char *evapi_event_store(const uint8_t **p, const uint8_t *end, int64_t recv_ns, sl_wbuf *out,
                              char *why, size_t whylen);
/* Whether n bytes at s are base64 (RFC 4648 alphabet; padding optional but exact). */
int evapi_base64_ok(const char *s, size_t n);

/* ------------------------------------------------------ events_api_query.c */

/* GET prefix: a query. 0 once answered, or -1 (out of memory, pipeline stopping). */
int evapi_query(evapi *a, sl_ctx *ctx, const uint8_t *ev, size_t len, const evapi_request *r);
/* GET prefix/{id}. 0 once answered, or -1. */
int evapi_get(evapi *a, sl_ctx *ctx, const uint8_t *ev, size_t len, const char *id, size_t idlen);

#endif
