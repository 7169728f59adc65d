/*
 * position.h - a replayable source's position in a checkpoint: a few
 * integers (byte offset, line, events emitted...) stored with the
 * checkpoint's id and a fingerprint of what they are positions in (the
 * file's path, the generator's seed), so a restore into another input is
 * refused instead of seeking somewhere meaningless.
 */
#ifndef SL_OP_POSITION_H
#define SL_OP_POSITION_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/operator.h"

#define SL_POSITION_MAX 8

/* The instance's position database (kv_open, so from start or restore). NULL on error. */
sl_kv *sl_position_open(sl_ctx *ctx);

/* Write n (<= SL_POSITION_MAX) values for checkpoint id. SL_OK or SL_ERROR. */
int sl_position_save(sl_ctx *ctx, sl_kv *db, uint64_t id, const char *fingerprint,
                     const uint64_t *vals, size_t n);

/*
 * Read the values saved for checkpoint id. SL_ERROR (logged) when there is no
 * record, it is for another checkpoint, or its fingerprint differs
 * (`what` names the input in that message, e.g. "path").
 */
int sl_position_load(sl_ctx *ctx, sl_kv *db, uint64_t id, const char *fingerprint,
                     const char *what, uint64_t *vals, size_t n);

#endif
