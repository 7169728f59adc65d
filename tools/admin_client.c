/*
 * admin_client.c - read a running engine's /api/pipeline (see admin_client.h).
 *
 * A plain HTTP/1.0 GET over a socket: the endpoint is ours, on loopback or a
 * private network, and answers one small document; the connection closes at
 * the end of it. The JSON becomes msgpack through the engine's parser and is
 * walked with the msgpack reader.
 */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "admin_client.h"
#include "json.h"

#define MAX_ANSWER (64u << 20)

/* Split "http://host:port/..." or "host:port" into host and port. 0 or -1. */
static int split_addr(const char *addr, char *host, size_t hn, char *port, size_t pn)
{
    if (strncmp(addr, "http://", 7) == 0)
        addr += 7;
    const char *slash = strchr(addr, '/');
    size_t len = slash ? (size_t)(slash - addr) : strlen(addr);
    const char *colon = memrchr(addr, ':', len);
    if (!colon || colon == addr + len - 1)
        return -1;
    size_t hl = (size_t)(colon - addr), pl = len - hl - 1;
    if (hl >= hn || pl >= pn)
        return -1;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    if (hl > 1 && host[0] == '[' && host[hl - 1] == ']') { /* [::1] */
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    memcpy(port, colon + 1, pl);
    port[pl] = '\0';
    return 0;
}

static int connect_to(const char *host, const char *port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(g));
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port, strerror(e));
    return fd;
}

/* The body of GET path, with room for the JSON parser's padding. 0 or -1. */
static int http_get(const char *addr, const char *path, sl_wbuf *body, char *err, size_t errlen)
{
    char host[256], port[16];
    if (split_addr(addr, host, sizeof host, port, sizeof port) != 0) {
        snprintf(err, errlen, "'%s': expected HOST:PORT (the pipeline's admin.listen)", addr);
        return -1;
    }
    int fd = connect_to(host, port, err, errlen);
    if (fd < 0)
        return -1;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s:%s\r\n\r\n", path, host, port);
    sl_wbuf raw = {0};
    int rc = -1;
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(err, errlen, "%s:%s: cannot send: %s", host, port, strerror(errno));
        goto out;
    }
    for (;;) {
        if (raw.len > MAX_ANSWER || sl_wbuf_reserve(&raw, 65536) != 0) {
            snprintf(err, errlen, "%s:%s: answer too large", host, port);
            goto out;
        }
        ssize_t got = recv(fd, raw.data + raw.len, raw.cap - raw.len, 0);
        if (got == 0)
            break;
        if (got < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "%s:%s: %s", host, port,
                     errno == EAGAIN ? "no answer within 5 s" : strerror(errno));
            goto out;
        }
        raw.len += (size_t)got;
    }
    const char *hdr_end = raw.len ? memmem(raw.data, raw.len, "\r\n\r\n", 4) : NULL;
    int status = 0;
    if (!hdr_end || sscanf((const char *)raw.data, "HTTP/%*d.%*d %d", &status) != 1) {
        snprintf(err, errlen, "%s:%s: not an HTTP answer", host, port);
        goto out;
    }
    if (status != 200) {
        snprintf(err, errlen, "%s:%s%s: HTTP %d (is this a sluice admin endpoint?)", host, port,
                 path, status);
        goto out;
    }
    size_t off = (size_t)(hdr_end + 4 - (const char *)raw.data);
    if (sl_wbuf_reserve(body, raw.len - off + SL_JSON_PADDING) != 0 ||
        sl_wbuf_append(body, raw.data + off, raw.len - off) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    close(fd);
    sl_wbuf_fini(&raw);
    return rc;
}

/* ---------------------------------------------------------- reading */

/* The value of `key` in the map at p: 1 and *v (p moved to the value), 0 absent, -1 malformed. */
static int field(const uint8_t *map, const uint8_t *end, const char *key, const uint8_t **at)
{
    const uint8_t *p = map;
    int rc = sl_mp_map_find(&p, end, key, strlen(key));
    if (rc == 1)
        *at = p;
    return rc;
}

static double num(const uint8_t *map, const uint8_t *end, const char *key, double dflt)
{
    const uint8_t *p;
    sl_mp_val v;
    if (field(map, end, key, &p) != 1 || sl_mp_read(&p, end, &v) != 0)
        return dflt;
    switch (v.type) {
    case SL_MP_UINT: return (double)v.v.u;
    case SL_MP_INT: return (double)v.v.i;
    case SL_MP_FLOAT: return v.v.f;
    case SL_MP_BOOL: return v.v.b;
    default: return dflt;
    }
}

static void str(const uint8_t *map, const uint8_t *end, const char *key, char *out, size_t n)
{
    const uint8_t *p;
    sl_mp_val v;
    out[0] = '\0';
    if (field(map, end, key, &p) == 1 && sl_mp_read(&p, end, &v) == 0 && v.type == SL_MP_STR)
        snprintf(out, n, "%.*s", (int)v.v.str.len, v.v.str.ptr);
}

/* The value `key` of the map at `map`, as a map (its start), or NULL. */
static const uint8_t *sub(const uint8_t *map, const uint8_t *end, const char *key, uint32_t *n,
                          sl_mp_type type)
{
    const uint8_t *p, *start;
    sl_mp_val v;
    if (field(map, end, key, &p) != 1)
        return NULL;
    start = p;
    if (sl_mp_read(&p, end, &v) != 0 || v.type != type)
        return NULL;
    *n = v.v.n;
    return type == SL_MP_MAP ? start : p; /* a map is read by field(); an array's elements follow */
}

