/*
 * expr_compile.c - from the checked tree to bytecode, and the public compile
 * entry (parse, check and fold, generate, split the top-level && terms).
 *
 * The compiled form is a flat postfix program for a value stack: constants
 * and field paths push, operators pop their operands and push a result, and
 * &&, || and ?: jump. A chain of field selections and constant indexes
 * rooted at an identifier (data.items[0].sku, data["odd key"]) becomes a
 * single OP_PATH that walks the msgpack bytes with sl_mp_map_find and
 * decodes only the value it ends on; intermediate maps are never decoded.
 *
 * Everything an expression keeps (code, constants, path segments, names,
 * the sl_expr structs of its && terms) lives in one arena owned by the root
 * expression; compiled regexes are owned by the root too, and the terms
 * borrow them. A compiled expression is immutable, so one may be shared by
 * evaluators on several threads.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr_internal.h"

int sl__xfail(sl__xcc *cc, size_t off, const char *fmt, ...)
{
    if (!cc->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cc->err->msg, sizeof cc->err->msg, fmt, ap);
        va_end(ap);
        cc->err->offset = off;
        cc->failed = 1;
    }
    return -1;
}

/* ------------------------------------------------------------ generation */

typedef struct gen {
    sl__xcc *cc;
    sl__xins *code;
    uint32_t ncode, capcode;
    sl__xval *consts;
    uint32_t nconsts, capconsts;
    sl__xpath *paths;
    uint32_t npaths, cappaths;
    uint32_t depth, max;
} gen;

static int grow(sl__xcc *cc, void **p, uint32_t *cap, uint32_t n, size_t size)
{
    if (n < *cap) return 0;
    uint32_t c = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, (size_t)c * size);
    if (!q) return sl__xfail(cc, 0, "out of memory");
    *p = q;
    *cap = c;
    return 0;
}

/* Append an instruction; `effect` is its net change of the stack depth. */
static int emit(gen *g, int op, uint32_t n, uint32_t a, int effect, uint32_t *at)
{
    if (grow(g->cc, (void **)&g->code, &g->capcode, g->ncode, sizeof *g->code) != 0) return -1;
    sl__xins *i = &g->code[g->ncode];
    i->op = (uint8_t)op;
    i->n = (uint8_t)n;
    i->pad = 0;
    i->a = a;
    if (at) *at = g->ncode;
    g->ncode++;
    g->depth = (uint32_t)((int)g->depth + effect);
    if (g->depth > g->max) g->max = g->depth;
    return 0;
}

static int add_const(gen *g, const sl__xval *v, uint32_t *idx)
{
    if (grow(g->cc, (void **)&g->consts, &g->capconsts, g->nconsts, sizeof *g->consts) != 0)
        return -1;
    g->consts[g->nconsts] = *v;
    *idx = g->nconsts++;
    return 0;
}

/* A name from the expression text as a persistent string constant. */
static int name_const(gen *g, const char *s, uint32_t n, uint32_t *idx)
{
    sl__xval v;
    memset(&v, 0, sizeof v);
    v.kind = XK_STRING;
    v.len = n;
    v.v.s = sl__xarena_strdup(g->cc->arena, s, n);
    if (!v.v.s) return sl__xfail(g->cc, 0, "out of memory");
    return add_const(g, &v, idx);
}

/* Number of segments if node n is a static field path, else -1. */
static int path_segments(const sl__xcc *cc, uint32_t n)
{
    const sl__xnode *x = &cc->nodes[n];
    int inner;
    switch (x->kind) {
    case N_IDENT:
        return cc->vars ? 0 : 1;
    case N_SELECT:
        inner = path_segments(cc, x->a);
        return inner < 0 ? -1 : inner + 1;
    case N_INDEX: {
        const sl__xnode *i = &cc->nodes[x->b];
        if (i->kind != N_CONST) return -1;
        if (i->val.kind != XK_STRING && i->val.kind != XK_INT &&
            !(i->val.kind == XK_UINT && i->val.v.u <= (uint64_t)INT64_MAX))
            return -1;
        inner = path_segments(cc, x->a);
        return inner < 0 ? -1 : inner + 1;
    }
    default:
        return -1;
    }
}

