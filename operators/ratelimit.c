/*
 * ratelimit.c - `ratelimit`: the gateway's rate limits, per consumer and per
 * operation, with plans (docs/gateway/ratelimit.md).
 *
 *   plans:
 *     free: {events.publish: 20/s, events.query: 5/s, default: 10/s}
 *     pro:  {events.publish: {rate: 200/s, burst: 50}, default: 100/s}
 *   default_plan: free     the plan of a request without one (or an unknown one)
 *   consumer: consumer     the bucket key; absent: the client address (anonymous)
 *   plan: plan             expression giving the plan's name
 *   operation: operation   expression giving the operation (absent/unlisted: default)
 *   max_keys: 1000000      bound of the bucket table
 *
 * Algorithm: GCRA (bucket_table.h), one bucket per (plan's policy,
 * consumer), on the clock of the requests' own `time` (when source.http
 * received them), so batching and queueing between the HTTP source and
 * this operator change nothing: the decision for a request depends only on
 * the times of the requests before it. The clock is the largest time seen
 * by the instance, so a time that goes backwards counts as "now" (limits
 * never loosen because of it).
 *
 * A request that conforms leaves by `out` with the field `ratelimit`
 * ({limit, remaining, reset, policy, name, burst}) from which `respond`
 * renders the header fields (ratelimit_headers.h). One that does not gets
 * `response` = 429 with Retry-After, the header fields and a JSON body, and
 * leaves by `limited`. A request without a time, or without a consumer and
 * an address, leaves by `errors` as a drop envelope.
 *
 * No allocation per request once the table and the scratch buffers have
 * grown; the per-policy texts are formatted once in init.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bucket_table.h"
#include "ratelimit_headers.h"
#include "sluice/operator.h"

#define MAX_PLANS 64
#define MAX_OPS 64                /* policies per plan, `default` included */
#define MAX_NAME 100              /* bytes of a plan or operation name */
#define MAX_COUNT 1000000000ll    /* requests per window */
#define MAX_WINDOW_S 1000000000ll /* about 31 years: window in ns fits int64 */
#define NS 1000000000ll

enum { KEY_CONSUMER = 'c', KEY_REMOTE = 'r' }; /* first byte of a bucket key */

typedef struct policy {
    const char *op; /* the operation's name (config string); "default" for the catch-all */
    size_t op_len;
    int64_t q, w; /* q requests per w seconds, as written */
    int64_t burst;
    int64_t t_ns;   /* emission interval T = w / q */
    int64_t tol_ns; /* (burst - 1) * T */
    char text[48];  /* the `policy` value: "200;w=1" */
    /* the 429's body up to the wait: {"error":"rate limited","detail":"plan free allows 20
     * publish requests per second; retry after  (names JSON-escaped) */
    char body[2 * (2 * MAX_NAME) + 192];
    size_t body_len;
} policy;

typedef struct plan {
    const char *name;
    size_t name_len;
    uint32_t first, n; /* its policies: pol[first, first + n) */
    uint32_t def;      /* its `default` policy */
} plan;

/* An expression, evaluated as a plain field lookup when it is a field path (the defaults). */
typedef struct expr {
    const sl_expr *e;
    const char *path; /* non-NULL: a field path, read with field_get */
} expr;

typedef struct counts {
    uint64_t passed, limited, evicted, anonymous;
} counts;

typedef struct ratelimit {
    policy *pol;
    uint32_t n_pol;
    plan plans[MAX_PLANS];
    uint32_t n_plans, default_plan;
    expr consumer, plan, operation;
    int anon_remote; /* no consumer: key on the client address (else: errors) */
    int limited_port, errors_port;
    int64_t clock; /* the largest request time seen, ns */
    sl_bucket_table buckets;
    /* per-request scratch, reused */
    sl_wbuf key, name, val, out;
    counts c;
} ratelimit;

