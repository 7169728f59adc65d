/*
 * expr_func.c - the built-in functions: their signatures (what the checker
 * resolves calls against) and their implementations (what OP_CALL runs).
 *
 * A function is callable as a global f(x, ...), as a method x.f(...), or
 * both; either way the receiver is argument 0. A signature row is {result,
 * param0, param1, param2} with SL_EXPR_DYN matching anything. Arguments
 * reach an implementation already free of errors (OP_CALL propagates the
 * first error); an implementation checks kinds itself, since arguments read
 * from events are only typed at run time.
 *
 * Conversions follow cel-go: int(double) truncates and refuses values out of
 * range or NaN, int(timestamp) is Unix seconds, int(duration) nanoseconds,
 * string(double) is Go's %g (shortest round-trip), string(duration) is
 * seconds ("1.5s"), string(bytes) must be valid UTF-8. Timestamp accessors
 * (getHours() ...) are UTC only: no time-zone argument.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr_internal.h"
#include "timefmt.h"

enum {
    D = SL_EXPR_DYN,
    B = SL_EXPR_BOOL,
    I = SL_EXPR_INT,
    U = SL_EXPR_UINT,
    F = SL_EXPR_DOUBLE,
    S = SL_EXPR_STRING,
    Y = SL_EXPR_BYTES,
    L = SL_EXPR_LIST,
    M = SL_EXPR_MAP,
    T = SL_EXPR_TIMESTAMP,
    R = SL_EXPR_DURATION
};

static sl__xval mk(int kind)
{
    sl__xval v;
    memset(&v, 0, sizeof v);
    v.kind = (uint8_t)kind;
    return v;
}

static sl__xval mkbool(bool b)
{
    sl__xval v = mk(XK_BOOL);
    v.v.b = b;
    return v;
}

static sl__xval mkint(int kind, int64_t i)
{
    sl__xval v = mk(kind);
    v.v.i = i;
    return v;
}

static sl__xval mkstr(sl_expr_vm *vm, const char *s, size_t n)
{
    char *p = sl__xarena_strdup(&vm->arena, s, n);
    if (!p) return sl__xstatic_err("out of memory");
    sl__xval v = mk(XK_STRING);
    v.v.s = p;
    v.len = (uint32_t)n;
    return v;
}

#define NOOVERLOAD(name) sl__xnooverload(vm, name, args, n)

static void fn_size(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    const sl__xval *a = &args[0];
    if (a->kind == XK_STRING) {
        *out = mkint(XK_INT, sl__xutf8_count(a->v.s, a->len));
    } else if (a->kind == XK_BYTES) {
        *out = mkint(XK_INT, a->len);
    } else if (a->kind == XK_LIST || a->kind == XK_MAP) {
        int64_t c = sl__xcount(a);
        *out = c < 0 ? sl__xstatic_err("malformed msgpack") : mkint(XK_INT, c);
    } else {
        *out = NOOVERLOAD("size");
    }
}

static int two_strings(const sl__xval *args)
{
    return args[0].kind == XK_STRING && args[1].kind == XK_STRING;
}

static void fn_starts(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    if (!two_strings(args)) {
        *out = NOOVERLOAD("startsWith");
        return;
    }
    const sl__xval *s = &args[0], *p = &args[1];
    *out = mkbool(p->len <= s->len && (p->len == 0 || memcmp(s->v.s, p->v.s, p->len) == 0));
}

static void fn_ends(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    if (!two_strings(args)) {
        *out = NOOVERLOAD("endsWith");
        return;
    }
    const sl__xval *s = &args[0], *p = &args[1];
    *out = mkbool(p->len <= s->len &&
                  (p->len == 0 || memcmp(s->v.s + s->len - p->len, p->v.s, p->len) == 0));
}

static void fn_contains(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    if (!two_strings(args)) {
        *out = NOOVERLOAD("contains");
        return;
    }
    const sl__xval *s = &args[0], *p = &args[1];
    *out = mkbool(p->len == 0 || (s->len && memmem(s->v.s, s->len, p->v.s, p->len) != NULL));
}

static void change_case(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out, int upper)
{
    if (args[0].kind != XK_STRING) {
        *out = NOOVERLOAD(upper ? "upper" : "lower");
        return;
    }
    *out = mkstr(vm, args[0].v.s, args[0].len);
    if (out->kind != XK_STRING) return;
    char *p = (char *)out->v.s;
    for (uint32_t i = 0; i < out->len; i++) {
        if (upper && p[i] >= 'a' && p[i] <= 'z')
            p[i] = (char)(p[i] - 'a' + 'A');
        else if (!upper && p[i] >= 'A' && p[i] <= 'Z')
            p[i] = (char)(p[i] - 'A' + 'a');
    }
}

static void fn_lower(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    change_case(vm, args, n, out, 0);
}

static void fn_upper(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    change_case(vm, args, n, out, 1);
}

/* A NUL-terminated copy of a string argument with no leading space, for strto*. */
static const char *cstr(sl_expr_vm *vm, const sl__xval *s)
{
    if (s->len == 0 || s->v.s[0] == ' ' || (s->v.s[0] >= '\t' && s->v.s[0] <= '\r') ||
        memchr(s->v.s, '\0', s->len))
        return NULL;
    return sl__xarena_strdup(&vm->arena, s->v.s, s->len);
}

