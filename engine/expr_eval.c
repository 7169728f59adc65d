/*
 * expr_eval.c - the evaluator: a stack machine over the compiled program,
 * reading field paths straight from the msgpack documents.
 *
 * Per evaluation the VM resets its arena and runs the program once; values
 * on its stack borrow from the documents, the program's constants or the
 * arena, so a filter allocates nothing once the VM's stack and arena have
 * reached their working size (the arena keeps its blocks across resets).
 * Errors are values: an operator given an error returns it, && and ||
 * absorb it when the other side decides (CEL's commutative rules: false &&
 * error = false, true || error = true), and only the final result turns
 * into a -1 return with the message kept in the VM.
 *
 * has(x.f) is false, never an error, when f is absent, when x is not a map,
 * and when computing x ran into something missing (an error flagged
 * XF_MISSING: no such key, index out of range); other errors propagate. A
 * static path (has(data.a.b)) gets the same answers by walking the bytes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr_internal.h"

sl_expr_vm *sl_expr_vm_new(void)
{
    sl_expr_vm *vm = calloc(1, sizeof *vm);
    if (!vm) return NULL;
    sl__xarena_init(&vm->arena);
    sl_wbuf_init(&vm->scratch);
    return vm;
}

void sl_expr_vm_destroy(sl_expr_vm **vmp)
{
    if (!vmp || !*vmp) return;
    sl_expr_vm *vm = *vmp;
    free(vm->stack);
    sl__xarena_fini(&vm->arena);
    sl_wbuf_fini(&vm->scratch);
    free(vm);
    *vmp = NULL;
}

const char *sl_expr_vm_error(const sl_expr_vm *vm)
{
    return vm ? vm->err : "no evaluator";
}

size_t sl_expr_vm_allocations(const sl_expr_vm *vm)
{
    if (!vm)
        return 0;
    /* the scratch buffer (building lists and maps) grows by doubling from 256 bytes */
    size_t scratch = 0;
    for (size_t cap = vm->scratch.cap; cap >= 256; cap /= 2)
        scratch++;
    return vm->allocs + vm->arena.blocks + scratch;
}

sl__xval sl__xerr(sl_expr_vm *vm, const char *fmt, ...)
{
    enum { CAP = 200 };
    char *p = sl__xarena_alloc(&vm->arena, CAP);
    if (!p) return sl__xstatic_err("out of memory");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p, CAP, fmt, ap);
    va_end(ap);
    sl__xval v;
    v.kind = XK_ERROR;
    v.flags = 0;
    v.v.s = p;
    v.len = n < 0 ? 0 : n >= CAP ? CAP - 1 : (uint32_t)n;
    return v;
}

sl__xval sl__xnooverload(sl_expr_vm *vm, const char *name, const sl__xval *args, uint32_t n)
{
    const char *t[3] = {"", "", ""};
    for (uint32_t i = 0; i < n && i < 3; i++)
        t[i] = sl__xkind_name(args[i].kind);
    return sl__xerr(vm, "no matching overload for '%s' applied to (%s%s%s%s%s)", name, t[0],
                    n > 1 ? ", " : "", t[1], n > 2 ? ", " : "", t[2]);
}

static int is_map_header(uint8_t c)
{
    return (c & 0xf0) == 0x80 || c == 0xde || c == 0xdf;
}

/* "type 'int' does not support field selection ('x')", a missing-kind error. */
static sl__xval no_fields(sl_expr_vm *vm, int kind, const char *name, uint32_t len)
{
    sl__xval v = sl__xerr(vm, "type '%s' does not support field selection ('%.*s')",
                          sl__xkind_name(kind), (int)(len > 100 ? 100 : len), name);
    v.flags |= XF_MISSING;
    return v;
}

/*
 * Walk a path. For a load (has == 0) *out is the value or an error; for
 * has() *out is a bool (or an error only for malformed bytes). The messages
 * are those of OP_SELECT and OP_INDEX, so a path gives the same error as the
 * same selections done one by one.
 */
