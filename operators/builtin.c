/*
 * builtin.c - the table of built-in operators, registered like plugins are.
 */
#include "registry.h"

extern const sl_operator sl_op_source_generator, sl_op_source_file, sl_op_source_zmq,
    sl_op_sink_file, sl_op_sink_stdout, sl_op_sink_zmq, sl_op_sink_null, sl_op_identity,
    sl_op_filter, sl_op_transform, sl_op_route, sl_op_aggregate, sl_op_join, sl_op_dedup, sl_op_throttle;
extern const sl_operator sl_op_sink_log, sl_op_source_log;
extern const sl_operator sl_op_ratelimit;
extern const sl_operator sl_op_auth;
extern const sl_operator sl_op_cache, sl_op_cache_store;
extern const sl_operator sl_op_catalog;
extern const sl_operator sl_op_events_api;
extern const sl_operator sl_op_source_http, sl_op_respond;

static const sl_operator *const builtins[] = {
    &sl_op_source_generator, &sl_op_source_file, &sl_op_source_zmq, &sl_op_sink_file,
    &sl_op_sink_stdout,      &sl_op_sink_zmq,    &sl_op_sink_null,  &sl_op_identity,
    &sl_op_filter,           &sl_op_transform,   &sl_op_route,      &sl_op_aggregate,
    &sl_op_join,             &sl_op_dedup,       &sl_op_throttle,
    &sl_op_source_log,       &sl_op_sink_log,     &sl_op_ratelimit,
    &sl_op_cache,            &sl_op_cache_store,
    &sl_op_auth,             &sl_op_events_api,
    &sl_op_source_http,      &sl_op_respond,
    &sl_op_catalog,
};

void sl_builtin_register(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
        sl_registry_add(builtins[i], "built-in");
}
