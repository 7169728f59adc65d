/*
 * test_json.c - JSON <-> msgpack codecs (engine/json_parse.cc, engine/json_write.c).
 *
 * What is pinned down here:
 * - round trip JSON -> msgpack -> JSON over a corpus, against the exact expected text, and a
 *   second trip that must reproduce the first (the writer's output is a fixed point);
 * - what the parser writes, decoded independently with msgpack-c (msgpack_unpack_next);
 * - doubles: 100000 random bit patterns and 100000 decimal-looking values written by
 *   sl_json_write_double read back bit-identical with strtod and through our own parser, and
 *   use no more significant digits than the shortest %.{1..17}g that reads back;
 * - the writer on msgpack made by msgpack-c's packer: float32, bin, ext, timestamps, non-string
 *   keys, invalid UTF-8, deep nesting, truncated and trailing input;
 * - every error path restores out->len and says why.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "timefmt.h"

/* ------------------------------------------------------------------ helpers */

static sl_json_parser *parser;

static int setup(void **state)
{
    (void)state;
    parser = sl_json_parser_new();
    return parser ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sl_json_parser_destroy(&parser);
    assert_null(parser);
    sl_json_parser_destroy(&parser); /* accepts NULL */
    return 0;
}

/* Parse `json` (copied into a padded buffer) into out; returns sl_json_to_msgpack's result. */
static int parse(const char *json, int event, sl_wbuf *out, char *err, size_t errlen)
{
    size_t len = strlen(json);
    char *buf = malloc(len + SL_JSON_PADDING);
    assert_non_null(buf);
    memcpy(buf, json, len);
    memset(buf + len, 'x', SL_JSON_PADDING); /* padding is readable but not part of the text */
    int rc = sl_json_to_msgpack(parser, buf, len, len + SL_JSON_PADDING, event, out, err, errlen);
    free(buf);
    return rc;
}

/* JSON -> msgpack -> JSON; returns a malloc'd NUL-terminated string. */
static char *round_trip(const char *json, int event)
{
    sl_wbuf mp = {0}, js = {0};
    char err[256] = "";
    int rc = parse(json, event, &mp, err, sizeof err);
    if (rc != 0) fail_msg("parse of %s failed: %s", json, err);
    assert_int_equal(sl_msgpack_to_json(mp.data, mp.len, &js), 0);
    assert_int_equal(sl_wbuf_append(&js, "", 1), 0);
    sl_wbuf_fini(&mp);
    return (char *)js.data;
}

/* msgpack -> JSON, NUL-terminated, malloc'd; NULL if the writer refuses. */
static char *to_json(const void *mp, size_t len)
{
    sl_wbuf js = {0};
    if (sl_msgpack_to_json(mp, len, &js) != 0) {
        assert_int_equal(js.len, 0);
        sl_wbuf_fini(&js);
        return NULL;
    }
    assert_int_equal(sl_wbuf_append(&js, "", 1), 0);
    return (char *)js.data;
}

/* ------------------------------------------------------------------ round trips */

static const struct {
    const char *in;
    const char *out;
} corpus[] = {
    {"{}", "{}"},
    {"[]", "[]"},
    {" { } ", "{}"},
    {"[[],{},[[]],{\"a\":{}}]", "[[],{},[[]],{\"a\":{}}]"},
    {"{\"b\":1,\"a\":2,\"c\":3}", "{\"b\":1,\"a\":2,\"c\":3}"}, /* order kept */
    {"{ \"a\" : [ 1 , 2 ] ,\n\t\"b\" : null }", "{\"a\":[1,2],\"b\":null}"},
    {"[true,false,null]", "[true,false,null]"},
    {"\"plain\"", "\"plain\""},
    {"42", "42"},
    {"null", "null"},
    /* escapes */
    {"\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t\"", "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\""},
    {"\"\\u0000\\u0001\\u001f\\u007f\"", "\"\\u0000\\u0001\\u001f\x7f\""},
    {"{\"k\\n\\\"\":\"v\"}", "{\"k\\n\\\"\":\"v\"}"},
    /* unicode: escapes become UTF-8, UTF-8 passes through */
    {"\"\\u00e9\\u20ac\"", "\"\xc3\xa9\xe2\x82\xac\""},
    {"\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\""},
    {"\"\xf0\x9f\x98\x80 caf\xc3\xa9\"", "\"\xf0\x9f\x98\x80 caf\xc3\xa9\""},
    {"{\"\\u00e9\":\"\\u00e9\"}", "{\"\xc3\xa9\":\"\xc3\xa9\"}"},
    /* integers */
    {"[0,-0,1,-1,127,128,-32,-33,255,256,65535,65536,-129,-32769]",
     "[0,0,1,-1,127,128,-32,-33,255,256,65535,65536,-129,-32769]"},
    {"[4294967295,4294967296,-2147483649,9223372036854775807]",
     "[4294967295,4294967296,-2147483649,9223372036854775807]"},
    {"[18446744073709551615,-9223372036854775808]", "[18446744073709551615,-9223372036854775808]"},
    /* integers beyond int64/uint64 become doubles */
    {"[18446744073709551616,-9223372036854775809]",
     "[1.8446744073709552e+19,-9.223372036854776e+18]"},
    {"100000000000000000000000000000", "1e+29"},
    /* doubles */
    {"[0.1,1.5,-2.25,123.45,100.0,1.0,-0.0,0.0]", "[0.1,1.5,-2.25,123.45,100.0,1.0,-0.0,0.0]"},
    {"[1e300,5e-324,1.7976931348623157e308,2.2250738585072014e-308]",
     "[1e+300,5e-324,1.7976931348623157e+308,2.2250738585072014e-308]"},
    {"[1e2,1E2,1e-7,2.5e-8,12345678.9]", "[100.0,100.0,0.0000001,0.000000025,12345678.9]"},
    {"[0.30000000000000004,3.141592653589793]", "[0.30000000000000004,3.141592653589793]"},
    {"[1e15,1e16,9007199254740993.0]", "[1e+15,1e+16,9007199254740992.0]"},
    /* long mantissas (simdjson 3.0.1 gets these wrong without our slow path) */
    {"[0.95000000000000000000,1000000000.000000001,0.12345678901234567890123]",
     "[0.95,1000000000.0,0.12345678901234568]"},
    {"123456789012345678901234567890.5", "1.2345678901234568e+29"},
};

