/*
 * bench_json.c - measure JSON <-> msgpack for events: simdjson (our sl_json_to_msgpack) vs
 * yajl vs jansson, and our sl_msgpack_to_json vs yajl_gen and jansson's json_dumpb.
 *
 *   python3 /work/shared/bench/gen_events.py --count 1000000 > /tmp/ev.jsonl
 *   bench_json /tmp/ev.jsonl [repeats]
 *
 * Fairness: every parser produces the same msgpack (same minimal encodings, member order, the
 * top-level "time" as a timestamp), which an untimed pass checks with a hash over all output;
 * the timed passes write each event into one reused buffer and hash nothing. Every writer's
 * JSON is parsed back (untimed) and must give the original msgpack. Each figure is the best of
 * `repeats` passes (default 3), one thread. The "floor" is a loop that only memchr-splits the
 * lines and copies their bytes: no parser can beat it. docs/json.md records the results.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "json.h"
#include "sluice/msgpack.h"
#include "timefmt.h"

/* ------------------------------------------------------------------ common */

typedef struct input {
    char *text; /* the file, followed by SL_JSON_PADDING zero bytes */
    size_t len;
    size_t lines;
} input;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull; /* FNV-1a */
    return h;
}

/*
 * Called once per converted event. In the timed passes it does nothing; in the check pass it
 * hashes the event's msgpack.
 */
typedef struct sink {
    int check;
    uint64_t hash;
    size_t events;
    size_t bytes;
} sink;

static void sink_event(sink *s, const sl_wbuf *mp)
{
    s->events++;
    s->bytes += mp->len;
    if (s->check) s->hash = hash_bytes(s->hash, mp->data, mp->len);
}

/* Containers whose size is known only at their end: a 1-byte header patched when they close. */
static void close_container(sl_wbuf *b, size_t pos, uint32_t n, int map)
{
    if (n <= 15) {
        b->data[pos] = (uint8_t)((map ? 0x80 : 0x90) | n);
        return;
    }
    size_t extra = n <= 0xffff ? 2 : 4;
    if (sl_wbuf_reserve(b, extra) != 0) abort();
    memmove(b->data + pos + 1 + extra, b->data + pos + 1, b->len - pos - 1);
    b->len += extra;
    uint8_t *h = b->data + pos;
    if (extra == 2) {
        h[0] = map ? 0xde : 0xdc;
        h[1] = (uint8_t)(n >> 8);
        h[2] = (uint8_t)n;
    } else {
        h[0] = map ? 0xdf : 0xdd;
        h[1] = (uint8_t)(n >> 24);
        h[2] = (uint8_t)(n >> 16);
        h[3] = (uint8_t)(n >> 8);
        h[4] = (uint8_t)n;
    }
}

/* ------------------------------------------------------------------ parsers */

static int run_floor(const input *in, sink *s)
{
    sl_wbuf out = {0};
    const char *p = in->text, *end = in->text + in->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        out.len = 0;
        if (sl_wbuf_append(&out, p, n) != 0) return -1;
        sink_event(s, &out);
        p += n + 1;
    }
    sl_wbuf_fini(&out);
    return 0;
}

static int run_simdjson(const input *in, sink *s)
{
    sl_json_parser *parser = sl_json_parser_new();
    sl_wbuf out = {0};
    char err[256];
    int rc = -1;
    const char *p = in->text, *end = in->text + in->len;
    if (!parser) return -1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        out.len = 0;
        /* the rest of the file plus the padding is readable after this line */
        if (sl_json_to_msgpack(parser, p, n, (size_t)(end - p) + SL_JSON_PADDING, 1, &out, err,
                               sizeof err) != 0) {
            fprintf(stderr, "simdjson: %s\n", err);
            goto done;
        }
        sink_event(s, &out);
        p += n + 1;
    }
    rc = 0;
done:
    sl_wbuf_fini(&out);
    sl_json_parser_destroy(&parser);
    return rc;
}

