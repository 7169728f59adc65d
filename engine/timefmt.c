/*
 * timefmt.c - RFC 3339 text <-> int64 nanoseconds since the Unix epoch (UTC).
 *
 * Pure arithmetic: dates go through days-from-civil / civil-from-days on the proleptic
 * Gregorian calendar (Howard Hinnant's algorithms), never through timegm/gmtime, so both
 * directions are thread-safe, locale-free and independent of the TZ environment.
 *
 * Invariants and choices:
 * - Representable range is that of int64 ns: 1677-09-21T00:12:43.145224192Z to
 *   2262-04-11T23:47:16.854775807Z; parsing outside it fails rather than wraps.
 * - Parsing is strict about shape (fixed-width fields, 1 to 9 fraction digits, offset
 *   +hh:mm / -hh:mm / Z) but accepts 't', 'z' and ' ' as RFC 3339 section 5.6 allows.
 * - A leap second (ss = 60) is accepted and read as ss = 59 with its fraction kept: int64 ns
 *   since the epoch (like POSIX time) has no slot for it, and folding it into the previous
 *   second keeps the order of events within the minute. Formatting never produces 60.
 * - Formatting uses 0, 3, 6 or 9 fraction digits, the fewest that are exact.
 */
#include "timefmt.h"

#include <string.h>

#define NS_PER_SEC 1000000000LL
#define SEC_PER_DAY 86400LL

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1..12, d 1..31). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);                       /* [0, 399] */
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + (int64_t)doe - 719468;
}

/* Inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);                          /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Read exactly n decimal digits at s into *v. Returns 0, or -1 if one is not a digit. */
static int digits(const char *s, int n, unsigned *v)
{
    unsigned x = 0;
    for (int i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i] - '0';
        if (c > 9) return -1;
        x = x * 10 + c;
    }
    *v = x;
    return 0;
}

/*
 * Parse "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+hh:mm|-hh:mm)", the whole of s[0..len).
 * Returns 0 and sets *ns, or -1 if the text is not RFC 3339, names a date or time that does
 * not exist (2026-02-29, 24:00:00, offset hour > 23), or is outside the int64 ns range.
 */
int sl_time_parse(const char *s, size_t len, int64_t *ns)
{
    unsigned year, mon, day, hour, min, sec, frac = 0;
    size_t i;
    int64_t off_sec = 0;
    if (len < 20) return -1;
    if (digits(s, 4, &year) || s[4] != '-' || digits(s + 5, 2, &mon) || s[7] != '-' ||
        digits(s + 8, 2, &day))
        return -1;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return -1;
    if (digits(s + 11, 2, &hour) || s[13] != ':' || digits(s + 14, 2, &min) || s[16] != ':' ||
        digits(s + 17, 2, &sec))
        return -1;
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 || min > 59 ||
        sec > 60)
        return -1;
    if (sec == 60) sec = 59; /* leap second, see the top of the file */
    i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && i - start < 10 && (unsigned)((unsigned char)s[i] - '0') <= 9)
            frac = frac * 10 + (unsigned)(s[i++] - '0');
        size_t n = i - start;
        if (n == 0 || n > 9) return -1;
        for (; n < 9; n++)
            frac *= 10;
    }
    if (i >= len) return -1;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        unsigned oh, om;
        if (len - i < 6 || digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        off_sec = (int64_t)oh * 3600 + om * 60;
        if (s[i] == '-') off_sec = -off_sec;
        i += 6;
    } else {
        return -1;
    }
    if (i != len) return -1;

    /* Local time minus the offset is UTC. Years 0..9999 keep this far from int64 overflow. */
    int64_t t =
        days_from_civil(year, mon, day) * SEC_PER_DAY + hour * 3600 + min * 60 + sec - off_sec;
    /* t * 1e9 + frac must fit int64: INT64_MAX = 9223372036.854775807 s. */
    if (t > INT64_MAX / NS_PER_SEC ||
        (t == INT64_MAX / NS_PER_SEC && frac > INT64_MAX % NS_PER_SEC))
        return -1;
    /* INT64_MIN = -9223372037 s + 145224192 ns */
    if (t < INT64_MIN / NS_PER_SEC - 1 ||
        (t == INT64_MIN / NS_PER_SEC - 1 && frac < (unsigned)(NS_PER_SEC + INT64_MIN % NS_PER_SEC)))
        return -1;
    /* For the lowest second t * 1e9 alone would overflow; borrow the fraction from t + 1. */
    *ns = t < 0 ? (t + 1) * NS_PER_SEC - (NS_PER_SEC - (int64_t)frac)
                : t * NS_PER_SEC + (int64_t)frac;
    return 0;
}

/* Write v (< 10^n) as exactly n digits. */
static void put_digits(char *p, unsigned v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/*
 * Format ns as "YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z" into buf (at most 30 bytes
 * plus NUL for the int64 range). Returns the length. Negative ns (before 1970) round down to
 * the previous second, so the fraction is always positive.
 */
size_t sl_time_format(int64_t ns, char *buf)
{
    int64_t sec = ns / NS_PER_SEC;
    int64_t nsec = ns % NS_PER_SEC;
    if (nsec < 0) {
        nsec += NS_PER_SEC;
        sec -= 1;
    }
    int64_t days = sec / SEC_PER_DAY;
    int64_t sod = sec % SEC_PER_DAY;
    if (sod < 0) {
        sod += SEC_PER_DAY;
        days -= 1;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);

    char *p = buf;
    put_digits(p, (unsigned)y, 4); /* int64 ns years are 1677..2262 */
    p[4] = '-';
    put_digits(p + 5, m, 2);
    p[7] = '-';
    put_digits(p + 8, d, 2);
    p[10] = 'T';
    put_digits(p + 11, (unsigned)(sod / 3600), 2);
    p[13] = ':';
    put_digits(p + 14, (unsigned)(sod / 60 % 60), 2);
    p[16] = ':';
    put_digits(p + 17, (unsigned)(sod % 60), 2);
    p += 19;
    if (nsec != 0) {
        *p++ = '.';
        if (nsec % 1000000 == 0) {
            put_digits(p, (unsigned)(nsec / 1000000), 3);
            p += 3;
        } else if (nsec % 1000 == 0) {
            put_digits(p, (unsigned)(nsec / 1000), 6);
            p += 6;
        } else {
            put_digits(p, (unsigned)nsec, 9);
            p += 9;
        }
    }
    *p++ = 'Z';
    *p = '\0';
    return (size_t)(p - buf);
}
