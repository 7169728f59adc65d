/*
 * http_event.c - the request event of source.http (docs/gateway.md, "The
 * request event"), written as msgpack from what a loop read off the wire;
 * and HTTP reason phrases.
 *
 * Runs on the loop threads, once per request, so it writes straight into
 * the loop's chunk buffer and allocates nothing once the buffers are warm:
 * the path is measured, then percent-decoded in place in the output; the
 * query's pairs are decoded into the scratch buffer, where repeated names
 * are found (first one wins) with a small hash table when there are many.
 * Repeated header names are joined with ", " in the order received.
 */
#include <string.h>

#include "http_server.h"

static int write_str_head(sl_wbuf *b, size_t n)
{
    if (n > UINT32_MAX) return -1;
    return sl__mp_write_len(b, (uint32_t)n, 0xa0, 31, 0xd9, 0xda, 0xdb);
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/*
 * Percent-decode s (n bytes) into dst (room for n bytes; NULL: only measure).
 * `plus` turns '+' into a space (query components). A '%' not followed by
 * two hex digits stays as it is. Returns the decoded length.
 */
static size_t decode(char *dst, const char *s, size_t n, int plus)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int hi, lo;
        if (c == '%' && i + 2 < n && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)s[i + 2])) >= 0) {
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (dst) dst[o] = (char)c;
        o++;
    }
    return o;
}

/* Write s percent-decoded as a msgpack string. */
static int write_decoded(sl_wbuf *out, const char *s, size_t n, int plus)
{
    size_t len = decode(NULL, s, n, plus);
    if (write_str_head(out, len) != 0 || sl_wbuf_reserve(out, len) != 0) return -1;
    decode((char *)out->data + out->len, s, n, plus);
    out->len += len;
    return 0;
}

/* A decoded query pair in scratch: offsets of its name and value. */
typedef struct qpair {
    uint32_t k, klen, v, vlen;
    uint32_t dup; /* an earlier pair has the same name */
} qpair;

static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a: names are short */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/*
 * The query map. Layout of scratch: the decoded bytes of every pair, then
 * the qpair array, then (many pairs) the hash table; offsets, because the
 * buffer may move as it grows.
 */
static int write_query(sl_wbuf *out, sl_wbuf *scratch, const char *q, size_t n)
{
    sl_wbuf_reset(scratch);
    size_t npairs = 0;
    /* pass 1: decoded names and values, back to back */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(q + i, '=', j - i);
            size_t kraw = eq ? (size_t)(eq - (q + i)) : j - i;
            if (sl_wbuf_reserve(scratch, j - i) != 0) return -1;
            scratch->len += decode((char *)scratch->data + scratch->len, q + i, kraw, 1);
            if (eq)
                scratch->len += decode((char *)scratch->data + scratch->len, eq + 1,
                                       (size_t)(q + j - eq - 1), 1);
            npairs++;
        }
        i = j + 1;
    }
    size_t bytes_end = scratch->len;
    size_t pairs_at = (bytes_end + 7) & ~(size_t)7;
    if (sl_wbuf_reserve(scratch, pairs_at - bytes_end + npairs * sizeof(qpair)) != 0) return -1;
    scratch->len = pairs_at + npairs * sizeof(qpair);
    /* pass 2: where each pair's name and value are */
    size_t at = 0, p = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(q + i, '=', j - i);
            size_t kraw = eq ? (size_t)(eq - (q + i)) : j - i;
            qpair qp;
            qp.k = (uint32_t)at;
            qp.klen = (uint32_t)decode(NULL, q + i, kraw, 1);
            qp.v = qp.k + qp.klen;
            qp.vlen = eq ? (uint32_t)decode(NULL, eq + 1, (size_t)(q + j - eq - 1), 1) : 0;
            qp.dup = 0;
            at = qp.v + qp.vlen;
            memcpy(scratch->data + pairs_at + p * sizeof(qpair), &qp, sizeof qp);
            p++;
        }
        i = j + 1;
    }
    /* pass 3: repeated names (the first one wins) */
    size_t unique = npairs;
    if (npairs > 1 && npairs <= 16) {
        for (size_t i = 1; i < npairs; i++) {
            qpair *a = (qpair *)(scratch->data + pairs_at) + i;
            for (size_t j = 0; j < i; j++) {
                qpair *b = (qpair *)(scratch->data + pairs_at) + j;
                if (!b->dup && b->klen == a->klen &&
                    memcmp(scratch->data + b->k, scratch->data + a->k, a->klen) == 0) {
                    a->dup = 1;
                    unique--;
                    break;
                }
            }
        }
    } else if (npairs > 16) {
        size_t size = 32;
        while (size < npairs * 2)
            size *= 2;
        size_t table_at = scratch->len;
        if (sl_wbuf_reserve(scratch, size * sizeof(uint32_t)) != 0) return -1;
        memset(scratch->data + table_at, 0, size * sizeof(uint32_t));
        scratch->len += size * sizeof(uint32_t);
        uint32_t *table = (uint32_t *)(scratch->data + table_at);
        qpair *pairs = (qpair *)(scratch->data + pairs_at);
        for (size_t i = 0; i < npairs; i++) {
            qpair *a = &pairs[i];
            size_t h = hash_bytes(scratch->data + a->k, a->klen) & (size - 1);
            for (;; h = (h + 1) & (size - 1)) {
                if (table[h] == 0) {
                    table[h] = (uint32_t)i + 1;
                    break;
                }
                qpair *b = &pairs[table[h] - 1];
                if (b->klen == a->klen &&
                    memcmp(scratch->data + b->k, scratch->data + a->k, a->klen) == 0) {
                    a->dup = 1;
                    unique--;
                    break;
                }
            }
        }
    }
    if (sl_mp_write_map(out, (uint32_t)unique) != 0) return -1;
    for (size_t i = 0; i < npairs; i++) {
        const qpair *a = (const qpair *)(scratch->data + pairs_at) + i;
        if (a->dup) continue;
        if (sl_mp_write_str(out, (const char *)scratch->data + a->k, a->klen) != 0 ||
            sl_mp_write_str(out, (const char *)scratch->data + a->v, a->vlen) != 0)
            return -1;
    }
    return 0;
}

