/*
 * position.c - a replayable source's position in a checkpoint (position.h).
 *
 * One record under key "pos": checkpoint id, value count, the values, then
 * the fingerprint text.
 */
#include "position.h"

#include <inttypes.h>
#include <string.h>

typedef struct pos_head {
    uint64_t id;
    uint64_t n;
    uint64_t vals[SL_POSITION_MAX];
} pos_head;

sl_kv *sl_position_open(sl_ctx *ctx) { return ctx->host->kv_open(ctx, "position"); }

int sl_position_save(sl_ctx *ctx, sl_kv *db, uint64_t id, const char *fingerprint,
                     const uint64_t *vals, size_t n)
{
    const sl_host *h = ctx->host;
    size_t flen = strlen(fingerprint);
    uint8_t rec[sizeof(pos_head) + 1024];
    if (n > SL_POSITION_MAX || flen > 1024)
        return SL_ERROR;
    pos_head head = {.id = id, .n = n};
    memcpy(head.vals, vals, n * sizeof *vals);
    memcpy(rec, &head, sizeof head);
    memcpy(rec + sizeof head, fingerprint, flen);
    if (h->kv_begin(ctx, 1) != 0)
        return SL_ERROR;
    if (h->kv_put(ctx, db, "pos", 3, rec, sizeof head + flen) != 0 || h->kv_commit(ctx) != 0) {
        h->kv_abort(ctx);
        return SL_ERROR;
    }
    return SL_OK;
}

int sl_position_load(sl_ctx *ctx, sl_kv *db, uint64_t id, const char *fingerprint,
                     const char *what, uint64_t *vals, size_t n)
{
    const sl_host *h = ctx->host;
    if (h->kv_begin(ctx, 0) != 0)
        return SL_ERROR;
    const void *v;
    size_t vlen;
    int rc = h->kv_get(ctx, db, "pos", 3, &v, &vlen);
    pos_head head;
    int ok = 0;
    if (rc == 0 && vlen >= sizeof head) {
        memcpy(&head, v, sizeof head);
        size_t flen = vlen - sizeof head;
        if (head.id != id || head.n != n)
            h->log(ctx, SL_LOG_ERROR, "no position for checkpoint %" PRIu64 " (found %" PRIu64 ")",
                   id, head.id);
        else if (flen != strlen(fingerprint) ||
                 memcmp((const uint8_t *)v + sizeof head, fingerprint, flen) != 0)
            h->log(ctx, SL_LOG_ERROR, "the checkpoint's position is in %s '%.*s', not '%s'", what,
                   (int)flen, (const char *)v + sizeof head, fingerprint);
        else {
            memcpy(vals, head.vals, n * sizeof *vals);
            ok = 1;
        }
    } else if (rc >= 0) {
        h->log(ctx, SL_LOG_ERROR, "no position stored for checkpoint %" PRIu64, id);
    }
    h->kv_abort(ctx);
    return ok ? SL_OK : SL_ERROR;
}