static const sl_param params[] = {
    {"plans", SL_PARAM_MAP, NULL, 1,
     "plan -> {operation -> rate or {rate, burst}}; each plan needs 'default'. Rates: 200/s, "
     "1000/min, 10/h, 5/d, 100/10s",
     NULL},
    {"default_plan", SL_PARAM_STRING, NULL, 0,
     "plan of a request with none or an unknown one; required with several plans", NULL},
    {"consumer", SL_PARAM_EXPR, "consumer", 0,
     "expression giving the consumer (one bucket per consumer and policy; partitions the input)",
     NULL},
    {"anonymous", SL_PARAM_ENUM, "remote", 0,
     "a request without consumer: limit it per client address ('remote' without the port), or "
     "send it to errors",
     "remote|error"},
    {"plan", SL_PARAM_EXPR, "plan", 0, "expression giving the plan's name", NULL},
    {"operation", SL_PARAM_EXPR, "operation", 0,
     "expression giving the operation; absent or not in the plan: the plan's 'default'", NULL},
    {"max_keys", SL_PARAM_INT, "1000000", 0,
     "buckets kept; beyond, full ones are forgotten first, else the soonest full", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "limited", "errors", NULL};

/* ------------------------------------------------------------ configuration */

/*
 * Parse a rate: "N/UNIT" or "N/kUNIT" (UNIT s, sec, second, min, minute, h,
 * hour, d, day, plurals too), or a bare N (per second). Returns 0 and q, w
 * (seconds), or -1.
 */
static int parse_rate(const char *s, int64_t *q, int64_t *w)
{
    int64_t n = 0, k = 0;
    const char *p = s;
    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((n = n * 10 + (*p - '0')) > MAX_COUNT) return -1;
    if (n < 1) return -1;
    if (*p == '\0') {
        *q = n;
        *w = 1;
        return 0;
    }
    if (*p++ != '/') return -1;
    if (*p >= '0' && *p <= '9') {
        for (; *p >= '0' && *p <= '9'; p++)
            if ((k = k * 10 + (*p - '0')) > MAX_WINDOW_S) return -1;
        if (k < 1) return -1;
    } else {
        k = 1;
    }
    static const struct {
        const char *name;
        int64_t s;
    } units[] = {{"s", 1},        {"sec", 1},     {"second", 1},   {"seconds", 1}, {"min", 60},
                 {"mins", 60},    {"minute", 60}, {"minutes", 60}, {"h", 3600},    {"hour", 3600},
                 {"hours", 3600}, {"d", 86400},   {"day", 86400},  {"days", 86400}};
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (strcmp(p, units[i].name) != 0) continue;
        if (k > MAX_WINDOW_S / units[i].s) return -1;
        *q = n;
        *w = k * units[i].s;
        return 0;
    }
    return -1;
}

/* Whether name (len bytes) is a usable plan or operation name: 1 to MAX_NAME printable ASCII. */
static int name_ok(const char *s, size_t len)
{
    if (len == 0 || len > MAX_NAME) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return 0;
    return 1;
}

/* Append s JSON-escaped (s is printable ASCII) to buf at *n (room checked by the caller's size). */
static void put_json(char *buf, size_t *n, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') buf[(*n)++] = '\\';
        buf[(*n)++] = s[i];
    }
    buf[*n] = '\0';
}

/*
 * The 429's body up to the number of seconds: {"error":"rate limited",
 * "detail":"plan free allows 20 publish requests per second; retry after
 */
static void format_body(policy *p, const plan *pl, int is_default)
{
    char *d = p->body;
    size_t n = 0;
    static const char head[] = "{\"error\":\"rate limited\",\"detail\":\"plan ";
    memcpy(d, head, sizeof head - 1);
    n = sizeof head - 1;
    put_json(d, &n, pl->name, pl->name_len);
    n += (size_t)snprintf(d + n, sizeof p->body - n, " allows %" PRId64 " ", p->q);
    if (!is_default) {
        put_json(d, &n, p->op, p->op_len);
        d[n++] = ' ';
    }
    const char *per = p->w == 1       ? "second"
                      : p->w == 60    ? "minute"
                      : p->w == 3600  ? "hour"
                      : p->w == 86400 ? "day"
                                      : NULL;
    if (per)
        n += (size_t)snprintf(d + n, sizeof p->body - n, "requests per %s", per);
    else
        n +=
            (size_t)snprintf(d + n, sizeof p->body - n, "requests every %" PRId64 " seconds", p->w);
    if (p->burst != p->q)
        n += (size_t)snprintf(d + n, sizeof p->body - n, ", in bursts of up to %" PRId64, p->burst);
    n += (size_t)snprintf(d + n, sizeof p->body - n, "; retry after ");
    p->body_len = n;
}

