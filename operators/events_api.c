/*
 * events_api.c - `events_api`: the gateway's event endpoints over the durable
 * event log (engine/eventlog.h): publish (POST /v1/events), query
 * (GET /v1/events) and fetch by id (GET /v1/events/{id}). Requests are the
 * request events of docs/gateway.md; answers leave by `answered` with a
 * `response`; requests for other paths leave by `out` unchanged.
 *
 *   log: data/gateway-events    the log's directory (created if missing)
 *   sync: ordered               the log's sync mode (docs/eventlog.md)
 *   prefix: /v1/events          max_batch, max_limit, default_limit, max_scan, scopes
 *
 * Publishing commits per batch of requests, not per request: process
 * validates each publish request (all or nothing: one invalid event and none
 * of the request's events is stored; the 400 lists each invalid one), keeps
 * the valid ones waiting with their events as stored, and asks for a timer
 * due at once. The stage takes up to 64 queued batches before it fires
 * timers, so on_timer (flush) finds every request that arrived meanwhile and
 * makes all their events one sl_eventlog_append: one transaction and one
 * group's sync (two fsyncs in `ordered` mode, one in `fast`; shared with the
 * other appenders of the log). Only
 * when that returned durable does it answer them, 202 with the counts. Ids
 * already in the log are skipped by the append and counted as duplicates, so
 * a retried POST stores nothing twice. Reads (events_api_query.c) are
 * answered as they come and see what earlier appends stored.
 *
 * Invariant: a 202 leaves only after the append that stored its events
 * returned durable, and every event of a request that was found valid is
 * then stored or a duplicate (the validator applies the log's own limits).
 */
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "events_api.h"
#include "timefmt.h"

static const sl_param params[] = {
    {"log", SL_PARAM_STRING, NULL, 1, "the event log's directory (created if missing)", NULL},
    {"sync", SL_PARAM_ENUM, "ordered", 0,
     "the log's sync mode: ordered (power-loss safe: data synced before each commit's root) "
     "or fast (one fsync per group; docs/eventlog.md); the first opener in a process sets it",
     "ordered|fast"},
    {"map_size", SL_PARAM_SIZE, "64GiB", 0,
     "address space reserved for the log file (its size limit)", NULL},
    {"retention", SL_PARAM_MAP, NULL, 0,
     "{max_age, max_size}: remove the oldest events past either", NULL},
    {"prefix", SL_PARAM_STRING, "/v1/events", 0,
     "path of the endpoints; requests for other paths leave by `out` unchanged", NULL},
    {"max_batch", SL_PARAM_INT, "1000", 0, "most events in one POST (413 above)", NULL},
    {"max_limit", SL_PARAM_INT, "1000", 0, "largest `limit` a query may ask for", NULL},
    {"default_limit", SL_PARAM_INT, NULL, 0,
     "`limit` of a query that gives none (default: 100, or max_limit if lower)", NULL},
    {"max_scan", SL_PARAM_INT, "100000", 0,
     "most events one query examines for its source, subject and data.* filters; past it the "
     "page ends early with a next_cursor",
     NULL},
    {"read_scope", SL_PARAM_STRING, "events:read", 0,
     "scope a GET needs in the request's `scopes` (set by auth); '' : not checked", NULL},
    {"write_scope", SL_PARAM_STRING, "events:write", 0,
     "scope a POST needs in the request's `scopes`; '' : not checked", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "answered", "errors", NULL};

#define ACCEPT_POST                                                                                \
    "application/cloudevents+json, application/cloudevents-batch+json, application/json"

/* ------------------------------------------------------------ answers */

int evapi_response(evapi *a, int status, const char *ctype, const void *body, size_t body_len,
                   const char *hname, const char *hval)
{
    sl_wbuf *r = &a->resp;
    sl_wbuf_reset(r);
    uint32_t n_hdr = (ctype ? 1u : 0u) + (hname ? 1u : 0u);
    int bad = sl_mp_write_map(r, 3) | sl_mp_write_str(r, "status", 6) |
              sl_mp_write_uint(r, (uint64_t)status) | sl_mp_write_str(r, "headers", 7) |
              sl_mp_write_map(r, n_hdr);
    if (ctype) bad |= sl_mp_write_cstr(r, "content-type") | sl_mp_write_cstr(r, ctype);
    if (hname) bad |= sl_mp_write_cstr(r, hname) | sl_mp_write_cstr(r, hval);
    bad |=
        sl_mp_write_str(r, "body", 4) | sl_mp_write_str(r, body ? body : "", body ? body_len : 0);
    return bad ? -1 : 0;
}

int evapi_answer(evapi *a, sl_ctx *ctx, const uint8_t *ev, size_t len, int status,
                 const char *ctype, const void *body, size_t body_len, const char *hname,
                 const char *hval)
{
    if (evapi_response(a, status, ctype, body, body_len, hname, hval) != 0) return -1;
    sl_wbuf_reset(&a->out);
    if (ctx->host->field_set(ctx, ev, len, "response", a->resp.data, a->resp.len, &a->out) != 0)
        return -1;
    return ctx->host->emit(ctx, a->answered_port, a->out.data, a->out.len);
}

void evapi_utf8_clean(char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        size_t j = 1;
        while (k && j < k && i + j < n && ((unsigned char)s[i + j] & 0xc0) == 0x80)
            j++;
        if (k == 0 || j < k) { /* a stray or cut sequence */
            s[i++] = '?';
            continue;
        }
        i += k;
    }
}