/* yajl: one streaming parse over the whole file (allow_multiple_values), callbacks -> msgpack. */
#define YAJL_MAX_DEPTH 128
typedef struct yctx {
    sl_wbuf out;
    sink *s;
    int depth;
    int time_next; /* the next value is the top-level "time" */
    size_t pos[YAJL_MAX_DEPTH];
    uint32_t count[YAJL_MAX_DEPTH];
    int is_map[YAJL_MAX_DEPTH];
} yctx;

static void y_value(yctx *y)
{
    if (y->depth > 0 && !y->is_map[y->depth - 1]) y->count[y->depth - 1]++;
    if (y->depth == 0) {
        sink_event(y->s, &y->out);
        y->out.len = 0;
    }
}

static int y_null(void *ctx)
{
    yctx *y = ctx;
    y->time_next = 0;
    sl_mp_write_nil(&y->out);
    y_value(y);
    return 1;
}

static int y_bool(void *ctx, int b)
{
    yctx *y = ctx;
    y->time_next = 0;
    sl_mp_write_bool(&y->out, b != 0);
    y_value(y);
    return 1;
}

static int y_int(void *ctx, long long v)
{
    yctx *y = ctx;
    y->time_next = 0;
    sl_mp_write_int(&y->out, v);
    y_value(y);
    return 1;
}

static int y_double(void *ctx, double d)
{
    yctx *y = ctx;
    y->time_next = 0;
    sl_mp_write_double(&y->out, d);
    y_value(y);
    return 1;
}

static int y_string(void *ctx, const unsigned char *str, size_t len)
{
    yctx *y = ctx;
    int64_t ns;
    if (y->time_next) {
        y->time_next = 0;
        if (sl_time_parse((const char *)str, len, &ns) != 0) return 0;
        sl_mp_write_timestamp(&y->out, ns);
    } else {
        sl_mp_write_str(&y->out, (const char *)str, len);
    }
    y_value(y);
    return 1;
}

static int y_start(yctx *y, int map)
{
    y->time_next = 0;
    if (y->depth == YAJL_MAX_DEPTH || sl_wbuf_reserve(&y->out, 1) != 0) return 0;
    y->pos[y->depth] = y->out.len;
    y->count[y->depth] = 0;
    y->is_map[y->depth] = map;
    y->out.data[y->out.len++] = 0;
    y->depth++;
    return 1;
}

static int y_end(yctx *y)
{
    y->depth--;
    close_container(&y->out, y->pos[y->depth], y->count[y->depth], y->is_map[y->depth]);
    y_value(y);
    return 1;
}

static int y_start_map(void *ctx)
{
    return y_start(ctx, 1);
}
static int y_start_array(void *ctx)
{
    return y_start(ctx, 0);
}
static int y_end_map(void *ctx)
{
    return y_end(ctx);
}
static int y_end_array(void *ctx)
{
    return y_end(ctx);
}

static int y_key(void *ctx, const unsigned char *key, size_t len)
{
    yctx *y = ctx;
    y->count[y->depth - 1]++;
    y->time_next = y->depth == 1 && len == 4 && memcmp(key, "time", 4) == 0;
    sl_mp_write_str(&y->out, (const char *)key, len);
    return 1;
}

static const yajl_callbacks ycallbacks = {
    y_null,      y_bool, y_int,     y_double,      NULL,        y_string,
    y_start_map, y_key,  y_end_map, y_start_array, y_end_array,
};

static int run_yajl(const input *in, sink *s)
{
    yctx y;
    memset(&y, 0, sizeof y);
    y.s = s;
    yajl_handle h = yajl_alloc(&ycallbacks, NULL, &y);
    int rc = -1;
    if (!h) return -1;
    yajl_config(h, yajl_allow_multiple_values, 1);
    if (yajl_parse(h, (const unsigned char *)in->text, in->len) != yajl_status_ok ||
        yajl_complete_parse(h) != yajl_status_ok) {
        unsigned char *e = yajl_get_error(h, 0, NULL, 0);
        fprintf(stderr, "yajl: %s\n", (char *)e);
        yajl_free_error(h, e);
        goto done;
    }
    rc = 0;
done:
    yajl_free(h);
    sl_wbuf_fini(&y.out);
    return rc;
}

