/* failpoint.c - deterministic crash points (failpoint.h). */
#include "failpoint.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int passes;

void sl_failpoint(const char *name)
{
    const char *at = getenv("SLUICE_CRASH_AT");
    if (!at)
        return;
    size_t n = strlen(name);
    if (strncmp(at, name, n) != 0 || (at[n] != '\0' && at[n] != ':'))
        return;
    int nth = at[n] == ':' ? atoi(at + n + 1) : 1;
    if (atomic_fetch_add(&passes, 1) + 1 >= nth)
        raise(SIGKILL);
}
