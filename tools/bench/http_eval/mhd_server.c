/*
 * mhd_server.c - the libmicrohttpd (Debian 12: 0.9.75) side of the HTTP library evaluation.
 *
 * Part of tools/bench/http_eval (docs/design/http-library.md); run.sh builds and drives it:
 *   cc -O2 -Wall -Wextra -o mhd_server mhd_server.c $(pkg-config --cflags --libs libmicrohttpd) \
 *      -lpthread
 *
 * Serves route.h on 127.0.0.1:PORT over HTTP/1.1 with MHD's internal epoll thread, or a pool of
 * them (-t N > 1: MHD_OPTION_THREAD_POOL_SIZE, each pool thread its own epoll on the shared
 * listening socket); MHD_USE_TURBO unless -u 0; -P uses poll() instead of epoll.
 *   -m inline    the access handler queues a response built at start (MHD_RESPMEM_PERSISTENT)
 *                for /x, a copied one for other paths.
 *   -m deferred  the handler suspends the connection (MHD_suspend_connection) and hands the
 *                request to the evalq.h worker; the worker builds the body and calls
 *                MHD_resume_connection; MHD calls the handler again, which queues the response.
 *                -q N: when N requests wait for the worker, answer 503 with Retry-After at once.
 *   GET /sse     (deferred mode only: needs MHD_ALLOW_SUSPEND_RESUME) a Server-Sent Events
 *                stream: MHD_create_response_from_callback(MHD_SIZE_UNKNOWN); the reader
 *                suspends when it has nothing, a producer thread resumes it per event.
 * SIGINT/SIGTERM drains: MHD_quiesce_daemon, responses carry Connection: close, wait for the
 * requests in progress, then MHD_stop_daemon (which closes idle keep-alive connections).
 *
 * Invariants (the API rules this file exists to show):
 * - MHD_queue_response only from the access handler on MHD's thread; another thread may only
 *   call MHD_resume_connection, and only on a connection that is suspended.
 * - Suspend before handing the request away (suspend is synchronous, so the worker can never
 *   resume a connection that is not suspended yet).
 * - The SSE reader decides "nothing to send, suspend" under the stream's lock and the producer
 *   decides "data, resume" under the same lock.
 * - MHD_stop_daemon must not run while a connection is suspended.
 */
#include <microhttpd.h>

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
#include <time.h>
#include <unistd.h>

#include "evalq.h"
#include "route.h"

struct job {
    struct evalq_item item; /* handler -> worker */
    struct MHD_Connection *conn;
    int queued;         /* handed to the worker; the next call after resume answers */
    atomic_int done;    /* the worker has written status and body */
    int too_big;        /* a chunked body went over max_body */
    size_t body_bytes;  /* request body seen so far */
    char path[128];
    size_t path_len;
    int status;
    size_t len;
    char body[ROUTE_BODY_MAX];
};

static struct {
    unsigned port, pool, timeout_s, delay_ms, drain_ms;
    int deferred, turbo, poll;
    size_t max_batch, max_body, mem_limit, max_queue;
} opt = {8080, 1, 10, 0, 5000, 0, 1, 0, 1024, 1 << 20, 32 * 1024, SIZE_MAX};

static struct evalq worker;
static struct MHD_Response *resp_x, *resp_x_close; /* the prebuilt /x answers (inline mode) */
static atomic_int draining;
static atomic_long active; /* requests between the first handler call and completion */
static int inline_marker;  /* *con_cls for inline requests: no allocation */

static struct MHD_Response *json_response(const char *body, size_t len, enum MHD_ResponseMemoryMode mode,
                                          int close)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (r == NULL)
        return NULL;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (close)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    return r;
}

static enum MHD_Result queue_copy(struct MHD_Connection *conn, int status, const char *body,
                                  size_t len, const char *retry_after)
{
    struct MHD_Response *r = json_response(body, len, MHD_RESPMEM_MUST_COPY, atomic_load(&draining));
    enum MHD_Result ret;
    if (r == NULL)
        return MHD_NO;
    if (retry_after != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r); /* the connection holds its own reference */
    return ret;
}

