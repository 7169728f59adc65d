/*
 * sluice_test_run.c - run one pipeline test in process and capture what
 * its sinks and ports emit (sluice_test_run.h says what is rewritten).
 *
 * Steps: load the pipeline with the command line's and the test's --set
 * (to learn its sources, sinks and ports), write each source's events as
 * JSON lines into a fresh temporary directory, load it again with the
 * rewriting overrides added, run it, read the captured JSON lines back as
 * msgpack, remove the directory.
 *
 * Threads and signals: sl_runtime_run runs on a thread of its own, with
 * the runtime's own signal handling (handle_signals = 1), while this
 * thread waits for SIGINT/SIGTERM and the time limit. At the limit it
 * sends the runner SIGTERM - the runtime's graceful stop, as for `sluice
 * run` - and, if the pipeline has not ended a grace period later, SIGINT:
 * the runtime's "second signal", which stops at once. Two different
 * signals, because two pending SIGTERMs would merge into one. A user's
 * SIGINT/SIGTERM reaches this thread (Linux gives a process-directed
 * signal to the main thread when it waits for it) and stops the run at
 * once. The caller blocks both signals in every thread beforehand, so
 * they are only ever taken by sigtimedwait, never by a default action.
 */
#include "sluice_test_run.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "json.h"
#include "runtime.h"

#define GRACE_NS 1000000000ll  /* after a graceful stop at the limit, before a hard one */
#define POLL_NS 20000000l      /* how often the watching thread looks at the clock */
#define CAPTURE_PREFIX "_test_capture_"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* ---------------------------------------------------------- directory */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* A new directory $TMPDIR/sluice-test-XXXXXX (owned), or NULL with errno set. */
static char *make_dir(void)
{
    const char *base = getenv("TMPDIR");
    char *dir = NULL;

    if (asprintf(&dir, "%s/sluice-test-XXXXXX", base && *base ? base : "/tmp") < 0)
        return NULL;
    if (!mkdtemp(dir)) {
        int e = errno;
        free(dir);
        errno = e;
        return NULL;
    }
    return dir;
}

/* ------------------------------------------------------------- inputs */

/* Write one source's events as JSON lines (mappings) or raw lines (strings) into path. */
static int write_events(const char *path, const sl_node *events, sl_diag *d)
{
    FILE *f = fopen(path, "w");
    sl_wbuf mp, json;
    int rc = -1;

    sl_wbuf_init(&mp);
    sl_wbuf_init(&json);
    if (!f) {
        sl_diag_add(d, NULL, 0, 0, "cannot write '%s': %s", path, strerror(errno));
        goto out;
    }
    for (size_t i = 0; events && i < events->n; i++) {
        const sl_node *e = events->items[i];
        if (e->kind == SL_NODE_SCALAR) {
            fprintf(f, "%s\n", e->str); /* a raw line: malformed input on purpose */
            continue;
        }
        sl_wbuf_reset(&mp);
        sl_wbuf_reset(&json);
        if (sl__node_to_msgpack(e, &mp) != 0 || sl_msgpack_to_json(mp.data, mp.len, &json) != 0) {
            sl_diag_add(d, e->file, e->line, e->col, "out of memory");
            goto out;
        }
        fwrite(json.data, 1, json.len, f);
        fputc('\n', f);
    }
    rc = 0;
out:
    if (f && fclose(f) != 0 && rc == 0) {
        sl_diag_add(d, NULL, 0, 0, "cannot write '%s': %s", path, strerror(errno));
        rc = -1;
    }
    sl_wbuf_fini(&mp);
    sl_wbuf_fini(&json);
    return rc;
}

/* ------------------------------------------------------------ rewrite */

