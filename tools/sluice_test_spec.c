/*
 * sluice_test_spec.c - load a pipeline's test file and check its shape and
 * its names (sluice_test_spec.h; the format is docs/testing.md).
 *
 * Design: the file is loaded with the pipeline loader's YAML reader
 * (config.h), so positions, duplicate keys and ${VAR} work as in a
 * pipeline file. Every check adds to one sl_diag and loading goes on, so a
 * user sees all mistakes at once; nothing is returned unless the whole file
 * is sound. Expected events are converted to msgpack once, here.
 */
#include "sluice_test_spec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

static const char *const file_keys[] = {"pipeline", "description", "set", "timeout", "tests",
                                        NULL};
static const char *const test_keys[] = {"name",  "description", "set",      "inputs",
                                        "expect", "no_output",  "order",    "match",
                                        "timeout", NULL};
static const char *const expect_keys[] = {"events", "count", "order", "match", NULL};
static const char *const input_keys[] = {"file", NULL};

/* "unknown key 'k' in WHERE (did you mean 'x'?)" for every key of map m not in keys. */
static void check_keys(const sl_node *m, const char *const *keys, const char *where, sl_diag *d)
{
    for (size_t i = 0; i < m->n; i++) {
        int known = 0;
        for (const char *const *k = keys; *k; k++)
            known |= !strcmp(*k, m->keys[i]);
        if (known)
            continue;
        const char *s = sl_suggest(m->keys[i], keys);
        sl_node_diag(d, m->key_nodes[i], "unknown key '%s' in %s%s%s%s", m->keys[i], where,
                s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
    }
}

/* A non-empty scalar, else a diagnostic "'key' must be ..." and NULL. */
static const char *scalar(const sl_node *n, const char *key, sl_diag *d)
{
    if (n->kind != SL_NODE_SCALAR || n->is_null || !*n->str) {
        sl_node_diag(d, n, "'%s' must be a non-empty scalar", key);
        return NULL;
    }
    return n->str;
}

/* `timeout: 30s` into *ns; 0 if absent. */
static void load_timeout(const sl_node *n, int64_t *ns, sl_diag *d)
{
    *ns = 0;
    if (!n)
        return;
    if (n->kind != SL_NODE_SCALAR || sl_parse_duration(n->str, ns) != 0 || *ns <= 0) {
        sl_node_diag(d, n, "invalid timeout '%s' (expected a duration like 30s or 2m)",
                n->kind == SL_NODE_SCALAR ? n->str : "");
        *ns = 0;
    }
}

/*
 * `set: {operators.x.path: y.jsonl}` (or a list of "KEY=VALUE" strings)
 * appended to sets as KEY=VALUE, the value as flow YAML.
 */
static void load_sets(const sl_node *n, sl__strs *sets, sl_diag *d)
{
    sl_wbuf w;

    if (!n || n->is_null)
        return;
    sl_wbuf_init(&w);
    if (n->kind == SL_NODE_SEQ) {
        for (size_t i = 0; i < n->n; i++) {
            const sl_node *s = n->items[i];
            if (s->kind != SL_NODE_SCALAR || !strchr(s->str, '='))
                sl_node_diag(d, s, "a 'set' list item is KEY=VALUE, like operators.x.within=2h");
            else if (sl__strs_add(sets, s->str) != 0)
                sl_node_diag(d, s, "out of memory");
        }
    } else if (n->kind == SL_NODE_MAP) {
        for (size_t i = 0; i < n->n; i++) {
            sl_wbuf_reset(&w);
            if (sl__node_to_flow(n->items[i], &w) != 0 ||
                sl__strs_addf(sets, "%s=%s", n->keys[i], (const char *)w.data) != 0)
                sl_node_diag(d, n->items[i], "out of memory");
        }
    } else {
        sl_node_diag(d, n, "'set' must be a mapping of dotted keys to values, like "
                      "{operators.x.within: 2h}");
    }
    sl_wbuf_fini(&w);
}

/* `order: strict|any` and `match: partial|exact` into the rule. */
static void load_rule_keys(const sl_node *m, sl__test_rule *r, sl_diag *d)
{
    static const char *const orders[] = {"strict", "any", NULL};
    static const char *const matches[] = {"partial", "exact", NULL};
    const sl_node *o = sl_node_get(m, "order"), *x = sl_node_get(m, "match");

    if (o) {
        if (o->kind == SL_NODE_SCALAR && (!strcmp(o->str, "strict") || !strcmp(o->str, "any"))) {
            r->any_order = !strcmp(o->str, "any");
        } else {
            const char *s = o->kind == SL_NODE_SCALAR ? sl_suggest(o->str, orders) : NULL;
            sl_node_diag(d, o, "invalid order '%s' (strict or any)%s%s%s",
                    o->kind == SL_NODE_SCALAR ? o->str : "", s ? " (did you mean '" : "",
                    s ? s : "", s ? "'?)" : "");
        }
    }
    if (x) {
        if (x->kind == SL_NODE_SCALAR && (!strcmp(x->str, "partial") || !strcmp(x->str, "exact"))) {
            r->exact = !strcmp(x->str, "exact");
        } else {
            const char *s = x->kind == SL_NODE_SCALAR ? sl_suggest(x->str, matches) : NULL;
            sl_node_diag(d, x, "invalid match '%s' (partial or exact)%s%s%s",
                    x->kind == SL_NODE_SCALAR ? x->str : "", s ? " (did you mean '" : "",
                    s ? s : "", s ? "'?)" : "");
        }
    }
}

/* `dir of test file` + rel, or rel when it is absolute. Returns a new string or NULL. */
static char *relative_to(const char *file, const char *rel)
{
    const char *slash = strrchr(file, '/');
    char *out = NULL;

    if (rel[0] == '/' || !slash)
        return strdup(rel);
    if (asprintf(&out, "%.*s/%s", (int)(slash - file), file, rel) < 0)
        return NULL;
    return out;
}

/* One source's events: a list, nothing, or {file: path}. */
static void load_input(sl__test_file *f, sl__test_input *in, const sl_node *v, sl_diag *d)
{
    if (v->kind == SL_NODE_SCALAR && v->is_null)
        return; /* no events */
    if (v->kind == SL_NODE_MAP) {
        check_keys(v, input_keys, "an input (a list of events, or {file: x.jsonl})", d);
        const sl_node *file = sl_node_get(v, "file");
        const char *path = file ? scalar(file, "file", d) : NULL;
        if (!file)
            sl_node_diag(d, v, "input '%s': expected a list of events or {file: x.jsonl}",
                    in->source);
        if (path && !(in->file = relative_to(f->path, path)))
            sl_node_diag(d, file, "out of memory");
        return;
    }
    if (v->kind != SL_NODE_SEQ) {
        sl_node_diag(d, v, "input '%s': expected a list of events or {file: x.jsonl}", in->source);
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const sl_node *e = v->items[i];
        if (e->kind == SL_NODE_SEQ || (e->kind == SL_NODE_SCALAR && e->is_null && !e->quoted))
            sl_node_diag(d, e, "an input event is a mapping like {id: e1, type: t, data: {...}} "
                          "(or a string: one raw input line)");
    }
    in->events = v;
}

/* The expected events of a list into x->events. */
static void load_events(sl__test_expect *x, const sl_node *list, sl_diag *d)
{
    sl_wbuf w;

    sl_wbuf_init(&w);
    for (size_t i = 0; i < list->n; i++) {
        const sl_node *e = list->items[i];
        uint8_t *copy = NULL;
        sl_wbuf_reset(&w);
        if (sl__node_to_msgpack(e, &w) != 0 || !(copy = malloc(w.len ? w.len : 1))) {
            sl_node_diag(d, e, "out of memory");
            break;
        }
        memcpy(copy, w.data, w.len);
        if (sl__test_events_add(&x->events, copy, w.len, e->line, NULL) != 0) {
            sl_node_diag(d, e, "out of memory");
            break;
        }
    }
    sl_wbuf_fini(&w);
}

/* One expectation: a list of events, or {events: [...], order, match} or {count: N}. */
static void load_expect(sl__test_expect *x, const sl_node *v, sl_diag *d)
{
    x->rule.count = -1;
    if (v->kind == SL_NODE_SEQ) {
        load_events(x, v, d);
        return;
    }
    if (v->kind != SL_NODE_MAP) {
        sl_node_diag(d, v, "expect '%s': expected a list of events, {count: N} or "
                      "{events: [...], order: any}%s", x->target,
                v->kind == SL_NODE_SCALAR && v->is_null ? " (for no output write [] or use "
                                                          "no_output)" : "");
        return;
    }
    check_keys(v, expect_keys, "an expectation", d);
    const sl_node *events = sl_node_get(v, "events"), *count = sl_node_get(v, "count");
    load_rule_keys(v, &x->rule, d);
    if (events && count) {
        sl_node_diag(d, count, "expect '%s': give either 'events' or 'count', not both", x->target);
    } else if (count) {
        int64_t c;
        if (count->kind != SL_NODE_SCALAR || sl_parse_int(count->str, &c) != 0 || c < 0)
            sl_node_diag(d, count, "invalid count '%s' (expected an integer >= 0)",
                    count->kind == SL_NODE_SCALAR ? count->str : "");
        else
            x->rule.count = c;
        if (sl_node_get(v, "order") || sl_node_get(v, "match"))
            sl_node_diag(d, v, "expect '%s': 'order' and 'match' apply to 'events', not to 'count'",
                    x->target);
    } else if (events && events->kind == SL_NODE_SEQ) {
        load_events(x, events, d);
    } else {
        sl_node_diag(d, events ? events : v, "expect '%s': expected 'events' (a list) or 'count'",
                x->target);
    }
}

static int add_expect(sl__test_case *tc, sl__test_expect **x)
{
    sl__test_expect *v = realloc(tc->expects, (tc->n_expects + 1) * sizeof *v);
    if (!v)
        return -1;
    tc->expects = v;
    *x = &v[tc->n_expects++];
    memset(*x, 0, sizeof **x);
    return 0;
}

/* Whether an earlier expectation of tc already names target; reports the repeat. */
static int repeated(const sl__test_case *tc, const char *target, const sl_node *at, sl_diag *d)
{
    for (size_t i = 0; i < tc->n_expects; i++)
        if (!strcmp(tc->expects[i].target, target)) {
            sl_node_diag(d, at, "'%s' is expected twice in test '%s' (also at line %d)", target,
                    tc->name, tc->expects[i].at->line);
            return 1;
        }
    return 0;
}

static void load_test(sl__test_file *f, sl__test_case *tc, const sl_node *t,
                      const sl__strs *fsets, int64_t file_timeout, sl_diag *d)
{
    tc->at = t;
    tc->name = "";
    if (t->kind != SL_NODE_MAP) {
        sl_node_diag(d, t, "a test is a mapping with 'name', 'inputs' and 'expect'");
        return;
    }
    check_keys(t, test_keys, "a test", d);
    const sl_node *name = sl_node_get(t, "name");
    if (!name)
        sl_node_diag(d, t, "a test needs a 'name'");
    else if (scalar(name, "name", d))
        tc->name = name->str;

    for (size_t i = 0; i < fsets->n; i++)
        if (sl__strs_add(&tc->sets, fsets->v[i]) != 0)
            sl_node_diag(d, t, "out of memory");
    const sl_node *own = sl_node_get(t, "set");
    tc->own_sets = own && !own->is_null;
    load_sets(own, &tc->sets, d);
    load_timeout(sl_node_get(t, "timeout"), &tc->timeout_ns, d);
    if (!tc->timeout_ns)
        tc->timeout_ns = file_timeout;

    sl__test_rule rule = {.count = -1};
    load_rule_keys(t, &rule, d);

    const sl_node *inputs = sl_node_get(t, "inputs");
    if (inputs && inputs->kind == SL_NODE_MAP) {
        tc->inputs = calloc(inputs->n ? inputs->n : 1, sizeof *tc->inputs);
        if (!tc->inputs) {
            sl_node_diag(d, inputs, "out of memory");
            return;
        }
        tc->n_inputs = inputs->n;
        for (size_t i = 0; i < inputs->n; i++) {
            tc->inputs[i].source = inputs->keys[i];
            tc->inputs[i].at = inputs->key_nodes[i];
            load_input(f, &tc->inputs[i], inputs->items[i], d);
        }
    } else if (inputs && !inputs->is_null) {
        sl_node_diag(d, inputs, "'inputs' must be a mapping of source name -> list of events");
    }

    const sl_node *expect = sl_node_get(t, "expect");
    if (expect && expect->kind == SL_NODE_MAP) {
        for (size_t i = 0; i < expect->n; i++) {
            sl__test_expect *x;
            if (add_expect(tc, &x) != 0) {
                sl_node_diag(d, expect, "out of memory");
                return;
            }
            x->target = expect->keys[i];
            x->at = expect->key_nodes[i];
            x->rule = rule;
            load_expect(x, expect->items[i], d);
        }
    } else if (expect && !expect->is_null) {
        sl_node_diag(d, expect, "'expect' must be a mapping of sink or port -> expected events");
    }

    const sl_node *none = sl_node_get(t, "no_output");
    if (none && !(none->kind == SL_NODE_SCALAR && none->is_null)) {
        size_t n = none->kind == SL_NODE_SEQ ? none->n : 1;
        for (size_t i = 0; i < n; i++) {
            const sl_node *s = none->kind == SL_NODE_SEQ ? none->items[i] : none;
            sl__test_expect *x;
            if (!scalar(s, "no_output", d) || repeated(tc, s->str, s, d))
                continue;
            if (add_expect(tc, &x) != 0) {
                sl_node_diag(d, none, "out of memory");
                return;
            }
            x->target = s->str;
            x->at = s;
            x->rule = (sl__test_rule){.count = 0};
        }
    }
    if (!tc->n_expects)
        sl_node_diag(d, t, "test '%s' checks nothing: add 'expect' or 'no_output'", tc->name);
}

/* "dir/x.test.yaml" -> "dir/x.yaml" (NULL if the name has no ".test." part). */
static char *default_pipeline(const char *path)
{
    const char *base = strrchr(path, '/');
    const char *t = strstr(base ? base : path, ".test.");
    char *out = NULL;

    if (!t)
        return NULL;
    if (asprintf(&out, "%.*s%s", (int)(t - path), path, t + 5) < 0)
        return NULL;
    return out;
}

int sl__test_file_load(const char *path, sl_diag *d, sl__test_file **out)
{
    sl__test_file *f = NULL;
    int64_t file_timeout = 0;
    sl__strs fsets = {0};
    sl_diag yd;

    *out = NULL;
    sl_diag_init(&yd);
    f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        sl_diag_add(d, path, 0, 0, "out of memory");
        goto err;
    }
    if (sl_config_load_file(path, &yd, &f->root) != 0 || !f->root) {
        /* the YAML loader's words are for pipelines: "empty pipeline file" */
        for (size_t i = 0; i < yd.n; i++)
            sl_diag_add(d, yd.items[i].file, yd.items[i].line, yd.items[i].col, "%s",
                        strcmp(yd.items[i].msg, "empty pipeline file") ? yd.items[i].msg
                                                                       : "empty test file");
        goto err;
    }
    const sl_node *root = f->root;
    if (root->kind != SL_NODE_MAP) {
        sl_node_diag(d, root, "a test file is a mapping with 'tests' (docs/testing.md)");
        goto err;
    }
    check_keys(root, file_keys, "the test file", d);
    const sl_node *pl = sl_node_get(root, "pipeline");
    const char *pname = pl ? scalar(pl, "pipeline", d) : NULL;
    if (pname)
        f->pipeline = relative_to(path, pname);
    else if (!pl && !(f->pipeline = default_pipeline(path)))
        sl_node_diag(d, root, "which pipeline does this file test? Name it with 'pipeline: x.yaml' "
                         "(or call the file x.test.yaml)");
    load_timeout(sl_node_get(root, "timeout"), &file_timeout, d);
    load_sets(sl_node_get(root, "set"), &fsets, d);

    const sl_node *tests = sl_node_get(root, "tests");
    if (!tests) {
        sl_node_diag(d, root, "the test file has no 'tests'");
    } else if (tests->kind != SL_NODE_SEQ || tests->n == 0) {
        sl_node_diag(d, tests, "'tests' must be a non-empty list of tests");
    } else {
        f->tests = calloc(tests->n, sizeof *f->tests);
        if (!f->tests) {
            sl_node_diag(d, tests, "out of memory");
            goto err;
        }
        f->n_tests = tests->n;
        for (size_t i = 0; i < tests->n; i++) {
            load_test(f, &f->tests[i], tests->items[i], &fsets, file_timeout, d);
            for (size_t j = 0; j < i && *f->tests[i].name; j++)
                if (!strcmp(f->tests[j].name, f->tests[i].name))
                    sl_node_diag(d, f->tests[i].at, "two tests are named '%s' (the other at line %d)",
                            f->tests[i].name, f->tests[j].at->line);
        }
    }
    sl__strs_fini(&fsets);
    sl_diag_fini(&yd);
    *out = f;
    return 0;
err:
    sl__strs_fini(&fsets);
    sl_diag_fini(&yd);
    sl__test_file_destroy(&f);
    return -1;
}

