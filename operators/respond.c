/*
 * respond.c - `respond`: answers each request event on the connection that
 * `source.http` holds for it (docs/gateway/http.md), and emits one usage
 * event per answer on its main port, `usage`.
 *
 * An event names its request by `conn` and says the answer in `response`
 * {status, headers, body} (docs/gateway.md). Per batch, each answer is
 * checked and written as a compact record into one batch per event loop of
 * the server (http_server.h, the responder), and every loop's batch is
 * handed over in one message at the end of the batch: the loop thread
 * writes the responses. An event without `response` is answered 500 and
 * counted (no_response); one whose `response` cannot be sent (a status
 * outside 200-599, a header that is not a token or a value with CR or LF)
 * is answered 500 and leaves by `errors` too; one without `conn` cannot be
 * answered and leaves by `errors`. Whether the request was still waiting is
 * known only on the loop: a late or duplicate answer is counted there
 * (stale_responses of the source), never written.
 *
 * The body is sent as it is when it is a string or bytes; any other value
 * is sent as JSON (content-type application/json unless the headers say
 * otherwise). `content-length`, `date` and `server` are the server's; the
 * event's `ratelimit` becomes the RateLimit headers (ratelimit_headers.h).
 *
 * Per event nothing is allocated once the buffers are warm.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "json.h"
#include "ratelimit_headers.h"
#include "sluice/operator.h"

enum {
    F_CONN,
    F_RESPONSE,
    F_RATELIMIT,
    F_ID,
    F_TIME,
    F_CONSUMER,
    F_API,
    F_OPERATION,
    F_METHOD,
    F_PATH,
    F_COUNT
};
static const char *const field_names[F_COUNT] = {"conn",   "response", "ratelimit", "id",
                                                 "time",   "consumer", "api",       "operation",
                                                 "method", "path"};

typedef struct span {
    const uint8_t *p;
    size_t len; /* 0: absent */
} span;

typedef struct respond {
    const char *server; /* NULL: the only source.http */
    sl_http_server *srv;
    sl_http_responder *out;
    int errors_port;
    sl_wbuf hdrs;  /* this answer's header fields: u32 name length, u32 value length, name, value */
    sl_wbuf body;  /* a body rendered as JSON */
    sl_wbuf usage; /* the usage event */
    uint32_t nh;
    int has_ctype; /* the response names its content-type */
    int json_body; /* the body was rendered as JSON */
    uint64_t answered, no_response, invalid;
} respond;

static const sl_param params[] = {
    {"server", SL_PARAM_STRING, NULL, 0,
     "name of the source.http whose requests this answers (default: the only one)", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"usage", "errors", NULL};

static int resp_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    respond *r = calloc(1, sizeof *r);
    if (!r) return SL_ERROR;
    *state = r;
    const sl_node *n = h->param(ctx, "server");
    r->server = n ? h->node_str(n) : NULL;
    if (r->server && !*r->server) {
        h->config_error(ctx, n, "'server' must name a source.http operator");
        return SL_ERROR;
    }
    r->errors_port = h->port(ctx, "errors");
    return SL_OK;
}

static int resp_start(void *state, sl_ctx *ctx)
{
    respond *r = state;
    int why = 0;
    r->srv = sl_http_server_find(r->server, &why);
    if (!r->srv) {
        if (r->server)
            ctx->host->log(ctx, SL_LOG_ERROR, "no source.http named '%s' in this pipeline",
                           r->server);
        else if (why == -EEXIST)
            ctx->host->log(ctx, SL_LOG_ERROR,
                           "several source.http operators: name the one to "
                           "answer with 'server'");
        else
            ctx->host->log(ctx, SL_LOG_ERROR, "respond needs a source.http in the pipeline");
        return SL_ERROR;
    }
    if (!(r->out = sl_http_responder_new(r->srv))) {
        ctx->host->log(ctx, SL_LOG_ERROR, "out of memory");
        return SL_ERROR;
    }
    return SL_OK;
}

/* One pass over the event's top-level pairs: where the fields of interest are. */
static int scan(const uint8_t *ev, size_t len, span *f)
{
    const uint8_t *p = ev, *end = ev + len;
    sl_mp_val m;
    memset(f, 0, F_COUNT * sizeof *f);
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) return -1;
    for (uint32_t i = 0; i < m.v.n; i++) {
        const uint8_t *k = p;
        sl_mp_val key;
        int which = -1;
        if (sl_mp_read(&k, end, &key) != 0) return -1;
        if (key.type == SL_MP_STR) {
            for (int j = 0; j < F_COUNT && which < 0; j++)
                if (strlen(field_names[j]) == key.v.str.len &&
                    memcmp(field_names[j], key.v.str.ptr, key.v.str.len) == 0)
                    which = j;
        }
        if (sl_mp_skip(&p, end) != 0) /* the key, whatever it is */
            return -1;
        const uint8_t *v = p;
        if (sl_mp_skip(&p, end) != 0) return -1;
        if (which >= 0 && !f[which].len) f[which] = (span){v, (size_t)(p - v)};
    }
    return 0;
}

