/*
 * source_file.c - `source.file`: events from a file of JSON lines or of
 * msgpack maps back to back.
 *
 * Reads with read(2) into one buffer (grown only for a line longer than it,
 * up to max_line), splits lines with memchr and converts each in place to
 * msgpack (engine/json.h, simdjson). The buffer keeps SL_JSON_PADDING spare
 * bytes after the data, which is what the parser needs to read past a line.
 * A line that is not a JSON object, or whose time is not RFC 3339, leaves
 * by the `errors` port as a drop envelope with file, line and reason; it
 * never stops the pipeline. Blank lines are skipped; CRLF is accepted.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "position.h"
#include "sluice/operator.h"

#define PER_CALL 1024
#define CHUNK (1u << 20)
#define ORIGINAL_MAX 4096 /* bytes of a bad line kept in its drop envelope */

typedef struct file_src {
    const char *path;
    int msgpack;
    uint64_t max_line;
    int fd;
    char *buf;
    size_t cap;        /* usable bytes; SL_JSON_PADDING more are allocated */
    size_t start, end; /* unread data is buf[start, end) */
    int eof;
    uint64_t line;     /* number of the next line (jsonl) */
    uint64_t offset;   /* file offset of buf[start] */
    sl_json_parser *jp;
    sl_wbuf ev, extra;
    int errors_port;
    /* checkpoints: the byte offset and line number after the last event emitted */
    sl_kv *pos_db;
    int restored;
    uint64_t pos[2];
    char *fingerprint; /* format and path: what the offset is an offset in */
} file_src;

static const sl_param params[] = {
    {"path", SL_PARAM_STRING, NULL, 1, "file to read", NULL},
    {"format", SL_PARAM_ENUM, "jsonl", 0, "jsonl: one JSON object per line; msgpack: maps back to back", "jsonl|msgpack"},
    {"max_line", SL_PARAM_SIZE, "16MiB", 0, "longest line (or msgpack event) accepted", NULL},
    {"watermark", SL_PARAM_MAP, NULL, 0, "{max_out_of_order, idle_timeout}: event-time watermarks", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "errors", NULL};

static int src_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    file_src *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERROR;
    *state = s;
    s->fd = -1;
    s->path = h->node_str(h->param(ctx, "path"));
    s->msgpack = strcmp(h->node_str(h->param(ctx, "format")), "msgpack") == 0;
    s->errors_port = h->port(ctx, "errors");
    if (h->node_size(h->param(ctx, "max_line"), &s->max_line) != 0)
        return SL_ERROR;
    if (!s->path || !*s->path) {
        h->config_error(ctx, h->param(ctx, "path"), "'path' must not be empty");
        return SL_ERROR;
    }
    if (s->max_line < 1024) {
        h->config_error(ctx, h->param(ctx, "max_line"), "'max_line' must be at least 1KiB");
        return SL_ERROR;
    }
    if (asprintf(&s->fingerprint, "%s:%s", s->msgpack ? "msgpack" : "jsonl", s->path) < 0) {
        s->fingerprint = NULL;
        return SL_ERROR;
    }
    return SL_OK;
}

static int src_restore(void *state, sl_ctx *ctx, uint64_t id)
{
    file_src *s = state;
    if (!(s->pos_db = sl_position_open(ctx)) ||
        sl_position_load(ctx, s->pos_db, id, s->fingerprint, "file", s->pos, 2) != SL_OK)
        return SL_ERROR;
    s->restored = 1;
    return SL_OK;
}

static int src_snapshot(void *state, sl_ctx *ctx, uint64_t id)
{
    file_src *s = state;
    uint64_t pos[2] = {s->offset + s->start, s->line};
    if (!s->pos_db && !(s->pos_db = sl_position_open(ctx)))
        return SL_ERROR;
    return sl_position_save(ctx, s->pos_db, id, s->fingerprint, pos, 2);
}

