/* log.c - the engine's log lines (log.h). */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "instance.h"
#include "timefmt.h"

enum { FMT_TEXT, FMT_LOGFMT, FMT_JSON };

static int threshold = -1; /* -1: not set yet (SLUICE_DEBUG decides) */
static int format = FMT_TEXT;
static const char *pipeline;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

int sl_log_set_level(const char *level)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; level && i < 4; i++)
        if (strcmp(level, names[i]) == 0 || strcmp(level, level_names[i]) == 0) {
            threshold = i;
            return 0;
        }
    return level ? -1 : 0;
}

int sl_log_set_format(const char *f)
{
    static const char *const names[] = {"text", "logfmt", "json"};
    for (int i = 0; f && i < 3; i++)
        if (strcmp(f, names[i]) == 0) {
            format = i;
            return 0;
        }
    return f ? -1 : 0;
}

void sl_log_set_pipeline(const char *name) { pipeline = name; }

/* s as a quoted string: JSON escapes (valid in logfmt values too). */
static void quoted(sl_wbuf *w, const char *s)
{
    sl_wbuf_append(w, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            sl_wbuf_append(w, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            sl_wbuf_append(w, esc, 6);
        } else {
            sl_wbuf_append(w, p, 1);
        }
    }
    sl_wbuf_append(w, "\"", 1);
}

/* One key=value (logfmt) or "key":value (json) pair; the value quoted. */
static void pair(sl_wbuf *w, int first, const char *key, const char *val)
{
    if (format == FMT_JSON) {
        sl_wbuf_append(w, first ? "{\"" : ",\"", 2);
        sl_wbuf_append(w, key, strlen(key));
        sl_wbuf_append(w, "\":", 2);
    } else {
        if (!first)
            sl_wbuf_append(w, " ", 1);
        sl_wbuf_append(w, key, strlen(key));
        sl_wbuf_append(w, "=", 1);
    }
    quoted(w, val);
}

void sl__vlog(const char *op, sl_log_level level, const char *fmt, va_list ap)
{
    if (threshold < 0)
        threshold = getenv("SLUICE_DEBUG") ? SL_LOG_DEBUG : SL_LOG_INFO;
    if ((int)level > threshold)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    const char *lvl = (unsigned)level < 4 ? level_names[level] : "?";
    if (format == FMT_TEXT) {
        fprintf(stderr, "sluice: %s%s%s: %s\n", op ? op : "", op ? ": " : "", lvl, msg);
        return;
    }
    char now[64];
    sl_time_format(sl__wallclock(), now);
    sl_wbuf heap = {0}; /* a log line is no hot path: escapes may make it any length */
    pair(&heap, 1, "time", now);
    pair(&heap, 0, "level", lvl);
    if (pipeline)
        pair(&heap, 0, "pipeline", pipeline);
    if (op)
        pair(&heap, 0, "operator", op);
    pair(&heap, 0, "msg", msg);
    sl_wbuf_append(&heap, format == FMT_JSON ? "}\n" : "\n", format == FMT_JSON ? 2 : 1);
    if (heap.data)
        fwrite(heap.data, 1, heap.len, stderr);
    sl_wbuf_fini(&heap);
}

void sl__log(const char *op, sl_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__vlog(op, level, fmt, ap);
    va_end(ap);
}
