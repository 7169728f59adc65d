/*
 * http_server.c - the HTTP/1.1 server of source.http and respond, on
 * libh2o-evloop (h2o 2.2.5 in Debian 12). Interface and threading model:
 * http_server.h; user manual: docs/gateway/http.md.
 *
 * A loop thread owns everything h2o: its evloop, context, listener,
 * connections, requests, and its slot table (the requests waiting for an
 * answer). Other threads reach a loop only through the server's queue (the
 * loop pushes, the source stage takes), h2o_multithread_send_message (answer
 * batches from respond, wake-ups), and a few atomics (state, counters).
 *
 * What h2o 2.2.5 does by itself (lib/http1.c): it reads one request at a
 * time per connection and stops reading while that request is processed,
 * so a pipelined request waits in the socket buffer until the previous
 * answer has been written (responses stay in order); it answers 413 to a
 * Content-Length or chunked body over max_request_entity_size, 400 to a
 * malformed head, more than 100 header fields or a head over H2O_MAX_REQLEN
 * (about 408 KiB); it has one timeout, armed when a connection starts to
 * wait for a request and cleared when the request is complete (idle, head
 * and body together), on which it closes without a response.
 *
 * What this file adds: per-phase timeouts, from a sweep every `sweep_ms`
 * over the loop's connections. A connection not processing a request and
 * not writing is idle while its input buffer is empty, reads a head while
 * the buffer holds no blank line yet, reads a body after that; an idle
 * connection is closed after `idle`, a slow head or body is answered 408
 * and closed, a head that grows past max_header is answered 431. Closing
 * is shutdown(2) on the descriptor: h2o then reads end-of-file and closes
 * the connection itself, so no h2o object is ever freed under it. h2o's own
 * request timeout stays armed as a backstop at idle + header + body + 1 s.
 * The response timeout (504) is an h2o timeout entry in each slot.
 *
 * Invariants: a slot is free (req NULL) or holds a request of its loop
 * that has not been answered; releasing a slot unlinks its timeout and
 * clears the guard that h2o's request pool would otherwise use to release
 * it when the request goes away. Nothing touches a request or connection
 * after h2o_send_inline (the write may complete and the connection close).
 */
#define H2O_USE_LIBUV 0
#include <h2o.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_server.h"
#include "log.h"

enum { ST_RUN, ST_DRAIN, ST_FINAL };
enum { PH_IDLE, PH_HEAD, PH_BODY, PH_BUSY };

#define ID_DIGITS 12
#define FINAL_GRACE_MS 1000 /* after the drain: how long to wait for responses being written */

typedef struct loop loop;

/* A request waiting for its answer. */
typedef struct slot {
    h2o_timeout_entry_t timeout; /* the response timeout; first: its callback gets this address */
    h2o_req_t *req;              /* NULL when the slot is free */
    struct guard *guard;         /* in req->pool: tells us when the request goes away */
    loop *L;
    uint32_t gen;
    uint32_t next_free; /* index + 1 of the next free slot; 0 ends the list */
} slot;

typedef struct guard {
    slot *s; /* NULL once the slot was released otherwise */
} guard;

/* What we keep per connection (its socket's on_close.data). */
typedef struct hconn {
    h2o_linklist_t link; /* the loop's connections */
    h2o_socket_t *sock;
    loop *L;
    int fd;
    uint8_t phase;
    uint8_t closing; /* shut down by us: h2o closes it at end-of-file */
    uint8_t remote_len;
    uint64_t since; /* h2o_now() when the phase began */
    char remote[64];
} hconn;

/* A batch of answers for one loop (records, see responder_begin). */
struct answers {
    h2o_multithread_message_t msg;
    struct answers *next; /* the server's free list */
    sl_wbuf buf;
};

/* Written by the loop thread only (relaxed), read by anyone. */
typedef struct counters {
    _Atomic uint64_t requests, rejected, timeouts, req_timeouts, too_large, idle_closed, stale,
        gone, conns_total;
    _Atomic uint64_t responses[6];
    _Atomic int64_t conns;
} counters;

/* The response fields of one answer, as they go to send_answer. */
typedef struct hdr {
    const char *name, *value;
    size_t nlen, vlen;
} hdr;

struct loop {
    h2o_context_t ctx; /* first: req->conn->ctx points at it */
    h2o_accept_ctx_t accept_ctx;
    sl_http_server *S;
    uint32_t index;
    pthread_t tid;
    int thread_started;
    int listen_fd;
    h2o_socket_t *listener;
    h2o_multithread_receiver_t answers_rx, wakeup_rx;
    h2o_timeout_t response_to, sweep_to;
    h2o_timeout_entry_t sweep_entry;
    h2o_linklist_t conns;
    size_t nconns;
    slot *slots;
    uint32_t free_head; /* index + 1 of the first free slot, 0: none */
    uint32_t fresh;     /* slots from here on were never used (the table is touched lazily) */
    sl_http_chunk *chunk; /* this iteration's events */
    sl_wbuf scratch;
    sl_http_field *fields;
    size_t fields_cap;
    hdr *hdrs;
    size_t hdrs_cap;
    uint64_t seq;
    int state;
    uint64_t final_deadline;
    counters c;
};

struct handler {
    h2o_handler_t super;
    sl_http_server *S;
};