void sl__test_file_destroy(sl__test_file **fp)
{
    sl__test_file *f = fp ? *fp : NULL;

    if (!f)
        return;
    for (size_t i = 0; i < f->n_tests; i++) {
        sl__test_case *tc = &f->tests[i];
        sl__strs_fini(&tc->sets);
        for (size_t j = 0; j < tc->n_inputs; j++)
            free(tc->inputs[j].file);
        free(tc->inputs);
        for (size_t j = 0; j < tc->n_expects; j++)
            sl__test_events_fini(&tc->expects[j].events);
        free(tc->expects);
    }
    free(f->tests);
    free(f->path);
    free(f->pipeline);
    sl_node_destroy(&f->root);
    free(f);
    *fp = NULL;
}

/* ---------------------------------------------------------------- names */

/* "a, b, c" of a NULL-terminated list into buf. */
static const char *join(const char *const *names, size_t n, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n && names[i]; i++) {
        if (i)
            strncat(buf, ", ", len - strlen(buf) - 1);
        strncat(buf, names[i], len - strlen(buf) - 1);
    }
    return buf;
}

/* Names of p's operators with all of `flags` (0: every operator), NULL-terminated; free it. */
static const char **op_names(const sl_pipeline *p, uint32_t flags)
{
    const char **v = calloc(p->n_ops + 1, sizeof *v);
    size_t n = 0;

    for (size_t i = 0; v && i < p->n_ops; i++)
        if (!flags || (p->ops[i].op->flags & flags) == flags)
            v[n++] = p->ops[i].name;
    return v;
}

