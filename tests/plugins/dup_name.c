/*
 * dup_name.c - test plugin: an operator named `filter`, which is a built-in.
 * The host must refuse the plugin whole (not replace the built-in), naming
 * the file and the operator (tests/e2e/test_plugins.py).
 */
#include <sluice/operator.h>

static int never_init(sl_ctx *ctx, void **state)
{
    (void)ctx;
    *state = NULL;
    return SL_OK;
}

static const sl_operator op = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "filter",
    .summary = "Never registered: the name is the built-in filter's",
    .param_size = sizeof(sl_param),
    .init = never_init,
};

static const sl_operator *const operators[] = {&op, NULL};

static const sl_plugin plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin),
    .name = "dup-name",
    .version = "0",
    .operators = operators,
};

const sl_plugin *sluice_plugin(void);
const sl_plugin *sluice_plugin(void) { return &plugin; }
