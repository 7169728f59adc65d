/*
 * agg_compute.c - the aggregate's compute functions.
 *
 * Values arrive as the msgpack bytes of the argument's result. null is
 * skipped by every function but count() (SQL's rule: aggregates ignore
 * nulls); first/last keep any value. sum keeps integers exact in int64 and
 * switches to a compensated double sum (Neumaier) at the first double or
 * integer overflow; min/max take numbers (compared numerically across int,
 * uint and double) or timestamps.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agg_compute.h"

static const struct {
    const char *name;
    agg_fn fn;
    int args; /* 0, 1, or 2 (the second a constant number) */
} fns[] = {
    {"count", AGG_COUNT, 0},       {"sum", AGG_SUM, 1},
    {"min", AGG_MIN, 1},           {"max", AGG_MAX, 1},
    {"avg", AGG_AVG, 1},           {"count_distinct", AGG_COUNT_DISTINCT, 1},
    {"percentile", AGG_PERCENTILE, 2}, {"first", AGG_FIRST, 1},
    {"last", AGG_LAST, 1},
};

/* Index of the ')' matching the '(' at open, or 0; quotes and brackets respected. */
static size_t closing(const char *s, size_t open, size_t *comma)
{
    int depth = 0;
    char quote = 0;
    *comma = 0;
    for (size_t i = open; s[i]; i++) {
        char c = s[i];
        if (quote) {
            if (c == '\\' && s[i + 1])
                i++;
            else if (c == quote)
                quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '(' || c == '[' || c == '{') {
            depth++;
        } else if (c == ')' || c == ']' || c == '}') {
            if (--depth == 0)
                return c == ')' ? i : 0;
        } else if (c == ',' && depth == 1 && !*comma) {
            *comma = i;
        }
    }
    return 0;
}

int agg_compute_parse(sl_ctx *ctx, const sl_node *at, const char *name, const char *text,
                      agg_compute *out)
{
    const sl_host *h = ctx->host;
    memset(out, 0, sizeof *out);
    out->name = name;
    out->text = text;
    size_t n = strspn(text, "abcdefghijklmnopqrstuvwxyz_");
    size_t open = n + strspn(text + n, " ");
    size_t k = 0;
    while (k < sizeof fns / sizeof *fns && (strlen(fns[k].name) != n || strncmp(fns[k].name, text, n)))
        k++;
    if (k == sizeof fns / sizeof *fns || text[open] != '(') {
        h->config_error(ctx, at, "'%s': expected one of count(), sum(x), min(x), max(x), avg(x), "
                                 "count_distinct(x), percentile(x, q), first(x), last(x)", text);
        return -1;
    }
    out->fn = fns[k].fn;
    size_t comma, close = closing(text, open, &comma);
    if (!close || text[close + 1 + strspn(text + close + 1, " ")] != '\0') {
        h->config_error(ctx, at, "'%s': unbalanced parentheses or text after the call", text);
        return -1;
    }
    size_t arg_end = comma ? comma : close;
    char *arg = strndup(text + open + 1, arg_end - open - 1);
    if (!arg)
        return -1;
    int empty = arg[strspn(arg, " ")] == '\0';
    int rc = 0;
    if (fns[k].args == 0 && (!empty || comma)) {
        h->config_error(ctx, at, "%s() takes no argument", fns[k].name);
        rc = -1;
    } else if (fns[k].args > 0 && (empty || (fns[k].args == 1) != !comma)) {
        h->config_error(ctx, at, fns[k].args == 1 ? "%s(x) takes one argument"
                                                  : "%s(x, q) takes two arguments", fns[k].name);
        rc = -1;
    } else if (fns[k].args > 0 && !(out->arg = h->expr_compile(ctx, at, arg, NULL))) {
        rc = -1; /* reported at the node */
    } else if (fns[k].args == 2) {
        char *end;
        out->q = strtod(text + comma + 1, &end);
        int parsed = end != text + comma + 1;
        end += strspn(end, " ");
        if (!parsed || end != text + close || !(out->q >= 0 && out->q <= 1)) {
            h->config_error(ctx, at, "percentile(x, q): q must be a number from 0 to 1");
            rc = -1;
        }
    }
    free(arg);
    return rc;
}

