/*
 * expr_check.c - name resolution and static type checking, bottom-up, with
 * constant folding (expr_fold.c) applied to each node once its children are
 * checked and folded.
 *
 * Types are known for literals, operator and function results; fields read
 * from events are dyn. A node is refused only when no overload can match the
 * types that are known (1 + 1.0, "a" - 1, size(1), "x".startsWith(1),
 * !5, 1 ? 2 : 3); anything involving dyn is left to the evaluator, which
 * applies the same rules (expr_ops.c, expr_func.c).
 *
 * Also here: functions resolved to their table entry (with "did you mean"),
 * identifiers resolved to a document (event scope: the event; with
 * variables: one of them), and matches() patterns compiled once as POSIX
 * EREs - a pattern must be a constant string after folding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr_internal.h"

/* Edit distance, capped at 10 for long names (only small distances matter). */
static size_t distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t row[33];
    if (na > 32 || nb > 32) return 10;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* The closest of `names` to `s` within a distance that still looks like a typo, or NULL. */
static const char *closest(const char *s, size_t n, const char *const *names, size_t count,
                           size_t stride)
{
    const char *best = NULL;
    size_t bd = (n <= 3 ? 1 : n <= 6 ? 2 : 3) + 1;
    for (size_t i = 0; i < count; i++) {
        const char *cand = *(const char *const *)((const char *)names + i * stride);
        size_t d = distance(s, n, cand, strlen(cand));
        if (d < bd) {
            bd = d;
            best = cand;
        }
    }
    return best;
}

static int type_fail(sl__xcc *cc, uint32_t at, const char *name, const int *types, int n)
{
    char list[128];
    size_t o = 0;
    list[0] = '\0';
    for (int i = 0; i < n && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "",
                              sl__xkind_name(types[i]));
    return sl__xfail(cc, cc->nodes[at].off, "no matching overload for '%s' applied to (%s)", name,
                     list);
}

static int resolve_ident(sl__xcc *cc, uint32_t n)
{
    sl__xnode *x = &cc->nodes[n];
    x->type = SL_EXPR_DYN;
    if (!cc->vars) {
        x->aux = 0;
        return 0;
    }
    for (size_t i = 0; i < cc->nvars; i++) {
        if (strlen(cc->vars[i]) == x->name_len && memcmp(cc->vars[i], x->name, x->name_len) == 0) {
            x->aux = (uint32_t)i;
            x->type = SL_EXPR_MAP;
            return 0;
        }
    }
    const char *s = closest(x->name, x->name_len, cc->vars, cc->nvars, sizeof(char *));
    if (!s) s = cc->nvars ? cc->vars[0] : "?";
    return sl__xfail(cc, x->off, "undeclared reference to '%.*s' (did you mean '%s'?)",
                     (int)x->name_len, x->name, s);
}

static int compile_regex(sl__xcc *cc, uint32_t n)
{
    uint32_t pat = cc->kids[cc->nodes[n].kids + 1];
    const sl__xnode *p = &cc->nodes[pat];
    if (p->kind != N_CONST || p->val.kind != XK_STRING)
        return sl__xfail(cc, p->start, "matches() needs a literal pattern");
    if (memchr(p->val.v.s, '\0', p->val.len))
        return sl__xfail(cc, p->off, "matches() pattern contains a NUL byte");
    if (cc->nregexes == cc->capregexes) {
        uint32_t cap = cc->capregexes ? cc->capregexes * 2 : 4;
        regex_t **r = realloc(cc->regexes, cap * sizeof *r);
        if (!r) return sl__xfail(cc, p->off, "out of memory");
        cc->regexes = r;
        cc->capregexes = cap;
    }
    regex_t *re = malloc(sizeof *re);
    if (!re) return sl__xfail(cc, p->off, "out of memory");
    /* the literal's text is NUL-terminated: the lexer and the folder both store it so */
    int rc = regcomp(re, p->val.v.s, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[128];
        regerror(rc, re, why, sizeof why);
        free(re);
        return sl__xfail(cc, p->off, "invalid regular expression (POSIX ERE): %s", why);
    }
    cc->regexes[cc->nregexes] = re;
    cc->nodes[n].aux = cc->nregexes++;
    return 0;
}

static int sig_matches(const uint8_t *sig, const int *types, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (sig[i + 1] != SL_EXPR_DYN && types[i] != SL_EXPR_DYN && sig[i + 1] != types[i])
            return 0;
    return 1;
}

static int check_call(sl__xcc *cc, uint32_t n)
{
    const sl__xnode *x = &cc->nodes[n];
    int method = x->is_method;
    const sl__xfunc *f = NULL, *other = NULL;
    for (size_t i = 0; i < sl__xnfuncs; i++) {
        const sl__xfunc *c = &sl__xfuncs[i];
        if (strlen(c->name) != x->name_len || memcmp(c->name, x->name, x->name_len) != 0) continue;
        if (method ? c->method : c->global)
            f = c;
        else
            other = c;
    }
    if (!f && other)
        return sl__xfail(cc, x->off,
                         method ? "'%s' is a function, not a method: call it as %s(x)"
                                : "'%s' is a method: call it as x.%s()",
                         other->name, other->name);
    if (!f) {
        const char *s =
            closest(x->name, x->name_len, &sl__xfuncs[0].name, sl__xnfuncs, sizeof sl__xfuncs[0]);
        if (s)
            return sl__xfail(cc, x->off, "unknown function '%.*s' (did you mean '%s'?)",
                             (int)x->name_len, x->name, s);
        return sl__xfail(cc, x->off, "unknown function '%.*s'", (int)x->name_len, x->name);
    }
    if (x->nkids != f->nargs) {
        int want = f->nargs - (method ? 1 : 0);
        return sl__xfail(cc, x->off, "'%s' takes %d argument%s, found %u", f->name, want,
                         want == 1 ? "" : "s", x->nkids - (method ? 1 : 0));
    }
    int types[4] = {0};
    for (uint32_t k = 0; k < x->nkids; k++)
        types[k] = cc->nodes[cc->kids[x->kids + k]].type;
    int ret = -1;
    for (uint8_t s = 0; s < f->nsigs; s++) {
        if (!sig_matches(f->sigs[s], types, x->nkids)) continue;
        ret = ret < 0 || ret == f->sigs[s][0] ? f->sigs[s][0] : SL_EXPR_DYN;
    }
    if (ret < 0) return type_fail(cc, n, f->name, types, (int)x->nkids);
    cc->nodes[n].type = (uint8_t)ret;
    cc->nodes[n].aux = (uint32_t)(f - sl__xfuncs);
    if (f - sl__xfuncs == SL__XFN_MATCHES) return compile_regex(cc, n);
    return 0;
}