/* The request's handle: 0 and *conn, or -1 if `conn` is absent or not an unsigned integer. */
static int read_conn(span c, uint64_t *conn)
{
    const uint8_t *p = c.p;
    sl_mp_val v;
    if (!c.len || sl_mp_read(&p, c.p + c.len, &v) != 0 || v.type != SL_MP_UINT) return -1;
    *conn = v.v.u;
    return 0;
}

static int add_header(respond *r, const char *name, size_t nlen, const char *value, size_t vlen)
{
    uint32_t nl = (uint32_t)nlen, vl = (uint32_t)vlen;
    if (sl_wbuf_append(&r->hdrs, &nl, 4) != 0 || sl_wbuf_append(&r->hdrs, &vl, 4) != 0 ||
        sl_wbuf_append(&r->hdrs, name, nlen) != 0 || sl_wbuf_append(&r->hdrs, value, vlen) != 0)
        return -1;
    r->nh++;
    if (nlen == 12 && memcmp(name, "content-type", 12) == 0) r->has_ctype = 1;
    return 0;
}

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Header fields the server writes itself (or that would break the framing). */
static int reserved(const char *n, size_t len)
{
    static const char *const names[] = {"content-length", "transfer-encoding", "connection", "date",
                                        "server",         "keep-alive",        "upgrade",    NULL};
    for (const char *const *k = names; *k; k++)
        if (strlen(*k) == len && memcmp(*k, n, len) == 0) return 1;
    return 0;
}

/*
 * One header field of the response: the name lower-cased (a token), the value a
 * string without CR, LF or NUL, or a number or bool rendered as text. NULL, or
 * why the field cannot be sent.
 */
