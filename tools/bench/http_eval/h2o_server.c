/*
 * h2o_server.c - the libh2o-evloop (Debian 12: h2o 2.2.5) side of the HTTP library evaluation.
 *
 * Part of tools/bench/http_eval (docs/design/http-library.md); run.sh builds and drives it:
 *   cc -O2 -Wall -Wextra -o h2o_server h2o_server.c $(pkg-config --cflags --libs libh2o-evloop) \
 *      -lssl -lcrypto -lz -lpthread
 *
 * Serves route.h on 127.0.0.1:PORT over HTTP/1.1 (keep-alive, pipelining) with N event-loop
 * threads, each with its own h2o_evloop, h2o_context and SO_REUSEPORT listener.
 *   -m inline    the handler answers on the loop thread (h2o_send_inline).
 *   -m deferred  the handler hands the request to the evalq.h worker thread, which builds the
 *                body and sends it back with h2o_multithread_send_message; the loop thread's
 *                receiver answers with h2o_send_inline. This is the sluice source.http -> stages
 *                -> respond path. Batched both ways by default: the requests a loop iteration
 *                produced go to the worker in one push, and the worker returns each batch as
 *                one message per loop; -1 hands over and returns one request at a time.
 *                -q N: when N requests are queued for the worker (or deferred in this loop
 *                iteration), answer 503 with Retry-After at once instead of queueing more.
 *   GET /sse     a Server-Sent Events stream: a producer thread sends three events 50 ms apart
 *                through the same message queue; the loop thread writes them as chunks, one
 *                h2o_send per generator->proceed.
 * SIGINT/SIGTERM drains: listeners closed, h2o_context_request_shutdown, idle keep-alive
 * connections closed, in-flight requests answered (Connection: close), then exit.
 *
 * Invariants (the API rules this file exists to show):
 * - A loop's evloop, context, sockets and receivers are created on the loop's own thread: h2o's
 *   buffer and pool recyclers are thread-local, and a socket made on another thread goes on
 *   using that thread's (unlocked) recycle list.
 * - Every h2o call on a request happens on the loop thread that owns it; other threads only
 *   call h2o_multithread_send_message.
 * - A request can be freed while the worker holds it (HTTP/2 stream reset; not with HTTP/1 in
 *   2.2.5, where reads stop while a request is processed). So the job is malloc'ed and a guard
 *   allocated with h2o_mem_alloc_shared in req->pool clears job->req when the pool goes away;
 *   the reply handler checks job->req before touching the request.
 * - h2o_send must not be called again until generator->proceed has been called; the buffers
 *   passed to it stay valid until then.
 */
#define H2O_USE_LIBUV 0
#include <h2o.h>

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evalq.h"
#include "route.h"

struct thread {
    h2o_context_t ctx; /* first: req->conn->ctx points at it */
    h2o_accept_ctx_t accept_ctx;
    h2o_multithread_receiver_t replies; /* worker -> loop: struct job */
    h2o_multithread_receiver_t events;  /* SSE producer -> loop: struct sse_event */
    h2o_multithread_receiver_t wakeup;  /* main -> loop: shutdown */
    h2o_socket_t *listener;
    size_t nconns;
    struct evalq_item *pend_head, *pend_tail; /* deferred this loop iteration, not yet pushed */
    size_t pend_n;
    struct job *reply_head, *reply_tail;      /* worker thread only: this batch's replies */
    pthread_t tid;
    int fd;
};

struct job {
    struct evalq_item item;        /* loop -> worker */
    h2o_multithread_message_t msg; /* worker -> loop */
    h2o_req_t *req;                /* NULL once the request is gone; loop thread only */
    struct job_guard *guard;
    struct thread *thr;
    struct job *reply_next; /* the rest of the replies carried by this message */
    char path[128];
    size_t path_len;
    int status;
    size_t len;
    char body[ROUTE_BODY_MAX];
};

/* Lives in req->pool; its dispose callback tells the job that the request is gone. */
struct job_guard {
    struct job *job;
};