/* Continue after the restored position: the events before it were in the checkpoint. */
static int seek_restored(file_src *s, sl_ctx *ctx)
{
    struct stat st;
    if (fstat(s->fd, &st) != 0 || (uint64_t)st.st_size < s->pos[0]) {
        ctx->host->log(ctx, SL_LOG_ERROR,
                       "'%s' is shorter than the checkpoint's position (byte %" PRIu64
                       "): the file was replaced or truncated since; run with --fresh to "
                       "start over", s->path, s->pos[0]);
        return SL_ERROR;
    }
    if (lseek(s->fd, (off_t)s->pos[0], SEEK_SET) < 0) {
        ctx->host->log(ctx, SL_LOG_ERROR, "cannot seek in '%s': %s", s->path, strerror(errno));
        return SL_ERROR;
    }
    s->offset = s->pos[0];
    s->line = s->pos[1];
    return SL_OK;
}

static int src_start(void *state, sl_ctx *ctx)
{
    file_src *s = state;
    s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        ctx->host->log(ctx, SL_LOG_ERROR, "cannot open '%s': %s", s->path, strerror(errno));
        return SL_ERROR;
    }
    s->cap = CHUNK;
    s->buf = malloc(s->cap + SL_JSON_PADDING);
    s->jp = s->msgpack ? NULL : sl_json_parser_new();
    if (!s->buf || (!s->msgpack && !s->jp)) {
        ctx->host->log(ctx, SL_LOG_ERROR, "out of memory");
        return SL_ERROR;
    }
    s->line = 1;
    return s->restored ? seek_restored(s, ctx) : SL_OK;
}

/* Move unread data to the front and read more. Returns 0, or -1 on a read error. */
static int refill(file_src *s, sl_ctx *ctx)
{
    if (s->start > 0) {
        memmove(s->buf, s->buf + s->start, s->end - s->start);
        s->end -= s->start;
        s->offset += s->start;
        s->start = 0;
    }
    if (s->end == s->cap) { /* one record fills the buffer: grow it */
        size_t cap = s->cap * 2;
        char *b = realloc(s->buf, cap + SL_JSON_PADDING);
        if (!b) {
            ctx->host->log(ctx, SL_LOG_ERROR, "out of memory");
            return -1;
        }
        s->buf = b;
        s->cap = cap;
    }
    for (;;) {
        ssize_t n = read(s->fd, s->buf + s->end, s->cap - s->end);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ctx->host->log(ctx, SL_LOG_ERROR, "cannot read '%s': %s", s->path, strerror(errno));
            return -1;
        }
        if (n == 0)
            s->eof = 1;
        s->end += (size_t)n;
        return 0;
    }
}

/* Send a bad record to the errors port with where it was and why. */
static void reject(file_src *s, sl_ctx *ctx, const char *reason, const char *why, const char *rec,
                   size_t len, uint64_t where)
{
    char detail[512];
    if (s->msgpack)
        snprintf(detail, sizeof detail, "%s: byte %llu: %s", s->path, (unsigned long long)where, why);
    else
        snprintf(detail, sizeof detail, "%s:%llu: %s", s->path, (unsigned long long)where, why);
    sl_wbuf orig = {0};
    sl_wbuf_reset(&s->extra);
    if (s->msgpack)
        sl_mp_write_bin(&orig, rec, len > ORIGINAL_MAX ? ORIGINAL_MAX : len);
    else
        sl_mp_write_str(&orig, rec, len > ORIGINAL_MAX ? ORIGINAL_MAX : len);
    sl_mp_write_map(&s->extra, 2);
    sl_mp_write_cstr(&s->extra, "file");
    sl_mp_write_cstr(&s->extra, s->path);
    sl_mp_write_cstr(&s->extra, s->msgpack ? "offset" : "line");
    sl_mp_write_uint(&s->extra, where);
    ctx->host->emit_drop(ctx, s->errors_port, reason, detail, orig.data, orig.len, s->extra.data,
                         s->extra.len);
    sl_wbuf_fini(&orig);
}

static int is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

