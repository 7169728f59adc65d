/*
 * error.h - result codes. Fallible calls return 0 or a negative number: a
 * negated errno, or an SL_E* code from the reserved range below -4096.
 */
#ifndef SL_ERROR_H
#define SL_ERROR_H

enum {
    SL_EBASE = -4096,
    SL_ECONFIG = -4097,    /* the pipeline file has mistakes (see the diagnostics) */
    SL_EDUPLICATE = -4098, /* a name is already taken */
    SL_EABI = -4099,       /* a plugin was built for another ABI */
    SL_EOPERATOR = -4100,  /* an operator returned SL_ERROR */
    SL_EPROTO = -4101,     /* a malformed batch arrived */
    SL_EINTERRUPTED = -4102,
    SL_EHALTED = -4103,    /* stopped on request right after a checkpoint (not a failure) */
    SL_ESTATE = -4104,     /* the state directory cannot be used (see the log) */
};

/* Text for a result code (either range); never NULL. */
const char *sl_strerror(int rc);

#endif