static struct {
    unsigned port, nthreads, delay_ms, drain_ms;
    int deferred, one_by_one;
    size_t max_batch, max_body, max_queue;
    uint64_t timeout_ms;
} opt = {8080, 1, 0, 5000, 0, 0, 1024, 1 << 20, SIZE_MAX, 10000};

static h2o_globalconf_t config;
static struct thread *threads;
static struct evalq worker;
static pthread_barrier_t started; /* the loops and main */
static atomic_int stopping;
static atomic_ulong jobs_orphaned;

static void add_json_header(h2o_req_t *req, const char *type, size_t type_len)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, type_len);
}

/* Sets status, reason and content length, then sends body (copied) as the whole response. */
static void respond(h2o_req_t *req, int status, const char *body, size_t len)
{
    if (req->conn->ctx->shutdown_requested)
        req->http1_is_persistent = 0; /* decided when the request was parsed; say close now */
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "Not Found";
    /* without a content length h2o 2.2.5 answers HTTP/1.1 with chunked encoding */
    req->res.content_length = len;
    add_json_header(req, H2O_STRLIT("application/json"));
    h2o_send_inline(req, body, len);
}

/* ---- deferred requests -------------------------------------------------------------------- */

static void job_guard_dispose(void *p)
{
    struct job_guard *guard = p;
    if (guard->job != NULL)
        guard->job->req = NULL; /* the worker still has it; the reply will be dropped */
}

/* Worker thread: the "pipeline" builds each response and hands the batch back to the loops,
 * one message per loop thread (or per request with -1). */
static void job_work(struct evalq_item *batch, size_t n, void *arg)
{
    struct evalq_item *it, *next;
    unsigned i;
    (void)n;
    (void)arg;
    for (it = batch; it != NULL; it = next) {
        struct job *job = (struct job *)it;
        next = it->next; /* once sent, the loop thread may free the job */
        struct thread *thr = job->thr;
        job->status = route_answer(job->path, job->path_len, job->body, &job->len);
        job->reply_next = NULL;
        if (opt.one_by_one) {
            h2o_multithread_send_message(&thr->replies, &job->msg);
            continue;
        }
        if (thr->reply_head == NULL)
            thr->reply_head = job;
        else
            thr->reply_tail->reply_next = job;
        thr->reply_tail = job;
    }
    for (i = 0; i < opt.nthreads; i++) {
        struct thread *thr = &threads[i];
        if (thr->reply_head != NULL) {
            h2o_multithread_send_message(&thr->replies, &thr->reply_head->msg);
            thr->reply_head = thr->reply_tail = NULL;
        }
    }
}

/* Loop thread: answers each reply on its held request. */
static void on_replies(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        struct job *job = H2O_STRUCT_FROM_MEMBER(struct job, msg.link, messages->next), *next;
        h2o_linklist_unlink(&job->msg.link);
        for (; job != NULL; job = next) {
            next = job->reply_next;
            if (job->req != NULL) {
                job->guard->job = NULL; /* sending may dispose the pool now or later */
                respond(job->req, job->status, job->body, job->len);
            } else {
                atomic_fetch_add(&jobs_orphaned, 1);
            }
            free(job);
        }
    }
}

/* Hands what this loop iteration deferred to the worker in one push. */
static void flush_pending(struct thread *thr)
{
    if (thr->pend_head != NULL) {
        evalq_push_list(&worker, thr->pend_head, thr->pend_tail, thr->pend_n);
        thr->pend_head = thr->pend_tail = NULL;
        thr->pend_n = 0;
    }
}