/* "name" or "name.port" for output port `port` of operator `from`, as an input may name it. */
static int append_ref(sl_wbuf *w, const sl_opdef *from, const char *port)
{
    int bare = !strcmp(port, from->ports[0]) && !from->op->port_param &&
               !(from->op->flags & SL_OP_SINK);
    char ref[600];

    snprintf(ref, sizeof ref, bare ? "%s" : "%s.%s", from->name, port);
    return sl__yaml_quote(w, ref);
}

/* "operators.NAME={type: sink.file, input: [...], path: '...', fsync: false}" */
static int sink_set(sl__strs *sets, const char *name, sl_wbuf *inputs, const char *path)
{
    sl_wbuf q;
    int rc;

    sl_wbuf_init(&q);
    rc = sl__yaml_quote(&q, path) == 0 && sl_wbuf_append(&q, "", 1) == 0 &&
                 sl_wbuf_append(inputs, "", 1) == 0
             ? sl__strs_addf(sets, "operators.%s={type: sink.file, input: [%s], path: %s, "
                                   "fsync: false}",
                             name, (const char *)inputs->data, (const char *)q.data)
             : -1;
    sl_wbuf_fini(&q);
    return rc;
}

/* The path of the events for source `name`: the test's, written into dir, or an empty file. */
static int source_file(const sl__test_case *tc, const char *name, const char *dir, char **path,
                       sl_diag *d)
{
    *path = NULL;
    for (size_t i = 0; i < tc->n_inputs; i++) {
        const sl__test_input *in = &tc->inputs[i];
        if (strcmp(in->source, name) != 0)
            continue;
        if (in->file) {
            if (access(in->file, R_OK) != 0) {
                const sl_node *at = in->at;
                sl_diag_add(d, at->file, at->line, at->col, "input '%s': cannot read '%s': %s",
                            name, in->file, strerror(errno));
                return -1;
            }
            return (*path = strdup(in->file)) ? 0 : -1;
        }
        if (asprintf(path, "%s/in-%s.jsonl", dir, name) < 0) {
            *path = NULL;
            return -1;
        }
        return write_events(*path, in->events, d);
    }
    if (asprintf(path, "%s/empty.jsonl", dir) < 0) {
        *path = NULL;
        return -1;
    }
    return write_events(*path, NULL, d);
}

/* Add a capture; takes ownership of path, even on failure. Returns 0 or -1. */
static int add_capture(sl__test_outcome *out, const char *label, char *path)
{
    sl__test_capture *v = realloc(out->caps, (out->n_caps + 1) * sizeof *v);
    if (!v) {
        free(path);
        return -1;
    }
    out->caps = v;
    v = &out->caps[out->n_caps++];
    memset(v, 0, sizeof *v);
    v->path = path;
    v->label = strdup(label);
    return v->label ? 0 : -1;
}

/*
 * The overrides that turn pipeline p into its test form, into sets; the
 * captures into out (every sink, then each expected port). Returns 0, or -1
 * (problem in d, or out of memory).
 */