/*
 * Fill policy p of plan pl from node v (a rate, or {rate, burst}). Returns 0
 * or -1 (reported).
 */
static int read_policy(sl_ctx *ctx, policy *p, const plan *pl, const sl_node *v)
{
    const sl_host *h = ctx->host;
    const sl_node *rate = v, *burst = NULL;
    char what[2 * MAX_NAME + 32];
    snprintf(what, sizeof what, "plan '%s', '%.*s'", pl->name, (int)p->op_len, p->op);
    if (h->node_kind(v) == SL_NODE_MAP) {
        int bad = 0;
        for (size_t k = 0; k < h->node_len(v); k++) {
            const char *kname = h->node_key(v, k);
            if (strcmp(kname, "rate") != 0 && strcmp(kname, "burst") != 0) {
                h->config_error(ctx, h->node_at(v, k),
                                "%s: unknown key '%s' (expected rate, burst)", what, kname);
                bad = 1;
            }
        }
        rate = h->node_get(v, "rate");
        burst = h->node_get(v, "burst");
        if (!rate) {
            h->config_error(ctx, v, "%s: needs a rate", what);
            return -1;
        }
        if (bad) return -1;
    } else if (h->node_kind(v) != SL_NODE_SCALAR) {
        h->config_error(ctx, v, "%s: expected a rate (200/s) or {rate, burst}", what);
        return -1;
    }
    const char *text = h->node_kind(rate) == SL_NODE_SCALAR ? h->node_str(rate) : NULL;
    if (!text || parse_rate(text, &p->q, &p->w) != 0) {
        h->config_error(ctx, rate,
                        "%s: rate must be like 200/s, 1000/min, 10/h, 5/d or 100/10s (a whole "
                        "number of requests from 1 to 1e9 per window)",
                        what);
        return -1;
    }
    int64_t w_ns = p->w * NS;
    if (p->q > w_ns) {
        h->config_error(ctx, rate, "%s: rate above 1e9 requests per second", what);
        return -1;
    }
    p->t_ns = (w_ns + p->q / 2) / p->q; /* rounded: 1000/min is exactly 60 ms */
    p->burst = sl_gcra_default_burst((double)p->q / (double)p->w);
    if (burst && (h->node_kind(burst) != SL_NODE_SCALAR || h->node_int(burst, &p->burst) != 0 ||
                  p->burst < 1)) {
        h->config_error(ctx, burst, "%s: burst must be an integer of at least 1", what);
        return -1;
    }
    if (p->burst - 1 > SL_GCRA_MAX_TOLERANCE_NS / p->t_ns) {
        h->config_error(ctx, burst ? burst : rate,
                        "%s: burst %" PRId64 " would take more than 31 years to refill", what,
                        p->burst);
        return -1;
    }
    p->tol_ns = (p->burst - 1) * p->t_ns;
    snprintf(p->text, sizeof p->text, "%" PRId64 ";w=%" PRId64, p->q, p->w);
    return 0;
}

/* The `plans` map. Returns 0 or -1 (reported). */
static int read_plans(sl_ctx *ctx, ratelimit *rl, const sl_node *plans)
{
    const sl_host *h = ctx->host;
    size_t n = h->node_len(plans);
    if (n == 0 || n > MAX_PLANS) {
        h->config_error(ctx, plans, "'plans' names 1 to %d plans", MAX_PLANS);
        return -1;
    }
    size_t total = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const sl_node *ops = h->node_at(plans, i);
        const char *name = h->node_key(plans, i);
        if (!name_ok(name, strlen(name))) {
            h->config_error(ctx, ops,
                            "plan name '%.100s' must be 1 to %d printable ASCII "
                            "characters",
                            name, MAX_NAME);
            bad = 1;
        }
        if (h->node_kind(ops) != SL_NODE_MAP || h->node_len(ops) == 0 ||
            h->node_len(ops) > MAX_OPS) {
            h->config_error(ctx, ops,
                            "plan '%.100s': expected a map of 1 to %d operations to rates "
                            "({events.publish: 200/s, default: 50/s})",
                            name, MAX_OPS);
            bad = 1;
            continue;
        }
        if (!h->node_get(ops, "default")) {
            h->config_error(ctx, ops,
                            "plan '%.100s' has no 'default' (the rate of operations it does not "
                            "list)",
                            name);
            bad = 1;
        }
        total += h->node_len(ops);
    }
    if (bad) return -1;
    rl->pol = calloc(total, sizeof *rl->pol);
    if (!rl->pol) return -1;
    for (size_t i = 0; i < n; i++) {
        plan *pl = &rl->plans[i];
        const sl_node *ops = h->node_at(plans, i);
        pl->name = h->node_key(plans, i);
        pl->name_len = strlen(pl->name);
        pl->first = rl->n_pol;
        pl->n = (uint32_t)h->node_len(ops);
        for (uint32_t k = 0; k < pl->n; k++) {
            policy *p = &rl->pol[pl->first + k];
            p->op = h->node_key(ops, k);
            p->op_len = strlen(p->op);
            int is_default = strcmp(p->op, "default") == 0;
            if (is_default) pl->def = pl->first + k;
            if (!name_ok(p->op, p->op_len)) {
                h->config_error(ctx, h->node_at(ops, k),
                                "operation name '%.100s' must be 1 to %d printable ASCII "
                                "characters",
                                p->op, MAX_NAME);
                bad = 1;
                continue;
            }
            if (read_policy(ctx, p, pl, h->node_at(ops, k)) != 0) {
                bad = 1;
                continue;
            }
            format_body(p, pl, is_default);
        }
        rl->n_pol += pl->n;
    }
    rl->n_plans = (uint32_t)n;
    return bad ? -1 : 0;
}

