/*
 * http_server.h - the HTTP/1.1 server behind `source.http` and `respond`
 * (docs/gateway/http.md), on libh2o-evloop.
 *
 * A server belongs to one `source.http` operator and is found by that
 * operator's name in a process-wide registry, so that `respond` instances
 * (other operators, other stage threads) can answer on it. It is shared by
 * reference count: the source holds one reference from init, each respond
 * instance one from start; the last release tears it down.
 *
 * Threads. The server runs `threads` event loops on threads of its own; a
 * loop's evloop, h2o context, sockets and receivers are made on that thread
 * and only that thread touches them (tools/bench/http_eval/h2o_server.c is
 * the reference). Two crossings, both batched:
 *
 *   loop -> source stage   each loop gathers the requests of one loop
 *                          iteration as msgpack events in a chunk and
 *                          appends the chunk to the server's queue (one
 *                          mutex); the source's produce waits on a
 *                          condition variable, takes every queued chunk and
 *                          emits the events.
 *   respond -> loop        respond writes its answers into one batch per
 *                          loop and hands each batch over with
 *                          h2o_multithread_send_message; the loop writes
 *                          the responses.
 *
 * The conn handle. A request waiting for its answer holds a slot of its
 * loop. conn = generation << 32 | loop << 24 | slot; the slot's generation
 * changes whenever it is taken, and a slot is freed when the request is
 * answered, times out (504) or the client goes away. An answer whose loop,
 * slot or generation does not match a waiting request is stale: counted,
 * never applied. Nothing but the owning loop reads a slot.
 *
 * Admission. A loop answers 503 with Retry-After itself, without an event,
 * when `max_inflight` requests wait for answers or `max_queue` events wait
 * for the source stage.
 */
#ifndef SL_HTTP_SERVER_H
#define SL_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/msgpack.h"

typedef struct sl_http_server sl_http_server;

/* What source.http's parameters say (docs/gateway/http.md). */
typedef struct sl_http_config {
    char host[256];        /* address to listen on, as written ("127.0.0.1", "::1", "0.0.0.0") */
    uint16_t port;         /* 0: the kernel picks one */
    uint32_t threads;      /* event loops, 1 to 64 */
    uint32_t max_inflight; /* requests emitted and not answered yet, 1 to 2^24 - 1 */
    uint32_t max_queue;    /* events waiting for the source stage */
    uint64_t max_body;     /* bytes: 413 beyond */
    uint64_t max_header;   /* bytes of request line and header fields: 431 beyond */
    int64_t header_ns;     /* the head of a request, from its first byte */
    int64_t body_ns;       /* the body, from the end of the head */
    int64_t idle_ns;       /* a connection waiting for a request */
    int64_t response_ns;   /* a request waiting for its answer: 504 */
    int64_t retry_after_ns;
    int64_t drain_ns; /* graceful stop: how long requests in flight may take */
} sl_http_config;

/* The largest request head h2o reads (H2O_MAX_REQLEN: 8 KiB + 4 KiB per header, 100 headers). */
#define SL_HTTP_MAX_HEADER_LIMIT (8192u + 4096u * 100u)

/* ------------------------------------------------------------ life cycle */

/*
 * Register a server named `name` (copied) with configuration cfg (copied);
 * nothing is bound yet. *out holds one reference. Returns 0, -EEXIST if a
 * server of that name is registered in this process, -ENOMEM. Any thread.
 */
int sl_http_server_new(const char *name, const sl_http_config *cfg, sl_http_server **out);

/*
 * Find a registered server and take a reference: by name, or with name NULL
 * the only one. Returns it, or NULL: *why is then -ENOENT (none of that
 * name, or none at all) or -EEXIST (name NULL and several registered).
 */
sl_http_server *sl_http_server_find(const char *name, int *why);

/*
 * Drop a reference and NULL *sp (accepts NULL). The last one stops the
 * server: requests still waiting are answered 503, connections are closed
 * once their responses are written (within what is left of `drain`, and at
 * most a second more), the loop threads are joined and everything is freed.
 */
void sl_http_server_release(sl_http_server **sp);

/*
 * Bind the listeners and start the loop threads. On failure writes the
 * reason to err and returns a negative errno; the server can then only be
 * released. Threads inherit the caller's signal mask (SIGPIPE is blocked in
 * them besides).
 */
int sl_http_server_start(sl_http_server *s, char *err, size_t errlen);

/* The bound port (after start), and "http://host:port". */
uint16_t sl_http_server_port(const sl_http_server *s);
const char *sl_http_server_url(const sl_http_server *s);

/* ------------------------------------------------------- the source side */

/*
 * A run of request events from one loop: n msgpack maps back to back in
 * data; event i ends at ends[i]. Borrowed by the source between take calls.
 */
