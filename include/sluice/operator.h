/*
 * sluice/operator.h - the operator interface: what every built-in operator is
 * written against, and the ABI a plugin .so implements.
 *
 * Model (GStreamer elements, SPA nodes): an operator type is described by a
 * constant sl_operator descriptor - its name, inputs, output ports, a table of
 * parameters and a table of callbacks. The engine creates one instance per
 * unit of parallelism and drives it: init once, then process(batch) for each
 * batch that reaches one of its inputs (sources are asked to produce instead),
 * on_timer when a timer it set is due, finish at end of stream, destroy last.
 * An instance talks back to the engine only through the host services table
 * (ctx->host): emit an event on a port, read its parameters, log, set timers.
 *
 * Threads: init and destroy run on the engine's main thread; every other
 * callback of one instance runs on that instance's stage thread, never two at
 * once. Instances of one operator share nothing unless the operator makes
 * them (and then it synchronises).
 *
 * ABI rules: sl_operator and sl_host begin with a version and their size and
 * only ever grow at the end; sl_param tables are walked with the stride the
 * descriptor declares. A plugin built for another SL_ABI_VERSION is refused.
 */
#ifndef SLUICE_OPERATOR_H
#define SLUICE_OPERATOR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/msgpack.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SL_ABI_VERSION 1u

/* Status on the data path (process, produce, on_timer, finish). */
enum {
    SL_OK = 0,     /* carry on */
    SL_EOS = 1,    /* produce: this source has no more events */
    SL_IDLE = 2,   /* produce: nothing was available now; call again */
    SL_ERROR = -1  /* stop the pipeline; the operator has logged why */
};

/* --------------------------------------------------------------- batches */

/*
 * A batch of events as an operator sees it: `count` msgpack events laid back
 * to back in `data`; event i spans [ends[i-1], ends[i]) (ends[-1] = 0).
 * Borrowed: valid only during the callback it is passed to.
 */
typedef struct sl_batch {
    const uint8_t *data;
    const uint32_t *ends;
    uint32_t count;
    int64_t watermark; /* event-time watermark in ns, INT64_MIN when unknown */
} sl_batch;

/* Start and length of event i of b. */
static inline const uint8_t *sl_batch_event(const sl_batch *b, uint32_t i, size_t *len)
{
    uint32_t start = i ? b->ends[i - 1] : 0;
    *len = b->ends[i] - start;
    return b->data + start;
}

/* ------------------------------------------------------------ parameters */

typedef enum sl_param_type {
    SL_PARAM_STRING,   /* any scalar, as text */
    SL_PARAM_INT,      /* signed 64-bit integer */
    SL_PARAM_DOUBLE,   /* number */
    SL_PARAM_BOOL,     /* true/false/yes/no/on/off */
    SL_PARAM_DURATION, /* 250ms, 5s, 1m, 1h, 1d (a bare 0 is allowed) -> ns */
    SL_PARAM_SIZE,     /* 512, 64KiB, 16MiB, 1GB -> bytes */
    SL_PARAM_ENUM,     /* one of `choices`, "a|b|c" */
    SL_PARAM_EXPR,     /* an expression (field path until the expression language lands) */
    SL_PARAM_LIST,     /* a YAML sequence */
    SL_PARAM_MAP,      /* a YAML mapping */
    SL_PARAM_ANY       /* any YAML node; the operator checks it in init */
} sl_param_type;

/*
 * One entry of an operator's parameter table, which drives YAML validation,
 * defaults and `sluice inspect`. A table ends with an entry whose name is NULL.
 */
typedef struct sl_param {
    const char *name;          /* YAML key */
    sl_param_type type;
    const char *default_value; /* YAML text of the default, NULL for none */
    int required;              /* nonzero: the key must be present */
    const char *help;          /* one line for `sluice inspect` */
    const char *choices;       /* SL_PARAM_ENUM: "jsonl|msgpack"; otherwise NULL */
} sl_param;

/* --------------------------------------------------- the operator's context */