static void walk(sl_expr_vm *vm, const sl__xpath *path, const uint8_t *const *docs,
                 const size_t *lens, int has, sl__xval *out)
{
    const uint8_t *p = docs[path->doc], *end = p + lens[path->doc];
    for (uint32_t k = 0; k < path->nseg; k++) {
        const sl__xseg *s = &path->segs[k];
        sl__xval c, key;
        memset(&key, 0, sizeof key);
        if (p >= end)
            goto malformed;
        if (s->key) {
            uint8_t h = *p;
            int r = sl_mp_map_find(&p, end, s->key, s->klen);
            if (r == 1)
                continue;
            if (r < 0)
                goto malformed;
            if (has)
                goto absent;
            key.kind = XK_STRING;
            key.v.s = s->key;
            key.len = s->klen;
            if (is_map_header(h))
                *out = sl__xkey_error(vm, &key);
            else if (sl__xdecode(p, end, &c) != 0)
                *out = c;
            else if (s->bracket)
                sl__xindex(vm, &c, &key, out); /* as OP_INDEX would say it */
            else
                *out = no_fields(vm, c.kind, s->key, s->klen);
            return;
        }
        /* an index: into a list by position, into a map by integer key */
        key.kind = s->ikind;
        key.v.i = s->index;
        if (sl__xdecode(p, end, &c) != 0) {
            *out = c;
            return;
        }
        if (c.kind == XK_LIST) {
            sl_mp_val m;
            sl_mp_read(&p, end, &m); /* decoded fine just above */
            if (s->index < 0 || s->index >= (int64_t)m.v.n) {
                if (has)
                    goto absent;
                *out = sl__xrange_error(vm, &key, m.v.n);
                return;
            }
            for (int64_t i = 0; i < s->index; i++)
                if (sl_mp_skip(&p, end) != 0)
                    goto malformed;
        } else if (c.kind == XK_MAP) {
            int r = sl__xmap_find(&c, &key, &p);
            if (r < 0)
                goto malformed;
            if (r == 0) {
                if (has)
                    goto absent;
                *out = sl__xkey_error(vm, &key);
                return;
            }
        } else {
            if (has)
                goto absent;
            sl__xindex(vm, &c, &key, out); /* the same "no matching overload" error */
            return;
        }
    }
    if (has) {
        memset(out, 0, sizeof *out);
        out->kind = XK_BOOL;
        out->v.b = true;
        return;
    }
    sl__xdecode(p, end, out);
    return;
absent:
    memset(out, 0, sizeof *out);
    out->kind = XK_BOOL;
    out->v.b = false;
    return;
malformed:
    *out = sl__xstatic_err("malformed msgpack");
}

/*
 * v.name (or, for has(), whether v has name) for a computed v. has() is
 * false when v is not a map, or is itself a missing-kind error.
 */
static void select_field(sl_expr_vm *vm, const sl__xval *v, const sl__xval *name, int has,
                         sl__xval *out)
{
    const uint8_t *pos;
    int r = 0;
    if (v->kind == XK_ERROR && !(has && (v->flags & XF_MISSING))) {
        *out = *v;
        return;
    }
    if (v->kind == XK_MAP) {
        r = sl__xmap_find(v, name, &pos);
        if (r < 0) {
            *out = sl__xstatic_err("malformed msgpack");
            return;
        }
    }
    if (has) {
        memset(out, 0, sizeof *out);
        out->kind = XK_BOOL;
        out->v.b = r == 1;
    } else if (v->kind != XK_MAP) {
        *out = no_fields(vm, v->kind, name->v.s, name->len);
    } else if (r == 0) {
        *out = sl__xkey_error(vm, name);
    } else {
        sl__xdecode(pos, v->v.mp + v->len, out);
    }
}