typedef struct sl_http_chunk {
    struct sl_http_chunk *next;
    sl_wbuf data;
    uint32_t *ends;
    uint64_t *conns; /* the conn handle of each event (the loop's business) */
    uint32_t n, cap;
} sl_http_chunk;

/*
 * Hand back the chunks of the previous call (*list, may be NULL), then wait
 * until events are queued or the monotonic clock reaches deadline_ns, and
 * take them all: *list becomes their chunks in arrival order, NULL if none.
 * Returns the number of events taken. One consumer at a time.
 */
size_t sl_http_server_take(sl_http_server *s, int64_t deadline_ns, sl_http_chunk **list);

/* Hand back chunks taken earlier (list may be NULL), without taking any. */
void sl_http_server_give_back(sl_http_server *s, sl_http_chunk *list);

/*
 * Graceful stop: close the listeners (new connections are refused), answer
 * new requests on open connections 503 with Connection: close, close idle
 * keep-alive connections, and close the queue: requests a loop had not
 * queued yet are answered 503. What was queued before stays for
 * sl_http_server_take. Requests in flight get `drain` to be answered; then
 * 503. Idempotent.
 */
void sl_http_server_drain(sl_http_server *s);

/* Totals since start (a consistent-enough snapshot: each number is read atomically). */
typedef struct sl_http_stats {
    uint64_t requests;         /* became events */
    uint64_t rejected_503;     /* answered 503 by the server itself (full, or stopping) */
    uint64_t timeouts;         /* answered 504: no answer within `response` */
    uint64_t request_timeouts; /* answered 408: head or body too slow */
    uint64_t too_large;        /* answered 431 by the server itself */
    uint64_t idle_closed;      /* keep-alive connections closed after `idle` */
    uint64_t stale;            /* answers for requests no longer waiting */
    uint64_t client_gone;      /* requests whose connection closed before the answer */
    uint64_t responses[6];     /* written responses by class: [2] = 2xx ... [5] = 5xx */
    uint64_t connections_total;
    int64_t inflight;    /* requests waiting for an answer */
    int64_t connections; /* open connections */
    int64_t queued;      /* events waiting for the source stage */
} sl_http_stats;

void sl_http_server_stats(sl_http_server *s, sl_http_stats *out);

/* ------------------------------------------------------ the respond side */

typedef struct sl_http_responder sl_http_responder;

/* A writer of answers for one respond instance (one thread); may be made before the server
 * starts. NULL if out of memory. */
sl_http_responder *sl_http_responder_new(sl_http_server *s);
/* Sends what is pending, frees, NULLs *rp (accepts NULL). */
void sl_http_responder_destroy(sl_http_responder **rp);

/*
 * Begin the answer to request `conn` with `status` (100-999). Returns 0;
 * 1 if conn cannot name a request of this server (counted as stale: skip
 * the rest of this answer); -1 out of memory.
 */
int sl_http_responder_begin(sl_http_responder *r, uint64_t conn, int status);
/* A header field of the answer begun (name lower case, a token; value without CR, LF or NUL). */
int sl_http_responder_header(sl_http_responder *r, const char *name, size_t nlen, const char *value,
                             size_t vlen);
/* The body, which completes the answer. 0 or -1 (out of memory: the answer is dropped). */
int sl_http_responder_end(sl_http_responder *r, const void *body, size_t len);
/* Drop the answer begun. */
void sl_http_responder_cancel(sl_http_responder *r);
/* Hand every completed answer to its loop: one message per loop. */
void sl_http_responder_flush(sl_http_responder *r);

/* ------------------------------------------------------ the request event */

/* One header field as received (name already lower case). */
typedef struct sl_http_field {
    const char *name, *value;
    size_t name_len, value_len;
} sl_http_field;

/* What a request event is made of (docs/gateway.md, "The request event"). Borrowed. */
typedef struct sl_http_request_view {
    const char *id;
    size_t id_len;
    int64_t time_ns; /* wall clock */
    uint64_t conn;
    const char *method;
    size_t method_len;
    const char *target; /* the request target as sent: path, then ?query */
    size_t target_len;
    const sl_http_field *headers;
    size_t n_headers;
    const char *body;
    size_t body_len;
    const char *remote;
    size_t remote_len;
} sl_http_request_view;

/*
 * Append the request event of r to out: {id, type "http.request", time,
 * conn, method, path (percent-decoded, no query), query (map, decoded, the
 * first value of a repeated name), headers (map; repeated names joined with
 * ", "), body, remote}. scratch is working space (reset here). 0, or -1 out
 * of memory (out is then as it was).
 */
int sl_http_event_write(sl_wbuf *out, sl_wbuf *scratch, const sl_http_request_view *r);

/* The reason phrase of an HTTP status ("OK", "Not Found"; "Unknown" if none). */
const char *sl_http_reason(int status);

#endif
