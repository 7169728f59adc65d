/*
 * sluice_test_match.c - compare actual events with expected ones and say
 * where they differ (sluice_test_match.h has the rules).
 *
 * Design: one recursive walk over the expected value, reading the actual
 * value beside it, with the path so far (".data.items[2]") kept in a
 * buffer; every difference becomes one line "at PATH: expected X, got Y".
 * Values are read in place (sluice/msgpack.h); nothing is decoded into a
 * tree. Depth is bounded (MAX_DEPTH) so hostile output cannot exhaust the
 * stack.
 */
#include "sluice_test_match.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timefmt.h"

#define MAX_DEPTH 128
#define SHOW 160        /* characters of a value shown in a message */
#define SHOW_EVENT 240  /* characters of a whole event shown in a message */
#define MAX_LINES 20    /* report lines per expectation */
#define MAX_EXTRA 5     /* unexpected events listed */
#define MAX_PAIRS (16u << 20)      /* order: any compares expected x actual pairs, up to this */
#define MAX_AUGMENT_DEPTH 100000   /* recursion of the matching (one frame per expected event) */

/* ------------------------------------------------------------- events */

int sl__test_events_add(sl__test_events *l, uint8_t *mp, size_t len, int line, char *json)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        sl__test_event *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            free(mp);
            free(json);
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (sl__test_event){.mp = mp, .len = len, .line = line, .json = json};
    return 0;
}

void sl__test_events_fini(sl__test_events *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].mp);
        free(l->v[i].json);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ------------------------------------------------------------ compare */

typedef struct cmp {
    int exact;
    sl__strs *why;  /* NULL: only count */
    long diffs;
    int oom;
    char path[512];
    size_t plen;
} cmp;

/* One past the value at p, or NULL if it is malformed. */
static const uint8_t *value_end(const uint8_t *p, const uint8_t *end)
{
    return sl_mp_skip(&p, end) == 0 ? p : NULL;
}