static void match(sl_expr_vm *vm, const regex_t *re, sl__xval *v)
{
    if (v->kind == XK_ERROR) return;
    if (v->kind != XK_STRING) {
        sl__xval args[2] = {*v, *v};
        args[1].kind = XK_STRING;
        *v = sl__xnooverload(vm, "matches", args, 2);
        return;
    }
    /*
     * regexec wants a NUL-terminated string and event strings are not: match on
     * a copy in the arena. REG_STARTEND (glibc, BSD) also lets a NUL inside the
     * string be matched like any other byte.
     */
    char *copy = sl__xarena_strdup(&vm->arena, v->v.s, v->len);
    if (!copy) {
        *v = sl__xstatic_err("out of memory");
        return;
    }
    int rc;
#ifdef REG_STARTEND
    regmatch_t m[1];
    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)v->len;
    rc = regexec(re, copy, 1, m, REG_STARTEND);
#else
    rc = regexec(re, copy, 0, NULL, 0);
#endif
    v->kind = XK_BOOL;
    v->len = 0;
    v->v.b = rc == 0;
}

/* && and || operands: a bool, an error, or anything else made into an error. */
static void logic_operand(sl_expr_vm *vm, const char *op, sl__xval *v)
{
    if (v->kind != XK_BOOL && v->kind != XK_ERROR) *v = sl__xnooverload(vm, op, v, 1);
}

int sl__xrun(const sl_expr *e, sl_expr_vm *vm, const uint8_t *const *docs, const size_t *lens,
             size_t n_docs, sl__xval *res)
{
    (void)n_docs;
    sl__xarena_reset(&vm->arena);
    if (vm->cap < e->max_stack) {
        sl__xval *s = realloc(vm->stack, e->max_stack * sizeof *s);
        if (!s) return -1;
        vm->stack = s;
        vm->cap = e->max_stack;
        vm->allocs++;
    }
    sl__xval *st = vm->stack, tmp;
    size_t sp = 0;
    const sl__xins *code = e->code;
    for (uint32_t pc = 0; pc < e->ncode; pc++) {
        const sl__xins *in = &code[pc];
        switch (in->op) {
        case XOP_NEG:
        case XOP_NOT:
            tmp = st[sp - 1];
            sl__xunary(vm, in->op, &tmp, &st[sp - 1]);
            break;
        case XOP_ADD:
        case XOP_SUB:
        case XOP_MUL:
        case XOP_DIV:
        case XOP_MOD:
        case XOP_EQ:
        case XOP_NE:
        case XOP_LT:
        case XOP_LE:
        case XOP_GT:
        case XOP_GE:
        case XOP_IN:
            sl__xbinary(vm, in->op, &st[sp - 2], &st[sp - 1], &tmp);
            st[--sp - 1] = tmp;
            break;
        case OP_CONST:
            st[sp++] = e->consts[in->a];
            break;
        case OP_PATH:
        case OP_HAS_PATH:
            walk(vm, &e->paths[in->a], docs, lens, in->op == OP_HAS_PATH, &st[sp++]);
            break;
        case OP_SELECT:
        case OP_HAS_FIELD:
            tmp = st[sp - 1];
            select_field(vm, &tmp, &e->consts[in->a], in->op == OP_HAS_FIELD, &st[sp - 1]);
            break;
        case OP_INDEX:
            sl__xindex(vm, &st[sp - 2], &st[sp - 1], &tmp);
            st[--sp - 1] = tmp;
            break;
        case OP_AND:
        case OP_OR:
            logic_operand(vm, in->op == OP_AND ? "&&" : "||", &st[sp - 1]);
            if (st[sp - 1].kind == XK_BOOL && st[sp - 1].v.b == (in->op == OP_OR))
                pc = in->a - 1; /* decided: the left value is the result */
            break;
        case OP_AND_END:
        case OP_OR_END: {
            /* left is the non-deciding bool or an error */
            bool decide = in->op == OP_OR_END;
            sl__xval *a = &st[sp - 2], *b = &st[sp - 1];
            logic_operand(vm, decide ? "||" : "&&", b);
            if (a->kind == XK_BOOL || (b->kind == XK_BOOL && b->v.b == decide)) *a = *b;
            sp--;
            break;
        }
        case OP_COND:
            tmp = st[--sp];
            if (tmp.kind == XK_BOOL) {
                if (!tmp.v.b) pc = in->a - 1;
            } else {
                st[sp++] = tmp.kind == XK_ERROR ? tmp : sl__xnooverload(vm, "?:", &tmp, 1);
                pc = code[in->a - 1].a - 1;
            }
            break;
        case OP_JMP:
            pc = in->a - 1;
            break;
        case OP_LIST:
            sp -= in->a;
            sl__xmake_list(vm, &st[sp], in->a, &tmp);
            st[sp++] = tmp;
            break;
        case OP_MAP:
            sp -= 2 * (size_t)in->a;
            sl__xmake_map(vm, &st[sp], in->a, &tmp);
            st[sp++] = tmp;
            break;
        case OP_CALL: {
            sl__xval *args = &st[sp - in->n];
            tmp.kind = XK_NULL;
            for (uint32_t k = 0; k < in->n && tmp.kind != XK_ERROR; k++)
                if (args[k].kind == XK_ERROR) tmp = args[k];
            if (tmp.kind != XK_ERROR) sl__xfuncs[in->a].impl(vm, args, in->n, &tmp);
            sp -= in->n;
            st[sp++] = tmp;
            break;
        }
        case OP_MATCH:
            match(vm, e->regexes[in->a], &st[sp - 1]);
            break;
        default:
            st[sp++] = sl__xstatic_err("internal error: bad instruction");
            break;
        }
    }
    *res = sp ? st[sp - 1] : sl__xstatic_err("internal error: empty program");
    return 0;
}

