/*
 * sluice.c - the command-line interface: run, validate, graph, inspect, log.
 *
 * Exit status: 0 success; 1 the pipeline is invalid or failed while
 * running; 2 wrong usage; 130 stopped at once by a second signal.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin_client.h"

#include "config.h"
#include "error.h"
#include "graph_dot.h"
#include "log.h"
#include "pipeline.h"
#include "plugin.h"
#include "plan.h"
#include "registry.h"
#include "runtime.h"
#include "sluice_log.h"
#include "sluice_test.h"
#include "sluice_top.h"

static const char *const usage_main =
    "usage: sluice <command> [options]\n"
    "\n"
    "commands:\n"
    "  run FILE         run a pipeline until its sources end (or SIGINT/SIGTERM)\n"
    "  validate FILE    check a pipeline file; exit 0 if it is valid\n"
    "  graph FILE       print the pipeline as a Graphviz DOT graph\n"
    "  inspect [TYPE]   list operator types, or show one type's ports and parameters\n"
    "  log CMD DIR ...  inspect or feed a durable event log (stats, tail, get, query, append)\n"
    "  test FILE        run a pipeline's unit tests (FILE.test.yaml, docs/testing.md)\n"
    "  top ADDR|FILE    watch a running pipeline: rates, busy, backpressure, lag\n"
    "\n"
    "  sluice <command> --help   help for a command\n"
    "  sluice --version          print the version\n";

static const char *const usage_run =
    "usage: sluice run FILE [--set KEY=VALUE]... [--progress] [--no-fusion] [--fresh]\n"
    "                       [--plugin-dir DIR]... [--log-level L] [--log-format F]\n"
    "\n"
    "Run the pipeline in FILE until every source has ended, then drain and exit 0.\n"
    "SIGINT/SIGTERM stop the sources; events in flight are drained and written.\n"
    "With `checkpoint:` a signal takes a checkpoint and stops; the next run on the\n"
    "same state_dir continues from it (docs/checkpoints.md).\n"
    "A second signal stops at once (exit 130).\n"
    "\n"
    "  --set KEY=VALUE   override a key of the file, e.g. operators.events.path=x.jsonl\n"
    "                    (VALUE is YAML: --set a.b=[1,2] sets a list)\n"
    "  --progress        print events in/out and rates per operator every second\n"
    "                    (the default when stderr is a terminal)\n"
    "  --no-progress     never print progress\n"
    "  --no-fusion       run every operator in a stage of its own\n"
    "  --hwm N           batches queued per edge before a sender blocks (default 8)\n"
    "  --fresh           with `checkpoint:`, discard what state_dir holds and start\n"
    "                    from empty state (otherwise the last checkpoint is restored)\n"
    "  --plugin-dir DIR  load every *.so in DIR as operator plugins (also\n"
    "                    SLUICE_PLUGIN_PATH=DIR:DIR; docs/plugins.md)\n"
    "  --log-level L     error, warn, info (default) or debug\n"
    "  --log-format F    text (default), logfmt or json: one line per message on stderr\n";

static const char *const usage_validate =
    "usage: sluice validate FILE [--set KEY=VALUE]... [--plugin-dir DIR]...\n"
    "\n"
    "Check FILE: YAML syntax, operator types and parameters, inputs, ports and\n"
    "cycles. Prints every problem as file:line:col: message and exits 1, or\n"
    "prints a summary and exits 0. Nothing runs and no file is opened.\n";

static const char *const usage_graph =
    "usage: sluice graph FILE [--format dot|svg|png] [-o OUT] [--from ADDR [--interval D]]\n"
    "                         [--set KEY=VALUE]... [--no-fusion] [--plugin-dir DIR]...\n"
    "\n"
    "Draw the pipeline: operators with their ports and parallelism, stages (fused\n"
    "chains) as clusters, and each edge labelled fused, forward, round-robin or\n"
    "keyed.\n"
    "\n"
    "  --format F     dot (default): Graphviz DOT text; svg or png: rendered by\n"
    "                 Graphviz `dot` when it is installed (else DOT, with a warning)\n"
    "  -o, --output OUT  write to OUT instead of stdout\n"
    "  --from ADDR    overlay the rates of the running pipeline at ADDR (its admin\n"
    "                 endpoint, HOST:PORT): events in/out per second, busy and\n"
    "                 backpressure, measured over --interval (default 1s)\n";

static const char *const usage_inspect =
    "usage: sluice inspect [--plugin-dir DIR]... [TYPE]\n"
    "\n"
    "Without TYPE, list every operator type with a one-line summary. With TYPE,\n"
    "show its inputs, output ports, parameters (type, default, required, help)\n"
    "and where it comes from.\n";

typedef struct cli {
    const char *file;
    const char **sets;
    size_t n_sets;
    int progress; /* -1: when stderr is a terminal */
    int fusion;
    int hwm;
    int fresh;
    /* graph only */
    int graph;
    const char *format, *output, *from;
    int64_t interval_ns;
} cli;

