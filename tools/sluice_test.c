/*
 * sluice_test.c - `sluice test FILE...`: run pipelines' YAML unit tests and
 * report each result, with a readable difference for each failure
 * (docs/testing.md).
 *
 * FILE is a test file (X.test.yaml), a pipeline (X.yaml: its tests are in
 * X.test.yaml beside it) or a directory (every *.test.yaml in it). Per test
 * file: load it (sluice_test_spec.c), load its pipeline and check every
 * test's names against it - all mistakes are reported before anything
 * runs, as file:line:col: message - then run each test (sluice_test_run.c)
 * and match what came out (sluice_test_match.c).
 *
 * Output: one line per test on stdout ("ok" or "FAIL" with the file, line
 * and name), the differences indented under a FAIL, and a summary line
 * "N passed, M failed". Mistakes in files and the engine's log go to
 * stderr. Exit status: 0 every test passed; 1 a test failed, or a test or
 * pipeline file has mistakes; 2 wrong usage; 130 interrupted.
 */
#include "sluice_test.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "pipeline.h"
#include "plugin.h"
#include "sluice_test_match.h"
#include "sluice_test_run.h"
#include "sluice_test_spec.h"

#define DEFAULT_TIMEOUT_NS 60000000000ll

static const char *const usage =
    "usage: sluice test FILE... [--set KEY=VALUE]... [--run NAME] [--timeout T] [-v]\n"
    "                           [--plugin-dir DIR]... [--keep]\n"
    "\n"
    "Run the unit tests of pipelines: each test feeds given events to the\n"
    "pipeline's sources and compares what its sinks and ports emit with what it\n"
    "expects (docs/testing.md). FILE is a test file (X.test.yaml), a pipeline\n"
    "(X.yaml, tested by X.test.yaml beside it) or a directory (every *.test.yaml).\n"
    "Sinks write nothing outside a temporary directory.\n"
    "\n"
    "  --set KEY=VALUE   override a key of the pipeline, as for `sluice run`\n"
    "  --run NAME        run only the tests whose name contains NAME\n"
    "  --timeout T       time limit of a test that sets none (default 60s)\n"
    "  -v, --verbose     print what every sink and port emitted\n"
    "  --plugin-dir DIR  load every *.so in DIR as operator plugins\n"
    "  --keep            keep each test's temporary directory (its path is printed)\n"
    "\n"
    "Exit status: 0 all tests passed, 1 a test failed or a file has mistakes,\n"
    "2 wrong usage.\n";

typedef struct options {
    sl__test_opts run;
    const char **sets;
    const char *filter; /* --run */
    int verbose;
} options;