static sl__xval bad_conversion(sl_expr_vm *vm, const sl__xval *s, const char *to)
{
    return sl__xerr(vm, "cannot convert '%.*s' to %s", (int)(s->len > 64 ? 64 : s->len), s->v.s,
                    to);
}

static void fn_int(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    const sl__xval *a = &args[0];
    switch (a->kind) {
    case XK_INT:
        *out = *a;
        return;
    case XK_DURATION:
        *out = mkint(XK_INT, a->v.i);
        return;
    case XK_TIMESTAMP: {
        int64_t s = a->v.i / 1000000000;
        if (a->v.i % 1000000000 < 0) s--;
        *out = mkint(XK_INT, s);
        return;
    }
    case XK_UINT:
        *out = a->v.u > (uint64_t)INT64_MAX ? sl__xstatic_err("range error converting uint to int")
                                            : mkint(XK_INT, (int64_t)a->v.u);
        return;
    case XK_DOUBLE:
        if (!(a->v.d > -9223372036854775809.0 && a->v.d < 9223372036854775808.0))
            *out = sl__xstatic_err("range error converting double to int");
        else
            *out = mkint(XK_INT, (int64_t)a->v.d);
        return;
    case XK_STRING: {
        const char *c = cstr(vm, a);
        char *end;
        errno = 0;
        long long v = c ? strtoll(c, &end, 10) : 0;
        if (!c || *end || errno)
            *out = bad_conversion(vm, a, "int");
        else
            *out = mkint(XK_INT, v);
        return;
    }
    default:
        *out = NOOVERLOAD("int");
    }
}

static void fn_uint(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    const sl__xval *a = &args[0];
    sl__xval r = mk(XK_UINT);
    switch (a->kind) {
    case XK_UINT:
        *out = *a;
        return;
    case XK_INT:
        if (a->v.i < 0) {
            *out = sl__xstatic_err("range error converting int to uint");
            return;
        }
        r.v.u = (uint64_t)a->v.i;
        break;
    case XK_DOUBLE:
        if (!(a->v.d > -1.0 && a->v.d < 18446744073709551616.0)) {
            *out = sl__xstatic_err("range error converting double to uint");
            return;
        }
        r.v.u = (uint64_t)a->v.d;
        break;
    case XK_STRING: {
        const char *c = cstr(vm, a);
        char *end;
        errno = 0;
        unsigned long long v = c && c[0] != '-' && c[0] != '+' ? strtoull(c, &end, 10) : 0;
        if (!c || c[0] == '-' || c[0] == '+' || *end || errno) {
            *out = bad_conversion(vm, a, "uint");
            return;
        }
        r.v.u = v;
        break;
    }
    default:
        *out = NOOVERLOAD("uint");
        return;
    }
    *out = r;
}