/* Load the plugins of --plugin-dir DIR; 0, or -1 after printing why. */
static int load_plugin_dir(const char *dir)
{
    char err[1024];
    if (sl_plugin_load_dir(dir, err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "sluice: %s\n", err);
    return -1;
}

/* Exit status for what parse_args returned: --help 0, a plugin that failed 1, usage 2. */
static int parse_status(int rc) { return rc == 1 ? 0 : rc == 3 ? 1 : 2; }

/*
 * Parse the options shared by the file commands. Returns 0, 1 (--help shown), 2 (usage)
 * or 3 (a --plugin-dir plugin could not be loaded).
 */
static int parse_args(int argc, char **argv, const char *usage, cli *c)
{
    static const struct option opts[] = {
        {"set", required_argument, NULL, 's'},      {"progress", no_argument, NULL, 'p'},
        {"no-progress", no_argument, NULL, 'P'},    {"no-fusion", no_argument, NULL, 'F'},
        {"hwm", required_argument, NULL, 'w'},      {"help", no_argument, NULL, 'h'},
        {"fresh", no_argument, NULL, 'f'},          {"plugin-dir", required_argument, NULL, 'D'},
        {"log-level", required_argument, NULL, 'L'}, {"log-format", required_argument, NULL, 'O'},
        {"format", required_argument, NULL, 'g'},   {"output", required_argument, NULL, 'o'},
        {"from", required_argument, NULL, 'r'},     {"interval", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0},
    };
    c->n_sets = 0;
    c->progress = -1;
    c->fusion = 1;
    c->hwm = 0;
    c->fresh = 0;
    c->sets = calloc((size_t)argc + 1, sizeof *c->sets);
    if (!c->sets)
        return 2;
    optind = 1;
    int ch;
    c->format = "dot";
    c->output = c->from = NULL;
    c->interval_ns = 1000000000;
    while ((ch = getopt_long(argc, argv, c->graph ? "s:ho:" : "s:h", opts, NULL)) != -1) {
        if (!c->graph && strchr("gori", ch)) {
            fputs(usage, stderr);
            return 2;
        }
        switch (ch) {
        case 'g':
            if (strcmp(optarg, "dot") != 0 && strcmp(optarg, "svg") != 0 &&
                strcmp(optarg, "png") != 0) {
                fprintf(stderr, "sluice: unknown --format '%s' (dot, svg, png)\n", optarg);
                return 2;
            }
            c->format = optarg;
            break;
        case 'o': c->output = optarg; break;
        case 'r': c->from = optarg; break;
        case 'i':
            if (sl_parse_duration(optarg, &c->interval_ns) != 0 || c->interval_ns < 10000000) {
                fprintf(stderr, "sluice: invalid --interval '%s' (at least 10ms)\n", optarg);
                return 2;
            }
            break;
        case 's': c->sets[c->n_sets++] = optarg; break;
        case 'p': c->progress = 1; break;
        case 'P': c->progress = 0; break;
        case 'F': c->fusion = 0; break;
        case 'w': c->hwm = atoi(optarg); break;
        case 'f': c->fresh = 1; break;
        case 'D':
            if (load_plugin_dir(optarg) != 0)
                return 3;
            break;
        case 'L':
            if (sl_log_set_level(optarg) != 0) {
                fprintf(stderr, "sluice: unknown --log-level '%s' (error, warn, info, debug)\n",
                        optarg);
                return 2;
            }
            break;
        case 'O':
            if (sl_log_set_format(optarg) != 0) {
                fprintf(stderr, "sluice: unknown --log-format '%s' (text, logfmt, json)\n",
                        optarg);
                return 2;
            }
            break;
        case 'h': fputs(usage, stdout); return 1;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "sluice: %s\n%s", optind >= argc ? "missing FILE" : "too many arguments",
                usage);
        return 2;
    }
    c->file = argv[optind];
    return 0;
}

static sl_pipeline *load(const cli *c)
{
    sl_diag d;
    sl_diag_init(&d);
    sl_pipeline *p = NULL;
    if (sl_pipeline_load(c->file, c->sets, c->n_sets, &d, &p) != 0)
        sl_diag_print(&d, stderr);
    sl_diag_fini(&d);
    return p;
}

static int cmd_run(int argc, char **argv)
{
    /*
     * A stop asked for while the pipeline is still being set up waits, pending, for the
     * runtime's signal loop (engine/runtime.h) instead of killing the process half-way.
     */
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, NULL);
    cli c = {0};
    int rc = parse_args(argc, argv, usage_run, &c);
    if (rc != 0) {
        free(c.sets);
        return parse_status(rc);
    }
    sl_pipeline *p = load(&c);
    sl_runtime *rt = NULL;
    int status = 1;
    if (!p)
        goto out;
    sl_log_set_pipeline(p->name);
    sl_run_opts o;
    sl_run_opts_default(&o);
    o.fusion = c.fusion;
    o.progress = c.progress < 0 ? isatty(STDERR_FILENO) : c.progress;
    if (c.hwm > 0)
        o.hwm = c.hwm;
    o.fresh = c.fresh;
    sl_diag d;
    sl_diag_init(&d);
    if (sl_runtime_new(p, &o, &d, &rt) != 0) {
        sl_diag_print(&d, stderr);
        sl_diag_fini(&d);
        goto out;
    }
    sl_diag_fini(&d);
    rc = sl_runtime_run(rt);
    if (rc == 0)
        status = 0;
    else if (rc == SL_EINTERRUPTED)
        status = 130;
    else
        fprintf(stderr, "sluice: pipeline '%s' failed\n", p->name);
out:
    sl_runtime_destroy(&rt);
    sl_pipeline_destroy(&p);
    free(c.sets);
    return status;
}

