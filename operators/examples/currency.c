/*
 * currency.c - example plugin: `example.currency` converts an amount into
 * another currency with a fixed rate table (docs/plugins.md walks through it).
 *
 *   convert:
 *     type: example.currency
 *     input: orders
 *     field: data.amount               # the amount, a number (dotted = nested maps)
 *     currency_field: data.currency    # its currency code, a string
 *     to: EUR
 *     rates: {USD: 0.92, GBP: 1.17, EUR: 1.0}   # value of one unit in a common base
 *     into: data.amount_eur            # where the converted amount goes
 *
 * converted = amount * rates[currency] / rates[to], a double. The event
 * comes out on `out` with `into` set (replaced if present, appended to its
 * map otherwise, maps created for missing levels) and every other field
 * as it was, in its order. An event without the amount or the currency, with
 * an amount that is not a number or a currency the table lacks leaves by
 * `errors` as a drop envelope (reason missing_field, invalid or
 * unknown_currency).
 *
 * Built as an out-of-tree plugin is: it includes only <sluice/operator.h>
 * (which brings <sluice/msgpack.h>) and the C library and talks to the
 * engine only through ctx->host. Fields are read and written by dotted path
 * with host->field_get / field_set; their values are decoded with
 * sl_mp_read and encoded with sl_mp_write_double (running_count.c walks
 * the msgpack itself instead). No allocation per event: the output is built
 * in a buffer kept in the state, which stops growing once it has held the
 * largest event.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/operator.h>

static const sl_param params[] = {
    {"field", SL_PARAM_STRING, "data.amount", 0, "field path of the amount (a number)", NULL},
    {"currency_field", SL_PARAM_STRING, "data.currency", 0,
     "field path of the amount's currency code (a string)", NULL},
    {"to", SL_PARAM_STRING, "EUR", 0, "currency to convert into; must be in rates", NULL},
    {"rates", SL_PARAM_MAP, "{USD: 0.92, GBP: 1.17, EUR: 1.0}", 0,
     "currency code -> value of one unit in a common base (> 0)", NULL},
    {"into", SL_PARAM_STRING, "data.amount_eur", 0, "field path the converted amount is written to",
     NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const outputs[] = {"out", "errors", NULL};

typedef struct rate {
    const char *code; /* borrowed from the configuration */
    size_t len;
    double value;
} rate;

typedef struct currency {
    const char *amount, *code, *into; /* field paths, borrowed from the configuration */
    rate *rates; /* a handful: a linear scan beats hashing */
    size_t n_rates;
    double to_value;
    int errors_port;
    sl_wbuf value, out; /* the converted amount and the event being written; reused */
    uint64_t converted, missing, invalid, unknown;
} currency;

/* ------------------------------------------------------------ configuration */

/* Read path parameter `name`; reports a configuration error and returns -1 if it is not one. */
static int path_param(sl_ctx *ctx, const char *name, const char **path)
{
    const sl_host *h = ctx->host;
    const sl_node *n = h->param(ctx, name); /* never NULL: every path parameter has a default */
    const char *p = h->node_str(n);
    if (!p || !*p || *p == '.' || p[strlen(p) - 1] == '.' || strstr(p, "..")) {
        h->config_error(ctx, n, "'%s' must be a field path like data.amount", name);
        return -1;
    }
    *path = p;
    return 0;
}

