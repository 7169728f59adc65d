/*
 * harness.c - one operator between a feeding source and collecting sinks
 * (see harness.h). The pipeline is real YAML run by the real runtime, so
 * what an operator test sees is what a pipeline gets.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "instance.h"
#include "json.h"
#include "pipeline.h"
#include "registry.h"
#include "runtime.h"

#define MAX_PORTS 16

typedef struct port_out {
    char *name;
    char **events;
    size_t n, cap;
} port_out;

struct sl_harness {
    char *yaml;
    sl_wbuf input;             /* queued events, msgpack back to back */
    uint32_t *ends;
    uint8_t *slots;            /* the input slot of each queued event */
    size_t n_in;
    const char *const *inputs; /* slot names, or NULL for `input` */
    int source;                /* the operator is a source: no feed */
    port_out ports[MAX_PORTS];
    size_t n_ports;
    sl_json_parser *jp;
    sl_pipeline *p;
    sl_runtime *rt;
    char *state_dir;
    int own_state_dir;         /* made by the harness: removed with it */
    uint64_t restore_id, snapshot_id;
};

static sl_harness *current;

/* ---------------------------------------------------- test.feed source */

static int feed_init(sl_ctx *ctx, void **state)
{
    *state = calloc(1, sizeof(size_t));
    return *state ? SL_OK : SL_ERROR;
}

static int feed_produce(void *state, sl_ctx *ctx, int64_t deadline)
{
    size_t *next = state;
    if (*next == current->n_in)
        return SL_EOS;
    size_t start = *next ? current->ends[*next - 1] : 0;
    if (sl_emit(ctx, current->slots[*next], current->input.data + start,
                current->ends[*next] - start) != 0)
        return SL_ERROR;
    (*next)++;
    return SL_OK;
}

static const sl_param feed_params[] = {
    {"ports", SL_PARAM_MAP, NULL, 0, "one output port per input slot of the operator", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const sl_operator feed_op = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "test.feed",
    .flags = SL_OP_SOURCE,
    .param_size = sizeof(sl_param),
    .params = feed_params,
    .port_param = "ports",
    .init = feed_init,
    .produce = feed_produce,
    .destroy = free,
};

/* ---------------------------------------------------- test.sink */

static const sl_param sink_params[] = {
    {"port", SL_PARAM_STRING, NULL, 1, "port name", NULL},
    {NULL, 0, NULL, 0, NULL, NULL},
};

static const char *const no_outputs[] = {NULL};

static int sink_init(sl_ctx *ctx, void **state)
{
    const char *name = ctx->host->node_str(ctx->host->param(ctx, "port"));
    for (size_t i = 0; i < current->n_ports; i++)
        if (strcmp(current->ports[i].name, name) == 0) {
            *state = &current->ports[i];
            return SL_OK;
        }
    return SL_ERROR;
}

static int sink_process(void *state, sl_ctx *ctx, int input, const sl_batch *b)
{
    port_out *po = state;
    for (uint32_t i = 0; i < b->count; i++) {
        size_t len;
        const uint8_t *ev = sl_batch_event(b, i, &len);
        sl_wbuf w = {0};
        if (sl_msgpack_to_json(ev, len, &w) != 0 || sl_wbuf_append(&w, "", 1) != 0)
            return SL_ERROR;
        if (po->n == po->cap) {
            po->cap = po->cap ? po->cap * 2 : 64;
            char **e = realloc(po->events, po->cap * sizeof *e);
            if (!e)
                return SL_ERROR;
            po->events = e;
        }
        po->events[po->n++] = (char *)w.data; /* the buffer becomes the string */
    }
    return SL_OK;
}

static void sink_destroy(void *state) { (void)state; }

static const sl_operator sink_op = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_operator),
    .name = "test.sink",
    .flags = SL_OP_SINK,
    .param_size = sizeof(sl_param),
    .params = sink_params,
    .outputs = no_outputs,
    .init = sink_init,
    .process = sink_process,
    .destroy = sink_destroy,
};

/* ---------------------------------------------------- the harness */