void agg_acc_init(const agg_compute *c, agg_acc *a)
{
    (void)c;
    memset(a, 0, sizeof *a);
}

void agg_acc_fini(const agg_compute *c, agg_acc *a)
{
    switch (c->fn) {
    case AGG_COUNT_DISTINCT:
        if (a->u.hll) {
            sl_hll_fini(a->u.hll);
            free(a->u.hll);
        }
        break;
    case AGG_PERCENTILE:
        if (a->u.qs) {
            sl_qsketch_fini(a->u.qs);
            free(a->u.qs);
        }
        break;
    case AGG_FIRST:
    case AGG_LAST:
        free(a->u.fl.bytes);
        break;
    default:
        break;
    }
    memset(a, 0, sizeof *a);
}

/* A number (or timestamp) value; 0, 1 for null, -1 for anything else. */
static int read_num(const uint8_t *val, size_t len, agg_num *n, int timestamps)
{
    const uint8_t *p = val;
    sl_mp_val v;
    if (sl_mp_read(&p, val + len, &v) != 0)
        return -1;
    switch (v.type) {
    case SL_MP_NIL: return 1;
    case SL_MP_INT: n->kind = SL_MP_INT; n->v.i = v.v.i; return 0;
    case SL_MP_UINT:
        if (v.v.u <= INT64_MAX) {
            n->kind = SL_MP_INT;
            n->v.i = (int64_t)v.v.u;
        } else {
            n->kind = SL_MP_UINT;
            n->v.u = v.v.u;
        }
        return 0;
    case SL_MP_FLOAT:
        if (isnan(v.v.f))
            return -1;
        n->kind = SL_MP_FLOAT;
        n->v.d = v.v.f;
        return 0;
    case SL_MP_EXT:
        if (timestamps && sl_mp_timestamp_ns(&v, &n->v.i) == 0) {
            n->kind = SL_MP_EXT;
            return 0;
        }
        return -1;
    default: return -1;
    }
}

static double as_double(const agg_num *n)
{
    return n->kind == SL_MP_FLOAT ? n->v.d : n->kind == SL_MP_UINT ? (double)n->v.u : (double)n->v.i;
}

/* <0, 0, >0; numbers numerically (exact between integers), timestamps by time. */
static int num_cmp(const agg_num *a, const agg_num *b)
{
    if (a->kind != SL_MP_FLOAT && b->kind != SL_MP_FLOAT) {
        if (a->kind == SL_MP_UINT || b->kind == SL_MP_UINT) {
            if (a->kind != b->kind)
                return a->kind == SL_MP_UINT ? 1 : -1; /* a uint here is above INT64_MAX */
            return a->v.u < b->v.u ? -1 : a->v.u > b->v.u;
        }
        return a->v.i < b->v.i ? -1 : a->v.i > b->v.i;
    }
    double x = as_double(a), y = as_double(b);
    return x < y ? -1 : x > y;
}

static void neumaier(agg_acc *a, double x)
{
    double t = a->u.sum.hi + x;
    if (fabs(a->u.sum.hi) >= fabs(x))
        a->u.sum.lo += (a->u.sum.hi - t) + x;
    else
        a->u.sum.lo += (x - t) + a->u.sum.hi;
    a->u.sum.hi = t;
}