int evapi_answer_error(evapi *a, sl_ctx *ctx, const uint8_t *ev, size_t len, int status,
                       const char *error, const char *hname, const char *hval, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof detail) n = (int)sizeof detail - 1;
    evapi_utf8_clean(detail, (size_t)n); /* a name or path cut short may end mid-character */
    sl_wbuf *b = &a->body;
    sl_wbuf_reset(b);
    if (sl_wbuf_append(b, "{\"error\":", 9) | sl_json_write_string(b, error, strlen(error)) |
        sl_wbuf_append(b, ",\"detail\":", 10) | sl_json_write_string(b, detail, (size_t)n) |
        sl_wbuf_append(b, "}", 1))
        return -1;
    return evapi_answer(a, ctx, ev, len, status, "application/json", b->data, b->len, hname, hval);
}

/* ------------------------------------------------------------ requests */

static int key_is(const sl_mp_val *k, const char *s, size_t n)
{
    return k->type == SL_MP_STR && k->v.str.len == n && memcmp(k->v.str.ptr, s, n) == 0;
}

/* Read the request event's fields into r. NULL, or why it cannot be handled. */
static const char *read_request(const uint8_t *ev, size_t len, evapi_request *r)
{
    const uint8_t *p = ev, *end = ev + len;
    sl_mp_val m;
    memset(r, 0, sizeof *r);
    r->end = end;
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) return "the event is not a map";
    for (uint32_t i = 0; i < m.v.n; i++) {
        const uint8_t *vp;
        sl_mp_val k, v;
        if (sl_mp_read(&p, end, &k) != 0) return "the event is not valid msgpack";
        vp = p;
        if (sl_mp_read(&vp, end, &v) != 0) return "the event is not valid msgpack";
        if (key_is(&k, "method", 6)) {
            if (v.type != SL_MP_STR) return "method is not a string";
            r->method = v.v.str.ptr;
            r->mlen = v.v.str.len;
        } else if (key_is(&k, "path", 4)) {
            if (v.type != SL_MP_STR) return "path is not a string";
            r->path = v.v.str.ptr;
            r->plen = v.v.str.len;
        } else if (key_is(&k, "body", 4)) {
            if (v.type == SL_MP_STR || v.type == SL_MP_BIN) {
                r->body = v.v.str.ptr;
                r->blen = v.v.str.len;
            } else if (v.type != SL_MP_NIL) {
                return "body is not a string";
            }
        } else if (key_is(&k, "query", 5)) {
            if (v.type != SL_MP_MAP && v.type != SL_MP_NIL) return "query is not a map";
            r->query = v.type == SL_MP_MAP ? p : NULL;
        } else if (key_is(&k, "scopes", 6)) {
            if (v.type == SL_MP_ARRAY) r->scopes = p;
        } else if (key_is(&k, "time", 4)) {
            if (sl_mp_timestamp_ns(&v, &r->time_ns) == 0)
                r->has_time = 1;
            else if (v.type == SL_MP_STR &&
                     sl_time_parse(v.v.str.ptr, v.v.str.len, &r->time_ns) == 0)
                r->has_time = 1;
        } else if (key_is(&k, "headers", 7)) {
            if (v.type != SL_MP_MAP) return "headers is not a map";
            for (uint32_t j = 0; j < v.v.n; j++) {
                sl_mp_val hn, hv;
                if (sl_mp_read(&vp, end, &hn) != 0) return "the event is not valid msgpack";
                const uint8_t *hp = vp;
                if (sl_mp_read(&hp, end, &hv) != 0 || sl_mp_skip(&vp, end) != 0)
                    return "the event is not valid msgpack";
                if (key_is(&hn, "content-type", 12)) {
                    if (hv.type != SL_MP_STR) return "header content-type is not a string";
                    r->ctype = hv.v.str.ptr;
                    r->clen = hv.v.str.len;
                    r->has_ctype = 1;
                } else if (key_is(&hn, "ce-specversion", 14)) {
                    r->binary_mode = 1;
                }
            }
        }
        if (sl_mp_skip(&p, end) != 0) return "the event is not valid msgpack";
    }
    if (!r->method || !r->mlen) return "the request has no method";
    if (!r->path || !r->plen || r->path[0] != '/')
        return "the request has no path (starting with '/')";
    return NULL;
}