static const char *take_header(respond *r, const sl_mp_val *k, const uint8_t **p,
                               const uint8_t *end)
{
    char name[256], num[64];
    sl_mp_val v;
    if (sl_mp_read(p, end, &v) != 0) return "malformed msgpack";
    if (k->type != SL_MP_STR || k->v.str.len == 0 || k->v.str.len >= sizeof name)
        return "a header name is not a string of 1 to 255 characters";
    for (uint32_t i = 0; i < k->v.str.len; i++) {
        unsigned char c = (unsigned char)k->v.str.ptr[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        if (!is_tchar(c)) return "a header name is not a token";
        name[i] = (char)c;
    }
    size_t nlen = k->v.str.len;
    const char *val;
    size_t vlen;
    switch (v.type) {
    case SL_MP_STR:
        val = v.v.str.ptr;
        vlen = v.v.str.len;
        for (size_t i = 0; i < vlen; i++)
            if (val[i] == '\r' || val[i] == '\n' || val[i] == 0)
                return "a header value holds CR, LF or NUL";
        break;
    case SL_MP_UINT:
        vlen = (size_t)snprintf(num, sizeof num, "%llu", (unsigned long long)v.v.u);
        val = num;
        break;
    case SL_MP_INT:
        vlen = (size_t)snprintf(num, sizeof num, "%lld", (long long)v.v.i);
        val = num;
        break;
    case SL_MP_FLOAT:
        vlen = (size_t)snprintf(num, sizeof num, "%.17g", v.v.f);
        val = num;
        break;
    case SL_MP_BOOL:
        val = v.v.b ? "true" : "false";
        vlen = strlen(val);
        break;
    default:
        return "a header value is not a string, number or bool";
    }
    if (reserved(name, nlen)) return NULL; /* the server's own */
    return add_header(r, name, nlen, val, vlen) == 0 ? NULL : "out of memory";
}

/*
 * Read `response` into status, r->hdrs and the body. NULL, or why it cannot be sent.
 */
static const char *take_response(respond *r, span resp, int *status, const uint8_t **body,
                                 size_t *blen)
{
    const uint8_t *p = resp.p, *end = resp.p + resp.len;
    sl_mp_val m;
    *status = 200;
    *body = (const uint8_t *)"";
    *blen = 0;
    if (sl_mp_read(&p, end, &m) != 0 || m.type != SL_MP_MAP) return "'response' is not a map";
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl_mp_val k, v;
        if (sl_mp_read(&p, end, &k) != 0) return "malformed msgpack";
        int is = k.type == SL_MP_STR;
        if (is && k.v.str.len == 6 && memcmp(k.v.str.ptr, "status", 6) == 0) {
            if (sl_mp_read(&p, end, &v) != 0) return "malformed msgpack";
            if (v.type == SL_MP_FLOAT && v.v.f == (double)(int)v.v.f)
                v = (sl_mp_val){.type = SL_MP_UINT, .v.u = (uint64_t)(v.v.f < 0 ? 0 : v.v.f)};
            if (v.type != SL_MP_UINT || v.v.u < 200 || v.v.u > 599)
                return "'response.status' is not an integer from 200 to 599";
            *status = (int)v.v.u;
        } else if (is && k.v.str.len == 7 && memcmp(k.v.str.ptr, "headers", 7) == 0) {
            if (sl_mp_read(&p, end, &v) != 0) return "malformed msgpack";
            if (v.type == SL_MP_NIL) continue;
            if (v.type != SL_MP_MAP) return "'response.headers' is not a map";
            for (uint32_t j = 0; j < v.v.n; j++) {
                sl_mp_val hk;
                if (sl_mp_read(&p, end, &hk) != 0) return "malformed msgpack";
                const char *why = take_header(r, &hk, &p, end);
                if (why) return why;
            }
        } else if (is && k.v.str.len == 4 && memcmp(k.v.str.ptr, "body", 4) == 0) {
            const uint8_t *at = p;
            if (sl_mp_read(&p, end, &v) != 0) return "malformed msgpack";
            if (v.type == SL_MP_STR || v.type == SL_MP_BIN) {
                *body = (const uint8_t *)v.v.str.ptr;
                *blen = v.v.str.len;
            } else if (v.type != SL_MP_NIL) {
                p = at;
                if (sl_mp_skip(&p, end) != 0) return "malformed msgpack";
                sl_wbuf_reset(&r->body);
                if (sl_msgpack_to_json(at, (size_t)(p - at), &r->body) != 0)
                    return "'response.body' cannot be written as JSON";
                *body = r->body.data;
                *blen = r->body.len;
                r->json_body = 1;
            }
        } else {
            if (sl_mp_skip(&p, end) != 0) /* the value of a key we do not know */
                return "malformed msgpack";
        }
    }
    return NULL;
}

/* 1 (out of memory) stops the rendering; sl_ratelimit_headers' -1 means a malformed map. */
static int on_ratelimit_header(void *arg, const char *name, const char *value, size_t len)
{
    return add_header(arg, name, strlen(name), value, len) == 0 ? 0 : 1;
}

/* Write the usage event of an answer (docs/gateway/http.md); fields the request lacks are left out.
 */
static int emit_usage(respond *r, sl_ctx *ctx, const span *f, int status, size_t bytes_out,
                      int64_t now)
{
    sl_wbuf *u = &r->usage;
    static const int copied[] = {F_CONSUMER, F_API, F_OPERATION, F_METHOD, F_PATH};
    int64_t t = 0;
    int has_latency = 0;
    if (f[F_TIME].len) {
        const uint8_t *p = f[F_TIME].p;
        sl_mp_val v;
        has_latency = sl_mp_read(&p, p + f[F_TIME].len, &v) == 0 && sl_mp_timestamp_ns(&v, &t) == 0;
    }
    uint32_t n = 4 + (f[F_ID].len != 0) + (uint32_t)has_latency; /* type, time, status, bytes_out */
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++)
        n += f[copied[i]].len != 0;
    sl_wbuf_reset(u);
    int rc = sl_mp_write_map(u, n);
    if (f[F_ID].len) rc |= sl_mp_write_cstr(u, "id") | sl_wbuf_append(u, f[F_ID].p, f[F_ID].len);
    rc |= sl_mp_write_cstr(u, "type") | sl_mp_write_cstr(u, "http.usage");
    rc |= sl_mp_write_cstr(u, "time") | sl_mp_write_timestamp(u, now);
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++)
        if (f[copied[i]].len)
            rc |= sl_mp_write_cstr(u, field_names[copied[i]]) |
                  sl_wbuf_append(u, f[copied[i]].p, f[copied[i]].len);
    rc |= sl_mp_write_cstr(u, "status") | sl_mp_write_uint(u, (uint64_t)status);
    if (has_latency)
        rc |= sl_mp_write_cstr(u, "latency_ms") | sl_mp_write_double(u, (double)(now - t) / 1e6);
    rc |= sl_mp_write_cstr(u, "bytes_out") | sl_mp_write_uint(u, bytes_out);
    if (rc != 0) {
        ctx->host->log(ctx, SL_LOG_ERROR, "out of memory");
        return SL_ERROR;
    }
    return sl_emit(ctx, 0, u->data, u->len) == 0 ? SL_OK : SL_ERROR;
}

