/*
 * test_expr.c - the expression language (engine/expr*.c).
 *
 * Expectations:
 * - every row of test_expr_cases.h (literals, paths, operators, functions,
 *   CEL's type and error rules, compile errors with their byte offsets) gives
 *   exactly the result, kind or error it names, through sl_expr_eval_msgpack
 *   and, for bools, sl_expr_eval_bool;
 * - the same expression compiled without constant folding gives the same
 *   result or the same error, and constant subexpressions really fold to a
 *   single constant;
 * - the top-level && terms evaluated one by one (in any order, with CEL's
 *   rule: false wins, then error, then true) give what the whole gives;
 * - variables (a join's left/right) scope identifiers to their documents;
 * - sl_expr_path reports plain paths only; static result types are right;
 * - a warm evaluator running a typical filter allocates nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "expr_internal.h"
#include "json.h"

#include "test_expr_cases.h"

/* ------------------------------------------------------------ counting malloc */

/*
 * Under glibc without a sanitizer, count every allocation of the process by
 * interposing malloc and friends over glibc's own entry points; the sanitizers
 * interpose these themselves, so there the test relies on
 * sl_expr_vm_allocations alone.
 */
#if defined(__SANITIZE_ADDRESS__)
#define NO_MALLOC_HOOK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define NO_MALLOC_HOOK 1
#endif
#endif
#if !defined(__GLIBC__)
#define NO_MALLOC_HOOK 1
#endif

static size_t malloc_calls;
#ifndef NO_MALLOC_HOOK
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
void *malloc(size_t n);
void *calloc(size_t n, size_t m);
void *realloc(void *p, size_t n);
void free(void *p);
void *malloc(size_t n)
{
    malloc_calls++;
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t m)
{
    malloc_calls++;
    return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n)
{
    malloc_calls++;
    return __libc_realloc(p, n);
}
void free(void *p)
{
    __libc_free(p);
}
#endif

/* ------------------------------------------------------------ events */

#define EVENT                                                                                      \
    "{\"id\":\"evt-1\",\"type\":\"order.created\",\"source\":\"order-service\","                   \
    "\"time\":\"2026-01-01T00:00:00.500Z\",\"data\":{"                                             \
    "\"orderId\":\"o-1\",\"customerId\":\"cust-123\",\"total\":150.5,\"status\":\"PAID\","         \
    "\"items\":[{\"sku\":\"a\",\"qty\":2},{\"sku\":\"b\",\"qty\":1}],\"count\":3,"                 \
    "\"tags\":[\"x\",\"y\"],\"odd key\":1,\"big\":18446744073709551615,\"neg\":-7,"                \
    "\"nothing\":null,\"flag\":true,\"unicode\":\"h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93\","       \
    "\"nested\":{\"a\":{\"b\":{\"c\":42}}},\"empty\":\"\",\"ratio\":0.5}}"

/* The msgpack of a JSON event (malloc'ed into *out). */
static void event(const char *json, sl_wbuf *out)
{
    size_t len = strlen(json);
    char *buf = malloc(len + SL_JSON_PADDING);
    assert_non_null(buf);
    memcpy(buf, json, len);
    memset(buf + len, ' ', SL_JSON_PADDING);
    sl_json_parser *p = sl_json_parser_new();
    char err[128];
    sl_wbuf_init(out);
    if (sl_json_to_msgpack(p, buf, len, len + SL_JSON_PADDING, 1, out, err, sizeof err) != 0)
        fail_msg("bad test event: %s", err);
    sl_json_parser_destroy(&p);
    free(buf);
}

/* JSON text of one msgpack value, NUL-terminated, in a static buffer. */
static const char *to_json(const uint8_t *mp, size_t len)
{
    static char text[2048];
    sl_wbuf j;
    sl_wbuf_init(&j);
    assert_int_equal(sl_msgpack_to_json(mp, len, &j), 0);
    snprintf(text, sizeof text, "%.*s", (int)j.len, (const char *)j.data);
    sl_wbuf_fini(&j);
    return text;
}

