/*
 * expr_ops.c - what the operators mean: the static overload table the
 * checker uses (sl__xop_type) and the run-time semantics next to it, so the
 * two are read and changed together.
 *
 * CEL rules: arithmetic needs both operands of one numeric type (int + int,
 * uint + uint, double + double; never mixed), int and uint overflow is an
 * error, so is integer division or modulus by zero (double division follows
 * IEEE 754); comparisons and equality cross numeric types by value; strings,
 * bytes and lists concatenate with +; timestamp - timestamp is a duration,
 * timestamp +/- duration a timestamp, duration +/- duration a duration.
 * Any error operand makes the result that error (the left one first).
 * String and list results are built in the VM arena.
 */
#include <string.h>

#include "expr_internal.h"

const char *sl__xop_name(int op)
{
    static const char *const names[] = {"-",  "!",  "+", "-",  "*", "/",  "%",
                                        "==", "!=", "<", "<=", ">", ">=", "in"};
    return op >= 0 && op <= XOP_IN ? names[op] : "?";
}

static int numeric(int t)
{
    return t == SL_EXPR_INT || t == SL_EXPR_UINT || t == SL_EXPR_DOUBLE;
}

static int orderable(int t)
{
    return numeric(t) || t == SL_EXPR_STRING || t == SL_EXPR_BYTES || t == SL_EXPR_BOOL ||
           t == SL_EXPR_TIMESTAMP || t == SL_EXPR_DURATION;
}

/* Result type of a + b for known types, or -1. */
static int add_type(int a, int b)
{
    if (a == b && (numeric(a) || a == SL_EXPR_STRING || a == SL_EXPR_BYTES || a == SL_EXPR_LIST ||
                   a == SL_EXPR_DURATION))
        return a;
    if ((a == SL_EXPR_TIMESTAMP && b == SL_EXPR_DURATION) ||
        (a == SL_EXPR_DURATION && b == SL_EXPR_TIMESTAMP))
        return SL_EXPR_TIMESTAMP;
    return -1;
}

static int sub_type(int a, int b)
{
    if (a == b && (numeric(a) || a == SL_EXPR_DURATION)) return a;
    if (a == SL_EXPR_TIMESTAMP && b == SL_EXPR_TIMESTAMP) return SL_EXPR_DURATION;
    if (a == SL_EXPR_TIMESTAMP && b == SL_EXPR_DURATION) return SL_EXPR_TIMESTAMP;
    return -1;
}

static const int all_types[] = {SL_EXPR_NULL,   SL_EXPR_BOOL,      SL_EXPR_INT,     SL_EXPR_UINT,
                                SL_EXPR_DOUBLE, SL_EXPR_STRING,    SL_EXPR_BYTES,   SL_EXPR_LIST,
                                SL_EXPR_MAP,    SL_EXPR_TIMESTAMP, SL_EXPR_DURATION};

/*
 * With one side unknown: try every type for it; no fit is an error, one
 * result type for every fit is that type, several results are dyn.
 */
static int arith_type(int op, int a, int b)
{
    int (*f)(int, int) = op == XOP_ADD ? add_type : sub_type;
    if (op == XOP_MUL || op == XOP_DIV || op == XOP_MOD) {
        if (a != SL_EXPR_DYN && b != SL_EXPR_DYN && a != b) return -1;
        int t = a != SL_EXPR_DYN ? a : b;
        if (t == SL_EXPR_DYN) return SL_EXPR_DYN;
        int ok = op == XOP_MOD ? (t == SL_EXPR_INT || t == SL_EXPR_UINT) : numeric(t);
        return ok ? t : -1;
    }
    if (a != SL_EXPR_DYN && b != SL_EXPR_DYN) return f(a, b);
    if (a == SL_EXPR_DYN && b == SL_EXPR_DYN) return SL_EXPR_DYN;
    int found = -1;
    for (size_t i = 0; i < sizeof all_types / sizeof all_types[0]; i++) {
        int r = a == SL_EXPR_DYN ? f(all_types[i], b) : f(a, all_types[i]);
        if (r < 0) continue;
        if (found >= 0 && found != r) return SL_EXPR_DYN;
        found = r;
    }
    return found;
}