static char *pipeline_text(const sl_harness *h, const char *op_yaml, const char *bound,
                           const sl_opdef *with_ports)
{
    size_t cap = strlen(op_yaml) * 2 + 8192;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t n = (size_t)snprintf(s, cap, "pipeline: harness\nstate_dir: '%s'\n", h->state_dir);
    char ports[256] = "", wires[512] = "";
    for (const char *const *in = h->inputs; in && *in; in++) {
        size_t pl = strlen(ports), wl = strlen(wires);
        snprintf(ports + pl, sizeof ports - pl, "%s%s: 1", pl ? ", " : ", ports: {", *in);
        snprintf(wires + wl, sizeof wires - wl, "    %s: feed.%s\n", *in, *in);
    }
    if (h->inputs)
        strncat(ports, "}", sizeof ports - strlen(ports) - 1);
    else
        snprintf(wires, sizeof wires, "    input: feed.out\n");
    if (h->source)
        n += (size_t)snprintf(s + n, cap - n, "operators:\n");
    else if (bound)
        n += (size_t)snprintf(s + n, cap - n, "batch: {max_events: 1}\noperators:\n"
                              "  feed: {type: test.feed, watermark: {max_out_of_order: %s}%s}\n",
                              bound, ports);
    else
        n += (size_t)snprintf(s + n, cap - n, "operators:\n  feed: {type: test.feed%s}\n", ports);
    n += (size_t)snprintf(s + n, cap - n, "  op:\n%s    fuse: false\n", h->source ? "" : wires);
    for (const char *line = op_yaml; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        n += (size_t)snprintf(s + n, cap - n, "    %.*s\n", (int)len, line);
        line = nl ? nl + 1 : line + len;
    }
    for (size_t i = 0; with_ports && i < with_ports->n_ports; i++)
        n += (size_t)snprintf(s + n, cap - n,
                              "  out_%zu: {type: test.sink, input: op.%s, port: %s, fuse: false}\n",
                              i, with_ports->ports[i], with_ports->ports[i]);
    return s;
}

static void print_diag(sl_diag *d)
{
    for (size_t i = 0; i < d->n; i++) {
        char line[1024];
        fprintf(stderr, "harness: %s\n", sl_diag_format(d, i, line, sizeof line));
    }
}

sl_harness *sl_harness_new(const char *op_yaml) { return sl_harness_new_with(op_yaml, NULL); }

sl_harness *sl_harness_new_with(const char *op_yaml, const sl_harness_opts *opts)
{
    sl_builtin_register();
    if (!sl_registry_find("test.feed")) {
        sl_registry_add(&feed_op, "test harness");
        sl_registry_add(&sink_op, "test harness");
    }
    sl_harness *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    current = h;
    h->jp = sl_json_parser_new();
    const char *bound = opts ? opts->max_out_of_order : NULL;
    h->inputs = opts ? opts->inputs : NULL;
    h->source = opts ? opts->source : 0;
    if (opts && opts->state_dir) {
        h->state_dir = strdup(opts->state_dir);
    } else {
        char tmp[64];
        h->state_dir = sl_harness_tmpdir(tmp) ? strdup(tmp) : NULL;
        h->own_state_dir = 1;
    }
    sl_diag d;
    sl_diag_init(&d);
    char *text = NULL;
    sl_pipeline *probe = NULL;
    if (!h->state_dir)
        goto err;
    /* load once without sinks to learn the operator's ports, then for real */
    text = pipeline_text(h, op_yaml, bound, NULL);
    if (!text || sl_pipeline_load_string("harness.yaml", text, NULL, 0, &d, &probe) != 0)
        goto err;
    const sl_opdef *op = &probe->ops[sl_pipeline_find(probe, "op")];
    for (size_t i = 0; i < op->n_ports && i < MAX_PORTS; i++)
        h->ports[h->n_ports++].name = strdup(op->ports[i]);
    free(text);
    text = pipeline_text(h, op_yaml, bound, op);
    sl_pipeline_destroy(&probe);
    if (!text || sl_pipeline_load_string("harness.yaml", text, NULL, 0, &d, &h->p) != 0)
        goto err;
    free(text);
    text = NULL;
    /* initialise once, as `sluice validate` does, so the operator's own checks run now */
    sl_run_opts o;
    sl_run_opts_default(&o);
    sl_runtime *rt = NULL;
    int rc = sl_runtime_new(h->p, &o, &d, &rt);
    sl_runtime_destroy(&rt);
    if (rc != 0)
        goto err;
    sl_diag_fini(&d);
    return h;
err:
    print_diag(&d);
    sl_diag_fini(&d);
    free(text);
    sl_pipeline_destroy(&probe);
    sl_harness_destroy(&h);
    return NULL;
}

