/*
 * test_timefmt.c - RFC 3339 <-> int64 ns (engine/timefmt.c).
 *
 * Expectations: known instants parse to known nanosecond counts (offsets, fractions, leap
 * days, the int64 limits); impossible dates and malformed text are refused; formatting picks
 * 0/3/6/9 fraction digits and handles times before 1970; format -> parse is the identity over
 * the whole int64 range; and both directions agree with the C library's timegm/gmtime_r (an
 * independent oracle) for random seconds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "timefmt.h"

static int parse(const char *s, int64_t *ns)
{
    return sl_time_parse(s, strlen(s), ns);
}

static void expect_ns(const char *s, int64_t want)
{
    int64_t ns = 12345;
    if (parse(s, &ns) != 0) fail_msg("\"%s\" was refused", s);
    if (ns != want) fail_msg("\"%s\" parsed to %lld, want %lld", s, (long long)ns, (long long)want);
}

static void expect_refused(const char *s)
{
    int64_t ns = 12345;
    if (parse(s, &ns) != -1) fail_msg("\"%s\" was accepted as %lld", s, (long long)ns);
    assert_true(ns == 12345); /* untouched */
}

#define S INT64_C(1000000000)

static void test_parse_valid(void **state)
{
    (void)state;
    expect_ns("1970-01-01T00:00:00Z", 0);
    expect_ns("2026-01-01T00:00:00Z", INT64_C(1767225600) * S);
    expect_ns("2026-01-01T00:00:00.000Z", INT64_C(1767225600) * S);
    expect_ns("2026-01-01T00:00:00.001Z", INT64_C(1767225600) * S + 1000000);
    expect_ns("2026-01-01T00:00:00.5Z", INT64_C(1767225600) * S + 500000000);
    expect_ns("2026-01-01T00:00:00.123456Z", INT64_C(1767225600) * S + 123456000);
    expect_ns("2026-01-01T00:00:00.123456789Z", INT64_C(1767225600) * S + 123456789);
    /* lower case and a space separator, as RFC 3339 5.6 allows */
    expect_ns("2026-01-01t00:00:00z", INT64_C(1767225600) * S);
    expect_ns("2026-01-01 00:00:00Z", INT64_C(1767225600) * S);
    /* offsets: local time minus the offset is UTC */
    expect_ns("2026-01-01T01:00:00+01:00", INT64_C(1767225600) * S);
    expect_ns("2025-12-31T18:30:00-05:30", INT64_C(1767225600) * S);
    expect_ns("2026-01-01T00:00:00+00:00", INT64_C(1767225600) * S);
    expect_ns("2026-01-01T00:00:00-00:00", INT64_C(1767225600) * S);
    expect_ns("2026-01-01T23:59:59.999+23:59",
              (INT64_C(1767225600) + 86399 - 86340) * S + 999000000);
    /* leap days */
    expect_ns("2024-02-29T12:00:00Z", INT64_C(1709208000) * S);
    expect_ns("2000-02-29T00:00:00Z", INT64_C(951782400) * S);
    expect_ns("2024-12-31T00:00:00Z", INT64_C(1735603200) * S);
    /* a leap second is read as :59 with its fraction (see timefmt.c) */
    expect_ns("2016-12-31T23:59:60Z", INT64_C(1483228799) * S);
    expect_ns("2016-12-31T23:59:60.5Z", INT64_C(1483228799) * S + 500000000);
    /* before 1970 */
    expect_ns("1969-12-31T23:59:59Z", -S);
    expect_ns("1969-12-31T23:59:59.999999999Z", -1);
    expect_ns("1900-01-01T00:00:00Z", INT64_C(-2208988800) * S);
    /* the ends of the int64 range */
    expect_ns("2262-04-11T23:47:16.854775807Z", INT64_MAX);
    expect_ns("1677-09-21T00:12:43.145224192Z", INT64_MIN);
    expect_ns("2262-04-12T00:47:16.854775807+01:00", INT64_MAX);
}