/* Outcome of one evaluation: "json", "kind:json" or "error: message". */
static void outcome(const sl_expr *e, sl_expr_vm *vm, const sl_wbuf *ev, int with_kind, char *buf,
                    size_t cap)
{
    const uint8_t *docs[1] = {ev->data};
    size_t lens[1] = {ev->len};
    sl_wbuf out;
    sl_wbuf_init(&out);
    if (sl_expr_eval_msgpack(e, vm, docs, lens, 1, &out) != 0) {
        snprintf(buf, cap, "error: %s", sl_expr_vm_error(vm));
    } else {
        const char *kind = "";
        if (with_kind) {
            sl__xval r;
            assert_int_equal(sl__xrun(e, vm, docs, lens, 1, &r), 0);
            kind = sl__xkind_name(r.kind);
            if (r.kind == XK_NULL) kind = "null";
        }
        snprintf(buf, cap, "%s%s%s", kind, with_kind ? ":" : "", to_json(out.data, out.len));
    }
    sl_wbuf_fini(&out);
}

static int has_kind_prefix(const char *want)
{
    static const char *const kinds[] = {
        "int:",  "uint:", "double:", "string:",    "bytes:",    "bool:",
        "null:", "list:", "map:",    "timestamp:", "duration:", NULL};
    for (size_t i = 0; kinds[i]; i++)
        if (strncmp(want, kinds[i], strlen(kinds[i])) == 0) return 1;
    return 0;
}

/* ------------------------------------------------------------ the table */

static void test_table(void **state)
{
    (void)state;
    sl_wbuf ev;
    event(EVENT, &ev);
    sl_expr_vm *vm = sl_expr_vm_new();
    assert_non_null(vm);
    size_t n = sizeof cases / sizeof cases[0];
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        const struct tcase *c = &cases[i];
        sl_expr *e = NULL;
        sl_expr_error err;
        char got[4096];
        int rc = sl_expr_compile(c->expr, strlen(c->expr), NULL, &e, &err);
        if (strncmp(c->want, "compile@", 8) == 0) {
            size_t off = strtoul(c->want + 8, NULL, 10);
            const char *msg = strchr(c->want, ':') + 2;
            if (rc == 0) {
                outcome(e, vm, &ev, 0, got, sizeof got);
                print_error("case %zu `%s`: compiled (result %s), want %s\n", i, c->expr, got,
                            c->want);
                failures++;
            } else if (err.offset != off || !strstr(err.msg, msg)) {
                print_error("case %zu `%s`: compile error @%zu \"%s\", want %s\n", i, c->expr,
                            err.offset, err.msg, c->want);
                failures++;
            }
            sl_expr_destroy(&e);
            continue;
        }
        if (rc != 0) {
            print_error("case %zu `%s`: compile error @%zu \"%s\", want %s\n", i, c->expr,
                        err.offset, err.msg, c->want);
            failures++;
            continue;
        }
        int with_kind = has_kind_prefix(c->want);
        outcome(e, vm, &ev, with_kind, got, sizeof got);
        int ok = strncmp(c->want, "error: ", 7) == 0
                     ? strncmp(got, "error: ", 7) == 0 && strstr(got + 7, c->want + 7) != NULL
                     : strcmp(got, c->want) == 0;
        if (!ok) {
            print_error("case %zu `%s`: got %s, want %s\n", i, c->expr, got, c->want);
            failures++;
        }
        /* eval_bool agrees: 1/0 for bools, -1 for errors and other kinds */
        const uint8_t *docs[1] = {ev.data};
        size_t lens[1] = {ev.len};
        int b = sl_expr_eval_bool(e, vm, docs, lens, 1);
        int want_b = strcmp(got, "true") == 0 || strcmp(got, "bool:true") == 0     ? 1
                     : strcmp(got, "false") == 0 || strcmp(got, "bool:false") == 0 ? 0
                                                                                   : -1;
        if (b != want_b) {
            print_error("case %zu `%s`: eval_bool %d, want %d\n", i, c->expr, b, want_b);
            failures++;
        }
        /* the unfolded program gives the same outcome */
        sl_expr *u = NULL;
        if (sl__xcompile(c->expr, strlen(c->expr), NULL, SL__X_NOFOLD, &u, &err) != 0) {
            /* only matches() may refuse: an unfolded "a" + "b" is no literal pattern */
            if (!strstr(err.msg, "literal pattern")) {
                print_error("case %zu `%s`: unfolded compile error \"%s\"\n", i, c->expr, err.msg);
                failures++;
            }
        } else {
            char got2[4096];
            outcome(u, vm, &ev, with_kind, got2, sizeof got2);
            if (strcmp(got, got2) != 0) {
                print_error("case %zu `%s`: folded %s, unfolded %s\n", i, c->expr, got, got2);
                failures++;
            }
        }
        sl_expr_destroy(&u);
        sl_expr_destroy(&e);
    }
    print_message("%zu expression cases\n", n);
    assert_true(n >= 200);
    sl_expr_vm_destroy(&vm);
    sl_wbuf_fini(&ev);
    assert_int_equal(failures, 0);
}

