/*
 * source_log.c - `source.log`: the events of a durable event log in offset
 * order (engine/eventlog.h, docs/eventlog.md), unchanged.
 *
 * From `from` (start, end or an offset) it reads up to 1024 events per
 * produce; at the end it either ends the stream (follow: false) or waits for
 * appends like tail -f (follow: true): appends made in this process wake it
 * at once, other processes' are seen within `poll`. It is replayable: a
 * snapshot stores the offset of the next event to emit, and a restore starts
 * there, whatever `from` says; so a restart re-reads exactly what came after
 * the checkpoint. When retention removed events it had not read yet, it
 * goes on from the first one kept and says how many it lost.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "position.h"
#include "sluice/operator.h"

#define PER_CALL 1024

enum { FROM_START, FROM_END, FROM_OFFSET };

typedef struct log_src {
    const char *path;
    int from;
    uint64_t from_offset;
    int follow;
    int64_t poll_ns;
    const char **types; /* borrowed from the configuration */
    size_t n_types;
    sl_eventlog *log;
    sl_eventlog_reader *r;
    uint64_t next;      /* offset of the next event to emit: what a snapshot stores */
    int restored;
    sl_kv *pos_db;      /* checkpoints: `next`, in the log at `path` (position.h) */
    sl_eventlog_event evs[PER_CALL];
} log_src;