static const char no_response_body[] =
    "{\"error\":\"no response\",\"detail\":\"the pipeline did not answer this request\"}";
static const char invalid_body[] =
    "{\"error\":\"internal\",\"detail\":\"the pipeline built a response that cannot be sent\"}";

static int resp_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    respond *r = state;
    const sl_host *h = ctx->host;
    int want_usage = h->port_connected(ctx, 0);
    (void)input;
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        span f[F_COUNT];
        uint64_t conn;
        if (scan(ev, len, f) != 0 || read_conn(f[F_CONN], &conn) != 0) {
            h->emit_drop(ctx, r->errors_port, "invalid",
                         "no 'conn' (the request's handle from source.http): it cannot be answered",
                         ev, len, NULL, 0);
            continue;
        }
        int status;
        const uint8_t *body;
        size_t blen;
        sl_wbuf_reset(&r->hdrs);
        r->nh = 0;
        r->has_ctype = r->json_body = 0;
        const char *why = NULL;
        if (!f[F_RESPONSE].len) {
            r->no_response++;
            status = 500;
            body = (const uint8_t *)no_response_body;
            blen = sizeof no_response_body - 1;
            r->json_body = 1;
        } else if ((why = take_response(r, f[F_RESPONSE], &status, &body, &blen)) != NULL) {
            r->invalid++;
            h->emit_drop(ctx, r->errors_port, "invalid_response", why, ev, len, NULL, 0);
            sl_wbuf_reset(&r->hdrs);
            r->nh = 0;
            r->has_ctype = 0;
            status = 500;
            body = (const uint8_t *)invalid_body;
            blen = sizeof invalid_body - 1;
            r->json_body = 1;
        }
        if (r->json_body && !r->has_ctype &&
            add_header(r, "content-type", 12, "application/json", 16) != 0)
            goto oom;
        if (f[F_RATELIMIT].len &&
            sl_ratelimit_headers(f[F_RATELIMIT].p, f[F_RATELIMIT].len, on_ratelimit_header, r) > 0)
            goto oom; /* (a malformed ratelimit map just adds nothing) */
        int rc = sl_http_responder_begin(r->out, conn, status);
        if (rc < 0) goto oom;
        if (rc > 0) continue; /* names no request of this server: counted as stale there */
        const uint8_t *hp = r->hdrs.data;
        for (uint32_t k = 0; k < r->nh; k++) {
            uint32_t nl, vl;
            memcpy(&nl, hp, 4);
            memcpy(&vl, hp + 4, 4);
            if (sl_http_responder_header(r->out, (const char *)hp + 8, nl,
                                         (const char *)hp + 8 + nl, vl) != 0)
                goto oom;
            hp += 8 + nl + vl;
        }
        if (sl_http_responder_end(r->out, body, blen) != 0) goto oom;
        r->answered++;
        if (want_usage && emit_usage(r, ctx, f, status, blen, h->now(ctx)) != SL_OK)
            return SL_ERROR;
    }
    sl_http_responder_flush(r->out);
    if (r->answered) h->count(ctx, "answered", r->answered);
    if (r->no_response) h->count(ctx, "no_response", r->no_response);
    if (r->invalid) h->count(ctx, "invalid_response", r->invalid);
    r->answered = r->no_response = r->invalid = 0;
    return SL_OK;
oom:
    sl_http_responder_flush(r->out);
    h->log(ctx, SL_LOG_ERROR, "out of memory");
    return SL_ERROR;
}

static void resp_destroy(void *state)
{
    respond *r = state;
    if (!r) return;
    sl_http_responder_destroy(&r->out);
    sl_http_server_release(&r->srv);
    sl_wbuf_fini(&r->hdrs);
    sl_wbuf_fini(&r->body);
    sl_wbuf_fini(&r->usage);
    free(r);
}

const sl_operator sl_op_respond = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "respond",
    .summary =
        "Answers request events of source.http on their held connections; emits usage events",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .init = resp_init,
    .start = resp_start,
    .process = resp_process,
    .destroy = resp_destroy,
};