static void fn_double(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    const sl__xval *a = &args[0];
    sl__xval r = mk(XK_DOUBLE);
    switch (a->kind) {
    case XK_DOUBLE:
        *out = *a;
        return;
    case XK_INT:
        r.v.d = (double)a->v.i;
        break;
    case XK_UINT:
        r.v.d = (double)a->v.u;
        break;
    case XK_STRING: {
        const char *c = cstr(vm, a);
        char *end;
        errno = 0;
        double v = c ? strtod(c, &end) : 0;
        if (!c || *end || (errno == ERANGE && fabs(v) > 1)) {
            *out = bad_conversion(vm, a, "double");
            return;
        }
        r.v.d = v;
        break;
    }
    default:
        *out = NOOVERLOAD("double");
        return;
    }
    *out = r;
}

/* Go's %g (strconv 'g', -1): shortest round-trip digits; exponent form below 1e-4 and from 1e6. */
static size_t format_double(double d, char *buf)
{
    if (isnan(d)) return (size_t)snprintf(buf, 40, "NaN");
    if (isinf(d)) return (size_t)snprintf(buf, 40, d > 0 ? "+Inf" : "-Inf");
    char e[40];
    int p;
    for (p = 1; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, d);
        if (strtod(e, NULL) == d) break;
    }
    snprintf(e, sizeof e, "%.*e", p - 1, d);
    int exp = atoi(strchr(e, 'e') + 1);
    if (exp < -4 || exp >= 6) return (size_t)snprintf(buf, 40, "%s", e);
    int frac = p - 1 - exp;
    return (size_t)snprintf(buf, 40, "%.*f", frac > 0 ? frac : 0, d);
}

static void fn_string(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    const sl__xval *a = &args[0];
    char buf[48];
    size_t len;
    switch (a->kind) {
    case XK_STRING:
        *out = *a;
        return;
    case XK_BYTES:
        if (!sl__xutf8_valid(a->v.s, a->len)) {
            *out = sl__xstatic_err("invalid UTF-8 in bytes, cannot convert to string");
            return;
        }
        *out = *a;
        out->kind = XK_STRING;
        return;
    case XK_BOOL:
        len = (size_t)snprintf(buf, sizeof buf, "%s", a->v.b ? "true" : "false");
        break;
    case XK_INT:
        len = (size_t)snprintf(buf, sizeof buf, "%lld", (long long)a->v.i);
        break;
    case XK_UINT:
        len = (size_t)snprintf(buf, sizeof buf, "%llu", (unsigned long long)a->v.u);
        break;
    case XK_DOUBLE:
        len = format_double(a->v.d, buf);
        break;
    case XK_TIMESTAMP:
        len = sl_time_format(a->v.i, buf);
        break;
    case XK_DURATION:
        len = sl__xduration_format(a->v.i, buf);
        break;
    default:
        *out = NOOVERLOAD("string");
        return;
    }
    *out = mkstr(vm, buf, len);
}

static void fn_bytes(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    if (args[0].kind != XK_STRING && args[0].kind != XK_BYTES) {
        *out = NOOVERLOAD("bytes");
        return;
    }
    *out = args[0];
    out->kind = XK_BYTES;
}

static void fn_bool(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    static const char *const yes[] = {"1", "t", "true", "TRUE", "True"};
    static const char *const no[] = {"0", "f", "false", "FALSE", "False"};
    const sl__xval *a = &args[0];
    if (a->kind == XK_BOOL) {
        *out = *a;
        return;
    }
    if (a->kind != XK_STRING) {
        *out = NOOVERLOAD("bool");
        return;
    }
    for (size_t i = 0; i < 5; i++) {
        if (strlen(yes[i]) == a->len && memcmp(yes[i], a->v.s, a->len) == 0) {
            *out = mkbool(true);
            return;
        }
        if (strlen(no[i]) == a->len && memcmp(no[i], a->v.s, a->len) == 0) {
            *out = mkbool(false);
            return;
        }
    }
    *out = bad_conversion(vm, a, "bool");
}

static void fn_timestamp(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    const sl__xval *a = &args[0];
    int64_t ns;
    switch (a->kind) {
    case XK_TIMESTAMP:
        *out = *a;
        return;
    case XK_STRING:
        if (sl_time_parse(a->v.s, a->len, &ns) != 0)
            *out = sl__xerr(vm, "invalid timestamp '%.*s' (want RFC 3339)",
                            (int)(a->len > 64 ? 64 : a->len), a->v.s);
        else
            *out = mkint(XK_TIMESTAMP, ns);
        return;
    case XK_INT:
        if (__builtin_mul_overflow(a->v.i, (int64_t)1000000000, &ns))
            *out = sl__xstatic_err("timestamp out of range");
        else
            *out = mkint(XK_TIMESTAMP, ns);
        return;
    default:
        *out = NOOVERLOAD("timestamp");
    }
}

