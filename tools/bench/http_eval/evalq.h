/*
 * evalq.h - the "pipeline" that the deferred mode of the HTTP library evaluation hands requests to.
 *
 * Part of tools/bench/http_eval (docs/design/http-library.md); not built by meson, not used by
 * the engine. Both h2o_server.c and mhd_server.c include it so that the deferred mode costs the
 * same on the pipeline side for both libraries.
 *
 * Design: an intrusive singly linked FIFO under one mutex, and one worker thread. The HTTP loop
 * thread pushes one item per request; the condition variable is signalled only when the worker
 * sleeps, so under load a push is a lock and two stores; evalq_push_list hands over a whole list
 * (what an event loop gathered in one iteration) in one lock. The worker takes everything queued
 * (up to max_batch) in one lock and gives the batch to the server's work callback outside the
 * lock; the callback hands the results back to the HTTP loop in the library's own way
 * (h2o_multithread message, MHD_resume_connection). That is what a sluice source does: requests
 * become events, a stage works on a batch, a respond sink answers on the held connection.
 *
 * Invariants: an item is on the queue at most once; items are worked in push order; after
 * evalq_stop() the worker drains what is queued and returns.
 */
#ifndef SLUICE_HTTP_EVAL_EVALQ_H
#define SLUICE_HTTP_EVAL_EVALQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

struct evalq_item {
    struct evalq_item *next;
};

/* Called on the worker thread with a batch (a NULL-terminated list, in push order, at most
 * max_batch long); takes ownership of the items and must hand each result back itself. */
typedef void (*evalq_work_cb)(struct evalq_item *batch, size_t n, void *arg);

struct evalq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct evalq_item *head;
    struct evalq_item **tail;
    int sleeping; /* the worker waits on cv */
    int stopping;
    atomic_size_t depth; /* queued, not yet taken: read without the lock for admission */
    size_t max_batch;
    unsigned delay_ms; /* sleep per batch, to hold requests in flight (shutdown test) */
    evalq_work_cb work;
    void *arg;
    pthread_t thread;
    unsigned long long batches, items; /* read after the worker is joined */
};

static inline void evalq_push(struct evalq *q, struct evalq_item *item)
{
    item->next = NULL;
    pthread_mutex_lock(&q->mu);
    atomic_fetch_add_explicit(&q->depth, 1, memory_order_relaxed);
    *q->tail = item;
    q->tail = &item->next;
    if (q->sleeping)
        pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* Appends the n items head..tail (linked through next, tail->next ignored) in one lock. */
static inline void evalq_push_list(struct evalq *q, struct evalq_item *head, struct evalq_item *tail,
                                   size_t n)
{
    tail->next = NULL;
    pthread_mutex_lock(&q->mu);
    atomic_fetch_add_explicit(&q->depth, n, memory_order_relaxed);
    *q->tail = head;
    q->tail = &tail->next;
    if (q->sleeping)
        pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static inline void *evalq_main(void *arg)
{
    struct evalq *q = arg;

    for (;;) {
        struct evalq_item *batch, *it;
        size_t n = 1;

        pthread_mutex_lock(&q->mu);
        while (q->head == NULL && !q->stopping) {
            q->sleeping = 1;
            pthread_cond_wait(&q->cv, &q->mu);
            q->sleeping = 0;
        }
        if (q->head == NULL) { /* stopping and drained */
            pthread_mutex_unlock(&q->mu);
            return NULL;
        }
        batch = q->head;
        for (it = batch; it->next != NULL && n < q->max_batch; it = it->next)
            n++;
        q->head = it->next;
        it->next = NULL;
        if (q->head == NULL)
            q->tail = &q->head;
        atomic_fetch_sub_explicit(&q->depth, n, memory_order_relaxed);
        pthread_mutex_unlock(&q->mu);

        if (q->delay_ms != 0) {
            struct timespec ts = {q->delay_ms / 1000, (long)(q->delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        q->batches++;
        q->items += n;
        q->work(batch, n, q->arg);
    }
}

/* Starts the worker thread. Returns 0 or a positive errno from pthread_create. */
static inline int evalq_start(struct evalq *q, size_t max_batch, unsigned delay_ms,
                              evalq_work_cb work, void *arg)
{
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->head = NULL;
    q->tail = &q->head;
    q->sleeping = 0;
    q->stopping = 0;
    atomic_init(&q->depth, 0);
    q->max_batch = max_batch == 0 ? 1 : max_batch;
    q->delay_ms = delay_ms;
    q->work = work;
    q->arg = arg;
    q->batches = q->items = 0;
    return pthread_create(&q->thread, NULL, evalq_main, q);
}

/* Lets the worker finish what is queued, then joins it. */
static inline void evalq_stop(struct evalq *q)
{
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
}

#endif
