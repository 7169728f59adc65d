/*
 * file_parts.h - sink.file's exactly-once output under checkpoints
 * (docs/checkpoints.md).
 *
 * Events are written to a pending part, `<path>.pending`. At checkpoint n's
 * snapshot it is synced and renamed `<path>.part-<n>`; once checkpoint n is
 * complete the part is published: copied onto the end of `path` (at the byte
 * offset the checkpoint recorded, so doing it twice writes the same bytes),
 * synced, and removed. `path` therefore only ever holds output of complete
 * checkpoints. The record of checkpoint n: `path`'s published length before
 * part n and part n's length; a restore republishes part n if it is still
 * there, cuts `path` to exactly that length, and drops every other part.
 */
#ifndef SL_OP_FILE_PARTS_H
#define SL_OP_FILE_PARTS_H

#include <stdint.h>

#include "sluice/operator.h"

typedef struct file_parts {
    char *path;          /* the visible file (owned copy) */
    char *pending;       /* <path>.pending */
    int pending_fd;      /* open for writing; -1 before start */
    int path_fd;         /* the visible file, written only by publication */
    sl_kv *db;
    uint64_t published;  /* bytes of path that are visible */
    uint64_t part_id;    /* the closed part waiting for its checkpoint, 0 if none */
    uint64_t part_len;
    /* restored record */
    int have_record;
    uint64_t rec_published, rec_part_id, rec_part_len;
} file_parts;

void file_parts_init(file_parts *fp);
void file_parts_fini(file_parts *fp);

/* Read checkpoint id's record (restore; before start). */
int file_parts_restore(file_parts *fp, sl_ctx *ctx, const char *path, uint64_t id);
/*
 * Make `path` what the restored checkpoint says (or, on a fresh start, empty
 * unless `append`), remove stale parts, open the pending part.
 */
int file_parts_start(file_parts *fp, sl_ctx *ctx, const char *path, int restored, int append);
/* Snapshot of checkpoint id: sync and close the pending part as part id; record it. */
int file_parts_close(file_parts *fp, sl_ctx *ctx, uint64_t id);
/* Checkpoint id is complete: publish its part (idempotent). */
int file_parts_publish(file_parts *fp, sl_ctx *ctx, uint64_t id);

#endif
