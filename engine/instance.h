/*
 * instance.h - the runtime's private structures: operator instances (the
 * sl_ctx an operator sees), their output edges, stages and the runtime.
 * Shared by runtime.c (setup), stage.c (thread loop), edge.c (flushing) and
 * host.c (services). Nothing here is part of the plugin ABI.
 *
 * Threading: an instance and its edges are touched only by its stage thread
 * once the threads run; the main thread reads the counters (relaxed atomics,
 * each written by one thread only) and the stop/fail flags.
 */
#ifndef SL_INSTANCE_H
#define SL_INSTANCE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "batch.h"
#include "checkpoint.h"
#include "diag.h"
#include "metrics.h"
#include "pipeline.h"
#include "plan.h"
#include "runtime.h"
#include "state.h"

typedef struct sl_inst sl_inst;
typedef struct sl_stage sl_stage;

/* One consumer of an output port. */
typedef struct sl_out_edge {
    sl_edge_kind kind;
    int slot;              /* input slot at the consumer */
    sl_inst *fused;        /* SL_EDGE_FUSED: the consumer in this stage */
    void **socks;          /* PUSH sockets, one per consumer instance (owned) */
    uint32_t n_socks;
    uint32_t rr;           /* next target for round robin */
    sl_builder *b;         /* one builder, or one per consumer instance when keyed */
    uint32_t n_b;
    const sl_path *key;    /* SL_EDGE_KEYED: the consumer's key (borrowed) */
    uint32_t *chan;        /* per socket: this edge's channel id at that receiver */
    sl_stage **dst;        /* per socket: the receiving stage (its queue depth) */
    int64_t *wm_sent;      /* per socket: the last watermark sent */
    uint8_t *idle_sent;    /* per socket: the last idle flag sent */
} sl_out_edge;

typedef struct sl_out_port {
    sl_out_edge *edges;
    size_t n_edges;
} sl_out_port;

#define SL_MAX_COUNTERS 16

typedef struct sl_counter {
    const char *name;      /* borrowed from the operator (string literal) */
    _Atomic uint64_t v;
} sl_counter;

struct sl_inst {
    sl_ctx ctx;            /* first: operators get &ctx, the engine casts back */
    sl_runtime *rt;
    sl_stage *stage;
    size_t op;             /* index in the pipeline */
    const sl_opdef *def;
    uint32_t index;        /* instance number */
    void *state;
    int init_ok;
    sl_out_port *ports;
    size_t n_ports;
    int64_t timer_at;      /* monotonic ns, 0 = none */
    /* event time (docs/design/watermarks.md) */
    int64_t wm_out;        /* this instance's watermark (INT64_MIN: none yet) */
    int idle_out;          /* this instance is idle: its watermark holds nobody back */
    int64_t max_event_ns;  /* sources with a watermark: the latest event time emitted */
    int64_t last_event_ns; /* ... and when (monotonic), for idle_timeout */
    int64_t wm_pushed_ns;  /* when watermarks were last pushed to socket edges */
    _Atomic uint64_t n_in, n_out, n_err;
    sl_counter counters[SL_MAX_COUNTERS];
    _Atomic size_t n_counters;  /* published after the counter's name (admin thread reads) */
    sl_gauge gauges[SL_MAX_GAUGES];
    _Atomic size_t n_gauges;
    /* engine/metrics.h */
    sl_hist batch_ns;          /* process() per batch, its own time (fused consumers excluded) */
    _Atomic uint64_t blocked_ns; /* time blocked sending to a full queue (backpressure) */
    _Atomic int64_t wm_pub;    /* wm_out as of the last housekeeping, for the admin thread */
    sl_wbuf scratch;       /* drop envelopes */
    struct sl_expr_vm *vm; /* expression evaluator, made on first compile */
    struct sl_expr **exprs;/* compiled for this instance, freed with it */
    size_t n_exprs;
    sl_inst_state kv;      /* its state transaction and databases */
};