static int defer_request(struct thread *thr, h2o_req_t *req)
{
    struct job *job = NULL;
    /* admission: a full pipeline answers 503 rather than queue without bound */
    if (atomic_load_explicit(&worker.depth, memory_order_relaxed) + thr->pend_n < opt.max_queue)
        job = malloc(sizeof(*job));
    if (job == NULL) {
        static const char busy[] = "{\"error\":\"busy\"}";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        respond(req, 503, busy, sizeof(busy) - 1);
        return 0;
    }
    job->req = req;
    job->thr = thr;
    job->msg.link = (h2o_linklist_t){NULL, NULL};
    job->path_len = req->path.len < sizeof(job->path) ? req->path.len : sizeof(job->path);
    memcpy(job->path, req->path.base, job->path_len);
    job->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*job->guard), job_guard_dispose);
    job->guard->job = job;
    if (opt.one_by_one) {
        evalq_push(&worker, &job->item);
        return 0;
    }
    job->item.next = NULL;
    if (thr->pend_head == NULL)
        thr->pend_head = &job->item;
    else
        thr->pend_tail->next = &job->item;
    thr->pend_tail = &job->item;
    thr->pend_n++;
    return 0;
}

/* ---- Server-Sent Events ------------------------------------------------------------------- */

struct sse {
    h2o_generator_t gen; /* first: proceed/stop get &sse->gen */
    h2o_req_t *req;      /* NULL once the request is gone; loop thread only */
    struct thread *thr;
    atomic_int refs; /* the loop side and the producer thread */
    int can_send;    /* generator->proceed came back since the last h2o_send */
    int final_queued, final_sent;
    char inflight[256]; /* handed to h2o_send, valid until proceed */
    size_t pending_len;
    char pending[256];
};

struct sse_event {
    h2o_multithread_message_t msg;
    struct sse *sse;
    int final;
    size_t len;
    char text[64];
};

static void sse_release(struct sse *sse)
{
    if (atomic_fetch_sub(&sse->refs, 1) == 1)
        free(sse);
}

static void sse_flush(struct sse *sse)
{
    h2o_iovec_t buf;
    int final;

    if (sse->req == NULL || !sse->can_send || sse->final_sent)
        return;
    if (sse->pending_len == 0 && !sse->final_queued)
        return;
    memcpy(sse->inflight, sse->pending, sse->pending_len);
    buf = h2o_iovec_init(sse->inflight, sse->pending_len);
    sse->pending_len = 0;
    final = sse->final_queued;
    sse->can_send = 0;
    sse->final_sent = final;
    h2o_send(sse->req, &buf, 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void sse_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct sse *sse = (struct sse *)gen;
    (void)req;
    sse->can_send = 1;
    sse_flush(sse);
}

static void sse_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    ((struct sse *)gen)->req = NULL; /* the client went away mid-stream */
}

static void sse_guard_dispose(void *p)
{
    struct sse *sse = *(struct sse **)p;
    sse->req = NULL;
    sse_release(sse);
}

static void on_events(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        struct sse_event *ev = H2O_STRUCT_FROM_MEMBER(struct sse_event, msg.link, messages->next);
        struct sse *sse = ev->sse;
        h2o_linklist_unlink(&ev->msg.link);
        if (sse->req != NULL && sse->pending_len + ev->len <= sizeof(sse->pending)) {
            memcpy(sse->pending + sse->pending_len, ev->text, ev->len);
            sse->pending_len += ev->len;
        }
        if (ev->final)
            sse->final_queued = 1;
        free(ev);
        sse_flush(sse); /* may end the request and free sse: not touched after this */
    }
}

/* The producer: stands for a pipeline stage that emits events for one subscriber. */
static void *sse_producer(void *arg)
{
    struct sse *sse = arg;
    int i;
    for (i = 0; i < 3; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        struct sse_event *ev = calloc(1, sizeof(*ev));
        nanosleep(&ts, NULL);
        if (ev == NULL)
            break;
        ev->sse = sse;
        ev->final = i == 2;
        ev->len = (size_t)snprintf(ev->text, sizeof(ev->text), "id: %d\ndata: {\"n\":%d}\n\n", i, i);
        h2o_multithread_send_message(&sse->thr->events, &ev->msg);
    }
    sse_release(sse);
    return NULL;
}