int agg_acc_add(const agg_compute *c, agg_acc *a, const uint8_t *val, size_t len, int64_t t,
                const char **why)
{
    agg_num n;
    int r;
    switch (c->fn) {
    case AGG_COUNT:
        a->u.count++;
        return 0;
    case AGG_SUM:
    case AGG_AVG:
        if ((r = read_num(val, len, &n, 0)) != 0) {
            *why = "is not a number";
            return r > 0 ? 0 : -1;
        }
        a->u.sum.n++;
        if (n.kind == SL_MP_INT && !a->u.sum.doubles &&
            !__builtin_add_overflow(a->u.sum.i, n.v.i, &a->u.sum.i))
            return 0;
        if (!a->u.sum.doubles) { /* from here on a double sum */
            a->u.sum.doubles = 1;
            neumaier(a, (double)a->u.sum.i);
            a->u.sum.i = 0;
        }
        neumaier(a, as_double(&n));
        return 0;
    case AGG_MIN:
    case AGG_MAX:
        if ((r = read_num(val, len, &n, 1)) != 0) {
            *why = "is not a number or a timestamp";
            return r > 0 ? 0 : -1;
        }
        if (a->u.mm.kind && (a->u.mm.kind == SL_MP_EXT) != (n.kind == SL_MP_EXT)) {
            *why = "mixes numbers and timestamps";
            return -1;
        }
        if (!a->u.mm.kind || (c->fn == AGG_MIN ? num_cmp(&n, &a->u.mm) < 0 : num_cmp(&n, &a->u.mm) > 0))
            a->u.mm = n;
        return 0;
    case AGG_COUNT_DISTINCT:
        if (len == 1 && val[0] == 0xc0)
            return 0;
        if (!a->u.hll) {
            if (!(a->u.hll = malloc(sizeof *a->u.hll)))
                return -2;
            sl_hll_init(a->u.hll);
        }
        return sl_hll_add(a->u.hll, sl_hash_bytes(val, len)) == 0 ? 0 : -2;
    case AGG_PERCENTILE:
        if ((r = read_num(val, len, &n, 0)) != 0) {
            *why = "is not a number";
            return r > 0 ? 0 : -1;
        }
        if (!a->u.qs) {
            if (!(a->u.qs = malloc(sizeof *a->u.qs)))
                return -2;
            sl_qsketch_init(a->u.qs);
        }
        if (sl_qsketch_add(a->u.qs, as_double(&n)) != 0) {
            *why = "is not a finite number";
            return -1;
        }
        return 0;
    case AGG_FIRST:
    case AGG_LAST:
        if (a->u.fl.bytes && (c->fn == AGG_FIRST ? t >= a->u.fl.t : t < a->u.fl.t))
            return 0; /* ties: first keeps the earliest arrival, last takes the latest */
        if (len > a->u.fl.len || !a->u.fl.bytes) {
            uint8_t *b = realloc(a->u.fl.bytes, len);
            if (!b)
                return -2;
            a->u.fl.bytes = b;
        }
        memcpy(a->u.fl.bytes, val, len);
        a->u.fl.len = (uint32_t)len;
        a->u.fl.t = t;
        return 0;
    }
    return -1;
}

int agg_acc_write(const agg_compute *c, const agg_acc *a, sl_wbuf *w)
{
    double d;
    switch (c->fn) {
    case AGG_COUNT:
        return sl_mp_write_uint(w, a->u.count);
    case AGG_SUM:
        if (!a->u.sum.n)
            return sl_mp_write_nil(w);
        return a->u.sum.doubles ? sl_mp_write_double(w, a->u.sum.hi + a->u.sum.lo)
                                : sl_mp_write_int(w, a->u.sum.i);
    case AGG_AVG:
        if (!a->u.sum.n)
            return sl_mp_write_nil(w);
        d = a->u.sum.doubles ? a->u.sum.hi + a->u.sum.lo : (double)a->u.sum.i;
        return sl_mp_write_double(w, d / (double)a->u.sum.n);
    case AGG_MIN:
    case AGG_MAX:
        switch (a->u.mm.kind) {
        case SL_MP_INT: return sl_mp_write_int(w, a->u.mm.v.i);
        case SL_MP_UINT: return sl_mp_write_uint(w, a->u.mm.v.u);
        case SL_MP_FLOAT: return sl_mp_write_double(w, a->u.mm.v.d);
        case SL_MP_EXT: return sl_mp_write_timestamp(w, a->u.mm.v.i);
        default: return sl_mp_write_nil(w);
        }
    case AGG_COUNT_DISTINCT:
        return sl_mp_write_uint(w, a->u.hll ? sl_hll_estimate(a->u.hll) : 0);
    case AGG_PERCENTILE:
        if (!a->u.qs || sl_qsketch_quantile(a->u.qs, c->q, &d) != 0)
            return sl_mp_write_nil(w);
        return sl_mp_write_double(w, d);
    case AGG_FIRST:
    case AGG_LAST:
        if (!a->u.fl.bytes)
            return sl_mp_write_nil(w);
        return sl_wbuf_append(w, a->u.fl.bytes, a->u.fl.len);
    }
    return -1;
}