/* ------------------------------------------------------------ folding */

static void test_folding(void **state)
{
    (void)state;
    static const char *const constant[] = {
        "1 + 2",
        "\"a\" + \"b\"",
        "[1, 2 * 3, \"x\"]",
        "{\"a\": [1, 2]}",
        "size(\"abc\") > 2 && \"abc\".startsWith(\"a\")",
        "timestamp(\"2026-01-01T00:00:00Z\") + duration(\"1h\")",
        "true ? 1 : 2",
        "\"abc\".matches(\"^a\")",
        "int(\"42\") % 5",
        "has({\"a\": 1}.a)",
        "false && data.x",
        "data.x || true",
        "[1, 2][1]",
    };
    for (size_t i = 0; i < sizeof constant / sizeof constant[0]; i++) {
        sl_expr *e = NULL;
        sl_expr_error err;
        assert_int_equal(sl_expr_compile(constant[i], strlen(constant[i]), NULL, &e, &err), 0);
        if (e->ncode != 1 || e->code[0].op != OP_CONST)
            fail_msg("`%s` did not fold to one constant (%u instructions)", constant[i], e->ncode);
        sl_expr_destroy(&e);
    }
    /* errors stay for run time, where && / || may absorb them */
    static const char *const kept[] = {"1 / 0", "int(\"x\")", "9223372036854775807 + 1"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        sl_expr *e = NULL;
        sl_expr_error err;
        assert_int_equal(sl_expr_compile(kept[i], strlen(kept[i]), NULL, &e, &err), 0);
        assert_true(e->ncode > 1);
        sl_expr_destroy(&e);
    }
    /* partly constant: the constant part folds, the field load stays */
    sl_expr *e = NULL;
    sl_expr_error err;
    const char *t = "data.total > 10.0 * 10.0 + 0.5";
    assert_int_equal(sl_expr_compile(t, strlen(t), NULL, &e, &err), 0);
    assert_int_equal(e->ncode, 3); /* PATH, CONST 100.5, GT */
    assert_int_equal(e->code[0].op, OP_PATH);
    assert_int_equal(e->code[1].op, OP_CONST);
    sl_expr_destroy(&e);
}

/* ------------------------------------------------------------ and-terms */

static int and_of_terms(const sl_expr *e, sl_expr_vm *vm, const sl_wbuf *ev, int reverse)
{
    const uint8_t *docs[1] = {ev->data};
    size_t lens[1] = {ev->len};
    size_t n = sl_expr_and_terms(e);
    int result = 1;
    for (size_t k = 0; k < n; k++) {
        const sl_expr *t = sl_expr_and_term(e, reverse ? n - 1 - k : k);
        int r = sl_expr_eval_bool(t, vm, docs, lens, 1);
        if (r == 0) return 0;
        if (r < 0) result = -1;
    }
    return result;
}

