/*
 * sluice_test.h - `sluice test`: run a pipeline's YAML unit tests (given input
 * events per source, expected output per sink or port) and print a readable
 * diff for each failure (docs/testing.md).
 */
#ifndef SLUICE_TEST_CLI_H
#define SLUICE_TEST_CLI_H

/*
 * Run `sluice test ...`; argv[0] is "test". Returns the exit status: 0 every
 * test passed, 1 a test failed or could not run, 2 wrong usage.
 */
int sl_cli_test(int argc, char **argv);

#endif
