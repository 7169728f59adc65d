/*
 * events_api_query.c - the read side of events_api: GET /v1/events (a query)
 * and GET /v1/events/{id}.
 *
 * A query is one sl_eventlog_query_run: `type` and the time range (`start`,
 * `end`) go to the log's (type, time) index, so they cost nothing per
 * excluded event; `source`, `subject` and `data.*` are checked on each event
 * the index yields (field_get on the stored msgpack), at most `max_scan`
 * events per request, so one query cannot hold the operator (and every
 * request queued behind it) for long. Results are ordered by (time, offset),
 * ascending or descending.
 *
 * The cursor is the (time, offset) of the last event of the page, with the
 * order, in base64url: the next page starts strictly after it in that order,
 * so pages cover every matching event exactly once, including events that
 * share a time (a batch published without `time` shares the request's), and
 * a cursor stays valid after retention removed its event. An event appended
 * later with a time before the cursor is not seen by that walk (the order is
 * by event time, not by arrival).
 *
 * One event more than the page is looked at: next_cursor is null when the
 * walk is over. A page cut short by max_scan has fewer items than `limit`
 * (maybe none) and a next_cursor at the last event examined.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events_api.h"
#include "timefmt.h"

#define CURSOR_BYTES 17 /* order ('a' or 'd'), time (be64), offset (be64) */
#define CURSOR_CHARS 23 /* base64url without padding */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void cursor_encode(int desc, int64_t t, uint64_t off, char out[CURSOR_CHARS + 1])
{
    uint8_t b[CURSOR_BYTES + 1] = {0};
    b[0] = desc ? 'd' : 'a';
    for (int i = 0; i < 8; i++) {
        b[1 + i] = (uint8_t)((uint64_t)t >> (56 - 8 * i));
        b[9 + i] = (uint8_t)(off >> (56 - 8 * i));
    }
    size_t o = 0;
    for (size_t i = 0; i < CURSOR_BYTES; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 |
                     (i + 2 < CURSOR_BYTES + 1 ? b[i + 2] : 0);
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        if (i + 1 < CURSOR_BYTES) out[o++] = b64url[(v >> 6) & 63];
        if (i + 2 < CURSOR_BYTES) out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
}

/* 0 and the cursor's parts, or -1 if s is not a cursor this API wrote. */
static int cursor_decode(const char *s, size_t n, int *desc, int64_t *t, uint64_t *off)
{
    if (n != CURSOR_CHARS) return -1;
    uint8_t b[CURSOR_BYTES + 2] = {0};
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = memchr(b64url, s[i], 64);
        if (!c || !s[i]) return -1;
        acc = acc << 6 | (uint32_t)(c - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            b[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (o != CURSOR_BYTES || (acc & ((1u << bits) - 1)) != 0 || (b[0] != 'a' && b[0] != 'd'))
        return -1;
    *desc = b[0] == 'd';
    *t = (int64_t)sl__be64(b + 1);
    *off = sl__be64(b + 9);
    return 0;
}

/* The JSON of stored event ev: a CloudEvent (specversion added to events written without one). */
static int render_event(sl_wbuf *out, const uint8_t *ev, size_t len, sl_wbuf *scratch)
{
    const uint8_t *p = ev;
    if (sl_mp_map_find(&p, ev + len, "specversion", 11) == 1)
        return sl_msgpack_to_json(ev, len, out);
    sl_wbuf_reset(scratch); /* e.g. appended by sink.log: the log's event, made a CloudEvent */
    if (sl_msgpack_to_json(ev, len, scratch) != 0) return -1;
    if (scratch->len < 2 || scratch->data[0] != '{')
        return sl_wbuf_append(out, scratch->data, scratch->len);
    return sl_wbuf_append(out, "{\"specversion\":\"1.0\"", 20) |
           (scratch->len > 2 ? sl_wbuf_append(out, ",", 1) : 0) |
           sl_wbuf_append(out, scratch->data + 1, scratch->len - 1);
}

/* ------------------------------------------------------------ filters */

/* A value to compare a field with: the text, and what it reads as. */
typedef struct qvalue {
    const char *s;
    size_t n;
    int has_i, has_u, has_d;
    int64_t i;
    uint64_t u;
    double d;
} qvalue;

typedef struct qfilter {
    size_t path_off; /* in a->tmp until resolved */
    const char *path;
    qvalue v;
} qfilter;

static void qvalue_set(qvalue *v, const char *s, size_t n)
{
    char buf[64], *e;
    memset(v, 0, sizeof *v);
    v->s = s;
    v->n = n;
    if (n == 0 || n >= sizeof buf) return;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (buf[0] == ' ' || buf[0] == '\t' || buf[0] == '+') return;
    errno = 0;
    long long i = strtoll(buf, &e, 10);
    if (!errno && *e == '\0') {
        v->has_i = 1;
        v->i = i;
    }
    errno = 0;
    unsigned long long u = strtoull(buf, &e, 10);
    if (!errno && *e == '\0' && buf[0] != '-') {
        v->has_u = 1;
        v->u = u;
    }
    double d = strtod(buf, &e);
    if (*e == '\0' && isfinite(d) &&
        (buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9') || buf[0] == '.')) {
        v->has_d = 1;
        v->d = d;
    }
}

/*
 * Whether the msgpack value at val equals the query's text: a string by its
 * bytes, a number by its value (data.total=100 matches 100 and 100.0), a
 * boolean as true/false, null as null; maps and arrays never.
 */
static int value_eq(const uint8_t *val, size_t vlen, const qvalue *q)
{
    sl_mp_val v;
    const uint8_t *p = val;
    if (sl_mp_read(&p, val + vlen, &v) != 0) return 0;
    switch (v.type) {
    case SL_MP_STR:
        return v.v.str.len == q->n && memcmp(v.v.str.ptr, q->s, q->n) == 0;
    case SL_MP_UINT:
        if (q->has_u) return v.v.u == q->u;
        return q->has_d && !q->has_i && (double)v.v.u == q->d;
    case SL_MP_INT:
        if (q->has_i) return v.v.i == q->i;
        return q->has_d && (double)v.v.i == q->d;
    case SL_MP_FLOAT:
        return q->has_d && v.v.f == q->d;
    case SL_MP_BOOL:
        return v.v.b ? (q->n == 4 && memcmp(q->s, "true", 4) == 0)
                     : (q->n == 5 && memcmp(q->s, "false", 5) == 0);
    case SL_MP_NIL:
        return q->n == 4 && memcmp(q->s, "null", 4) == 0;
    default:
        return 0;
    }
}

typedef struct qrun {
    evapi *a;
    sl_ctx *ctx;
    const char *source, *subject;
    size_t source_len, subject_len;
    qfilter f[EVAPI_MAX_FILTERS];
    size_t nf;
    uint64_t limit, items, scanned, max_scan;
    int desc, more, partial, err;
    int64_t last_t, seen_t;
    uint64_t last_off, seen_off;
} qrun;

/* Whether string field `name` of ev equals s (n bytes). */
static int str_eq(qrun *q, const sl_eventlog_event *ev, const char *name, const char *s, size_t n)
{
    const uint8_t *v;
    size_t vlen;
    sl_mp_val x;
    if (q->ctx->host->field_get(q->ctx, ev->data, ev->len, name, &v, &vlen) != 1 ||
        sl_mp_read(&v, v + vlen, &x) != 0 || x.type != SL_MP_STR)
        return 0;
    return x.v.str.len == n && memcmp(x.v.str.ptr, s, n) == 0;
}

static int matches(qrun *q, const sl_eventlog_event *ev)
{
    if (q->source && !str_eq(q, ev, "source", q->source, q->source_len)) return 0;
    if (q->subject && !str_eq(q, ev, "subject", q->subject, q->subject_len)) return 0;
    for (size_t i = 0; i < q->nf; i++) {
        const uint8_t *v;
        size_t vlen;
        if (q->ctx->host->field_get(q->ctx, ev->data, ev->len, q->f[i].path, &v, &vlen) != 1 ||
            !value_eq(v, vlen, &q->f[i].v))
            return 0;
    }
    return 1;
}

static int visit(void *arg, const sl_eventlog_event *ev)
{
    qrun *q = arg;
    evapi *a = q->a;
    q->scanned++;
    q->seen_t = ev->time_ns;
    q->seen_off = ev->offset;
    if (matches(q, ev)) {
        if (q->items == q->limit) { /* one more than the page: there is a next page */
            q->more = 1;
            return 1;
        }
        if ((q->items && sl_wbuf_append(&a->body, ",", 1) != 0) ||
            render_event(&a->body, ev->data, ev->len, &a->copy) != 0) {
            q->err = 1;
            return 1;
        }
        q->items++;
        q->last_t = ev->time_ns;
        q->last_off = ev->offset;
    }
    if (q->scanned >= q->max_scan) {
        q->partial = 1;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ the query */

static int bad_request(evapi *a, sl_ctx *ctx, const uint8_t *ev, size_t len, const char *fmt,
                       const char *arg, size_t n)
{
    a->c.rejected++;
    return evapi_answer_error(a, ctx, ev, len, 400, "bad request", NULL, NULL, fmt,
                              (int)(n > 100 ? 100 : n), arg);
}

int evapi_query(evapi *a, sl_ctx *ctx, const uint8_t *ev, size_t len, const evapi_request *r)
{
    qrun q = {.a = a, .ctx = ctx, .limit = a->default_limit, .max_scan = a->max_scan};
    sl_eventlog_query lq = {.from_ns = INT64_MIN, .to_ns = INT64_MAX};
    size_t type_off[EVAPI_MAX_TYPES];
    const char *types[EVAPI_MAX_TYPES];
    size_t nt = 0;
    int order = -1; /* -1: not given */
    int has_cursor = 0, cdesc = 0;
    sl_wbuf *t = &a->tmp;
    sl_wbuf_reset(t);

    const uint8_t *p = r->query, *end = r->end;
    sl_mp_val m;
    if (p && (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP)) return -1;
    for (uint32_t i = 0; p && i < m.v.n; i++) {
        sl_mp_val k, v;
        if (sl_mp_read(&p, end, &k) != 0 || sl_mp_read(&p, end, &v) != 0) return -1;
        if (k.type != SL_MP_STR)
            return bad_request(a, ctx, ev, len, "a query parameter's name is not text%.*s", "", 0);
        const char *key = k.v.str.ptr;
        size_t kn = k.v.str.len;
        if (v.type != SL_MP_STR)
            return bad_request(a, ctx, ev, len, "query parameter '%.*s' is not text", key, kn);
        const char *s = v.v.str.ptr;
        size_t n = v.v.str.len;
        if (kn == 4 && memcmp(key, "type", 4) == 0) {
            for (size_t b = 0, e; b <= n; b = e + 1) {
                for (e = b; e < n && s[e] != ','; e++)
                    ;
                if (e == b)
                    return bad_request(a, ctx, ev, len,
                                       "type=%.*s: an empty type (give types separated by commas)",
                                       s, n);
                if (nt == EVAPI_MAX_TYPES)
                    return bad_request(a, ctx, ev, len, "type=%.*s: at most 32 types", s, n);
                type_off[nt++] = t->len;
                if (sl_wbuf_append(t, s + b, e - b) != 0 || sl_wbuf_append(t, "", 1) != 0)
                    return -1;
            }
        } else if (kn == 6 && memcmp(key, "source", 6) == 0) {
            q.source = s;
            q.source_len = n;
        } else if (kn == 7 && memcmp(key, "subject", 7) == 0) {
            q.subject = s;
            q.subject_len = n;
        } else if ((kn == 5 && memcmp(key, "start", 5) == 0) ||
                   (kn == 3 && memcmp(key, "end", 3) == 0)) {
            int64_t ns;
            if (sl_time_parse(s, n, &ns) != 0)
                return bad_request(a, ctx, ev, len,
                                   kn == 5 ? "start=%.*s: not an RFC 3339 time (e.g. "
                                             "2026-01-01T00:00:00Z)"
                                           : "end=%.*s: not an RFC 3339 time (e.g. "
                                             "2026-01-01T00:00:00Z)",
                                   s, n);
            *(kn == 5 ? &lq.from_ns : &lq.to_ns) = ns;
        } else if (kn == 5 && memcmp(key, "limit", 5) == 0) {
            uint64_t l = 0;
            size_t j = 0;
            while (j < n && j < 12 && s[j] >= '0' && s[j] <= '9')
                l = l * 10 + (uint64_t)(s[j++] - '0');
            if (j != n || n == 0 || l < 1 || l > a->max_limit) {
                a->c.rejected++;
                return evapi_answer_error(a, ctx, ev, len, 400, "bad request", NULL, NULL,
                                          "limit=%.*s: give an integer from 1 to %" PRIu32,
                                          (int)(n > 100 ? 100 : n), s, a->max_limit);
            }
            q.limit = l;
        } else if (kn == 5 && memcmp(key, "order", 5) == 0) {
            if (n == 3 && memcmp(s, "asc", 3) == 0)
                order = 0;
            else if (n == 4 && memcmp(s, "desc", 4) == 0)
                order = 1;
            else
                return bad_request(a, ctx, ev, len, "order=%.*s: give asc or desc", s, n);
        } else if (kn == 6 && memcmp(key, "cursor", 6) == 0) {
            if (cursor_decode(s, n, &cdesc, &lq.after_time_ns, &lq.after) != 0)
                return bad_request(a, ctx, ev, len,
                                   "cursor=%.*s: not a cursor of this API (pass next_cursor "
                                   "as it came)",
                                   s, n);
            has_cursor = 1;
        } else if (kn > 5 && memcmp(key, "data.", 5) == 0) {
            if (q.nf == EVAPI_MAX_FILTERS)
                return bad_request(a, ctx, ev, len, "%.*s: at most 16 data.* filters", key, kn);
            if (memchr(key, '\0', kn) || key[kn - 1] == '.' || memmem(key, kn, "..", 2))
                return bad_request(a, ctx, ev, len, "%.*s: not a field path", key, kn);
            qfilter *f = &q.f[q.nf++];
            f->path_off = t->len;
            if (sl_wbuf_append(t, key, kn) != 0 || sl_wbuf_append(t, "", 1) != 0) return -1;
            qvalue_set(&f->v, s, n);
        } else {
            return bad_request(a, ctx, ev, len,
                               "unknown query parameter '%.*s' (expected type, source, subject, "
                               "start, end, data.<field>, limit, order or cursor)",
                               key, kn);
        }
    }
    if (lq.from_ns > lq.to_ns) {
        a->c.rejected++;
        return evapi_answer_error(a, ctx, ev, len, 400, "bad request", NULL, NULL,
                                  "start is after end");
    }
    if (has_cursor && order >= 0 && order != cdesc) {
        a->c.rejected++;
        return evapi_answer_error(a, ctx, ev, len, 400, "bad request", NULL, NULL,
                                  "the cursor continues a query in %s order; drop 'order' or "
                                  "the cursor",
                                  cdesc ? "desc" : "asc");
    }
    for (size_t i = 0; i < nt; i++) /* a->tmp has stopped growing: point into it */
        types[i] = (const char *)t->data + type_off[i];
    for (size_t i = 0; i < q.nf; i++)
        q.f[i].path = (const char *)t->data + q.f[i].path_off;
    lq.types = nt ? types : NULL;
    lq.n_types = nt;
    lq.desc = q.desc = has_cursor ? cdesc : order == 1;
    lq.has_after = lq.after_has_time = has_cursor;

    sl_wbuf *b = &a->body;
    sl_wbuf_reset(b);
    if (sl_wbuf_append(b, "{\"items\":[", 10) != 0) return -1;
    a->c.queries++;
    int64_t rc = sl_eventlog_query_run(a->log, &lq, visit, &q);
    if (q.err) return -1;
    if (rc < 0) {
        a->c.failures++;
        ctx->host->log(ctx, SL_LOG_ERROR, "querying the event log '%s': %s", a->log_path,
                       sl_eventlog_strerror((int)rc));
        return evapi_answer_error(a, ctx, ev, len, 503, "unavailable", "retry-after", "1",
                                  "the event log could not be read (%s)",
                                  sl_eventlog_strerror((int)rc));
    }
    char tail[96], cur[CURSOR_CHARS + 1];
    if (q.more || q.partial)
        cursor_encode(q.desc, q.more ? q.last_t : q.seen_t, q.more ? q.last_off : q.seen_off, cur);
    int tn = snprintf(tail, sizeof tail, "],\"count\":%" PRIu64 ",\"next_cursor\":%s%s%s}", q.items,
                      q.more || q.partial ? "\"" : "", q.more || q.partial ? cur : "null",
                      q.more || q.partial ? "\"" : "");
    if (sl_wbuf_append(b, tail, (size_t)tn) != 0) return -1;
    return evapi_answer(a, ctx, ev, len, 200, "application/json", b->data, b->len, NULL, NULL);
}

int evapi_get(evapi *a, sl_ctx *ctx, const uint8_t *ev, size_t len, const char *id, size_t idlen)
{
    sl_eventlog_event e;
    int rc = idlen ? sl_eventlog_get(a->log, id, idlen, &e, &a->copy) : 1;
    a->c.queries++;
    if (rc == 1)
        return evapi_answer_error(a, ctx, ev, len, 404, "not found", NULL, NULL,
                                  "no event with id '%.*s%s'", (int)(idlen > 100 ? 100 : idlen), id,
                                  idlen > 100 ? "..." : "");
    if (rc < 0) {
        a->c.failures++;
        ctx->host->log(ctx, SL_LOG_ERROR, "reading the event log '%s': %s", a->log_path,
                       sl_eventlog_strerror(rc));
        return evapi_answer_error(a, ctx, ev, len, 503, "unavailable", "retry-after", "1",
                                  "the event log could not be read (%s)", sl_eventlog_strerror(rc));
    }
    sl_wbuf_reset(&a->body);
    if (render_event(&a->body, e.data, e.len, &a->tmp) != 0) return -1;
    return evapi_answer(a, ctx, ev, len, 200, "application/cloudevents+json", a->body.data,
                        a->body.len, NULL, NULL);
}