static int cmd_validate(int argc, char **argv)
{
    cli c = {0};
    int rc = parse_args(argc, argv, usage_validate, &c);
    if (rc != 0) {
        free(c.sets);
        return parse_status(rc);
    }
    sl_pipeline *p = load(&c);
    int status = 1;
    if (p) {
        sl_diag d;
        sl_diag_init(&d);
        sl_run_opts o;
        sl_run_opts_default(&o);
        sl_runtime *rt = NULL;
        if (sl_runtime_new(p, &o, &d, &rt) != 0) {
            sl_diag_print(&d, stderr);
        } else {
            sl_plan plan;
            size_t stages = 0;
            if (sl_plan_build(p, 1, &plan) == 0) {
                stages = plan.n_stages;
                sl_plan_fini(&plan);
            }
            printf("%s: ok: pipeline '%s', %zu operators in %zu stages\n", c.file, p->name,
                   p->n_ops, stages);
            status = 0;
        }
        sl_runtime_destroy(&rt);
        sl_diag_fini(&d);
    }
    sl_pipeline_destroy(&p);
    free(c.sets);
    return status;
}

/* Rates of each operator of p at the running engine `from`, over `interval_ns`. 0 or -1. */
static int measure_rates(const sl_pipeline *p, const char *from, int64_t interval_ns,
                         sl_graph_rates *rates, char *caption, size_t n)
{
    char err[512];
    sl_sample a, b;
    if (sl_admin_fetch(from, &a, err, sizeof err) != 0) {
        fprintf(stderr, "sluice: graph --from: %s\n", err);
        return -1;
    }
    struct timespec ts = {.tv_sec = interval_ns / 1000000000, .tv_nsec = interval_ns % 1000000000};
    nanosleep(&ts, NULL);
    if (sl_admin_fetch(from, &b, err, sizeof err) != 0) {
        fprintf(stderr, "sluice: graph --from: %s\n", err);
        sl_sample_fini(&a);
        return -1;
    }
    for (size_t o = 0; o < p->n_ops; o++)
        for (size_t k = 0; k < b.n_ops; k++)
            if (strcmp(b.ops[k].name, p->ops[o].name) == 0) {
                sl_op_rates r;
                sl_sample_rates(&a, &b, k, &r);
                rates[o] = (sl_graph_rates){1, r.in, r.out, r.errors,
                                            b.timing && !b.ops[k].source ? r.busy : -1,
                                            r.backpressure};
            }
    snprintf(caption, n, "%s: rates over %.1fs from %s", b.pipeline, b.uptime_s - a.uptime_s,
             from);
    sl_sample_fini(&a);
    sl_sample_fini(&b);
    return 0;
}