static void instance(sl_op_sample *o, const uint8_t *m, const uint8_t *end)
{
    o->in += (uint64_t)num(m, end, "in", 0);
    o->out += (uint64_t)num(m, end, "out", 0);
    o->errors += (uint64_t)num(m, end, "errors", 0);
    o->busy_s += num(m, end, "busy_s", 0);
    o->backpressure_s += num(m, end, "backpressure_s", 0);
    double q = num(m, end, "queue", -1);
    if (q >= 0)
        o->queue = (o->queue < 0 ? 0 : o->queue) + (int64_t)q;
    double lag = num(m, end, "watermark_lag_s", NAN);
    if (!isnan(lag) && (!o->has_wm || lag > o->wm_lag_s)) {
        o->has_wm = 1;
        o->wm_lag_s = lag;
    }
    uint32_t n;
    const uint8_t *g = sub(m, end, "gauges", &n, SL_MP_MAP);
    if (g) {
        double e = num(g, end, "state_entries", -1), b = num(g, end, "state_bytes", -1);
        if (e >= 0)
            o->state_entries = (o->state_entries < 0 ? 0 : o->state_entries) + (int64_t)e;
        if (b >= 0)
            o->state_bytes = (o->state_bytes < 0 ? 0 : o->state_bytes) + (int64_t)b;
    }
    const uint8_t *c = sub(m, end, "counters", &n, SL_MP_MAP);
    if (c)
        o->late += (uint64_t)num(c, end, "late", 0);
}

static int read_sample(const uint8_t *doc, const uint8_t *end, sl_sample *s)
{
    str(doc, end, "pipeline", s->pipeline, sizeof s->pipeline);
    s->uptime_s = num(doc, end, "uptime_s", -1);
    if (s->uptime_s < 0)
        return -1;
    s->timing = num(doc, end, "timing", 0) != 0;
    s->state_bytes = (uint64_t)num(doc, end, "state_bytes", 0);
    uint32_t n;
    const uint8_t *ck = sub(doc, end, "checkpoint", &n, SL_MP_MAP);
    s->ckpt_age_s = -1;
    if (ck) {
        s->has_ckpt = 1;
        s->ckpt_count = (uint64_t)num(ck, end, "count", 0);
        s->ckpt_last = (uint64_t)num(ck, end, "last_id", 0);
        s->ckpt_age_s = num(ck, end, "age_s", -1);
        s->ckpt_pause_s = num(ck, end, "last_pause_s", 0);
    }
    const uint8_t *p = sub(doc, end, "operators", &n, SL_MP_ARRAY);
    if (!p)
        return -1;
    s->ops = calloc(n ? n : 1, sizeof *s->ops);
    if (!s->ops)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *m = p;
        if (sl_mp_skip(&p, end) != 0)
            return -1;
        sl_op_sample *o = &s->ops[s->n_ops++];
        str(m, end, "name", o->name, sizeof o->name);
        str(m, end, "type", o->type, sizeof o->type);
        o->parallelism = (uint32_t)num(m, end, "parallelism", 1);
        o->source = num(m, end, "source", 0) != 0;
        o->sink = num(m, end, "sink", 0) != 0;
        o->queue = -1;
        o->state_entries = o->state_bytes = -1;
        uint32_t k;
        const uint8_t *q = sub(m, end, "instances", &k, SL_MP_ARRAY);
        for (uint32_t j = 0; q && j < k; j++) {
            const uint8_t *im = q;
            if (sl_mp_skip(&q, end) != 0)
                return -1;
            instance(o, im, end);
        }
    }
    return 0;
}

int sl_admin_fetch(const char *addr, sl_sample *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    sl_wbuf body = {0}, mp = {0};
    int rc = -1;
    if (http_get(addr, "/api/pipeline", &body, err, errlen) != 0)
        goto out;
    sl_json_parser *jp = sl_json_parser_new();
    char why[128];
    int bad = !jp || sl_json_to_msgpack(jp, (const char *)body.data, body.len, body.cap, 0, &mp,
                                        why, sizeof why) != 0;
    sl_json_parser_destroy(&jp);
    if (bad || read_sample(mp.data, mp.data + mp.len, s) != 0) {
        snprintf(err, errlen, "%s: not a sluice /api/pipeline document", addr);
        sl_sample_fini(s);
        goto out;
    }
    rc = 0;
out:
    sl_wbuf_fini(&body);
    sl_wbuf_fini(&mp);
    return rc;
}

void sl_sample_fini(sl_sample *s)
{
    free(s->ops);
    s->ops = NULL;
    s->n_ops = 0;
}

void sl_sample_rates(const sl_sample *a, const sl_sample *b, size_t op, sl_op_rates *r)
{
    memset(r, 0, sizeof *r);
    const sl_op_sample *y = &b->ops[op], *x = NULL;
    for (size_t i = 0; a && i < a->n_ops && !x; i++)
        if (strcmp(a->ops[i].name, y->name) == 0)
            x = &a->ops[i];
    double dt = a ? b->uptime_s - a->uptime_s : 0;
    if (!x || dt <= 0)
        return;
    r->in = (double)(y->in - x->in) / dt;
    r->out = (double)(y->out - x->out) / dt;
    r->errors = (double)(y->errors - x->errors) / dt;
    double par = y->parallelism ? y->parallelism : 1;
    r->busy = (y->busy_s - x->busy_s) / dt / par;
    r->backpressure = (y->backpressure_s - x->backpressure_s) / dt / par;
}

long sl_sample_bottleneck(const sl_sample *a, const sl_sample *b)
{
    long best = -1;
    double best_busy = 0.5;
    for (size_t i = 0; i < b->n_ops; i++) {
        sl_op_rates r;
        sl_sample_rates(a, b, i, &r);
        if (r.busy >= best_busy && r.backpressure < 0.2) {
            best = (long)i;
            best_busy = r.busy;
        }
    }
    return best;
}