static int start_sse(struct thread *thr, h2o_req_t *req)
{
    pthread_t tid;
    struct sse **guard;
    struct sse *sse = calloc(1, sizeof(*sse));
    if (sse == NULL)
        return -1;
    sse->gen.proceed = sse_proceed;
    sse->gen.stop = sse_stop;
    sse->req = req;
    sse->thr = thr;
    atomic_init(&sse->refs, 2);
    guard = h2o_mem_alloc_shared(&req->pool, sizeof(*guard), sse_guard_dispose);
    *guard = sse;
    req->res.status = 200;
    req->res.reason = "OK";
    add_json_header(req, H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    h2o_start_response(req, &sse->gen);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_IN_PROGRESS); /* headers now; proceed comes back */
    if (pthread_create(&tid, NULL, sse_producer, sse) != 0) {
        sse->final_queued = 1; /* end the stream at the next proceed */
        sse_release(sse);
        return 0;
    }
    pthread_detach(tid);
    return 0;
}

/* ---- the handler, listeners and loops ----------------------------------------------------- */

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct thread *thr = (struct thread *)req->conn->ctx;
    (void)self;

    if (route_is(req->path_normalized.base, req->path_normalized.len, "/sse"))
        return start_sse(thr, req);
    if (opt.deferred)
        return defer_request(thr, req);

    char body[ROUTE_BODY_MAX];
    size_t len;
    int status = route_answer(req->path.base, req->path.len, body, &len);
    respond(req, status, body, len);
    return 0;
}

static void on_socket_close(void *data)
{
    ((struct thread *)data)->nconns--;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct thread *thr = listener->data;
    h2o_socket_t *sock;
    int i;

    if (err != NULL)
        return;
    for (i = 0; i < 16; i++) { /* a few per wakeup, as h2o's own server does */
        if ((sock = h2o_evloop_socket_accept(listener)) == NULL)
            return;
        thr->nconns++;
        sock->on_close.cb = on_socket_close;
        sock->on_close.data = thr;
        h2o_accept(&thr->accept_ctx, sock);
    }
}

static int open_listener(unsigned port)
{
    struct sockaddr_in addr;
    int fd, one = 1;

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)port);
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, SOMAXCONN) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void on_wakeup(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    (void)messages; /* only NULL messages are sent: the wakeup itself is the point */
}

