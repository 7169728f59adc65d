/*
 * expr_time.c - durations as CEL spells them, and the calendar fields of a
 * timestamp for the get*() accessors.
 *
 * Parsing follows Go's time.ParseDuration, which CEL's duration() uses:
 * [-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+ or "0", with the same
 * overflow rules (the total must fit int64 nanoseconds). Formatting follows
 * CEL's string(duration): seconds with a trimmed fraction and an "s".
 * Timestamps themselves go through timefmt.c (RFC 3339).
 */
#include <stdio.h>
#include <string.h>

#include "expr_internal.h"

static uint64_t unit_ns(const char *u, size_t n)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1},           {"us", 1000},      {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000},                                         /* U+03BC Greek mu */
        {"ms", 1000000},     {"s", 1000000000}, {"m", 60000000000ull}, {"h", 3600000000000ull},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0) return units[i].ns;
    return 0;
}

int sl__xduration_parse(const char *s, size_t n, int64_t *ns)
{
    const uint64_t limit = (uint64_t)1 << 63;
    size_t i = 0;
    int neg = 0;
    uint64_t total = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
    }
    if (n - i == 1 && s[i] == '0') {
        *ns = 0;
        return 0;
    }
    if (i == n) return -1;
    while (i < n) {
        uint64_t v = 0, f = 0;
        double scale = 1;
        if (!(s[i] == '.' || (s[i] >= '0' && s[i] <= '9'))) return -1;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (v > (limit - (uint64_t)(s[i] - '0')) / 10) return -1; /* overflow */
            v = v * 10 + (uint64_t)(s[i] - '0');
            i++;
        }
        int pre = i != start, post = 0;
        if (i < n && s[i] == '.') {
            i++;
            size_t fstart = i;
            int overflow = 0;
            while (i < n && s[i] >= '0' && s[i] <= '9') {
                if (!overflow) {
                    if (f > (UINT64_MAX / 2 - 9) / 10) {
                        overflow = 1;
                    } else {
                        f = f * 10 + (uint64_t)(s[i] - '0');
                        scale *= 10;
                    }
                }
                i++;
            }
            post = i != fstart;
        }
        if (!pre && !post) return -1;
        size_t ustart = i;
        while (i < n && s[i] != '.' && !(s[i] >= '0' && s[i] <= '9'))
            i++;
        uint64_t unit = unit_ns(s + ustart, i - ustart);
        if (unit == 0) return -1; /* missing or unknown unit */
        if (v > limit / unit) return -1;
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > limit) return -1;
        }
        total += v;
        if (total > limit) return -1;
    }
    if (neg) {
        *ns = total == limit ? INT64_MIN : -(int64_t)total;
        return 0;
    }
    if (total > (uint64_t)INT64_MAX) return -1;
    *ns = (int64_t)total;
    return 0;
}

size_t sl__xduration_format(int64_t ns, char *buf)
{
    uint64_t mag = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    uint64_t sec = mag / 1000000000u, frac = mag % 1000000000u;
    int len = snprintf(buf, 32, "%s%llu", ns < 0 ? "-" : "", (unsigned long long)sec);
    if (frac) {
        char f[16];
        snprintf(f, sizeof f, "%09llu", (unsigned long long)frac);
        size_t fl = 9;
        while (fl > 0 && f[fl - 1] == '0')
            fl--;
        len += snprintf(buf + len, 32 - (size_t)len, ".%.*s", (int)fl, f);
    }
    buf[len++] = 's';
    buf[len] = '\0';
    return (size_t)len;
}

void sl__xcivil(int64_t ns, sl__xcivil_t *c)
{
    const int64_t day_ns = INT64_C(86400000000000);
    int64_t days = ns / day_ns, rem = ns % day_ns;
    if (rem < 0) {
        rem += day_ns;
        days -= 1;
    }
    c->nanos = rem;
    c->weekday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    /* civil_from_days (Howard Hinnant) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    c->day = (int)(doy - (153 * mp + 2) / 5 + 1);
    c->month = (int)(mp < 10 ? mp + 3 : mp - 9);
    c->year = (int64_t)yoe + era * 400 + (c->month <= 2);
    /* day of the year, 0-based, from January 1st */
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int leap = (c->year % 4 == 0 && c->year % 100 != 0) || c->year % 400 == 0;
    c->yday = before[c->month - 1] + c->day - 1 + (leap && c->month > 2);
}