/* Whether an executable `name` is on PATH. */
static int on_path(const char *name)
{
    const char *path = getenv("PATH");
    char buf[4096];
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, name);
        if (access(buf, X_OK) == 0)
            return 1;
        p += n + (p[n] == ':');
    }
    return 0;
}

/*
 * Where the DOT text goes: the output (or stdout), or the stdin of
 * `dot -T<format>` writing there. *child is its pid, or 0.
 */
static FILE *open_output(const cli *c, pid_t *child)
{
    *child = 0;
    int render = strcmp(c->format, "dot") != 0;
    if (render && !on_path("dot")) {
        fprintf(stderr, "sluice: graph: Graphviz 'dot' is not installed (apt-get install "
                        "graphviz): writing DOT instead of %s\n", c->format);
        render = 0;
    }
    if (!render) {
        FILE *f = c->output ? fopen(c->output, "w") : stdout;
        if (!f)
            fprintf(stderr, "sluice: graph: cannot write %s: %s\n", c->output, strerror(errno));
        return f;
    }
    int fd[2];
    if (pipe(fd) != 0)
        return NULL;
    char fmt[16];
    snprintf(fmt, sizeof fmt, "-T%s", c->format);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[0], STDIN_FILENO);
        close(fd[0]);
        close(fd[1]);
        if (c->output)
            execlp("dot", "dot", fmt, "-o", c->output, (char *)NULL);
        else
            execlp("dot", "dot", fmt, (char *)NULL);
        _exit(127);
    }
    close(fd[0]);
    if (pid < 0) {
        close(fd[1]);
        return NULL;
    }
    *child = pid;
    return fdopen(fd[1], "w");
}

static int cmd_graph(int argc, char **argv)
{
    cli c = {.graph = 1};
    int rc = parse_args(argc, argv, usage_graph, &c);
    if (rc != 0) {
        free(c.sets);
        return parse_status(rc);
    }
    sl_pipeline *p = load(&c);
    int status = 1;
    sl_plan plan;
    sl_graph_rates *rates = NULL;
    char caption[512];
    if (!p || sl_plan_build(p, c.fusion, &plan) != 0)
        goto out;
    if (c.from && ((rates = calloc(p->n_ops, sizeof *rates)) == NULL ||
                   measure_rates(p, c.from, c.interval_ns, rates, caption, sizeof caption) != 0)) {
        sl_plan_fini(&plan);
        goto out;
    }
    pid_t child;
    FILE *f = open_output(&c, &child);
    if (f) {
        status = sl_graph_write_dot(p, &plan, rates, c.from ? caption : NULL, f) == 0 ? 0 : 1;
        if (f != stdout && fclose(f) != 0)
            status = 1;
        int ws;
        if (child && (waitpid(child, &ws, 0) != child || !WIFEXITED(ws) ||
                      WEXITSTATUS(ws) != 0)) {
            fprintf(stderr, "sluice: graph: Graphviz 'dot' failed\n");
            status = 1;
        }
    }
    sl_plan_fini(&plan);
out:
    free(rates);
    sl_pipeline_destroy(&p);
    free(c.sets);
    return status;
}