/*
 * Whether text is a plain field path (consumer, data.who): identifiers
 * joined by dots, none a literal. Such an expression gives the field's value
 * or fails when it is absent, which is exactly field_get, without the cost
 * of the evaluator formatting the error of a missing field on every request.
 */
static int is_field_path(const char *text)
{
    if (!text) return 0;
    const char *p = text;
    for (;;) {
        const char *start = p;
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_')) return 0;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
               (*p >= '0' && *p <= '9'))
            p++;
        static const char *const literal[] = {"true", "false", "null", "in"};
        for (size_t i = 0; i < sizeof literal / sizeof *literal; i++)
            if ((size_t)(p - start) == strlen(literal[i]) &&
                memcmp(start, literal[i], (size_t)(p - start)) == 0)
                return 0;
        if (*p == '\0') return 1;
        if (*p++ != '.') return 0;
    }
}

static int ratelimit_init(sl_ctx *ctx, void **state)
{
    const sl_host *h = ctx->host;
    ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl) return SL_ERROR;
    *state = rl;
    rl->clock = INT64_MIN;
    rl->limited_port = h->port(ctx, "limited");
    rl->errors_port = h->port(ctx, "errors");
    rl->anon_remote = strcmp(h->node_str(h->param(ctx, "anonymous")), "remote") == 0;
    int bad = 0;
    const sl_node *max_keys = h->param(ctx, "max_keys");
    int64_t mk = 0;
    if (h->node_int(max_keys, &mk) != 0 || mk < 1 || mk > (int64_t)SL_BUCKET_MAX_KEYS) {
        h->config_error(ctx, max_keys, "'max_keys' must be between 1 and %u", SL_BUCKET_MAX_KEYS);
        bad = 1;
        mk = 1;
    }
    sl_bucket_table_init(&rl->buckets, (uint32_t)mk);

    const sl_node *plans = h->param(ctx, "plans");
    if (read_plans(ctx, rl, plans) != 0) bad = 1;
    const sl_node *dp = h->param(ctx, "default_plan");
    if (dp) {
        const char *name = h->node_str(dp);
        uint32_t i = 0;
        while (i < rl->n_plans && strcmp(rl->plans[i].name, name) != 0)
            i++;
        if (!bad && i == rl->n_plans) {
            h->config_error(ctx, dp, "default_plan '%.100s' is not one of the plans", name);
            bad = 1;
        }
        rl->default_plan = i;
    } else if (h->node_len(plans) > 1) {
        h->config_error(ctx, plans,
                        "several plans need 'default_plan' (the plan of a request that has none "
                        "or an unknown one)");
        bad = 1;
    }
    static const char *const exprs[] = {"consumer", "plan", "operation"};
    expr *dst[] = {&rl->consumer, &rl->plan, &rl->operation};
    for (int i = 0; i < 3; i++) {
        const sl_node *n = h->param(ctx, exprs[i]);
        dst[i]->e = h->expr_compile(ctx, n, NULL, NULL);
        bad |= !dst[i]->e;
        if (is_field_path(h->node_str(n))) dst[i]->path = h->node_str(n);
    }
    return bad ? SL_ERROR : SL_OK;
}