int sl__xop_type(int op, int a, int b)
{
    switch (op) {
    case XOP_NEG:
        if (a == SL_EXPR_DYN || a == SL_EXPR_INT || a == SL_EXPR_DOUBLE) return a;
        return -1;
    case XOP_NOT:
        return a == SL_EXPR_DYN || a == SL_EXPR_BOOL ? SL_EXPR_BOOL : -1;
    case XOP_ADD:
    case XOP_SUB:
    case XOP_MUL:
    case XOP_DIV:
    case XOP_MOD:
        return arith_type(op, a, b);
    case XOP_EQ:
    case XOP_NE:
        if (a != SL_EXPR_DYN && b != SL_EXPR_DYN && a != b && !(numeric(a) && numeric(b)) &&
            a != SL_EXPR_NULL && b != SL_EXPR_NULL)
            return -1;
        return SL_EXPR_BOOL;
    case XOP_LT:
    case XOP_LE:
    case XOP_GT:
    case XOP_GE:
        if ((a != SL_EXPR_DYN && !orderable(a)) || (b != SL_EXPR_DYN && !orderable(b))) return -1;
        if (a != SL_EXPR_DYN && b != SL_EXPR_DYN && a != b && !(numeric(a) && numeric(b)))
            return -1;
        return SL_EXPR_BOOL;
    case XOP_IN:
        if (b != SL_EXPR_DYN && b != SL_EXPR_LIST && b != SL_EXPR_MAP) return -1;
        return SL_EXPR_BOOL;
    default:
        return -1;
    }
}

/* ---------------------------------------------------------------- run time */

static sl__xval mkbool(bool b)
{
    sl__xval v;
    v.kind = XK_BOOL;
    v.len = 0;
    v.v.b = b;
    return v;
}

static sl__xval mkint(int kind, int64_t i)
{
    sl__xval v;
    v.kind = (uint8_t)kind;
    v.len = 0;
    v.v.i = i;
    return v;
}

static sl__xval nooverload(sl_expr_vm *vm, int op, const sl__xval *a, const sl__xval *b)
{
    sl__xval args[2] = {*a, b ? *b : *a};
    return sl__xnooverload(vm, sl__xop_name(op), args, b ? 2 : 1);
}

void sl__xunary(sl_expr_vm *vm, int op, const sl__xval *a, sl__xval *out)
{
    if (a->kind == XK_ERROR) {
        *out = *a;
    } else if (op == XOP_NOT && a->kind == XK_BOOL) {
        *out = mkbool(!a->v.b);
    } else if (op == XOP_NEG && a->kind == XK_INT) {
        if (a->v.i == INT64_MIN)
            *out = sl__xstatic_err("integer overflow");
        else
            *out = mkint(XK_INT, -a->v.i);
    } else if (op == XOP_NEG && a->kind == XK_DOUBLE) {
        *out = *a;
        out->v.d = -a->v.d;
    } else {
        *out = nooverload(vm, op, a, NULL);
    }
}

/* Concatenate two strings or bytes into the arena. */
static void concat(sl_expr_vm *vm, const sl__xval *a, const sl__xval *b, sl__xval *out)
{
    if ((uint64_t)a->len + b->len > UINT32_MAX) {
        *out = sl__xstatic_err("string too long");
        return;
    }
    char *p = sl__xarena_alloc(&vm->arena, (size_t)a->len + b->len + 1);
    if (!p) {
        *out = sl__xstatic_err("out of memory");
        return;
    }
    if (a->len) memcpy(p, a->v.s, a->len);
    if (b->len) memcpy(p + a->len, b->v.s, b->len);
    p[a->len + b->len] = '\0';
    out->kind = a->kind;
    out->len = a->len + b->len;
    out->v.s = p;
}

/* The exact bytes of a list's elements (after its header) and their count. */
static int list_body(const sl__xval *l, uint32_t *n, const uint8_t **body, size_t *size)
{
    const uint8_t *s = l->v.mp, *end = l->v.mp + l->len;
    sl_mp_val m;
    if (sl_mp_read(&s, end, &m) != 0 || m.type != SL_MP_ARRAY) return -1;
    *n = m.v.n;
    *body = s;
    for (uint32_t i = 0; i < m.v.n; i++)
        if (sl_mp_skip(&s, end) != 0) return -1;
    *size = (size_t)(s - *body);
    return 0;
}

static void finish_container(sl_expr_vm *vm, int kind, sl__xval *out)
{
    uint8_t *p = sl__xarena_alloc(&vm->arena, vm->scratch.len);
    if (!p) {
        *out = sl__xstatic_err("out of memory");
        return;
    }
    memcpy(p, vm->scratch.data, vm->scratch.len);
    out->kind = (uint8_t)kind;
    out->len = (uint32_t)vm->scratch.len;
    out->v.mp = p;
}