typedef struct totals {
    size_t passed, failed, file_errors, selected;
    int interrupted;
} totals;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* ------------------------------------------------------------- files */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int is_test_file(const char *name)
{
    return ends_with(name, ".test.yaml") || ends_with(name, ".test.yml");
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int test_name_filter(const struct dirent *e)
{
    return is_test_file(e->d_name);
}

/* The test files FILE stands for, appended to files. Returns 0, or -1 after printing why. */
static int add_files(const char *arg, sl__strs *files)
{
    struct stat st;

    if (stat(arg, &st) != 0) {
        fprintf(stderr, "sluice: test: cannot open '%s': %s\n", arg, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        struct dirent **list = NULL;
        int n = scandir(arg, &list, test_name_filter, alphasort), rc = 0;
        if (n < 0) {
            fprintf(stderr, "sluice: test: cannot read directory '%s': %s\n", arg,
                    strerror(errno));
            return -1;
        }
        if (n == 0) {
            fprintf(stderr, "sluice: test: no *.test.yaml file in '%s'\n", arg);
            rc = -1;
        }
        for (int i = 0; i < n; i++) {
            size_t len = strlen(arg);
            if (rc == 0 && sl__strs_addf(files, "%s%s%s", arg,
                                         len && arg[len - 1] == '/' ? "" : "/",
                                         list[i]->d_name) != 0)
                rc = -1;
            free(list[i]);
        }
        free(list);
        return rc;
    }
    if (is_test_file(arg))
        return sl__strs_add(files, arg);
    /* a pipeline: its tests are beside it */
    size_t stem = strlen(arg);
    if (ends_with(arg, ".yaml"))
        stem -= 5;
    else if (ends_with(arg, ".yml"))
        stem -= 4;
    char *yaml = NULL, *yml = NULL;
    int rc = -1;
    if (asprintf(&yaml, "%.*s.test.yaml", (int)stem, arg) < 0)
        yaml = NULL;
    if (asprintf(&yml, "%.*s.test.yml", (int)stem, arg) < 0)
        yml = NULL;
    if (!yaml || !yml)
        fprintf(stderr, "sluice: test: out of memory\n");
    else if (exists(yaml))
        rc = sl__strs_add(files, yaml);
    else if (exists(yml))
        rc = sl__strs_add(files, yml);
    else
        fprintf(stderr, "sluice: test: %s has no tests: write them in %s (docs/testing.md)\n",
                arg, yaml);
    free(yaml);
    free(yml);
    return rc;
}

/* ------------------------------------------------------------ report */

static void print_diag_indented(const sl_diag *d, size_t from)
{
    char buf[2048];
    for (size_t i = from; i < d->n; i++)
        printf("  %s\n", sl_diag_format(d, i, buf, sizeof buf));
}

static void print_captures(const sl__test_outcome *oc)
{
    for (size_t i = 0; i < oc->n_caps; i++) {
        const sl__test_capture *c = &oc->caps[i];
        printf("  %s: %zu event%s\n", c->label, c->events.n, c->events.n == 1 ? "" : "s");
        for (size_t j = 0; j < c->events.n; j++)
            printf("    %s\n", c->events.v[j].json);
    }
}

/* Run one test and print its result. */
static int run_one(const sl__test_file *f, const sl__test_case *tc, const options *o, totals *t)
{
    sl__test_outcome oc;
    sl_diag d;
    sl__strs lines = {0};
    int failed = 0, rc = -1;
    char where[1200];

    sl_diag_init(&d);
    snprintf(where, sizeof where, "%s:%d \"%s\"", f->path, tc->at->line, tc->name);
    if (sl__test_run(f, tc, &o->run, &d, &oc) != 0) {
        fprintf(stderr, "sluice: test: out of memory\n");
        goto out;
    }
    switch (oc.status) {
    case SL__TEST_INTERRUPTED:
        t->interrupted = 1;
        printf("INTERRUPTED %s\n", where);
        rc = 0;
        goto out;
    case SL__TEST_TIMEOUT: {
        int64_t limit = tc->timeout_ns > 0 ? tc->timeout_ns : o->run.timeout_ns;
        printf("FAIL %s: timed out after %gs: the pipeline was stopped (raise the test's "
               "'timeout' if it needs longer)\n", where, (double)limit / 1e9);
        failed = 1;
        break;
    }
    case SL__TEST_ERROR:
        printf("FAIL %s: the test could not run:\n", where);
        print_diag_indented(&d, 0);
        failed = 1;
        break;
    case SL__TEST_RAN:
        for (size_t i = 0; i < tc->n_expects; i++) {
            const sl__test_expect *x = &tc->expects[i];
            const sl__test_capture *c = &oc.caps[oc.expect_cap[i]];
            size_t first = lines.n;
            int r = sl__test_check(&x->events, &x->rule, &c->events, &lines);
            if (r < 0) {
                fprintf(stderr, "sluice: test: out of memory\n");
                goto out;
            }
            if (r == 0)
                continue;
            failed = 1;
            printf("FAIL %s: %s\n", where, x->target);
            for (size_t k = first; k < lines.n; k++)
                printf("  %s\n", lines.v[k]);
        }
        if (!failed)
            printf("ok   %s (%.2f s)\n", where, oc.seconds);
        break;
    }
    if (o->verbose && oc.status == SL__TEST_RAN)
        print_captures(&oc);
    if (oc.dir)
        printf("  kept %s\n", oc.dir);
    if (failed)
        t->failed++;
    else
        t->passed++;
    rc = 0;
out:
    fflush(stdout);
    sl__strs_fini(&lines);
    sl__test_outcome_fini(&oc);
    sl_diag_fini(&d);
    return rc;
}

/* The base --set list plus a test's own, as one array (borrowed strings); NULL on OOM. */
static const char **all_sets(const options *o, const sl__test_case *tc, size_t *n)
{
    const char **v = calloc(o->run.n_sets + tc->sets.n + 1, sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < o->run.n_sets; i++)
        v[i] = o->run.sets[i];
    for (size_t i = 0; i < tc->sets.n; i++)
        v[o->run.n_sets + i] = tc->sets.v[i];
    *n = o->run.n_sets + tc->sets.n;
    return v;
}

/*
 * Check every selected test of f against its pipeline (loaded once for the
 * tests that share the file's settings). Prints the problems - those of
 * `found` (the test file's own) and these - on stderr, in file order, and
 * returns their number.
 */
static size_t check_file(const sl__test_file *f, const options *o, const char *selected,
                         sl_diag *found)
{
    sl_diag d;
    sl_pipeline *shared = NULL;
    int shared_failed = 0;
    size_t problems;

    sl_diag_init(&d);
    for (size_t i = 0; i < found->n; i++) /* the test file's own mistakes first */
        sl_diag_add(&d, found->items[i].file, found->items[i].line, found->items[i].col, "%s",
                    found->items[i].msg);
    for (size_t i = 0; f->pipeline && i < f->n_tests && !shared_failed; i++) {
        const sl__test_case *tc = &f->tests[i];
        sl_pipeline *p = NULL;
        size_t n = 0;
        if (!selected[i])
            continue;
        if (!tc->own_sets && shared) {
            sl__test_case_check(tc, shared, &d);
            continue;
        }
        const char **sets = all_sets(o, tc, &n);
        size_t before = d.n;
        if (!sets) {
            sl_diag_add(&d, f->path, 0, 0, "out of memory");
            break;
        }
        if (sl_pipeline_load(f->pipeline, sets, n, &d, &p) != 0) {
            if (tc->own_sets)
                sl_diag_add(&d, tc->at->file, tc->at->line, tc->at->col,
                            "test '%s': its pipeline %s does not load with the test's 'set' "
                            "(above)", tc->name, f->pipeline);
            shared_failed = !tc->own_sets && d.n > before;
        } else {
            sl__test_case_check(tc, p, &d);
        }
        free(sets);
        if (!tc->own_sets && p)
            shared = p;
        else
            sl_pipeline_destroy(&p);
    }
    sl_pipeline_destroy(&shared);
    sl_diag_print(&d, stderr);
    problems = d.n;
    sl_diag_fini(&d);
    return problems;
}

static int run_file(const char *path, const options *o, totals *t)
{
    sl__test_file *f = NULL;
    sl_diag d;
    char *selected = NULL;
    size_t n_selected = 0;
    int rc = -1;

    sl_diag_init(&d);
    if (sl__test_file_load(path, &d, &f) != 0) {
        sl_diag_print(&d, stderr);
        t->file_errors++;
        rc = 0;
        goto out;
    }
    selected = calloc(f->n_tests, 1);
    if (!selected)
        goto out;
    for (size_t i = 0; i < f->n_tests; i++) {
        selected[i] = !o->filter || strstr(f->tests[i].name, o->filter) != NULL;
        n_selected += selected[i];
    }
    t->selected += n_selected;
    if ((n_selected || d.n) && check_file(f, o, selected, &d) != 0) {
        fprintf(stderr, "sluice: test: %s: not run (mistakes above)\n", path);
        t->file_errors++;
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < f->n_tests && !t->interrupted; i++)
        if (selected[i] && run_one(f, &f->tests[i], o, t) != 0)
            goto out;
    rc = 0;
out:
    free(selected);
    sl__test_file_destroy(&f);
    sl_diag_fini(&d);
    return rc;
}

/* ---------------------------------------------------------------- CLI */

int sl_cli_test(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"set", required_argument, NULL, 's'},      {"run", required_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 't'},  {"verbose", no_argument, NULL, 'v'},
        {"plugin-dir", required_argument, NULL, 'D'}, {"keep", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    options o = {0};
    totals t = {0};
    sl__strs files = {0};
    sigset_t stops;
    int status = 1, ch;
    int64_t start = now_ns();
    char err[1024];

    /*
     * SIGINT/SIGTERM are only ever taken by sigtimedwait (sluice_test_run.c),
     * so a stop during a test ends it cleanly and removes its directory.
     */
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, NULL);

    o.run.timeout_ns = DEFAULT_TIMEOUT_NS;
    o.sets = calloc((size_t)argc + 1, sizeof *o.sets);
    if (!o.sets)
        goto out;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "s:vh", longopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            o.sets[o.run.n_sets++] = optarg;
            break;
        case 'r':
            o.filter = optarg;
            break;
        case 't':
            if (sl_parse_duration(optarg, &o.run.timeout_ns) != 0 || o.run.timeout_ns <= 0) {
                fprintf(stderr, "sluice: test: invalid --timeout '%s' (e.g. 30s, 2m)\n", optarg);
                status = 2;
                goto out;
            }
            break;
        case 'v':
            o.verbose = 1;
            break;
        case 'D':
            if (sl_plugin_load_dir(optarg, err, sizeof err) != 0) {
                fprintf(stderr, "sluice: %s\n", err);
                goto out;
            }
            break;
        case 'k':
            o.run.keep = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            status = 0;
            goto out;
        default:
            fputs(usage, stderr);
            status = 2;
            goto out;
        }
    }
    o.run.sets = o.sets;
    if (optind >= argc) {
        fprintf(stderr, "sluice: test: missing FILE\n%s", usage);
        status = 2;
        goto out;
    }
    for (int i = optind; i < argc; i++)
        if (add_files(argv[i], &files) != 0)
            goto out;
    /* the engine's info lines (e.g. dedup's summary) would drown the results */
    if (!o.verbose && !getenv("SLUICE_DEBUG"))
        sl_log_set_level("warn");

    for (size_t i = 0; i < files.n && !t.interrupted; i++)
        if (run_file(files.v[i], &o, &t) != 0) {
            fprintf(stderr, "sluice: test: out of memory\n");
            goto out;
        }
    if (t.interrupted) {
        printf("interrupted: %zu passed, %zu failed\n", t.passed, t.failed);
        status = 130;
        goto out;
    }
    if (!t.selected && !t.file_errors && o.filter) {
        fprintf(stderr, "sluice: test: no test name contains '%s'\n", o.filter);
        goto out;
    }
    printf("%zu passed, %zu failed", t.passed, t.failed);
    if (t.file_errors)
        printf(", %zu test file%s not run (mistakes above)", t.file_errors,
               t.file_errors == 1 ? "" : "s");
    printf(" (%.2f s)\n", (double)(now_ns() - start) / 1e9);
    status = t.failed || t.file_errors ? 1 : 0;
out:
    fflush(stdout);
    sl__strs_fini(&files);
    free(o.sets);
    return status;
}
