/*
 * pipeline.c - load a pipeline file and check it as a graph.
 *
 * Order of work: load YAML (config.c), apply --set, check the top level,
 * then every operator (type, engine keys, parameters via params.c), then
 * resolve inputs against the now-known operators and ports, then sort
 * topologically (a leftover is a cycle). Each step adds to the same
 * diagnostics so the user sees all mistakes at once; nothing is returned
 * unless the whole file is sound.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "params.h"
#include "pipeline.h"
#include "plugin.h"
#include "registry.h"

#define DEFAULT_MAX_EVENTS 1024
#define DEFAULT_MAX_BYTES (4u << 20)
#define DEFAULT_LINGER_NS 5000000ll
#define DEFAULT_CHECKPOINT_NS 10000000000ll /* checkpoint: {} */

static const char *const top_keys[] = {"pipeline", "description", "state_dir", "checkpoint",
                                       "batch", "operators", "plugins", "admin", NULL};

/* Keys every operator accepts besides its own parameters and input slots. */
static const char *const common_keys[] = {"type", "parallelism", "fuse", "partition_by",
                                          "description", NULL};

int sl_path_parse(const char *s, sl_path *out)
{
    memset(out, 0, sizeof *out);
    size_t n = 1;
    for (const char *c = s; *c; c++)
        n += *c == '.';
    out->parts = calloc(n, sizeof *out->parts);
    out->lens = calloc(n, sizeof *out->lens);
    if (!out->parts || !out->lens)
        goto err;
    const char *start = s;
    for (size_t i = 0; i < n; i++) {
        const char *dot = strchr(start, '.');
        size_t len = dot ? (size_t)(dot - start) : strlen(start);
        if (len == 0)
            goto err;
        out->parts[i] = strndup(start, len);
        if (!out->parts[i])
            goto err;
        out->lens[i] = len;
        out->n = i + 1;
        start = dot ? dot + 1 : start + len;
    }
    return 0;
err:
    sl_path_fini(out);
    return -1;
}

void sl_path_fini(sl_path *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->parts[i]);
    free(p->parts);
    free(p->lens);
    memset(p, 0, sizeof *p);
}

const sl_path *sl_opdef_key(const sl_opdef *o, int slot)
{
    return slot >= 0 && (size_t)slot < o->n_keys && o->keys[slot].n ? &o->keys[slot] : NULL;
}

long sl_pipeline_find(const sl_pipeline *p, const char *name)
{
    for (size_t i = 0; i < p->n_ops; i++)
        if (strcmp(p->ops[i].name, name) == 0)
            return (long)i;
    return -1;
}

size_t sl_pipeline_consumers(const sl_pipeline *p, size_t op, int port)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_ops; i++)
        for (size_t j = 0; j < p->ops[i].n_inputs; j++)
            n += p->ops[i].inputs[j].from == op && p->ops[i].inputs[j].port == port;
    return n;
}

void sl_pipeline_destroy(sl_pipeline **pp)
{
    sl_pipeline *p = pp ? *pp : NULL;
    if (!p)
        return;
    for (size_t i = 0; i < p->n_ops; i++) {
        sl_opdef *o = &p->ops[i];
        free(o->name);
        free(o->inputs);
        for (size_t j = 0; j < o->n_ports; j++)
            free(o->ports[j]);
        free(o->ports);
        for (size_t j = 0; j < o->n_keys; j++)
            sl_path_fini(&o->keys[j]);
        free(o->keys);
    }
    free(p->ops);
    free(p->topo);
    free(p->name);
    free(p->file);
    free(p->state_dir);
    free(p->admin_listen);
    sl_node_destroy(&p->root);
    free(p);
    *pp = NULL;
}

/* Scalar value of `key` in map n, checked; NULL if absent. Reports a non-scalar. */
static const sl_node *scalar_at(const sl_node *n, const char *key, sl_diag *d)
{
    const sl_node *v = sl_node_get(n, key);
    if (v && v->kind != SL_NODE_SCALAR) {
        sl_node_diag(d, v, "'%s' must be a scalar, not %s", key, sl_node_kind_name(v->kind));
        return NULL;
    }
    return v;
}