static void test_round_trip_corpus(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        char *out = round_trip(corpus[i].in, 0);
        if (strcmp(out, corpus[i].out) != 0)
            fail_msg("round trip of %s: got %s, want %s", corpus[i].in, out, corpus[i].out);
        /* the writer's output is a fixed point of the round trip */
        char *again = round_trip(out, 0);
        if (strcmp(again, out) != 0) fail_msg("second round trip of %s: got %s", out, again);
        free(again);
        free(out);
    }
}

static void test_event_time(void **state)
{
    (void)state;
    char *out = round_trip("{\"id\":\"e1\",\"time\":\"2026-01-01T01:00:00.5+01:00\",\"data\":"
                           "{\"time\":\"not a time, and not top level\"}}",
                           1);
    assert_string_equal(out, "{\"id\":\"e1\",\"time\":\"2026-01-01T00:00:00.500Z\",\"data\":"
                             "{\"time\":\"not a time, and not top level\"}}");
    free(out);
    /* a non-string time is left alone; without event mode time stays a string */
    out = round_trip("{\"time\":12}", 1);
    assert_string_equal(out, "{\"time\":12}");
    free(out);
    out = round_trip("{\"time\":\"bogus\"}", 0);
    assert_string_equal(out, "{\"time\":\"bogus\"}");
    free(out);
}

/* ------------------------------------------------------------------ msgpack-c as the oracle */

