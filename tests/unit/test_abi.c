/*
 * test_abi.c - the plugin ABI, pinned: sizes and offsets of the public
 * structures (LP64). A change here breaks every plugin built before it:
 * grow structures only at the end and bump nothing else (docs/plugins.md).
 * Also the host's field_get/field_set, which plugins use instead of
 * walking msgpack.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "instance.h"
#include "sluice/operator.h"

#define OFF(T, f, want) assert_int_equal(offsetof(T, f), want)

static void test_sizes_and_offsets(void **st)
{
    (void)st;
    assert_int_equal(SL_ABI_VERSION, 1);
    assert_int_equal(sizeof(void *), 8); /* the numbers below are for LP64 */
    assert_int_equal(sizeof(sl_param), 48);
    OFF(sl_param, type, 8);
    OFF(sl_param, default_value, 16);
    OFF(sl_param, required, 24);
    OFF(sl_param, help, 32);
    OFF(sl_param, choices, 40);
    assert_int_equal(sizeof(sl_batch), 32);
    OFF(sl_batch, ends, 8);
    OFF(sl_batch, count, 16);
    OFF(sl_batch, watermark, 24);
    assert_int_equal(sizeof(sl_plugin), 32);
    OFF(sl_plugin, name, 8);
    OFF(sl_plugin, version, 16);
    OFF(sl_plugin, operators, 24);
    assert_int_equal(sizeof(sl_wbuf), 24);
    /* the descriptor: the ABI-1 base ends at restore; checkpoint_done was appended */
    OFF(sl_operator, abi_version, 0);
    OFF(sl_operator, struct_size, 4);
    OFF(sl_operator, name, 8);
    OFF(sl_operator, flags, 24);
    OFF(sl_operator, params, 32);
    OFF(sl_operator, init, 72);
    OFF(sl_operator, process, 88);
    OFF(sl_operator, produce, 96);
    OFF(sl_operator, snapshot, 136);
    OFF(sl_operator, restore, 144);
    OFF(sl_operator, checkpoint_done, 152);
    assert_int_equal(sizeof(sl_operator), 160);
    /* the host table: existing entries never move */
    OFF(sl_host, abi_version, 0);
    OFF(sl_host, struct_size, 4);
    OFF(sl_host, param, 8);
    OFF(sl_host, emit, 136);
    OFF(sl_host, emit_drop, 152);
    OFF(sl_host, log, 192);
    OFF(sl_host, count, 200);
    OFF(sl_host, expr_compile, 208);
    OFF(sl_host, kv_open, 256);
    OFF(sl_host, kv_sync, 336);
    OFF(sl_host, checkpoint_last, 344);
    OFF(sl_host, field_get, 352);
    OFF(sl_host, field_set, 360);
    OFF(sl_host, gauge, 368);
    assert_int_equal(sizeof(sl_host), 376);
    assert_int_equal(sl__host.struct_size, sizeof(sl_host));
    assert_int_equal(sl__host.abi_version, SL_ABI_VERSION);
}

/* {"id": "e1", "data": {"amount": 5, "cur": "USD"}, "n": [1]} */
static void event(sl_wbuf *w)
{
    sl_mp_write_map(w, 3);
    sl_mp_write_cstr(w, "id");
    sl_mp_write_cstr(w, "e1");
    sl_mp_write_cstr(w, "data");
    sl_mp_write_map(w, 2);
    sl_mp_write_cstr(w, "amount");
    sl_mp_write_uint(w, 5);
    sl_mp_write_cstr(w, "cur");
    sl_mp_write_cstr(w, "USD");
    sl_mp_write_cstr(w, "n");
    sl_mp_write_array(w, 1);
    sl_mp_write_uint(w, 1);
}

/* field_get of path as a uint (or -1 absent, -2 other). */
static int64_t get_uint(const sl_wbuf *w, const char *path)
{
    const uint8_t *v;
    size_t n;
    int r = sl__host.field_get(NULL, w->data, w->len, path, &v, &n);
    if (r != 1)
        return r == 0 ? -1 : -3;
    sl_mp_val x;
    const uint8_t *p = v;
    return sl_mp_read(&p, v + n, &x) == 0 && x.type == SL_MP_UINT && p == v + n ? (int64_t)x.v.u
                                                                                 : -2;
}

static void test_field_get_and_set(void **st)
{
    (void)st;
    sl_wbuf ev = {0}, out = {0}, val = {0};
    event(&ev);
    assert_int_equal(get_uint(&ev, "data.amount"), 5);
    assert_int_equal(get_uint(&ev, "data.missing"), -1);
    assert_int_equal(get_uint(&ev, "id.deeper"), -1); /* not a map */
    assert_int_equal(get_uint(&ev, "id"), -2);        /* a string */

    sl_mp_write_uint(&val, 42);
    /* replace a nested field, add one to an existing map, make a new path */
    assert_int_equal(sl__host.field_set(NULL, ev.data, ev.len, "data.amount", val.data, val.len, &out), 0);
    assert_int_equal(get_uint(&out, "data.amount"), 42);
    const uint8_t *v;
    size_t n;
    assert_int_equal(sl__host.field_get(NULL, out.data, out.len, "data.cur", &v, &n), 1);
    assert_int_equal(n, 4);
    assert_memory_equal(v, "\xa3USD", 4);
    sl_wbuf w2 = {0};
    assert_int_equal(sl__host.field_set(NULL, out.data, out.len, "data.eur", val.data, val.len, &w2), 0);
    assert_int_equal(get_uint(&w2, "data.eur"), 42);
    assert_int_equal(get_uint(&w2, "data.amount"), 42);
    sl_wbuf w3 = {0};
    assert_int_equal(sl__host.field_set(NULL, w2.data, w2.len, "meta.a.b", val.data, val.len, &w3), 0);
    assert_int_equal(get_uint(&w3, "meta.a.b"), 42);
    assert_int_equal(get_uint(&w3, "data.eur"), 42);
    /* a non-map on the way is replaced by a map */
    sl_wbuf w4 = {0};
    assert_int_equal(sl__host.field_set(NULL, w3.data, w3.len, "id.x", val.data, val.len, &w4), 0);
    assert_int_equal(get_uint(&w4, "id.x"), 42);
    /* the result is one well-formed value, and out is untouched on failure */
    const uint8_t *p = w4.data;
    assert_int_equal(sl_mp_skip(&p, w4.data + w4.len), 0);
    assert_ptr_equal(p, w4.data + w4.len);
    size_t before = w4.len;
    assert_int_equal(sl__host.field_set(NULL, val.data, val.len, "a", val.data, val.len, &w4), -1);
    assert_int_equal(w4.len, before);
    sl_wbuf_fini(&ev);
    sl_wbuf_fini(&out);
    sl_wbuf_fini(&val);
    sl_wbuf_fini(&w2);
    sl_wbuf_fini(&w3);
    sl_wbuf_fini(&w4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_and_offsets),
        cmocka_unit_test(test_field_get_and_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