/* jansson: json_loadb per line, then walk the tree into msgpack. */
static int jwalk(const json_t *v, sl_wbuf *out, int top)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        size_t n = json_object_size(v);
        if (sl_mp_write_map(out, (uint32_t)n) != 0) return -1;
        json_object_foreach((json_t *)v, key, val)
        {
            int64_t ns;
            sl_mp_write_str(out, key, strlen(key));
            if (top && strcmp(key, "time") == 0 && json_is_string(val)) {
                if (sl_time_parse(json_string_value(val), json_string_length(val), &ns) != 0)
                    return -1;
                sl_mp_write_timestamp(out, ns);
            } else if (jwalk(val, out, 0) != 0) {
                return -1;
            }
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i, n = json_array_size(v);
        if (sl_mp_write_array(out, (uint32_t)n) != 0) return -1;
        for (i = 0; i < n; i++)
            if (jwalk(json_array_get(v, i), out, 0) != 0) return -1;
        return 0;
    }
    case JSON_STRING:
        return sl_mp_write_str(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return sl_mp_write_int(out, json_integer_value(v));
    case JSON_REAL:
        return sl_mp_write_double(out, json_real_value(v));
    case JSON_TRUE:
        return sl_mp_write_bool(out, true);
    case JSON_FALSE:
        return sl_mp_write_bool(out, false);
    case JSON_NULL:
        return sl_mp_write_nil(out);
    }
    return -1;
}

static int run_jansson(const input *in, sink *s)
{
    sl_wbuf out = {0};
    json_error_t jerr;
    const char *p = in->text, *end = in->text + in->len;
    int rc = -1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        json_t *root = json_loadb(p, n, 0, &jerr);
        if (!root) {
            fprintf(stderr, "jansson: %s\n", jerr.text);
            goto done;
        }
        out.len = 0;
        int bad = jwalk(root, &out, 1);
        json_decref(root);
        if (bad) goto done;
        sink_event(s, &out);
        p += n + 1;
    }
    rc = 0;
done:
    sl_wbuf_fini(&out);
    return rc;
}

/* ------------------------------------------------------------------ writers */

typedef struct events {
    sl_wbuf mp;  /* every event's msgpack, back to back */
    size_t *off; /* event i is mp.data[off[i] .. off[i + 1]) */
    size_t n;
} events;

/* A writer turns one msgpack event into JSON in out (out is reset by the caller). */
typedef int (*writer_fn)(const uint8_t *mp, size_t len, sl_wbuf *out, void *ctx);

static int w_ours(const uint8_t *mp, size_t len, sl_wbuf *out, void *ctx)
{
    (void)ctx;
    return sl_msgpack_to_json(mp, len, out);
}