static void list_concat(sl_expr_vm *vm, const sl__xval *a, const sl__xval *b, sl__xval *out)
{
    uint32_t na, nb;
    const uint8_t *ba, *bb;
    size_t sa, sb;
    if (list_body(a, &na, &ba, &sa) != 0 || list_body(b, &nb, &bb, &sb) != 0) {
        *out = sl__xstatic_err("malformed msgpack");
        return;
    }
    if ((uint64_t)na + nb > UINT32_MAX || sa + sb > UINT32_MAX - 8) {
        *out = sl__xstatic_err("list too long");
        return;
    }
    sl_wbuf_reset(&vm->scratch);
    if (sl_mp_write_array(&vm->scratch, na + nb) != 0 ||
        sl_wbuf_append(&vm->scratch, ba, sa) != 0 || sl_wbuf_append(&vm->scratch, bb, sb) != 0) {
        *out = sl__xstatic_err("out of memory");
        return;
    }
    finish_container(vm, XK_LIST, out);
}

static int time_add(int64_t a, int64_t b, int64_t *r)
{
    return __builtin_add_overflow(a, b, r);
}

static void arith(sl_expr_vm *vm, int op, const sl__xval *a, const sl__xval *b, sl__xval *out)
{
    int ka = a->kind, kb = b->kind;
    if (ka == kb && ka == XK_INT) {
        int64_t x = a->v.i, y = b->v.i, r = 0;
        int over = 0;
        switch (op) {
        case XOP_ADD:
            over = __builtin_add_overflow(x, y, &r);
            break;
        case XOP_SUB:
            over = __builtin_sub_overflow(x, y, &r);
            break;
        case XOP_MUL:
            over = __builtin_mul_overflow(x, y, &r);
            break;
        case XOP_DIV:
        case XOP_MOD:
            if (y == 0) {
                *out = sl__xstatic_err(op == XOP_DIV ? "division by zero" : "modulus by zero");
                return;
            }
            if (x == INT64_MIN && y == -1)
                over = 1;
            else
                r = op == XOP_DIV ? x / y : x % y;
            break;
        }
        *out = over ? sl__xstatic_err("integer overflow") : mkint(XK_INT, r);
        return;
    }
    if (ka == kb && ka == XK_UINT) {
        uint64_t x = a->v.u, y = b->v.u, r = 0;
        int over = 0;
        switch (op) {
        case XOP_ADD:
            over = __builtin_add_overflow(x, y, &r);
            break;
        case XOP_SUB:
            over = __builtin_sub_overflow(x, y, &r);
            break;
        case XOP_MUL:
            over = __builtin_mul_overflow(x, y, &r);
            break;
        case XOP_DIV:
        case XOP_MOD:
            if (y == 0) {
                *out = sl__xstatic_err(op == XOP_DIV ? "division by zero" : "modulus by zero");
                return;
            }
            r = op == XOP_DIV ? x / y : x % y;
            break;
        }
        if (over) {
            *out = sl__xstatic_err("unsigned integer overflow");
        } else {
            out->kind = XK_UINT;
            out->len = 0;
            out->v.u = r;
        }
        return;
    }
    if (ka == kb && ka == XK_DOUBLE && op != XOP_MOD) {
        double x = a->v.d, y = b->v.d;
        out->kind = XK_DOUBLE;
        out->len = 0;
        out->v.d = op == XOP_ADD ? x + y : op == XOP_SUB ? x - y : op == XOP_MUL ? x * y : x / y;
        return;
    }
    if (op == XOP_ADD && ka == kb && (ka == XK_STRING || ka == XK_BYTES)) {
        concat(vm, a, b, out);
        return;
    }
    if (op == XOP_ADD && ka == kb && ka == XK_LIST) {
        list_concat(vm, a, b, out);
        return;
    }
    if (op == XOP_ADD || op == XOP_SUB) {
        int64_t r;
        int rk = -1;
        int over = 0;
        if (op == XOP_ADD && ((ka == XK_TIMESTAMP && kb == XK_DURATION) ||
                              (ka == XK_DURATION && kb == XK_TIMESTAMP))) {
            rk = XK_TIMESTAMP;
            over = time_add(a->v.i, b->v.i, &r);
        } else if (op == XOP_ADD && ka == XK_DURATION && kb == XK_DURATION) {
            rk = XK_DURATION;
            over = time_add(a->v.i, b->v.i, &r);
        } else if (op == XOP_SUB && ka == XK_TIMESTAMP && kb == XK_TIMESTAMP) {
            rk = XK_DURATION;
            over = __builtin_sub_overflow(a->v.i, b->v.i, &r);
        } else if (op == XOP_SUB && ka == XK_TIMESTAMP && kb == XK_DURATION) {
            rk = XK_TIMESTAMP;
            over = __builtin_sub_overflow(a->v.i, b->v.i, &r);
        } else if (op == XOP_SUB && ka == XK_DURATION && kb == XK_DURATION) {
            rk = XK_DURATION;
            over = __builtin_sub_overflow(a->v.i, b->v.i, &r);
        }
        if (rk >= 0) {
            if (over)
                *out = sl__xstatic_err(rk == XK_TIMESTAMP ? "timestamp out of range"
                                                          : "duration out of range");
            else
                *out = mkint(rk, r);
            return;
        }
    }
    *out = nooverload(vm, op, a, b);
}