/* Whether the output ports of type `type` include `port`. */
static int type_has_port(const char *type, const char *port)
{
    const sl_registry_entry *e = sl_registry_find(type);
    for (const char *const *o = e ? sl_operator_fixed_outputs(e->op) : NULL; o && *o; o++)
        if (!strcmp(*o, port))
            return 1;
    return 0;
}

int sl__test_resolve(const sl_pipeline *p, const char *target, sl__test_target *t, char *err,
                     size_t errlen)
{
    const char *dot = strchr(target, '.');
    size_t len = dot ? (size_t)(dot - target) : strlen(target);
    char name[256], ports[512];
    const sl_opdef *o = NULL;

    t->op = -1;
    t->port = NULL;
    if (len >= sizeof name) {
        snprintf(err, errlen, "'%s' names no operator", target);
        return -1;
    }
    memcpy(name, target, len);
    name[len] = '\0';
    t->op = sl_pipeline_find(p, name);
    if (t->op < 0) {
        const char **names = op_names(p, 0);
        const char *s = names ? sl_suggest(name, names) : NULL;
        snprintf(err, errlen, "'%s' names no operator of pipeline '%s'%s%s%s", name, p->name,
                 s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
        free(names);
        return -1;
    }
    o = &p->ops[t->op];
    join((const char *const *)o->ports, o->n_ports, ports, sizeof ports);
    if (!dot) {
        if (o->op->flags & SL_OP_SINK)
            return 0; /* the sink itself */
        if (o->op->port_param || !o->n_ports) {
            snprintf(err, errlen, "'%s' (%s) has several output ports: name one as "
                                  "'%s.<port>' (ports: %s)", name, o->op->name, name, ports);
            return -1;
        }
        t->port = o->ports[0];
        return 0;
    }
    for (size_t i = 0; i < o->n_ports; i++)
        if (!strcmp(o->ports[i], dot + 1))
            t->port = o->ports[i];
    if (!t->port) {
        snprintf(err, errlen, "operator '%s' has no output port '%s' (ports: %s)", name, dot + 1,
                 o->n_ports ? ports : "none");
        return -1;
    }
    /* sources and sinks are replaced (sluice_test_run.c): the port must exist on the stand-in */
    if ((o->op->flags & SL_OP_SOURCE) && t->port != o->ports[0] &&
        !type_has_port("source.file", t->port)) {
        snprintf(err, errlen, "'%s': in a test, source '%s' is replaced by the test's input "
                              "(source.file), which has no port '%s'", target, name, t->port);
        return -1;
    }
    if ((o->op->flags & SL_OP_SINK) && !type_has_port("sink.file", t->port)) {
        snprintf(err, errlen, "'%s': in a test, sink '%s' is replaced by a capture (sink.file), "
                              "which has no port '%s'", target, name, t->port);
        return -1;
    }
    return 0;
}

size_t sl__test_case_check(const sl__test_case *tc, const sl_pipeline *p, sl_diag *d)
{
    size_t before = d->n;
    char err[1024], list[1024];

    for (size_t i = 0; i < tc->n_inputs; i++) {
        const sl__test_input *in = &tc->inputs[i];
        long op = sl_pipeline_find(p, in->source);
        const char **sources = op_names(p, SL_OP_SOURCE);
        if (!sources) {
            sl_node_diag(d, in->at, "out of memory");
            break;
        }
        join(sources, p->n_ops, list, sizeof list);
        if (op < 0) {
            const char *s = sl_suggest(in->source, sources);
            if (s)
                sl_node_diag(d, in->at, "input '%s' names no source of pipeline '%s' (did you mean "
                                   "'%s'?)", in->source, p->name, s);
            else
                sl_node_diag(d, in->at, "input '%s' names no source of pipeline '%s' (sources: %s)",
                        in->source, p->name, list);
        } else if (!(p->ops[op].op->flags & SL_OP_SOURCE)) {
            sl_node_diag(d, in->at, "input '%s' is not a source but %s; events are given to "
                               "sources (sources: %s)", in->source, p->ops[op].op->name, list);
        }
        free(sources);
    }
    for (size_t i = 0; i < tc->n_expects; i++) {
        sl__test_target t;
        if (sl__test_resolve(p, tc->expects[i].target, &t, err, sizeof err) != 0)
            sl_node_diag(d, tc->expects[i].at, "expect: %s", err);
    }
    return d->n - before;
}