/* "unknown key 'section.key'", with the nearest of `keys` suggested. */
static void unknown_key(sl_diag *d, const sl_node *at, const char *section, const char *key,
                        const char *const *keys)
{
    const char *s = sl_suggest(key, keys);
    sl_node_diag(d, at, "unknown key '%s.%s'%s%s%s", section, key, s ? " (did you mean '" : "",
            s ? s : "", s ? "'?)" : "");
}

/* A source's `watermark: {max_out_of_order: 5s, idle_timeout: 1s}`. */
static void load_watermark(sl_opdef *o, const sl_node *w, sl_diag *d)
{
    if (w->kind != SL_NODE_MAP) {
        sl_node_diag(d, w, "'watermark' must be a mapping like {max_out_of_order: 5s, idle_timeout: 1s}");
        return;
    }
    static const char *const keys[] = {"max_out_of_order", "idle_timeout", NULL};
    o->wm_enabled = 1;
    for (size_t i = 0; i < w->n; i++) {
        const char *k = w->keys[i];
        const sl_node *v = w->items[i];
        int64_t x;
        if (strcmp(k, "max_out_of_order") != 0 && strcmp(k, "idle_timeout") != 0) {
            unknown_key(d, w->key_nodes[i], "watermark", k, keys);
        } else if (v->kind != SL_NODE_SCALAR || sl_parse_duration(v->str, &x) != 0 || x < 0) {
            sl_node_diag(d, v, "invalid duration '%s' for '%s' (expected e.g. 250ms, 5s, 1m)",
                    v->kind == SL_NODE_SCALAR ? v->str : "", k);
        } else if (k[0] == 'm') {
            o->wm_bound_ns = x;
        } else {
            o->wm_idle_ns = x;
        }
    }
}

static void load_batch(sl_pipeline *p, const sl_node *b, sl_diag *d)
{
    p->batch_max_events = DEFAULT_MAX_EVENTS;
    p->batch_linger_ns = DEFAULT_LINGER_NS;
    p->batch_max_bytes = DEFAULT_MAX_BYTES;
    if (!b)
        return;
    if (b->kind != SL_NODE_MAP) {
        sl_node_diag(d, b, "'batch' must be a mapping like {max_events: 1024, linger: 5ms}");
        return;
    }
    static const char *const keys[] = {"max_events", "linger", "max_bytes", NULL};
    for (size_t i = 0; i < b->n; i++) {
        const char *k = b->keys[i];
        const sl_node *v = b->items[i];
        int64_t x;
        uint64_t sz;
        if (strcmp(k, "max_events") == 0) {
            if (v->kind != SL_NODE_SCALAR || sl_parse_int(v->str, &x) != 0 || x < 1 ||
                x > 1000000)
                sl_node_diag(d, v, "invalid batch.max_events (expected an integer from 1 to 1000000)");
            else
                p->batch_max_events = (uint32_t)x;
        } else if (strcmp(k, "linger") == 0) {
            if (v->kind != SL_NODE_SCALAR || sl_parse_duration(v->str, &x) != 0)
                sl_node_diag(d, v, "invalid duration '%s' for 'linger' (expected e.g. 250ms, 5s, 1m)",
                        v->kind == SL_NODE_SCALAR ? v->str : "");
            else
                p->batch_linger_ns = x;
        } else if (strcmp(k, "max_bytes") == 0) {
            if (v->kind != SL_NODE_SCALAR || sl_parse_size(v->str, &sz) != 0 || sz < 1024 ||
                sz > (1ull << 31))
                sl_node_diag(d, v, "invalid batch.max_bytes (expected a size from 1KiB to 2GiB)");
            else
                p->batch_max_bytes = sz;
        } else {
            unknown_key(d, b->key_nodes[i], "batch", k, keys);
        }
    }
}