static void test_and_terms(void **state)
{
    (void)state;
    static const struct {
        const char *expr;
        size_t terms;
    } exprs[] = {
        {"type.startsWith(\"order.\") && data.total > 100.0", 2},
        {"data.count == 3 && (data.flag && data.status == \"PAID\") && has(data.tags)", 4},
        {"data.missing == 1 && data.count == 4", 2},
        {"data.missing == 1 && data.count == 3", 2},
        {"data.count == 3 && data.status.matches(\"^P\") && \"x\" in data.tags", 3},
        {"data.total > 1000.0 || data.count == 3", 1},
        {"data.count && true", 2},
        {"data.count == 3", 1},
        {"(data.count == 3 || data.missing) && data.ratio < 1.0 && time > "
         "timestamp(\"2025-01-01T00:00:00Z\")",
         3},
    };
    static const char *const events[] = {
        EVENT,
        ("{\"id\":\"e2\",\"type\":\"payment.processed\",\"time\":\"2026-01-02T00:00:00Z\","
         "\"data\":{\"total\":50.0,\"count\":3,\"flag\":false,\"status\":\"DECLINED\","
         "\"tags\":[],\"ratio\":2.0}}"),
        ("{\"id\":\"e3\",\"type\":\"order.updated\",\"time\":\"2024-01-01T00:00:00Z\","
         "\"data\":{\"total\":500.0,\"count\":\"3\",\"missing\":1}}"),
        "{\"id\":\"e4\",\"type\":\"order.x\",\"data\":7}",
    };
    sl_expr_vm *vm = sl_expr_vm_new();
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
        sl_expr *e = NULL;
        sl_expr_error err;
        assert_int_equal(sl_expr_compile(exprs[i].expr, strlen(exprs[i].expr), NULL, &e, &err), 0);
        if (sl_expr_and_terms(e) != exprs[i].terms)
            fail_msg("`%s`: %zu terms, want %zu", exprs[i].expr, sl_expr_and_terms(e),
                     exprs[i].terms);
        if (exprs[i].terms == 1) assert_ptr_equal(sl_expr_and_term(e, 0), e);
        assert_null(sl_expr_and_term(e, exprs[i].terms));
        for (size_t k = 0; k < sizeof events / sizeof events[0]; k++) {
            sl_wbuf ev;
            event(events[k], &ev);
            const uint8_t *docs[1] = {ev.data};
            size_t lens[1] = {ev.len};
            int whole = sl_expr_eval_bool(e, vm, docs, lens, 1);
            int fwd = and_of_terms(e, vm, &ev, 0), rev = and_of_terms(e, vm, &ev, 1);
            if (whole != fwd || whole != rev)
                fail_msg("`%s` on event %zu: whole %d, terms %d / reversed %d", exprs[i].expr, k,
                         whole, fwd, rev);
            sl_wbuf_fini(&ev);
        }
        sl_expr_destroy(&e);
    }
    sl_expr_vm_destroy(&vm);
}

/* ------------------------------------------------------------ variables */