/* Record one difference at the current path. */
static void differ(cmp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void differ(cmp *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    c->diffs++;
    if (!c->why)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int rc = c->plen ? sl__strs_addf(c->why, "at %s: %s", c->path, msg)
                     : sl__strs_add(c->why, msg);
    if (rc != 0)
        c->oom = 1;
}

/* Extend the path by a key (".key", or ["key"] if not a plain name); returns the old length. */
static size_t path_key(cmp *c, const char *k, size_t klen)
{
    size_t old = c->plen;
    int plain = klen > 0;
    for (size_t i = 0; i < klen; i++)
        plain &= (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
                 (k[i] >= '0' && k[i] <= '9') || k[i] == '_' || k[i] == '-';
    int n = plain ? snprintf(c->path + old, sizeof c->path - old, ".%.*s", (int)klen, k)
                  : snprintf(c->path + old, sizeof c->path - old, "[\"%.*s\"]", (int)klen, k);
    c->plen = n < 0 || (size_t)n >= sizeof c->path - old ? sizeof c->path - 1 : old + (size_t)n;
    return old;
}

static size_t path_index(cmp *c, uint32_t i)
{
    size_t old = c->plen;
    int n = snprintf(c->path + old, sizeof c->path - old, "[%u]", i);
    c->plen = n < 0 || (size_t)n >= sizeof c->path - old ? sizeof c->path - 1 : old + (size_t)n;
    return old;
}

static void path_pop(cmp *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

static int is_number(sl_mp_type t)
{
    return t == SL_MP_INT || t == SL_MP_UINT || t == SL_MP_FLOAT;
}

static double as_double(const sl_mp_val *v)
{
    return v->type == SL_MP_INT ? (double)v->v.i : v->type == SL_MP_UINT ? (double)v->v.u : v->v.f;
}

/* Numbers: integers exactly (sl_mp_read gives one type per sign), otherwise as doubles. */
static int numbers_equal(const sl_mp_val *e, const sl_mp_val *a)
{
    if (e->type != SL_MP_FLOAT && a->type != SL_MP_FLOAT)
        return e->type == a->type && (e->type == SL_MP_INT ? e->v.i == a->v.i : e->v.u == a->v.u);
    return as_double(e) == as_double(a);
}

/* Strings: the same bytes, or two RFC 3339 texts naming the same instant. */
static int strings_equal(const sl_mp_val *e, const sl_mp_val *a)
{
    int64_t te, ta;

    if (e->v.str.len == a->v.str.len && !memcmp(e->v.str.ptr, a->v.str.ptr, e->v.str.len))
        return 1;
    return sl_time_parse(e->v.str.ptr, e->v.str.len, &te) == 0 &&
           sl_time_parse(a->v.str.ptr, a->v.str.len, &ta) == 0 && te == ta;
}

/* The value of string key k in the map at m (header included), or NULL. */
static const uint8_t *map_value(const uint8_t *m, const uint8_t *mend, const char *k, size_t klen)
{
    const uint8_t *p = m;
    return sl_mp_map_find(&p, mend, k, klen) == 1 ? p : NULL;
}

static void compare(cmp *c, const uint8_t *e, const uint8_t *eend, const uint8_t *a,
                    const uint8_t *aend, int depth);

static void compare_maps(cmp *c, const uint8_t *e, const uint8_t *eend, const uint8_t *a,
                         const uint8_t *aend, int depth)
{
    const uint8_t *p = e;
    sl_mp_val m, k;
    char show[SHOW + 8];

    sl_mp_read(&p, eend, &m);
    for (uint32_t i = 0; i < m.v.n; i++) {
        if (sl_mp_read(&p, eend, &k) != 0 || k.type != SL_MP_STR) {
            differ(c, "(the expected mapping has a key that is not a string)");
            return;
        }
        const uint8_t *v = p, *vend = value_end(p, eend);
        if (!vend)
            return;
        p = vend;
        const uint8_t *av = map_value(a, aend, k.v.str.ptr, k.v.str.len);
        size_t old = path_key(c, k.v.str.ptr, k.v.str.len);
        if (!av)
            differ(c, "missing (expected %s)", sl__mp_json(v, (size_t)(vend - v), SHOW, show,
                                                           sizeof show));
        else
            compare(c, v, vend, av, value_end(av, aend), depth + 1);
        path_pop(c, old);
    }
    if (!c->exact)
        return;
    /* match: exact - every actual key must be expected */
    p = a;
    sl_mp_read(&p, aend, &m);
    for (uint32_t i = 0; i < m.v.n; i++) {
        const uint8_t *kstart = p;
        if (sl_mp_read(&p, aend, &k) != 0)
            return;
        if (k.type != SL_MP_STR) {
            p = value_end(kstart, aend);
        }
        const uint8_t *v = p, *vend = p ? value_end(p, aend) : NULL;
        if (!vend)
            return;
        p = vend;
        if (k.type == SL_MP_STR && map_value(e, eend, k.v.str.ptr, k.v.str.len))
            continue;
        size_t old = k.type == SL_MP_STR ? path_key(c, k.v.str.ptr, k.v.str.len) : c->plen;
        differ(c, "unexpected key (got %s; match: exact)",
               sl__mp_json(v, (size_t)(vend - v), SHOW, show, sizeof show));
        path_pop(c, old);
    }
}

static void compare_arrays(cmp *c, const uint8_t *e, const uint8_t *eend, const uint8_t *a,
                           const uint8_t *aend, uint32_t n, int depth)
{
    const uint8_t *pe = e, *pa = a;
    sl_mp_val h;

    sl_mp_read(&pe, eend, &h);
    sl_mp_read(&pa, aend, &h);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *ee = value_end(pe, eend), *ae = value_end(pa, aend);
        if (!ee || !ae)
            return;
        size_t old = path_index(c, i);
        compare(c, pe, ee, pa, ae, depth + 1);
        path_pop(c, old);
        pe = ee;
        pa = ae;
    }
}

/* Compare the value at [e, eend) (expected) with the one at [a, aend) (actual). */
static void compare(cmp *c, const uint8_t *e, const uint8_t *eend, const uint8_t *a,
                    const uint8_t *aend, int depth)
{
    sl_mp_val ev, av;
    const uint8_t *pe = e, *pa = a;
    char es[SHOW + 8], as[SHOW + 8];

    if (!a || !aend || sl_mp_read(&pe, eend, &ev) != 0 || sl_mp_read(&pa, aend, &av) != 0) {
        differ(c, "(malformed value)");
        return;
    }
    if (depth > MAX_DEPTH) {
        differ(c, "nested deeper than %d levels", MAX_DEPTH);
        return;
    }
    int same;
    if (ev.type == SL_MP_MAP && av.type == SL_MP_MAP) {
        compare_maps(c, e, eend, a, aend, depth);
        return;
    }
    if (ev.type == SL_MP_ARRAY && av.type == SL_MP_ARRAY) {
        if (ev.v.n == av.v.n) {
            compare_arrays(c, e, eend, a, aend, ev.v.n, depth);
            return;
        }
        differ(c, "expected %u elements, got %u: expected %s, got %s", ev.v.n, av.v.n,
               sl__mp_json(e, (size_t)(eend - e), SHOW, es, sizeof es),
               sl__mp_json(a, (size_t)(aend - a), SHOW, as, sizeof as));
        return;
    }
    if (is_number(ev.type) && is_number(av.type))
        same = numbers_equal(&ev, &av);
    else if (ev.type == SL_MP_STR && av.type == SL_MP_STR)
        same = strings_equal(&ev, &av);
    else if (ev.type == SL_MP_NIL || ev.type == SL_MP_BOOL)
        same = ev.type == av.type && (ev.type == SL_MP_NIL || ev.v.b == av.v.b);
    else
        same = ev.type == av.type && eend - e == aend - a && !memcmp(e, a, (size_t)(eend - e));
    if (!same)
        differ(c, "expected %s, got %s", sl__mp_json(e, (size_t)(eend - e), SHOW, es, sizeof es),
               sl__mp_json(a, (size_t)(aend - a), SHOW, as, sizeof as));
}

long sl__test_compare(const uint8_t *exp, size_t exp_len, const uint8_t *act, size_t act_len,
                      int exact, sl__strs *why)
{
    cmp c = {.exact = exact, .why = why};
    const uint8_t *eend = value_end(exp, exp + exp_len), *aend = value_end(act, act + act_len);

    if (!eend) {
        differ(&c, "(the expected value is not valid msgpack)");
    } else if (!aend) {
        differ(&c, "(the actual value is not valid msgpack)");
    } else {
        compare(&c, exp, eend, act, aend, 0);
    }
    return c.oom ? -1 : c.diffs;
}

/* -------------------------------------------------------------- lists */

typedef struct report {
    sl__strs *out;
    size_t lines;   /* lines added for this expectation */
    size_t dropped; /* lines over MAX_LINES */
    int oom;
} report;

static void say(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(report *r, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;

    if (r->lines >= MAX_LINES) {
        r->dropped++;
        return;
    }
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0 || sl__strs_add(r->out, s) != 0)
        r->oom = 1;
    va_end(ap);
    free(s);
    r->lines++;
}

/* "{...}" of an expected event (from its msgpack) or an actual one (its JSON line). */
static const char *show_event(const sl__test_event *ev, char *buf, size_t n)
{
    if (ev->json)
        return sl__cut(ev->json, SHOW_EVENT, buf, n);
    return sl__mp_json(ev->mp, ev->len, SHOW_EVENT, buf, n);
}

/* Each difference between expected event i and actual event j, prefixed. */
/*
 * Each difference between expected event i and actual event act: after
 * `prefix` when given, else after "event I (line L): ".
 */
static void say_diffs(report *r, const sl__test_events *exp, size_t i, const sl__test_event *act,
                      int exact, const char *prefix)
{
    sl__strs why = {0};
    if (sl__test_compare(exp->v[i].mp, exp->v[i].len, act->mp, act->len, exact, &why) < 0)
        r->oom = 1;
    for (size_t k = 0; k < why.n; k++) {
        if (prefix)
            say(r, "%s%s", prefix, why.v[k]);
        else
            say(r, "event %zu (line %d): %s", i + 1, exp->v[i].line, why.v[k]);
    }
    sl__strs_fini(&why);
}

/* The unexpected actual events (those with used[j] == 0), MAX_EXTRA at most. */
static void say_extra(report *r, const sl__test_events *act, const char *used, const char *head,
                      const char *label)
{
    char buf[SHOW_EVENT + 8];
    size_t shown = 0, left = 0;

    for (size_t j = 0; j < act->n; j++) {
        if (used && used[j])
            continue;
        if (shown == MAX_EXTRA) {
            left++;
            continue;
        }
        say(r, "%s%s", shown ? label : head, show_event(&act->v[j], buf, sizeof buf));
        shown++;
    }
    if (left)
        say(r, "... and %zu more", left);
}

static void check_strict(report *r, const sl__test_events *exp, const sl__test_rule *rule,
                         const sl__test_events *act)
{
    size_t n = exp->n < act->n ? exp->n : act->n;
    char buf[SHOW_EVENT + 8], head[128];

    for (size_t i = 0; i < n; i++) {
        long d = sl__test_compare(exp->v[i].mp, exp->v[i].len, act->v[i].mp, act->v[i].len,
                                  rule->exact, NULL);
        if (d < 0) {
            r->oom = 1;
            return;
        }
        if (d == 0)
            continue;
        /* the same event elsewhere: say the order differs rather than list every field */
        size_t j = 0;
        while (j < act->n && (j == i || sl__test_compare(exp->v[i].mp, exp->v[i].len,
                                                         act->v[j].mp, act->v[j].len,
                                                         rule->exact, NULL) != 0))
            j++;
        if (j < act->n)
            say(r, "event %zu (line %d): came out as event %zu, not %zu (if the order does not "
                   "matter, use order: any)", i + 1, exp->v[i].line, j + 1, i + 1);
        else
            say_diffs(r, exp, i, &act->v[i], rule->exact, NULL);
    }
    if (act->n > exp->n) {
        char *used = calloc(act->n, 1);
        if (!used) {
            r->oom = 1;
            return;
        }
        memset(used, 1, exp->n);
        snprintf(head, sizeof head, "expected %zu events, got %zu; unexpected: ", exp->n,
                 act->n);
        say_extra(r, act, used, head, "unexpected: ");
        free(used);
    } else if (act->n < exp->n) {
        for (size_t i = n; i < exp->n; i++)
            say(r, "expected %zu events, got %zu; missing: event %zu (line %d): %s", exp->n,
                act->n, i + 1, exp->v[i].line, show_event(&exp->v[i], buf, sizeof buf));
    }
}

/* Kuhn's augmenting path from expected event i; match_act[j] is the expected event of actual j. */
static int augment(const char *fits, size_t na, size_t i, long *match_act, char *seen, int depth)
{
    if (depth > MAX_AUGMENT_DEPTH)
        return 0;
    for (size_t j = 0; j < na; j++) {
        if (!fits[i * na + j] || seen[j])
            continue;
        seen[j] = 1;
        if (match_act[j] < 0 ||
            augment(fits, na, (size_t)match_act[j], match_act, seen, depth + 1)) {
            match_act[j] = (long)i;
            return 1;
        }
    }
    return 0;
}

/*
 * order: any. A maximum matching between expected and actual events (Kuhn's
 * algorithm on the "matches" relation), so that a loose expectation (say
 * `group: {}`, which partially matches every group) cannot take the one
 * event a stricter expectation needed, as first-fit would.
 */
static void check_any(report *r, const sl__test_events *exp, const sl__test_rule *rule,
                      const sl__test_events *act)
{
    size_t ne = exp->n, na = act->n, n_matched = 0;
    char *fits = NULL, *used = calloc(na ? na : 1, 1), *seen = calloc(na ? na : 1, 1);
    char *matched = calloc(ne ? ne : 1, 1);
    long *match_act = calloc(na ? na : 1, sizeof *match_act);
    char buf[SHOW_EVENT + 8], head[128];

    if (ne && na > MAX_PAIRS / ne) {
        say(r, "order: any compares every pair of events: %zu x %zu is too many (list fewer, "
               "or use order: strict)", ne, na);
        goto out;
    }
    fits = calloc(ne && na ? ne * na : 1, 1);
    if (!fits || !used || !seen || !matched || !match_act) {
        r->oom = 1;
        goto out;
    }
    for (size_t i = 0; i < ne; i++)
        for (size_t j = 0; j < na; j++) {
            long d = sl__test_compare(exp->v[i].mp, exp->v[i].len, act->v[j].mp, act->v[j].len,
                                      rule->exact, NULL);
            if (d < 0) {
                r->oom = 1;
                goto out;
            }
            fits[i * na + j] = d == 0;
        }
    for (size_t j = 0; j < na; j++)
        match_act[j] = -1;
    for (size_t i = 0; i < ne; i++) {
        memset(seen, 0, na ? na : 1);
        augment(fits, na, i, match_act, seen, 0);
    }
    for (size_t j = 0; j < na; j++)
        if (match_act[j] >= 0) {
            used[j] = 1;
            matched[match_act[j]] = 1;
            n_matched++;
        }
    for (size_t i = 0; i < ne; i++) {
        if (matched[i])
            continue;
        say(r, "event %zu (line %d) matches no output event: %s", i + 1, exp->v[i].line,
            show_event(&exp->v[i], buf, sizeof buf));
        /* the closest output event not taken by another expectation, to show how it differs */
        long best = -1;
        size_t best_j = 0;
        for (size_t j = 0; j < na; j++) {
            if (used[j])
                continue;
            long d = sl__test_compare(exp->v[i].mp, exp->v[i].len, act->v[j].mp, act->v[j].len,
                                      rule->exact, NULL);
            if (d > 0 && (best < 0 || d < best)) {
                best = d;
                best_j = j;
            }
        }
        if (best > 0)
            say_diffs(r, exp, i, &act->v[best_j], rule->exact, "  closest output: ");
    }
    if (na != ne || n_matched < na) {
        if (na == ne)
            snprintf(head, sizeof head, "unexpected: ");
        else
            snprintf(head, sizeof head, "expected %zu events, got %zu; unexpected: ", ne, na);
        if (n_matched < na)
            say_extra(r, act, used, head, "unexpected: ");
        else
            say(r, "expected %zu events, got %zu", ne, na);
    }
out:
    free(fits);
    free(used);
    free(seen);
    free(matched);
    free(match_act);
}

int sl__test_check(const sl__test_events *exp, const sl__test_rule *rule,
                   const sl__test_events *act, sl__strs *out)
{
    report r = {.out = out};
    char head[128];

    if (rule->count >= 0) {
        if ((uint64_t)rule->count != act->n) {
            snprintf(head, sizeof head, "expected %lld events, got %zu%s",
                     (long long)rule->count, act->n, act->n ? "; got: " : "");
            if (act->n)
                say_extra(&r, act, NULL, head, "got: ");
            else
                say(&r, "%s", head);
        }
    } else if (rule->any_order) {
        check_any(&r, exp, rule, act);
    } else {
        check_strict(&r, exp, rule, act);
    }
    if (r.dropped && sl__strs_addf(out, "... and %zu more lines", r.dropped) != 0)
        r.oom = 1;
    if (r.oom)
        return -1;
    return r.lines ? 1 : 0;
}