static int rewrite(const sl_pipeline *p, const sl__test_case *tc, const char *dir, sl__strs *sets,
                   sl__test_outcome *out, sl_diag *d)
{
    sl_wbuf w;
    char *path = NULL;
    unsigned next_name = 0;
    int rc = -1;

    sl_wbuf_init(&w);
    if (asprintf(&path, "%s/state", dir) < 0) {
        path = NULL;
        goto out;
    }
    if (sl__yaml_quote(&w, path) != 0 || sl_wbuf_append(&w, "", 1) != 0 ||
        sl__strs_addf(sets, "state_dir=%s", (const char *)w.data) != 0 ||
        sl__strs_add(sets, "checkpoint=~") != 0)
        goto out;
    free(path);
    path = NULL;
    if (sl_node_get(p->root, "admin") && sl__strs_add(sets, "admin=~") != 0)
        goto out;

    for (size_t i = 0; i < p->n_ops; i++) {
        const sl_opdef *o = &p->ops[i];
        sl_wbuf_reset(&w);
        if (o->op->flags & SL_OP_SOURCE) {
            char wm[128] = "";
            if (source_file(tc, o->name, dir, &path, d) != 0)
                goto out;
            if (o->wm_enabled)
                snprintf(wm, sizeof wm, ", watermark: {max_out_of_order: %lldns, "
                                        "idle_timeout: %lldns}",
                         (long long)o->wm_bound_ns, (long long)o->wm_idle_ns);
            if (sl__yaml_quote(&w, path) != 0 || sl_wbuf_append(&w, "", 1) != 0 ||
                sl__strs_addf(sets, "operators.%s={type: source.file, path: %s, format: jsonl%s}",
                              o->name, (const char *)w.data, wm) != 0)
                goto out;
            free(path);
            path = NULL;
        } else if (o->op->flags & SL_OP_SINK) {
            for (size_t j = 0; j < o->n_inputs; j++) {
                const sl_opdef *from = &p->ops[o->inputs[j].from];
                if ((j && sl_wbuf_append(&w, ", ", 2) != 0) ||
                    append_ref(&w, from, from->ports[o->inputs[j].port]) != 0)
                    goto out;
            }
            if (asprintf(&path, "%s/sink-%s.jsonl", dir, o->name) < 0) {
                path = NULL;
                goto out;
            }
            if (sink_set(sets, o->name, &w, path) != 0)
                goto out;
            int added = add_capture(out, o->name, path);
            path = NULL;
            if (added != 0)
                goto out;
        }
    }

    out->expect_cap = calloc(tc->n_expects ? tc->n_expects : 1, sizeof *out->expect_cap);
    if (!out->expect_cap)
        goto out;
    for (size_t i = 0; i < tc->n_expects; i++) {
        sl__test_target t;
        char err[1024], name[64];
        const sl__test_expect *x = &tc->expects[i];
        if (sl__test_resolve(p, x->target, &t, err, sizeof err) != 0) {
            sl_diag_add(d, x->at->file, x->at->line, x->at->col, "expect: %s", err);
            goto out;
        }
        if (!t.port) { /* a sink: already captured */
            for (size_t c = 0; c < out->n_caps; c++)
                if (!strcmp(out->caps[c].label, p->ops[t.op].name))
                    out->expect_cap[i] = c;
            continue;
        }
        /* a capture of its own, under a name no operator has */
        do
            snprintf(name, sizeof name, CAPTURE_PREFIX "%u", next_name++);
        while (sl_pipeline_find(p, name) >= 0);
        sl_wbuf_reset(&w);
        if (append_ref(&w, &p->ops[t.op], t.port) != 0)
            goto out;
        if (asprintf(&path, "%s/port-%zu.jsonl", dir, i) < 0) {
            path = NULL;
            goto out;
        }
        out->expect_cap[i] = out->n_caps;
        if (sink_set(sets, name, &w, path) != 0)
            goto out;
        int added = add_capture(out, x->target, path);
        path = NULL;
        if (added != 0)
            goto out;
    }
    rc = 0;
out:
    free(path);
    sl_wbuf_fini(&w);
    return rc;
}

/* ------------------------------------------------------------- outputs */

