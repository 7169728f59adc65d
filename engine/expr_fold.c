/*
 * expr_fold.c - constant folding.
 *
 * A node whose operands are all constants is compiled on its own and run by
 * the very evaluator that runs events (sl__xrun, no documents), so a folded
 * result cannot differ from an unfolded one. A subtree that evaluates to an
 * error (1 / 0, int("x")) is left as it is: the error then happens at run
 * time, where && and || may still absorb it, as CEL requires.
 *
 * Short-circuit identities that hold under CEL's error rules are applied
 * even when the other side is not constant: false && x, x && false -> false;
 * true || x, x || true -> true; true && x, x || false -> x when x is known
 * to be bool; c ? a : b with a constant bool c -> a or b.
 *
 * A folded value's bytes (strings, lists, maps) are copied into the
 * compiler's arena, which the compiled expression owns.
 */
#include <string.h>

#include "expr_internal.h"

static int is_const(const sl__xcc *cc, uint32_t n)
{
    return n != SL__XNONE && cc->nodes[n].kind == N_CONST;
}

static int is_bool_const(const sl__xcc *cc, uint32_t n, bool b)
{
    return is_const(cc, n) && cc->nodes[n].val.kind == XK_BOOL && cc->nodes[n].val.v.b == b;
}

static int kids_const(const sl__xcc *cc, uint32_t n)
{
    const sl__xnode *x = &cc->nodes[n];
    for (uint32_t k = 0; k < x->nkids; k++)
        if (!is_const(cc, cc->kids[x->kids + k])) return 0;
    return 1;
}

/* Copy the bytes a value points to into the compiler's arena. */
static int persist(sl__xcc *cc, sl__xval *v)
{
    if (v->kind == XK_STRING || v->kind == XK_BYTES) {
        char *p = sl__xarena_strdup(cc->arena, v->v.s, v->len);
        if (!p) return -1;
        v->v.s = p;
    } else if (v->kind == XK_LIST || v->kind == XK_MAP) {
        size_t n = sl__xcontainer_size(v);
        uint8_t *p = n ? sl__xarena_alloc(cc->arena, n) : NULL;
        if (!p) return -1;
        memcpy(p, v->v.mp, n);
        v->v.mp = p;
        v->len = (uint32_t)n;
    }
    return 0;
}

static void make_const(sl__xcc *cc, uint32_t n, const sl__xval *v)
{
    sl__xnode *x = &cc->nodes[n];
    x->kind = N_CONST;
    x->val = *v;
    x->type = v->kind;
    x->a = x->b = x->c = SL__XNONE;
    x->nkids = 0;
}

/* Replace node n by its child c (keeping n's index, so the parent is unchanged). */
static void replace(sl__xcc *cc, uint32_t n, uint32_t c)
{
    cc->nodes[n] = cc->nodes[c];
}

static int eval_fold(sl__xcc *cc, uint32_t n)
{
    sl_expr *tmp;
    sl__xval r;
    if (sl__xgen(cc, n, &tmp) != 0) return -1;
    if (sl__xrun(tmp, cc->vm, NULL, NULL, 0, &r) != 0)
        return sl__xfail(cc, cc->nodes[n].off, "out of memory");
    if (r.kind == XK_ERROR) return 0; /* left for run time */
    if (persist(cc, &r) != 0) return sl__xfail(cc, cc->nodes[n].off, "out of memory");
    make_const(cc, n, &r);
    return 0;
}

int sl__xfold(sl__xcc *cc, uint32_t n)
{
    const sl__xnode *x = &cc->nodes[n];
    sl__xval v;
    if (cc->nofold) return 0;
    switch (x->kind) {
    case N_SELECT:
    case N_UNARY:
        return is_const(cc, x->a) ? eval_fold(cc, n) : 0;
    case N_INDEX:
    case N_BINARY:
        return is_const(cc, x->a) && is_const(cc, x->b) ? eval_fold(cc, n) : 0;
    case N_CALL:
        return sl__xfuncs[x->aux].pure && kids_const(cc, n) ? eval_fold(cc, n) : 0;
    case N_LIST:
    case N_MAP:
        return kids_const(cc, n) ? eval_fold(cc, n) : 0;
    case N_HAS: {
        const sl__xnode *sel = &cc->nodes[x->a];
        return sel->kind != N_IDENT && is_const(cc, sel->a) ? eval_fold(cc, n) : 0;
    }
    case N_AND:
    case N_OR: {
        bool absorb = x->kind == N_OR; /* the value that decides: false for &&, true for || */
        uint32_t a = x->a, b = x->b;
        if (is_bool_const(cc, a, absorb) || is_bool_const(cc, b, absorb)) {
            memset(&v, 0, sizeof v);
            v.kind = XK_BOOL;
            v.v.b = absorb;
            make_const(cc, n, &v);
            return 0;
        }
        if (is_const(cc, a) && is_const(cc, b)) return eval_fold(cc, n);
        if (is_bool_const(cc, a, !absorb) && cc->nodes[b].type == SL_EXPR_BOOL)
            replace(cc, n, b);
        else if (is_bool_const(cc, b, !absorb) && cc->nodes[a].type == SL_EXPR_BOOL)
            replace(cc, n, a);
        return 0;
    }
    case N_COND:
        if (is_const(cc, x->a) && cc->nodes[x->a].val.kind == XK_BOOL)
            replace(cc, n, cc->nodes[x->a].val.v.b ? x->b : x->c);
        return 0;
    default:
        return 0;
    }
}