/* yajl_gen: walk msgpack, call the generator; timestamps as RFC 3339 strings like ours. */
static int ygen_value(yajl_gen g, const uint8_t **p, const uint8_t *end)
{
    sl_mp_val v;
    char tbuf[40];
    int64_t ns;
    if (sl_mp_read(p, end, &v) != 0) return -1;
    switch (v.type) {
    case SL_MP_NIL:
        return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
    case SL_MP_BOOL:
        return yajl_gen_bool(g, v.v.b) == yajl_gen_status_ok ? 0 : -1;
    case SL_MP_INT:
        return yajl_gen_integer(g, v.v.i) == yajl_gen_status_ok ? 0 : -1;
    case SL_MP_UINT:
        return yajl_gen_integer(g, (long long)v.v.u) == yajl_gen_status_ok ? 0 : -1;
    case SL_MP_FLOAT:
        return yajl_gen_double(g, v.v.f) == yajl_gen_status_ok ? 0 : -1;
    case SL_MP_STR:
    case SL_MP_BIN:
        return yajl_gen_string(g, (const unsigned char *)v.v.str.ptr, v.v.str.len) ==
                       yajl_gen_status_ok
                   ? 0
                   : -1;
    case SL_MP_EXT: {
        if (sl_mp_timestamp_ns(&v, &ns) != 0) return -1;
        size_t n = sl_time_format(ns, tbuf);
        return yajl_gen_string(g, (const unsigned char *)tbuf, n) == yajl_gen_status_ok ? 0 : -1;
    }
    case SL_MP_ARRAY:
        yajl_gen_array_open(g);
        for (uint32_t i = 0; i < v.v.n; i++)
            if (ygen_value(g, p, end) != 0) return -1;
        return yajl_gen_array_close(g) == yajl_gen_status_ok ? 0 : -1;
    case SL_MP_MAP:
        yajl_gen_map_open(g);
        for (uint32_t i = 0; i < 2 * v.v.n; i++)
            if (ygen_value(g, p, end) != 0) return -1;
        return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
    }
    return -1;
}

static int w_yajl(const uint8_t *mp, size_t len, sl_wbuf *out, void *ctx)
{
    yajl_gen g = ctx;
    const unsigned char *buf;
    size_t blen;
    const uint8_t *p = mp;
    yajl_gen_clear(g);
    yajl_gen_reset(g, NULL);
    if (ygen_value(g, &p, mp + len) != 0 || yajl_gen_get_buf(g, &buf, &blen) != yajl_gen_status_ok)
        return -1;
    return sl_wbuf_append(out, buf, blen);
}

/* jansson: msgpack -> json_t tree -> json_dumpb; the tree is what using jansson costs. */
static json_t *jbuild(const uint8_t **p, const uint8_t *end)
{
    sl_mp_val v;
    char tbuf[40];
    int64_t ns;
    json_t *c;
    if (sl_mp_read(p, end, &v) != 0) return NULL;
    switch (v.type) {
    case SL_MP_NIL:
        return json_null();
    case SL_MP_BOOL:
        return json_boolean(v.v.b);
    case SL_MP_INT:
        return json_integer(v.v.i);
    case SL_MP_UINT:
        return json_integer((json_int_t)v.v.u);
    case SL_MP_FLOAT:
        return json_real(v.v.f);
    case SL_MP_STR:
    case SL_MP_BIN:
        return json_stringn(v.v.str.ptr, v.v.str.len);
    case SL_MP_EXT:
        if (sl_mp_timestamp_ns(&v, &ns) != 0) return NULL;
        return json_stringn(tbuf, sl_time_format(ns, tbuf));
    case SL_MP_ARRAY:
        c = json_array();
        for (uint32_t i = 0; i < v.v.n; i++)
            if (json_array_append_new(c, jbuild(p, end)) != 0) goto fail;
        return c;
    case SL_MP_MAP:
        c = json_object();
        for (uint32_t i = 0; i < v.v.n; i++) {
            sl_mp_val k;
            if (sl_mp_read(p, end, &k) != 0 || k.type != SL_MP_STR) goto fail;
            if (json_object_setn_new(c, k.v.str.ptr, k.v.str.len, jbuild(p, end)) != 0) goto fail;
        }
        return c;
    }
    return NULL;
fail:
    json_decref(c);
    return NULL;
}

static int w_jansson(const uint8_t *mp, size_t len, sl_wbuf *out, void *ctx)
{
    (void)ctx;
    const uint8_t *p = mp;
    json_t *root = jbuild(&p, mp + len);
    if (!root) return -1;
    if (sl_wbuf_reserve(out, 4096) != 0) {
        json_decref(root);
        return -1;
    }
    size_t n = json_dumpb(root, (char *)out->data + out->len, out->cap - out->len, JSON_COMPACT);
    json_decref(root);
    if (n == 0 || n > out->cap - out->len) return -1;
    out->len += n;
    return 0;
}