/* Read a capture's JSON lines into c->events. A missing file is no events. */
static int read_capture(sl__test_capture *c, sl_json_parser *jp, sl_diag *d)
{
    FILE *f = fopen(c->path, "rb");
    char *line = NULL, *buf = NULL;
    size_t cap = 0, bufcap = 0;
    ssize_t len;
    int lineno = 0, rc = -1;
    sl_wbuf mp;

    sl_wbuf_init(&mp);
    if (!f)
        return errno == ENOENT ? 0 : -1;
    while ((len = getline(&line, &cap, f)) >= 0) {
        char err[256];
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        if ((size_t)len + SL_JSON_PADDING > bufcap) {
            char *b = realloc(buf, (size_t)len + SL_JSON_PADDING);
            if (!b)
                goto out;
            buf = b;
            bufcap = (size_t)len + SL_JSON_PADDING;
        }
        memcpy(buf, line, (size_t)len);
        memset(buf + len, 0, SL_JSON_PADDING);
        sl_wbuf_reset(&mp);
        if (sl_json_to_msgpack(jp, buf, (size_t)len, bufcap, 0, &mp, err, sizeof err) != 0) {
            sl_diag_add(d, c->path, lineno, 1, "captured output of '%s' is not JSON: %s",
                        c->label, err);
            goto out;
        }
        uint8_t *copy = malloc(mp.len);
        char *json = strdup(line);
        if (!copy || !json) {
            free(copy);
            free(json);
            goto out;
        }
        memcpy(copy, mp.data, mp.len);
        if (sl__test_events_add(&c->events, copy, mp.len, lineno, json) != 0)
            goto out;
    }
    rc = 0;
out:
    fclose(f);
    free(line);
    free(buf);
    sl_wbuf_fini(&mp);
    return rc;
}

/* --------------------------------------------------------------- runs */

typedef struct runner {
    sl_runtime *rt;
    int rc;
    atomic_int done;
} runner;

static void *run_main(void *arg)
{
    runner *r = arg;
    r->rc = sl_runtime_run(r->rt);
    atomic_store(&r->done, 1);
    return NULL;
}

/*
 * Run rt on a thread of its own and watch it: the time limit and the
 * user's signals. Returns the status (the runtime's result in *rc).
 */
static sl__test_status watch(sl_runtime *rt, int64_t timeout_ns, int *rc)
{
    runner r = {.rt = rt};
    pthread_t th;
    sigset_t stops;
    int64_t start = now_ns(), hard_at = 0;
    int timed_out = 0, interrupted = 0, sent = 0;

    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    atomic_init(&r.done, 0);
    if (pthread_create(&th, NULL, run_main, &r) != 0) {
        *rc = -EAGAIN;
        return SL__TEST_ERROR;
    }
    while (!atomic_load(&r.done)) {
        struct timespec ts = {0, POLL_NS};
        int sig = sigtimedwait(&stops, NULL, &ts);
        int64_t now = now_ns();
        if (sig == SIGINT || sig == SIGTERM)
            interrupted = 1;
        if (interrupted && sent < 2) {
            /* the user wants out: stop at once (graceful, then the second signal) */
            if (sent == 0)
                pthread_kill(th, SIGTERM);
            pthread_kill(th, SIGINT);
            sent = 2;
        } else if (!timed_out && !interrupted && now - start >= timeout_ns) {
            timed_out = 1;
            pthread_kill(th, SIGTERM); /* graceful: sources stop, the rest drains */
            sent = 1;
            hard_at = now + GRACE_NS;
        } else if (timed_out && sent == 1 && now >= hard_at) {
            pthread_kill(th, SIGINT); /* the second signal: stop at once */
            sent = 2;
        }
    }
    pthread_join(th, NULL);
    *rc = r.rc;
    if (interrupted)
        return SL__TEST_INTERRUPTED;
    if (timed_out)
        return SL__TEST_TIMEOUT;
    return r.rc == 0 ? SL__TEST_RAN : SL__TEST_ERROR;
}

/* Whether SIGINT or SIGTERM is pending (sent while no run was being watched); consumes it. */
static int stop_pending(void)
{
    sigset_t pending, stops;
    struct timespec zero = {0, 0};

    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    if (sigpending(&pending) != 0 ||
        (!sigismember(&pending, SIGINT) && !sigismember(&pending, SIGTERM)))
        return 0;
    while (sigtimedwait(&stops, NULL, &zero) > 0)
        ;
    return 1;
}

