/*
 * plugin.h - loading operator plugins: shared objects exporting
 * `sluice_plugin` (include/sluice/operator.h; docs/plugins.md).
 *
 * A plugin is opened with dlopen(RTLD_NOW | RTLD_LOCAL), asked for its
 * descriptor list, and every operator in it is checked (ABI version, struct
 * sizes, a name no one has) before any is registered: a plugin is taken
 * whole or not at all. Plugins stay loaded for the life of the process (the
 * registry borrows their descriptors). Loading the same file twice (by its
 * real path) is a no-op. Not thread-safe: load before running.
 *
 * Errors fill `err` with one line that names the file, e.g.
 *   plugin 'x.so': built for ABI 7, this sluice has ABI 1
 */
#ifndef SL_PLUGIN_H
#define SL_PLUGIN_H

#include <stddef.h>

/* Load one plugin. Returns 0, SL_EABI, SL_EDUPLICATE or another negative code (err says why). */
int sl_plugin_load(const char *path, char *err, size_t errlen);

/* Load every *.so in dir, in name order; stops at the first failure. */
int sl_plugin_load_dir(const char *dir, char *err, size_t errlen);

/* Load the directories of SLUICE_PLUGIN_PATH (colon-separated); 0 when unset. */
int sl_plugin_load_env(char *err, size_t errlen);

#endif
