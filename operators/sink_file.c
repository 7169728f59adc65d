/*
 * sink_file.c - `sink.file` and `sink.stdout`: write events as JSON lines
 * (time as RFC 3339 text) or as raw msgpack.
 *
 * Both format into one buffer and write(2) it out when it holds
 * `batch.size` events, when its oldest event has waited `batch.interval`
 * (a timer), when it passes 1 MiB, and at end of stream. sink.file creates
 * missing parent directories, truncates unless `append: true`, and fsyncs
 * before closing so a finished run is on disk. sink.stdout also writes at
 * the end of every incoming batch, so a slow stream shows up at once.
 * An event that is not valid msgpack leaves by the `errors` port.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_parts.h"
#include "json.h"
#include "sluice/operator.h"

#define WRITE_AT (1u << 20)

typedef struct file_sink {
    int is_stdout;
    const char *path;
    int msgpack;
    int append, do_fsync;
    int64_t size, interval_ns;
    int fd;                /* where events are written: path, or the pending part */
    sl_wbuf buf;
    int64_t pending;
    int errors_port;
    file_parts parts;      /* with checkpoints: the pending part and publication */
    int transactional;
    int restored;
} file_sink;

static const sl_param file_params[] = {
    {"path", SL_PARAM_STRING, NULL, 1, "file to write (parent directories are created)", NULL},
    {"format", SL_PARAM_ENUM, "jsonl", 0, "jsonl: one JSON object per line; msgpack: raw events", "jsonl|msgpack"},
    {"batch", SL_PARAM_MAP, "{size: 4096, interval: 1s}", 0, "{size, interval}: write after this many events or this long", NULL},
    {"append", SL_PARAM_BOOL, "false", 0, "append to an existing file instead of truncating it", NULL},
    {"fsync", SL_PARAM_BOOL, "true", 0, "fsync the file before closing it", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const sl_param stdout_params[] = {
    {"format", SL_PARAM_ENUM, "jsonl", 0, "jsonl: one JSON object per line; msgpack: raw events", "jsonl|msgpack"},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"errors", NULL};

/* Read batch: {size, interval}; each part optional. */
static int read_batch(sl_ctx *ctx, file_sink *s)
{
    const sl_host *h = ctx->host;
    s->size = 4096;
    s->interval_ns = 1000000000;
    const sl_node *b = h->param(ctx, "batch");
    if (!b)
        return 0;
    int bad = 0;
    for (size_t i = 0; i < h->node_len(b); i++) {
        const char *k = h->node_key(b, i);
        const sl_node *v = h->node_at(b, i);
        if (strcmp(k, "size") == 0) {
            if (h->node_int(v, &s->size) != 0 || s->size < 1) {
                h->config_error(ctx, v, "invalid batch.size (expected a positive integer)");
                bad = 1;
            }
        } else if (strcmp(k, "interval") == 0) {
            if (h->node_duration(v, &s->interval_ns) != 0) {
                h->config_error(ctx, v, "invalid duration for batch.interval (expected e.g. 1s)");
                bad = 1;
            }
        } else {
            h->config_error(ctx, v, "unknown key 'batch.%s' (expected size or interval)", k);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

static int common_init(sl_ctx *ctx, void **state, int is_stdout)
{
    const sl_host *h = ctx->host;
    file_sink *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERROR;
    *state = s;
    s->fd = -1;
    file_parts_init(&s->parts);
    s->is_stdout = is_stdout;
    s->msgpack = strcmp(h->node_str(h->param(ctx, "format")), "msgpack") == 0;
    s->errors_port = h->port(ctx, "errors");
    uint32_t instances;
    h->instance(ctx, &instances);
    if (instances > 1) {
        /* several writers would interleave partial lines in one file */
        h->config_error(ctx, NULL, "%s writes one file: use parallelism 1",
                        is_stdout ? "sink.stdout" : "sink.file");
        return SL_ERROR;
    }
    if (is_stdout) {
        s->size = 4096;
        s->interval_ns = 0;
        return SL_OK;
    }
    s->path = h->node_str(h->param(ctx, "path"));
    if (!s->path || !*s->path) {
        h->config_error(ctx, h->param(ctx, "path"), "'path' must not be empty");
        return SL_ERROR;
    }
    if (h->node_bool(h->param(ctx, "append"), &s->append) != 0 ||
        h->node_bool(h->param(ctx, "fsync"), &s->do_fsync) != 0)
        return SL_ERROR;
    return read_batch(ctx, s) == 0 ? SL_OK : SL_ERROR;
}

static int file_init(sl_ctx *ctx, void **state) { return common_init(ctx, state, 0); }
static int stdout_init(sl_ctx *ctx, void **state) { return common_init(ctx, state, 1); }

/* mkdir -p of the directory part of path. */
static int make_parents(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return -ENOMEM;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            int e = -errno;
            free(dir);
            return e;
        }
        *p = '/';
    }
    free(dir);
    return 0;
}

static int file_restore(void *state, sl_ctx *ctx, uint64_t id)
{
    file_sink *s = state;
    s->restored = 1;
    return file_parts_restore(&s->parts, ctx, s->path, id);
}

static int file_start(void *state, sl_ctx *ctx)
{
    file_sink *s = state;
    if (s->is_stdout) {
        s->fd = STDOUT_FILENO;
        return SL_OK;
    }
    s->transactional = ctx->host->checkpoint_last(ctx) >= 0;
    int rc = make_parents(s->path);
    if (rc == 0 && s->transactional) {
        if (file_parts_start(&s->parts, ctx, s->path, s->restored, s->append) != SL_OK)
            return SL_ERROR;
        s->fd = s->parts.pending_fd;
        return SL_OK;
    }
    if (rc == 0) {
        s->fd = open(s->path, O_WRONLY | O_CREAT | O_CLOEXEC | (s->append ? O_APPEND : O_TRUNC),
                     0666);
        rc = s->fd < 0 ? -errno : 0;
    }
    if (rc != 0) {
        ctx->host->log(ctx, SL_LOG_ERROR, "cannot open '%s' for writing: %s", s->path,
                       strerror(-rc));
        return SL_ERROR;
    }
    return SL_OK;
}

static int write_out(file_sink *s, sl_ctx *ctx)
{
    size_t off = 0;
    while (off < s->buf.len) {
        ssize_t n = write(s->fd, s->buf.data + off, s->buf.len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ctx->host->log(ctx, SL_LOG_ERROR, "cannot write to '%s': %s",
                           s->is_stdout ? "stdout" : s->path, strerror(errno));
            return SL_ERROR;
        }
        off += (size_t)n;
    }
    sl_wbuf_reset(&s->buf);
    s->pending = 0;
    return SL_OK;
}

static int file_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    file_sink *s = state;
    int was_empty = s->pending == 0;
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        if (s->msgpack) {
            if (sl_wbuf_append(&s->buf, ev, len) != 0)
                return SL_ERROR;
        } else if (sl_msgpack_to_json(ev, len, &s->buf) != 0 ||
                   sl_wbuf_append(&s->buf, "\n", 1) != 0) {
            ctx->host->emit_drop(ctx, s->errors_port, "unwritable",
                                 "event is not valid msgpack", NULL, 0, NULL, 0);
            continue;
        }
        if (++s->pending >= s->size || s->buf.len >= WRITE_AT)
            if (write_out(s, ctx) != SL_OK)
                return SL_ERROR;
    }
    if (s->is_stdout)
        return write_out(s, ctx);
    if (was_empty && s->pending && s->interval_ns > 0)
        ctx->host->timer_set(ctx, ctx->host->monotonic(ctx) + s->interval_ns);
    return SL_OK;
}

static int file_timer(void *state, sl_ctx *ctx, int64_t now)
{
    return write_out(state, ctx);
}

/* Checkpoint id: what came before its barrier becomes the part that id publishes. */
static int file_snapshot(void *state, sl_ctx *ctx, uint64_t id)
{
    file_sink *s = state;
    if (!s->transactional) {
        ctx->host->log(ctx, SL_LOG_ERROR, "a snapshot without checkpoints configured");
        return SL_ERROR;
    }
    if (write_out(s, ctx) != SL_OK || file_parts_close(&s->parts, ctx, id) != SL_OK)
        return SL_ERROR;
    s->fd = s->parts.pending_fd;
    return SL_OK;
}

static int file_checkpoint_done(void *state, sl_ctx *ctx, uint64_t id)
{
    file_sink *s = state;
    return s->transactional ? file_parts_publish(&s->parts, ctx, id) : SL_OK;
}

static int file_finish(void *state, sl_ctx *ctx)
{
    file_sink *s = state;
    if (s->fd < 0)
        return SL_OK;
    if (write_out(s, ctx) != SL_OK)
        return SL_ERROR;
    if (s->transactional)
        return SL_OK; /* the final checkpoint syncs and publishes it */
    if (!s->is_stdout && s->do_fsync && fsync(s->fd) != 0) {
        ctx->host->log(ctx, SL_LOG_ERROR, "cannot fsync '%s': %s", s->path, strerror(errno));
        return SL_ERROR;
    }
    return SL_OK;
}

static void file_destroy(void *state)
{
    file_sink *s = state;
    if (!s)
        return;
    if (s->fd >= 0 && !s->is_stdout && !s->transactional)
        close(s->fd);
    file_parts_fini(&s->parts);
    sl_wbuf_fini(&s->buf);
    free(s);
}

const sl_operator sl_op_sink_file = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "sink.file",
    .summary = "Writes events to a file as JSON lines or msgpack",
    .flags = SL_OP_SINK,
    .param_size = sizeof(sl_param),
    .params = file_params,
    .outputs = outputs,
    .init = file_init,
    .start = file_start,
    .process = file_process,
    .on_timer = file_timer,
    .finish = file_finish,
    .destroy = file_destroy,
    .snapshot = file_snapshot,
    .restore = file_restore,
    .checkpoint_done = file_checkpoint_done,
};

const sl_operator sl_op_sink_stdout = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "sink.stdout",
    .summary = "Writes events to standard output as JSON lines or msgpack",
    .flags = SL_OP_SINK,
    .param_size = sizeof(sl_param),
    .params = stdout_params,
    .outputs = outputs,
    .init = stdout_init,
    .start = file_start,
    .process = file_process,
    .finish = file_finish,
    .destroy = file_destroy,
};