int sl__test_run(const sl__test_file *f, const sl__test_case *tc, const sl__test_opts *o,
                 sl_diag *d, sl__test_outcome *out)
{
    sl__strs rw = {0};
    const char **sets = NULL;
    size_t n_base = o->n_sets + tc->sets.n;
    sl_pipeline *p = NULL, *tp = NULL;
    sl_runtime *rt = NULL;
    sl_json_parser *jp = NULL;
    char *dir = NULL;
    int rc = -1;

    memset(out, 0, sizeof *out);
    out->status = SL__TEST_ERROR;
    if (stop_pending()) {
        out->status = SL__TEST_INTERRUPTED;
        return 0;
    }
    sets = calloc(n_base + 1, sizeof *sets);
    if (!sets)
        goto out;
    for (size_t i = 0; i < o->n_sets; i++)
        sets[i] = o->sets[i];
    for (size_t i = 0; i < tc->sets.n; i++)
        sets[o->n_sets + i] = tc->sets.v[i];
    if (sl_pipeline_load(f->pipeline, sets, n_base, d, &p) != 0) {
        rc = 0;
        goto out;
    }
    if (!(dir = make_dir())) {
        sl_diag_add(d, NULL, 0, 0, "cannot make a temporary directory: %s", strerror(errno));
        rc = 0;
        goto out;
    }
    size_t before = d->n;
    if (rewrite(p, tc, dir, &rw, out, d) != 0) {
        rc = d->n != before ? 0 : -1;
        goto out;
    }
    const char **all = realloc(sets, (n_base + rw.n + 1) * sizeof *all);
    if (!all)
        goto out;
    sets = all;
    for (size_t i = 0; i < rw.n; i++)
        sets[n_base + i] = rw.v[i];
    if (sl_pipeline_load(f->pipeline, sets, n_base + rw.n, d, &tp) != 0) {
        sl_diag_add(d, f->pipeline, 0, 0, "the pipeline with its sources and sinks replaced for "
                                         "the test does not load (above)");
        rc = 0;
        goto out;
    }
    sl_run_opts ro;
    sl_run_opts_default(&ro);
    ro.progress = 0;
    ro.handle_signals = 1; /* the runner thread's signals: see the top of the file */
    ro.fresh = 1;
    int64_t t0 = now_ns();
    if (sl_runtime_new(tp, &ro, d, &rt) != 0) {
        rc = 0;
        goto out;
    }
    int run_rc = 0;
    out->status = watch(rt, tc->timeout_ns > 0 ? tc->timeout_ns : o->timeout_ns, &run_rc);
    out->seconds = (double)(now_ns() - t0) / 1e9;
    sl_runtime_destroy(&rt);
    if (out->status == SL__TEST_ERROR)
        sl_diag_add(d, NULL, 0, 0, "the pipeline failed: %s", sl_strerror(run_rc));
    if (out->status == SL__TEST_RAN) {
        if (!(jp = sl_json_parser_new()))
            goto out;
        for (size_t i = 0; i < out->n_caps; i++)
            if (read_capture(&out->caps[i], jp, d) != 0) {
                if (d->n == before)
                    sl_diag_add(d, NULL, 0, 0, "cannot read '%s'", out->caps[i].path);
                out->status = SL__TEST_ERROR;
                break;
            }
    }
    rc = 0;
out:
    sl_json_parser_destroy(&jp);
    sl_runtime_destroy(&rt);
    sl_pipeline_destroy(&tp);
    sl_pipeline_destroy(&p);
    sl__strs_fini(&rw);
    free(sets);
    if (dir && o->keep) {
        out->dir = dir;
    } else if (dir) {
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(dir);
    }
    return rc;
}

void sl__test_outcome_fini(sl__test_outcome *o)
{
    for (size_t i = 0; i < o->n_caps; i++) {
        free(o->caps[i].label);
        free(o->caps[i].path);
        sl__test_events_fini(&o->caps[i].events);
    }
    free(o->caps);
    free(o->expect_cap);
    free(o->dir);
    memset(o, 0, sizeof *o);
}