/* Time one pass of a writer over all events; returns seconds or -1. */
static double time_writer(const events *ev, writer_fn fn, void *ctx, size_t *out_bytes)
{
    sl_wbuf out = {0};
    size_t bytes = 0;
    double t0 = now();
    for (size_t i = 0; i < ev->n; i++) {
        out.len = 0;
        if (fn(ev->mp.data + ev->off[i], ev->off[i + 1] - ev->off[i], &out, ctx) != 0) {
            sl_wbuf_fini(&out);
            return -1;
        }
        bytes += out.len;
    }
    double t = now() - t0;
    sl_wbuf_fini(&out);
    *out_bytes = bytes;
    return t;
}

/* Untimed: every event's JSON parses back (as an event) to exactly the original msgpack. */
static int check_writer(const events *ev, writer_fn fn, void *ctx, const char *name)
{
    sl_json_parser *parser = sl_json_parser_new();
    sl_wbuf js = {0}, mp = {0};
    char err[256];
    int rc = -1;
    if (!parser) return -1;
    for (size_t i = 0; i < ev->n; i++) {
        const uint8_t *m = ev->mp.data + ev->off[i];
        size_t mlen = ev->off[i + 1] - ev->off[i];
        js.len = mp.len = 0;
        if (fn(m, mlen, &js, ctx) != 0 || sl_wbuf_reserve(&js, SL_JSON_PADDING) != 0) {
            fprintf(stderr, "%s: cannot write event %zu\n", name, i);
            goto done;
        }
        memset(js.data + js.len, 0, SL_JSON_PADDING);
        if (sl_json_to_msgpack(parser, (const char *)js.data, js.len, js.len + SL_JSON_PADDING, 1,
                               &mp, err, sizeof err) != 0 ||
            mp.len != mlen || memcmp(mp.data, m, mlen) != 0) {
            fprintf(stderr, "%s: event %zu does not round-trip: %.*s\n", name, i, (int)js.len,
                    (const char *)js.data);
            goto done;
        }
    }
    rc = 0;
done:
    sl_wbuf_fini(&js);
    sl_wbuf_fini(&mp);
    sl_json_parser_destroy(&parser);
    return rc;
}

/* ------------------------------------------------------------------ main */

static int load(const char *path, input *in)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    if (fseek(f, 0, SEEK_END) != 0) goto fail;
    long sz = ftell(f);
    if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) goto fail;
    in->len = (size_t)sz;
    in->text = calloc(1, in->len + SL_JSON_PADDING);
    if (!in->text || fread(in->text, 1, in->len, f) != in->len) goto fail;
    fclose(f);
    /* drop a final newline so the last line is not an empty event */
    while (in->len > 0 && in->text[in->len - 1] == '\n')
        in->text[--in->len] = '\0';
    in->lines = 0;
    for (const char *p = in->text; (p = memchr(p, '\n', (size_t)(in->text + in->len - p))); p++)
        in->lines++;
    in->lines++;
    return 0;
fail:
    fclose(f);
    return -1;
}

typedef int (*parser_fn)(const input *in, sink *s);

