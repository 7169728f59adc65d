/*
 * plan.h - from operators to stages.
 *
 * Operators in a linear chain with the same parallelism are fused into one
 * stage (one thread per instance, direct calls, no copy), as Flink chains
 * operators. An operator D is fused into the stage of its upstream U when:
 * fusion is on (globally, and D does not say `fuse: false`), D is not a
 * source, D has exactly one input edge, that edge comes from U with the
 * same parallelism, U's port feeds nobody but D, the edge needs no
 * repartitioning (D parallelism 1, or D unkeyed), and U is not a source -
 * unless D says `fuse: true`. Sources decode (JSON, msgpack, HTTP), so a
 * thread of their own pays: file -> file went from 0.80 s to 0.47 s per 1M
 * events on 2 cores, generator -> null lost 7% (docs/design/runtime.md).
 * Everything else starts a new stage, connected by ZeroMQ.
 * Fusion never changes results: a fused edge delivers the same batches in
 * the same order a 1:1 socket edge would.
 */
#ifndef SL_PLAN_H
#define SL_PLAN_H

#include "pipeline.h"

typedef enum sl_edge_kind {
    SL_EDGE_FUSED,   /* same stage: direct call */
    SL_EDGE_FORWARD, /* one receiving instance */
    SL_EDGE_ROUND_ROBIN, /* batches spread over the receiving instances */
    SL_EDGE_KEYED    /* each event to the instance that owns its key hash */
} sl_edge_kind;

typedef struct sl_stage_def {
    size_t head;        /* operator that receives from sockets or produces */
    size_t *ops;        /* operators of the stage, head first, upstream before downstream */
    size_t n_ops;
    uint32_t parallelism;
} sl_stage_def;

typedef struct sl_plan {
    sl_stage_def *stages;
    size_t n_stages;
    size_t *stage_of;   /* per operator */
} sl_plan;

/* Returns 0 or -ENOMEM. */
int sl_plan_build(const sl_pipeline *p, int allow_fusion, sl_plan *out);
void sl_plan_fini(sl_plan *plan);

/* How input edge `in` of operator `op` is carried. */
sl_edge_kind sl_plan_edge_kind(const sl_plan *plan, const sl_pipeline *p, size_t op,
                               const sl_input *in);
const char *sl_edge_kind_name(sl_edge_kind k);

#endif