static int read_rates(currency *c, sl_ctx *ctx)
{
    const sl_host *h = ctx->host;
    const sl_node *table = h->param(ctx, "rates");
    size_t n = h->node_len(table);
    if (n == 0) {
        h->config_error(ctx, table, "'rates' is empty: give at least the 'to' currency");
        return -1;
    }
    c->rates = calloc(n, sizeof *c->rates);
    if (!c->rates) {
        h->config_error(ctx, table, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        rate *r = &c->rates[c->n_rates++];
        const sl_node *v = h->node_at(table, i);
        r->code = h->node_key(table, i);
        r->len = strlen(r->code);
        if (h->node_double(v, &r->value) != 0 || !isfinite(r->value) || r->value <= 0) {
            h->config_error(ctx, v, "the rate of '%s' must be a number > 0", r->code);
            return -1;
        }
    }
    const sl_node *to = h->param(ctx, "to");
    const char *code = h->node_str(to);
    for (size_t i = 0; code && i < c->n_rates; i++)
        if (strcmp(c->rates[i].code, code) == 0) {
            c->to_value = c->rates[i].value;
            return 0;
        }
    h->config_error(ctx, to, "'to: %s' is not in 'rates'", code ? code : "(not a string)");
    return -1;
}

static int currency_init(sl_ctx *ctx, void **state)
{
    currency *c = calloc(1, sizeof *c);
    *state = c; /* destroy frees it even if init fails */
    if (!c)
        return SL_ERROR;
    /* report every mistake at once, not one per run */
    int bad = path_param(ctx, "field", &c->amount);
    bad |= path_param(ctx, "currency_field", &c->code);
    bad |= path_param(ctx, "into", &c->into);
    bad |= read_rates(c, ctx);
    c->errors_port = ctx->host->port(ctx, "errors");
    return bad ? SL_ERROR : SL_OK;
}

/* --------------------------------------------------------------- the events */

/* Send ev to `errors` with a reason and a detail naming the field; counts it. */
static int reject(currency *c, sl_ctx *ctx, const char *reason, uint64_t *counter,
                  const char *what, const char *field, const uint8_t *ev, size_t len)
{
    char detail[256];
    snprintf(detail, sizeof detail, "%s '%s'", what, field);
    (*counter)++;
    return ctx->host->emit_drop(ctx, c->errors_port, reason, detail, ev, len, NULL, 0);
}

/* Convert one event; returns 0, or -1 when the pipeline must stop (out of memory). */
static int convert(currency *c, sl_ctx *ctx, const uint8_t *ev, size_t len)
{
    const sl_host *h = ctx->host;
    const uint8_t *v;
    size_t vlen;
    sl_mp_val amount, code;
    int rc = h->field_get(ctx, ev, len, c->amount, &v, &vlen);
    if (rc == 0)
        return reject(c, ctx, "missing_field", &c->missing, "no field", c->amount, ev, len);
    if (rc < 0 || sl_mp_read(&v, v + vlen, &amount) != 0 ||
        (amount.type != SL_MP_INT && amount.type != SL_MP_UINT && amount.type != SL_MP_FLOAT))
        return reject(c, ctx, "invalid", &c->invalid, "not a number:", c->amount, ev, len);
    rc = h->field_get(ctx, ev, len, c->code, &v, &vlen);
    if (rc == 0)
        return reject(c, ctx, "missing_field", &c->missing, "no field", c->code, ev, len);
    if (rc < 0 || sl_mp_read(&v, v + vlen, &code) != 0 || code.type != SL_MP_STR)
        return reject(c, ctx, "invalid", &c->invalid, "not a string:", c->code, ev, len);

    const rate *r = NULL;
    for (size_t i = 0; i < c->n_rates && !r; i++)
        if (c->rates[i].len == code.v.str.len &&
            memcmp(c->rates[i].code, code.v.str.ptr, code.v.str.len) == 0)
            r = &c->rates[i];
    if (!r) {
        char detail[256];
        snprintf(detail, sizeof detail, "currency '%.*s' is not in the rate table",
                 (int)(code.v.str.len < 64 ? code.v.str.len : 64), code.v.str.ptr);
        c->unknown++;
        return h->emit_drop(ctx, c->errors_port, "unknown_currency", detail, ev, len, NULL, 0);
    }
    double x = amount.type == SL_MP_FLOAT  ? amount.v.f
               : amount.type == SL_MP_UINT ? (double)amount.v.u
                                           : (double)amount.v.i;
    sl_wbuf_reset(&c->value);
    sl_wbuf_reset(&c->out);
    if (sl_mp_write_double(&c->value, x * r->value / c->to_value) != 0 ||
        h->field_set(ctx, ev, len, c->into, c->value.data, c->value.len, &c->out) != 0) {
        /* field_get found a map, so only memory can be short */
        h->log(ctx, SL_LOG_ERROR, "out of memory writing an event of %zu bytes", len);
        return -1;
    }
    c->converted++;
    return sl_emit(ctx, 0, c->out.data, c->out.len);
}

static int currency_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    currency *c = state;
    (void)input;
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        if (convert(c, ctx, ev, len) != 0)
            return SL_ERROR;
    }
    return SL_OK;
}

/* Counters once at the end: a call per event would cost more than the conversion. */
static int currency_finish(void *state, sl_ctx *ctx)
{
    currency *c = state;
    const sl_host *h = ctx->host;
    h->count(ctx, "converted", c->converted);
    h->count(ctx, "missing_field", c->missing);
    h->count(ctx, "invalid", c->invalid);
    h->count(ctx, "unknown_currency", c->unknown);
    return SL_OK;
}

static void currency_destroy(void *state)
{
    currency *c = state;
    if (!c)
        return;
    sl_wbuf_fini(&c->value);
    sl_wbuf_fini(&c->out);
    free(c->rates);
    free(c);
}

static const sl_operator currency_op = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "example.currency",
    .summary = "Converts an amount into another currency with a rate table (example plugin)",
    .param_size = sizeof(sl_param),
    .params = params,
    .outputs = outputs,
    .init = currency_init,
    .process = currency_process,
    .finish = currency_finish,
    .destroy = currency_destroy,
};

static const sl_operator *const operators[] = {&currency_op, NULL};

static const sl_plugin plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin),
    .name = "example-currency",
    .version = "1.0",
    .operators = operators,
};

/* The one exported symbol (declared first: -Wmissing-prototypes). */
const sl_plugin *sluice_plugin(void);
const sl_plugin *sluice_plugin(void) { return &plugin; }