/* --------------------------------------------------------------- data path */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && a < 0);
}
static int64_t ceil_div(int64_t a, int64_t b)
{
    return a / b + (a % b != 0 && a > 0);
}

/* The time of event ev in ns: 0, or -1 if it has none (or not a timestamp). */
static int event_time(sl_ctx *ctx, const uint8_t *ev, size_t len, int64_t *ns)
{
    const uint8_t *v;
    size_t vlen;
    sl_mp_val x;
    if (ctx->host->field_get(ctx, ev, len, "time", &v, &vlen) != 1 ||
        sl_mp_read(&v, v + vlen, &x) != 0)
        return -1;
    return sl_mp_timestamp_ns(&x, ns);
}

/*
 * Append the value of x on ev to out as msgpack. Returns 0, or -1 (absent,
 * an evaluation error, out of memory).
 */
static int eval(sl_ctx *ctx, const expr *x, const uint8_t *ev, size_t len, sl_wbuf *out)
{
    if (!x->path) return ctx->host->expr_value(ctx, x->e, &ev, &len, 1, out);
    const uint8_t *v;
    size_t vlen;
    if (ctx->host->field_get(ctx, ev, len, x->path, &v, &vlen) != 1) return -1;
    return sl_wbuf_append(out, v, vlen);
}

/* Evaluate x on ev into rl->name; the string's bytes, or NULL (an error, not a string). */
static const char *eval_str(ratelimit *rl, sl_ctx *ctx, const expr *x, const uint8_t *ev,
                            size_t len, size_t *slen)
{
    sl_wbuf_reset(&rl->name);
    if (eval(ctx, x, ev, len, &rl->name) != 0) return NULL;
    const uint8_t *p = rl->name.data;
    sl_mp_val v;
    if (sl_mp_read(&p, p + rl->name.len, &v) != 0 || v.type != SL_MP_STR) return NULL;
    *slen = v.v.str.len;
    return v.v.str.ptr;
}

/* The policy of a request: its plan's (default_plan when none or unknown), then its operation's. */
static const policy *pick_policy(ratelimit *rl, sl_ctx *ctx, const uint8_t *ev, size_t len,
                                 const plan **plp)
{
    size_t n = 0;
    const char *s = eval_str(rl, ctx, &rl->plan, ev, len, &n);
    const plan *pl = &rl->plans[rl->default_plan];
    for (uint32_t i = 0; s && i < rl->n_plans; i++)
        if (rl->plans[i].name_len == n && memcmp(rl->plans[i].name, s, n) == 0) {
            pl = &rl->plans[i];
            break;
        }
    *plp = pl;
    s = eval_str(rl, ctx, &rl->operation, ev, len, &n);
    for (uint32_t i = pl->first; s && i < pl->first + pl->n; i++)
        if (rl->pol[i].op_len == n && memcmp(rl->pol[i].op, s, n) == 0) return &rl->pol[i];
    return &rl->pol[pl->def];
}

/* The host of a client address "1.2.3.4:5678" or "[::1]:5678" (the whole text otherwise). */
static void address_host(const char *s, size_t n, const char **host, size_t *hlen)
{
    *host = s;
    *hlen = n;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close) {
            *host = s + 1;
            *hlen = (size_t)(close - s - 1);
        }
        return;
    }
    const char *colon = memchr(s, ':', n);
    if (colon && !memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) /* one colon: a port */
        *hlen = (size_t)(colon - s);
}

/*
 * The bucket key of a request into rl->key: 'c' + the consumer's msgpack, or
 * 'r' + the client's host when it has no consumer. Returns 0, or -1 with
 * *why set when there is neither.
 */