struct sl_http_server {
    struct sl_http_server *next; /* the registry */
    char *name;
    int refs; /* under reg_mu */
    sl_http_config cfg;
    int conf_inited;
    h2o_globalconf_t conf;
    loop *loops;
    uint32_t nloops;
    uint16_t port;
    char url[300];
    char idprefix[16];
    size_t idprefix_len;
    uint64_t sweep_ms;
    _Atomic int state;
    _Atomic int64_t drain_deadline; /* monotonic ns */
    _Atomic int64_t inflight;
    _Atomic uint64_t stale_unroutable; /* answers naming no loop or slot */
    /* loop threads report that they are up */
    pthread_mutex_t up_mu;
    pthread_cond_t up_cv;
    uint32_t up, up_failed;
    /* the queue to the source stage */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    sl_http_chunk *qhead, **qtail, *qfree;
    _Atomic int64_t queued;
    int qwaiting, qclosed;
    /* answer batches nobody uses */
    pthread_mutex_t amu;
    struct answers *afree;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static sl_http_server *reg_head;

#ifdef __SANITIZE_ADDRESS__
/*
 * libh2o 2.2.5 leaves two allocations behind per loop thread, out of our reach: the pool
 * chunks cached in a static thread-local free list (h2o_mem_alloc_recycle; a few KiB), and
 * the struct of the multithread queue, which h2o_multithread_destroy_queue does not free.
 * Bounded and once per thread; LeakSanitizer reads these patterns at exit.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\nleak:h2o_multithread_create_queue\n";
}
#endif

/* ------------------------------------------------------------ helpers */

static void note(const sl_http_server *S, sl_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(const sl_http_server *S, sl_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__vlog(S->name, level, fmt, ap);
    va_end(ap);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t ms_of(int64_t ns)
{
    return ns <= 0 ? 0 : (uint64_t)((ns + 999999) / 1000000);
}

/* A counter of the loop: one writer, so a plain load and store suffice. */
#define BUMP(L, field)                                                                             \
    atomic_store_explicit(&(L)->c.field,                                                           \
                          atomic_load_explicit(&(L)->c.field, memory_order_relaxed) + 1,           \
                          memory_order_relaxed)

static hconn *conn_of(h2o_req_t *req)
{
    h2o_socket_t *sock =
        req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    return sock ? sock->on_close.data : NULL;
}

/* ------------------------------------------------------------ chunks */

static sl_http_chunk *chunk_new(void)
{
    return calloc(1, sizeof(sl_http_chunk));
}

static void chunk_free(sl_http_chunk *k)
{
    if (!k) return;
    sl_wbuf_fini(&k->data);
    free(k->ends);
    free(k->conns);
    free(k);
}

static int chunk_reserve(sl_http_chunk *k)
{
    if (k->n < k->cap) return 0;
    uint32_t cap = k->cap ? k->cap * 2 : 64;
    uint32_t *ends = realloc(k->ends, cap * sizeof *ends);
    if (!ends) return -1;
    k->ends = ends;
    uint64_t *conns = realloc(k->conns, cap * sizeof *conns);
    if (!conns) return -1;
    k->conns = conns;
    k->cap = cap;
    return 0;
}

/* ------------------------------------------------------------ answering */

/*
 * Write a complete response on req with a content length. `close`: say
 * Connection: close and close after it (also whenever the loop is stopping).
 * req and its connection must not be touched afterwards.
 */
static void send_answer(loop *L, h2o_req_t *req, int status, const hdr *h, size_t nh,
                        const char *body, size_t blen, int close)
{
    hconn *c = conn_of(req);
    if (c) {
        c->phase = PH_IDLE; /* before sending: a pipelined request may start at once */
        c->since = h2o_now(L->ctx.loop);
    }
    if (close || L->ctx.shutdown_requested)
        req->http1_is_persistent = 0; /* decided when the head was read; say close now */
    req->res.status = status;
    req->res.reason = sl_http_reason(status);
    req->res.content_length = blen;
    for (size_t i = 0; i < nh; i++) {
        h2o_iovec_t v = h2o_strdup(&req->pool, h[i].value, h[i].vlen);
        const h2o_token_t *tok = h2o_lookup_token(h[i].name, h[i].nlen);
        if (tok) {
            h2o_add_header(&req->pool, &req->res.headers, tok, NULL, v.base, v.len);
        } else {
            h2o_iovec_t n = h2o_strdup(&req->pool, h[i].name, h[i].nlen);
            h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 0, NULL, v.base,
                                  v.len);
        }
    }
    int cls = status / 100;
    if (cls >= 1 && cls <= 5) BUMP(L, responses[cls]);
    h2o_send_inline(req, body, blen);
}

/* An error answer with a JSON body {"error", "detail"} (docs/gateway.md). */
static void send_error(loop *L, h2o_req_t *req, int status, const char *error, const char *detail,
                       int retry_after, int close)
{
    char body[512], ra[24];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"detail\":\"%s\"}", error, detail);
    if (n < 0 || (size_t)n >= sizeof body)
        n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", error);
    hdr h[2] = {{"content-type", "application/json", 12, 16}, {"retry-after", ra, 11, 0}};
    size_t nh = 1;
    if (retry_after > 0) {
        h[1].vlen = (size_t)snprintf(ra, sizeof ra, "%d", retry_after);
        nh = 2;
    }
    send_answer(L, req, status, h, nh, body, (size_t)n, close);
}

static int retry_after_s(const sl_http_server *S)
{
    int64_t s = (S->cfg.retry_after_ns + 999999999) / 1000000000;
    return s < 1 ? 1 : s > 86400 ? 86400 : (int)s;
}

static void send_busy(loop *L, h2o_req_t *req)
{
    char detail[128];
    snprintf(detail, sizeof detail, "the gateway is at capacity; retry after %d s",
             retry_after_s(L->S));
    BUMP(L, rejected);
    send_error(L, req, 503, "overloaded", detail, retry_after_s(L->S), 0);
}

static void send_stopping(loop *L, h2o_req_t *req)
{
    BUMP(L, rejected);
    send_error(L, req, 503, "unavailable", "the gateway is shutting down", retry_after_s(L->S), 1);
}

/* ------------------------------------------------------------ slots */

static void slot_release(loop *L, slot *s)
{
    h2o_timeout_unlink(&s->timeout);
    if (s->guard) s->guard->s = NULL;
    s->guard = NULL;
    s->req = NULL;
    s->next_free = L->free_head;
    L->free_head = (uint32_t)(s - L->slots) + 1;
    atomic_fetch_sub_explicit(&L->S->inflight, 1, memory_order_relaxed);
}

/* The request's pool is going away (its connection closed) before it was answered. */
static void guard_dispose(void *p)
{
    guard *g = p;
    slot *s = g->s;
    if (!s) return;
    s->guard = NULL;
    BUMP(s->L, gone);
    slot_release(s->L, s);
}

static void on_response_timeout(h2o_timeout_entry_t *entry)
{
    slot *s = (slot *)entry;
    loop *L = s->L;
    h2o_req_t *req = s->req;
    char detail[96];
    slot_release(L, s);
    BUMP(L, timeouts);
    snprintf(detail, sizeof detail, "no response within %llu ms",
             (unsigned long long)ms_of(L->S->cfg.response_ns));
    send_error(L, req, 504, "timeout", detail, 0, 0);
}

/* Answer every waiting request 503 (the pipeline will not answer them any more). */
static void abandon_all(loop *L)
{
    for (uint32_t i = 0; i < L->fresh; i++) {
        slot *s = &L->slots[i];
        if (!s->req) continue;
        h2o_req_t *req = s->req;
        slot_release(L, s);
        send_stopping(L, req);
    }
}

/* ------------------------------------------------------------ requests */

static size_t head_size(const h2o_req_t *req)
{
    size_t n = req->input.method.len + req->input.path.len + 12 + req->input.authority.len + 8;
    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

static size_t format_id(char *dst, const sl_http_server *S, uint64_t n)
{
    memcpy(dst, S->idprefix, S->idprefix_len);
    char *d = dst + S->idprefix_len;
    for (int i = ID_DIGITS - 1; i >= 0; i--) {
        d[i] = (char)('0' + n % 10);
        n /= 10;
    }
    return S->idprefix_len + ID_DIGITS;
}

/* The request becomes an event in this iteration's chunk; its slot waits for the answer. */
static void dispatch(loop *L, h2o_req_t *req, hconn *c)
{
    sl_http_server *S = L->S;
    if (!L->chunk && !(L->chunk = chunk_new())) {
        send_busy(L, req);
        return;
    }
    sl_http_chunk *k = L->chunk;
    if ((!L->free_head && L->fresh >= S->cfg.max_inflight) || k->data.len + req->entity.len + 65536 > UINT32_MAX ||
        atomic_load_explicit(&S->queued, memory_order_relaxed) + (int64_t)k->n >=
            (int64_t)S->cfg.max_queue) {
        send_busy(L, req);
        return;
    }
    if (atomic_fetch_add_explicit(&S->inflight, 1, memory_order_relaxed) >=
        (int64_t)S->cfg.max_inflight) {
        atomic_fetch_sub_explicit(&S->inflight, 1, memory_order_relaxed);
        send_busy(L, req);
        return;
    }
    uint32_t idx;
    slot *s;
    if (L->free_head) {
        idx = L->free_head - 1;
        s = &L->slots[idx];
        L->free_head = s->next_free;
    } else {
        idx = L->fresh++;
        s = &L->slots[idx];
        s->L = L;
        s->timeout.cb = on_response_timeout;
    }
    s->gen = s->gen + 1 ? s->gen + 1 : 1;
    s->req = req;
    uint64_t conn = (uint64_t)s->gen << 32 | (uint64_t)L->index << 24 | idx;

    /* the header fields, with host (which h2o keeps apart) first */
    size_t nf = req->headers.size + 1;
    if (nf > L->fields_cap) {
        sl_http_field *f = realloc(L->fields, nf * sizeof *f);
        if (!f) goto oom;
        L->fields = f;
        L->fields_cap = nf;
    }
    nf = 0;
    /* without a Host field h2o puts its host configuration's name there: not the client's */
    if (req->input.authority.len &&
        (!req->hostconf || req->input.authority.base != req->hostconf->authority.hostport.base))
        L->fields[nf++] =
            (sl_http_field){"host", req->input.authority.base, 4, req->input.authority.len};
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        L->fields[nf++] = (sl_http_field){h->name->base, h->value.base, h->name->len, h->value.len};
    }
    char id[64];
    sl_http_request_view v = {
        .id = id,
        .id_len = format_id(id, S, L->seq++ * S->nloops + L->index),
        .time_ns = wall_ns(),
        .conn = conn,
        .method = req->input.method.base,
        .method_len = req->input.method.len,
        .target = req->input.path.base,
        .target_len = req->input.path.len,
        .headers = L->fields,
        .n_headers = nf,
        .body = req->entity.base ? req->entity.base : "",
        .body_len = req->entity.base ? req->entity.len : 0,
        .remote = c ? c->remote : "",
        .remote_len = c ? c->remote_len : 0,
    };
    if (chunk_reserve(k) != 0 || sl_http_event_write(&k->data, &L->scratch, &v) != 0) goto oom;
    k->ends[k->n] = (uint32_t)k->data.len;
    k->conns[k->n] = conn;
    k->n++;
    s->guard = h2o_mem_alloc_shared(&req->pool, sizeof(guard), guard_dispose);
    s->guard->s = s;
    h2o_timeout_link(L->ctx.loop, &L->response_to, &s->timeout);
    BUMP(L, requests);
    return;
oom:
    slot_release(L, s);
    send_error(L, req, 500, "internal", "out of memory", 0, 1);
}

/* Whether the method is an RFC 9110 token (picohttpparser lets some other bytes through). */
static int method_ok(h2o_iovec_t m)
{
    if (m.len == 0) return 0;
    for (size_t i = 0; i < m.len; i++) {
        unsigned char c = (unsigned char)m.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("!#$%&'*+-.^_`|~", c))))
            return 0;
    }
    return 1;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    loop *L = (loop *)req->conn->ctx;
    sl_http_server *S = ((struct handler *)self)->S;
    hconn *c = conn_of(req);
    if (c) c->phase = PH_BUSY;
    if (L->state != ST_RUN) {
        send_stopping(L, req);
    } else if (!method_ok(req->input.method)) {
        send_error(L, req, 400, "bad request", "the method is not a token", 0, 1);
    } else if (head_size(req) > S->cfg.max_header) {
        char detail[96];
        snprintf(detail, sizeof detail, "the request line and header fields exceed %llu bytes",
                 (unsigned long long)S->cfg.max_header);
        BUMP(L, too_large);
        send_error(L, req, 431, "header too large", detail, 0, 1);
    } else {
        dispatch(L, req, c);
    }
    return 0;
}