/* Whether the request's `scopes` hold scope. */
static int has_scope(const evapi_request *r, const char *scope)
{
    const uint8_t *p = r->scopes;
    sl_mp_val arr;
    size_t n = strlen(scope);
    if (!p || sl_mp_read(&p, r->end, &arr) != 0 || arr.type != SL_MP_ARRAY) return 0;
    for (uint32_t i = 0; i < arr.v.n; i++) {
        sl_mp_val s;
        if (sl_mp_read(&p, r->end, &s) != 0) return 0;
        if (s.type == SL_MP_STR && s.v.str.len == n && memcmp(s.v.str.ptr, scope, n) == 0) return 1;
        if ((s.type == SL_MP_ARRAY || s.type == SL_MP_MAP) && s.v.n) /* not a scope: skip it */
            return 0;
    }
    return 0;
}

/* 0 when the request may go on; 1 once answered 403; -1 on failure. */
static int need_scope(evapi *a, sl_ctx *ctx, const uint8_t *ev, size_t len, const evapi_request *r,
                      const char *scope)
{
    if (!scope || has_scope(r, scope)) return 0;
    int rc = evapi_answer_error(a, ctx, ev, len, 403, "forbidden", NULL, NULL,
                                "this request needs scope '%s'%s", scope,
                                r->scopes ? ""
                                          : " (the request carries no scopes: is auth in "
                                            "front of events_api?)");
    return rc == 0 ? 1 : -1;
}

/* ------------------------------------------------------------ publishing */

enum { CT_ONE = 1, CT_BATCH, CT_ANY };

/*
 * What a content-type allows: CT_ONE (application/cloudevents+json), CT_BATCH
 * (application/cloudevents-batch+json), CT_ANY (application/json), or 0.
 * Case-insensitive; parameters other than a charset other than UTF-8 are ignored.
 */