static int check_docs(const sl_expr *e, sl_expr_vm *vm, const uint8_t *const *docs,
                      const size_t *lens, size_t n_docs)
{
    if (n_docs != e->ndocs) {
        snprintf(vm->err, sizeof vm->err, "expected %u document%s, got %zu", e->ndocs,
                 e->ndocs == 1 ? "" : "s", n_docs);
        return -1;
    }
    for (size_t i = 0; i < n_docs; i++) {
        if (!docs || !lens || !docs[i] || lens[i] == 0 || lens[i] > UINT32_MAX) {
            snprintf(vm->err, sizeof vm->err, "document %zu is empty or too large", i);
            return -1;
        }
    }
    return 0;
}

static void keep_error(sl_expr_vm *vm, const sl__xval *v)
{
    snprintf(vm->err, sizeof vm->err, "%.*s", (int)v->len, v->v.s);
}

int sl_expr_eval_bool(const sl_expr *e, sl_expr_vm *vm, const uint8_t *const *docs,
                      const size_t *lens, size_t n_docs)
{
    sl__xval r;
    if (!e || !vm) return -1;
    if (check_docs(e, vm, docs, lens, n_docs) != 0) return -1;
    if (sl__xrun(e, vm, docs, lens, n_docs, &r) != 0) {
        snprintf(vm->err, sizeof vm->err, "out of memory");
        return -1;
    }
    if (r.kind == XK_BOOL) return r.v.b;
    if (r.kind == XK_ERROR)
        keep_error(vm, &r);
    else
        snprintf(vm->err, sizeof vm->err, "expected a bool result, got %s", sl__xkind_name(r.kind));
    return -1;
}

int sl_expr_eval_msgpack(const sl_expr *e, sl_expr_vm *vm, const uint8_t *const *docs,
                         const size_t *lens, size_t n_docs, sl_wbuf *out)
{
    sl__xval r;
    if (!e || !vm || !out) return -1;
    if (check_docs(e, vm, docs, lens, n_docs) != 0) return -1;
    if (sl__xrun(e, vm, docs, lens, n_docs, &r) != 0) {
        snprintf(vm->err, sizeof vm->err, "out of memory");
        return -1;
    }
    if (r.kind == XK_ERROR) {
        keep_error(vm, &r);
        return -1;
    }
    size_t len = out->len;
    if (sl__xencode(out, &r) != 0) {
        out->len = len;
        snprintf(vm->err, sizeof vm->err, "out of memory or malformed msgpack");
        return -1;
    }
    return 0;
}
