/*
 * sluice_log.h - `sluice log`: inspect and feed a durable event log
 * (docs/eventlog.md).
 */
#ifndef SLUICE_LOG_CLI_H
#define SLUICE_LOG_CLI_H

/*
 * Run `sluice log ...`; argv[0] is "log". Returns the exit status: 0 done,
 * 1 no log there, a damaged log, an event not found or refused, 2 wrong usage.
 */
int sl_cli_log(int argc, char **argv);

#endif
