/*
 * filter_spec.c - seed-style filter spec -> expression text.
 *
 *   types: [order.created]            type in ["order.created"]
 *   sources: [svc]                    source in ["svc"]
 *   start_time: 2026-01-01T00:00:00Z  time >= timestamp("2026-01-01T00:00:00Z")
 *   end_time: ...                     time < timestamp("...")
 *   data:
 *     status: PAID                    data.status == "PAID"
 *     total: {gt: 100, lte: 500}      data.total > 100 && data.total <= 500
 *     customerId: {in: [a, b]}        data.customerId in ["a", "b"]
 *
 * Scalars keep their YAML meaning: a quoted or non-numeric value is a
 * string, 100 an int, 100.5 a double, true/false a bool, null null (CEL
 * compares int and double values numerically, so `gt: 100` works on a
 * double field). Field names that are not identifiers use data["odd key"];
 * a dotted name is a path (customer.tier -> data.customer.tier).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter_spec.h"
#include "timefmt.h"

typedef struct text {
    char *s;
    size_t len, cap;
    int bad;
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->bad)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->s, cap);
        if (!p) {
            t->bad = 1;
            return;
        }
        t->s = p;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void puts_(text *t, const char *s) { put(t, s, strlen(s)); }

/* A CEL string literal with every byte that needs it escaped. */
static void put_string(text *t, const char *s)
{
    puts_(t, "\"");
    for (; *s; s++) {
        char buf[8];
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[0] = '\\';
            buf[1] = (char)c;
            put(t, buf, 2);
        } else if (c < 0x20) {
            snprintf(buf, sizeof buf, "\\x%02x", c);
            puts_(t, buf);
        } else {
            put(t, (const char *)&c, 1);
        }
    }
    puts_(t, "\"");
}

static int is_number(const char *s, int *is_int)
{
    char *end;
    if (!*s)
        return 0;
    strtoll(s, &end, 10);
    if (*end == '\0') {
        *is_int = 1;
        return 1;
    }
    strtod(s, &end);
    *is_int = 0;
    return *end == '\0' && strspn(s, "0123456789+-.eE") == strlen(s);
}

/* A scalar node as a literal, with its YAML meaning. */
static void put_literal(sl_ctx *ctx, text *t, const sl_node *n)
{
    const sl_host *h = ctx->host;
    const char *s = h->node_str(n);
    int is_int, b;
    if (!s || !*s || strcmp(s, "null") == 0 || strcmp(s, "~") == 0)
        puts_(t, s && *s ? "null" : "\"\"");
    else if (is_number(s, &is_int)) {
        /* re-print so the text is a CEL literal: no unary plus, no "5." */
        char buf[40];
        if (is_int)
            snprintf(buf, sizeof buf, "%lld", strtoll(s, NULL, 10));
        else {
            snprintf(buf, sizeof buf, "%.17g", strtod(s, NULL));
            if (!strpbrk(buf, ".eEn"))
                strcat(buf, ".0"); /* stays a double */
        }
        puts_(t, buf);
    }
    else if (h->node_bool(n, &b) == 0 && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0))
        puts_(t, b ? "true" : "false");
    else
        put_string(t, s);
}