/* ---- deferred requests -------------------------------------------------------------------- */

/* Worker thread: the "pipeline" builds each response; MHD has no batch resume, so one
 * MHD_resume_connection (a lock and an eventfd write) per request. */
static void job_work(struct evalq_item *batch, size_t n, void *arg)
{
    struct evalq_item *it, *next;
    (void)n;
    (void)arg;
    for (it = batch; it != NULL; it = next) {
        struct job *job = (struct job *)it;
        next = it->next; /* the job may be freed once its connection is resumed */
        job->status = route_answer(job->path, job->path_len, job->body, &job->len);
        atomic_store(&job->done, 1);
        MHD_resume_connection(job->conn); /* any thread; MHD calls the handler again */
    }
}

/* ---- Server-Sent Events ------------------------------------------------------------------- */

struct sse {
    pthread_mutex_t mu;
    struct MHD_Connection *conn;
    int suspended; /* set by the reader under mu; the connection cannot go away meanwhile */
    int finished;
    atomic_int refs; /* the response (freed by MHD through sse_free) and the producer */
    size_t len;
    char buf[256];
};

static void sse_release(struct sse *sse)
{
    if (atomic_fetch_sub(&sse->refs, 1) == 1) {
        pthread_mutex_destroy(&sse->mu);
        free(sse);
    }
}

static void sse_free(void *cls)
{
    sse_release(cls);
}

/* MHD's thread: copy what is buffered, or suspend until the producer resumes us. */
static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct sse *sse = cls;
    ssize_t n;
    (void)pos;

    pthread_mutex_lock(&sse->mu);
    if (sse->len != 0) {
        n = (ssize_t)(sse->len < max ? sse->len : max);
        memcpy(buf, sse->buf, (size_t)n);
        memmove(sse->buf, sse->buf + n, sse->len - (size_t)n);
        sse->len -= (size_t)n;
    } else if (sse->finished) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* returning 0 without suspending would make MHD call us again at once (a busy loop) */
        sse->suspended = 1;
        MHD_suspend_connection(sse->conn);
        n = 0;
    }
    pthread_mutex_unlock(&sse->mu);
    return n;
}

static void *sse_producer(void *arg)
{
    struct sse *sse = arg;
    int i;
    for (i = 0; i < 3; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&sse->mu);
        sse->len += (size_t)snprintf(sse->buf + sse->len, sizeof(sse->buf) - sse->len,
                                     "id: %d\ndata: {\"n\":%d}\n\n", i, i);
        sse->finished = i == 2;
        if (sse->suspended) {
            sse->suspended = 0;
            MHD_resume_connection(sse->conn);
        }
        pthread_mutex_unlock(&sse->mu);
    }
    sse_release(sse);
    return NULL;
}

static enum MHD_Result start_sse(struct MHD_Connection *conn)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    pthread_t tid;
    struct sse *sse = calloc(1, sizeof(*sse));

    if (sse == NULL)
        return MHD_NO;
    pthread_mutex_init(&sse->mu, NULL);
    sse->conn = conn;
    atomic_init(&sse->refs, 2);
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, sse_reader, sse, sse_free);
    if (r == NULL) {
        pthread_mutex_destroy(&sse->mu);
        free(sse);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r); /* sse_free runs when the connection lets go of it */
    if (pthread_create(&tid, NULL, sse_producer, sse) != 0) {
        pthread_mutex_lock(&sse->mu);
        sse->finished = 1;
        pthread_mutex_unlock(&sse->mu);
        sse_release(sse);
        return ret;
    }
    pthread_detach(tid);
    return ret;
}

/* ---- the access handler ------------------------------------------------------------------- */

/* The request is complete: answer it here (inline) or suspend and hand it to the worker. */
static enum MHD_Result answer(struct MHD_Connection *conn, const char *url, void **con_cls)
{
    struct job *job;
    size_t url_len = strlen(url);

    if (!opt.deferred) {
        char body[ROUTE_BODY_MAX];
        size_t len;
        int status = route_answer(url, url_len, body, &len);
        if (status == 200 && route_is(url, url_len, "/x"))
            return MHD_queue_response(conn, MHD_HTTP_OK,
                                      atomic_load(&draining) ? resp_x_close : resp_x);
        return queue_copy(conn, status, body, len, NULL);
    }
    if (route_is(url, url_len, "/sse"))
        return start_sse(conn);