int agg_acc_merge(const agg_compute *c, agg_acc *into, const agg_acc *from, int from_older)
{
    switch (c->fn) {
    case AGG_COUNT:
        into->u.count += from->u.count;
        return 0;
    case AGG_SUM:
    case AGG_AVG:
        into->u.sum.n += from->u.sum.n;
        if (!into->u.sum.doubles && !from->u.sum.doubles &&
            !__builtin_add_overflow(into->u.sum.i, from->u.sum.i, &into->u.sum.i))
            return 0;
        if (!into->u.sum.doubles) {
            into->u.sum.doubles = 1;
            neumaier(into, (double)into->u.sum.i);
            into->u.sum.i = 0;
        }
        if (from->u.sum.doubles) {
            neumaier(into, from->u.sum.hi);
            neumaier(into, from->u.sum.lo);
        } else {
            neumaier(into, (double)from->u.sum.i);
        }
        return 0;
    case AGG_MIN:
    case AGG_MAX:
        if (from->u.mm.kind &&
            (!into->u.mm.kind || (c->fn == AGG_MIN ? num_cmp(&from->u.mm, &into->u.mm) < 0
                                                    : num_cmp(&from->u.mm, &into->u.mm) > 0)))
            into->u.mm = from->u.mm;
        return 0;
    case AGG_COUNT_DISTINCT:
        if (!from->u.hll)
            return 0;
        if (!into->u.hll) {
            if (!(into->u.hll = malloc(sizeof *into->u.hll)))
                return -2;
            sl_hll_init(into->u.hll);
        }
        return sl_hll_merge(into->u.hll, from->u.hll) == 0 ? 0 : -2;
    case AGG_PERCENTILE:
        if (!from->u.qs)
            return 0;
        if (!into->u.qs) {
            if (!(into->u.qs = malloc(sizeof *into->u.qs)))
                return -2;
            sl_qsketch_init(into->u.qs);
        }
        return sl_qsketch_merge(into->u.qs, from->u.qs) == 0 ? 0 : -2;
    case AGG_FIRST:
    case AGG_LAST: {
        if (!from->u.fl.bytes)
            return 0;
        int64_t ft = from->u.fl.t, it = into->u.fl.t;
        int take = !into->u.fl.bytes ||
                   (c->fn == AGG_FIRST ? ft < it || (ft == it && from_older)
                                       : ft > it || (ft == it && !from_older));
        if (!take)
            return 0;
        uint8_t *b = realloc(into->u.fl.bytes, from->u.fl.len ? from->u.fl.len : 1);
        if (!b)
            return -2;
        memcpy(b, from->u.fl.bytes, from->u.fl.len);
        into->u.fl.bytes = b;
        into->u.fl.len = from->u.fl.len;
        into->u.fl.t = ft;
        return 0;
    }
    }
    return -1;
}

size_t agg_acc_memory(const agg_compute *c, const agg_acc *a)
{
    switch (c->fn) {
    case AGG_COUNT_DISTINCT:
        return a->u.hll ? sizeof *a->u.hll + sl_hll_memory(a->u.hll) : 0;
    case AGG_PERCENTILE:
        return a->u.qs ? sizeof *a->u.qs + sl_qsketch_memory(a->u.qs) : 0;
    case AGG_FIRST:
    case AGG_LAST:
        return a->u.fl.bytes ? a->u.fl.len : 0;
    default:
        return 0;
    }
}

static int put_u32(sl_wbuf *w, uint32_t v) { return sl_wbuf_append(w, &v, sizeof v); }

