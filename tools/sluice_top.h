/*
 * sluice_top.h - `sluice top`: a live terminal view of a running pipeline,
 * read from its admin endpoint (docs/operations.md).
 */
#ifndef SLUICE_TOP_CLI_H
#define SLUICE_TOP_CLI_H

/*
 * Run `sluice top ...`; argv[0] is "top". Returns the exit status: 0 after the
 * frames asked for (or Ctrl-C), 1 when the endpoint cannot be read, 2 wrong usage.
 */
int sl_cli_top(int argc, char **argv);

#endif