struct sl_stage {
    sl_runtime *rt;
    const sl_stage_def *def;
    uint32_t index;
    sl_inst **insts;       /* head first, then the fused operators in topological order */
    size_t n_insts;
    void *pull;            /* NULL for a source stage */
    uint32_t eos_expected, eos_seen;
    /* input channels (one per sender instance and edge), for the watermark */
    int64_t *ch_wm;        /* each channel's watermark */
    uint8_t *ch_state;     /* SL_CH_ACTIVE, SL_CH_IDLE or SL_CH_DONE */
    uint32_t n_ch;
    int64_t wm;            /* the stage's input watermark: min over active channels */
    /* metrics: data batches sent to this stage (by any sender) and taken from its queue */
    _Atomic uint64_t q_sent, q_recv;
    int64_t nested_ns;     /* time of deliveries inside the one being timed (edge.c) */
    /* checkpoints (barrier.c) */
    uint64_t *ch_barrier;  /* each channel's last barrier */
    uint64_t aligning;     /* the barrier some channels delivered and others not yet; 0: none */
    uint64_t barrier;      /* the last checkpoint this stage parked at */
    int ended;             /* (rt->ckpt.mu) the thread is done: it parks no more */
    pthread_t thread;
    int started;
    int rc;
};

struct sl_runtime {
    const sl_pipeline *p;
    sl_run_opts opts;
    sl_plan plan;
    void *zctx;
    sl_inst **by_op;       /* by_op[op][instance] */
    sl_stage *stages;
    size_t n_stages;
    sl_diag *diag;         /* during sl_runtime_new only */
    _Atomic int stop;      /* graceful stop requested */
    _Atomic int failed;    /* an operator failed or a hard stop */
    _Atomic int running;   /* stage threads not yet finished */
    sl_state *state;       /* the pipeline's LMDB environment, opened on first use */
    pthread_t main_thread; /* woken with SIGUSR1 when the last stage ends */
    int wake_main;
    int64_t started_ns;
    int64_t started_wall_ns;
    int timing;            /* measure batch durations (the pipeline has an admin endpoint) */
    struct sl_admin *admin;/* the admin HTTP endpoint, while running (engine/admin.h) */
    sl_ckpt ckpt;          /* the checkpoint coordinator (checkpoint.c) */
};

enum { SL_CH_ACTIVE = 0, SL_CH_IDLE = 1, SL_CH_DONE = 2 };

/* edge.c */
int sl__edge_flush(sl_inst *in, sl_out_edge *e);
/* Flush builder i of e (fused edges have one). */
int sl__edge_flush_one(sl_inst *in, sl_out_edge *e, uint32_t i);
int sl__inst_flush_fused(sl_inst *in);
int sl__inst_flush_all(sl_inst *in);
int64_t sl__inst_next_deadline(const sl_inst *in, int64_t linger_ns);
int sl__inst_flush_expired(sl_inst *in, int64_t now, int64_t linger_ns);
int sl__inst_send_eos(sl_inst *in);
/* Send a header-only message (EOS, BARRIER) on every socket channel of the instance. */
int sl__inst_send_control(sl_inst *in, int kind, int64_t watermark, uint64_t checkpoint);
/* Send the instance's watermark (and idle flag) to every socket that has not had it,
 * after the events already queued for it. */
int sl__inst_push_watermark(sl_inst *in);
int sl__deliver(sl_inst *to, int slot, const sl_batch *b);
uint64_t sl__key_hash(const uint8_t *ev, size_t len, const sl_path *key);

/* event_fields.c: the host's field_get and field_set */
int sl__field_get(sl_ctx *ctx, const uint8_t *ev, size_t len, const char *path,
                  const uint8_t **val, size_t *vlen);
int sl__field_set(sl_ctx *ctx, const uint8_t *ev, size_t len, const char *path, const void *val,
                  size_t vlen, sl_wbuf *out);

/* host.c */
extern const sl_host sl__host;
/* Free what the host made for an instance (expressions, evaluator, scratch). */
void sl__inst_release(sl_inst *in);
int64_t sl__monotonic(void);
int64_t sl__wallclock(void);
void sl__log(const char *op, sl_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* stage.c */
void *sl__stage_main(void *arg);
void sl__fail(sl_runtime *rt);
/* The stage's watermark moved to wm: on_watermark for each operator, in stage order. */
int sl__stage_advance(sl_stage *s, int64_t wm);

#endif
