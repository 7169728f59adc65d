/*
 * bad_abi.c - test plugin: a plugin built for another ABI (its sl_plugin says
 * abi_version 999). The host must refuse it before reading anything else,
 * naming the file and both versions (tests/e2e/test_plugins.py).
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
    .name = "test.bad_abi",
    .summary = "Never registered: its plugin claims ABI 999",
    .param_size = sizeof(sl_param),
    .init = never_init,
};

static const sl_operator *const operators[] = {&op, NULL};

static const sl_plugin plugin = {
    .abi_version = 999,
    .struct_size = sizeof(sl_plugin),
    .name = "bad-abi",
    .version = "0",
    .operators = operators,
};

const sl_plugin *sluice_plugin(void);
const sl_plugin *sluice_plugin(void) { return &plugin; }
