/*
 * no_entry.c - test plugin: a shared object without the entry symbol (the
 * author misspelt it). The host must say which symbol it looked for and in
 * which file (tests/e2e/test_plugins.py).
 */
#include "one_operator.h"

/* The mistake: not the name the host looks for. */
ONE_OPERATOR_PLUGIN("test.no_entry", "Never registered: its plugin exports no sluice_plugin",
                    SL_ABI_VERSION, sluice_plugin_entry)