/* Hand this iteration's events to the source stage; if the queue is closed, answer them 503. */
static void flush_chunk(loop *L)
{
    sl_http_server *S = L->S;
    sl_http_chunk *k = L->chunk;
    if (!k || !k->n) return;
    pthread_mutex_lock(&S->qmu);
    if (S->qclosed) {
        pthread_mutex_unlock(&S->qmu);
        for (uint32_t i = 0; i < k->n; i++) {
            uint32_t idx = (uint32_t)(k->conns[i] & 0xffffff);
            slot *s = &L->slots[idx];
            if (s->req && s->gen == (uint32_t)(k->conns[i] >> 32)) {
                h2o_req_t *req = s->req;
                slot_release(L, s);
                send_stopping(L, req);
            }
        }
        k->n = 0;
        sl_wbuf_reset(&k->data);
        return;
    }
    k->next = NULL;
    *S->qtail = k;
    S->qtail = &k->next;
    atomic_fetch_add_explicit(&S->queued, k->n, memory_order_relaxed);
    sl_http_chunk *fresh = S->qfree;
    if (fresh) S->qfree = fresh->next;
    if (S->qwaiting) pthread_cond_signal(&S->qcv);
    pthread_mutex_unlock(&S->qmu);
    if (!fresh) fresh = chunk_new(); /* NULL: dispatch tries again, or answers 503 */
    if (fresh) {
        fresh->n = 0;
        fresh->next = NULL;
        sl_wbuf_reset(&fresh->data);
    }
    L->chunk = fresh;
}