    job = *con_cls != &inline_marker ? *con_cls : NULL;
    /* admission: a full pipeline answers 503 rather than queue without bound */
    if (atomic_load_explicit(&worker.depth, memory_order_relaxed) >= opt.max_queue ||
        (job == NULL && (job = calloc(1, sizeof(*job))) == NULL)) {
        static const char busy[] = "{\"error\":\"busy\"}";
        return queue_copy(conn, 503, busy, sizeof(busy) - 1, "1");
    }
    *con_cls = job; /* freed by on_completed */
    job->conn = conn;
    job->path_len = url_len < sizeof(job->path) ? url_len : sizeof(job->path);
    memcpy(job->path, url, job->path_len);
    job->queued = 1;
    MHD_suspend_connection(conn); /* before the push: the worker may resume at once */
    evalq_push(&worker, &job->item);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct job *job = *con_cls;
    (void)cls;
    (void)method;
    (void)version;
    (void)upload_data;

    if (job == NULL) {
        /* first call: the headers are in. Never answer here (except to refuse): 0.9.75 closes
         * the connection after a response queued in the first call, even for a GET without a
         * body. The body size limit is the application's to check (413, then close). */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        atomic_fetch_add(&active, 1);
        *con_cls = &inline_marker;
        if (cl != NULL && strtoull(cl, NULL, 10) > opt.max_body) {
            static const char big[] = "{\"error\":\"too large\"}";
            return queue_copy(conn, 413, big, sizeof(big) - 1, NULL);
        }
        if ((opt.deferred || cl != NULL ||
             MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL) &&
            (job = calloc(1, sizeof(*job))) != NULL) /* the worker's job; counts a body */
            *con_cls = job;
        return MHD_YES;
    }

    if (job != (struct job *)&inline_marker && atomic_load(&job->done))
        /* called again after MHD_resume_connection */
        return queue_copy(conn, job->status, job->body, job->len, NULL);