static const char *type_name(sl_param_type t)
{
    static const char *const names[] = {"string", "int",  "double", "bool", "duration", "size",
                                        "enum",   "expr", "list",   "map",  "any"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

static int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"plugin-dir", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage_inspect, stdout);
            return 0;
        }
        if (ch != 'D') {
            fputs(usage_inspect, stderr);
            return 2;
        }
        if (load_plugin_dir(optarg) != 0)
            return 1;
    }
    argv += optind - 1;
    argc -= optind - 1;
    if (argc > 2) {
        fputs(usage_inspect, stderr);
        return 2;
    }
    if (argc == 1) {
        for (size_t i = 0; i < sl_registry_count(); i++) {
            const sl_registry_entry *e = sl_registry_at(i);
            printf("%-24s %s\n", e->op->name, e->op->summary ? e->op->summary : "");
        }
        return 0;
    }
    const sl_registry_entry *e = sl_registry_find(argv[1]);
    if (!e) {
        const char *s = sl_suggest(argv[1], sl_registry_names());
        fprintf(stderr, "sluice: no operator type '%s'%s%s%s\n", argv[1],
                s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
        return 1;
    }
    const sl_operator *op = e->op;
    printf("%s\n  %s\n\n", op->name, op->summary ? op->summary : "");
    printf("Origin:      %s\n", e->origin);
    printf("Kind:        %s\n", (op->flags & SL_OP_SOURCE) ? "source"
                                : (op->flags & SL_OP_SINK)  ? "sink"
                                                            : "operator");
    printf("Inputs:     ");
    const char *const *in = sl_operator_inputs(op);
    if (!*in)
        printf(" (none)");
    for (; *in; in++)
        printf(" %s", *in);
    printf("\nOutputs:    ");
    const char *const *out = sl_operator_fixed_outputs(op);
    if (!*out && !op->port_param)
        printf(" (none)");
    for (; *out; out++)
        printf(" %s", *out);
    if (op->port_param)
        printf(" + one per key of '%s'", op->port_param);
    if (op->key_param)
        printf("\nKeyed by:    '%s' when parallelism > 1", op->key_param);
    printf("\n\nParameters:\n");
    if (!op->params || !op->params->name)
        printf("  (none)\n");
    for (const sl_param *pp = op->params; pp && pp->name;
         pp = (const sl_param *)(const void *)((const char *)pp + op->param_size)) {
        printf("  %-14s %-9s %s", pp->name, type_name(pp->type),
               pp->required ? "required" : "optional");
        if (pp->default_value)
            printf(", default: %s", pp->default_value);
        if (pp->choices)
            printf(", one of: %s", pp->choices);
        printf("\n  %14s %s\n", "", pp->help ? pp->help : "");
    }
    printf("\nCommon keys: type, parallelism, fuse, partition_by, description\n");
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is an error we report, not a crash */
    /*
     * Batch payloads (~100 KB-4 MiB) are allocated by one thread and freed by
     * another. Above glibc's mmap threshold every one would be a fresh mmap
     * and munmap, with a page fault per 4 KiB touched; keep them in the heap
     * and let freed memory be reused (docs/design/runtime.md, measured there).
     */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    sl_builtin_register();
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("sluice %s\n", SL_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    static const char *const with_plugins[] = {"run", "validate", "graph", "inspect", "test"};
    for (size_t i = 0; i < sizeof with_plugins / sizeof *with_plugins; i++) {
        char err[1024];
        if (strcmp(cmd, with_plugins[i]) == 0 && sl_plugin_load_env(err, sizeof err) != 0) {
            fprintf(stderr, "sluice: SLUICE_PLUGIN_PATH: %s\n", err);
            return 1;
        }
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "validate") == 0)
        return cmd_validate(argc - 1, argv + 1);
    if (strcmp(cmd, "graph") == 0)
        return cmd_graph(argc - 1, argv + 1);
    if (strcmp(cmd, "inspect") == 0)
        return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "log") == 0)
        return sl_cli_log(argc - 1, argv + 1);
    if (strcmp(cmd, "test") == 0)
        return sl_cli_test(argc - 1, argv + 1);
    if (strcmp(cmd, "top") == 0)
        return sl_cli_top(argc - 1, argv + 1);
    static const char *const cmds[] = {"run",  "validate", "graph", "inspect",
                                       "log",  "test",     "top",   NULL};
    const char *s = sl_suggest(cmd, cmds);
    fprintf(stderr, "sluice: unknown command '%s'%s%s%s\n%s", cmd, s ? " (did you mean '" : "",
            s ? s : "", s ? "'?)" : "", usage_main);
    return 2;
}
