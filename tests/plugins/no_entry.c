/*
 * no_entry.c - test plugin: a shared object without the entry symbol (the
 * author misspelt it). The host must say which symbol it looked for and in
 * which file (tests/e2e/test_plugins.py).
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
    .name = "test.no_entry",
    .summary = "Never registered: its plugin exports no sluice_plugin",
    .param_size = sizeof(sl_param),
    .init = never_init,
};

static const sl_operator *const operators[] = {&op, NULL};

static const sl_plugin plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin),
    .name = "no-entry",
    .version = "0",
    .operators = operators,
};

/* The mistake: not the name the host looks for. */
const sl_plugin *sluice_plugin_entry(void);
const sl_plugin *sluice_plugin_entry(void) { return &plugin; }