static void test_vars(void **state)
{
    (void)state;
    static const char *const vars[] = {"left", "right", NULL};
    sl_wbuf l, r, r2;
    event(
        "{\"id\":\"a\",\"type\":\"order.completed\",\"data\":{\"orderId\":\"o-1\",\"total\":10.0}}",
        &l);
    event("{\"id\":\"b\",\"type\":\"payment.processed\",\"data\":{\"orderId\":\"o-1\",\"amount\":"
          "10.0}}",
          &r);
    event("{\"id\":\"c\",\"type\":\"payment.processed\",\"data\":{\"orderId\":\"o-1\"}}", &r2);
    const uint8_t *docs[2] = {l.data, r.data}, *docs2[2] = {l.data, r2.data};
    size_t lens[2] = {l.len, r.len}, lens2[2] = {l.len, r2.len};
    sl_expr_vm *vm = sl_expr_vm_new();
    sl_expr *e = NULL;
    sl_expr_error err;

    const char *t =
        "left.data.orderId == right.data.orderId && left.data.total == right.data.amount";
    assert_int_equal(sl_expr_compile(t, strlen(t), vars, &e, &err), 0);
    assert_int_equal(sl_expr_eval_bool(e, vm, docs, lens, 2), 1);
    assert_int_equal(sl_expr_eval_bool(e, vm, docs2, lens2, 2), -1); /* right.data.amount missing */
    assert_non_null(strstr(sl_expr_vm_error(vm), "no such key: 'amount'"));
    assert_int_equal(sl_expr_eval_bool(e, vm, docs, lens, 1), -1);
    assert_non_null(strstr(sl_expr_vm_error(vm), "expected 2 documents"));
    sl_expr_destroy(&e);

    t = "has(right.data.amount) && right.type.endsWith(\"processed\")";
    assert_int_equal(sl_expr_compile(t, strlen(t), vars, &e, &err), 0);
    assert_int_equal(sl_expr_eval_bool(e, vm, docs, lens, 2), 1);
    assert_int_equal(sl_expr_eval_bool(e, vm, docs2, lens2, 2), 0);
    sl_expr_destroy(&e);

    /* a bare variable is its whole document */
    t = "size(left)";
    assert_int_equal(sl_expr_compile(t, strlen(t), vars, &e, &err), 0);
    sl_wbuf out;
    sl_wbuf_init(&out);
    assert_int_equal(sl_expr_eval_msgpack(e, vm, docs, lens, 2, &out), 0);
    assert_string_equal(to_json(out.data, out.len), "3");
    sl_wbuf_fini(&out);
    sl_expr_destroy(&e);

    t = "lefft.data.x == 1";
    assert_int_equal(sl_expr_compile(t, strlen(t), vars, &e, &err), -1);
    assert_null(e);
    assert_int_equal(err.offset, 0);
    assert_string_equal(err.msg, "undeclared reference to 'lefft' (did you mean 'left'?)");
    t = "data.x == 1";
    assert_int_equal(sl_expr_compile(t, strlen(t), vars, &e, &err), -1);
    assert_non_null(strstr(err.msg, "undeclared reference to 'data'"));
    t = "has(left)";
    assert_int_equal(sl_expr_compile(t, strlen(t), vars, &e, &err), -1);
    assert_int_equal(err.offset, 4);

    /* path of a variable's field: the variable comes first */
    t = "left.data[\"orderId\"]";
    assert_int_equal(sl_expr_compile(t, strlen(t), vars, &e, &err), 0);
    const char *const *segs;
    const size_t *seglens;
    assert_int_equal(sl_expr_path(e, &segs, &seglens), 3);
    assert_string_equal(segs[0], "left");
    assert_string_equal(segs[2], "orderId");
    assert_int_equal(seglens[1], 4);
    sl_expr_destroy(&e);

    sl_expr_vm_destroy(&vm);
    sl_wbuf_fini(&l);
    sl_wbuf_fini(&r);
    sl_wbuf_fini(&r2);
}

/* ------------------------------------------------------------ paths, types */

static void test_paths(void **state)
{
    (void)state;
    static const struct {
        const char *expr;
        size_t n;
        const char *segs[4];
    } paths[] = {
        {"data.customerId", 2, {"data", "customerId"}},
        {"data[\"odd key\"].x", 3, {"data", "odd key", "x"}},
        {"type", 1, {"type"}},
        {"(data).a.b", 3, {"data", "a", "b"}},
        {"data.items[0]", 0, {NULL}},
        {"data.total > 1.0", 0, {NULL}},
        {"data.x.lower()", 0, {NULL}},
        {"\"type\"", 0, {NULL}},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        sl_expr *e = NULL;
        sl_expr_error err;
        assert_int_equal(sl_expr_compile(paths[i].expr, strlen(paths[i].expr), NULL, &e, &err), 0);
        const char *const *segs = NULL;
        const size_t *lens = NULL;
        size_t n = sl_expr_path(e, &segs, &lens);
        if (n != paths[i].n) fail_msg("`%s`: %zu segments, want %zu", paths[i].expr, n, paths[i].n);
        for (size_t k = 0; k < n; k++) {
            assert_string_equal(segs[k], paths[i].segs[k]);
            assert_int_equal(lens[k], strlen(paths[i].segs[k]));
        }
        sl_expr_destroy(&e);
    }
}

