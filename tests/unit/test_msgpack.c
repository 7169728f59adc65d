/*
 * test_msgpack.c - the in-place reader and the writer of sluice/msgpack.h,
 * checked against msgpack-c (the reference codec): what msgpack-c packs we
 * must read back exactly, what we write msgpack-c must unpack to the same
 * values, and no truncated input may be read past its end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <msgpack.h>

#include "sluice/msgpack.h"

static void test_read_what_msgpack_c_packs(void **st)
{
    (void)st;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    static const int64_t ints[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295ll,
                                   4294967296ll, INT64_MAX, -1, -32, -33, -128, -129,
                                   -32768, -32769, INT32_MIN, (int64_t)INT32_MIN - 1, INT64_MIN};
    size_t n_ints = sizeof ints / sizeof *ints;
    for (size_t i = 0; i < n_ints; i++)
        msgpack_pack_int64(&pk, ints[i]);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_double(&pk, 123.45);
    msgpack_pack_float(&pk, 0.5f);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_false(&pk);
    char big[70000];
    memset(big, 'x', sizeof big);
    static const size_t str_lens[] = {0, 31, 32, 255, 256, 65535, 65536};
    for (size_t i = 0; i < 7; i++) {
        msgpack_pack_str(&pk, str_lens[i]);
        msgpack_pack_str_body(&pk, big, str_lens[i]);
    }
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "abc", 3);
    msgpack_pack_array(&pk, 20);
    for (int i = 0; i < 20; i++)
        msgpack_pack_int(&pk, i);
    msgpack_pack_map(&pk, 16);
    for (int i = 0; i < 16; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        msgpack_pack_str(&pk, strlen(k));
        msgpack_pack_str_body(&pk, k, strlen(k));
        msgpack_pack_int(&pk, i * 10);
    }
    msgpack_timestamp ts = {.tv_sec = 1767225600, .tv_nsec = 123000000};
    msgpack_pack_timestamp(&pk, &ts);

    const uint8_t *p = (const uint8_t *)sb.data, *end = p + sb.size;
    sl_mp_val v;
    for (size_t i = 0; i < n_ints; i++) {
        assert_int_equal(sl_mp_read(&p, end, &v), 0);
        if (ints[i] < 0) {
            assert_int_equal(v.type, SL_MP_INT);
            assert_true(v.v.i == ints[i]);
        } else {
            assert_int_equal(v.type, SL_MP_UINT);
            assert_true(v.v.u == (uint64_t)ints[i]);
        }
    }
    assert_int_equal(sl_mp_read(&p, end, &v), 0);
    assert_true(v.type == SL_MP_UINT && v.v.u == UINT64_MAX);
    assert_int_equal(sl_mp_read(&p, end, &v), 0);
    assert_true(v.type == SL_MP_FLOAT && v.v.f == 123.45);
    assert_int_equal(sl_mp_read(&p, end, &v), 0);
    assert_true(v.type == SL_MP_FLOAT && v.v.f == 0.5);
    assert_int_equal(sl_mp_read(&p, end, &v), 0);
    assert_int_equal(v.type, SL_MP_NIL);
    assert_int_equal(sl_mp_read(&p, end, &v), 0);
    assert_true(v.type == SL_MP_BOOL && v.v.b);
    assert_int_equal(sl_mp_read(&p, end, &v), 0);
    assert_true(v.type == SL_MP_BOOL && !v.v.b);
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(sl_mp_read(&p, end, &v), 0);
        assert_int_equal(v.type, SL_MP_STR);
        assert_int_equal(v.v.str.len, str_lens[i]);
    }
    assert_int_equal(sl_mp_read(&p, end, &v), 0);
    assert_true(v.type == SL_MP_BIN && v.v.str.len == 3 && memcmp(v.v.str.ptr, "abc", 3) == 0);
    const uint8_t *arr = p;
    assert_int_equal(sl_mp_skip(&p, end), 0);
    assert_int_equal(sl_mp_read(&arr, end, &v), 0);
    assert_true(v.type == SL_MP_ARRAY && v.v.n == 20);
    /* map lookup, then the timestamp after it */
    const uint8_t *m = p;
    assert_int_equal(sl_mp_map_find(&m, end, "k13", 3), 1);
    assert_int_equal(sl_mp_read(&m, end, &v), 0);
    assert_true(v.type == SL_MP_UINT && v.v.u == 130);
    m = p;
    assert_int_equal(sl_mp_map_find(&m, end, "nope", 4), 0);
    assert_int_equal(sl_mp_skip(&p, end), 0);
    assert_int_equal(sl_mp_read(&p, end, &v), 0);
    int64_t ns;
    assert_int_equal(sl_mp_timestamp_ns(&v, &ns), 0);
    assert_true(ns == 1767225600123000000ll);
    assert_ptr_equal(p, end);
    msgpack_sbuffer_destroy(&sb);
}

