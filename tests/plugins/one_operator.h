/*
 * one_operator.h - the plugin the broken test plugins are made of: one
 * operator that does nothing, in an sl_plugin of the given ABI version,
 * returned by a function of the given name. Each .c file in this directory
 * that includes it gets it wrong in one way (tests/e2e/test_plugins.py).
 */
#ifndef TEST_ONE_OPERATOR_H
#define TEST_ONE_OPERATOR_H

#include <sluice/operator.h>

static int never_init(sl_ctx *ctx, void **state)
{
    (void)ctx;
    *state = NULL;
    return SL_OK;
}

#define ONE_OPERATOR_PLUGIN(op_name, summary_text, plugin_abi, entry)                         \
    static const sl_operator op = {                                                           \
        .abi_version = SL_ABI_VERSION,                                                        \
        .struct_size = sizeof(sl_operator),                                                   \
        .name = op_name,                                                                      \
        .summary = summary_text,                                                              \
        .param_size = sizeof(sl_param),                                                       \
        .init = never_init,                                                                   \
    };                                                                                        \
    static const sl_operator *const operators[] = {&op, NULL};                                \
    static const sl_plugin plugin = {                                                         \
        .abi_version = plugin_abi,                                                            \
        .struct_size = sizeof(sl_plugin),                                                     \
        .name = op_name,                                                                      \
        .version = "0",                                                                       \
        .operators = operators,                                                               \
    };                                                                                        \
    const sl_plugin *entry(void);                                                             \
    const sl_plugin *entry(void) { return &plugin; }

#endif