/* ------------------------------------------------------------ connections */

static void on_conn_close(void *data)
{
    hconn *c = data;
    loop *L = c->L;
    h2o_linklist_unlink(&c->link);
    L->nconns--;
    atomic_store_explicit(&L->c.conns, (int64_t)L->nconns, memory_order_relaxed);
    free(c);
}

static void format_remote(hconn *c, const struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    int n = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        n = snprintf(c->remote, sizeof c->remote, "%s:%u", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        n = snprintf(c->remote, sizeof c->remote, "[%s]:%u", host, port);
    }
    c->remote_len = (uint8_t)(n > 0 && (size_t)n < sizeof c->remote ? n : 0);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    loop *L = listener->data;
    if (err) return;
    for (int i = 0; i < 16; i++) { /* a few per wake-up, as h2o's own server does */
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (!sock) return;
        hconn *c = calloc(1, sizeof *c);
        if (!c) {
            h2o_socket_close(sock);
            continue;
        }
        c->sock = sock;
        c->L = L;
        c->fd = h2o_socket_get_fd(sock);
        c->phase = PH_IDLE;
        c->since = h2o_now(L->ctx.loop);
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        if (h2o_socket_getpeername(sock, (struct sockaddr *)&ss) > 0) format_remote(c, &ss);
        h2o_linklist_insert(&L->conns, &c->link);
        L->nconns++;
        atomic_store_explicit(&L->c.conns, (int64_t)L->nconns, memory_order_relaxed);
        BUMP(L, conns_total);
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
        h2o_accept(&L->accept_ctx, sock);
    }
}

