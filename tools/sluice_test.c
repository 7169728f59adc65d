/*
 * sluice_test.c - `sluice test` (being written; see sluice_test.h).
 */
#include <stdio.h>

#include "sluice_test.h"

int sl_cli_test(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("sluice: test: not implemented yet\n", stderr);
    return 1;
}