/* checkpoint: {interval: 10s} (docs/checkpoints.md); absent: no checkpoints. */
static void load_checkpoint(sl_pipeline *p, const sl_node *c, sl_diag *d)
{
    p->checkpoint_interval_ns = 0;
    if (!c || c->is_null)
        return;
    if (c->kind != SL_NODE_MAP) {
        sl_node_diag(d, c, "'checkpoint' must be a mapping like {interval: 10s}");
        return;
    }
    static const char *const keys[] = {"interval", NULL};
    p->checkpoint_interval_ns = DEFAULT_CHECKPOINT_NS;
    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->keys[i];
        const sl_node *v = c->items[i];
        int64_t x;
        if (strcmp(k, "interval") == 0) {
            if (v->kind != SL_NODE_SCALAR || sl_parse_duration(v->str, &x) != 0 ||
                x < 10000000)
                sl_node_diag(d, v, "invalid checkpoint.interval '%s' (expected a duration of at "
                              "least 10ms, e.g. 10s)",
                        v->kind == SL_NODE_SCALAR ? v->str : "");
            else
                p->checkpoint_interval_ns = x;
        } else {
            unknown_key(d, c->key_nodes[i], "checkpoint", k, keys);
        }
    }
}

/*
 * Split "host:port" (host may be empty, meaning 127.0.0.1; port 0 picks a free
 * one). The host is copied to `host` (at most n bytes). 0, or -1 if malformed.
 */
int sl_listen_parse(const char *s, char *host, size_t n, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon[1] == '\0')
        return -1;
    char *end;
    long v = strtol(colon + 1, &end, 10);
    if (*end != '\0' || v < 0 || v > 65535)
        return -1;
    size_t hl = (size_t)(colon - s);
    if (hl >= n)
        return -1;
    if (hl == 0)
        snprintf(host, n, "127.0.0.1");
    else {
        memcpy(host, s, hl);
        host[hl] = '\0';
    }
    *port = (int)v;
    return 0;
}

/* admin: {listen: 127.0.0.1:9464} (docs/operations.md); absent: no admin endpoint. */
static void load_admin(sl_pipeline *p, const sl_node *a, sl_diag *d)
{
    if (!a || a->is_null)
        return;
    if (a->kind != SL_NODE_MAP) {
        sl_node_diag(d, a, "'admin' must be a mapping like {listen: 127.0.0.1:9464}");
        return;
    }
    static const char *const keys[] = {"listen", NULL};
    const char *listen = "127.0.0.1:9464";
    for (size_t i = 0; i < a->n; i++) {
        const char *k = a->keys[i];
        const sl_node *v = a->items[i];
        char host[256];
        int port;
        if (strcmp(k, "listen") == 0) {
            if (v->kind != SL_NODE_SCALAR || sl_listen_parse(v->str, host, sizeof host, &port))
                sl_node_diag(d, v, "invalid admin.listen '%s' (expected HOST:PORT, e.g. "
                              "127.0.0.1:9464; port 0 picks a free one)",
                        v->kind == SL_NODE_SCALAR ? v->str : "");
            else
                listen = v->str;
        } else {
            unknown_key(d, a->key_nodes[i], "admin", k, keys);
        }
    }
    p->admin_listen = strdup(listen);
}

/* plugins: [path/to/op.so, ...], relative to the pipeline file's directory (docs/plugins.md). */
static void load_plugins(sl_pipeline *p, const sl_node *list, sl_diag *d)
{
    if (!list || list->is_null)
        return;
    if (list->kind != SL_NODE_SEQ) {
        sl_node_diag(d, list, "'plugins' must be a list of shared objects like [plugins/geoip.so]");
        return;
    }
    const char *slash = p->file ? strrchr(p->file, '/') : NULL;
    int dir_len = slash ? (int)(slash - p->file) : 0;
    for (size_t i = 0; i < list->n; i++) {
        const sl_node *n = list->items[i];
        if (n->kind != SL_NODE_SCALAR || n->is_null || !*n->str) {
            sl_node_diag(d, n, "a plugin is the path of a .so file");
            continue;
        }
        char path[4096], err[1024];
        if (n->str[0] == '/' || !slash)
            snprintf(path, sizeof path, "%s", n->str);
        else
            snprintf(path, sizeof path, "%.*s/%s", dir_len, p->file, n->str);
        if (sl_plugin_load(path, err, sizeof err) != 0)
            sl_node_diag(d, n, "%s", err);
    }
}