static const sl_param params[] = {
    {"path", SL_PARAM_STRING, NULL, 1, "the log's directory", NULL},
    {"from", SL_PARAM_STRING, "start", 0, "where to begin: start, end (only new events) or an offset", NULL},
    {"follow", SL_PARAM_BOOL, "true", 0, "at the end, wait for appends (false: end of stream)", NULL},
    {"poll", SL_PARAM_DURATION, "10ms", 0, "how often to look for appends made by other processes", NULL},
    {"types", SL_PARAM_LIST, NULL, 0, "only events whose type is one of these", NULL},
    {"map_size", SL_PARAM_SIZE, "64GiB", 0, "address space reserved for the log file (as the writer's)", NULL},
    {"watermark", SL_PARAM_MAP, NULL, 0, "{max_out_of_order, idle_timeout}: event-time watermarks", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", NULL};

static int src_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    log_src *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERROR;
    *state = s;
    s->path = h->node_str(h->param(ctx, "path"));
    if (!s->path || !*s->path) {
        h->config_error(ctx, h->param(ctx, "path"), "'path' must not be empty");
        return SL_ERROR;
    }
    const sl_node *from = h->param(ctx, "from");
    const char *f = h->node_str(from);
    int64_t off;
    if (strcmp(f, "start") == 0) {
        s->from = FROM_START;
    } else if (strcmp(f, "end") == 0) {
        s->from = FROM_END;
    } else if (h->node_int(from, &off) == 0 && off >= 0) {
        s->from = FROM_OFFSET;
        s->from_offset = (uint64_t)off;
    } else {
        h->config_error(ctx, from, "invalid 'from' '%s' (expected start, end or an offset >= 0)", f);
        return SL_ERROR;
    }
    if (h->node_bool(h->param(ctx, "follow"), &s->follow) != 0 ||
        h->node_duration(h->param(ctx, "poll"), &s->poll_ns) != 0)
        return SL_ERROR;
    if (s->poll_ns <= 0) {
        h->config_error(ctx, h->param(ctx, "poll"), "'poll' must be more than 0");
        return SL_ERROR;
    }
    const sl_node *types = h->param(ctx, "types");
    if (types) {
        s->n_types = h->node_len(types);
        if (s->n_types == 0) {
            h->config_error(ctx, types, "'types' is empty: no event would pass");
            return SL_ERROR;
        }
        if (!(s->types = calloc(s->n_types, sizeof *s->types)))
            return SL_ERROR;
        for (size_t i = 0; i < s->n_types; i++) {
            const sl_node *t = h->node_at(types, i);
            if (!(s->types[i] = h->node_str(t))) {
                h->config_error(ctx, t, "each of 'types' must be a type name");
                return SL_ERROR;
            }
        }
    }
    return SL_OK;
}


static int src_start(void *state, sl_ctx *ctx)
{
    log_src *s = state;
    const sl_host *h = ctx->host;
    char err[512];
    uint64_t map_size = 0;
    h->node_size(h->param(ctx, "map_size"), &map_size);
    /* a follower may start before the writer: then it makes the (empty) log */
    sl_eventlog_opts o = {.create = s->follow, .map_size = map_size};
    if (sl_eventlog_open(s->path, &o, &s->log, err, sizeof err) != 0) {
        h->log(ctx, SL_LOG_ERROR, "%s", err);
        return SL_ERROR;
    }
    uint64_t first, next;
    int rc = sl_eventlog_bounds(s->log, &first, &next);
    if (rc != 0) {
        h->log(ctx, SL_LOG_ERROR, "event log '%s': %s", s->path, sl_eventlog_strerror(rc));
        return SL_ERROR;
    }
    if (!s->restored)
        s->next = s->from == FROM_START ? first : s->from == FROM_END ? next : s->from_offset;
    if ((rc = sl_eventlog_reader_open(s->log, s->next, &s->r)) != 0) {
        h->log(ctx, SL_LOG_ERROR, "event log '%s': %s", s->path, sl_eventlog_strerror(rc));
        return SL_ERROR;
    }
    return SL_OK;
}

static int wanted(const log_src *s, const sl_eventlog_event *ev)
{
    const uint8_t *p = ev->data, *end = ev->data + ev->len;
    sl_mp_val v;
    if (sl_mp_map_find(&p, end, "type", 4) != 1 || sl_mp_read(&p, end, &v) != 0 ||
        v.type != SL_MP_STR)
        return 0;
    for (size_t i = 0; i < s->n_types; i++)
        if (strlen(s->types[i]) == v.v.str.len && memcmp(s->types[i], v.v.str.ptr, v.v.str.len) == 0)
            return 1;
    return 0;
}

static int src_produce(void *state, sl_ctx *ctx, int64_t deadline_ns)
{
    log_src *s = state;
    const sl_host *h = ctx->host;
    int n = sl_eventlog_reader_next(s->r, s->evs, PER_CALL);
    if (n < 0) {
        h->log(ctx, SL_LOG_ERROR, "reading the event log '%s': %s", s->path,
               sl_eventlog_strerror(n));
        return SL_ERROR;
    }
    if (n == 0) {
        if (!s->follow)
            return SL_EOS;
        int64_t wait = deadline_ns - h->monotonic(ctx);
        if (wait > s->poll_ns)
            wait = s->poll_ns;
        if (wait > 0 && sl_eventlog_wait(s->log, s->next, wait) < 0)
            return SL_ERROR;
        return SL_IDLE;
    }
    if (s->evs[0].offset > s->next) {
        uint64_t lost = s->evs[0].offset - s->next;
        h->log(ctx, SL_LOG_WARN, "event log '%s': events %" PRIu64 "..%" PRIu64 " were removed by "
               "retention before they were read; %" PRIu64 " events skipped, going on at %" PRIu64,
               s->path, s->next, s->evs[0].offset - 1, lost, s->evs[0].offset);
        h->count(ctx, "skipped", lost);
    }
    for (int i = 0; i < n; i++) {
        if (s->n_types && !wanted(s, &s->evs[i]))
            continue;
        if (sl_emit(ctx, 0, s->evs[i].data, s->evs[i].len) != 0)
            return SL_ERROR;
    }
    s->next = s->evs[n - 1].offset + 1;
    sl_eventlog_reader_release(s->r); /* emit copied them */
    return SL_OK;
}

static int src_snapshot(void *state, sl_ctx *ctx, uint64_t id)
{
    log_src *s = state;
    if (!s->pos_db && !(s->pos_db = sl_position_open(ctx)))
        return SL_ERROR;
    return sl_position_save(ctx, s->pos_db, id, s->path, &s->next, 1);
}

static int src_restore(void *state, sl_ctx *ctx, uint64_t id)
{
    log_src *s = state;
    if (!(s->pos_db = sl_position_open(ctx)) ||
        sl_position_load(ctx, s->pos_db, id, s->path, "log", &s->next, 1) != SL_OK)
        return SL_ERROR;
    s->restored = 1;
    return SL_OK;
}

static void src_destroy(void *state)
{
    log_src *s = state;
    if (!s)
        return;
    sl_eventlog_reader_close(&s->r);
    sl_eventlog_close(&s->log);
    free(s->types);
    free(s);
}

const sl_operator sl_op_source_log = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "source.log",
    .summary = "Reads a durable event log from an offset, following appends (replayable)",
    .flags = SL_OP_SOURCE,
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .init = src_init,
    .start = src_start,
    .produce = src_produce,
    .destroy = src_destroy,
    .snapshot = src_snapshot,
    .restore = src_restore,
};