int sl_harness_push(sl_harness *h, const char *json) { return sl_harness_push_to(h, NULL, json); }

int sl_harness_push_to(sl_harness *h, const char *slot, const char *json)
{
    int port = 0;
    for (const char *const *in = h->inputs; slot && in && *in; in++)
        if (strcmp(*in, slot) == 0)
            port = (int)(in - h->inputs) + 1; /* the feed's port 0 is its unused "out" */
    if (slot && port == 0) {
        fprintf(stderr, "harness: no input slot '%s'\n", slot);
        return -1;
    }
    size_t len = strlen(json);
    char *padded = calloc(1, len + SL_JSON_PADDING);
    char err[256];
    if (!padded)
        return -1;
    memcpy(padded, json, len);
    int rc = sl_json_to_msgpack(h->jp, padded, len, len + SL_JSON_PADDING, 1, &h->input, err,
                                sizeof err);
    free(padded);
    if (rc != 0) {
        fprintf(stderr, "harness: bad input %s: %s\n", json, err);
        return -1;
    }
    uint32_t *e = realloc(h->ends, (h->n_in + 1) * sizeof *e);
    if (e)
        h->ends = e;
    uint8_t *sl = realloc(h->slots, h->n_in + 1);
    if (sl)
        h->slots = sl;
    if (!e || !sl)
        return -1;
    h->slots[h->n_in] = (uint8_t)port;
    h->ends[h->n_in++] = (uint32_t)h->input.len;
    return 0;
}

int sl_harness_run(sl_harness *h)
{
    current = h;
    sl_diag d;
    sl_diag_init(&d);
    sl_run_opts o;
    sl_run_opts_default(&o);
    o.handle_signals = 0;
    o.restore_id = h->restore_id;
    o.snapshot_id = h->snapshot_id;
    int rc = sl_runtime_new(h->p, &o, &d, &h->rt);
    if (rc == 0)
        rc = sl_runtime_run(h->rt);
    else
        print_diag(&d);
    sl_diag_fini(&d);
    return rc;
}

void sl_harness_checkpoint(sl_harness *h, uint64_t restore_id, uint64_t snapshot_id)
{
    h->restore_id = restore_id;
    h->snapshot_id = snapshot_id;
}

static const port_out *find_port(const sl_harness *h, const char *port)
{
    for (size_t i = 0; i < h->n_ports; i++)
        if (strcmp(h->ports[i].name, port) == 0)
            return &h->ports[i];
    return NULL;
}

size_t sl_harness_count(const sl_harness *h, const char *port)
{
    const port_out *po = find_port(h, port);
    return po ? po->n : 0;
}

const char *sl_harness_out(const sl_harness *h, const char *port, size_t i)
{
    const port_out *po = find_port(h, port);
    return po && i < po->n ? po->events[i] : NULL;
}

unsigned long long sl_harness_counter(const sl_harness *h, const char *name)
{
    if (!h->rt)
        return 0;
    long op = sl_pipeline_find(h->p, "op");
    const sl_inst *in = &h->rt->by_op[op][0];
    for (size_t i = 0; i < in->n_counters; i++)
        if (strcmp(in->counters[i].name, name) == 0)
            return atomic_load(&in->counters[i].v);
    return 0;
}

size_t sl_harness_config_mismatches(const char *const *yamls, size_t n, int valid)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        sl_harness *h = sl_harness_new(yamls[i]);
        if ((h != NULL) != (valid != 0)) {
            printf("%s: %s\n", valid ? "refused" : "accepted", yamls[i]);
            bad++;
        }
        sl_harness_destroy(&h);
    }
    return bad;
}

