/*
 * plugin.c - loading operator plugins (plugin.h).
 */
#include "plugin.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "registry.h"

/* Real paths of the plugins loaded so far (never unloaded: the registry borrows them). */
static char **loaded;
static size_t n_loaded;

static int already_loaded(const char *real)
{
    for (size_t i = 0; i < n_loaded; i++)
        if (strcmp(loaded[i], real) == 0)
            return 1;
    return 0;
}

static int remember(char *real)
{
    char **l = realloc(loaded, (n_loaded + 1) * sizeof *l);
    if (!l)
        return -ENOMEM;
    loaded = l;
    loaded[n_loaded++] = real;
    return 0;
}

/* Check every descriptor of the plugin against the ABI and the registry before adding any. */
static int check_operators(const char *path, const sl_plugin *pl, char *err, size_t errlen)
{
    size_t n = 0;
    for (const sl_operator *const *o = pl->operators; o && *o; o++, n++) {
        const sl_operator *op = *o;
        if (!op->name || !*op->name) {
            snprintf(err, errlen, "plugin '%s': operator #%zu has no name", path, n + 1);
            return SL_EABI;
        }
        if (op->abi_version != SL_ABI_VERSION) {
            snprintf(err, errlen, "plugin '%s': operator '%s' was built for ABI %u, this sluice "
                     "has ABI %u: rebuild it against this sluice's headers",
                     path, op->name, op->abi_version, SL_ABI_VERSION);
            return SL_EABI;
        }
        const sl_registry_entry *e = sl_registry_find(op->name);
        if (!e && sl_registry_check(op) != 0) {
            snprintf(err, errlen, "plugin '%s': operator '%s' does not fit this sluice's ABI "
                     "(struct_size %u, param_size %u, or no init)", path, op->name,
                     op->struct_size, op->param_size);
            return SL_EABI;
        }
        if (e) {
            snprintf(err, errlen, "plugin '%s': operator '%s' is already defined (%s%s%s)", path,
                     op->name, strcmp(e->origin, "built-in") == 0 ? "" : "by plugin '",
                     e->origin, strcmp(e->origin, "built-in") == 0 ? "" : "'");
            return SL_EDUPLICATE;
        }
        for (const sl_operator *const *p = pl->operators; p != o; p++)
            if (strcmp((*p)->name, op->name) == 0) {
                snprintf(err, errlen, "plugin '%s': operator '%s' is defined twice in it", path,
                         op->name);
                return SL_EDUPLICATE;
            }
    }
    if (n == 0) {
        snprintf(err, errlen, "plugin '%s': it defines no operator", path);
        return SL_EABI;
    }
    return 0;
}

int sl_plugin_load(const char *path, char *err, size_t errlen)
{
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        snprintf(err, errlen, "plugin '%s': %s", path, strerror(errno));
        return -errno;
    }
    if (already_loaded(real))
        return 0;
    /* RTLD_LOCAL: two plugins may use the same symbol names without clashing */
    void *h = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "plugin '%s': cannot load it: %s", path, dlerror());
        return SL_EABI;
    }
    dlerror();
    void *sym = dlsym(h, SL_PLUGIN_ENTRY);
    if (!sym) {
        snprintf(err, errlen, "plugin '%s': no symbol '%s' (a plugin exports "
                 "`const sl_plugin *" SL_PLUGIN_ENTRY "(void)`; see docs/plugins.md)",
                 path, SL_PLUGIN_ENTRY);
        dlclose(h);
        return SL_EABI;
    }
    sl_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* object pointer -> function pointer, as POSIX allows */
    const sl_plugin *pl = entry();
    int rc = 0;
    if (!pl) {
        snprintf(err, errlen, "plugin '%s': %s() returned NULL", path, SL_PLUGIN_ENTRY);
        rc = SL_EABI;
    } else if (pl->abi_version != SL_ABI_VERSION) {
        snprintf(err, errlen, "plugin '%s': built for ABI %u, this sluice has ABI %u: rebuild it "
                 "against this sluice's headers", path, pl->abi_version, SL_ABI_VERSION);
        rc = SL_EABI;
    } else if (pl->struct_size < sizeof(sl_plugin)) {
        snprintf(err, errlen, "plugin '%s': its sl_plugin is %u bytes, expected at least %zu",
                 path, pl->struct_size, sizeof(sl_plugin));
        rc = SL_EABI;
    } else {
        rc = check_operators(path, pl, err, errlen);
    }
    char *origin = rc == 0 ? strdup(real) : NULL;
    if (rc == 0 && (!origin || remember(origin) != 0)) {
        free(origin);
        snprintf(err, errlen, "plugin '%s': out of memory", path);
        rc = -ENOMEM;
    }
    for (const sl_operator *const *o = pl && rc == 0 ? pl->operators : NULL; o && *o && rc == 0;
         o++) {
        rc = sl_registry_add(*o, origin); /* checked above: only out of memory is left */
        if (rc != 0)
            snprintf(err, errlen, "plugin '%s': cannot register '%s': %s", path, (*o)->name,
                     sl_strerror(rc));
    }
    if (rc != 0 && !origin)
        dlclose(h); /* nothing of it was registered */
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sl_plugin_load_dir(const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "plugin directory '%s': %s", dir, strerror(errno));
        return -errno;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = -ENOMEM;
                break;
            }
            names = nn;
        }
        if (asprintf(&names[n], "%s/%s", dir, e->d_name) < 0)
            rc = -ENOMEM;
        else
            n++;
    }
    closedir(d);
    if (rc == 0 && n)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = sl_plugin_load(names[i], err, errlen);
        free(names[i]);
    }
    free(names);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "plugin directory '%s': out of memory", dir);
    return rc;
}

int sl_plugin_load_env(char *err, size_t errlen)
{
    const char *env = getenv("SLUICE_PLUGIN_PATH");
    if (!env || !*env)
        return 0;
    char *copy = strdup(env), *save = NULL;
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    for (char *dir = strtok_r(copy, ":", &save); dir && rc == 0; dir = strtok_r(NULL, ":", &save))
        rc = sl_plugin_load_dir(dir, err, errlen);
    free(copy);
    return rc;
}