static int valid_name(const char *s)
{
    if (!*s)
        return 0;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-'))
            return 0;
    return 1;
}

static int add_port(sl_opdef *o, const char *name)
{
    for (size_t i = 0; i < o->n_ports; i++)
        if (strcmp(o->ports[i], name) == 0)
            return 1;
    char **ports = realloc(o->ports, (o->n_ports + 1) * sizeof *ports);
    if (!ports)
        return -1;
    o->ports = ports;
    if (!(ports[o->n_ports] = strdup(name)))
        return -1;
    o->n_ports++;
    return 0;
}

/* A field path in a grouping set (a plain path or {name: path}), or NULL. */
static const sl_node *set_path(const sl_node *k)
{
    if (k->kind == SL_NODE_MAP && k->n == 1)
        k = k->items[0];
    sl_path p = {0};
    if (k->kind != SL_NODE_SCALAR || sl_path_parse(k->str, &p) != 0)
        return NULL;
    int plain = 1;
    for (const char *c = k->str; *c; c++)
        plain &= (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                 *c == '_' || *c == '.';
    sl_path_fini(&p);
    return plain ? k : NULL;
}

/*
 * The partition key of an operator whose key parameter is a list of grouping
 * sets ([[], [status]] or one flat set [status]): a field path that every set
 * groups by, so each group lives in one instance. Asked only with
 * parallelism > 1 (load_keys); then its absence is an error.
 */
static const sl_node *common_key(const sl_opdef *o, const sl_node *sets, sl_diag *d)
{
    int nested = sets->n && sets->items[0]->kind == SL_NODE_SEQ;
    const sl_node *first = nested ? sets->items[0] : sets;
    for (size_t i = 0; first->kind == SL_NODE_SEQ && i < first->n; i++) {
        const sl_node *cand = set_path(first->items[i]);
        int everywhere = cand != NULL;
        for (size_t s = 1; nested && everywhere && s < sets->n; s++) {
            const sl_node *set = sets->items[s];
            int found = 0;
            for (size_t j = 0; set->kind == SL_NODE_SEQ && j < set->n && !found; j++) {
                const sl_node *p = set_path(set->items[j]);
                found = p && strcmp(p->str, cand->str) == 0;
            }
            everywhere = found;
        }
        if (everywhere)
            return cand;
    }
    sl_node_diag(d, sets, "parallelism %u needs a field path that every grouping set groups by (the "
                     "[] set groups all events together); set partition_by or parallelism: 1",
            o->parallelism);
    return NULL;
}

/*
 * The partitioning keys of an operator with parallelism > 1: `partition_by`,
 * else its key parameter (with the default already applied). Either is a
 * field path for every input slot, a map from slot name to field path (a
 * join's `on: {left: ..., right: ...}`), or a list of grouping sets.
 */
static void load_keys(sl_opdef *o, sl_diag *d)
{
    if (o->parallelism <= 1)
        return;
    const sl_node *n = o->node;
    const char *pname = "partition_by";
    const sl_node *kp = sl_node_get(n, pname);
    if (!kp && o->op->key_param)
        kp = sl_node_get(n, pname = o->op->key_param);
    if (!kp)
        return; /* unkeyed: round robin */
    size_t n_slots = 0;
    const char *const *slots = sl_operator_inputs(o->op);
    while (slots[n_slots])
        n_slots++;
    o->keys = calloc(n_slots, sizeof *o->keys);
    if (!o->keys)
        return;
    o->n_keys = n_slots;
    for (size_t s = 0; s < n_slots; s++) {
        const sl_node *k = kp;
        if (kp->kind == SL_NODE_MAP) {
            k = sl_node_get(kp, slots[s]);
            if (!k) {
                sl_node_diag(d, kp, "parallelism %u partitions by '%s', which needs a field path for "
                               "input '%s'", o->parallelism, pname, slots[s]);
                continue;
            }
        }
        if (k->kind == SL_NODE_SEQ)
            k = common_key(o, k, d); /* grouping sets: a field every set groups by */
        if (!k)
            continue;
        if (k->kind != SL_NODE_SCALAR || !set_path(k) || sl_path_parse(k->str, &o->keys[s]) != 0)
            sl_node_diag(d, k, "parallelism %u partitions the input by '%s', which must be a field "
                          "path like data.customerId here (or set partition_by to one)",
                    o->parallelism, pname);
    }
}

/* Check one operator's own keys; fills type, parallelism, ports. Inputs come later. */
static void load_operator(sl_pipeline *p, sl_opdef *o, sl_diag *d)
{
    const sl_node *n = o->node;
    const sl_node *type = scalar_at(n, "type", d);
    if (!type) {
        if (!sl_node_get(n, "type"))
            sl_node_diag(d, n, "operator '%s' has no 'type'", o->name);
        return;
    }
    const sl_registry_entry *e = sl_registry_find(type->str);
    if (!e) {
        const char *s = sl_suggest(type->str, sl_registry_names());
        sl_node_diag(d, type, "unknown operator type '%s'%s%s%s", type->str,
                s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
        return;
    }
    o->op = e->op;
    o->origin = e->origin;

    o->parallelism = 1;
    const sl_node *par = scalar_at(n, "parallelism", d);
    int64_t x;
    if (par) {
        if (sl_parse_int(par->str, &x) != 0 || x < 1 || x > 256)
            sl_node_diag(d, par, "invalid parallelism '%s' (expected an integer from 1 to 256)",
                    par->str);
        else if ((e->op->flags & SL_OP_SOURCE) && x != 1)
            sl_node_diag(d, par, "source operator '%s' runs with parallelism 1", o->name);
        else
            o->parallelism = (uint32_t)x;
    }
    o->fuse = -1;
    const sl_node *fuse = scalar_at(n, "fuse", d);
    int b;
    if (fuse) {
        if (sl_parse_bool(fuse->str, &b) != 0)
            sl_node_diag(d, fuse, "invalid value '%s' for 'fuse' (expected true or false)", fuse->str);
        else
            o->fuse = b;
    }

    const sl_node *wm = sl_node_get(n, "watermark");
    if (wm && (e->op->flags & SL_OP_SOURCE))
        load_watermark(o, wm, d);
    else if (wm)
        sl_node_diag(d, wm, "'watermark' belongs on a source; '%s' (%s) takes its watermark from its "
                       "inputs", o->name, e->op->name);

    /* engine keys: the common ones and this type's input slots */
    const char *engine_keys[32];
    size_t nk = 0;
    for (const char *const *k = common_keys; *k; k++)
        engine_keys[nk++] = *k;
    engine_keys[nk++] = "watermark";
    for (const char *const *k = sl_operator_inputs(e->op); *k && nk < 31; k++)
        engine_keys[nk++] = *k;
    engine_keys[nk] = NULL;
    sl_params_check(o->node, e->op->params, e->op->param_size, engine_keys, e->op->name, d);

    for (const char *const *port = sl_operator_fixed_outputs(e->op); *port; port++)
        if (add_port(o, *port) < 0)
            return;
    if (e->op->port_param) {
        const sl_node *m = sl_node_get(n, e->op->port_param);
        for (size_t i = 0; m && m->kind == SL_NODE_MAP && i < m->n; i++) {
            if (!valid_name(m->keys[i]))
                sl_node_diag(d, m->key_nodes[i],
                        "invalid port name '%s' (letters, digits, '_' and '-' only)", m->keys[i]);
            else if (add_port(o, m->keys[i]) == 1)
                sl_node_diag(d, m->key_nodes[i], "port name '%s' is reserved", m->keys[i]);
        }
    }

    load_keys(o, d);
}

/* Resolve one "op" or "op.port" reference from operator o's input slot. */
static void resolve_ref(sl_pipeline *p, sl_opdef *o, int slot, const sl_node *v, sl_diag *d)
{
    if (v->kind != SL_NODE_SCALAR || v->is_null || !*v->str) {
        sl_node_diag(d, v, "input of '%s' must name an operator, as 'name' or 'name.port'", o->name);
        return;
    }
    char *ref = strdup(v->str);
    if (!ref)
        return;
    char *dot = strchr(ref, '.');
    if (dot)
        *dot = '\0';
    long from = sl_pipeline_find(p, ref);
    if (from < 0) {
        const char **names = calloc(p->n_ops + 1, sizeof *names);
        for (size_t i = 0; names && i < p->n_ops; i++)
            names[i] = p->ops[i].name;
        const char *s = names ? sl_suggest(ref, names) : NULL;
        sl_node_diag(d, v, "input '%s' of '%s' names no operator%s%s%s", v->str, o->name,
                s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
        free(names);
        goto out;
    }
    sl_opdef *up = &p->ops[from];
    if (!up->op)
        goto out; /* its type is already reported */
    int port = 0;
    if (dot) {
        port = -1;
        for (size_t i = 0; i < up->n_ports; i++)
            if (strcmp(up->ports[i], dot + 1) == 0)
                port = (int)i;
        if (port < 0) {
            char list[512] = "";
            for (size_t i = 0; i < up->n_ports; i++) {
                if (i)
                    strncat(list, ", ", sizeof list - strlen(list) - 1);
                strncat(list, up->ports[i], sizeof list - strlen(list) - 1);
            }
            sl_node_diag(d, v, "operator '%s' has no output port '%s' (ports: %s)", up->name, dot + 1,
                    list);
            goto out;
        }
    } else if (up->op->flags & SL_OP_SINK) {
        sl_node_diag(d, v, "'%s' is a sink and has no main output; name a port as '%s.%s'", ref, ref,
                up->n_ports ? up->ports[0] : "errors");
        goto out;
    } else if (up->op->port_param) {
        sl_node_diag(d, v,
                "ambiguous input '%s': operator '%s' has several output ports; name one as "
                "'%s.<port>'",
                ref, ref, ref);
        goto out;
    }
    sl_input *in = realloc(o->inputs, (o->n_inputs + 1) * sizeof *in);
    if (!in)
        goto out;
    o->inputs = in;
    in[o->n_inputs++] = (sl_input){.slot = slot, .from = (size_t)from, .port = port, .at = v};
out:
    free(ref);
}

static void resolve_inputs(sl_pipeline *p, sl_opdef *o, sl_diag *d)
{
    if (!o->op)
        return;
    const char *const *slots = sl_operator_inputs(o->op);
    int slot = 0;
    for (const char *const *s = slots; *s; s++, slot++) {
        const sl_node *v = sl_node_get(o->node, *s);
        if (!v) {
            sl_node_diag(d, o->node, "operator '%s' (%s) needs '%s'", o->name, o->op->name, *s);
            continue;
        }
        if (v->kind == SL_NODE_SEQ) {
            if (v->n == 0)
                sl_node_diag(d, v, "'%s' of '%s' is an empty list", *s, o->name);
            for (size_t i = 0; i < v->n; i++)
                resolve_ref(p, o, slot, v->items[i], d);
        } else {
            resolve_ref(p, o, slot, v, d);
        }
    }
    if (o->op->flags & SL_OP_SOURCE) {
        const sl_node *v = sl_node_get(o->node, "input");
        if (v)
            sl_node_diag(d, v, "source operator '%s' takes no input", o->name);
    }
}

/* Whether operator `to` reads from operator `from`. */
static int feeds(const sl_pipeline *p, size_t from, size_t to)
{
    for (size_t j = 0; j < p->ops[to].n_inputs; j++)
        if (p->ops[to].inputs[j].from == from)
            return 1;
    return 0;
}

/*
 * Breadth-first search among `left` operators for the shortest way from
 * `start` back to itself; writes "a -> b -> a" into buf. Returns 1 if the
 * operator is on a cycle (an operator merely downstream of one is not).
 */
static int find_cycle(const sl_pipeline *p, const char *left, size_t start, char *buf, size_t n)
{
    size_t count = p->n_ops, head = 0, tail = 0;
    size_t *queue = calloc(count, sizeof *queue), *prev = calloc(count, sizeof *prev);
    int found = 0;
    if (!queue || !prev)
        goto out;
    for (size_t i = 0; i < count; i++)
        prev[i] = (size_t)-1;
    queue[tail++] = start;
    while (head < tail && !found) {
        size_t at = queue[head++];
        for (size_t next = 0; next < count && !found; next++) {
            if (!left[next] || !feeds(p, at, next))
                continue;
            if (next == start) {
                found = 1;
                prev[start] = at;
            } else if (prev[next] == (size_t)-1) {
                prev[next] = at;
                queue[tail++] = next;
            }
        }
    }
    if (found) {
        /* walk back from start's predecessor to start, then print forwards */
        size_t path[64], len = 0;
        for (size_t at = prev[start]; at != start && len < 63; at = prev[at])
            path[len++] = at;
        size_t off = (size_t)snprintf(buf, n, "%s", p->ops[start].name);
        while (len-- > 0 && off < n)
            off += (size_t)snprintf(buf + off, n - off, " -> %s", p->ops[path[len]].name);
        if (off < n)
            snprintf(buf + off, n - off, " -> %s", p->ops[start].name);
    }
out:
    free(queue);
    free(prev);
    return found;
}

/* Kahn's algorithm; operators left over are on a cycle or downstream of one. */
static void sort_topologically(sl_pipeline *p, sl_diag *d)
{
    size_t n = p->n_ops, done = 0;
    size_t *indeg = calloc(n, sizeof *indeg);
    char *left = calloc(n ? n : 1, 1);
    p->topo = calloc(n ? n : 1, sizeof *p->topo);
    if (!indeg || !p->topo || !left)
        goto out;
    for (size_t i = 0; i < n; i++)
        indeg[i] = p->ops[i].n_inputs;
    for (;;) {
        size_t picked = n;
        for (size_t i = 0; i < n && picked == n; i++)
            if (indeg[i] == 0)
                picked = i;
        if (picked == n)
            break;
        indeg[picked] = (size_t)-1;
        p->topo[done++] = picked;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < p->ops[i].n_inputs; j++)
                if (p->ops[i].inputs[j].from == picked && indeg[i] != (size_t)-1)
                    indeg[i]--;
    }
    for (size_t i = 0; i < n; i++)
        left[i] = indeg[i] != (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        char path[512];
        if (left[i] && find_cycle(p, left, i, path, sizeof path))
            sl_node_diag(d, p->ops[i].node, "operator '%s' is part of a cycle (%s)", p->ops[i].name,
                    path);
    }
out:
    free(indeg);
    free(left);
}

static int check_pipeline(sl_pipeline *p, sl_diag *d)
{
    size_t before = d->n;
    sl_node *root = p->root;
    if (root->kind != SL_NODE_MAP) {
        sl_node_diag(d, root, "a pipeline file is a mapping with 'pipeline' and 'operators'");
        return SL_ECONFIG;
    }
    for (size_t i = 0; i < root->n; i++) {
        int known = 0;
        for (const char *const *k = top_keys; *k; k++)
            known |= strcmp(*k, root->keys[i]) == 0;
        if (!known) {
            const char *s = sl_suggest(root->keys[i], top_keys);
            sl_node_diag(d, root->key_nodes[i], "unknown top-level key '%s'%s%s%s", root->keys[i],
                    s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
        }
    }
    const sl_node *name = scalar_at(root, "pipeline", d);
    p->name = strdup(name && !name->is_null ? name->str : "pipeline");
    const sl_node *sd = scalar_at(root, "state_dir", d);
    if (sd && !sd->is_null)
        p->state_dir = strdup(sd->str);
    else if (p->name && asprintf(&p->state_dir, "state/%s", p->name) < 0)
        p->state_dir = NULL;
    load_batch(p, sl_node_get(root, "batch"), d);
    load_checkpoint(p, sl_node_get(root, "checkpoint"), d);
    load_admin(p, sl_node_get(root, "admin"), d);
    load_plugins(p, sl_node_get(root, "plugins"), d); /* before the types they define are looked up */

    sl_node *ops = sl_node_get(root, "operators");
    if (!ops || ops->is_null || (ops->kind == SL_NODE_MAP && ops->n == 0)) {
        sl_node_diag(d, ops ? ops : root, "empty pipeline: 'operators' lists no operator");
        return SL_ECONFIG;
    }
    if (ops->kind != SL_NODE_MAP) {
        sl_node_diag(d, ops, "'operators' must be a mapping of name -> operator");
        return SL_ECONFIG;
    }
    p->ops = calloc(ops->n, sizeof *p->ops);
    if (!p->ops)
        return -ENOMEM;
    p->n_ops = ops->n;
    for (size_t i = 0; i < ops->n; i++) {
        sl_opdef *o = &p->ops[i];
        o->name = strdup(ops->keys[i]);
        o->node = ops->items[i];
        if (!valid_name(o->name))
            sl_node_diag(d, ops->key_nodes[i],
                    "invalid operator name '%s' (letters, digits, '_' and '-' only)", o->name);
        if (o->node->kind != SL_NODE_MAP) {
            sl_node_diag(d, o->node, "operator '%s' must be a mapping with a 'type'", o->name);
            o->node = NULL;
            continue;
        }
        load_operator(p, o, d);
    }
    for (size_t i = 0; i < p->n_ops; i++)
        if (p->ops[i].node)
            resolve_inputs(p, &p->ops[i], d);
    if (d->n == before)
        sort_topologically(p, d);
    return d->n == before ? 0 : SL_ECONFIG;
}

static int finish_load(sl_pipeline *p, const char *const *sets, size_t n_sets, sl_diag *d,
                       sl_pipeline **out)
{
    int rc = 0;
    for (size_t i = 0; i < n_sets; i++)
        if (sl_config_set(p->root, sets[i], d) != 0)
            rc = SL_ECONFIG;
    if (rc == 0)
        rc = check_pipeline(p, d);
    if (rc != 0) {
        sl_pipeline_destroy(&p);
        return rc == -ENOMEM ? rc : SL_ECONFIG;
    }
    *out = p;
    return 0;
}

int sl_pipeline_load(const char *path, const char *const *sets, size_t n_sets, sl_diag *d,
                     sl_pipeline **out)
{
    *out = NULL;
    sl_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->file = strdup(path);
    if (sl_config_load_file(path, d, &p->root) != 0 || !p->root) {
        sl_pipeline_destroy(&p);
        return SL_ECONFIG;
    }
    return finish_load(p, sets, n_sets, d, out);
}

int sl_pipeline_load_string(const char *name, const char *text, const char *const *sets,
                            size_t n_sets, sl_diag *d, sl_pipeline **out)
{
    *out = NULL;
    sl_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->file = strdup(name);
    if (sl_config_load_string(name, text, strlen(text), d, &p->root) != 0 || !p->root) {
        sl_pipeline_destroy(&p);
        return SL_ECONFIG;
    }
    return finish_load(p, sets, n_sets, d, out);
}
