/*
 * plan.c - fuse operators into stages (rules in plan.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "plan.h"

static int fusable(const sl_pipeline *p, size_t d)
{
    const sl_opdef *o = &p->ops[d];
    if (o->fuse == 0 || (o->op->flags & SL_OP_SOURCE) || o->n_inputs != 1)
        return 0;
    const sl_input *in = &o->inputs[0];
    const sl_opdef *u = &p->ops[in->from];
    /* sources decode (JSON, msgpack, HTTP): keep them on a thread of their own unless asked */
    if ((u->op->flags & SL_OP_SOURCE) && o->fuse != 1)
        return 0;
    if (u->parallelism != o->parallelism)
        return 0;
    if (sl_opdef_key(o, in->slot))
        return 0;
    return sl_pipeline_consumers(p, in->from, in->port) == 1;
}

int sl_plan_build(const sl_pipeline *p, int allow_fusion, sl_plan *out)
{
    out->stages = calloc(p->n_ops, sizeof *out->stages);
    out->stage_of = calloc(p->n_ops, sizeof *out->stage_of);
    out->n_stages = 0;
    if (!out->stages || !out->stage_of)
        goto nomem;
    for (size_t t = 0; t < p->n_ops; t++) {
        size_t d = p->topo[t];
        sl_stage_def *s;
        if (allow_fusion && fusable(p, d)) {
            s = &out->stages[out->stage_of[p->ops[d].inputs[0].from]];
        } else {
            s = &out->stages[out->n_stages];
            s->head = d;
            s->parallelism = p->ops[d].parallelism;
            s->ops = calloc(p->n_ops, sizeof *s->ops);
            if (!s->ops)
                goto nomem;
            out->n_stages++;
        }
        s->ops[s->n_ops++] = d; /* topological order keeps upstream first */
        out->stage_of[d] = (size_t)(s - out->stages);
    }
    return 0;
nomem:
    sl_plan_fini(out);
    return -ENOMEM;
}

void sl_plan_fini(sl_plan *plan)
{
    for (size_t i = 0; plan->stages && i < plan->n_stages; i++)
        free(plan->stages[i].ops);
    free(plan->stages);
    free(plan->stage_of);
    plan->stages = NULL;
    plan->stage_of = NULL;
    plan->n_stages = 0;
}

sl_edge_kind sl_plan_edge_kind(const sl_plan *plan, const sl_pipeline *p, size_t op,
                               const sl_input *in)
{
    size_t s = plan->stage_of[op];
    if (plan->stage_of[in->from] == s && plan->stages[s].head != op)
        return SL_EDGE_FUSED;
    if (p->ops[op].parallelism == 1)
        return SL_EDGE_FORWARD;
    return sl_opdef_key(&p->ops[op], in->slot) ? SL_EDGE_KEYED : SL_EDGE_ROUND_ROBIN;
}

const char *sl_edge_kind_name(sl_edge_kind k)
{
    switch (k) {
    case SL_EDGE_FUSED: return "fused";
    case SL_EDGE_FORWARD: return "forward";
    case SL_EDGE_ROUND_ROBIN: return "round-robin";
    case SL_EDGE_KEYED: return "keyed";
    }
    return "?";
}