int main(int argc, char **argv)
{
    input in;
    int repeats = argc > 2 ? atoi(argv[2]) : 3;
    if (argc < 2 || repeats < 1) {
        fprintf(stderr, "usage: %s events.jsonl [repeats]\n", argv[0]);
        return 2;
    }
    if (load(argv[1], &in) != 0) {
        perror(argv[1]);
        return 1;
    }
    printf("input: %s, %zu events, %.1f MB, %.0f bytes/event; best of %d passes, 1 thread\n\n",
           argv[1], in.lines, (double)in.len / 1e6, (double)in.len / (double)in.lines, repeats);

    static const struct {
        const char *name;
        parser_fn fn;
    } parsers[] = {
        {"floor (memchr + memcpy)", run_floor},
        {"simdjson On-Demand", run_simdjson},
        {"yajl (stream, callbacks)", run_yajl},
        {"jansson (json_loadb + walk)", run_jansson},
    };
    uint64_t ref_hash = 0;
    printf("JSON -> msgpack          %28s %12s %10s %18s\n", "", "events/s", "MB/s in",
           "output check");
    for (size_t k = 0; k < sizeof parsers / sizeof parsers[0]; k++) {
        sink check = {1, 0xcbf29ce484222325ull, 0, 0};
        if (parsers[k].fn(&in, &check) != 0 || check.events != in.lines) {
            fprintf(stderr, "%s failed\n", parsers[k].name);
            return 1;
        }
        if (k == 1) ref_hash = check.hash;
        double best = 1e30;
        for (int r = 0; r < repeats; r++) {
            sink s = {0, 0, 0, 0};
            double t0 = now();
            parsers[k].fn(&in, &s);
            double t = now() - t0;
            if (t < best) best = t;
        }
        char verdict[64];
        if (k == 0)
            snprintf(verdict, sizeof verdict, "(copies bytes)");
        else
            snprintf(verdict, sizeof verdict, "%016llx %s", (unsigned long long)check.hash,
                     check.hash == ref_hash ? "=" : "DIFFERS");
        printf("  %-50s %12.0f %10.0f %s\n", parsers[k].name, (double)in.lines / best,
               (double)in.len / best / 1e6, verdict);
        if (k > 0 && check.hash != ref_hash) return 1;
    }

    /* writer side: the msgpack events simdjson produced */
    events ev = {{0}, NULL, 0};
    ev.off = malloc((in.lines + 1) * sizeof *ev.off);
    sl_json_parser *parser = sl_json_parser_new();
    char err[256];
    if (!ev.off || !parser) return 1;
    {
        const char *p = in.text, *end = in.text + in.len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = (size_t)((nl ? nl : end) - p);
            ev.off[ev.n++] = ev.mp.len;
            if (sl_json_to_msgpack(parser, p, n, (size_t)(end - p) + SL_JSON_PADDING, 1, &ev.mp,
                                   err, sizeof err) != 0)
                return 1;
            p += n + 1;
        }
        ev.off[ev.n] = ev.mp.len;
    }
    sl_json_parser_destroy(&parser);

    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g) return 1;
    static const struct {
        const char *name;
        writer_fn fn;
    } writers[] = {
        {"sl_msgpack_to_json (ours)", w_ours},
        {"yajl_gen (walk msgpack -> yajl_gen_*)", w_yajl},
        {"jansson (msgpack -> json_t -> json_dumpb)", w_jansson},
    };
    printf("\nmsgpack -> JSON          %28s %12s %10s %18s\n", "", "events/s", "MB/s out",
           "round trip");
    for (size_t k = 0; k < sizeof writers / sizeof writers[0]; k++) {
        void *ctx = writers[k].fn == w_yajl ? (void *)g : NULL;
        int ok = check_writer(&ev, writers[k].fn, ctx, writers[k].name) == 0;
        double best = 1e30;
        size_t bytes = 0;
        for (int r = 0; r < repeats; r++) {
            double t = time_writer(&ev, writers[k].fn, ctx, &bytes);
            if (t < 0) return 1;
            if (t < best) best = t;
        }
        printf("  %-50s %12.0f %10.0f %s (%.0f bytes/event)\n", writers[k].name,
               (double)ev.n / best, (double)bytes / best / 1e6, ok ? "exact" : "FAILED",
               (double)bytes / (double)ev.n);
        if (!ok) return 1;
    }
    yajl_gen_free(g);
    sl_wbuf_fini(&ev.mp);
    free(ev.off);
    free(in.text);
    return 0;
}