static void test_parse_invalid(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "2026",
        "2026-01-01",
        "2026-01-01T00:00:00",   /* no offset */
        "2026-01-01T00:00Z",     /* no seconds */
        "2026-01-01T00:00:00ZZ", /* trailing */
        "2026-01-01T00:00:00Z ",
        "2026-01-01T00:00:00+01", /* short offset */
        "2026-01-01T00:00:00+0100",
        "2026-01-01T00:00:00+24:00", /* offset hour */
        "2026-01-01T00:00:00+01:60",
        "2026-01-01T00:00:00.Z",           /* empty fraction */
        "2026-01-01T00:00:00.1234567891Z", /* 10 digits */
        "2026-01-01T00:00:00,5Z",
        "2026-01-01X00:00:00Z",
        "2026/01/01T00:00:00Z",
        "26-01-01T00:00:00Z",
        "2026-1-01T00:00:00Z",
        "2026-01-01T0:00:00Z",
        "+2026-01-01T00:00:00Z",
        "2026-00-01T00:00:00Z", /* month 0 */
        "2026-13-01T00:00:00Z", /* month 13 */
        "2026-01-00T00:00:00Z", /* day 0 */
        "2026-01-32T00:00:00Z",
        "2026-04-31T00:00:00Z", /* April has 30 days */
        "2026-02-29T00:00:00Z", /* not a leap year */
        "1900-02-29T00:00:00Z", /* divisible by 100, not by 400 */
        "2024-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T23:60:00Z",
        "2026-01-01T23:59:61Z",
        "2026-01-01T2a:00:00Z",
        "2262-04-11T23:47:16.854775808Z", /* one past INT64_MAX */
        "1677-09-21T00:12:43.145224191Z", /* one before INT64_MIN */
        "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(bad[i]);
    /* the length is honoured: a valid prefix followed by more bytes is not enough */
    int64_t ns;
    assert_int_equal(sl_time_parse("2026-01-01T00:00:00Zjunk", 20, &ns), 0);
    assert_int_equal(sl_time_parse("2026-01-01T00:00:00Zjunk", 19, &ns), -1);
}

static void expect_format(int64_t ns, const char *want)
{
    char buf[40];
    memset(buf, 'x', sizeof buf);
    size_t n = sl_time_format(ns, buf);
    assert_int_equal(n, strlen(want));
    assert_int_equal(buf[n], '\0');
    assert_string_equal(buf, want);
}

static void test_format(void **state)
{
    (void)state;
    expect_format(0, "1970-01-01T00:00:00Z");
    expect_format(INT64_C(1767225600) * S, "2026-01-01T00:00:00Z");
    expect_format(INT64_C(1767225600) * S + 500000000, "2026-01-01T00:00:00.500Z");
    expect_format(INT64_C(1767225600) * S + 1000000, "2026-01-01T00:00:00.001Z");
    expect_format(INT64_C(1767225600) * S + 1000, "2026-01-01T00:00:00.000001Z");
    expect_format(INT64_C(1767225600) * S + 123456000, "2026-01-01T00:00:00.123456Z");
    expect_format(INT64_C(1767225600) * S + 1, "2026-01-01T00:00:00.000000001Z");
    expect_format(INT64_C(1709208000) * S, "2024-02-29T12:00:00Z");
    /* before 1970: the fraction counts forward from the earlier second */
    expect_format(-1, "1969-12-31T23:59:59.999999999Z");
    expect_format(-S, "1969-12-31T23:59:59Z");
    expect_format(-S / 2, "1969-12-31T23:59:59.500Z");
    expect_format(-86400 * S, "1969-12-31T00:00:00Z");
    expect_format(-86400 * S - 1, "1969-12-30T23:59:59.999999999Z");
    expect_format(INT64_C(-2208988800) * S, "1900-01-01T00:00:00Z");
    expect_format(INT64_MAX, "2262-04-11T23:47:16.854775807Z");
    expect_format(INT64_MIN, "1677-09-21T00:12:43.145224192Z");
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void test_round_trip(void **state)
{
    (void)state;
    char buf[40];
    for (int i = 0; i < 200000; i++) {
        int64_t ns = (int64_t)rng();
        /* a third of them on whole seconds / milliseconds, to cover the short forms */
        if (i % 3 == 1)
            ns -= ns % S;
        else if (i % 3 == 2)
            ns -= ns % 1000000;
        size_t n = sl_time_format(ns, buf);
        int64_t back;
        if (sl_time_parse(buf, n, &back) != 0 || back != ns)
            fail_msg("%lld formatted as %s does not parse back", (long long)ns, buf);
    }
}

/* Both directions agree with timegm/gmtime_r, which share no code with timefmt.c. */
static void test_against_libc(void **state)
{
    (void)state;
    char buf[96], want[96];
    for (int i = 0; i < 100000; i++) {
        /* seconds within the int64 ns range */
        int64_t sec = (int64_t)(rng() % UINT64_C(18000000000)) - INT64_C(9000000000);
        time_t t = (time_t)sec;
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        sl_time_format(sec * S, buf);
        assert_string_equal(buf, want);

        /* and parsing a local time with an offset equals timegm of the UTC fields */
        int off_min = (int)(rng() % (2 * 24 * 60 - 1)) - (24 * 60 - 1);
        time_t local = t + off_min * 60;
        struct tm ltm;
        assert_non_null(gmtime_r(&local, &ltm));
        if (ltm.tm_year + 1900 < 1678 || ltm.tm_year + 1900 > 2261) continue;
        int ao = off_min < 0 ? -off_min : off_min;
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", ltm.tm_year + 1900,
                 ltm.tm_mon + 1, ltm.tm_mday, ltm.tm_hour, ltm.tm_min, ltm.tm_sec,
                 off_min < 0 ? '-' : '+', ao / 60, ao % 60);
        int64_t ns;
        assert_int_equal(parse(buf, &ns), 0);
        assert_true(ns == (int64_t)timegm(&tm) * S);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),  cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_format),       cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_against_libc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
