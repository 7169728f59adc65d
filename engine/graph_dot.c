/*
 * graph_dot.c - DOT output for `sluice graph` (see graph_dot.h).
 */
#include <errno.h>
#include <string.h>

#include "graph_dot.h"

/* Write s escaped for a DOT record label. */
static void esc(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (strchr("{}|<>\"\\ ", *s))
            fputc('\\', out);
        fputc(*s, out);
    }
}

static void rate(FILE *out, double v)
{
    if (v >= 1e6)
        fprintf(out, "%.2fM/s", v / 1e6);
    else if (v >= 1e4)
        fprintf(out, "%.1fk/s", v / 1e3);
    else
        fprintf(out, "%.0f/s", v);
}

/* The rates row of an operator's record, and its shading (busier: warmer). */
static const char *rates_row(FILE *out, const sl_opdef *o, const sl_graph_rates *r)
{
    if (!r->known) {
        fputs("|not running", out);
        return NULL;
    }
    fputs("|{", out);
    if (!(o->op->flags & SL_OP_SOURCE)) {
        fputs("in\\ ", out);
        rate(out, r->in);
    }
    if (!(o->op->flags & SL_OP_SINK)) {
        fputs(o->op->flags & SL_OP_SOURCE ? "out\\ " : "|out\\ ", out);
        rate(out, r->out);
    }
    if (r->errors > 0) {
        fputs("|errors\\ ", out);
        rate(out, r->errors);
    }
    fputs("}|{", out);
    if (r->busy >= 0)
        fprintf(out, "busy\\ %.0f%%|", r->busy * 100);
    fprintf(out, "backpressure\\ %.0f%%}", r->backpressure * 100);
    return r->busy >= 0.8 ? "#f4b6b6" : r->busy >= 0.5 ? "#fbd9a6" : NULL;
}

int sl_graph_write_dot(const sl_pipeline *p, const sl_plan *plan, const sl_graph_rates *rates,
                       const char *caption, FILE *out)
{
    fprintf(out, "digraph \"%s\" {\n", p->name);
    if (caption) {
        fputs("  labelloc=t; fontname=\"Helvetica\"; fontsize=11; label=\"", out);
        for (const char *c = caption; *c; c++)
            fprintf(out, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
        fputs("\";\n", out);
    }
    fprintf(out, "  rankdir=LR;\n  node [shape=record, fontname=\"Helvetica\", fontsize=10];\n"
                 "  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for (size_t s = 0; s < plan->n_stages; s++) {
        const sl_stage_def *sd = &plan->stages[s];
        fprintf(out, "  subgraph cluster_stage%zu {\n    label=\"stage %zu (x%u)\";\n"
                     "    style=dashed; color=gray60; fontsize=9;\n", s, s, sd->parallelism);
        for (size_t k = 0; k < sd->n_ops; k++) {
            const sl_opdef *o = &p->ops[sd->ops[k]];
            fprintf(out, "    \"%s\" [label=\"{", o->name);
            esc(out, o->name);
            fputs("|", out);
            esc(out, o->op->name);
            if (o->parallelism > 1)
                fprintf(out, "\\ x%u", o->parallelism);
            if (o->n_ports) {
                fputs("|{", out);
                for (size_t i = 0; i < o->n_ports; i++) {
                    fprintf(out, "%s<p_%s> ", i ? "|" : "", o->ports[i]);
                    esc(out, o->ports[i]);
                }
                fputs("}", out);
            }
            const char *heat = rates ? rates_row(out, o, &rates[sd->ops[k]]) : NULL;
            const char *fill = heat                            ? heat
                               : (o->op->flags & SL_OP_SOURCE) ? "#e8f0fe"
                               : (o->op->flags & SL_OP_SINK)   ? "#e6f4ea"
                                                               : NULL;
            if (fill)
                fprintf(out, "}\", style=filled, fillcolor=\"%s\"];\n", fill);
            else
                fputs("}\"];\n", out);
        }
        fputs("  }\n", out);
    }
    for (size_t i = 0; i < p->n_ops; i++) {
        const sl_opdef *o = &p->ops[i];
        for (size_t k = 0; k < o->n_inputs; k++) {
            const sl_input *in = &o->inputs[k];
            const sl_opdef *u = &p->ops[in->from];
            sl_edge_kind kind = sl_plan_edge_kind(plan, p, i, in);
            fprintf(out, "  \"%s\":\"p_%s\" -> \"%s\" [label=\"%s", u->name, u->ports[in->port],
                    o->name, sl_edge_kind_name(kind));
            const sl_path *key = kind == SL_EDGE_KEYED ? sl_opdef_key(o, in->slot) : NULL;
            for (size_t j = 0; key && j < key->n; j++)
                fprintf(out, "%s%s", j ? "." : " by ", key->parts[j]);
            if (o->op->inputs)
                fprintf(out, " (%s)", o->op->inputs[in->slot]);
            fprintf(out, "\"%s];\n", kind == SL_EDGE_FUSED ? ", style=bold" : "");
        }
    }
    fputs("}\n", out);
    return ferror(out) ? -EIO : 0;
}