static int is_ident(const char *s, size_t n)
{
    if (!n || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* data.<field> with each dotted segment as .name or ["name"]. */
static void put_field(text *t, const char *field)
{
    puts_(t, "data");
    const char *p = field;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (is_ident(p, n)) {
            puts_(t, ".");
            put(t, p, n);
        } else {
            char *seg = strndup(p, n);
            puts_(t, "[");
            put_string(t, seg ? seg : "");
            puts_(t, "]");
            free(seg);
        }
        if (!dot)
            break;
        p = dot + 1;
    }
}

static void and_(text *t)
{
    if (t->len)
        puts_(t, " && ");
}

/* `<what> in [...]` from a list of scalars. Returns 0 or -1 (reported). */
static int put_in_list(sl_ctx *ctx, text *t, const sl_node *list, const char *what)
{
    const sl_host *h = ctx->host;
    if (h->node_kind(list) != SL_NODE_SEQ) {
        h->config_error(ctx, list, "'%s' expects a list", what);
        return -1;
    }
    puts_(t, " in [");
    for (size_t i = 0; i < h->node_len(list); i++) {
        const sl_node *v = h->node_at(list, i);
        if (h->node_kind(v) != SL_NODE_SCALAR) {
            h->config_error(ctx, v, "'%s' expects a list of values", what);
            return -1;
        }
        if (i)
            puts_(t, ", ");
        put_literal(ctx, t, v);
    }
    puts_(t, "]");
    return 0;
}

static int data_condition(sl_ctx *ctx, text *t, const char *field, const sl_node *v)
{
    static const struct {
        const char *key, *op;
    } ops[] = {{"eq", " == "}, {"ne", " != "}, {"gt", " > "},
               {"gte", " >= "}, {"lt", " < "}, {"lte", " <= "}};
    const sl_host *h = ctx->host;
    if (h->node_kind(v) == SL_NODE_SCALAR) {
        and_(t);
        put_field(t, field);
        puts_(t, " == ");
        put_literal(ctx, t, v);
        return 0;
    }
    if (h->node_kind(v) != SL_NODE_MAP || h->node_len(v) == 0) {
        h->config_error(ctx, v, "condition on data.%s must be a value or {in, gt, gte, lt, lte, ne}",
                        field);
        return -1;
    }
    for (size_t i = 0; i < h->node_len(v); i++) {
        const char *k = h->node_key(v, i);
        const sl_node *arg = h->node_at(v, i);
        and_(t);
        if (strcmp(k, "in") == 0) {
            put_field(t, field);
            if (put_in_list(ctx, t, arg, "in") != 0)
                return -1;
            continue;
        }
        size_t j = 0;
        while (j < sizeof ops / sizeof *ops && strcmp(ops[j].key, k) != 0)
            j++;
        if (j == sizeof ops / sizeof *ops || h->node_kind(arg) != SL_NODE_SCALAR) {
            h->config_error(ctx, arg, "unknown condition '%s' on data.%s (expected in, eq, ne, "
                                      "gt, gte, lt or lte with a value)", k, field);
            return -1;
        }
        put_field(t, field);
        puts_(t, ops[j].op);
        put_literal(ctx, t, arg);
    }
    return 0;
}

int sl_filter_spec_text(sl_ctx *ctx, char **out, const sl_node **at)
{
    const sl_host *h = ctx->host;
    text t = {0};
    *out = NULL;
    *at = NULL;
    const sl_node *n;
    if ((n = h->param(ctx, "types"))) {
        *at = n;
        puts_(&t, "type");
        if (put_in_list(ctx, &t, n, "types") != 0)
            goto err;
    }
    if ((n = h->param(ctx, "sources"))) {
        *at = *at ? *at : n;
        and_(&t);
        puts_(&t, "source");
        if (put_in_list(ctx, &t, n, "sources") != 0)
            goto err;
    }
    static const char *const times[][2] = {{"start_time", " >= "}, {"end_time", " < "}};
    for (int i = 0; i < 2; i++) {
        if (!(n = h->param(ctx, times[i][0])))
            continue;
        *at = *at ? *at : n;
        const char *when = h->node_str(n);
        int64_t ns;
        if (h->node_kind(n) != SL_NODE_SCALAR || !when || sl_time_parse(when, strlen(when), &ns) != 0) {
            h->config_error(ctx, n, "%s: '%s' is not an RFC 3339 time (such as 2026-01-01T00:00:00Z)",
                            times[i][0], when ? when : "");
            goto err;
        }
        and_(&t);
        puts_(&t, "time");
        puts_(&t, times[i][1]);
        puts_(&t, "timestamp(");
        put_string(&t, h->node_str(n));
        puts_(&t, ")");
    }
    if ((n = h->param(ctx, "data"))) {
        *at = *at ? *at : n;
        for (size_t i = 0; i < h->node_len(n); i++)
            if (data_condition(ctx, &t, h->node_key(n, i), h->node_at(n, i)) != 0)
                goto err;
    }
    if (t.bad)
        goto err;
    *out = t.s;
    return 0;
err:
    free(t.s);
    return -1;
}