static void test_msgpack_c_reads_what_we_write(void **st)
{
    (void)st;
    sl_wbuf w = {0};
    static const int64_t ints[] = {0, 5, 200, 70000, 5000000000ll, -5, -100, -40000,
                                   -3000000000ll, INT64_MIN, INT64_MAX};
    size_t n = sizeof ints / sizeof *ints;
    assert_int_equal(sl_mp_write_array(&w, (uint32_t)n + 6), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sl_mp_write_int(&w, ints[i]), 0);
    sl_mp_write_double(&w, -0.1);
    sl_mp_write_cstr(&w, "héllo");
    sl_mp_write_bool(&w, true);
    sl_mp_write_nil(&w);
    sl_mp_write_map(&w, 1);
    sl_mp_write_cstr(&w, "k");
    sl_mp_write_timestamp(&w, -1500000000ll); /* before the epoch: 96-bit form */
    sl_mp_write_timestamp(&w, 1767225600000000000ll);

    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, (const char *)w.data, w.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, w.len);
    msgpack_object_array a = u.data.via.array;
    assert_int_equal(a.size, n + 6);
    for (size_t i = 0; i < n; i++) {
        if (ints[i] < 0)
            assert_true(a.ptr[i].type == MSGPACK_OBJECT_NEGATIVE_INTEGER &&
                        a.ptr[i].via.i64 == ints[i]);
        else
            assert_true(a.ptr[i].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                        a.ptr[i].via.u64 == (uint64_t)ints[i]);
    }
    assert_true(a.ptr[n].type == MSGPACK_OBJECT_FLOAT64 && a.ptr[n].via.f64 == -0.1);
    assert_true(a.ptr[n + 1].type == MSGPACK_OBJECT_STR && a.ptr[n + 1].via.str.size == 6);
    assert_true(a.ptr[n + 2].type == MSGPACK_OBJECT_BOOLEAN && a.ptr[n + 2].via.boolean);
    assert_true(a.ptr[n + 3].type == MSGPACK_OBJECT_NIL);
    msgpack_object_kv kv = a.ptr[n + 4].via.map.ptr[0];
    msgpack_timestamp ts = {0, 0};
    assert_true(msgpack_object_to_timestamp(&kv.val, &ts));
    assert_true(ts.tv_sec == -2 && ts.tv_nsec == 500000000);
    assert_true(msgpack_object_to_timestamp(&a.ptr[n + 5], &ts));
    assert_true(ts.tv_sec == 1767225600 && ts.tv_nsec == 0);
    msgpack_unpacked_destroy(&u);

    /* and our reader agrees with the timestamp we wrote */
    const uint8_t *p = w.data, *end = w.data + w.len;
    sl_mp_val v;
    assert_int_equal(sl_mp_read(&p, end, &v), 0);
    for (size_t i = 0; i < n + 4; i++)
        assert_int_equal(sl_mp_skip(&p, end), 0);
    assert_int_equal(sl_mp_read(&p, end, &v), 0); /* map header */
    assert_int_equal(sl_mp_skip(&p, end), 0);     /* key */
    assert_int_equal(sl_mp_read(&p, end, &v), 0);
    int64_t ns;
    assert_int_equal(sl_mp_timestamp_ns(&v, &ns), 0);
    assert_true(ns == -1500000000ll);
    sl_wbuf_fini(&w);
}

/* Every strict prefix of a valid value must be reported as truncated, never over-read. */
static void test_truncation_is_detected(void **st)
{
    (void)st;
    sl_wbuf w = {0};
    sl_mp_write_map(&w, 3);
    sl_mp_write_cstr(&w, "id");
    sl_mp_write_cstr(&w, "evt-0000000001");
    sl_mp_write_cstr(&w, "time");
    sl_mp_write_timestamp(&w, 1767225600001000000ll);
    sl_mp_write_cstr(&w, "data");
    sl_mp_write_array(&w, 2);
    sl_mp_write_double(&w, 1.5);
    sl_mp_write_int(&w, -70000);
    for (size_t len = 0; len < w.len; len++) {
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan catches an over-read */
        memcpy(copy, w.data, len);
        const uint8_t *p = copy;
        assert_int_equal(sl_mp_skip(&p, copy + len), -1);
        assert_ptr_equal(p, copy);
        free(copy);
    }
    const uint8_t *p = w.data;
    assert_int_equal(sl_mp_skip(&p, w.data + w.len), 0);
    assert_ptr_equal(p, w.data + w.len);
    /* 0xc1 is never valid */
    static const uint8_t bad[] = {0x81, 0xa1, 'k', 0xc1};
    p = bad;
    assert_int_equal(sl_mp_skip(&p, bad + sizeof bad), -1);
    sl_wbuf_fini(&w);
}

/* The first and last instants int64 nanoseconds can hold decode; one past them does not. */
static void test_timestamp_range_edges(void **st)
{
    (void)st;
    static const int64_t edges[] = {INT64_MAX, INT64_MIN, INT64_MAX - 999999999ll,
                                    INT64_MIN + 1, 0, -1};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) {
        sl_wbuf w = {0};
        assert_int_equal(sl_mp_write_timestamp(&w, edges[i]), 0);
        const uint8_t *p = w.data;
        sl_mp_val v;
        int64_t ns;
        assert_int_equal(sl_mp_read(&p, w.data + w.len, &v), 0);
        assert_int_equal(sl_mp_timestamp_ns(&v, &ns), 0);
        assert_true(ns == edges[i]);
        sl_wbuf_fini(&w);
    }
    /* 2262-04-11T23:47:17Z (timestamp64 form) is one second past INT64_MAX ns */
    uint64_t sec = (uint64_t)(INT64_MAX / 1000000000 + 1);
    uint8_t past[10] = {0xd7, 0xff};
    for (int i = 0; i < 8; i++)
        past[2 + i] = (uint8_t)(sec >> (56 - 8 * i));
    const uint8_t *p = past;
    sl_mp_val v;
    int64_t ns;
    assert_int_equal(sl_mp_read(&p, past + sizeof past, &v), 0);
    assert_int_equal(sl_mp_timestamp_ns(&v, &ns), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_what_msgpack_c_packs),
        cmocka_unit_test(test_msgpack_c_reads_what_we_write),
        cmocka_unit_test(test_truncation_is_detected),
        cmocka_unit_test(test_timestamp_range_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