/* Fill segs[0..k) for the path ending at node n; returns the document index. */
static int fill_path(sl__xcc *cc, uint32_t n, sl__xseg *segs, int k, uint32_t *doc)
{
    const sl__xnode *x = &cc->nodes[n];
    if (x->kind == N_IDENT && cc->vars) {
        *doc = x->aux; /* the variable is the document, not a segment */
        return 0;
    }
    sl__xseg *s = &segs[k - 1];
    memset(s, 0, sizeof *s);
    if (x->kind == N_IDENT || x->kind == N_SELECT) {
        s->key = sl__xarena_strdup(cc->arena, x->name, x->name_len);
        s->klen = x->name_len;
        if (!s->key)
            return sl__xfail(cc, x->off, "out of memory");
        if (x->kind == N_IDENT) {
            *doc = x->aux;
            return 0;
        }
        return fill_path(cc, x->a, segs, k - 1, doc);
    }
    /* N_INDEX with a constant string, int or uint (path_segments checked) */
    const sl__xval *v = &cc->nodes[x->b].val;
    s->bracket = 1;
    if (v->kind == XK_STRING) {
        s->key = v->v.s;
        s->klen = v->len;
    } else {
        s->ikind = v->kind;
        s->index = v->v.i;
    }
    return fill_path(cc, x->a, segs, k - 1, doc);
}

static int add_path(gen *g, uint32_t n, int nseg, uint32_t *idx)
{
    sl__xcc *cc = g->cc;
    if (grow(cc, (void **)&g->paths, &g->cappaths, g->npaths, sizeof *g->paths) != 0) return -1;
    sl__xseg *segs = sl__xarena_alloc(cc->arena, (size_t)(nseg ? nseg : 1) * sizeof *segs);
    if (!segs) return sl__xfail(cc, 0, "out of memory");
    sl__xpath *p = &g->paths[g->npaths];
    p->nseg = (uint32_t)nseg;
    p->segs = segs;
    if (fill_path(cc, n, segs, nseg, &p->doc) != 0) return -1;
    *idx = g->npaths++;
    return 0;
}

static int gen_node(gen *g, uint32_t n)
{
    sl__xcc *cc = g->cc;
    const sl__xnode x =
        cc->nodes[n]; /* a copy: nothing below may move the node array, but be safe */
    uint32_t idx, j1, j2;
    int nseg;
    switch (x.kind) {
    case N_CONST:
        return (add_const(g, &x.val, &idx) || emit(g, OP_CONST, 0, idx, 1, NULL)) ? -1 : 0;
    case N_IDENT:
    case N_SELECT:
    case N_INDEX:
        nseg = path_segments(cc, n);
        if (nseg >= 0)
            return (add_path(g, n, nseg, &idx) || emit(g, OP_PATH, 0, idx, 1, NULL)) ? -1 : 0;
        if (x.kind == N_SELECT)
            return (gen_node(g, x.a) || name_const(g, x.name, x.name_len, &idx) ||
                    emit(g, OP_SELECT, 0, idx, 0, NULL))
                       ? -1
                       : 0;
        return (gen_node(g, x.a) || gen_node(g, x.b) || emit(g, OP_INDEX, 0, 0, -1, NULL)) ? -1 : 0;
    case N_CALL:
        if (x.aux == SL__XFN_MATCHES)
            return (gen_node(g, cc->kids[x.kids]) ||
                    emit(g, OP_MATCH, 0, cc->nodes[n].aux, 0, NULL))
                       ? -1
                       : 0;
        for (uint32_t k = 0; k < x.nkids; k++)
            if (gen_node(g, cc->kids[x.kids + k]) != 0) return -1;
        return emit(g, OP_CALL, x.nkids, x.aux, 1 - (int)x.nkids, NULL);
    case N_UNARY:
        return (gen_node(g, x.a) || emit(g, x.op, 0, 0, 0, NULL)) ? -1 : 0;
    case N_BINARY:
        return (gen_node(g, x.a) || gen_node(g, x.b) || emit(g, x.op, 0, 0, -1, NULL)) ? -1 : 0;
    case N_AND:
    case N_OR:
        if (gen_node(g, x.a) || emit(g, x.kind == N_AND ? OP_AND : OP_OR, 0, 0, 0, &j1) ||
            gen_node(g, x.b) || emit(g, x.kind == N_AND ? OP_AND_END : OP_OR_END, 0, 0, -1, NULL))
            return -1;
        g->code[j1].a = g->ncode;
        return 0;
    case N_COND:
        if (gen_node(g, x.a) || emit(g, OP_COND, 0, 0, -1, &j1) || gen_node(g, x.b) ||
            emit(g, OP_JMP, 0, 0, -1, &j2))
            return -1;
        g->code[j1].a = g->ncode; /* the else branch starts right after the JMP */
        if (gen_node(g, x.c) != 0) return -1;
        g->code[j2].a = g->ncode;
        return 0;
    case N_LIST:
    case N_MAP:
        for (uint32_t k = 0; k < x.nkids; k++)
            if (gen_node(g, cc->kids[x.kids + k]) != 0) return -1;
        return emit(g, x.kind == N_LIST ? OP_LIST : OP_MAP, 0,
                    x.kind == N_LIST ? x.nkids : x.nkids / 2, 1 - (int)x.nkids, NULL);
    case N_HAS: {
        const sl__xnode sel = cc->nodes[x.a];
        nseg = path_segments(cc, x.a);
        if (nseg >= 0)
            return (add_path(g, x.a, nseg, &idx) || emit(g, OP_HAS_PATH, 0, idx, 1, NULL)) ? -1 : 0;
        if (gen_node(g, sel.a) != 0) return -1;
        if (sel.kind == N_SELECT) {
            if (name_const(g, sel.name, sel.name_len, &idx) != 0) return -1;
        } else if (add_const(g, &cc->nodes[sel.b].val, &idx) != 0) {
            return -1;
        }
        return emit(g, OP_HAS_FIELD, 0, idx, 0, NULL);
    }
    default:
        return sl__xfail(cc, x.off, "internal error: cannot compile node");
    }
}