static int get(const uint8_t **p, const uint8_t *end, void *out, size_t n)
{
    if ((size_t)(end - *p) < n)
        return -1;
    memcpy(out, *p, n);
    *p += n;
    return 0;
}

/* A sketch as its serialized length (u32, 0 = none) and bytes. */
static int put_sketch(sl_wbuf *w, size_t n, const void *sk, int hll)
{
    if (!sk)
        return put_u32(w, 0);
    if (put_u32(w, (uint32_t)n) != 0 || sl_wbuf_reserve(w, n) != 0)
        return -1;
    if (hll)
        sl_hll_serialize(sk, w->data + w->len);
    else
        sl_qsketch_serialize(sk, w->data + w->len);
    w->len += n;
    return 0;
}

int agg_acc_encode(const agg_compute *c, const agg_acc *a, sl_wbuf *w)
{
    switch (c->fn) {
    case AGG_COUNT:
        return sl_wbuf_append(w, &a->u.count, sizeof a->u.count);
    case AGG_SUM:
    case AGG_AVG:
        return sl_wbuf_append(w, &a->u.sum, sizeof a->u.sum);
    case AGG_MIN:
    case AGG_MAX:
        return sl_wbuf_append(w, &a->u.mm, sizeof a->u.mm);
    case AGG_COUNT_DISTINCT:
        return put_sketch(w, a->u.hll ? sl_hll_serialized_size(a->u.hll) : 0, a->u.hll, 1);
    case AGG_PERCENTILE:
        return put_sketch(w, a->u.qs ? sl_qsketch_serialized_size(a->u.qs) : 0, a->u.qs, 0);
    case AGG_FIRST:
    case AGG_LAST: {
        uint32_t n = a->u.fl.bytes ? a->u.fl.len + 1 : 0; /* 0: no value yet */
        if (put_u32(w, n) != 0 || sl_wbuf_append(w, &a->u.fl.t, sizeof a->u.fl.t) != 0)
            return -1;
        return n ? sl_wbuf_append(w, a->u.fl.bytes, a->u.fl.len) : 0;
    }
    }
    return -1;
}

int agg_acc_decode(const agg_compute *c, agg_acc *a, const uint8_t **p, const uint8_t *end)
{
    uint32_t n;
    switch (c->fn) {
    case AGG_COUNT:
        return get(p, end, &a->u.count, sizeof a->u.count);
    case AGG_SUM:
    case AGG_AVG:
        return get(p, end, &a->u.sum, sizeof a->u.sum);
    case AGG_MIN:
    case AGG_MAX:
        return get(p, end, &a->u.mm, sizeof a->u.mm);
    case AGG_COUNT_DISTINCT:
        if (get(p, end, &n, sizeof n) != 0 || (size_t)(end - *p) < n)
            return -1;
        if (n) {
            if (!(a->u.hll = malloc(sizeof *a->u.hll)))
                return -1;
            sl_hll_init(a->u.hll);
            if (sl_hll_deserialize(a->u.hll, *p, n) != 0)
                return -1; /* the caller's fini frees it */
        }
        *p += n;
        return 0;
    case AGG_PERCENTILE:
        if (get(p, end, &n, sizeof n) != 0 || (size_t)(end - *p) < n)
            return -1;
        if (n) {
            if (!(a->u.qs = malloc(sizeof *a->u.qs)))
                return -1;
            sl_qsketch_init(a->u.qs);
            if (sl_qsketch_deserialize(a->u.qs, *p, n) != 0)
                return -1;
        }
        *p += n;
        return 0;
    case AGG_FIRST:
    case AGG_LAST:
        if (get(p, end, &n, sizeof n) != 0 || get(p, end, &a->u.fl.t, sizeof a->u.fl.t) != 0)
            return -1;
        if (!n)
            return 0;
        if ((size_t)(end - *p) < n - 1 || !(a->u.fl.bytes = malloc(n)))
            return -1;
        memcpy(a->u.fl.bytes, *p, n - 1);
        a->u.fl.len = n - 1;
        *p += n - 1;
        return 0;
    }
    return -1;
}