static int content_mode(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    size_t m = 0;
    while (m < n && s[m] != ';')
        m++;
    size_t t = m;
    while (t && (s[t - 1] == ' ' || s[t - 1] == '\t'))
        t--;
    int mode = 0;
    if (t == 28 && strncasecmp(s, "application/cloudevents+json", 28) == 0)
        mode = CT_ONE;
    else if (t == 34 && strncasecmp(s, "application/cloudevents-batch+json", 34) == 0)
        mode = CT_BATCH;
    else if (t == 16 && strncasecmp(s, "application/json", 16) == 0)
        mode = CT_ANY;
    /* charset: only UTF-8 (RFC 8259 section 8.1) */
    for (size_t i = m; mode && i < n; i++) {
        if (i + 8 <= n && strncasecmp(s + i, "charset=", 8) == 0 &&
            (s[i - 1] == ';' || s[i - 1] == ' ' || s[i - 1] == '\t')) {
            const char *v = s + i + 8;
            size_t vn = 0;
            while (i + 8 + vn < n && v[vn] != ';' && v[vn] != ' ')
                vn++;
            if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') v++, vn -= 2;
            if (!((vn == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
                  (vn == 4 && strncasecmp(v, "utf8", 4) == 0)))
                return 0;
        }
    }
    return mode;
}

static int grow_events(evapi *a, size_t need)
{
    if (need <= a->cap_ev) return 0;
    size_t cap = a->cap_ev ? a->cap_ev : 1024;
    while (cap < need)
        cap *= 2;
    size_t *off = realloc(a->ev_off, cap * sizeof *off);
    if (off) a->ev_off = off;
    size_t *lens = realloc(a->ev_len, cap * sizeof *lens);
    if (lens) a->ev_len = lens;
    const uint8_t **evs = realloc(a->evs, cap * sizeof *evs);
    if (evs) a->evs = evs;
    sl_eventlog_result *res = realloc(a->res, cap * sizeof *res);
    if (res) a->res = res;
    if (!off || !lens || !evs || !res) return -1;
    a->cap_ev = cap;
    return 0;
}

/* Queue publish request ev (copied) with its events [first, first + n) for the next flush. */
static int push_pending(evapi *a, const uint8_t *ev, size_t len, size_t first, size_t n)
{
    if (a->n_pend == a->cap_pend) {
        size_t cap = a->cap_pend ? a->cap_pend * 2 : 256;
        evapi_pending *p = realloc(a->pend, cap * sizeof *p);
        if (!p) return -1;
        a->pend = p;
        a->cap_pend = cap;
    }
    size_t off = a->reqs.len;
    if (sl_wbuf_append(&a->reqs, ev, len) != 0) return -1;
    a->pend[a->n_pend++] = (evapi_pending){off, len, first, n};
    return 0;
}

/* The 400 of a request with invalid events: a->tmp holds the list's items. */
static int answer_invalid(evapi *a, sl_ctx *ctx, const uint8_t *ev, size_t len, size_t n_bad,
                          size_t n)
{
    char detail[160];
    int dn = n == 1 ? snprintf(detail, sizeof detail, "the event is invalid; it was not stored")
                    : snprintf(detail, sizeof detail,
                               "%zu of %zu events are invalid; none of the %zu was stored (a "
                               "batch is all or nothing)",
                               n_bad, n, n);
    sl_wbuf *b = &a->body;
    sl_wbuf_reset(b);
    if (sl_wbuf_append(b, "{\"error\":\"bad request\",\"detail\":", 32) |
        sl_json_write_string(b, detail, (size_t)dn) | sl_wbuf_append(b, ",\"invalid\":[", 12) |
        sl_wbuf_append(b, a->tmp.data, a->tmp.len) | sl_wbuf_append(b, "]}", 2))
        return -1;
    return evapi_answer(a, ctx, ev, len, 400, "application/json", b->data, b->len, NULL, NULL);
}

/*
 * POST prefix: check the request and its events; a valid one joins the batch's
 * pending requests (its events appended to a->store), anything else is answered
 * now. 0, or -1 on failure.
 */
static int publish(evapi *a, sl_ctx *ctx, const uint8_t *ev, size_t len, const evapi_request *r,
                   int64_t now)
{
    int mode = r->has_ctype ? content_mode(r->ctype, r->clen) : 0;
    if (!mode) {
        a->c.rejected++;
        const char *why = r->binary_mode
                              ? "binary content mode (ce-* headers) is not supported: send the "
                                "event in structured mode"
                          : r->has_ctype ? "this content-type is not accepted"
                                         : "the request has no content-type";
        return evapi_answer_error(a, ctx, ev, len, 415, "unsupported media type", "accept-post",
                                  ACCEPT_POST, "%s; send %s", why, ACCEPT_POST);
    }
    /* parse the body through a padded copy (the parser reads past the end) */
    char err[256];
    sl_wbuf_reset(&a->pad);
    sl_wbuf_reset(&a->parsed);
    if (sl_wbuf_reserve(&a->pad, r->blen + SL_JSON_PADDING) != 0) return -1;
    if (r->blen) memcpy(a->pad.data, r->body, r->blen);
    memset(a->pad.data + r->blen, 0, SL_JSON_PADDING);
    if (sl_json_to_msgpack(a->jp, (const char *)a->pad.data, r->blen, r->blen + SL_JSON_PADDING, 0,
                           &a->parsed, err, sizeof err) != 0) {
        a->c.rejected++;
        return evapi_answer_error(a, ctx, ev, len, 400, "bad request", NULL, NULL,
                                  "the body is not JSON: %s", err);
    }
    const uint8_t *p = a->parsed.data, *end = a->parsed.data + a->parsed.len, *q = p;
    sl_mp_val top;
    size_t n;
    if (sl_mp_read(&q, end, &top) != 0) return -1;
    if (top.type == SL_MP_MAP && mode != CT_BATCH) {
        n = 1; /* p: the event */
    } else if (top.type == SL_MP_ARRAY && mode != CT_ONE) {
        n = top.v.n;
        p = q; /* the first element */
    } else {
        a->c.rejected++;
        const char *d = mode == CT_ONE
                            ? "application/cloudevents+json is one event: a JSON "
                              "object (send a batch as application/cloudevents-batch+json)"
                        : mode == CT_BATCH ? "application/cloudevents-batch+json is a JSON array "
                                             "of events"
                                           : "the body must be a JSON object (one event) or an "
                                             "array of events";
        return evapi_answer_error(a, ctx, ev, len, 400, "bad request", NULL, NULL, "%s", d);
    }
    if (n > a->max_batch) {
        a->c.rejected++;
        return evapi_answer_error(a, ctx, ev, len, 413, "payload too large", NULL, NULL,
                                  "%zu events in one request; at most %" PRIu32
                                  " are accepted: split the batch",
                                  n, a->max_batch);
    }
    if (grow_events(a, a->n_ev + n) != 0) return -1;
    int64_t recv = r->has_time ? r->time_ns : now;
    size_t first = a->n_ev, mark = a->store.len, n_bad = 0;
    sl_wbuf_reset(&a->tmp);
    for (size_t j = 0; j < n; j++) {
        char why[256];
        size_t off = a->store.len;
        const uint8_t *at = p;
        const char *bad = evapi_event_store(&p, end, recv, &a->store, why, sizeof why);
        if (bad == evapi_oom || p == at) /* (p == at: the parser's msgpack is broken) */
            return -1;
        if (bad) {
            char item[64];
            if (bad == why) evapi_utf8_clean(why, strlen(why)); /* a name cut at 40 bytes */
            int in =
                snprintf(item, sizeof item, "%s{\"index\":%zu,\"reason\":", n_bad ? "," : "", j);
            if (sl_wbuf_append(&a->tmp, item, (size_t)in) |
                sl_json_write_string(&a->tmp, bad, strlen(bad)) | sl_wbuf_append(&a->tmp, "}", 1))
                return -1;
            n_bad++;
            continue;
        }
        a->ev_off[a->n_ev] = off;
        a->ev_len[a->n_ev] = a->store.len - off;
        a->n_ev++;
    }
    if (n_bad) {
        a->store.len = mark;
        a->n_ev = first;
        a->c.rejected++;
        return answer_invalid(a, ctx, ev, len, n_bad, n);
    }
    return push_pending(a, ev, len, first, n);
}

/* Add what changed since the last report to the operator's counters (once per call). */
static void report_counts(evapi *a, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    evapi_counts *c = &a->c, *r = &a->reported;
    if (c->published > r->published) h->count(ctx, "published", c->published - r->published);
    if (c->duplicates > r->duplicates) h->count(ctx, "duplicates", c->duplicates - r->duplicates);
    if (c->rejected > r->rejected) h->count(ctx, "rejected", c->rejected - r->rejected);
    if (c->queries > r->queries) h->count(ctx, "queries", c->queries - r->queries);
    if (c->failures > r->failures) h->count(ctx, "failures", c->failures - r->failures);
    *r = *c;
}

/*
 * Append every event of every waiting publish request in one durable append
 * (committed and synced when it returns; group commit with other appenders
 * of the log), then answer each request: 202 with its counts, or 503 when the
 * append failed. 0, or -1 (out of memory, the pipeline stopping).
 */
static int flush(evapi *a, sl_ctx *ctx)
{
    if (!a->n_pend) return 0;
    const sl_host *h = ctx->host;
    int rc = 0;
    for (size_t k = 0; k < a->n_ev; k++)
        a->evs[k] = a->store.data + a->ev_off[k];
    if (a->n_ev) rc = sl_eventlog_append(a->log, a->evs, a->ev_len, a->n_ev, a->res);
    if (rc < 0)
        h->log(ctx, SL_LOG_ERROR,
               "appending %zu events of %zu requests to the event log '%s': %s%s", a->n_ev,
               a->n_pend, a->log_path, sl_eventlog_strerror(rc),
               rc == MDB_MAP_FULL ? " (raise map_size or set a retention)" : "");
    for (size_t i = 0; i < a->n_pend; i++) {
        const evapi_pending *pd = &a->pend[i];
        const uint8_t *ev = a->reqs.data + pd->req_off;
        size_t len = pd->req_len;
        if (rc < 0) {
            a->c.failures++;
            if (evapi_answer_error(a, ctx, ev, len, 503, "unavailable", "retry-after", "1",
                                   "the event log could not store the events (%s); retry: "
                                   "publishing is idempotent by id",
                                   sl_eventlog_strerror(rc)) != 0)
                return -1;
            continue;
        }
        size_t added = 0, dups = 0, refused = SIZE_MAX;
        for (size_t k = pd->first; k < pd->first + pd->n; k++) {
            if (a->res[k].status == SL_EVENTLOG_APPENDED)
                added++;
            else if (a->res[k].status == SL_EVENTLOG_DUPLICATE)
                dups++;
            else if (refused == SIZE_MAX)
                refused = k;
        }
        a->c.published += added;
        a->c.duplicates += dups;
        if (refused != SIZE_MAX) { /* the validator let through what the log refuses: a bug */
            a->c.failures++;
            h->log(ctx, SL_LOG_ERROR, "the event log refused event %zu of a valid request: %s",
                   refused - pd->first, a->res[refused].why);
            if (evapi_answer_error(a, ctx, ev, len, 500, "internal error", NULL, NULL,
                                   "event %zu was refused by the event log: %s",
                                   refused - pd->first, a->res[refused].why) != 0)
                return -1;
            continue;
        }
        char body[96];
        int bn = snprintf(body, sizeof body, "{\"accepted\":%zu,\"duplicates\":%zu}", added, dups);
        if (evapi_answer(a, ctx, ev, len, 202, "application/json", body, (size_t)bn, NULL, NULL) !=
            0)
            return -1;
    }
    a->n_ev = a->n_pend = 0;
    sl_wbuf_reset(&a->store);
    sl_wbuf_reset(&a->reqs);
    report_counts(a, ctx);
    return 0;
}

/* ------------------------------------------------------------ routing */

static int method_is(const evapi_request *r, const char *m)
{
    return r->mlen == strlen(m) && memcmp(r->method, m, r->mlen) == 0;
}

static int handle(evapi *a, sl_ctx *ctx, const uint8_t *ev, size_t len, int64_t *now)
{
    const sl_host *h = ctx->host;
    evapi_request r;
    const char *why = read_request(ev, len, &r);
    if (why) return h->emit_drop(ctx, a->errors_port, "malformed", why, ev, len, NULL, 0);
    if (r.plen < a->prefix_len || memcmp(r.path, a->prefix, a->prefix_len) != 0 ||
        (r.plen > a->prefix_len && r.path[a->prefix_len] != '/'))
        return h->emit(ctx, 0, ev, len); /* not ours */
    const char *rest = r.path + a->prefix_len;
    size_t rlen = r.plen - a->prefix_len;
    int rc;
    if (rlen == 0) { /* the collection */
        if (method_is(&r, "POST")) {
            if ((rc = need_scope(a, ctx, ev, len, &r, a->write_scope)) != 0) return rc < 0 ? -1 : 0;
            if (!*now) *now = h->now(ctx);
            return publish(a, ctx, ev, len, &r, *now);
        }
        if (method_is(&r, "GET")) {
            if ((rc = need_scope(a, ctx, ev, len, &r, a->read_scope)) != 0) return rc < 0 ? -1 : 0;
            return evapi_query(a, ctx, ev, len, &r);
        }
        return evapi_answer_error(a, ctx, ev, len, 405, "method not allowed", "allow", "GET, POST",
                                  "%.*s %.*s: use GET (query) or POST (publish)", (int)r.mlen,
                                  r.method, (int)r.plen, r.path);
    }
    const char *id = rest + 1;
    size_t idlen = rlen - 1;
    if (!method_is(&r, "GET"))
        return evapi_answer_error(a, ctx, ev, len, 405, "method not allowed", "allow", "GET",
                                  "%.*s %.*s: only GET is allowed here", (int)r.mlen, r.method,
                                  (int)(r.plen > 200 ? 200 : r.plen), r.path);
    if ((rc = need_scope(a, ctx, ev, len, &r, a->read_scope)) != 0) return rc < 0 ? -1 : 0;
    if (idlen == 6 && memcmp(id, "stream", 6) == 0)
        return evapi_answer_error(a, ctx, ev, len, 501, "not implemented", NULL, NULL,
                                  "server-sent events need streaming responses, which the HTTP "
                                  "server does not have yet; poll GET %s with a cursor",
                                  a->prefix);
    return evapi_get(a, ctx, ev, len, id, idlen);
}

static int events_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    evapi *a = state;
    const sl_host *h = ctx->host;
    int64_t now = 0; /* the wall clock, read once per batch if a request lacks `time` */
    size_t waiting = a->n_pend;
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        if (handle(a, ctx, ev, len, &now) != 0) goto err;
    }
    if (a->n_pend > waiting) {
        if (a->store.len + a->reqs.len >= EVAPI_HOLD_BYTES) { /* enough waiting: append now */
            if (flush(a, ctx) != 0) goto err;
        } else {
            h->timer_set(ctx, h->monotonic(ctx)); /* after the batches queued behind this one */
        }
    }
    report_counts(a, ctx);
    return SL_OK;