static void in(sl_expr_vm *vm, const sl__xval *a, const sl__xval *b, sl__xval *out)
{
    if (b->kind == XK_MAP) {
        const uint8_t *pos;
        int r = sl__xmap_find(b, a, &pos);
        *out = r < 0 ? sl__xstatic_err("malformed msgpack or value nested too deeply") : mkbool(r);
        return;
    }
    if (b->kind != XK_LIST) {
        *out = nooverload(vm, XOP_IN, a, b);
        return;
    }
    const uint8_t *s = b->v.mp, *end = b->v.mp + b->len;
    sl_mp_val m;
    if (sl_mp_read(&s, end, &m) != 0 || m.type != SL_MP_ARRAY) {
        *out = sl__xstatic_err("malformed msgpack");
        return;
    }
    for (uint32_t i = 0; i < m.v.n; i++) {
        sl__xval x;
        if (sl__xnext(&s, end, &x) != 0) {
            *out = x;
            return;
        }
        int r = sl__xeq(a, &x, 0);
        if (r < 0) {
            *out = sl__xstatic_err("malformed msgpack or value nested too deeply");
            return;
        }
        if (r) {
            *out = mkbool(true);
            return;
        }
    }
    *out = mkbool(false);
}

void sl__xbinary(sl_expr_vm *vm, int op, const sl__xval *a, const sl__xval *b, sl__xval *out)
{
    if (a->kind == XK_ERROR) {
        *out = *a;
        return;
    }
    if (b->kind == XK_ERROR) {
        *out = *b;
        return;
    }
    int r;
    switch (op) {
    case XOP_EQ:
    case XOP_NE:
        r = sl__xeq(a, b, 0);
        if (r < 0)
            *out = sl__xstatic_err("malformed msgpack or value nested too deeply");
        else
            *out = mkbool(op == XOP_EQ ? r == 1 : r == 0);
        return;
    case XOP_LT:
    case XOP_LE:
    case XOP_GT:
    case XOP_GE:
        if (sl__xcmp(a, b, &r) != 0) {
            *out = nooverload(vm, op, a, b);
            return;
        }
        if (r == 2)
            *out = mkbool(false); /* NaN */
        else
            *out = mkbool(op == XOP_LT   ? r < 0
                          : op == XOP_LE ? r <= 0
                          : op == XOP_GT ? r > 0
                                         : r >= 0);
        return;
    case XOP_IN:
        in(vm, a, b, out);
        return;
    default:
        arith(vm, op, a, b, out);
        return;
    }
}

sl__xval sl__xkey_error(sl_expr_vm *vm, const sl__xval *k)
{
    sl__xval v;
    switch (k->kind) {
    case XK_STRING:
        v = sl__xerr(vm, "no such key: '%.*s'", (int)(k->len > 100 ? 100 : k->len), k->v.s);
        break;
    case XK_INT: v = sl__xerr(vm, "no such key: %lld", (long long)k->v.i); break;
    case XK_UINT: v = sl__xerr(vm, "no such key: %lluu", (unsigned long long)k->v.u); break;
    case XK_BOOL: v = sl__xerr(vm, "no such key: %s", k->v.b ? "true" : "false"); break;
    default: v = sl__xerr(vm, "no such key (of type %s)", sl__xkind_name(k->kind)); break;
    }
    v.flags |= XF_MISSING;
    return v;
}