/* One JSON line [p, p+n) (no newline). */
static int take_line(file_src *s, sl_ctx *ctx, char *p, size_t n)
{
    uint64_t line = s->line++;
    if (n && p[n - 1] == '\r')
        n--;
    if (is_blank(p, n))
        return SL_OK;
    if (n > s->max_line) {
        reject(s, ctx, "malformed", "line longer than max_line", p, n, line);
        return SL_OK;
    }
    char err[256];
    sl_wbuf_reset(&s->ev);
    size_t readable = s->cap + SL_JSON_PADDING - (size_t)(p - s->buf);
    if (sl_json_to_msgpack(s->jp, p, n, readable, 1, &s->ev, err, sizeof err) != 0) {
        reject(s, ctx, "malformed", err, p, n, line);
        return SL_OK;
    }
    return sl_emit(ctx, 0, s->ev.data, s->ev.len) == 0 ? SL_OK : SL_ERROR;
}

static int produce_jsonl(file_src *s, sl_ctx *ctx)
{
    for (int k = 0; k < PER_CALL;) {
        char *p = s->buf + s->start;
        size_t avail = s->end - s->start;
        char *nl = avail ? memchr(p, '\n', avail) : NULL;
        if (nl) {
            s->start += (size_t)(nl - p) + 1;
            if (take_line(s, ctx, p, (size_t)(nl - p)) != SL_OK)
                return SL_ERROR;
            k++;
            continue;
        }
        if (s->eof) {
            if (avail) { /* a last line without newline */
                s->start = s->end;
                if (take_line(s, ctx, p, avail) != SL_OK)
                    return SL_ERROR;
            }
            return SL_EOS;
        }
        if (avail > s->max_line) {
            /* a line too long to hold: drop it up to its newline */
            reject(s, ctx, "malformed", "line longer than max_line", p, avail, s->line);
            s->line++;
            for (;;) {
                s->offset += s->end; /* the buffer's bytes are dropped: the file offset moves on */
                s->start = s->end = 0;
                if (refill(s, ctx) != 0)
                    return SL_ERROR;
                char *e = memchr(s->buf, '\n', s->end);
                if (e) {
                    s->start = (size_t)(e - s->buf) + 1;
                    break;
                }
                if (s->eof)
                    return SL_EOS;
            }
            continue;
        }
        if (refill(s, ctx) != 0)
            return SL_ERROR;
    }
    return SL_OK;
}

static int produce_msgpack(file_src *s, sl_ctx *ctx)
{
    for (int k = 0; k < PER_CALL;) {
        const uint8_t *p = (const uint8_t *)s->buf + s->start, *q = p;
        const uint8_t *end = (const uint8_t *)s->buf + s->end;
        if (p < end && sl_mp_skip(&q, end) == 0) {
            size_t n = (size_t)(q - p);
            uint64_t where = s->offset + s->start;
            s->start += n;
            k++;
            int is_map = (*p & 0xf0) == 0x80 || *p == 0xde || *p == 0xdf;
            if (!is_map)
                reject(s, ctx, "malformed", "not a map", (const char *)p, n, where);
            else if (sl_emit(ctx, 0, p, n) != 0)
                return SL_ERROR;
            continue;
        }
        size_t avail = s->end - s->start;
        if (s->eof || avail > s->max_line) {
            if (avail)
                reject(s, ctx, "malformed",
                       s->eof ? "truncated or invalid msgpack at end of file"
                              : "invalid msgpack or event longer than max_line",
                       (const char *)p, avail, s->offset + s->start);
            /* msgpack has no resynchronisation point: the rest of the file is lost */
            return SL_EOS;
        }
        if (refill(s, ctx) != 0)
            return SL_ERROR;
    }
    return SL_OK;
}

static int src_produce(void *state, sl_ctx *ctx, int64_t deadline_ns)
{
    file_src *s = state;
    return s->msgpack ? produce_msgpack(s, ctx) : produce_jsonl(s, ctx);
}

static void src_destroy(void *state)
{
    file_src *s = state;
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->buf);
    sl_json_parser_destroy(&s->jp);
    sl_wbuf_fini(&s->ev);
    sl_wbuf_fini(&s->extra);
    free(s->fingerprint);
    free(s);
}

const sl_operator sl_op_source_file = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "source.file",
    .summary = "Reads events from a file of JSON lines or msgpack",
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