static int known_not(int t, int want)
{
    return t != SL_EXPR_DYN && t != want;
}

static int check_node(sl__xcc *cc, uint32_t n)
{
    sl__xnode *x = &cc->nodes[n];
    int ta = x->a != SL__XNONE ? cc->nodes[x->a].type : SL_EXPR_DYN;
    int tb = x->b != SL__XNONE ? cc->nodes[x->b].type : SL_EXPR_DYN;
    int t;
    switch (x->kind) {
    case N_CONST:
        x->type = x->val.kind;
        return 0;
    case N_IDENT:
        return resolve_ident(cc, n);
    case N_SELECT:
        if (known_not(ta, SL_EXPR_MAP))
            return sl__xfail(cc, x->off, "type '%s' does not support field selection ('%.*s')",
                             sl__xkind_name(ta), (int)x->name_len, x->name);
        x->type = SL_EXPR_DYN;
        return 0;
    case N_INDEX:
        if ((ta == SL_EXPR_LIST && tb != SL_EXPR_DYN && tb != SL_EXPR_INT && tb != SL_EXPR_UINT) ||
            (ta == SL_EXPR_MAP && tb != SL_EXPR_DYN && tb != SL_EXPR_INT && tb != SL_EXPR_UINT &&
             tb != SL_EXPR_STRING && tb != SL_EXPR_BOOL && tb != SL_EXPR_DOUBLE) ||
            (ta != SL_EXPR_DYN && ta != SL_EXPR_LIST && ta != SL_EXPR_MAP)) {
            int types[2] = {ta, tb};
            return type_fail(cc, n, "[]", types, 2);
        }
        x->type = SL_EXPR_DYN;
        return 0;
    case N_CALL:
        return check_call(cc, n);
    case N_UNARY:
    case N_BINARY:
        t = sl__xop_type(x->op, ta, tb);
        if (t < 0) {
            int types[2] = {ta, tb};
            return type_fail(cc, n, sl__xop_name(x->op), types, x->kind == N_UNARY ? 1 : 2);
        }
        x->type = (uint8_t)t;
        return 0;
    case N_AND:
    case N_OR:
        if (known_not(ta, SL_EXPR_BOOL) || known_not(tb, SL_EXPR_BOOL)) {
            int types[2] = {ta, tb};
            return type_fail(cc, n, x->kind == N_AND ? "&&" : "||", types, 2);
        }
        x->type = SL_EXPR_BOOL;
        return 0;
    case N_COND: {
        int tc = cc->nodes[x->c].type;
        if (known_not(ta, SL_EXPR_BOOL))
            return sl__xfail(cc, x->off, "the condition of '?:' must be bool, found %s",
                             sl__xkind_name(ta));
        x->type = tb == tc ? (uint8_t)tb : SL_EXPR_DYN;
        return 0;
    }
    case N_LIST:
        x->type = SL_EXPR_LIST;
        return 0;
    case N_MAP:
        for (uint32_t k = 0; k < x->nkids; k += 2) {
            const sl__xnode *key = &cc->nodes[cc->kids[x->kids + k]];
            if (key->type != SL_EXPR_DYN && key->type != SL_EXPR_STRING &&
                key->type != SL_EXPR_INT && key->type != SL_EXPR_UINT && key->type != SL_EXPR_BOOL)
                return sl__xfail(cc, key->start, "unsupported map key type '%s'",
                                 sl__xkind_name(key->type));
        }
        x->type = SL_EXPR_MAP;
        return 0;
    case N_HAS:
        x->type = SL_EXPR_BOOL;
        return 0;
    default:
        return sl__xfail(cc, x->off, "internal error: unknown node");
    }
}

int sl__xcheck(sl__xcc *cc, uint32_t n)
{
    sl__xnode *x = &cc->nodes[n];
    if (x->kind == N_HAS) {
        /* the selection itself is not evaluated: check what it selects from */
        uint32_t arg = x->a;
        const sl__xnode *sel = &cc->nodes[arg];
        if (sel->kind == N_IDENT) {
            if (resolve_ident(cc, arg) != 0) return -1;
        } else if (sl__xcheck(cc, sel->a) != 0) {
            return -1;
        }
    } else {
        uint32_t kids[3] = {x->a, x->b, x->c};
        for (int k = 0; k < 3; k++)
            if (kids[k] != SL__XNONE && sl__xcheck(cc, kids[k]) != 0) return -1;
        for (uint32_t k = 0; k < cc->nodes[n].nkids; k++)
            if (sl__xcheck(cc, cc->kids[cc->nodes[n].kids + k]) != 0) return -1;
    }
    if (check_node(cc, n) != 0) return -1;
    return sl__xfold(cc, n);
}
