/*
 * fuzz_expr.c - libFuzzer target for the expression language.
 *
 * The input is expression text. It is compiled in event scope and with two
 * variables; whatever compiles is evaluated against two fixed events (one
 * ordinary, one full of odd msgpack: int keys, bin, nested lists, a
 * timestamp, a non-timestamp ext). Besides crashes and sanitizer reports,
 * the target aborts when
 * - the folded and the unfolded program disagree (result bytes or error),
 * - the && terms evaluated one by one disagree with the whole expression,
 * - eval_bool and eval_msgpack disagree about success.
 *
 * Build (clang): meson setup with CC=clang and -Db_sanitize=address,undefined,
 * then `ninja tests/fuzz/fuzz_expr`; run with the dictionary next to this file:
 *   ./fuzz_expr -dict=../tests/fuzz/expr.dict -max_len=256 corpus/
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "expr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sl_wbuf ev[2];
static sl_expr_vm *vm;

static void put_kv_str(sl_wbuf *b, const char *k, const char *v)
{
    sl_mp_write_cstr(b, k);
    sl_mp_write_cstr(b, v);
}

static void build_events(void)
{
    sl_wbuf *b = &ev[0];
    sl_mp_write_map(b, 5);
    put_kv_str(b, "id", "evt-1");
    put_kv_str(b, "type", "order.created");
    put_kv_str(b, "source", "order-service");
    sl_mp_write_cstr(b, "time");
    sl_mp_write_timestamp(b, INT64_C(1767225600500000000));
    sl_mp_write_cstr(b, "data");
    sl_mp_write_map(b, 7);
    put_kv_str(b, "customerId", "cust-123");
    sl_mp_write_cstr(b, "total");
    sl_mp_write_double(b, 150.5);
    put_kv_str(b, "status", "PAID");
    sl_mp_write_cstr(b, "items");
    sl_mp_write_array(b, 2);
    for (int i = 0; i < 2; i++) {
        sl_mp_write_map(b, 2);
        put_kv_str(b, "sku", i ? "b" : "a");
        sl_mp_write_cstr(b, "qty");
        sl_mp_write_int(b, 2 - i);
    }
    sl_mp_write_cstr(b, "count");
    sl_mp_write_int(b, 3);
    sl_mp_write_cstr(b, "tags");
    sl_mp_write_array(b, 2);
    sl_mp_write_cstr(b, "x");
    sl_mp_write_cstr(b, "y");
    sl_mp_write_cstr(b, "big");
    sl_mp_write_uint(b, UINT64_MAX);

    b = &ev[1];
    sl_mp_write_map(b, 6);
    sl_mp_write_cstr(b, "type");
    sl_mp_write_int(b, -5);
    sl_mp_write_cstr(b, "data");
    sl_mp_write_map(b, 4);
    sl_mp_write_int(b, 1); /* an int key */
    sl_mp_write_cstr(b, "one");
    sl_mp_write_cstr(b, "bin");
    sl_mp_write_bin(b, "\xff\x00\x01", 3);
    sl_mp_write_cstr(b, "deep");
    for (int i = 0; i < 40; i++)
        sl_mp_write_array(b, 1);
    sl_mp_write_nil(b);
    sl_mp_write_cstr(b, "nan");
    sl_mp_write_double(b, NAN);
    sl_mp_write_cstr(b, "time");
    sl_mp_write_cstr(b, "not a timestamp");
    sl_mp_write_cstr(b, "ext");
    uint8_t ext[] = {0xd4, 0x05, 0x01}; /* fixext1 of type 5 */
    sl_wbuf_append(b, ext, sizeof ext);
    sl_mp_write_cstr(b, "f");
    sl_mp_write_bool(b, false);
    sl_mp_write_cstr(b, "s");
    sl_mp_write_str(b, "h\xc3\xa9llo", 6);
}

/* Evaluate into *out (cleared); returns eval_msgpack's result, checking eval_bool agrees. */
static int run(const sl_expr *e, const uint8_t *const *docs, const size_t *lens, size_t n,
               sl_wbuf *out, char *err)
{
    sl_wbuf_reset(out);
    int rc = sl_expr_eval_msgpack(e, vm, docs, lens, n, out);
    snprintf(err, 256, "%s", rc ? sl_expr_vm_error(vm) : "");
    int b = sl_expr_eval_bool(e, vm, docs, lens, n);
    if (rc != 0 && b != -1) abort(); /* an error for one is an error for the other */
    if (rc == 0 && b >= 0 && !(out->len == 1 && (out->data[0] == 0xc2 || out->data[0] == 0xc3)))
        abort(); /* eval_bool said bool, the value is not */
    return rc;
}

static void check(const char *text, size_t len, const char *const *vars)
{
    sl_expr *e = NULL, *u = NULL;
    sl_expr_error err;
    if (sl_expr_compile(text, len, vars, &e, &err) != 0) {
        if (err.offset > len || !err.msg[0]) abort();
        return;
    }
    int have_u = sl__xcompile(text, len, vars, SL__X_NOFOLD, &u, &err) == 0;
    static sl_wbuf a, b;
    char ea[256], eb[256];
    for (int k = 0; k < 2; k++) {
        const uint8_t *docs[2] = {ev[k].data, ev[1 - k].data};
        size_t lens[2] = {ev[k].len, ev[1 - k].len};
        size_t n = vars ? 2 : 1;
        int ra = run(e, docs, lens, n, &a, ea);
        if (have_u) {
            int rb = run(u, docs, lens, n, &b, eb);
            if (ra != rb || (ra == 0 && (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)) ||
                (ra != 0 && strcmp(ea, eb) != 0)) {
                fprintf(stderr, "folded and unfolded differ on `%.*s`: %d %s / %d %s\n", (int)len,
                        text, ra, ea, rb, eb);
                abort();
            }
        }
        /* the && terms, CEL's way: any false -> false, else any error -> error, else true */
        size_t nt = sl_expr_and_terms(e);
        int whole = sl_expr_eval_bool(e, vm, docs, lens, n), terms = 1;
        for (size_t t = nt; t-- > 0;) {
            int r = sl_expr_eval_bool(sl_expr_and_term(e, t), vm, docs, lens, n);
            if (r == 0) {
                terms = 0;
                break;
            }
            if (r < 0) terms = -1;
        }
        if (whole != terms && !(nt == 1)) {
            fprintf(stderr, "&& terms differ on `%.*s`: whole %d, terms %d\n", (int)len, text,
                    whole, terms);
            abort();
        }
    }
    const char *const *segs;
    const size_t *seglens;
    size_t np = sl_expr_path(e, &segs, &seglens);
    for (size_t i = 0; i < np; i++)
        if (strlen(segs[i]) > seglens[i]) abort();
    sl_expr_destroy(&u);
    sl_expr_destroy(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const vars[] = {"left", "right", NULL};
    if (!vm) {
        vm = sl_expr_vm_new();
        build_events();
    }
    if (size > 4096) return 0;
    /* a private copy, so reading past `size` is caught by ASan */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    memcpy(text, data, size);
    check(text, size, NULL);
    check(text, size, vars);
    free(text);
    return 0;
}
