/*
 * expr_parse.c - recursive descent over CEL's grammar into a flat node array.
 *
 *   Expr     = Or ["?" Or ":" Expr]
 *   Or       = And {"||" And}
 *   And      = Rel {"&&" Rel}
 *   Rel      = Add {("<"|"<="|">"|">="|"=="|"!="|"in") Add}
 *   Add      = Mul {("+"|"-") Mul}
 *   Mul      = Unary {("*"|"/"|"%") Unary}
 *   Unary    = Member | "!" Unary | "-" Unary
 *   Member   = Primary {"." IDENT ["(" [Args] ")"] | "[" Expr "]"}
 *   Primary  = IDENT ["(" [Args] ")"] | "(" Expr ")" | "[" [Args] [","] "]"
 *            | "{" [Key ":" Expr {"," Key ":" Expr}] [","] "}" | Literal
 *
 * Nodes refer to their children by index; a node's variadic children (call
 * arguments, list items, map keys and values) are one contiguous range of
 * cc->kids. Every node records the height of its subtree and the parser
 * refuses a tree taller than SL__X_MAX_DEPTH, which bounds the recursion of
 * every later pass; cc->nest bounds the parser's own recursion.
 *
 * has(x) is a macro resolved here: its argument must be a field selection.
 * A minus directly before a numeric literal makes a negative literal, so
 * -9223372036854775808 is an int.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr_internal.h"

static int parse_expr(sl__xcc *cc, uint32_t *out);

static const char *tok_text(const sl__xcc *cc, char *buf, size_t cap)
{
    const sl__xtok *t = &cc->tok;
    if (t->kind == T_EOF) return "end of expression";
    size_t n = t->len < 24 ? t->len : 24;
    snprintf(buf, cap, "'%.*s%s'", (int)n, cc->text + t->off, t->len > n ? "..." : "");
    return buf;
}

static int unexpected(sl__xcc *cc, const char *wanted)
{
    char buf[40];
    if (wanted)
        return sl__xfail(cc, cc->tok.off, "expected %s, found %s", wanted,
                         tok_text(cc, buf, sizeof buf));
    return sl__xfail(cc, cc->tok.off, "unexpected %s", tok_text(cc, buf, sizeof buf));
}

static int expect(sl__xcc *cc, sl__xtokkind k, const char *what)
{
    if (cc->tok.kind != k) return unexpected(cc, what);
    return sl__xlex(cc);
}

/* A new node; its depth is one more than its deepest child (set by the caller through fix_depth).
 */
static uint32_t new_node(sl__xcc *cc, int kind, size_t off)
{
    if (cc->nnodes == cc->capnodes) {
        uint32_t cap = cc->capnodes ? cc->capnodes * 2 : 32;
        sl__xnode *n = realloc(cc->nodes, (size_t)cap * sizeof *n);
        if (!n) {
            sl__xfail(cc, off, "out of memory");
            return SL__XNONE;
        }
        cc->nodes = n;
        cc->capnodes = cap;
    }
    sl__xnode *n = &cc->nodes[cc->nnodes];
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->off = n->start = (uint32_t)off;
    n->a = n->b = n->c = SL__XNONE;
    n->aux = SL__XNONE;
    n->depth = 1;
    return cc->nnodes++;
}

static void see_child(sl__xcc *cc, uint32_t n, uint32_t child)
{
    if (child != SL__XNONE && cc->nodes[child].depth >= cc->nodes[n].depth)
        cc->nodes[n].depth = (uint16_t)(cc->nodes[child].depth + 1);
}

/* Finish node n: compute its depth from its children and refuse a tree too deep. */
static int finish(sl__xcc *cc, uint32_t n)
{
    sl__xnode *x = &cc->nodes[n];
    see_child(cc, n, x->a);
    see_child(cc, n, x->b);
    see_child(cc, n, x->c);
    for (uint32_t k = 0; k < cc->nodes[n].nkids; k++)
        see_child(cc, n, cc->kids[cc->nodes[n].kids + k]);
    if (cc->nodes[n].depth > SL__X_MAX_DEPTH)
        return sl__xfail(cc, cc->nodes[n].off, "expression nested too deeply (more than %d levels)",
                         SL__X_MAX_DEPTH);
    return 0;
}

