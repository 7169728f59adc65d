/*
 * dup_name.c - test plugin: an operator named `filter`, which is a built-in.
 * The host must refuse the plugin whole (not replace the built-in), naming
 * the file and the operator (tests/e2e/test_plugins.py).
 */
#include "one_operator.h"

ONE_OPERATOR_PLUGIN("filter", "Never registered: the name is the built-in filter's",
                    SL_ABI_VERSION, sluice_plugin)