static void unpack(const sl_wbuf *mp, msgpack_unpacked *u)
{
    size_t off = 0;
    msgpack_unpacked_init(u);
    assert_int_equal(msgpack_unpack_next(u, (const char *)mp->data, mp->len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, mp->len); /* exactly one value */
}

static const msgpack_object *member(const msgpack_object *map, size_t i, const char *key)
{
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    assert_true(i < map->via.map.size);
    const msgpack_object_kv *kv = &map->via.map.ptr[i];
    assert_int_equal(kv->key.type, MSGPACK_OBJECT_STR);
    assert_int_equal(kv->key.via.str.size, strlen(key));
    assert_memory_equal(kv->key.via.str.ptr, key, strlen(key));
    return &kv->val;
}

static void test_parse_types_msgpack_c(void **state)
{
    (void)state;
    sl_wbuf mp = {0};
    char err[256];
    const char *json =
        "{\"neg\":-5,\"pos\":7,\"umax\":18446744073709551615,"
        "\"imin\":-9223372036854775808,\"f\":1.5,\"fi\":2.0,\"huge\":123456789012345678901,"
        "\"s\":\"caf\\u00e9\",\"a\":[true,false,null],\"o\":{},"
        "\"time\":\"2026-01-01T00:00:00.123456789Z\"}";
    if (parse(json, 1, &mp, err, sizeof err) != 0) fail_msg("%s", err);

    msgpack_unpacked u;
    unpack(&mp, &u);
    const msgpack_object *root = &u.data, *v;
    assert_int_equal(root->via.map.size, 11);
    v = member(root, 0, "neg");
    assert_int_equal(v->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_true(v->via.i64 == -5);
    v = member(root, 1, "pos");
    assert_int_equal(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_true(v->via.u64 == 7);
    v = member(root, 2, "umax");
    assert_int_equal(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_true(v->via.u64 == UINT64_MAX);
    v = member(root, 3, "imin");
    assert_int_equal(v->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_true(v->via.i64 == INT64_MIN);
    v = member(root, 4, "f");
    assert_int_equal(v->type, MSGPACK_OBJECT_FLOAT64);
    assert_true(v->via.f64 == 1.5);
    v = member(root, 5, "fi");
    assert_int_equal(v->type, MSGPACK_OBJECT_FLOAT64); /* 2.0 stays a double */
    assert_true(v->via.f64 == 2.0);
    v = member(root, 6, "huge");
    assert_int_equal(v->type, MSGPACK_OBJECT_FLOAT64);
    assert_true(v->via.f64 == 123456789012345678901.0);
    v = member(root, 7, "s");
    assert_int_equal(v->type, MSGPACK_OBJECT_STR);
    assert_int_equal(v->via.str.size, 5);
    assert_memory_equal(v->via.str.ptr, "caf\xc3\xa9", 5);
    v = member(root, 8, "a");
    assert_int_equal(v->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(v->via.array.size, 3);
    assert_int_equal(v->via.array.ptr[0].type, MSGPACK_OBJECT_BOOLEAN);
    assert_true(v->via.array.ptr[0].via.boolean);
    assert_int_equal(v->via.array.ptr[1].type, MSGPACK_OBJECT_BOOLEAN);
    assert_false(v->via.array.ptr[1].via.boolean);
    assert_int_equal(v->via.array.ptr[2].type, MSGPACK_OBJECT_NIL);
    v = member(root, 9, "o");
    assert_int_equal(v->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(v->via.map.size, 0);
    v = member(root, 10, "time");
    assert_int_equal(v->type, MSGPACK_OBJECT_EXT);
    assert_int_equal(v->via.ext.type, -1);
    msgpack_timestamp ts;
    assert_true(msgpack_object_to_timestamp(v, &ts));
    assert_true(ts.tv_sec == 1767225600);
    assert_true(ts.tv_nsec == 123456789);
    msgpack_unpacked_destroy(&u);
    sl_wbuf_fini(&mp);
}

/* Containers past 15 and 65535 members get map16/map32 (array16/32) headers after the fact. */
static void test_parse_wide_containers(void **state)
{
    (void)state;
    static const size_t sizes[] = {15, 16, 65535, 65536, 70000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        sl_wbuf text = {0}, mp = {0};
        char err[256], item[32];
        /* an array of n ints followed by an object of n members, in one array */
        assert_int_equal(sl_wbuf_append(&text, "[[", 2), 0);
        for (size_t i = 0; i < n; i++) {
            int m = snprintf(item, sizeof item, "%s%zu", i ? "," : "", i);
            assert_int_equal(sl_wbuf_append(&text, item, (size_t)m), 0);
        }
        assert_int_equal(sl_wbuf_append(&text, "],{", 3), 0);
        for (size_t i = 0; i < n; i++) {
            int m = snprintf(item, sizeof item, "%s\"k%zu\":%zu", i ? "," : "", i, i);
            assert_int_equal(sl_wbuf_append(&text, item, (size_t)m), 0);
        }
        assert_int_equal(sl_wbuf_append(&text, "}]", 2), 0);
        size_t len = text.len;
        assert_int_equal(sl_wbuf_reserve(&text, SL_JSON_PADDING), 0);
        memset(text.data + len, 0, SL_JSON_PADDING);
        int rc = sl_json_to_msgpack(parser, (const char *)text.data, len, len + SL_JSON_PADDING, 0,
                                    &mp, err, sizeof err);
        if (rc != 0) fail_msg("%zu members: %s", n, err);
        /* the smallest header was chosen */
        uint8_t outer = mp.data[1];
        assert_int_equal(outer, n <= 15 ? (0x90 | n) : n <= 0xffff ? 0xdc : 0xdd);

        msgpack_unpacked u;
        unpack(&mp, &u);
        const msgpack_object *arr = &u.data.via.array.ptr[0], *obj = &u.data.via.array.ptr[1];
        assert_int_equal(arr->type, MSGPACK_OBJECT_ARRAY);
        assert_int_equal(arr->via.array.size, n);
        assert_int_equal(obj->type, MSGPACK_OBJECT_MAP);
        assert_int_equal(obj->via.map.size, n);
        for (size_t i = 0; i < n; i += n / 7 + 1) {
            assert_true(arr->via.array.ptr[i].via.u64 == i);
            int m = snprintf(item, sizeof item, "k%zu", i);
            assert_int_equal(obj->via.map.ptr[i].key.via.str.size, (size_t)m);
            assert_memory_equal(obj->via.map.ptr[i].key.via.str.ptr, item, (size_t)m);
            assert_true(obj->via.map.ptr[i].val.via.u64 == i);
        }
        assert_true(arr->via.array.ptr[n - 1].via.u64 == n - 1);
        msgpack_unpacked_destroy(&u);

        /* and the writer gives back the same text */
        sl_wbuf js = {0};
        assert_int_equal(sl_msgpack_to_json(mp.data, mp.len, &js), 0);
        assert_int_equal(js.len, len);
        assert_memory_equal(js.data, text.data, len);
        sl_wbuf_fini(&js);
        sl_wbuf_fini(&mp);
        sl_wbuf_fini(&text);
    }
}

/* Appending keeps what the buffer held before. */
static void test_parse_appends(void **state)
{
    (void)state;
    sl_wbuf mp = {0};
    char err[256];
    assert_int_equal(parse("[1]", 0, &mp, err, sizeof err), 0);
    assert_int_equal(parse("{\"a\":\"b\"}", 0, &mp, err, sizeof err), 0);
    static const uint8_t want[] = {0x91, 0x01, 0x81, 0xa1, 'a', 0xa1, 'b'};
    assert_int_equal(mp.len, sizeof want);
    assert_memory_equal(mp.data, want, sizeof want);
    sl_wbuf_fini(&mp);
}

/* ------------------------------------------------------------------ errors */

static void expect_error(const char *json, int event, const char *reason)
{
    sl_wbuf mp = {0};
    char err[256] = "";
    assert_int_equal(sl_mp_write_str(&mp, "keep", 4), 0); /* bytes that must survive */
    size_t before = mp.len;
    int rc = parse(json, event, &mp, err, sizeof err);
    if (rc != -1) fail_msg("%s was accepted", json);
    assert_int_equal(mp.len, before);
    assert_memory_equal(mp.data, "\xa4keep", 5);
    if (strncmp(err, reason, strlen(reason)) != 0)
        fail_msg("%s: error \"%s\" does not start with \"%s\"", json, err, reason);
    sl_wbuf_fini(&mp);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *malformed[] = {
        "",           "   ",         "{",           "{\"a\":1",
        "[1,2",       "[1,]",        "{\"a\" 1}",   "{\"a\":}",
        "{a:1}",      "[01]",        "[1.]",        "[-]",
        "[.5]",       "[+1]",        "[0x10]",      "[1e]",
        "[NaN]",      "[Infinity]",  "tru",         "nul",
        "[truex]",    "\"abc",       "\"\\x\"",     "\"\\ud800\"",
        "\"\\u12\"",  "\"a\tb\"",    "\"\xff\"",    "\"\xc0\xaf\"",
        "{\"a\":1}}", "{\"a\":1} x", "{\"a\":1}{}", "1 2",
        "[1] [2]",    "'a'",         "[1e400]",     "{\"a\":[1,{\"b\":2]}}",
        "]",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        expect_error(malformed[i], 0, "malformed JSON: ");
    expect_error("{\"a\":1} x", 1, "malformed JSON: ");
    expect_error("{\"a\":1}}", 0, "malformed JSON: trailing content after the value at byte 7");
    expect_error("[1,2", 0, "malformed JSON: ");

    expect_error("[1]", 1, "not an object");
    expect_error("\"x\"", 1, "not an object");
    expect_error("null", 1, "not an object");

    expect_error("{\"time\":\"yesterday\"}", 1, "bad time: \"yesterday\"");
    expect_error("{\"id\":1,\"time\":\"2026-02-29T00:00:00Z\"}", 1, "bad time: ");
    expect_error("{\"time\":\"2026-01-01T00:00:00\"}", 1, "bad time: ");
    expect_error("{\"time\":\"\"}", 1, "bad time: ");
}

static void test_parse_depth_limit(void **state)
{
    (void)state;
    char *deep = malloc(2 * 200 + 1);
    assert_non_null(deep);
    for (int depth = 127; depth <= 200; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        deep[2 * depth] = '\0';
        sl_wbuf mp = {0};
        char err[256];
        int rc = parse(deep, 0, &mp, err, sizeof err);
        if (depth <= 128) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(mp.len, 0);
            assert_non_null(strstr(err, "malformed JSON"));
        }
        sl_wbuf_fini(&mp);
    }
    free(deep);
}

static void test_parse_needs_padding(void **state)
{
    (void)state;
    sl_wbuf mp = {0};
    char err[256] = "";
    char buf[4 + SL_JSON_PADDING] = "[1]";
    assert_int_equal(
        sl_json_to_msgpack(parser, buf, 3, 3 + SL_JSON_PADDING - 1, 0, &mp, err, sizeof err), -1);
    assert_int_equal(mp.len, 0);
    assert_true(err[0] != '\0');
    /* a NULL or empty err buffer is allowed */
    assert_int_equal(sl_json_to_msgpack(parser, buf, 3, 3 + SL_JSON_PADDING - 1, 0, &mp, NULL, 0),
                     -1);
    assert_int_equal(sl_json_to_msgpack(parser, buf, 3, sizeof buf, 0, &mp, NULL, 0), 0);
    sl_wbuf_fini(&mp);
}

/* ------------------------------------------------------------------ doubles */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    /* xorshift64*: deterministic across platforms */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* Significant digits in a number text (mantissa digits without leading zeros). */
static int sig_digits(const char *s)
{
    int n = 0, started = 0, trailing_zeros = 0;
    for (; *s && *s != 'e' && *s != 'E'; s++) {
        if (*s < '0' || *s > '9') continue;
        if (*s != '0') started = 1;
        if (started) {
            n++;
            trailing_zeros = *s == '0' ? trailing_zeros + 1 : 0;
        }
    }
    return n - trailing_zeros;
}

/* Fewest significant digits with which %.{p}g reads back as d. */
static int shortest_digits(double d)
{
    char buf[64];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, d);
        if (strtod(buf, NULL) == d) return sig_digits(buf);
    }
    return 17;
}

/* Write d, check the text reads back bit-identical through strtod and through our parser. */
static void check_double(double d, int check_shortest)
{
    sl_wbuf js = {0};
    assert_int_equal(sl_json_write_double(&js, d), 0);
    assert_int_equal(sl_wbuf_append(&js, "", 1), 0);
    const char *text = (const char *)js.data;
    double back = strtod(text, NULL);
    if (memcmp(&back, &d, sizeof d) != 0)
        fail_msg("%.17g written as %s reads back as %.17g", d, text, back);
    /* a double must stay a double in JSON: a '.' or an exponent */
    if (!strchr(text, '.') && !strchr(text, 'e'))
        fail_msg("%.17g written as %s, which reads as an integer", d, text);
    if (check_shortest && sig_digits(text) > shortest_digits(d))
        fail_msg("%.17g written as %s: %d digits, %d would do", d, text, sig_digits(text),
                 shortest_digits(d));

    /* and through the parser, as a msgpack float64 with the same bits */
    sl_wbuf mp = {0};
    char err[256];
    if (parse(text, 0, &mp, err, sizeof err) != 0) fail_msg("%s: %s", text, err);
    assert_int_equal(mp.len, 9);
    assert_int_equal(mp.data[0], 0xcb);
    uint64_t bits, want;
    memcpy(&want, &d, 8);
    bits = sl__be64(mp.data + 1);
    if (bits != want)
        fail_msg("%s parsed to %016llx, want %016llx", text, (unsigned long long)bits,
                 (unsigned long long)want);
    sl_wbuf_fini(&mp);
    sl_wbuf_fini(&js);
}

static void test_double_fixed(void **state)
{
    (void)state;
    static const struct {
        double d;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {123.45, "123.45"},
        {100.0, "100.0"},
        {-0.0, "-0.0"},
        {0.0, "0.0"},
        {1e300, "1e+300"},
        {5e-324, "5e-324"},
        {-1.5, "-1.5"},
        {76.27, "76.27"},
        {0.30000000000000004, "0.30000000000000004"},
        {1e-7, "0.0000001"},
        {123456789012345.0, "123456789012345.0"},
        {1e15, "1e+15"},
        {9007199254740992.0, "9007199254740992.0"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {2.2250738585072014e-308, "2.2250738585072014e-308"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_wbuf js = {0};
        assert_int_equal(sl_json_write_double(&js, cases[i].d), 0);
        assert_int_equal(sl_wbuf_append(&js, "", 1), 0);
        assert_string_equal((char *)js.data, cases[i].text);
        sl_wbuf_fini(&js);
        check_double(cases[i].d, 1);
    }
    /* JSON has no NaN or infinity */
    static const double nonfinite[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < 3; i++) {
        sl_wbuf js = {0};
        assert_int_equal(sl_json_write_double(&js, nonfinite[i]), 0);
        assert_int_equal(js.len, 4);
        assert_memory_equal(js.data, "null", 4);
        sl_wbuf_fini(&js);
    }
}

static void test_double_random_bits(void **state)
{
    (void)state;
    int n = 0;
    while (n < 100000) {
        uint64_t bits = rng();
        double d;
        memcpy(&d, &bits, 8);
        if (!isfinite(d)) continue;
        check_double(d, n < 20000); /* the shortest check is slow: a fifth of them */
        n++;
    }
}

static void test_double_decimal_like(void **state)
{
    (void)state;
    /* amounts, ratios, measurements: the writer's fast path */
    for (int i = 0; i < 100000; i++) {
        uint64_t r = rng();
        int decimals = (int)(r % 10);
        int64_t m = (int64_t)((r >> 8) % 100000000000ull) - 50000000000ll;
        double d = (double)m / pow(10, decimals);
        check_double(d, 1);
    }
    /* small integers as doubles */
    for (int i = -1000; i <= 1000; i++)
        check_double((double)i, 1);
}

/* ------------------------------------------------------------------ the writer on msgpack-c input
 */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} packer;

static void pk_init(packer *p)
{
    msgpack_sbuffer_init(&p->sb);
    msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

static char *pk_json(packer *p)
{
    char *s = to_json(p->sb.data, p->sb.size);
    msgpack_sbuffer_destroy(&p->sb);
    return s;
}

static void test_write_scalars(void **state)
{
    (void)state;
    packer p;
    pk_init(&p);
    msgpack_pack_array(&p.pk, 12);
    msgpack_pack_nil(&p.pk);
    msgpack_pack_true(&p.pk);
    msgpack_pack_false(&p.pk);
    msgpack_pack_int64(&p.pk, INT64_MIN);
    msgpack_pack_uint64(&p.pk, UINT64_MAX);
    msgpack_pack_int8(&p.pk, -1);
    msgpack_pack_float(&p.pk, 0.1f); /* float32, printed as the double it widens to */
    msgpack_pack_double(&p.pk, 2.5);
    msgpack_pack_double(&p.pk, NAN);
    msgpack_pack_str_with_body(&p.pk, "", 0);
    msgpack_pack_array(&p.pk, 0);
    msgpack_pack_map(&p.pk, 0);
    char *s = pk_json(&p);
    assert_non_null(s);
    assert_string_equal(s, "[null,true,false,-9223372036854775808,18446744073709551615,-1,"
                           "0.10000000149011612,2.5,null,\"\",[],{}]");
    free(s);
}

static void test_write_bin_ext_time(void **state)
{
    (void)state;
    packer p;
    pk_init(&p);
    msgpack_pack_array(&p.pk, 10);
    /* bin as base64, every padding case (RFC 4648 test vectors) */
    static const char *const b64in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    for (int i = 0; i < 7; i++)
        msgpack_pack_bin_with_body(&p.pk, b64in[i], strlen(b64in[i]));
    msgpack_pack_ext_with_body(&p.pk, "\x01\x02\xff", 3, 5);
    msgpack_timestamp ts = {1767225600, 500000000}; /* 64-bit form */
    msgpack_pack_timestamp(&p.pk, &ts);
    msgpack_timestamp old = {-1, 999999999}; /* 96-bit form, before 1970 */
    msgpack_pack_timestamp(&p.pk, &old);
    char *s = pk_json(&p);
    assert_non_null(s);
    assert_string_equal(s,
                        "[\"\",\"Zg==\",\"Zm8=\",\"Zm9v\",\"Zm9vYg==\",\"Zm9vYmE=\",\"Zm9vYmFy\","
                        "{\"ext\":5,\"data\":\"AQL/\"},\"2026-01-01T00:00:00.500Z\","
                        "\"1969-12-31T23:59:59.999999999Z\"]");
    free(s);

    /* a timestamp int64 ns cannot hold keeps its bytes as a plain extension */
    pk_init(&p);
    msgpack_timestamp far = {INT64_C(20000000000), 0};
    msgpack_pack_timestamp(&p.pk, &far);
    s = pk_json(&p);
    assert_non_null(s);
    assert_string_equal(s, "{\"ext\":-1,\"data\":\"AAAAAAAAAASoF8gA\"}");
    free(s);
}

static void test_write_keys(void **state)
{
    (void)state;
    packer p;
    pk_init(&p);
    msgpack_pack_map(&p.pk, 7);
    msgpack_pack_int(&p.pk, 1);
    msgpack_pack_str_with_body(&p.pk, "int", 3);
    msgpack_pack_nil(&p.pk);
    msgpack_pack_int(&p.pk, 2);
    msgpack_pack_true(&p.pk);
    msgpack_pack_int(&p.pk, 3);
    msgpack_pack_double(&p.pk, 1.5);
    msgpack_pack_int(&p.pk, 4);
    msgpack_pack_array(&p.pk, 2); /* [1,"x"] as a key: its JSON, escaped */
    msgpack_pack_int(&p.pk, 1);
    msgpack_pack_str_with_body(&p.pk, "x", 1);
    msgpack_pack_map(&p.pk, 1); /* a nested map value */
    msgpack_pack_map(&p.pk, 1); /* whose key is a map: {"k":[]} */
    msgpack_pack_str_with_body(&p.pk, "k", 1);
    msgpack_pack_array(&p.pk, 0);
    msgpack_pack_int(&p.pk, 5);
    msgpack_pack_bin_with_body(&p.pk, "foo", 3); /* already a JSON string: as is */
    msgpack_pack_int(&p.pk, 6);
    msgpack_pack_str_with_body(&p.pk, "s", 1);
    msgpack_pack_int(&p.pk, -7);
    char *s = pk_json(&p);
    assert_non_null(s);
    assert_string_equal(s, "{\"1\":\"int\",\"null\":2,\"true\":3,\"1.5\":4,\"[1,\\\"x\\\"]\":"
                           "{\"{\\\"k\\\":[]}\":5},\"Zm9v\":6,\"s\":-7}");
    free(s);
}

static void test_write_strings(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        size_t len;
        const char *json;
    } cases[] = {
        {"plain ascii longer than eight bytes", 35, "\"plain ascii longer than eight bytes\""},
        {"\"\\/\b\f\n\r\t", 8, "\"\\\"\\\\/\\b\\f\\n\\r\\t\""},
        {"\x00\x01\x1f\x7f", 4, "\"\\u0000\\u0001\\u001f\x7f\""},
        {"12345678\"", 9, "\"12345678\\\"\""},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
        /* invalid UTF-8: one U+FFFD per maximal invalid subsequence */
        {"a\xff"
         "b",
         3, "\"a\\ufffdb\""},
        {"\x80", 1, "\"\\ufffd\""},
        {"\xc0\xaf", 2, "\"\\ufffd\\ufffd\""},            /* overlong: C0 is never valid */
        {"\xe2\x82", 2, "\"\\ufffd\""},                   /* truncated at the end */
        {"\xe2\x82z", 3, "\"\\ufffdz\""},                 /* truncated before ASCII */
        {"\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""}, /* a surrogate, encoded */
        {"\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* above U+10FFFF */
        {"\xf0\x9f\x98", 3, "\"\\ufffd\""},
        {"\xe0\x80\xaf", 3, "\"\\ufffd\\ufffd\\ufffd\""},            /* overlong 3-byte */
        {"\xf0\x80\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* overlong 4-byte */
        {"\xe0\xa0\x80", 3, "\"\xe0\xa0\x80\""},                     /* U+0800, the lowest */
        {"\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\""},             /* U+10FFFF */
        {"\xef\xbf\xbf", 3, "\"\xef\xbf\xbf\""},                     /* U+FFFF is valid */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_wbuf mp = {0};
        assert_int_equal(sl_mp_write_str(&mp, cases[i].raw, cases[i].len), 0);
        char *s = to_json(mp.data, mp.len);
        assert_non_null(s);
        if (strcmp(s, cases[i].json) != 0)
            fail_msg("case %zu: got %s want %s", i, s, cases[i].json);
        free(s);
        sl_wbuf_fini(&mp);
    }
    /* every single byte value, checked against a byte-at-a-time reference */
    for (int c = 0; c < 256; c++) {
        char raw[17];
        memset(raw, 'a', sizeof raw);
        raw[c % 17] = (char)c;
        sl_wbuf mp = {0};
        assert_int_equal(sl_mp_write_str(&mp, raw, sizeof raw), 0);
        char *s = to_json(mp.data, mp.len);
        assert_non_null(s);
        char want[128], *w = want;
        *w++ = '"';
        for (int i = 0; i < 17; i++) {
            unsigned char b = (unsigned char)raw[i];
            if (b == '"' || b == '\\') {
                *w++ = '\\';
                *w++ = (char)b;
            } else if (b == '\n') {
                w += sprintf(w, "\\n");
            } else if (b == '\t') {
                w += sprintf(w, "\\t");
            } else if (b == '\r') {
                w += sprintf(w, "\\r");
            } else if (b == '\b') {
                w += sprintf(w, "\\b");
            } else if (b == '\f') {
                w += sprintf(w, "\\f");
            } else if (b < 0x20) {
                w += sprintf(w, "\\u%04x", b);
            } else if (b >= 0x80) {
                w += sprintf(w, "\\ufffd"); /* a lone byte >= 0x80 is never valid UTF-8 */
            } else {
                *w++ = (char)b;
            }
        }
        *w++ = '"';
        *w = '\0';
        assert_string_equal(s, want);
        free(s);
        sl_wbuf_fini(&mp);
    }
}

static void test_write_deep_nesting(void **state)
{
    (void)state;
    /* far deeper than the writer's inline stack: it must move to the heap, not recurse */
    const size_t depth = 100000;
    sl_wbuf mp = {0};
    for (size_t i = 0; i < depth; i++)
        assert_int_equal(sl_mp_write_array(&mp, 1), 0);
    assert_int_equal(sl_mp_write_int(&mp, 7), 0);
    sl_wbuf js = {0};
    assert_int_equal(sl_msgpack_to_json(mp.data, mp.len, &js), 0);
    assert_int_equal(js.len, 2 * depth + 1);
    assert_int_equal(js.data[depth - 1], '[');
    assert_int_equal(js.data[depth], '7');
    assert_int_equal(js.data[depth + 1], ']');
    sl_wbuf_fini(&js);
    /* keys nested in keys ({{{nil:nil}:nil}:nil}) recurse, so they are bounded instead */
    for (int levels = 1; levels <= 40; levels++) {
        sl_wbuf_reset(&mp);
        for (int i = 0; i < levels; i++)
            assert_int_equal(sl_mp_write_map(&mp, 1), 0);
        for (int i = 0; i <= levels; i++)
            assert_int_equal(sl_mp_write_nil(&mp), 0);
        char *s = to_json(mp.data, mp.len);
        if (levels <= 16)
            assert_non_null(s);
        else
            assert_null(s);
        if (levels == 2) assert_string_equal(s, "{\"{\\\"null\\\":null}\":null}");
        free(s);
    }
    sl_wbuf_fini(&mp);
}

static void test_write_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *mp;
        size_t len;
    } bad[] = {
        {"", 0},
        {"\xc1", 1},     /* never used */
        {"\x92\x01", 2}, /* array of 2, one element */
        {"\x81\xa1"
         "a",
         3}, /* map without the value */
        {"\xa5"
         "abc",
         4},                         /* str cut short */
        {"\xcb\x00\x00", 3},         /* float64 cut short */
        {"\xdd\xff\xff\xff\xff", 5}, /* array32 of 4 billion in 5 bytes */
        {"\xd7\xff\x00", 3},         /* timestamp cut short */
        {"\x01\x02", 2},             /* trailing bytes after the value */
        {"\x91\x01\x01", 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sl_wbuf js = {0};
        assert_int_equal(sl_wbuf_append(&js, "keep", 4), 0);
        if (sl_msgpack_to_json((const uint8_t *)bad[i].mp, bad[i].len, &js) != -1)
            fail_msg("bad msgpack %zu was accepted", i);
        assert_int_equal(js.len, 4);
        assert_memory_equal(js.data, "keep", 4);
        sl_wbuf_fini(&js);
    }
    /* every truncation of a valid event is refused */
    sl_wbuf mp = {0};
    char err[256];
    assert_int_equal(parse("{\"id\":\"e\",\"time\":\"2026-01-01T00:00:00.1Z\",\"data\":{\"a\":[1,"
                           "2.5,\"x\",null,true,-300,70000]}}",
                           1, &mp, err, sizeof err),
                     0);
    for (size_t n = 0; n < mp.len; n++) {
        sl_wbuf js = {0};
        assert_int_equal(sl_msgpack_to_json(mp.data, n, &js), -1);
        assert_int_equal(js.len, 0);
        sl_wbuf_fini(&js);
    }
    sl_wbuf_fini(&mp);
}

/* Random msgpack from msgpack-c's packer: the writer's JSON, parsed back, re-encodes the same. */
static void pack_random(msgpack_packer *pk, int depth)
{
    uint64_t r = rng();
    int kind = depth > 3 ? (int)(r % 6) : (int)(r % 8);
    switch (kind) {
    case 0:
        msgpack_pack_nil(pk);
        break;
    case 1:
        (r >> 8) & 1 ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case 2:
        msgpack_pack_int64(pk, (int64_t)rng() >> (r >> 8) % 64);
        break;
    case 3:
        msgpack_pack_uint64(pk, rng() >> (r >> 8) % 64);
        break;
    case 4: {
        uint64_t bits = rng();
        double d;
        memcpy(&d, &bits, 8);
        if (!isfinite(d)) d = (double)(int64_t)bits / 1000.0;
        msgpack_pack_double(pk, d);
        break;
    }
    case 5: {
        char s[24];
        size_t n = (size_t)((r >> 8) % sizeof s);
        for (size_t i = 0; i < n; i++) {
            uint64_t c = rng() % 100;
            s[i] = c < 80 ? (char)(' ' + c % 95) : c < 90 ? (char)(c % 32) : "\"\\/"[c % 3];
        }
        msgpack_pack_str_with_body(pk, s, n);
        break;
    }
    case 6: {
        uint32_t n = (uint32_t)((r >> 8) % 5);
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            pack_random(pk, depth + 1);
        break;
    }
    default: {
        uint32_t n = (uint32_t)((r >> 8) % 5);
        msgpack_pack_map(pk, n);
        for (uint32_t i = 0; i < n; i++) {
            char k[8];
            int kl = snprintf(k, sizeof k, "k%u", (unsigned)(rng() % 1000));
            msgpack_pack_str_with_body(pk, k, (size_t)kl);
            pack_random(pk, depth + 1);
        }
    }
    }
}

static void test_write_random_values(void **state)
{
    (void)state;
    for (int i = 0; i < 2000; i++) {
        packer p;
        pk_init(&p);
        pack_random(&p.pk, 0);
        char *s = to_json(p.sb.data, p.sb.size);
        assert_non_null(s);
        sl_wbuf mp = {0};
        char err[256];
        if (parse(s, 0, &mp, err, sizeof err) != 0)
            fail_msg("writer produced invalid JSON %s: %s", s, err);
        /* msgpack-c and our parser agree on the value (both pick the smallest encodings) */
        if (mp.len != p.sb.size || memcmp(mp.data, p.sb.data, mp.len) != 0)
            fail_msg("value %d did not survive msgpack -> JSON -> msgpack: %s", i, s);
        free(s);
        sl_wbuf_fini(&mp);
        msgpack_sbuffer_destroy(&p.sb);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_corpus),     cmocka_unit_test(test_event_time),
        cmocka_unit_test(test_parse_types_msgpack_c), cmocka_unit_test(test_parse_wide_containers),
        cmocka_unit_test(test_parse_appends),         cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_depth_limit),     cmocka_unit_test(test_parse_needs_padding),
        cmocka_unit_test(test_double_fixed),          cmocka_unit_test(test_double_random_bits),
        cmocka_unit_test(test_double_decimal_like),   cmocka_unit_test(test_write_scalars),
        cmocka_unit_test(test_write_bin_ext_time),    cmocka_unit_test(test_write_keys),
        cmocka_unit_test(test_write_strings),         cmocka_unit_test(test_write_deep_nesting),
        cmocka_unit_test(test_write_invalid),         cmocka_unit_test(test_write_random_values),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