static void fn_duration(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    const sl__xval *a = &args[0];
    int64_t ns;
    if (a->kind == XK_DURATION) {
        *out = *a;
    } else if (a->kind == XK_STRING) {
        if (sl__xduration_parse(a->v.s, a->len, &ns) != 0)
            *out = sl__xerr(vm, "invalid duration '%.*s' (e.g. \"1h30m\", \"1.5s\", \"100ms\")",
                            (int)(a->len > 64 ? 64 : a->len), a->v.s);
        else
            *out = mkint(XK_DURATION, ns);
    } else {
        *out = NOOVERLOAD("duration");
    }
}

static void fn_dyn(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)
{
    (void)vm;
    (void)n;
    *out = args[0];
}

/* Timestamp accessors (UTC) and duration totals. */
enum { G_YEAR, G_MONTH, G_DATE, G_DOM, G_DOW, G_DOY, G_HOURS, G_MINUTES, G_SECONDS, G_MILLIS };

static void time_get(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out, int what,
                     const char *name)
{
    const sl__xval *a = &args[0];
    if (a->kind == XK_DURATION && what >= G_HOURS) {
        static const int64_t div[] = {INT64_C(3600000000000), INT64_C(60000000000), 1000000000,
                                      1000000};
        *out = mkint(XK_INT, a->v.i / div[what - G_HOURS]);
        return;
    }
    if (a->kind != XK_TIMESTAMP) {
        *out = NOOVERLOAD(name);
        return;
    }
    sl__xcivil_t c;
    sl__xcivil(a->v.i, &c);
    int64_t r = 0;
    switch (what) {
    case G_YEAR:
        r = c.year;
        break;
    case G_MONTH:
        r = c.month - 1;
        break;
    case G_DATE:
        r = c.day;
        break;
    case G_DOM:
        r = c.day - 1;
        break;
    case G_DOW:
        r = c.weekday;
        break;
    case G_DOY:
        r = c.yday;
        break;
    case G_HOURS:
        r = c.nanos / INT64_C(3600000000000);
        break;
    case G_MINUTES:
        r = c.nanos / INT64_C(60000000000) % 60;
        break;
    case G_SECONDS:
        r = c.nanos / 1000000000 % 60;
        break;
    case G_MILLIS:
        r = c.nanos / 1000000 % 1000;
        break;
    }
    *out = mkint(XK_INT, r);
}

#define GETTER(fname, what, name)                                                                  \
    static void fname(sl_expr_vm *vm, const sl__xval *args, uint32_t n, sl__xval *out)             \
    {                                                                                              \
        time_get(vm, args, n, out, what, name);                                                    \
    }
GETTER(fn_get_year, G_YEAR, "getFullYear")
GETTER(fn_get_month, G_MONTH, "getMonth")
GETTER(fn_get_date, G_DATE, "getDate")
GETTER(fn_get_dom, G_DOM, "getDayOfMonth")
GETTER(fn_get_dow, G_DOW, "getDayOfWeek")
GETTER(fn_get_doy, G_DOY, "getDayOfYear")
GETTER(fn_get_hours, G_HOURS, "getHours")
GETTER(fn_get_minutes, G_MINUTES, "getMinutes")
GETTER(fn_get_seconds, G_SECONDS, "getSeconds")
GETTER(fn_get_millis, G_MILLIS, "getMilliseconds")

static const uint8_t sig_matches[][4] = {{B, S, S}};
static const uint8_t sig_size[][4] = {{I, S}, {I, Y}, {I, L}, {I, M}};
static const uint8_t sig_str_str_bool[][4] = {{B, S, S}};
static const uint8_t sig_str_str[][4] = {{S, S}};
static const uint8_t sig_int[][4] = {{I, I}, {I, U}, {I, F}, {I, S}, {I, T}, {I, R}};
static const uint8_t sig_uint[][4] = {{U, I}, {U, U}, {U, F}, {U, S}};
static const uint8_t sig_double[][4] = {{F, I}, {F, U}, {F, F}, {F, S}};
static const uint8_t sig_string[][4] = {{S, S}, {S, Y}, {S, B}, {S, I},
                                        {S, U}, {S, F}, {S, T}, {S, R}};