static int consumer_key(ratelimit *rl, sl_ctx *ctx, const uint8_t *ev, size_t len, const char **why)
{
    const sl_host *h = ctx->host;
    sl_wbuf_reset(&rl->key);
    uint8_t tag = KEY_CONSUMER;
    if (sl_wbuf_append(&rl->key, &tag, 1) != 0) {
        *why = "out of memory";
        return -1;
    }
    if (eval(ctx, &rl->consumer, ev, len, &rl->key) == 0) {
        if (!(rl->key.len == 2 && rl->key.data[1] == 0xc0)) return 0; /* a consumer, not null */
        *why = "the consumer is null";
    } else {
        *why = rl->consumer.path ? "the request has no consumer" : h->expr_error(ctx);
    }
    if (!rl->anon_remote) return -1;
    const uint8_t *v;
    size_t vlen;
    sl_mp_val x;
    if (h->field_get(ctx, ev, len, "remote", &v, &vlen) != 1 || sl_mp_read(&v, v + vlen, &x) != 0 ||
        x.type != SL_MP_STR || x.v.str.len == 0) {
        *why = "no consumer and no client address ('remote')";
        return -1;
    }
    const char *host;
    size_t hlen;
    address_host(x.v.str.ptr, x.v.str.len, &host, &hlen);
    sl_wbuf_reset(&rl->key);
    tag = KEY_REMOTE;
    if (sl_wbuf_append(&rl->key, &tag, 1) != 0 || sl_wbuf_append(&rl->key, host, hlen) != 0) {
        *why = "out of memory";
        return -1;
    }
    rl->c.anonymous++;
    return 0;
}

/* Render callback: append "name": "value" to the msgpack map being written in val. */
static int put_header(void *arg, const char *name, const char *value, size_t len)
{
    sl_wbuf *val = arg;
    return sl_mp_write_cstr(val, name) | sl_mp_write_str(val, value, len) ? -1 : 0;
}

/* The `ratelimit` map of a request that passed. 0 or -1 (out of memory). */
static int write_ratelimit(sl_wbuf *val, const policy *p, int64_t remaining, int64_t reset)
{
    return sl_mp_write_map(val, 6) | sl_mp_write_cstr(val, "limit") | sl_mp_write_int(val, p->q) |
                   sl_mp_write_cstr(val, "remaining") | sl_mp_write_int(val, remaining) |
                   sl_mp_write_cstr(val, "reset") | sl_mp_write_int(val, reset) |
                   sl_mp_write_cstr(val, "policy") | sl_mp_write_cstr(val, p->text) |
                   sl_mp_write_cstr(val, "name") | sl_mp_write_str(val, p->op, p->op_len) |
                   sl_mp_write_cstr(val, "burst") | sl_mp_write_int(val, p->burst)
               ? -1
               : 0;
}

/* The `response` map of a request that was limited. 0 or -1 (out of memory). */
static int write_response(sl_wbuf *val, const policy *p, int64_t retry)
{
    /* no printf per request: the digits by hand, the rest formatted in init */
    char num[20], body[sizeof p->body + 32];
    size_t nd = sizeof num;
    int64_t r = retry; /* > 0 */
    do {
        num[--nd] = (char)('0' + r % 10);
        r /= 10;
    } while (r > 0);
    const char *digits = num + nd;
    nd = sizeof num - nd;
    size_t blen = p->body_len;
    memcpy(body, p->body, blen);
    memcpy(body + blen, digits, nd);
    blen += nd;
    memcpy(body + blen, " s\"}", 4);
    blen += 4;
    if (sl_mp_write_map(val, 3) | sl_mp_write_cstr(val, "status") | sl_mp_write_int(val, 429) |
        sl_mp_write_cstr(val, "headers") | sl_mp_write_map(val, 7) |
        sl_mp_write_cstr(val, "content-type") | sl_mp_write_cstr(val, "application/json") |
        sl_mp_write_cstr(val, "retry-after") | sl_mp_write_str(val, digits, nd))
        return -1;
    /* on a 429 the draft's reset SHOULD name the same moment as Retry-After */
    sl_ratelimit_values v = {p->op, p->op_len, p->q, p->w, p->burst, 0, retry};
    if (sl_ratelimit_render(&v, put_header, val) != 0) return -1;
    return sl_mp_write_cstr(val, "body") | sl_mp_write_str(val, body, blen) ? -1 : 0;
}

/*
 * One request: police it against its bucket and emit it. Returns 0, or -1
 * on a failure (logged).
 */