static uint32_t binary(sl__xcc *cc, int kind, int op, size_t off, uint32_t a, uint32_t b)
{
    uint32_t n = new_node(cc, kind, off);
    if (n == SL__XNONE) return n;
    cc->nodes[n].op = (uint8_t)op;
    cc->nodes[n].a = a;
    cc->nodes[n].b = b;
    cc->nodes[n].start = cc->nodes[a].start;
    return finish(cc, n) == 0 ? n : SL__XNONE;
}

/* A growable list of node indices, copied into cc->kids once complete. */
typedef struct idlist {
    uint32_t *v;
    uint32_t n, cap;
} idlist;

static int idlist_push(sl__xcc *cc, idlist *l, uint32_t id)
{
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 8;
        uint32_t *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return sl__xfail(cc, cc->tok.off, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = id;
    return 0;
}

/* Give node n the children in l (and free l). */
static int set_kids(sl__xcc *cc, uint32_t n, idlist *l)
{
    int rc = 0;
    if (cc->nkids + l->n > cc->capkids) {
        uint32_t cap = cc->capkids ? cc->capkids : 32;
        while (cap < cc->nkids + l->n)
            cap *= 2;
        uint32_t *k = realloc(cc->kids, (size_t)cap * sizeof *k);
        if (!k) {
            rc = sl__xfail(cc, cc->nodes[n].off, "out of memory");
            goto out;
        }
        cc->kids = k;
        cc->capkids = cap;
    }
    cc->nodes[n].kids = cc->nkids;
    cc->nodes[n].nkids = l->n;
    if (l->n) memcpy(cc->kids + cc->nkids, l->v, l->n * sizeof *l->v);
    cc->nkids += l->n;
    rc = finish(cc, n);
out:
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
    return rc;
}

/* Arguments up to `close` (the opening token is consumed); appended to l. */
static int parse_args(sl__xcc *cc, idlist *l, sl__xtokkind close, int trailing_comma)
{
    while (cc->tok.kind != close) {
        uint32_t x = SL__XNONE;
        if (parse_expr(cc, &x) != 0 || idlist_push(cc, l, x) != 0) return -1;
        if (cc->tok.kind == T_COMMA) {
            if (sl__xlex(cc) != 0) return -1;
            if (cc->tok.kind == close && !trailing_comma) return unexpected(cc, "an argument");
        } else if (cc->tok.kind != close) {
            return unexpected(cc, close == T_RPAREN ? "',' or ')'" : "',' or ']'");
        }
    }
    return sl__xlex(cc);
}

static uint32_t const_node(sl__xcc *cc, size_t off, const sl__xval *v)
{
    uint32_t n = new_node(cc, N_CONST, off);
    if (n != SL__XNONE) {
        cc->nodes[n].val = *v;
        cc->nodes[n].type = v->kind;
    }
    return n;
}

/* A literal token as a constant node; `neg` applies a leading minus. */
static int literal(sl__xcc *cc, const sl__xtok *t, int neg, uint32_t *out)
{
    sl__xval v;
    memset(&v, 0, sizeof v);
    switch (t->kind) {
    case T_NULL:
        v.kind = XK_NULL;
        break;
    case T_TRUE:
        v.kind = XK_BOOL;
        v.v.b = true;
        break;
    case T_FALSE:
        v.kind = XK_BOOL;
        v.v.b = false;
        break;
    case T_INT:
        v.kind = XK_INT;
        if (neg && t->u == (uint64_t)INT64_MAX + 1)
            v.v.i = INT64_MIN;
        else if (t->u > (uint64_t)INT64_MAX)
            return sl__xfail(cc, t->off,
                             "integer literal out of range (use a 'u' suffix for uint)");
        else
            v.v.i = neg ? -(int64_t)t->u : (int64_t)t->u;
        break;
    case T_UINT:
        v.kind = XK_UINT;
        v.v.u = t->u;
        break;
    case T_DOUBLE:
        v.kind = XK_DOUBLE;
        v.v.d = neg ? -t->d : t->d;
        break;
    case T_STRING:
    case T_BYTES:
        if (t->slen > UINT32_MAX) return sl__xfail(cc, t->off, "literal too long");
        v.kind = t->kind == T_STRING ? XK_STRING : XK_BYTES;
        v.v.s = t->s;
        v.len = (uint32_t)t->slen;
        break;
    default:
        return unexpected(cc, NULL);
    }
    *out = const_node(cc, t->off, &v);
    return *out == SL__XNONE ? -1 : 0;
}

static int parse_call(sl__xcc *cc, uint32_t recv, const sl__xtok *name, uint32_t *out)
{
    idlist args = {0};
    if (recv != SL__XNONE && idlist_push(cc, &args, recv) != 0) goto err;
    if (sl__xlex(cc) != 0 || parse_args(cc, &args, T_RPAREN, 0) != 0) goto err;
    uint32_t n = new_node(cc, N_CALL, name->off);
    if (n == SL__XNONE) goto err;
    cc->nodes[n].name = name->s;
    cc->nodes[n].name_len = (uint32_t)name->slen;
    cc->nodes[n].is_method = recv != SL__XNONE;
    if (recv != SL__XNONE) cc->nodes[n].start = cc->nodes[recv].start;
    if (set_kids(cc, n, &args) != 0) return -1;
    *out = n;
    return 0;
err:
    free(args.v);
    return -1;
}

/* has(x): x must select a field (a.b, a["b"]) or, in event scope, name a top-level attribute. */
static int parse_has(sl__xcc *cc, const sl__xtok *name, uint32_t *out)
{
    idlist args = {0};
    if (sl__xlex(cc) != 0 || parse_args(cc, &args, T_RPAREN, 0) != 0) {
        free(args.v);
        return -1;
    }
    uint32_t arg = args.n == 1 ? args.v[0] : SL__XNONE;
    free(args.v);
    if (arg == SL__XNONE)
        return sl__xfail(cc, name->off,
                         "has() takes one argument, a field selection such as "
                         "has(data.status)");
    const sl__xnode *x = &cc->nodes[arg];
    int ok = x->kind == N_SELECT || (x->kind == N_IDENT && !cc->vars) ||
             (x->kind == N_INDEX && cc->nodes[x->b].kind == N_CONST &&
              cc->nodes[x->b].val.kind == XK_STRING);
    if (!ok)
        return sl__xfail(cc, x->start, "has() needs a field selection such as has(data.status)");
    uint32_t n = new_node(cc, N_HAS, name->off);
    if (n == SL__XNONE) return -1;
    cc->nodes[n].a = arg;
    *out = n;
    return finish(cc, n);
}

static int parse_primary(sl__xcc *cc, uint32_t *out)
{
    sl__xtok t = cc->tok;
    switch (t.kind) {
    case T_NULL:
    case T_TRUE:
    case T_FALSE:
    case T_INT:
    case T_UINT:
    case T_DOUBLE:
    case T_STRING:
    case T_BYTES:
        if (literal(cc, &t, 0, out) != 0) return -1;
        return sl__xlex(cc);
    case T_IDENT:
        if (sl__xlex(cc) != 0) return -1;
        if (cc->tok.kind == T_LPAREN) {
            if (t.slen == 3 && memcmp(t.s, "has", 3) == 0) return parse_has(cc, &t, out);
            return parse_call(cc, SL__XNONE, &t, out);
        }
        *out = new_node(cc, N_IDENT, t.off);
        if (*out == SL__XNONE) return -1;
        cc->nodes[*out].name = t.s;
        cc->nodes[*out].name_len = (uint32_t)t.slen;
        return 0;
    case T_LPAREN:
        if (sl__xlex(cc) != 0 || parse_expr(cc, out) != 0) return -1;
        return expect(cc, T_RPAREN, "')'");
    case T_LBRACKET: {
        idlist items = {0};
        if (sl__xlex(cc) != 0 || parse_args(cc, &items, T_RBRACKET, 1) != 0) {
            free(items.v);
            return -1;
        }
        *out = new_node(cc, N_LIST, t.off);
        if (*out == SL__XNONE) {
            free(items.v);
            return -1;
        }
        return set_kids(cc, *out, &items);
    }
    case T_LBRACE: {
        idlist kv = {0};
        if (sl__xlex(cc) != 0) goto map_err;
        while (cc->tok.kind != T_RBRACE) {
            uint32_t k = SL__XNONE, v = SL__XNONE;
            if (parse_expr(cc, &k) != 0 || idlist_push(cc, &kv, k) != 0) goto map_err;
            if (expect(cc, T_COLON, "':'") != 0) goto map_err;
            if (parse_expr(cc, &v) != 0 || idlist_push(cc, &kv, v) != 0) goto map_err;
            if (cc->tok.kind == T_COMMA) {
                if (sl__xlex(cc) != 0) goto map_err;
            } else if (cc->tok.kind != T_RBRACE) {
                unexpected(cc, "',' or '}'");
                goto map_err;
            }
        }
        if (sl__xlex(cc) != 0) goto map_err;
        *out = new_node(cc, N_MAP, t.off);
        if (*out == SL__XNONE) goto map_err;
        return set_kids(cc, *out, &kv);
    map_err:
        free(kv.v);
        return -1;
    }
    default:
        return unexpected(cc, NULL);
    }
}

static int parse_member(sl__xcc *cc, uint32_t x, uint32_t *out)
{
    for (;;) {
        if (cc->tok.kind == T_DOT) {
            if (sl__xlex(cc) != 0) return -1;
            sl__xtok name = cc->tok;
            if (name.kind != T_IDENT) return unexpected(cc, "a field or method name after '.'");
            if (sl__xlex(cc) != 0) return -1;
            if (cc->tok.kind == T_LPAREN) {
                if (parse_call(cc, x, &name, &x) != 0) return -1;
                continue;
            }
            uint32_t n = new_node(cc, N_SELECT, name.off);
            if (n == SL__XNONE) return -1;
            cc->nodes[n].a = x;
            cc->nodes[n].start = cc->nodes[x].start;
            cc->nodes[n].name = name.s;
            cc->nodes[n].name_len = (uint32_t)name.slen;
            if (finish(cc, n) != 0) return -1;
            x = n;
        } else if (cc->tok.kind == T_LBRACKET) {
            size_t off = cc->tok.off;
            uint32_t i = SL__XNONE;
            if (sl__xlex(cc) != 0 || parse_expr(cc, &i) != 0 || expect(cc, T_RBRACKET, "']'") != 0)
                return -1;
            x = binary(cc, N_INDEX, 0, off, x, i);
            if (x == SL__XNONE) return -1;
        } else {
            *out = x;
            return 0;
        }
    }
}

static int parse_unary(sl__xcc *cc, uint32_t *out)
{
    sl__xtokkind k = cc->tok.kind;
    if (k != T_NOT && k != T_MINUS) {
        uint32_t p = SL__XNONE;
        if (parse_primary(cc, &p) != 0) return -1;
        return parse_member(cc, p, out);
    }
    size_t off = cc->tok.off;
    if (++cc->nest > SL__X_MAX_DEPTH)
        return sl__xfail(cc, off, "expression nested too deeply (more than %d levels)",
                         SL__X_MAX_DEPTH);
    if (sl__xlex(cc) != 0) return -1;
    uint32_t x = SL__XNONE;
    if (k == T_MINUS && (cc->tok.kind == T_INT || cc->tok.kind == T_DOUBLE)) {
        sl__xtok lit = cc->tok;
        if (sl__xlex(cc) != 0) return -1;
        if (cc->tok.kind != T_DOT && cc->tok.kind != T_LBRACKET) {
            cc->nest--;
            if (literal(cc, &lit, 1, out) != 0) return -1;
            cc->nodes[*out].off = cc->nodes[*out].start = (uint32_t)off;
            return 0;
        }
        /* -5.method(): the member binds first */
        uint32_t p = SL__XNONE;
        if (literal(cc, &lit, 0, &p) != 0 || parse_member(cc, p, &x) != 0) return -1;
    } else if (parse_unary(cc, &x) != 0) {
        return -1;
    }
    cc->nest--;
    *out = new_node(cc, N_UNARY, off);
    if (*out == SL__XNONE) return -1;
    cc->nodes[*out].op = k == T_NOT ? XOP_NOT : XOP_NEG;
    cc->nodes[*out].a = x;
    return finish(cc, *out);
}

static int parse_mul(sl__xcc *cc, uint32_t *out)
{
    uint32_t x = SL__XNONE, y = SL__XNONE;
    if (parse_unary(cc, &x) != 0) return -1;
    for (;;) {
        sl__xtokkind k = cc->tok.kind;
        int op = k == T_STAR ? XOP_MUL : k == T_SLASH ? XOP_DIV : k == T_PERCENT ? XOP_MOD : -1;
        if (op < 0) break;
        size_t off = cc->tok.off;
        if (sl__xlex(cc) != 0 || parse_unary(cc, &y) != 0) return -1;
        if ((x = binary(cc, N_BINARY, op, off, x, y)) == SL__XNONE) return -1;
    }
    *out = x;
    return 0;
}

static int parse_add(sl__xcc *cc, uint32_t *out)
{
    uint32_t x = SL__XNONE, y = SL__XNONE;
    if (parse_mul(cc, &x) != 0) return -1;
    for (;;) {
        sl__xtokkind k = cc->tok.kind;
        int op = k == T_PLUS ? XOP_ADD : k == T_MINUS ? XOP_SUB : -1;
        if (op < 0) break;
        size_t off = cc->tok.off;
        if (sl__xlex(cc) != 0 || parse_mul(cc, &y) != 0) return -1;
        if ((x = binary(cc, N_BINARY, op, off, x, y)) == SL__XNONE) return -1;
    }
    *out = x;
    return 0;
}

static int parse_rel(sl__xcc *cc, uint32_t *out)
{
    uint32_t x = SL__XNONE, y = SL__XNONE;
    if (parse_add(cc, &x) != 0) return -1;
    for (;;) {
        int op;
        switch (cc->tok.kind) {
        case T_EQ:
            op = XOP_EQ;
            break;
        case T_NE:
            op = XOP_NE;
            break;
        case T_LT:
            op = XOP_LT;
            break;
        case T_LE:
            op = XOP_LE;
            break;
        case T_GT:
            op = XOP_GT;
            break;
        case T_GE:
            op = XOP_GE;
            break;
        case T_IN:
            op = XOP_IN;
            break;
        default:
            *out = x;
            return 0;
        }
        size_t off = cc->tok.off;
        if (sl__xlex(cc) != 0 || parse_add(cc, &y) != 0) return -1;
        if ((x = binary(cc, N_BINARY, op, off, x, y)) == SL__XNONE) return -1;
    }
}

static int parse_and(sl__xcc *cc, uint32_t *out)
{
    uint32_t x = SL__XNONE, y = SL__XNONE;
    if (parse_rel(cc, &x) != 0) return -1;
    while (cc->tok.kind == T_AND) {
        size_t off = cc->tok.off;
        if (sl__xlex(cc) != 0 || parse_rel(cc, &y) != 0) return -1;
        if ((x = binary(cc, N_AND, 0, off, x, y)) == SL__XNONE) return -1;
    }
    *out = x;
    return 0;
}

static int parse_or(sl__xcc *cc, uint32_t *out)
{
    uint32_t x = SL__XNONE, y = SL__XNONE;
    if (parse_and(cc, &x) != 0) return -1;
    while (cc->tok.kind == T_OR) {
        size_t off = cc->tok.off;
        if (sl__xlex(cc) != 0 || parse_and(cc, &y) != 0) return -1;
        if ((x = binary(cc, N_OR, 0, off, x, y)) == SL__XNONE) return -1;
    }
    *out = x;
    return 0;
}

static int parse_expr(sl__xcc *cc, uint32_t *out)
{
    if (++cc->nest > SL__X_MAX_DEPTH)
        return sl__xfail(cc, cc->tok.off, "expression nested too deeply (more than %d levels)",
                         SL__X_MAX_DEPTH);
    uint32_t c = SL__XNONE, a = SL__XNONE, b = SL__XNONE;
    if (parse_or(cc, &c) != 0) return -1;
    if (cc->tok.kind == T_QUESTION) {
        size_t off = cc->tok.off;
        if (sl__xlex(cc) != 0 || parse_or(cc, &a) != 0 || expect(cc, T_COLON, "':'") != 0 ||
            parse_expr(cc, &b) != 0)
            return -1;
        uint32_t n = new_node(cc, N_COND, off);
        if (n == SL__XNONE) return -1;
        cc->nodes[n].a = c;
        cc->nodes[n].b = a;
        cc->nodes[n].c = b;
        cc->nodes[n].start = cc->nodes[c].start;
        if (finish(cc, n) != 0) return -1;
        c = n;
    }
    cc->nest--;
    *out = c;
    return 0;
}

int sl__xparse(sl__xcc *cc, uint32_t *root)
{
    if (sl__xlex(cc) != 0) return -1;
    if (cc->tok.kind == T_EOF) return sl__xfail(cc, 0, "empty expression");
    if (parse_expr(cc, root) != 0) return -1;
    if (cc->tok.kind != T_EOF) {
        char buf[40];
        return sl__xfail(cc, cc->tok.off, "unexpected %s after the expression",
                         tok_text(cc, buf, sizeof buf));
    }
    return 0;
}
