/*
 * aggregate.h - the aggregate operator's state, shared by its files:
 * aggregate.c (configuration, events, firing, output), agg_table.c (the
 * in-memory table of windows) and agg_spill.c (the LMDB side: spilling
 * beyond the memory budget, snapshot and restore).
 *
 * A window's result is the merge of up to three partial results: the one in
 * memory (a table entry), the spilled one (LMDB, written when memory ran
 * over budget) and the base one (LMDB, as of the last snapshot). Partials
 * merge exactly (agg_acc_merge), so an event only ever touches memory.
 */
#ifndef SL_AGGREGATE_H
#define SL_AGGREGATE_H

#include <stdint.h>

#include "agg_compute.h"
#include "sluice/operator.h"

#define AGG_MAX_SPECS 8
#define AGG_MAX_SETS 8
#define AGG_MAX_KEYS 8
#define AGG_MAX_COMPUTES 32

typedef struct window_spec {
    int64_t size, every; /* tumbling: every == size; session: size is the gap */
    int session;
    const char *text;    /* "1m", for messages */
} window_spec;

typedef struct group_set {
    const sl_expr *keys[AGG_MAX_KEYS];
    const char *names[AGG_MAX_KEYS];
    const char *texts[AGG_MAX_KEYS]; /* the key expressions (borrowed), for the fingerprint */
    size_t n_keys;
} group_set;

typedef struct entry {
    uint32_t next;       /* hash chain (index + 1; 0 ends) */
    uint32_t spec, set;
    int64_t start, end;  /* sessions: first event time, last + gap */
    uint64_t hash;       /* of (spec, set, start, key); sessions hash without start */
    uint32_t key_len;
    uint8_t fired;       /* emitted once; later changes are updates */
    uint8_t dirty;       /* changed after firing: in the batch's update list */
    uint8_t ref;         /* touched since the eviction clock last passed */
    uint8_t has_base;    /* the accumulators include the base (snapshot) partial */
    uint8_t changed;     /* new or updated since the last snapshot wrote it */
    uint8_t assumed;     /* new in memory after its window fired from LMDB: an update
                            if LMDB held part of it, else a first firing (agg_spill_promote) */
    uint32_t mem;        /* bytes accounted to the budget */
    uint8_t *key;        /* the group's values, msgpack back to back (inside the allocation) */
    agg_acc acc[];
} entry;

typedef struct heap_item {
    int64_t at;          /* when the watermark reaching it matters */
    uint32_t idx;
} heap_item;

typedef struct aggregate {
    window_spec specs[AGG_MAX_SPECS];
    size_t n_specs;
    group_set sets[AGG_MAX_SETS];
    size_t n_sets;
    agg_compute comp[AGG_MAX_COMPUTES];
    size_t n_comp;
    int var_mem;         /* some compute's memory grows with its values */
    const sl_expr *where;
    int64_t lateness;
    uint64_t budget;     /* bytes of window state kept in memory */
    int late_port, errors_port;
    int64_t wm;          /* the watermark processed so far */
    int64_t fired_upto;  /* every window ending at or before this has fired */
    int64_t purged_upto; /* spilled partials of windows ending at or before this are gone */
    /* the table */
    entry **entries;
    size_t n_entries, cap_entries;
    uint32_t *free_list;
    size_t n_free;
    uint32_t *buckets;   /* index + 1 */
    size_t n_buckets;
    size_t live;
    uint64_t mem;        /* bytes held by entries */
    size_t clock;        /* the eviction hand */
    heap_item *heap;     /* one item per live entry, plus stale ones (checked when popped) */
    size_t n_heap, cap_heap;
    uint32_t *dirty;     /* entries updated after firing, re-emitted at batch end */
    size_t n_dirty, cap_dirty;
    /* LMDB (agg_spill.c) */
    sl_kv *db;           /* windows: base and spilled partials */
    sl_kv *sessions_db;  /* sessions as of the last snapshot */
    sl_kv *meta_db;      /* the snapshot's id and watermarks */
    int db_any;          /* the windows database may hold records */
    int restored;
    uint64_t spilled, evictions; /* counters for the log */
    uint64_t evictions_at_snap;  /* evictions when the last snapshot (or start) left no spill */
    /* scratch */
    sl_wbuf keys[AGG_MAX_SETS];
    sl_wbuf args;
    size_t arg_off[AGG_MAX_COMPUTES + 1];
    sl_wbuf out, dbkey, dbval;
    char detail[256];
} aggregate;

/* ---- agg_table.c ---- */

uint64_t agg_hash(uint32_t spec, uint32_t set, int64_t start, const uint8_t *k, size_t n);
/* The entry of (spec, set, start, key), or NULL. */
entry *agg_find(aggregate *a, uint32_t spec, uint32_t set, int64_t start, const uint8_t *key,
                size_t key_len, uint32_t *idx);
/*
 * A new empty entry (not looked up first) with its heap item; NULL when out of
 * memory. Sessions: start/end are the session's.
 */
entry *agg_insert(aggregate *a, uint32_t spec, uint32_t set, int64_t start, int64_t end,
                  const uint8_t *key, size_t key_len, uint32_t *idx);
void agg_release(aggregate *a, uint32_t idx);
/* Recount e's heap bytes after its accumulators changed. */
void agg_account(aggregate *a, entry *e);
int agg_heap_push(aggregate *a, int64_t at, uint32_t idx);
heap_item agg_heap_pop(aggregate *a);
/* Drop stale heap items once they outnumber the live ones. Returns 0 or -1. */
int agg_heap_compact(aggregate *a);
/* When the watermark must reach for entry e's next step: its end, or end + lateness once fired. */
int64_t agg_due(const aggregate *a, const entry *e);
/* Queue e for an update at the end of the batch. Returns 0 or -1. */
int agg_mark_dirty(aggregate *a, entry *e, uint32_t idx);

/* ---- agg_spill.c ---- */

/* Open the databases (start or restore). Returns SL_OK or SL_ERROR. */
int agg_spill_open(aggregate *a, sl_ctx *ctx);
/* Memory over budget: move the coldest windows' partials to LMDB. */
int agg_spill_evict(aggregate *a, sl_ctx *ctx);
/* Fold what LMDB holds for these entries into them (before they are emitted). */
int agg_spill_promote(aggregate *a, sl_ctx *ctx, const uint32_t *idx, size_t n);
/*
 * The watermark reached wm: fold LMDB partials of windows ending in
 * (fired_upto, wm] into their memory entries, emit the windows that live only
 * in LMDB, and drop spilled partials past their lateness.
 */
int agg_spill_fire(aggregate *a, sl_ctx *ctx, int64_t wm);
int agg_spill_snapshot(aggregate *a, sl_ctx *ctx, uint64_t id);
int agg_spill_restore(aggregate *a, sl_ctx *ctx, uint64_t id);
/* Start without a restore: forget what an earlier run left. */
int agg_spill_reset(aggregate *a, sl_ctx *ctx);

/* ---- aggregate.c ---- */

/* Emit one window's result (update: it fired before). */
int agg_emit_entry(aggregate *a, sl_ctx *ctx, const entry *e, int update);

#endif