static void *arena_copy(sl__xarena *a, const void *src, size_t n)
{
    void *p = sl__xarena_alloc(a, n ? n : 1);
    if (p && n) memcpy(p, src, n);
    return p;
}

/* If the expression is a plain path of field names, record its segments (with the variable first).
 */
static int set_plain_path(sl__xcc *cc, uint32_t n, sl_expr *e)
{
    int nseg = path_segments(cc, n);
    if (nseg < 0) return 0;
    sl__xseg *segs = sl__xarena_alloc(cc->arena, (size_t)(nseg ? nseg : 1) * sizeof *segs);
    if (!segs) return -1;
    uint32_t doc;
    if (fill_path(cc, n, segs, nseg, &doc) != 0) return -1;
    for (int k = 0; k < nseg; k++)
        if (!segs[k].key) return 0;
    size_t total = (size_t)nseg + (cc->vars ? 1 : 0), o = 0;
    const char **names = sl__xarena_alloc(cc->arena, total * sizeof *names);
    size_t *lens = sl__xarena_alloc(cc->arena, total * sizeof *lens);
    if (!names || !lens) return -1;
    if (cc->vars) {
        names[o] = cc->vars[doc];
        lens[o++] = strlen(cc->vars[doc]);
    }
    for (int k = 0; k < nseg; k++) {
        names[o] = segs[k].key;
        lens[o++] = segs[k].klen;
    }
    e->path_n = total;
    e->path_segs = names;
    e->path_lens = lens;
    return 0;
}

int sl__xgen(sl__xcc *cc, uint32_t n, sl_expr **out)
{
    gen g;
    memset(&g, 0, sizeof g);
    g.cc = cc;
    int rc = -1;
    sl_expr *e = NULL;
    if (gen_node(&g, n) != 0) goto done;
    e = sl__xarena_alloc(cc->arena, sizeof *e);
    if (!e) goto oom;
    memset(e, 0, sizeof *e);
    e->code = arena_copy(cc->arena, g.code, g.ncode * sizeof *g.code);
    e->consts = arena_copy(cc->arena, g.consts, g.nconsts * sizeof *g.consts);
    e->paths = arena_copy(cc->arena, g.paths, g.npaths * sizeof *g.paths);
    if (!e->code || !e->consts || !e->paths) goto oom;
    e->ncode = g.ncode;
    e->regexes = cc->regexes;
    e->max_stack = g.max;
    e->ndocs = cc->vars ? (uint32_t)cc->nvars : 1;
    e->type = cc->nodes[n].type;
    e->arena = cc->arena;
    if (set_plain_path(cc, n, e) != 0) goto oom;
    e->terms = NULL;
    e->nterms = 1;
    *out = e;
    rc = 0;
    goto done;
oom:
    rc = sl__xfail(cc, cc->nodes[n].off, "out of memory");
done:
    free(g.code);
    free(g.consts);
    free(g.paths);
    return rc;
}

/* ------------------------------------------------------------ public API */

/* The root expression and the arena everything else lives in. */
typedef struct root {
    struct sl_expr e;
    sl__xarena arena;
} root;

