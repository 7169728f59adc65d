/*
 * source_http.c - `source.http`: an HTTP/1.1 server whose requests become
 * events (docs/gateway/http.md; the event: docs/gateway.md). A `respond`
 * operator answers them on the held connection.
 *
 * The server (http_server.c) is made in init, so that it is registered
 * before any respond looks for it, and started in start: its event loops run
 * on threads of their own and queue the requests as msgpack events. produce
 * waits on that queue (a condition variable, no spinning) until events come
 * or its deadline passes, and emits what it took. The stage thread is also
 * where the server's counters become this operator's metrics.
 *
 * Graceful stop: the engine stops calling produce and calls finish, which
 * closes the listeners and the queue and emits what was still queued, so
 * every request that was accepted reaches respond; the server stays up (it
 * is shared by reference count with respond) until the last of them is
 * answered or `drain` runs out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "sluice/operator.h"

typedef struct http_src {
    sl_http_server *srv;
    sl_http_chunk *held; /* taken in the last produce: handed back in the next */
    sl_http_stats last;  /* what was published as counters already */
    int64_t next_publish;
} http_src;

static const sl_param params[] = {
    {"listen", SL_PARAM_STRING, "127.0.0.1:8080", 0,
     "host:port to listen on; port 0 picks a free one; [::1]:8080 for IPv6", NULL},
    {"threads", SL_PARAM_INT, "1", 0,
     "event loops, each on its own thread and SO_REUSEPORT listener", NULL},
    {"max_inflight", SL_PARAM_INT, "10000", 0,
     "requests emitted and not answered yet; beyond: 503 with Retry-After at once", NULL},
    {"max_queue", SL_PARAM_INT, "4096", 0,
     "requests received and not yet taken by this operator's stage; beyond: 503", NULL},
    {"max_body", SL_PARAM_SIZE, "1MiB", 0, "largest request body: 413 beyond", NULL},
    {"max_header", SL_PARAM_SIZE, "16KiB", 0,
     "largest request line and header fields: 431 beyond (at most 400KiB)", NULL},
    {"timeouts", SL_PARAM_MAP, "{header: 10s, body: 30s, idle: 60s, response: 30s}", 0,
     "{header, body, idle, response}: slow head or body 408, idle keep-alive closed, "
     "unanswered request 504",
     NULL},
    {"retry_after", SL_PARAM_DURATION, "1s", 0, "Retry-After of the 503 answered when full", NULL},
    {"drain", SL_PARAM_DURATION, "10s", 0,
     "graceful stop: how long requests in flight may take to be answered", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

/* "host:port", "[v6]:port" -> cfg. 0, or -1 after reporting. */
static int parse_listen(sl_ctx *ctx, const sl_node *at, const char *text, sl_http_config *cfg)
{
    const sl_host *h = ctx->host;
    const char *colon = strrchr(text, ':');
    const char *host = text, *hend = colon;
    if (text[0] == '[') {
        const char *rb = strchr(text, ']');
        if (!rb || rb[1] != ':') goto bad;
        host = text + 1;
        hend = rb;
        colon = rb + 1;
    }
    if (!colon || hend == host || (size_t)(hend - host) >= sizeof cfg->host) goto bad;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || !colon[1] || *end || port < 0 || port > 65535) goto bad;
    memcpy(cfg->host, host, (size_t)(hend - host));
    cfg->host[hend - host] = 0;
    if (strcmp(cfg->host, "*") == 0) strcpy(cfg->host, "0.0.0.0");
    cfg->port = (uint16_t)port;
    return 0;
bad:
    h->config_error(ctx, at,
                    "'listen' must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080 "
                    "(port 0: any free port), not '%s'",
                    text);
    return -1;
}

static int read_int(sl_ctx *ctx, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    const sl_host *h = ctx->host;
    const sl_node *n = h->param(ctx, name);
    if (h->node_int(n, out) != 0 || *out < lo || *out > hi) {
        h->config_error(ctx, n, "'%s' must be an integer from %lld to %lld", name, (long long)lo,
                        (long long)hi);
        return -1;
    }
    return 0;
}

static int read_timeouts(sl_ctx *ctx, sl_http_config *cfg)
{
    const sl_host *h = ctx->host;
    const sl_node *t = h->param(ctx, "timeouts");
    static const char *const names[] = {"header", "body", "idle", "response"};
    int64_t *slots[] = {&cfg->header_ns, &cfg->body_ns, &cfg->idle_ns, &cfg->response_ns};
    int bad = 0;
    for (size_t i = 0; t && i < h->node_len(t); i++) {
        const char *k = h->node_key(t, i);
        const sl_node *v = h->node_at(t, i);
        size_t j = 0;
        while (j < 4 && strcmp(k, names[j]) != 0)
            j++;
        if (j == 4) {
            h->config_error(ctx, v,
                            "unknown key 'timeouts.%s' (expected header, body, idle or "
                            "response)",
                            k);
            bad = 1;
        } else if (h->node_duration(v, slots[j]) != 0 || *slots[j] < 1000000) {
            h->config_error(ctx, v, "'timeouts.%s' must be a duration of at least 1ms, e.g. 10s",
                            k);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

static int src_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    http_src *s = calloc(1, sizeof *s);
    if (!s) return SL_ERROR;
    *state = s;
    sl_http_config cfg = {
        .header_ns = 10000000000ll,
        .body_ns = 30000000000ll,
        .idle_ns = 60000000000ll,
        .response_ns = 30000000000ll,
    };
    int bad =
        parse_listen(ctx, h->param(ctx, "listen"), h->node_str(h->param(ctx, "listen")), &cfg);
    int64_t v;
    if (read_int(ctx, "threads", 1, 64, &v) == 0)
        cfg.threads = (uint32_t)v;
    else
        bad = 1;
    if (read_int(ctx, "max_inflight", 1, 0xffffff, &v) == 0)
        cfg.max_inflight = (uint32_t)v;
    else
        bad = 1;
    if (read_int(ctx, "max_queue", 1, 0xffffff, &v) == 0)
        cfg.max_queue = (uint32_t)v;
    else
        bad = 1;
    const sl_node *n = h->param(ctx, "max_body");
    if (h->node_size(n, &cfg.max_body) != 0 || cfg.max_body > (1ull << 30)) {
        h->config_error(ctx, n, "'max_body' must be a size of at most 1GiB, e.g. 1MiB");
        bad = 1;
    }
    n = h->param(ctx, "max_header");
    if (h->node_size(n, &cfg.max_header) != 0 || cfg.max_header < 256 ||
        cfg.max_header > SL_HTTP_MAX_HEADER_LIMIT - 4096) {
        h->config_error(ctx, n, "'max_header' must be a size from 256 to 400KiB, e.g. 16KiB");
        bad = 1;
    }
    bad |= read_timeouts(ctx, &cfg);
    n = h->param(ctx, "retry_after");
    if (h->node_duration(n, &cfg.retry_after_ns) != 0 || cfg.retry_after_ns < 0) {
        h->config_error(ctx, n, "'retry_after' must be a duration, e.g. 1s");
        bad = 1;
    }
    n = h->param(ctx, "drain");
    if (h->node_duration(n, &cfg.drain_ns) != 0 || cfg.drain_ns < 0) {
        h->config_error(ctx, n, "'drain' must be a duration, e.g. 10s");
        bad = 1;
    }
    if (bad) return SL_ERROR;
    int rc = sl_http_server_new(h->name(ctx), &cfg, &s->srv);
    if (rc == -EEXIST) {
        h->config_error(ctx, h->param(ctx, "listen"),
                        "a source.http named '%s' is already running in this process",
                        h->name(ctx));
        return SL_ERROR;
    }
    return rc == 0 ? SL_OK : SL_ERROR;
}

static int src_start(void *state, sl_ctx *ctx)
{
    http_src *s = state;
    char err[512] = "";
    if (sl_http_server_start(s->srv, err, sizeof err) != 0) {
        ctx->host->log(ctx, SL_LOG_ERROR, "%s", err[0] ? err : "cannot start the HTTP server");
        return SL_ERROR;
    }
    ctx->host->log(ctx, SL_LOG_INFO, "listening on %s", sl_http_server_url(s->srv));
    return SL_OK;
}

/* The server's totals become counters (the growth since the last call) and gauges. */
static void publish(http_src *s, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    sl_http_stats st;
    sl_http_server_stats(s->srv, &st);
#define DELTA(field, name)                                                                         \
    if (st.field != s->last.field) h->count(ctx, name, st.field - s->last.field);
    DELTA(requests, "requests")
    DELTA(rejected_503, "rejected_503")
    DELTA(timeouts, "timeouts")
    DELTA(request_timeouts, "request_timeouts")
    DELTA(too_large, "header_too_large")
    DELTA(idle_closed, "idle_closed")
    DELTA(stale, "stale_responses")
    DELTA(client_gone, "client_gone")
    DELTA(connections_total, "connections")
    DELTA(responses[2], "responses_2xx")
    DELTA(responses[3], "responses_3xx")
    DELTA(responses[4], "responses_4xx")
    DELTA(responses[5], "responses_5xx")
#undef DELTA
    h->gauge(ctx, "inflight", st.inflight);
    h->gauge(ctx, "connections_open", st.connections);
    h->gauge(ctx, "queued", st.queued);
    s->last = st;
}

/* Emit every event of the chunks taken. */
static int emit_all(http_src *s, sl_ctx *ctx)
{
    for (sl_http_chunk *k = s->held; k; k = k->next) {
        uint32_t start = 0;
        for (uint32_t i = 0; i < k->n; i++) {
            if (sl_emit(ctx, 0, k->data.data + start, k->ends[i] - start) != 0) return SL_ERROR;
            start = k->ends[i];
        }
    }
    return SL_OK;
}

static int src_produce(void *state, sl_ctx *ctx, int64_t deadline_ns)
{
    http_src *s = state;
    int64_t now = ctx->host->monotonic(ctx);
    if (now >= s->next_publish) {
        publish(s, ctx);
        s->next_publish = now + 100000000; /* 10 times a second is plenty */
    }
    if (sl_http_server_take(s->srv, deadline_ns, &s->held) == 0) return SL_IDLE;
    return emit_all(s, ctx);
}

static int src_finish(void *state, sl_ctx *ctx)
{
    http_src *s = state;
    sl_http_server_drain(s->srv); /* listeners and queue closed */
    sl_http_server_take(s->srv, 0, &s->held);
    int rc = emit_all(s, ctx);
    publish(s, ctx);
    const sl_http_stats *st = &s->last;
    ctx->host->log(ctx, SL_LOG_INFO,
                   "stopping: %llu requests became events, %lld still waiting for an answer; "
                   "503 at capacity or stopping: %llu, 504: %llu, stale answers: %llu",
                   (unsigned long long)st->requests, (long long)st->inflight,
                   (unsigned long long)st->rejected_503, (unsigned long long)st->timeouts,
                   (unsigned long long)st->stale);
    return rc;
}

static void src_destroy(void *state)
{
    http_src *s = state;
    if (!s) return;
    if (s->srv) sl_http_server_give_back(s->srv, s->held);
    sl_http_server_release(&s->srv);
    free(s);
}

const sl_operator sl_op_source_http = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "source.http",
    .summary = "HTTP/1.1 server: each request becomes an event that respond answers",
    .flags = SL_OP_SOURCE,
    .param_size = sizeof(sl_param),
    .params = params,
    .init = src_init,
    .start = src_start,
    .produce = src_produce,
    .finish = src_finish,
    .destroy = src_destroy,
};