sl__xval sl__xrange_error(sl_expr_vm *vm, const sl__xval *i, uint32_t size)
{
    sl__xval v;
    if (i->kind == XK_UINT)
        v = sl__xerr(vm, "index out of range: %lluu (list size %u)", (unsigned long long)i->v.u,
                     size);
    else
        v = sl__xerr(vm, "index out of range: %lld (list size %u)", (long long)i->v.i, size);
    v.flags |= XF_MISSING;
    return v;
}

void sl__xindex(sl_expr_vm *vm, const sl__xval *a, const sl__xval *i, sl__xval *out)
{
    if (a->kind == XK_ERROR) {
        *out = *a;
        return;
    }
    if (i->kind == XK_ERROR) {
        *out = *i;
        return;
    }
    if (a->kind == XK_MAP) {
        int r = sl__xmap_get(a, i, out);
        if (r < 0)
            *out = sl__xstatic_err("malformed msgpack or value nested too deeply");
        else if (r == 0)
            *out = sl__xkey_error(vm, i);
        return;
    }
    if (a->kind == XK_LIST && (i->kind == XK_INT || i->kind == XK_UINT)) {
        const uint8_t *s = a->v.mp, *end = a->v.mp + a->len;
        sl_mp_val m;
        if (sl_mp_read(&s, end, &m) != 0 || m.type != SL_MP_ARRAY) {
            *out = sl__xstatic_err("malformed msgpack");
            return;
        }
        if ((i->kind == XK_INT && (i->v.i < 0 || i->v.i >= (int64_t)m.v.n)) ||
            (i->kind == XK_UINT && i->v.u >= m.v.n)) {
            *out = sl__xrange_error(vm, i, m.v.n);
            return;
        }
        for (uint64_t k = 0; k < i->v.u; k++) {
            if (sl_mp_skip(&s, end) != 0) {
                *out = sl__xstatic_err("malformed msgpack");
                return;
            }
        }
        sl__xdecode(s, end, out);
        return;
    }
    sl__xval args[2] = {*a, *i};
    *out = sl__xnooverload(vm, "[]", args, 2);
    out->flags |= XF_MISSING; /* nothing there to index: has() says false, as on a path */
}

void sl__xmake_list(sl_expr_vm *vm, const sl__xval *items, uint32_t n, sl__xval *out)
{
    for (uint32_t k = 0; k < n; k++) {
        if (items[k].kind == XK_ERROR) {
            *out = items[k];
            return;
        }
    }
    sl_wbuf_reset(&vm->scratch);
    if (sl_mp_write_array(&vm->scratch, n) != 0) goto oom;
    for (uint32_t k = 0; k < n; k++)
        if (sl__xencode(&vm->scratch, &items[k]) != 0) goto oom;
    finish_container(vm, XK_LIST, out);
    return;
oom:
    *out = sl__xstatic_err("out of memory or malformed msgpack");
}

void sl__xmake_map(sl_expr_vm *vm, const sl__xval *kv, uint32_t pairs, sl__xval *out)
{
    for (uint32_t k = 0; k < 2 * pairs; k++) {
        if (kv[k].kind == XK_ERROR) {
            *out = kv[k];
            return;
        }
    }
    for (uint32_t k = 0; k < pairs; k++) {
        int kk = kv[2 * k].kind;
        if (kk != XK_STRING && kk != XK_INT && kk != XK_UINT && kk != XK_BOOL) {
            *out = sl__xerr(vm, "unsupported map key type '%s'", sl__xkind_name(kk));
            return;
        }
        for (uint32_t j = 0; j < k; j++) {
            if (sl__xeq(&kv[2 * j], &kv[2 * k], 0) == 1) {
                *out = sl__xkey_error(vm, &kv[2 * k]);
                /* reuse the key formatting: "no such key: x" -> "duplicate map key: x" */
                if (out->kind == XK_ERROR && out->len > 12)
                    *out = sl__xerr(vm, "duplicate map key:%s", out->v.s + 12);
                return;
            }
        }
    }
    sl_wbuf_reset(&vm->scratch);
    if (sl_mp_write_map(&vm->scratch, pairs) != 0) goto oom;
    for (uint32_t k = 0; k < 2 * pairs; k++)
        if (sl__xencode(&vm->scratch, &kv[k]) != 0) goto oom;
    finish_container(vm, XK_MAP, out);
    return;
oom:
    *out = sl__xstatic_err("out of memory or malformed msgpack");
}