    if (*upload_data_size != 0) { /* a piece of request body: counted and dropped */
        if (job != (struct job *)&inline_marker) {
            job->body_bytes += *upload_data_size;
            if (job->body_bytes > opt.max_body)
                return MHD_NO; /* chunked and too big: no response can be queued here */
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (job != (struct job *)&inline_marker && job->queued)
        return MHD_YES; /* not reached: a suspended connection is not processed */
    return answer(conn, url, con_cls);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    if (*con_cls != NULL && *con_cls != &inline_marker)
        free(*con_cls);
    *con_cls = NULL;
    atomic_fetch_sub(&active, 1);
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-p PORT] [-t POOL_THREADS] [-m inline|deferred] [-u TURBO(0|1)] [-P]\n"
            "          [-b MAX_BATCH] [-q MAX_QUEUE] [-T TIMEOUT_S] [-B MAX_BODY] [-H MEM_LIMIT]\n"
            "          [-d WORKER_DELAY_MS] [-D DRAIN_MS]\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    static const char ok[] = "{\"ok\":true}";
    struct MHD_Daemon *d;
    struct sockaddr_in addr;
    unsigned flags;
    sigset_t sigs;
    int c, sig;
    struct timespec t0, t1;

    while ((c = getopt(argc, argv, "p:t:m:u:Pb:q:T:B:H:d:D:")) != -1) {
        switch (c) {
        case 'p': opt.port = (unsigned)atoi(optarg); break;
        case 't': opt.pool = (unsigned)atoi(optarg); break;
        case 'm': opt.deferred = strcmp(optarg, "deferred") == 0; break;
        case 'u': opt.turbo = atoi(optarg) != 0; break;
        case 'P': opt.poll = 1; break;
        case 'b': opt.max_batch = (size_t)atol(optarg); break;
        case 'q': opt.max_queue = (size_t)atol(optarg); break;
        case 'T': opt.timeout_s = (unsigned)atoi(optarg); break;
        case 'B': opt.max_body = (size_t)atol(optarg); break;
        case 'H': opt.mem_limit = (size_t)atol(optarg); break;
        case 'd': opt.delay_ms = (unsigned)atoi(optarg); break;
        case 'D': opt.drain_ms = (unsigned)atoi(optarg); break;
        default: return usage(argv[0]);
        }
    }
    if (opt.pool == 0 || opt.port == 0)
        return usage(argv[0]);

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* MHD's threads inherit it */
    signal(SIGPIPE, SIG_IGN);

    resp_x = json_response(ok, sizeof(ok) - 1, MHD_RESPMEM_PERSISTENT, 0);
    resp_x_close = json_response(ok, sizeof(ok) - 1, MHD_RESPMEM_PERSISTENT, 1);
    if (evalq_start(&worker, opt.max_batch, opt.delay_ms, job_work, NULL) != 0) {
        perror("mhd_server: worker");
        return 1;
    }

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)opt.port);
    /* MHD_USE_ITC: MHD_quiesce_daemon needs it with internal threads */
    flags = (opt.poll ? MHD_USE_POLL : MHD_USE_EPOLL) | MHD_USE_INTERNAL_POLLING_THREAD |
            MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (opt.turbo)
        flags |= MHD_USE_TURBO;
    if (opt.deferred)
        flags |= MHD_ALLOW_SUSPEND_RESUME;
    {
        struct MHD_OptionItem ops[] = {
            {MHD_OPTION_SOCK_ADDR, 0, &addr},
            {MHD_OPTION_CONNECTION_TIMEOUT, opt.timeout_s, NULL},
            {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)opt.mem_limit, NULL},
            {MHD_OPTION_CONNECTION_LIMIT, 10000, NULL},
            {MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, NULL},
            {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
            {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL},
            /* a pool of 1 is no pool, and MHD warns about it */
            {opt.pool > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, opt.pool, NULL},
            {MHD_OPTION_END, 0, NULL},
        };
        d = MHD_start_daemon(flags, (uint16_t)opt.port, NULL, NULL, on_request, NULL,
                             MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    }
    if (d == NULL) {
        fprintf(stderr, "mhd_server: MHD_start_daemon on 127.0.0.1:%u failed\n", opt.port);
        return 1;
    }
    fprintf(stderr, "mhd_server: %s, %s, pool %u, turbo %d, 127.0.0.1:%u\n",
            opt.deferred ? "deferred" : "inline", opt.poll ? "poll" : "epoll", opt.pool, opt.turbo,
            opt.port);

    sigwait(&sigs, &sig);
    /* drain: stop accepting, answer what is in progress with Connection: close, then stop */
    {
        MHD_socket lfd = MHD_quiesce_daemon(d);
        long left;
        /* quiesce only stops accept(): the socket still listens, so the kernel would go on
         * completing handshakes that nobody serves. It must not be closed before
         * MHD_stop_daemon; shutdown() stops the listening on Linux and keeps the fd. */
        if (lfd != MHD_INVALID_SOCKET)
            shutdown(lfd, SHUT_RDWR);
        atomic_store(&draining, 1);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            struct timespec ts = {0, 10 * 1000000L};
            clock_gettime(CLOCK_MONOTONIC, &t1);
            left = atomic_load(&active);
            if (left <= 0 || (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >
                                 (long)opt.drain_ms)
                break;
            nanosleep(&ts, NULL);
        }
        if (left > 0)
            fprintf(stderr, "mhd_server: %ld requests still in progress after %u ms\n", left,
                    opt.drain_ms);
        MHD_stop_daemon(d); /* closes idle keep-alive connections; undefined if any is suspended */
        if (lfd != MHD_INVALID_SOCKET)
            close(lfd);
    }
    evalq_stop(&worker);
    MHD_destroy_response(resp_x);
    MHD_destroy_response(resp_x_close);
    fprintf(stderr, "mhd_server: drained; worker batches %llu, items %llu (%.1f per batch)\n",
            worker.batches, worker.items,
            worker.batches ? (double)worker.items / (double)worker.batches : 0.0);
    return 0;
}