static void test_result_types(void **state)
{
    (void)state;
    static const struct {
        const char *expr;
        sl_expr_type type;
    } types[] = {
        {"1 + 2", SL_EXPR_INT},
        {"data.x", SL_EXPR_DYN},
        {"data.x + 1", SL_EXPR_INT},
        {"\"a\" + data.x", SL_EXPR_STRING},
        {"type.startsWith(\"a\")", SL_EXPR_BOOL},
        {"size(data)", SL_EXPR_INT},
        {"data.x == 1", SL_EXPR_BOOL},
        {"timestamp(data.t) - data.u", SL_EXPR_DYN},
        {"time - timestamp(\"2026-01-01T00:00:00Z\")", SL_EXPR_DURATION}, /* only ts - ts fits */
        {"data.x - duration(\"1s\")", SL_EXPR_DYN},
        {"duration(data.d)", SL_EXPR_DURATION},
        {"[data.x]", SL_EXPR_LIST},
        {"{\"a\": data.x}", SL_EXPR_MAP},
        {"data.x ? 1 : 2", SL_EXPR_INT},
        {"data.x ? 1 : \"a\"", SL_EXPR_DYN},
        {"string(data.x)", SL_EXPR_STRING},
        {"1u", SL_EXPR_UINT},
        {"b\"x\"", SL_EXPR_BYTES},
        {"null", SL_EXPR_NULL},
        {"2.0 * data.x", SL_EXPR_DOUBLE},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        sl_expr *e = NULL;
        sl_expr_error err;
        if (sl_expr_compile(types[i].expr, strlen(types[i].expr), NULL, &e, &err) != 0)
            fail_msg("`%s`: %s", types[i].expr, err.msg);
        if (sl_expr_result_type(e) != types[i].type)
            fail_msg("`%s`: type %d, want %d", types[i].expr, sl_expr_result_type(e),
                     types[i].type);
        sl_expr_destroy(&e);
    }
}

/* ------------------------------------------------------------ API edges */

static void test_api_edges(void **state)
{
    (void)state;
    sl_expr *e = NULL;
    sl_expr_error err;
    sl_expr_destroy(NULL);
    sl_expr_destroy(&e);
    sl_expr_vm_destroy(NULL);
    assert_int_equal(sl_expr_compile(NULL, 1, NULL, &e, &err), -1);
    assert_int_equal(sl_expr_compile("1", 1, NULL, NULL, &err), -1);
    assert_int_equal(sl_expr_compile("1 +", 3, NULL, &e, NULL), -1); /* err may be NULL */
    /* `len` bounds the text: "true" of "true && false" */
    assert_int_equal(sl_expr_compile("true && false", 4, NULL, &e, &err), 0);
    sl_expr_vm *vm = sl_expr_vm_new();
    sl_wbuf ev;
    event(EVENT, &ev);
    const uint8_t *docs[1] = {ev.data};
    size_t lens[1] = {ev.len};
    assert_int_equal(sl_expr_eval_bool(e, vm, docs, lens, 1), 1);
    sl_expr_destroy(&e);
    assert_null(e);

    /* non-bool result through eval_bool */
    assert_int_equal(sl_expr_compile("data.count", 10, NULL, &e, &err), 0);
    assert_int_equal(sl_expr_eval_bool(e, vm, docs, lens, 1), -1);
    assert_string_equal(sl_expr_vm_error(vm), "expected a bool result, got int");
    sl_expr_destroy(&e);

    /* an error leaves the output buffer as it was */
    sl_wbuf out;
    sl_wbuf_init(&out);
    sl_mp_write_int(&out, 1);
    assert_int_equal(sl_expr_compile("data.nope", 9, NULL, &e, &err), 0);
    assert_int_equal(sl_expr_eval_msgpack(e, vm, docs, lens, 1, &out), -1);
    assert_int_equal(out.len, 1);
    sl_wbuf_fini(&out);

    /* truncated and garbage documents are errors, never over-reads */
    for (size_t cut = 1; cut < ev.len; cut++) {
        size_t l = cut;
        int rc = sl_expr_eval_bool(e, vm, docs, &l, 1);
        assert_int_equal(rc, -1);
    }
    static const uint8_t junk[] = {0xc1, 0xc1, 0xc1};
    const uint8_t *jd[1] = {junk};
    size_t jl[1] = {sizeof junk};
    assert_int_equal(sl_expr_eval_bool(e, vm, jd, jl, 1), -1);
    sl_expr_destroy(&e);

    /* deep nesting is refused at compile time, not on the C stack */
    char deep[2000];
    size_t o = 0;
    for (int i = 0; i < 400; i++)
        deep[o++] = '(';
    deep[o++] = '1';
    for (int i = 0; i < 400; i++)
        deep[o++] = ')';
    assert_int_equal(sl_expr_compile(deep, o, NULL, &e, &err), -1);
    assert_non_null(strstr(err.msg, "nested too deeply"));
    o = 0;
    deep[o++] = '1';
    for (int i = 0; i < 300; i++) {
        memcpy(deep + o, " + 1", 4);
        o += 4;
    }
    assert_int_equal(sl_expr_compile(deep, o, NULL, &e, &err), -1);
    assert_non_null(strstr(err.msg, "nested too deeply"));
    o = 0;
    for (int i = 0; i < 600; i++)
        deep[o++] = '!';
    deep[o++] = 'x';
    assert_int_equal(sl_expr_compile(deep, o, NULL, &e, &err), -1);
    /* ... but 200 levels are fine */
    o = 0;
    for (int i = 0; i < 200; i++)
        deep[o++] = '[';
    for (int i = 0; i < 200; i++)
        deep[o++] = ']';
    assert_int_equal(sl_expr_compile(deep, o, NULL, &e, &err), 0);
    sl_expr_destroy(&e);

    sl_wbuf_fini(&ev);
    sl_expr_vm_destroy(&vm);
}