typedef struct sl_ctx sl_ctx;     /* one per operator instance; first field is public */
typedef struct sl_expr sl_expr;   /* a compiled expression (docs/expressions.md) */
typedef struct sl_node sl_node;   /* a configuration node (YAML), read through the host */
typedef struct sl_host sl_host;
typedef struct sl_kv sl_kv;       /* a named database of the instance's state (LMDB) */

enum { SL_KV_STOP = 1, SL_KV_DELETE = 2 };
typedef int (*sl_kv_visit)(void *arg, const void *key, size_t klen, const void *val,
                           size_t vlen);

struct sl_ctx {
    const sl_host *host;  /* the engine's services; valid for the instance's life */
};

typedef enum sl_node_kind { SL_NODE_SCALAR, SL_NODE_MAP, SL_NODE_SEQ } sl_node_kind;

typedef enum sl_log_level { SL_LOG_ERROR, SL_LOG_WARN, SL_LOG_INFO, SL_LOG_DEBUG } sl_log_level;

/*
 * Services the engine offers an operator instance. Every function takes the
 * instance's ctx first (or a node obtained through it). Nodes and strings
 * returned are borrowed and live as long as the pipeline.
 */
struct sl_host {
    uint32_t abi_version;
    uint32_t struct_size;

    /* -- parameters (defaults already applied and types already checked) -- */