/* Collect the operands of the top-level && chain, left to right. */
static int collect_terms(sl__xcc *cc, uint32_t n, uint32_t **v, uint32_t *count, uint32_t *cap)
{
    if (cc->nodes[n].kind == N_AND)
        return (collect_terms(cc, cc->nodes[n].a, v, count, cap) ||
                collect_terms(cc, cc->nodes[n].b, v, count, cap))
                   ? -1
                   : 0;
    if (grow(cc, (void **)v, cap, *count, sizeof **v) != 0) return -1;
    (*v)[(*count)++] = n;
    return 0;
}

static void free_regexes(regex_t **r, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        regfree(r[i]);
        free(r[i]);
    }
    free(r);
}

int sl_expr_compile(const char *text, size_t len, const char *const *vars, sl_expr **out,
                    sl_expr_error *err)
{
    return sl__xcompile(text, len, vars, 0, out, err);
}

int sl__xcompile(const char *text, size_t len, const char *const *vars, int flags, sl_expr **out,
                 sl_expr_error *err)
{
    sl_expr_error dummy;
    if (!err) err = &dummy;
    memset(err, 0, sizeof *err);
    sl__xcc cc;
    memset(&cc, 0, sizeof cc);
    cc.err = err;
    if (out) *out = NULL;
    if (!out || (!text && len)) {
        snprintf(err->msg, sizeof err->msg, "invalid argument");
        return -1;
    }
    if (len > UINT32_MAX) {
        snprintf(err->msg, sizeof err->msg, "expression too long");
        return -1;
    }
    cc.text = text ? text : "";
    cc.len = len;
    cc.vars = vars;
    cc.nofold = (flags & SL__X_NOFOLD) != 0;
    while (vars && vars[cc.nvars])
        cc.nvars++;
    uint32_t top, *terms = NULL, nterms = 0, capterms = 0;
    sl_expr *e;
    root *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return -1;
    }
    sl__xarena_init(&r->arena);
    cc.arena = &r->arena;
    cc.vm = sl_expr_vm_new();
    if (!cc.vm) {
        sl__xfail(&cc, 0, "out of memory");
        goto fail;
    }
    if (sl__xparse(&cc, &top) != 0 || sl__xcheck(&cc, top) != 0 || sl__xgen(&cc, top, &e) != 0)
        goto fail;
    r->e = *e;
    if (collect_terms(&cc, top, &terms, &nterms, &capterms) != 0) goto fail;
    if (nterms > 1) {
        const sl_expr **t = sl__xarena_alloc(cc.arena, nterms * sizeof *t);
        if (!t) {
            sl__xfail(&cc, 0, "out of memory");
            goto fail;
        }
        for (uint32_t i = 0; i < nterms; i++) {
            sl_expr *te;
            if (sl__xgen(&cc, terms[i], &te) != 0) goto fail;
            t[i] = te;
        }
        r->e.terms = (const sl_expr *const *)t;
        r->e.nterms = nterms;
    } else {
        r->e.terms = NULL; /* sl_expr_and_term(e, 0) is e itself */
        r->e.nterms = 1;
    }
    /* regexes are all compiled while checking, before any program is generated: every
       program already points at the final array */
    r->e.owned_regexes = cc.regexes;
    r->e.nowned_regexes = cc.nregexes;
    free(terms);
    free(cc.nodes);
    free(cc.kids);
    sl_expr_vm_destroy(&cc.vm);
    *out = &r->e;
    return 0;
fail:
    free(terms);
    free(cc.nodes);
    free(cc.kids);
    sl_expr_vm_destroy(&cc.vm);
    free_regexes(cc.regexes, cc.nregexes);
    sl__xarena_fini(&r->arena);
    free(r);
    return -1;
}

void sl_expr_destroy(sl_expr **ep)
{
    if (!ep || !*ep) return;
    root *r = (root *)(void *)*ep; /* e is the first member */
    free_regexes(r->e.owned_regexes, r->e.nowned_regexes);
    sl__xarena_fini(&r->arena);
    free(r);
    *ep = NULL;
}

sl_expr_type sl_expr_result_type(const sl_expr *e)
{
    return e ? (sl_expr_type)e->type : SL_EXPR_DYN;
}

size_t sl_expr_path(const sl_expr *e, const char *const **segments, const size_t **lens)
{
    if (!e || !e->path_n) return 0;
    if (segments) *segments = e->path_segs;
    if (lens) *lens = e->path_lens;
    return e->path_n;
}

size_t sl_expr_and_terms(const sl_expr *e)
{
    return e ? e->nterms : 0;
}

const sl_expr *sl_expr_and_term(const sl_expr *e, size_t i)
{
    if (!e || i >= e->nterms) return NULL;
    return e->terms ? e->terms[i] : e;
}