/* ------------------------------------------------------------ no allocation per event */

static void test_no_alloc(void **state)
{
    (void)state;
    /* gen_events.py shape */
    sl_wbuf ev[2];
    event("{\"id\":\"evt-0000000001\",\"type\":\"order.created\",\"source\":\"order-service\","
          "\"time\":\"2026-01-01T00:00:00.001Z\",\"data\":{\"orderId\":\"o-00000001\","
          "\"customerId\":\"cust-123\",\"total\":123.45,\"status\":\"PENDING\",\"items\":3}}",
          &ev[0]);
    event(
        "{\"id\":\"evt-0000000002\",\"type\":\"payment.processed\",\"source\":\"payment-service\","
        "\"time\":\"2026-01-01T00:00:00.002Z\",\"data\":{\"id\":\"pay-00000001\","
        "\"orderId\":\"o-00000001\",\"amount\":99.5,\"status\":\"APPROVED\"}}",
        &ev[1]);
    static const char *const filters[] = {
        "type.startsWith(\"order.\") && data.total > 100.0",
        "data.customerId in [\"cust-123\", \"cust-456\"] || data.status.lower() == \"approved\"",
        "has(data.status) ? data.status.lower() + \"!\" == \"pending!\" : false",
        "time > timestamp(\"2025-01-01T00:00:00Z\") && data.missing == 1",
        "[data.status, type] + [\"x\"] == [\"PENDING\", \"order.created\", \"x\"]",
        "{\"s\": data.status, \"t\": string(data.total)}.s.size() > 1",
    };
    sl_expr_vm *vm = sl_expr_vm_new();
    for (size_t f = 0; f < sizeof filters / sizeof filters[0]; f++) {
        sl_expr *e = NULL;
        sl_expr_error err;
        assert_int_equal(sl_expr_compile(filters[f], strlen(filters[f]), NULL, &e, &err), 0);
        int results[2];
        for (int k = 0; k < 2; k++) { /* warm up */
            const uint8_t *docs[1] = {ev[k].data};
            size_t lens[1] = {ev[k].len};
            results[k] = sl_expr_eval_bool(e, vm, docs, lens, 1);
        }
        size_t vm_allocs = sl_expr_vm_allocations(vm), calls = malloc_calls;
        for (int i = 0; i < 10000; i++) {
            const uint8_t *docs[1] = {ev[i & 1].data};
            size_t lens[1] = {ev[i & 1].len};
            int r = sl_expr_eval_bool(e, vm, docs, lens, 1);
            if (r != results[i & 1]) fail_msg("`%s`: result changed", filters[f]);
        }
        assert_int_equal(sl_expr_vm_allocations(vm), vm_allocs);
        assert_int_equal(malloc_calls, calls); /* 0 == 0 under sanitizers */
        sl_expr_destroy(&e);
    }
#ifndef NO_MALLOC_HOOK
    assert_true(malloc_calls > 0); /* the hook is live */
#endif
    sl_expr_vm_destroy(&vm);
    sl_wbuf_fini(&ev[0]);
    sl_wbuf_fini(&ev[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),     cmocka_unit_test(test_folding),
        cmocka_unit_test(test_and_terms), cmocka_unit_test(test_vars),
        cmocka_unit_test(test_paths),     cmocka_unit_test(test_result_types),
        cmocka_unit_test(test_api_edges), cmocka_unit_test(test_no_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