/* Close c from under h2o: an optional raw response, then shutdown; h2o closes at end-of-file. */
static void close_conn(hconn *c, const char *raw)
{
    if (c->closing) return;
    if (raw) {
        ssize_t w = send(c->fd, raw, strlen(raw), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w; /* best effort: the connection closes either way */
    }
    shutdown(c->fd, SHUT_RDWR);
    c->closing = 1;
}

static const char raw_408[] =
    "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
    "Content-Type: application/json\r\nContent-Length: 75\r\n\r\n"
    "{\"error\":\"timeout\",\"detail\":\"the request did not arrive in time\"}"
    "         ";
static const char raw_431[] =
    "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
    "Content-Type: application/json\r\nContent-Length: 75\r\n\r\n"
    "{\"error\":\"header too large\",\"detail\":\"the request head is too large\"}"
    "     ";

/* The per-phase timeouts and limits of connections that are not processing a request. */
static void sweep(loop *L)
{
    sl_http_server *S = L->S;
    uint64_t now = h2o_now(L->ctx.loop);
    int stopping = L->state != ST_RUN;
    uint64_t idle = ms_of(S->cfg.idle_ns), head = ms_of(S->cfg.header_ns),
             body = ms_of(S->cfg.body_ns);
    for (h2o_linklist_t *n = L->conns.next; n != &L->conns; n = n->next) {
        hconn *c = H2O_STRUCT_FROM_MEMBER(hconn, link, n);
        if (c->closing || c->phase == PH_BUSY || h2o_socket_is_writing(c->sock)) continue;
        size_t in = c->sock->input->size;
        if (c->phase != PH_IDLE && in == 0) {
            c->phase = PH_IDLE;
            c->since = now;
        }
        if (c->phase == PH_IDLE) {
            if (in == 0) {
                if (stopping || now - c->since >= idle) {
                    if (!stopping) BUMP(L, idle_closed);
                    close_conn(c, NULL);
                }
                continue;
            }
            c->phase = PH_HEAD;
            c->since = now;
        }
        if (c->phase == PH_HEAD) {
            if (memmem(c->sock->input->bytes, in, "\r\n\r\n", 4)) {
                c->phase = PH_BODY;
                c->since = now;
            } else if (in > S->cfg.max_header) {
                BUMP(L, too_large);
                close_conn(c, raw_431);
                continue;
            } else if (now - c->since >= head) {
                BUMP(L, req_timeouts);
                close_conn(c, raw_408);
                continue;
            }
        }
        if (c->phase == PH_BODY && now - c->since >= body) {
            BUMP(L, req_timeouts);
            close_conn(c, raw_408);
        }
    }
    if (stopping && L->state == ST_DRAIN && mono_ns() >= atomic_load(&S->drain_deadline)) {
        abandon_all(L); /* `drain` is over */
        for (h2o_linklist_t *n = L->conns.next; n != &L->conns; n = n->next) {
            hconn *c = H2O_STRUCT_FROM_MEMBER(hconn, link, n);
            if (c->phase != PH_BUSY && !h2o_socket_is_writing(c->sock)) close_conn(c, NULL);
        }
    }
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    loop *L = H2O_STRUCT_FROM_MEMBER(loop, sweep_entry, entry);
    sweep(L);
    h2o_timeout_link(L->ctx.loop, &L->sweep_to, &L->sweep_entry);
}

/* ------------------------------------------------------------ answers from respond */

/* Record: u64 conn, u32 status, u32 headers, u32 body length, u32 record length; then per
 * header u32 name length, u32 value length, name, value; then the body. */
#define REC_HEAD 24

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void answers_put(sl_http_server *S, struct answers *a)
{
    sl_wbuf_reset(&a->buf);
    pthread_mutex_lock(&S->amu);
    a->next = S->afree;
    S->afree = a;
    pthread_mutex_unlock(&S->amu);
}

static void apply_answers(loop *L, const uint8_t *p, const uint8_t *end)
{
    while ((size_t)(end - p) >= REC_HEAD) {
        uint64_t conn;
        memcpy(&conn, p, 8);
        int status = (int)rd32(p + 8);
        uint32_t nh = rd32(p + 12), blen = rd32(p + 16), rlen = rd32(p + 20);
        const uint8_t *next = p + rlen, *q = p + REC_HEAD;
        if (rlen < REC_HEAD || rlen > (size_t)(end - p))
            return; /* cannot happen: the responder wrote it */
        p = next;
        uint32_t idx = (uint32_t)(conn & 0xffffff);
        slot *s = idx < L->fresh ? &L->slots[idx] : NULL;
        if (!s || !s->req || s->gen != (uint32_t)(conn >> 32) ||
            ((conn >> 24) & 0xff) != L->index) {
            BUMP(L, stale); /* answered already, timed out, or the client went away */
            continue;
        }
        if (nh > L->hdrs_cap) {
            hdr *h = realloc(L->hdrs, nh * sizeof *h);
            if (!h) {
                h2o_req_t *req = s->req;
                slot_release(L, s);
                send_error(L, req, 500, "internal", "out of memory", 0, 1);
                continue;
            }
            L->hdrs = h;
            L->hdrs_cap = nh;
        }
        for (uint32_t i = 0; i < nh; i++) {
            uint32_t nl = rd32(q), vl = rd32(q + 4);
            L->hdrs[i] = (hdr){(const char *)q + 8, (const char *)q + 8 + nl, nl, vl};
            q += 8 + nl + vl;
        }
        h2o_req_t *req = s->req;
        slot_release(L, s);
        send_answer(L, req, status, L->hdrs, nh, (const char *)q, blen, 0);
    }
}

static void on_answers(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    loop *L = H2O_STRUCT_FROM_MEMBER(loop, answers_rx, rx);
    while (!h2o_linklist_is_empty(messages)) {
        struct answers *a = H2O_STRUCT_FROM_MEMBER(struct answers, msg.link, messages->next);
        h2o_linklist_unlink(&a->msg.link);
        apply_answers(L, a->buf.data, a->buf.data + a->buf.len);
        answers_put(L->S, a);
    }
}

static void on_wakeup(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    (void)rx;
    (void)messages; /* only NULL messages: the wake-up is the point */
}

/* ------------------------------------------------------------ the loop thread */

static void report_up(sl_http_server *S, int failed)
{
    pthread_mutex_lock(&S->up_mu);
    S->up++;
    S->up_failed += failed != 0;
    pthread_cond_broadcast(&S->up_cv);
    pthread_mutex_unlock(&S->up_mu);
}

/* Act on a new server state. */
static void enter_state(loop *L, int st)
{
    if (L->state == ST_RUN && st != ST_RUN) {
        if (L->listener) { /* new connections are refused from now on */
            h2o_socket_read_stop(L->listener);
            h2o_socket_close(L->listener);
            L->listener = NULL;
        }
        h2o_context_request_shutdown(&L->ctx);
        L->state = ST_DRAIN;
        sweep(L); /* idle keep-alive connections close now */
    }
    if (st == ST_FINAL) {
        /* nothing will answer any more: respond has ended; what it sent is in our queue */
        h2o_evloop_run(L->ctx.loop, 0);
        L->state = ST_FINAL;
        flush_chunk(L);
        abandon_all(L);
        int64_t left = atomic_load(&L->S->drain_deadline) - mono_ns();
        uint64_t grace = left > 0 ? ms_of(left) : 0;
        if (grace > FINAL_GRACE_MS) grace = FINAL_GRACE_MS;
        L->final_deadline = h2o_now(L->ctx.loop) + (grace < 100 ? 100 : grace);
    }
    L->state = st;
}

/* FINAL: close what has nothing left to write; 1 once every connection is gone (or given up). */
static int final_step(loop *L)
{
    if (L->nconns == 0) return 1;
    uint64_t now = h2o_now(L->ctx.loop);
    int late = now >= L->final_deadline;
    for (h2o_linklist_t *n = L->conns.next; n != &L->conns; n = n->next) {
        hconn *c = H2O_STRUCT_FROM_MEMBER(hconn, link, n);
        if (late || (c->phase != PH_BUSY && !h2o_socket_is_writing(c->sock))) close_conn(c, NULL);
    }
    return now >= L->final_deadline + FINAL_GRACE_MS;
}

/* Whether no h2o timeout of the loop has an entry left (h2o asserts that before disposing). */
static int timeouts_empty(loop *L)
{
    h2o_timeout_t *t[] = {&L->ctx.zero_timeout,
                          &L->ctx.one_sec_timeout,
                          &L->ctx.hundred_ms_timeout,
                          &L->ctx.handshake_timeout,
                          &L->ctx.http1.req_timeout,
                          &L->ctx.http2.idle_timeout,
                          &L->ctx.http2.graceful_shutdown_timeout,
                          &L->ctx.proxy.io_timeout,
                          &L->response_to,
                          &L->sweep_to};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!h2o_linklist_is_empty(&t[i]->_entries)) return 0;
    return 1;
}

/* h2o keeps freed socket buffers in a per-thread list; give them back before the thread ends. */
static void free_recycled_buffers(void)
{
    h2o_mem_recycle_t *r = &h2o_socket_buffer_prototype.allocator;
    while (r->cnt)
        free(h2o_mem_alloc_recycle(r, 1));
}