err:
    h->log(ctx, SL_LOG_ERROR, "events_api: out of memory, or the pipeline is stopping");
    return SL_ERROR;
}

/* The timer process asked for: the waiting publish requests are appended and answered. */
static int events_on_timer(void *state, sl_ctx *ctx, int64_t now_ns)
{
    if (flush(state, ctx) != 0) {
        ctx->host->log(ctx, SL_LOG_ERROR, "events_api: out of memory, or the pipeline is stopping");
        return SL_ERROR;
    }
    return SL_OK;
}

static int events_finish(void *state, sl_ctx *ctx)
{
    return events_on_timer(state, ctx, 0);
}

/* ------------------------------------------------------------ configuration */

/* retention: {max_age: 7d, max_size: 10GiB}; each part optional (as sink.log's). */
static int read_retention(sl_ctx *ctx, evapi *a)
{
    const sl_host *h = ctx->host;
    const sl_node *r = h->param(ctx, "retention");
    if (!r) return 0;
    int bad = 0;
    for (size_t i = 0; i < h->node_len(r); i++) {
        const char *k = h->node_key(r, i);
        const sl_node *v = h->node_at(r, i);
        if (strcmp(k, "max_age") == 0) {
            if (h->node_duration(v, &a->opts.max_age_ns) != 0 || a->opts.max_age_ns <= 0) {
                h->config_error(ctx, v,
                                "invalid duration for retention.max_age (expected e.g. 7d)");
                bad = 1;
            }
        } else if (strcmp(k, "max_size") == 0) {
            if (h->node_size(v, &a->opts.max_bytes) != 0 || a->opts.max_bytes == 0) {
                h->config_error(ctx, v,
                                "invalid size for retention.max_size (expected e.g. 10GiB)");
                bad = 1;
            }
        } else {
            h->config_error(ctx, v, "unknown key 'retention.%s' (expected max_age or max_size)", k);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

/* An integer parameter in [lo, hi] into *out; reported otherwise. */
static int int_param(sl_ctx *ctx, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    const sl_host *h = ctx->host;
    const sl_node *n = h->param(ctx, name);
    if (h->node_int(n, out) != 0 || *out < lo || *out > hi) {
        h->config_error(ctx, n, "'%s' must be an integer from %" PRId64 " to %" PRId64, name, lo,
                        hi);
        return -1;
    }
    return 0;
}

static int events_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    evapi *a = calloc(1, sizeof *a);
    *state = a;
    if (!a || !(a->jp = sl_json_parser_new())) return SL_ERROR;
    a->answered_port = h->port(ctx, "answered");
    a->errors_port = h->port(ctx, "errors");
    int bad = 0;
    a->log_path = h->node_str(h->param(ctx, "log"));
    if (!a->log_path || !*a->log_path) {
        h->config_error(ctx, h->param(ctx, "log"), "'log' must be the log's directory");
        bad = 1;
    }
    a->opts.create = 1;
    a->opts.ordered_sync = strcmp(h->node_str(h->param(ctx, "sync")), "ordered") == 0;
    if (h->node_size(h->param(ctx, "map_size"), &a->opts.map_size) != 0 ||
        a->opts.map_size < (1u << 20)) {
        h->config_error(ctx, h->param(ctx, "map_size"), "'map_size' must be at least 1MiB");
        bad = 1;
    }
    bad |= read_retention(ctx, a) != 0;
    const sl_node *pn = h->param(ctx, "prefix");
    a->prefix = h->node_str(pn);
    a->prefix_len = a->prefix ? strlen(a->prefix) : 0;
    if (!a->prefix || a->prefix_len < 2 || a->prefix[0] != '/' ||
        a->prefix[a->prefix_len - 1] == '/' || strpbrk(a->prefix, "*?# ")) {
        h->config_error(ctx, pn,
                        "'prefix' must be a path like /v1/events (a leading '/', no "
                        "trailing '/', no '*', '?', '#' or space)");
        bad = 1;
    }
    int64_t v;
    if (int_param(ctx, "max_batch", 1, 1000000, &v) == 0)
        a->max_batch = (uint32_t)v;
    else
        bad = 1;
    if (int_param(ctx, "max_limit", 1, 100000, &v) == 0)
        a->max_limit = (uint32_t)v;
    else
        bad = 1;
    if (!h->param(ctx, "default_limit"))
        a->default_limit = a->max_limit < 100 ? a->max_limit : 100;
    else if (!bad && int_param(ctx, "default_limit", 1, a->max_limit, &v) == 0)
        a->default_limit = (uint32_t)v;
    else
        bad = 1;
    if (!bad && int_param(ctx, "max_scan", a->max_limit, INT64_MAX, &v) == 0)
        a->max_scan = (uint64_t)v;
    else
        bad = 1;
    const char *rs = h->node_str(h->param(ctx, "read_scope"));
    const char *ws = h->node_str(h->param(ctx, "write_scope"));
    a->read_scope = rs && *rs ? rs : NULL;
    a->write_scope = ws && *ws ? ws : NULL;
    return bad ? SL_ERROR : SL_OK;
}

static int events_start(void *state, sl_ctx *ctx)
{
    evapi *a = state;
    char err[512];
    if (sl_eventlog_open(a->log_path, &a->opts, &a->log, err, sizeof err) != 0) {
        ctx->host->log(ctx, SL_LOG_ERROR, "%s", err);
        return SL_ERROR;
    }
    return SL_OK;
}

static void events_destroy(void *state)
{
    evapi *a = state;
    if (!a) return;
    sl_eventlog_close(&a->log);
    sl_json_parser_destroy(&a->jp);
    sl_wbuf *bufs[] = {&a->pad, &a->parsed, &a->store, &a->body, &a->resp,
                       &a->out, &a->tmp,    &a->copy,  &a->reqs};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        sl_wbuf_fini(bufs[i]);
    free(a->ev_off);
    free(a->ev_len);
    free(a->evs);
    free(a->res);
    free(a->pend);
    free(a);
}

const sl_operator sl_op_events_api = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "events_api",
    .summary = "The gateway's event endpoints: publish CloudEvents durably (POST /v1/events), "
               "query and fetch them (GET /v1/events, /v1/events/{id}) over an event log",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .init = events_init,
    .start = events_start,
    .process = events_process,
    .on_timer = events_on_timer,
    .finish = events_finish,
    .destroy = events_destroy,
};