static const uint8_t sig_bytes[][4] = {{Y, S}, {Y, Y}};
static const uint8_t sig_bool[][4] = {{B, B}, {B, S}};
static const uint8_t sig_timestamp[][4] = {{T, S}, {T, T}, {T, I}};
static const uint8_t sig_duration[][4] = {{R, S}, {R, R}};
static const uint8_t sig_dyn[][4] = {{D, D}};
static const uint8_t sig_ts_get[][4] = {{I, T}};
static const uint8_t sig_time_get[][4] = {{I, T}, {I, R}};

#define SIGS(s) s, (uint8_t)(sizeof s / sizeof s[0])

const sl__xfunc sl__xfuncs[] = {
    /* SL__XFN_MATCHES first: compiled to OP_MATCH with its precompiled regex */
    {"matches", 1, 1, 2, 1, NULL, SIGS(sig_matches)},
    {"size", 1, 1, 1, 1, fn_size, SIGS(sig_size)},
    {"startsWith", 0, 1, 2, 1, fn_starts, SIGS(sig_str_str_bool)},
    {"endsWith", 0, 1, 2, 1, fn_ends, SIGS(sig_str_str_bool)},
    {"contains", 0, 1, 2, 1, fn_contains, SIGS(sig_str_str_bool)},
    {"lower", 0, 1, 1, 1, fn_lower, SIGS(sig_str_str)},
    {"upper", 0, 1, 1, 1, fn_upper, SIGS(sig_str_str)},
    {"lowerAscii", 0, 1, 1, 1, fn_lower, SIGS(sig_str_str)},
    {"upperAscii", 0, 1, 1, 1, fn_upper, SIGS(sig_str_str)},
    {"int", 1, 0, 1, 1, fn_int, SIGS(sig_int)},
    {"uint", 1, 0, 1, 1, fn_uint, SIGS(sig_uint)},
    {"double", 1, 0, 1, 1, fn_double, SIGS(sig_double)},
    {"string", 1, 0, 1, 1, fn_string, SIGS(sig_string)},
    {"bytes", 1, 0, 1, 1, fn_bytes, SIGS(sig_bytes)},
    {"bool", 1, 0, 1, 1, fn_bool, SIGS(sig_bool)},
    {"timestamp", 1, 0, 1, 1, fn_timestamp, SIGS(sig_timestamp)},
    {"duration", 1, 0, 1, 1, fn_duration, SIGS(sig_duration)},
    {"dyn", 1, 0, 1, 0, fn_dyn, SIGS(sig_dyn)}, /* not folded: it hides a type */
    {"getFullYear", 0, 1, 1, 1, fn_get_year, SIGS(sig_ts_get)},
    {"getMonth", 0, 1, 1, 1, fn_get_month, SIGS(sig_ts_get)},
    {"getDate", 0, 1, 1, 1, fn_get_date, SIGS(sig_ts_get)},
    {"getDayOfMonth", 0, 1, 1, 1, fn_get_dom, SIGS(sig_ts_get)},
    {"getDayOfWeek", 0, 1, 1, 1, fn_get_dow, SIGS(sig_ts_get)},
    {"getDayOfYear", 0, 1, 1, 1, fn_get_doy, SIGS(sig_ts_get)},
    {"getHours", 0, 1, 1, 1, fn_get_hours, SIGS(sig_time_get)},
    {"getMinutes", 0, 1, 1, 1, fn_get_minutes, SIGS(sig_time_get)},
    {"getSeconds", 0, 1, 1, 1, fn_get_seconds, SIGS(sig_time_get)},
    {"getMilliseconds", 0, 1, 1, 1, fn_get_millis, SIGS(sig_time_get)},
};

const size_t sl__xnfuncs = sizeof sl__xfuncs / sizeof sl__xfuncs[0];