static void *loop_main(void *arg)
{
    struct thread *thr = arg;
    h2o_evloop_t *loop = h2o_evloop_create();
    uint64_t deadline;

    h2o_context_init(&thr->ctx, loop, &config);
    h2o_multithread_register_receiver(thr->ctx.queue, &thr->replies, on_replies);
    h2o_multithread_register_receiver(thr->ctx.queue, &thr->events, on_events);
    h2o_multithread_register_receiver(thr->ctx.queue, &thr->wakeup, on_wakeup);
    thr->accept_ctx.ctx = &thr->ctx;
    thr->accept_ctx.hosts = config.hosts;
    thr->listener = h2o_evloop_socket_create(loop, thr->fd, H2O_SOCKET_FLAG_DONT_READ);
    thr->listener->data = thr;
    h2o_socket_read_start(thr->listener, on_accept);
    pthread_barrier_wait(&started); /* now the worker and main may send to the receivers */

    while (!atomic_load(&stopping)) {
        h2o_evloop_run(loop, INT32_MAX); /* one epoll_wait and what it made ready */
        flush_pending(thr);
    }

    /* drain: stop accepting, let in-flight requests finish, close idle connections */
    h2o_socket_read_stop(thr->listener);
    h2o_socket_close(thr->listener);
    h2o_context_request_shutdown(&thr->ctx); /* further responses say Connection: close */
    /* 2.2.5's HTTP/1 has no shutdown callback: an idle keep-alive connection would wait out
     * req_timeout. Connections waiting for a request are linked to this timeout and requests
     * being processed are not, so a zero timeout closes exactly the idle ones. */
    thr->ctx.http1.req_timeout.timeout = 0;
    deadline = h2o_now(loop) + opt.drain_ms;
    flush_pending(thr);
    while (thr->nconns != 0 && h2o_now(loop) < deadline) {
        h2o_evloop_run(loop, 50);
        flush_pending(thr);
    }
    if (thr->nconns != 0)
        fprintf(stderr, "h2o_server: %zu connections still open after %u ms\n", thr->nconns,
                opt.drain_ms);
    return NULL;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-p PORT] [-t THREADS] [-m inline|deferred] [-1] [-b MAX_BATCH] [-q MAX_QUEUE]\n"
            "          [-T REQ_TIMEOUT_MS] [-B MAX_BODY] [-d WORKER_DELAY_MS] [-D DRAIN_MS]\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    h2o_hostconf_t *hostconf;
    h2o_handler_t *handler;
    sigset_t sigs;
    unsigned i;
    int c, sig;

    while ((c = getopt(argc, argv, "p:t:m:1b:q:T:B:d:D:")) != -1) {
        switch (c) {
        case 'p': opt.port = (unsigned)atoi(optarg); break;
        case 't': opt.nthreads = (unsigned)atoi(optarg); break;
        case 'm': opt.deferred = strcmp(optarg, "deferred") == 0; break;
        case '1': opt.one_by_one = 1; break;
        case 'b': opt.max_batch = (size_t)atol(optarg); break;
        case 'q': opt.max_queue = (size_t)atol(optarg); break;
        case 'T': opt.timeout_ms = (uint64_t)atol(optarg); break;
        case 'B': opt.max_body = (size_t)atol(optarg); break;
        case 'd': opt.delay_ms = (unsigned)atoi(optarg); break;
        case 'D': opt.drain_ms = (unsigned)atoi(optarg); break;
        default: return usage(argv[0]);
        }
    }
    if (opt.nthreads == 0 || opt.port == 0)
        return usage(argv[0]);

    /* signals go to sigwait in main; every other thread inherits the mask */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    h2o_config_init(&config);
    config.server_name = h2o_iovec_init(H2O_STRLIT("h2o-eval"));
    config.max_request_entity_size = opt.max_body;
    config.http1.req_timeout = opt.timeout_ms;
    /* keep to HTTP/1.1: no h2c upgrade, so a request lives until it is answered */
    config.http1.upgrade_to_http2 = 0;
    hostconf = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    handler = h2o_create_handler(h2o_config_register_path(hostconf, "/", 0), sizeof(*handler));
    handler->on_req = on_req;

    if (evalq_start(&worker, opt.max_batch, opt.delay_ms, job_work, NULL) != 0) {
        perror("h2o_server: worker");
        return 1;
    }
    threads = calloc(opt.nthreads, sizeof(*threads));
    for (i = 0; i < opt.nthreads; i++) {
        struct thread *thr = &threads[i];
        if ((thr->fd = open_listener(opt.port)) == -1) {
            fprintf(stderr, "h2o_server: listen 127.0.0.1:%u: %s\n", opt.port, strerror(errno));
            return 1;
        }
    }
    pthread_barrier_init(&started, NULL, opt.nthreads + 1);
    for (i = 0; i < opt.nthreads; i++)
        pthread_create(&threads[i].tid, NULL, loop_main, &threads[i]);
    pthread_barrier_wait(&started);
    fprintf(stderr, "h2o_server: %s%s, %u loop thread(s), 127.0.0.1:%u\n",
            opt.deferred ? "deferred" : "inline", opt.one_by_one ? " one by one" : "",
            opt.nthreads, opt.port);

    sigwait(&sigs, &sig);
    atomic_store(&stopping, 1);
    for (i = 0; i < opt.nthreads; i++)
        h2o_multithread_send_message(&threads[i].wakeup, NULL);
    for (i = 0; i < opt.nthreads; i++)
        pthread_join(threads[i].tid, NULL);
    evalq_stop(&worker);
    fprintf(stderr, "h2o_server: drained; worker batches %llu, items %llu (%.1f per batch), "
                    "replies to vanished requests %lu\n",
            worker.batches, worker.items,
            worker.batches ? (double)worker.items / (double)worker.batches : 0.0,
            atomic_load(&jobs_orphaned));
    return 0;
}
