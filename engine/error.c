/* error.c - text for result codes (errno range and SL_E* range). */
#include <string.h>

#include "error.h"

const char *sl_strerror(int rc)
{
    switch (rc) {
    case 0: return "success";
    case SL_ECONFIG: return "invalid pipeline configuration";
    case SL_EDUPLICATE: return "name already registered";
    case SL_EABI: return "incompatible plugin ABI";
    case SL_EOPERATOR: return "operator failed";
    case SL_EPROTO: return "malformed batch";
    case SL_EINTERRUPTED: return "interrupted";
    case SL_EHALTED: return "stopped after a checkpoint";
    case SL_ESTATE: return "unusable state directory";
    default: break;
    }
    if (rc < 0 && rc > SL_EBASE)
        return strerror(-rc);
    return "unknown error";
}
