/*
 * timefmt.h - RFC 3339 timestamps <-> int64 nanoseconds since the epoch (UTC).
 */
#ifndef SL_TIMEFMT_H
#define SL_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Parse RFC 3339 ("2026-01-01T00:00:00Z", "...T00:00:00.123456789+02:00",
 * lower-case t/z and a space separator accepted). Returns 0 or -1.
 */
int sl_time_parse(const char *s, size_t len, int64_t *ns);

/*
 * Format as UTC RFC 3339 with 0, 3, 6 or 9 fraction digits (the fewest that
 * are exact). Writes at most 36 bytes plus NUL; returns the length.
 */
size_t sl_time_format(int64_t ns, char *buf);

#ifdef __cplusplus
}
#endif

#endif