static int handle(ratelimit *rl, sl_ctx *ctx, const uint8_t *ev, size_t len)
{
    const sl_host *h = ctx->host;
    int64_t t;
    if (event_time(ctx, ev, len, &t) != 0)
        return h->emit_drop(ctx, rl->errors_port, "time",
                            "the request has no 'time' (a timestamp): it cannot be rate limited",
                            ev, len, NULL, 0);
    if (t > rl->clock) rl->clock = t;
    int64_t now = rl->clock;
    const plan *pl;
    const policy *p = pick_policy(rl, ctx, ev, len, &pl);
    const char *why = NULL;
    if (consumer_key(rl, ctx, ev, len, &why) != 0)
        return h->emit_drop(ctx, rl->errors_port, "consumer", why, ev, len, NULL, 0);
    int evicted;
    uint32_t r = sl_bucket_table_get(&rl->buckets, (uint32_t)(p - rl->pol), rl->key.data,
                                     rl->key.len, now, &evicted);
    rl->c.evicted += (uint64_t)evicted;
    if (r == SL_BUCKET_NONE) {
        h->log(ctx, SL_LOG_ERROR, "out of memory for the bucket table");
        return -1;
    }
    int64_t tat = sl_bucket_table_tat(&rl->buckets, r), at = tat - p->tol_ns;
    sl_wbuf_reset(&rl->val);
    sl_wbuf_reset(&rl->out);
    const char *field;
    int port;
    if (now < at) { /* over the limit: it would conform at `at` */
        rl->c.limited++;
        if (write_response(&rl->val, p, ceil_div(at - now, NS)) != 0) goto oom;
        field = "response";
        port = rl->limited_port;
    } else {
        rl->c.passed++;
        tat = (tat > now ? tat : now) + p->t_ns;
        sl_bucket_table_set_tat(&rl->buckets, r, tat);
        /* requests that would pass right now: the k-th conforms iff now >= tat + (k-1)T - tol */
        int64_t remaining = floor_div(now - tat + p->tol_ns, p->t_ns) + 1;
        if (remaining < 0) remaining = 0;
        if (remaining > p->burst) remaining = p->burst;
        if (write_ratelimit(&rl->val, p, remaining, ceil_div(tat - now, NS)) != 0) goto oom;
        field = "ratelimit";
        port = 0;
    }
    if (h->field_set(ctx, ev, len, field, rl->val.data, rl->val.len, &rl->out) != 0) goto oom;
    return h->emit(ctx, port, rl->out.data, rl->out.len);
oom:
    h->log(ctx, SL_LOG_ERROR, "out of memory writing a request of %zu bytes", len);
    return -1;
}

static void flush_metrics(ratelimit *rl, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    counts *c = &rl->c;
    if (c->passed) h->count(ctx, "passed", c->passed);
    if (c->limited) h->count(ctx, "limited", c->limited);
    if (c->evicted) h->count(ctx, "evicted", c->evicted);
    if (c->anonymous) h->count(ctx, "anonymous", c->anonymous);
    memset(c, 0, sizeof *c);
    h->gauge(ctx, "state_entries", (int64_t)sl_bucket_table_count(&rl->buckets));
    h->gauge(ctx, "state_bytes",
             (int64_t)(sl_bucket_table_bytes(&rl->buckets) + rl->key.cap + rl->name.cap +
                       rl->val.cap + rl->out.cap));
}

static int ratelimit_process(void *state, sl_ctx *ctx, int input, const sl_batch *batch)
{
    ratelimit *rl = state;
    (void)input;
    int rc = SL_OK;
    for (uint32_t i = 0; i < batch->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(batch, i, &len);
        if (handle(rl, ctx, ev, len) != 0) {
            rc = SL_ERROR;
            break;
        }
    }
    flush_metrics(rl, ctx);
    return rc;
}

static void ratelimit_destroy(void *state)
{
    ratelimit *rl = state;
    if (!rl) return;
    free(rl->pol);
    sl_bucket_table_fini(&rl->buckets);
    sl_wbuf_fini(&rl->key);
    sl_wbuf_fini(&rl->name);
    sl_wbuf_fini(&rl->val);
    sl_wbuf_fini(&rl->out);
    free(rl);
}

const sl_operator sl_op_ratelimit = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "ratelimit",
    .summary = "Gateway rate limits per consumer and operation (plans, GCRA on the request "
               "time): 429 with Retry-After and RateLimit headers",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .key_param = "consumer",
    .init = ratelimit_init,
    .process = ratelimit_process,
    .destroy = ratelimit_destroy,
};
