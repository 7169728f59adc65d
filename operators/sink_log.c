/*
 * sink_log.c - `sink.log`: append events to a durable event log
 * (engine/eventlog.h, docs/eventlog.md).
 *
 * Each incoming batch is one append: process returns once the batch is
 * committed and synced, so whatever leaves this operator's input is on disk.
 * Instances (parallelism > 1), other sinks and other processes appending to
 * the same log share its group commit. An event without a string `id`, or
 * not a map, leaves by `errors` as a drop envelope (reason `invalid`); an id
 * already in the log is skipped and counted as a duplicate (appends are
 * idempotent, so a replay after a crash stores nothing twice).
 */
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "sluice/operator.h"

typedef struct log_sink {
    const char *path;
    sl_eventlog_opts opts;
    sl_eventlog *log;
    int errors_port;
    /* per batch, grown to the largest batch seen */
    const uint8_t **evs;
    size_t *lens;
    sl_eventlog_result *res;
    size_t cap;
} log_sink;

static const sl_param params[] = {
    {"path", SL_PARAM_STRING, NULL, 1, "the log's directory (created if missing)", NULL},
    {"retention", SL_PARAM_MAP, NULL, 0, "{max_age, max_size}: remove the oldest events past either", NULL},
    {"map_size", SL_PARAM_SIZE, "64GiB", 0, "address space reserved for the log file (its size limit)", NULL},
    {"sync", SL_PARAM_ENUM, "fast", 0, "fast: one fsync per group commit; ordered: data synced before each commit's root (docs/eventlog.md)", "fast|ordered"},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"errors", NULL};

/* retention: {max_age: 7d, max_size: 10GiB}; each part optional. */
static int read_retention(sl_ctx *ctx, log_sink *s)
{
    const sl_host *h = ctx->host;
    const sl_node *r = h->param(ctx, "retention");
    if (!r)
        return 0;
    int bad = 0;
    for (size_t i = 0; i < h->node_len(r); i++) {
        const char *k = h->node_key(r, i);
        const sl_node *v = h->node_at(r, i);
        if (strcmp(k, "max_age") == 0) {
            if (h->node_duration(v, &s->opts.max_age_ns) != 0 || s->opts.max_age_ns <= 0) {
                h->config_error(ctx, v, "invalid duration for retention.max_age (expected e.g. 7d)");
                bad = 1;
            }
        } else if (strcmp(k, "max_size") == 0) {
            if (h->node_size(v, &s->opts.max_bytes) != 0 || s->opts.max_bytes == 0) {
                h->config_error(ctx, v, "invalid size for retention.max_size (expected e.g. 10GiB)");
                bad = 1;
            }
        } else {
            h->config_error(ctx, v, "unknown key 'retention.%s' (expected max_age or max_size)", k);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

static int sink_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    log_sink *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERROR;
    *state = s;
    s->path = h->node_str(h->param(ctx, "path"));
    s->errors_port = h->port(ctx, "errors");
    s->opts.create = 1;
    s->opts.ordered_sync = strcmp(h->node_str(h->param(ctx, "sync")), "ordered") == 0;
    if (!s->path || !*s->path) {
        h->config_error(ctx, h->param(ctx, "path"), "'path' must not be empty");
        return SL_ERROR;
    }
    if (h->node_size(h->param(ctx, "map_size"), &s->opts.map_size) != 0 ||
        s->opts.map_size < (1u << 20)) {
        h->config_error(ctx, h->param(ctx, "map_size"), "'map_size' must be at least 1MiB");
        return SL_ERROR;
    }
    return read_retention(ctx, s) == 0 ? SL_OK : SL_ERROR;
}

static int sink_start(void *state, sl_ctx *ctx)
{
    log_sink *s = state;
    char err[512];
    if (sl_eventlog_open(s->path, &s->opts, &s->log, err, sizeof err) != 0) {
        ctx->host->log(ctx, SL_LOG_ERROR, "%s", err);
        return SL_ERROR;
    }
    return SL_OK;
}

static int grow(log_sink *s, size_t n)
{
    if (n <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 1024;
    while (cap < n)
        cap *= 2;
    const uint8_t **evs = realloc(s->evs, cap * sizeof *evs);
    if (evs)
        s->evs = evs;
    size_t *lens = realloc(s->lens, cap * sizeof *lens);
    if (lens)
        s->lens = lens;
    sl_eventlog_result *res = realloc(s->res, cap * sizeof *res);
    if (res)
        s->res = res;
    if (!evs || !lens || !res)
        return -1;
    s->cap = cap;
    return 0;
}

static int sink_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    log_sink *s = state;
    const sl_host *h = ctx->host;
    if (b->count == 0)
        return SL_OK;
    if (grow(s, b->count) != 0) {
        h->log(ctx, SL_LOG_ERROR, "out of memory");
        return SL_ERROR;
    }
    for (uint32_t i = 0; i < b->count; i++)
        s->evs[i] = sl_batch_event(b, i, &s->lens[i]);
    int rc = sl_eventlog_append(s->log, s->evs, s->lens, b->count, s->res);
    if (rc < 0) {
        h->log(ctx, SL_LOG_ERROR, "appending to the event log '%s': %s%s", s->path,
               sl_eventlog_strerror(rc),
               rc == MDB_MAP_FULL ? " (raise map_size or set a retention)" : "");
        return SL_ERROR;
    }
    uint64_t dups = 0;
    for (uint32_t i = 0; i < b->count; i++) {
        if (s->res[i].status == SL_EVENTLOG_DUPLICATE) {
            dups++;
        } else if (s->res[i].status == SL_EVENTLOG_INVALID) {
            const uint8_t *p = s->evs[i];
            int whole = sl_mp_skip(&p, p + s->lens[i]) == 0 && p == s->evs[i] + s->lens[i];
            /* the envelope carries the event only when it is one msgpack value */
            if (h->emit_drop(ctx, s->errors_port, "invalid", s->res[i].why,
                             whole ? s->evs[i] : NULL, whole ? s->lens[i] : 0, NULL, 0) != 0)
                return SL_ERROR;
        }
    }
    if (rc > 0)
        h->count(ctx, "appended", (uint64_t)rc);
    if (dups)
        h->count(ctx, "duplicates", dups);
    return SL_OK;
}

static void sink_destroy(void *state)
{
    log_sink *s = state;
    if (!s)
        return;
    sl_eventlog_close(&s->log);
    free(s->evs);
    free(s->lens);
    free(s->res);
    free(s);
}

const sl_operator sl_op_sink_log = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "sink.log",
    .summary = "Appends events to a durable event log (idempotent by id, group commit)",
    .flags = SL_OP_SINK,
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .init = sink_init,
    .start = sink_start,
    .process = sink_process,
    .destroy = sink_destroy,
};