static void *loop_main(void *arg)
{
    loop *L = arg;
    sl_http_server *S = L->S;
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE); /* a write to a closed connection must fail with EPIPE */
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    char tname[16];
    snprintf(tname, sizeof tname, "sl:http%u", L->index);
    pthread_setname_np(pthread_self(), tname);

    h2o_evloop_t *ev = h2o_evloop_create();
    h2o_context_init(&L->ctx, ev, &S->conf);
    h2o_multithread_register_receiver(L->ctx.queue, &L->answers_rx, on_answers);
    h2o_multithread_register_receiver(L->ctx.queue, &L->wakeup_rx, on_wakeup);
    h2o_timeout_init(ev, &L->response_to, ms_of(S->cfg.response_ns));
    h2o_timeout_init(ev, &L->sweep_to, S->sweep_ms);
    L->sweep_entry.cb = on_sweep;
    h2o_timeout_link(ev, &L->sweep_to, &L->sweep_entry);
    L->accept_ctx.ctx = &L->ctx;
    L->accept_ctx.hosts = S->conf.hosts;
    h2o_linklist_init_anchor(&L->conns);
    L->listener = h2o_evloop_socket_create(ev, L->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    L->listen_fd = -1; /* the socket owns it */
    L->listener->data = L;
    h2o_socket_read_start(L->listener, on_accept);
    L->chunk = chunk_new();
    report_up(S, 0);

    for (;;) {
        h2o_evloop_run(ev, L->state == ST_RUN ? INT32_MAX : 20);
        flush_chunk(L);
        int st = atomic_load(&S->state);
        if (st != L->state) enter_state(L, st);
        if (L->state == ST_FINAL && final_step(L)) break;
    }

    h2o_timeout_unlink(&L->sweep_entry);
    if (L->listener) h2o_socket_close(L->listener);
    h2o_multithread_unregister_receiver(L->ctx.queue, &L->answers_rx);
    h2o_multithread_unregister_receiver(L->ctx.queue, &L->wakeup_rx);
    /* h2o_context_request_shutdown arms HTTP/2's GOAWAY resend timer even without HTTP/2 */
    h2o_timeout_unlink(&L->ctx.http2._graceful_shutdown_timeout);
    if (L->nconns == 0 && timeouts_empty(L)) {
        h2o_timeout_dispose(ev, &L->response_to);
        h2o_timeout_dispose(ev, &L->sweep_to);
        h2o_context_dispose(&L->ctx);
        h2o_evloop_destroy(ev);
    } else {
        note(S, SL_LOG_WARN, "loop %u: %zu connection(s) still open after the drain: left open",
             L->index, L->nconns);
    }
    free_recycled_buffers();
    return NULL;
}

/* ------------------------------------------------------------ life cycle */

int sl_http_server_new(const char *name, const sl_http_config *cfg, sl_http_server **out)
{
    *out = NULL;
    sl_http_server *S = calloc(1, sizeof *S);
    if (!S || !(S->name = strdup(name))) {
        free(S);
        return -ENOMEM;
    }
    S->cfg = *cfg;
    S->refs = 1;
    S->qtail = &S->qhead;
    pthread_mutex_init(&S->up_mu, NULL);
    pthread_cond_init(&S->up_cv, NULL);
    pthread_mutex_init(&S->qmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&S->qcv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&S->amu, NULL);
    atomic_init(&S->drain_deadline, INT64_MAX);

    pthread_mutex_lock(&reg_mu);
    for (sl_http_server *o = reg_head; o; o = o->next)
        if (strcmp(o->name, name) == 0) {
            pthread_mutex_unlock(&reg_mu);
            S->refs = 0;
            sl_http_server_release(&S); /* not registered: frees it */
            return -EEXIST;
        }
    S->next = reg_head;
    reg_head = S;
    pthread_mutex_unlock(&reg_mu);
    *out = S;
    return 0;
}

sl_http_server *sl_http_server_find(const char *name, int *why)
{
    sl_http_server *found = NULL;
    int n = 0;
    pthread_mutex_lock(&reg_mu);
    for (sl_http_server *o = reg_head; o; o = o->next)
        if (!name || strcmp(o->name, name) == 0) {
            found = o;
            n++;
        }
    if (n == 1) found->refs++;
    pthread_mutex_unlock(&reg_mu);
    if (n == 1) return found;
    if (why) *why = n == 0 ? -ENOENT : -EEXIST;
    return NULL;
}

/* Bind one listener; returns the descriptor or -errno. */
static int open_listener(const struct addrinfo *ai, int reuseport)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

int sl_http_server_start(sl_http_server *S, char *err, size_t errlen)
{
    const sl_http_config *cfg = &S->cfg;
    int rc = 0;
    S->nloops = cfg->threads;
    S->loops = calloc(S->nloops, sizeof *S->loops);
    if (!S->loops) return -ENOMEM;
    for (uint32_t i = 0; i < S->nloops; i++) {
        S->loops[i].S = S;
        S->loops[i].index = i;
        S->loops[i].listen_fd = -1;
        /* zeroed pages: only the slots a loop has used are ever touched (see dispatch) */
        if (!(S->loops[i].slots = calloc(cfg->max_inflight, sizeof(slot)))) return -ENOMEM;
    }
    snprintf(S->idprefix, sizeof S->idprefix, "r-%04x-",
             (unsigned)((uint64_t)wall_ns() ^ (uint64_t)getpid() ^ (uintptr_t)S) & 0xffff);
    S->idprefix_len = strlen(S->idprefix);
    int64_t shortest = cfg->header_ns;
    if (cfg->body_ns < shortest) shortest = cfg->body_ns;
    if (cfg->idle_ns < shortest) shortest = cfg->idle_ns;
    S->sweep_ms = ms_of(shortest / 8);
    S->sweep_ms = S->sweep_ms < 10 ? 10 : S->sweep_ms > 1000 ? 1000 : S->sweep_ms;

    h2o_config_init(&S->conf);
    S->conf_inited = 1;
    S->conf.server_name = h2o_iovec_init(H2O_STRLIT("sluice"));
    S->conf.max_request_entity_size = cfg->max_body;
    S->conf.http1.req_timeout =
        ms_of(cfg->idle_ns) + ms_of(cfg->header_ns) + ms_of(cfg->body_ns) + 1000;
    S->conf.http1.upgrade_to_http2 = 0; /* HTTP/1.1 only: a request lives until it is answered */
    h2o_hostconf_t *host =
        h2o_config_register_host(&S->conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    struct handler *h =
        (struct handler *)h2o_create_handler(h2o_config_register_path(host, "/", 0), sizeof *h);
    h->super.on_req = on_req;
    h->S = S;

    /* listeners: one per loop (SO_REUSEPORT spreads connections over them) */
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", cfg->port);
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM},
                    *ai = NULL;
    int gai = getaddrinfo(cfg->host, portstr, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", cfg->host, gai_strerror(gai));
        return -EINVAL;
    }
    for (uint32_t i = 0; i < S->nloops; i++) {
        int fd = open_listener(ai, S->nloops > 1);
        if (fd < 0) {
            snprintf(err, errlen, "cannot listen on %s:%u: %s", cfg->host, (unsigned)S->port,
                     strerror(-fd));
            rc = fd;
            break;
        }
        S->loops[i].listen_fd = fd;
        if (i == 0) { /* port 0: the others share the port the kernel picked */
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            getsockname(fd, (struct sockaddr *)&ss, &sl);
            S->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
            if (ai->ai_family == AF_INET6)
                ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons(S->port);
            else
                ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons(S->port);
            snprintf(S->url, sizeof S->url,
                     ai->ai_family == AF_INET6 ? "http://[%s]:%u" : "http://%s:%u", cfg->host,
                     (unsigned)S->port);
        }
    }
    freeaddrinfo(ai);
    if (rc != 0) return rc;

    uint32_t created = 0;
    for (uint32_t i = 0; i < S->nloops; i++) {
        int e = pthread_create(&S->loops[i].tid, NULL, loop_main, &S->loops[i]);
        if (e != 0) {
            snprintf(err, errlen, "cannot start an event loop thread: %s", strerror(e));
            rc = -e;
            break;
        }
        S->loops[i].thread_started = 1;
        created++;
    }
    pthread_mutex_lock(&S->up_mu);
    while (S->up < created)
        pthread_cond_wait(&S->up_cv, &S->up_mu);
    pthread_mutex_unlock(&S->up_mu);
    return rc;
}

