/*
 * log.h - the engine's log lines on stderr: a level threshold and a format.
 *
 *   text    sluice: <operator>: <level>: <message>           (the default)
 *   logfmt  time=... level=info pipeline=p operator=o msg="..."
 *   json    {"time":"...","level":"info","pipeline":"p","operator":"o","msg":"..."}
 *
 * One write per line, so lines of different threads never interleave.
 * Configure before any thread starts. SLUICE_DEBUG=1 lowers the default
 * threshold to debug.
 */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdarg.h>

#include "sluice/operator.h"

/* Set the threshold ("error", "warn", "info", "debug"; NULL keeps it); 0 or -1 if unknown. */
int sl_log_set_level(const char *level);
/* Set the format ("text", "logfmt", "json"; NULL keeps it); 0 or -1 if unknown. */
int sl_log_set_format(const char *format);
/* The pipeline named in logfmt and json lines (borrowed; NULL for none). */
void sl_log_set_pipeline(const char *name);

void sl__vlog(const char *op, sl_log_level level, const char *fmt, va_list ap);

#endif