void sl_harness_destroy(sl_harness **hp)
{
    sl_harness *h = hp ? *hp : NULL;
    if (!h)
        return;
    sl_runtime_destroy(&h->rt);
    sl_pipeline_destroy(&h->p);
    for (size_t i = 0; i < h->n_ports; i++) {
        for (size_t j = 0; j < h->ports[i].n; j++)
            free(h->ports[i].events[j]);
        free(h->ports[i].events);
        free(h->ports[i].name);
    }
    sl_wbuf_fini(&h->input);
    free(h->ends);
    free(h->slots);
    sl_json_parser_destroy(&h->jp);
    if (h->own_state_dir && h->state_dir)
        sl_harness_rmdir(h->state_dir);
    free(h->state_dir);
    if (current == h)
        current = NULL;
    free(h);
    *hp = NULL;
}

/* ---------------------------------------------------- test helpers */

const char *sl_harness_time(char buf[40], long ms)
{
    unsigned long u = (unsigned long)ms % 86400000ul, sec = u / 1000, f = u % 1000;
    if (f)
        snprintf(buf, 40, "2026-01-01T%02lu:%02lu:%02lu.%03luZ", sec / 3600, sec / 60 % 60,
                 sec % 60, f);
    else
        snprintf(buf, 40, "2026-01-01T%02lu:%02lu:%02luZ", sec / 3600, sec / 60 % 60, sec % 60);
    return buf;
}

const char *sl_harness_tmpdir(char buf[64])
{
    strcpy(buf, "/tmp/sluice-harness-XXXXXX");
    return mkdtemp(buf);
}

int sl_harness_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char path[4096];
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
                unlink(path);
            }
        closedir(d);
    }
    if (rmdir(dir) != 0) {
        fprintf(stderr, "harness: could not remove %s\n", dir);
        return -1;
    }
    return 0;
}

static void rows_add(sl_harness_rows *r, const char *a, size_t alen, const char *b)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        char **v = realloc(r->v, cap * sizeof *v);
        if (!v)
            abort(); /* a test helper: out of memory ends the test */
        r->v = v;
        r->cap = cap;
    }
    size_t blen = b ? strlen(b) : 0;
    char *s = malloc(alen + blen + 1);
    if (!s)
        abort();
    memcpy(s, a, alen);
    if (blen) /* memcpy from NULL is undefined even for 0 bytes */
        memcpy(s + alen, b, blen);
    s[alen + blen] = '\0';
    r->v[r->n++] = s;
}

void sl_harness_rows_collect(sl_harness_rows *r, const sl_harness *h, const char *port)
{
    for (size_t i = 0; i < sl_harness_count(h, port); i++) {
        const char *s = sl_harness_out(h, port, i);
        const char *t = strstr(s, ",\"time\":\"");
        const char *o = t ? strstr(t, ",\"original\":") : NULL;
        if (strncmp(s, "{\"reason\":", 10) == 0 && o)
            rows_add(r, s, (size_t)(t - s), o);
        else
            rows_add(r, s, strlen(s), NULL);
    }
}

void sl_harness_rows_free(sl_harness_rows *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i]);
    free(r->v);
    *r = (sl_harness_rows){0};
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

const char *sl_harness_rows_differ(sl_harness_rows *a, sl_harness_rows *b, int sorted)
{
    static char msg[4096];
    if (sorted && a->n)
        qsort(a->v, a->n, sizeof *a->v, cmp_str);
    if (sorted && b->n)
        qsort(b->v, b->n, sizeof *b->v, cmp_str);
    size_t i = 0;
    while (i < a->n && i < b->n && strcmp(a->v[i], b->v[i]) == 0)
        i++;
    if (i == a->n && i == b->n)
        return NULL;
    snprintf(msg, sizeof msg, "%zu rows vs %zu; first difference%s at row %zu:\n  %s\n  %s",
             a->n, b->n, sorted ? " (sorted)" : "", i, i < a->n ? a->v[i] : "(none)",
             i < b->n ? b->v[i] : "(none)");
    return msg;
}