uint16_t sl_http_server_port(const sl_http_server *s)
{
    return s->port;
}
const char *sl_http_server_url(const sl_http_server *s)
{
    return s->url;
}

static void set_state(sl_http_server *S, int st)
{
    int cur = atomic_load(&S->state);
    while (cur < st && !atomic_compare_exchange_weak(&S->state, &cur, st))
        ;
    for (uint32_t i = 0; i < S->nloops; i++)
        if (S->loops[i].thread_started) h2o_multithread_send_message(&S->loops[i].wakeup_rx, NULL);
}

void sl_http_server_drain(sl_http_server *S)
{
    int64_t want = mono_ns() + S->cfg.drain_ns, cur = atomic_load(&S->drain_deadline);
    if (want < cur) atomic_store(&S->drain_deadline, want);
    pthread_mutex_lock(&S->qmu);
    S->qclosed = 1;
    pthread_mutex_unlock(&S->qmu);
    set_state(S, ST_DRAIN);
}

static void teardown(sl_http_server *S)
{
    if (S->loops) {
        int64_t cur = atomic_load(&S->drain_deadline);
        if (cur == INT64_MAX) /* not drained first (a hard stop): no time for anything */
            atomic_store(&S->drain_deadline, mono_ns());
        pthread_mutex_lock(&S->qmu);
        S->qclosed = 1;
        pthread_mutex_unlock(&S->qmu);
        set_state(S, ST_FINAL);
        for (uint32_t i = 0; i < S->nloops; i++) {
            loop *L = &S->loops[i];
            if (L->thread_started) pthread_join(L->tid, NULL);
            if (L->listen_fd >= 0) close(L->listen_fd);
            free(L->slots); /* the loop thread has ended: nothing reads them any more */
            chunk_free(L->chunk);
            sl_wbuf_fini(&L->scratch);
            free(L->fields);
            free(L->hdrs);
        }
        free(S->loops);
    }
    for (sl_http_chunk *k = S->qhead, *next; k; k = next) {
        next = k->next;
        chunk_free(k);
    }
    for (sl_http_chunk *k = S->qfree, *next; k; k = next) {
        next = k->next;
        chunk_free(k);
    }
    for (struct answers *a = S->afree, *next; a; a = next) {
        next = a->next;
        sl_wbuf_fini(&a->buf);
        free(a);
    }
    if (S->conf_inited) h2o_config_dispose(&S->conf);
    pthread_mutex_destroy(&S->up_mu);
    pthread_cond_destroy(&S->up_cv);
    pthread_mutex_destroy(&S->qmu);
    pthread_cond_destroy(&S->qcv);
    pthread_mutex_destroy(&S->amu);
    free(S->name);
    free(S);
}

void sl_http_server_release(sl_http_server **sp)
{
    sl_http_server *S = sp ? *sp : NULL;
    if (!S) return;
    *sp = NULL;
    pthread_mutex_lock(&reg_mu);
    int last = S->refs <= 1;
    if (S->refs > 0) S->refs--;
    if (last)
        for (sl_http_server **pp = &reg_head; *pp; pp = &(*pp)->next)
            if (*pp == S) {
                *pp = S->next;
                break;
            }
    pthread_mutex_unlock(&reg_mu);
    if (last) teardown(S);
}

/* ------------------------------------------------------------ the source side */

/* With qmu held. */
static void give_back_locked(sl_http_server *S, sl_http_chunk *back)
{
    while (back) {
        sl_http_chunk *next = back->next;
        back->n = 0;
        sl_wbuf_reset(&back->data);
        back->next = S->qfree;
        S->qfree = back;
        back = next;
    }
}

void sl_http_server_give_back(sl_http_server *S, sl_http_chunk *list)
{
    if (!list) return;
    pthread_mutex_lock(&S->qmu);
    give_back_locked(S, list);
    pthread_mutex_unlock(&S->qmu);
}