    /* The node of parameter `name`, or NULL if absent and without default. */
    const sl_node *(*param)(sl_ctx *ctx, const char *name);
    sl_node_kind (*node_kind)(const sl_node *n);
    /* Scalar text (after ${VAR} expansion); NULL for maps and sequences. */
    const char *(*node_str)(const sl_node *n);
    /* Conversions of a scalar; each returns 0, or -1 if the text does not fit. */
    int (*node_int)(const sl_node *n, int64_t *out);
    int (*node_double)(const sl_node *n, double *out);
    int (*node_bool)(const sl_node *n, int *out);
    int (*node_duration)(const sl_node *n, int64_t *ns);
    int (*node_size)(const sl_node *n, uint64_t *bytes);
    /* Children of a map or sequence: count, i-th value, i-th key (maps; NULL otherwise). */
    size_t (*node_len)(const sl_node *n);
    const sl_node *(*node_at)(const sl_node *n, size_t i);
    const char *(*node_key)(const sl_node *n, size_t i);
    /* Value of `key` in a map node, or NULL. */
    const sl_node *(*node_get)(const sl_node *n, const char *key);
    /*
     * Report a configuration error located at node `at` (file:line:col is
     * prefixed). init then returns SL_ERROR; the pipeline does not start.
     */
    void (*config_error)(sl_ctx *ctx, const sl_node *at, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* -- identity -- */

    const char *(*name)(sl_ctx *ctx);               /* operator name in the pipeline */
    uint32_t (*instance)(sl_ctx *ctx, uint32_t *count); /* index of this instance, and how many */
    /* Index of output port `port`, or -1. Port 0 is the main port. */
    int (*port)(sl_ctx *ctx, const char *port);

    /* -- data path (stage thread only) -- */

    /*
     * Emit one event (msgpack map, `len` bytes, borrowed: copied before return)
     * on output port `port`. Returns 0, or -1 if the event could not be queued
     * (out of memory, pipeline stopping); a port nobody reads swallows events.
     */
    int (*emit)(sl_ctx *ctx, int port, const void *ev, size_t len);
    /* Whether anything consumes port `port` (so an operator can skip work). */
    int (*port_connected)(sl_ctx *ctx, int port);
    /*
     * Emit a drop-ledger envelope on port `port`: {reason, operator, detail,
     * original} plus the optional `extra` msgpack map's pairs appended (may be
     * NULL). `original` is a msgpack value (an event, or a string for a raw
     * line). Counted in the operator's error metric.
     */
    int (*emit_drop)(sl_ctx *ctx, int port, const char *reason, const char *detail,
                     const void *original, size_t original_len, const void *extra_map,
                     size_t extra_len);

    /* -- time -- */

    int64_t (*now)(sl_ctx *ctx);           /* wall clock, ns since the epoch */
    int64_t (*monotonic)(sl_ctx *ctx);     /* monotonic clock, ns */
    /* Ask for on_timer once the monotonic clock reaches `at_ns` (replaces an earlier one). */
    void (*timer_set)(sl_ctx *ctx, int64_t at_ns);
    /*
     * 0 while running; 1 once a graceful stop was asked for (SIGINT/SIGTERM:
     * sources should end, everything else keeps draining); 2 on a hard stop
     * (an error elsewhere, a second signal): return from blocking work now.
     */
    int (*stopping)(sl_ctx *ctx);

    /* -- logging -- */

    void (*log)(sl_ctx *ctx, sl_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* -- metrics -- */

    /* Add to a named counter of this instance (created on first use). `counter` is kept,
     * not copied: pass a string that lives as long as the instance (a literal). */
    void (*count)(sl_ctx *ctx, const char *counter, uint64_t n);

    /* -- expressions (docs/expressions.md) -- */

    /*
     * Compile an expression: `text`, or when NULL the text of scalar node
     * `at`. `vars` is a NULL-terminated list of variable names (a join's
     * "left", "right"), or NULL: identifiers then name the event's fields.
     * A syntax or type error is reported as a configuration error at the
     * token's file:line:col and NULL is returned. The engine owns the result
     * and frees it with the instance. Main thread (init).
     */
    sl_expr *(*expr_compile)(sl_ctx *ctx, const sl_node *at, const char *text,
                             const char *const *vars);
    /*
     * Evaluate e against n_docs msgpack documents (the event, or one per
     * variable). expr_bool returns 1, 0, or -1 on an error or a non-bool
     * result; expr_value appends the result as msgpack to out and returns 0
     * or -1. The reason of the last -1 is expr_error (valid until the next
     * evaluation). Stage thread.
     */
    int (*expr_bool)(sl_ctx *ctx, const sl_expr *e, const uint8_t *const *docs,
                     const size_t *lens, size_t n_docs);
    int (*expr_value)(sl_ctx *ctx, const sl_expr *e, const uint8_t *const *docs,
                      const size_t *lens, size_t n_docs, sl_wbuf *out);
    const char *(*expr_error)(sl_ctx *ctx);
    /* The top-level && terms of e (1 if it is not a conjunction); term i is borrowed from e. */
    size_t (*expr_terms)(sl_ctx *ctx, const sl_expr *e);
    const sl_expr *(*expr_term)(sl_ctx *ctx, const sl_expr *e, size_t i);

    /*
     * -- state (docs/state.md): named databases of this instance in the
     * pipeline's LMDB environment under state_dir --
     *
     * Keys sort bytewise and are 1 to 511 bytes (LMDB's limit); values may be
     * large. Everything happens inside the instance's one
     * transaction: begin, get/put/del/scan, commit. A write transaction
     * blocks other writers of the pipeline, so keep it short and never hold
     * one across emit (a fused consumer may need its own). Values returned
     * are borrowed until the next write or the end of the transaction.
     * Each call returns 0 or -1 after logging the reason (get and del: 1 when
     * the key is absent). Call these from start on (not from init, which
     * `sluice validate` runs too).
     */
    /* This instance's database `name` ("" for the main one), created if new; NULL on error. */
    sl_kv *(*kv_open)(sl_ctx *ctx, const char *name);
    int (*kv_begin)(sl_ctx *ctx, int write);
    int (*kv_commit)(sl_ctx *ctx);
    void (*kv_abort)(sl_ctx *ctx);
    int (*kv_get)(sl_ctx *ctx, sl_kv *db, const void *key, size_t klen, const void **val,
                  size_t *vlen);
    int (*kv_put)(sl_ctx *ctx, sl_kv *db, const void *key, size_t klen, const void *val,
                  size_t vlen);
    int (*kv_del)(sl_ctx *ctx, sl_kv *db, const void *key, size_t klen);
    /*
     * Visit the records with key >= `from` (all when flen is 0) in key order;
     * `visit` returns a mix of SL_KV_DELETE (remove this record; write
     * transactions only) and SL_KV_STOP, or 0 to go on.
     */
    int (*kv_scan)(sl_ctx *ctx, sl_kv *db, const void *from, size_t flen, sl_kv_visit visit,
                   void *arg);
    /* Remove every record of db (a write transaction). */
    int (*kv_clear)(sl_ctx *ctx, sl_kv *db);
    /* Records in db as of the transaction (0 outside one or on error). */
    uint64_t (*kv_count)(sl_ctx *ctx, sl_kv *db);
    /* Make committed state durable (fsync); commits alone do not wait for the disk.
     * (Inside snapshot it does nothing: the checkpoint's one commit syncs.) */
    int (*kv_sync)(sl_ctx *ctx);

    /* -- checkpoints (docs/checkpoints.md) -- */

    /*
     * The id of the last complete checkpoint (the restored one at start), 0 if
     * none yet; -1 when the pipeline takes no checkpoints (no `checkpoint:`
     * block). A transactional sink holds its output back only when this is
     * not -1.
     */
    int64_t (*checkpoint_last)(sl_ctx *ctx);

    /* -- event fields (any thread the instance runs on; no allocation) -- */

    /*
     * The msgpack value at dotted `path` ("data.amount") of event ev: 1 and
     * *val and *vlen (borrowed from ev), 0 if absent, -1 if ev is malformed.
     */
    int (*field_get)(sl_ctx *ctx, const uint8_t *ev, size_t len, const char *path,
                     const uint8_t **val, size_t *vlen);
    /*
     * Append to out a copy of event ev with the field at `path` set to the
     * msgpack value val (vlen bytes): replaced if present, added if not; maps
     * along the path are made as needed. 0, or -1 (ev not a map, out of
     * memory; out is left as it was). New events are built with sl_wbuf and
     * the sl_mp_write_* functions of sluice/msgpack.h, then emitted.
     */
    int (*field_set)(sl_ctx *ctx, const uint8_t *ev, size_t len, const char *path,
                     const void *val, size_t vlen, sl_wbuf *out);

    /* -- metrics, continued (stage thread) -- */

    /*
     * Set a named gauge of this instance: a level, not a count. The admin
     * endpoint exports "state_bytes" (memory the operator's state holds) as
     * sluice_operator_state_bytes, "state_entries" (keys, windows or buffered
     * events) as sluice_operator_state_entries, and any other name as
     * sluice_operator_gauge{gauge="name"} (docs/operations.md). `gauge` is
     * kept, not copied (a literal); at most 8 names per instance.
     */
    void (*gauge)(sl_ctx *ctx, const char *gauge, int64_t value);
};

/* ------------------------------------------------------------ descriptor */

enum {
    SL_OP_SOURCE = 1u << 0, /* no inputs; the engine calls produce */
    SL_OP_SINK = 1u << 1,   /* no outputs besides error ports */
};

typedef struct sl_operator {
    uint32_t abi_version;       /* SL_ABI_VERSION */
    uint32_t struct_size;       /* sizeof(sl_operator) */
    const char *name;           /* YAML type, e.g. "filter" or "acme.geoip" */
    const char *summary;        /* one line for `sluice inspect` */
    uint32_t flags;             /* SL_OP_* */
    uint32_t param_size;        /* sizeof(sl_param) the table was built with */
    const sl_param *params;     /* table ending with {NULL}; may be NULL */
    /* Input slots by YAML key, NULL-terminated; NULL means one slot "input". */
    const char *const *inputs;
    /* Fixed output ports, NULL-terminated; the first is the main port. NULL means {"out"}. */
    const char *const *outputs;
    /* Name of a map parameter whose keys become extra output ports (route), or NULL. */
    const char *port_param;
    /*
     * Name of the parameter holding the key expression that partitions this
     * operator's input across instances (keyed edge) when parallelism > 1;
     * NULL: unkeyed (round robin).
     */
    const char *key_param;

    /*
     * Create the instance state from the parameters. Must not touch the
     * outside world (no files opened, no sockets bound): `sluice validate`
     * runs it too. Report mistakes with host->config_error. Returns SL_OK or
     * SL_ERROR. Main thread.
     */
    int (*init)(sl_ctx *ctx, void **state);
    /*
     * Acquire resources (open files, bind sockets) before any data flows.
     * Main thread, after every instance's init; a failure stops the pipeline
     * before it runs. May be NULL.
     */
    int (*start)(void *state, sl_ctx *ctx);
    /* Consume one batch that arrived on input slot `input`. */
    int (*process)(void *state, sl_ctx *ctx, int input, const sl_batch *batch);
    /* Sources: emit what is available, waiting at most until monotonic `deadline_ns`. */
    int (*produce)(void *state, sl_ctx *ctx, int64_t deadline_ns);
    /* The event-time watermark of all inputs advanced to `wm` (ns). May be NULL. */
    int (*on_watermark)(void *state, sl_ctx *ctx, int64_t wm);
    /* A timer set with timer_set is due. May be NULL. */
    int (*on_timer)(void *state, sl_ctx *ctx, int64_t now_ns);
    /* End of stream on every input: emit what is left, flush, close. May be NULL. */
    int (*finish)(void *state, sl_ctx *ctx);
    /* Free the state; called once for every instance whose init set a state, even a failed one. */
    void (*destroy)(void *state);
    /*
     * Write a consistent image of the state for checkpoint `checkpoint_id`
     * into the instance's databases, or put it back from one (after init,
     * before start). May be NULL for stateless operators.
     *
     * snapshot runs on the main thread while the instance's stage is parked
     * at the checkpoint's barrier (no callback of the instance runs at the
     * same time, no event is in flight anywhere). Its kv_begin/kv_commit nest
     * in the checkpoint's one LMDB transaction, which also records every
     * other instance's image and the checkpoint's completion: a crash leaves
     * all of checkpoint n or none of it. Keep it proportional to the state.
     * restore runs on the main thread before start, only for an instance the
     * restored checkpoint holds state for (a new operator starts empty).
     */
    int (*snapshot)(void *state, sl_ctx *ctx, uint64_t checkpoint_id);
    int (*restore)(void *state, sl_ctx *ctx, uint64_t checkpoint_id);

    /* ---- appended in ABI 1 after the fields above; check struct_size ---- */

    /*
     * Checkpoint `checkpoint_id` is complete and durable: a transactional
     * sink now makes visible what it wrote before that checkpoint's barrier
     * (sink.file publishes its pending part). Called on the stage thread as
     * the stage resumes, or on the main thread after the final checkpoint of
     * a finished run; again after a restart for the restored checkpoint (so
     * it must be idempotent). May be NULL.
     */
    int (*checkpoint_done)(void *state, sl_ctx *ctx, uint64_t checkpoint_id);
} sl_operator;

/* Whether descriptor `op` is large enough to hold field `f` (for fields appended later). */
#define SL_OP_HAS(op, f) ((op)->struct_size >= offsetof(sl_operator, f) + sizeof((op)->f) && (op)->f)

/*
 * The one symbol a plugin .so exports. The host calls it once after dlopen
 * and reads the NULL-terminated list of descriptors it returns (borrowed:
 * static storage in the plugin).
 */
typedef struct sl_plugin {
    uint32_t abi_version; /* SL_ABI_VERSION */
    uint32_t struct_size; /* sizeof(sl_plugin) */
    const char *name;
    const char *version;
    const sl_operator *const *operators;
} sl_plugin;

#define SL_PLUGIN_ENTRY "sluice_plugin"
typedef const sl_plugin *(*sl_plugin_entry_fn)(void);
/* What a plugin defines; declared here so that it stays exported under -fvisibility=hidden. */
__attribute__((visibility("default"))) const sl_plugin *sluice_plugin(void);

/* Whether the host table offers function `f` (one appended after the plugin was built may not be). */
#define SL_HOST_HAS(host, f) \
    ((host)->struct_size >= offsetof(sl_host, f) + sizeof((host)->f) && (host)->f)

/* Convenience wrappers over the host table. */
static inline int sl_emit(sl_ctx *ctx, int port, const void *ev, size_t len)
{
    return ctx->host->emit(ctx, port, ev, len);
}

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_OPERATOR_H */