static int same_name(const sl_http_field *a, const sl_http_field *b)
{
    return a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0;
}

/* The headers map: h2o allows at most 100 fields, so a quadratic search is cheap. */
static int write_headers(sl_wbuf *out, const sl_http_field *f, size_t n)
{
    uint32_t unique = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < i && !same_name(&f[j], &f[i]))
            j++;
        unique += j == i;
    }
    if (sl_mp_write_map(out, unique) != 0) return -1;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < i && !same_name(&f[j], &f[i]))
            j++;
        if (j < i) continue; /* written with the first of its name */
        size_t len = f[i].value_len, parts = 1;
        for (j = i + 1; j < n; j++)
            if (same_name(&f[j], &f[i])) {
                len += 2 + f[j].value_len;
                parts++;
            }
        if (sl_mp_write_str(out, f[i].name, f[i].name_len) != 0) return -1;
        if (parts == 1) {
            if (sl_mp_write_str(out, f[i].value, f[i].value_len) != 0) return -1;
            continue;
        }
        if (write_str_head(out, len) != 0 || sl_wbuf_append(out, f[i].value, f[i].value_len) != 0)
            return -1;
        for (j = i + 1; j < n; j++)
            if (same_name(&f[j], &f[i]) && (sl_wbuf_append(out, ", ", 2) != 0 ||
                                            sl_wbuf_append(out, f[j].value, f[j].value_len) != 0))
                return -1;
    }
    return 0;
}

static int write_key(sl_wbuf *out, const char *k)
{
    return sl_mp_write_str(out, k, strlen(k));
}

int sl_http_event_write(sl_wbuf *out, sl_wbuf *scratch, const sl_http_request_view *r)
{
    size_t start = out->len;
    const char *q = memchr(r->target, '?', r->target_len);
    size_t path_len = q ? (size_t)(q - r->target) : r->target_len;
    if (sl_mp_write_map(out, 10) != 0 || write_key(out, "id") != 0 ||
        sl_mp_write_str(out, r->id, r->id_len) != 0 || write_key(out, "type") != 0 ||
        write_key(out, "http.request") != 0 || write_key(out, "time") != 0 ||
        sl_mp_write_timestamp(out, r->time_ns) != 0 || write_key(out, "conn") != 0 ||
        sl_mp_write_uint(out, r->conn) != 0 || write_key(out, "method") != 0 ||
        sl_mp_write_str(out, r->method, r->method_len) != 0 || write_key(out, "path") != 0 ||
        write_decoded(out, r->target, path_len, 0) != 0 || write_key(out, "query") != 0 ||
        write_query(out, scratch, q ? q + 1 : "", q ? r->target_len - path_len - 1 : 0) != 0 ||
        write_key(out, "headers") != 0 || write_headers(out, r->headers, r->n_headers) != 0 ||
        write_key(out, "body") != 0 || sl_mp_write_str(out, r->body, r->body_len) != 0 ||
        write_key(out, "remote") != 0 || sl_mp_write_str(out, r->remote, r->remote_len) != 0) {
        out->len = start;
        return -1;
    }
    return 0;
}

static const struct {
    short status;
    const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *sl_http_reason(int status)
{
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
        if (reasons[i].status == status) return reasons[i].reason;
    return "Unknown";
}