size_t sl_http_server_take(sl_http_server *S, int64_t deadline_ns, sl_http_chunk **list)
{
    sl_http_chunk *back = *list, *got;
    *list = NULL;
    pthread_mutex_lock(&S->qmu);
    give_back_locked(S, back);
    while (!S->qhead && !S->qclosed) {
        int64_t now = mono_ns();
        if (now >= deadline_ns) break;
        struct timespec ts = {(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
        S->qwaiting = 1;
        pthread_cond_timedwait(&S->qcv, &S->qmu, &ts);
        S->qwaiting = 0;
    }
    got = S->qhead;
    S->qhead = NULL;
    S->qtail = &S->qhead;
    size_t n = 0;
    for (sl_http_chunk *k = got; k; k = k->next)
        n += k->n;
    atomic_fetch_sub_explicit(&S->queued, (int64_t)n, memory_order_relaxed);
    pthread_mutex_unlock(&S->qmu);
    *list = got;
    return n;
}

void sl_http_server_stats(sl_http_server *S, sl_http_stats *o)
{
    memset(o, 0, sizeof *o);
    for (uint32_t i = 0; S->loops && i < S->nloops; i++) {
        counters *c = &S->loops[i].c;
        o->requests += atomic_load_explicit(&c->requests, memory_order_relaxed);
        o->rejected_503 += atomic_load_explicit(&c->rejected, memory_order_relaxed);
        o->timeouts += atomic_load_explicit(&c->timeouts, memory_order_relaxed);
        o->request_timeouts += atomic_load_explicit(&c->req_timeouts, memory_order_relaxed);
        o->too_large += atomic_load_explicit(&c->too_large, memory_order_relaxed);
        o->idle_closed += atomic_load_explicit(&c->idle_closed, memory_order_relaxed);
        o->stale += atomic_load_explicit(&c->stale, memory_order_relaxed);
        o->client_gone += atomic_load_explicit(&c->gone, memory_order_relaxed);
        o->connections_total += atomic_load_explicit(&c->conns_total, memory_order_relaxed);
        o->connections += atomic_load_explicit(&c->conns, memory_order_relaxed);
        for (int k = 0; k < 6; k++)
            o->responses[k] += atomic_load_explicit(&c->responses[k], memory_order_relaxed);
    }
    o->stale += atomic_load_explicit(&S->stale_unroutable, memory_order_relaxed);
    o->inflight = atomic_load_explicit(&S->inflight, memory_order_relaxed);
    o->queued = atomic_load_explicit(&S->queued, memory_order_relaxed);
}

/* ------------------------------------------------------------ the respond side */

struct sl_http_responder {
    sl_http_server *S;
    struct answers **pending; /* per loop */
    struct answers *cur;      /* the batch of the answer begun, or NULL */
    size_t rec_start;
    uint32_t nh;
};

sl_http_responder *sl_http_responder_new(sl_http_server *S)
{
    sl_http_responder *r = calloc(1, sizeof *r);
    if (!r || !(r->pending = calloc(S->cfg.threads, sizeof *r->pending))) {
        free(r);
        return NULL;
    }
    r->S = S;
    return r;
}

void sl_http_responder_destroy(sl_http_responder **rp)
{
    sl_http_responder *r = rp ? *rp : NULL;
    if (!r) return;
    sl_http_responder_flush(r);
    for (uint32_t i = 0; i < r->S->cfg.threads; i++)
        if (r->pending[i]) answers_put(r->S, r->pending[i]);
    free(r->pending);
    free(r);
    *rp = NULL;
}

int sl_http_responder_begin(sl_http_responder *r, uint64_t conn, int status)
{
    sl_http_server *S = r->S;
    uint32_t li = (uint32_t)(conn >> 24) & 0xff;
    r->cur = NULL;
    if (li >= S->cfg.threads || (conn & 0xffffff) >= S->cfg.max_inflight || (conn >> 32) == 0) {
        atomic_fetch_add_explicit(&S->stale_unroutable, 1, memory_order_relaxed);
        return 1;
    }
    struct answers *a = r->pending[li];
    if (!a) {
        pthread_mutex_lock(&S->amu);
        if ((a = S->afree)) S->afree = a->next;
        pthread_mutex_unlock(&S->amu);
        if (!a && !(a = calloc(1, sizeof *a))) return -1;
        r->pending[li] = a;
    }
    r->rec_start = a->buf.len;
    uint32_t st = (uint32_t)status, zero = 0;
    if (sl_wbuf_append(&a->buf, &conn, 8) != 0 || sl_wbuf_append(&a->buf, &st, 4) != 0 ||
        sl_wbuf_append(&a->buf, &zero, 4) != 0 || sl_wbuf_append(&a->buf, &zero, 4) != 0 ||
        sl_wbuf_append(&a->buf, &zero, 4) != 0) {
        a->buf.len = r->rec_start;
        return -1;
    }
    r->cur = a;
    r->nh = 0;
    return 0;
}

int sl_http_responder_header(sl_http_responder *r, const char *name, size_t nlen, const char *value,
                             size_t vlen)
{
    struct answers *a = r->cur;
    if (!a) return -1;
    uint32_t nl = (uint32_t)nlen, vl = (uint32_t)vlen;
    if (sl_wbuf_append(&a->buf, &nl, 4) != 0 || sl_wbuf_append(&a->buf, &vl, 4) != 0 ||
        sl_wbuf_append(&a->buf, name, nlen) != 0 || sl_wbuf_append(&a->buf, value, vlen) != 0)
        return -1;
    r->nh++;
    return 0;
}

int sl_http_responder_end(sl_http_responder *r, const void *body, size_t len)
{
    struct answers *a = r->cur;
    if (!a) return -1;
    if (len > UINT32_MAX || sl_wbuf_append(&a->buf, body, len) != 0) {
        sl_http_responder_cancel(r);
        return -1;
    }
    uint32_t bl = (uint32_t)len, rl = (uint32_t)(a->buf.len - r->rec_start);
    memcpy(a->buf.data + r->rec_start + 12, &r->nh, 4);
    memcpy(a->buf.data + r->rec_start + 16, &bl, 4);
    memcpy(a->buf.data + r->rec_start + 20, &rl, 4);
    r->cur = NULL;
    return 0;
}

void sl_http_responder_cancel(sl_http_responder *r)
{
    if (r->cur) r->cur->buf.len = r->rec_start;
    r->cur = NULL;
}

void sl_http_responder_flush(sl_http_responder *r)
{
    sl_http_responder_cancel(r);
    for (uint32_t i = 0; i < r->S->cfg.threads; i++) {
        struct answers *a = r->pending[i];
        if (!a || !a->buf.len) continue;
        r->pending[i] = NULL;
        a->msg.link = (h2o_linklist_t){NULL, NULL};
        h2o_multithread_send_message(&r->S->loops[i].answers_rx, &a->msg);
    }
}
