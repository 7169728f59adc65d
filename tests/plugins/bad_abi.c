/*
 * bad_abi.c - test plugin: a plugin built for another ABI (its sl_plugin says
 * abi_version 999). The host must refuse it before reading anything else,
 * naming the file and both versions (tests/e2e/test_plugins.py).
 */
#include "one_operator.h"

ONE_OPERATOR_PLUGIN("test.bad_abi", "Never registered: its plugin claims ABI 999", 999,
                    sluice_plugin)
