/*
 * sluice_top.c - `sluice top`: a live view of a running pipeline from its
 * admin endpoint (docs/operations.md).
 *
 * Every interval it reads /api/pipeline and prints one row per operator with
 * the rates since the previous read: events in and out per second, errors,
 * how busy the operator is (share of its time spent processing batches),
 * how much of its time it waited on a full downstream queue (backpressure),
 * the batches queued at its input, how far its watermark is behind the wall
 * clock, and its state. The busiest operator that is not itself held back is
 * named as the bottleneck. On a terminal the screen is redrawn in place;
 * otherwise (or with --once) frames are printed one after another.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin_client.h"
#include "error.h"
#include "pipeline.h"
#include "sluice_top.h"
#include "timefmt.h"

static const char *const usage_top =
    "usage: sluice top ADDR|FILE [--interval DURATION] [--once] [--count N]\n"
    "\n"
    "Show a running pipeline live: per operator events in/out per second, errors,\n"
    "busy (share of time processing), backpressure (share of time waiting on a\n"
    "full downstream queue), input queue, watermark lag and state, refreshed every\n"
    "interval; and which operator is the bottleneck. ADDR is the pipeline's admin\n"
    "address (HOST:PORT, as in its `admin: {listen}`); given the pipeline FILE, its\n"
    "admin.listen is used. Ctrl-C quits.\n"
    "\n"
    "  --interval D   time between refreshes (default 1s)\n"
    "  --once         print one frame (rates over one interval) and exit\n"
    "  --count N      print N frames and exit\n";

static volatile sig_atomic_t quit;
static void on_signal(int sig) { quit = sig; }

static void fmt_duration(char *b, size_t n, double s)
{
    if (s < 0)
        snprintf(b, n, "-");
    else if (s < 1)
        snprintf(b, n, "%.0fms", s * 1e3);
    else if (s < 120)
        snprintf(b, n, "%.1fs", s);
    else if (s < 7200)
        snprintf(b, n, "%.0fm", s / 60);
    else if (s < 172800)
        snprintf(b, n, "%.0fh", s / 3600);
    else
        snprintf(b, n, "%.0fd", s / 86400);
}

static void fmt_pct(char *b, size_t n, double f, int known)
{
    if (!known)
        snprintf(b, n, "-");
    else
        snprintf(b, n, "%.0f%%", f * 100 > 999 ? 999 : f * 100);
}

static void frame(const char *addr, const sl_sample *a, const sl_sample *b, int tty)
{
    if (tty)
        fputs("\033[H\033[2J", stdout); /* home, clear */
    char up[16], ck[128] = "";
    fmt_duration(up, sizeof up, b->uptime_s);
    if (b->has_ckpt && b->ckpt_last) {
        char age[16], pause[16];
        fmt_duration(age, sizeof age, b->ckpt_age_s);
        fmt_duration(pause, sizeof pause, b->ckpt_pause_s);
        snprintf(ck, sizeof ck, "   checkpoint %llu, %s ago (pause %s)",
                 (unsigned long long)b->ckpt_last, age, pause);
    } else if (b->has_ckpt) {
        snprintf(ck, sizeof ck, "   no checkpoint yet");
    }
    printf("sluice top: %s at %s   up %s%s\n\n", b->pipeline, addr, up, ck);
    printf("%-18s %-16s %8s %8s %7s %5s %6s %5s %8s %9s\n", "OPERATOR", "TYPE", "IN/s", "OUT/s",
           "ERR/s", "BUSY", "BACKPR", "QUEUE", "WM LAG", "STATE");
    for (size_t i = 0; i < b->n_ops; i++) {
        const sl_op_sample *o = &b->ops[i];
        sl_op_rates r;
        sl_sample_rates(a, b, i, &r);
        char in[16], out[16], err[16], busy[8], bp[8], q[24], lag[16], st[16], name[32];
        if (o->source)
            snprintf(in, sizeof in, "-");
        else
            sl_metrics_human(in, sizeof in, r.in);
        if (o->sink)
            snprintf(out, sizeof out, "-");
        else
            sl_metrics_human(out, sizeof out, r.out);
        sl_metrics_human(err, sizeof err, r.errors);
        fmt_pct(busy, sizeof busy, r.busy, b->timing && !o->source);
        fmt_pct(bp, sizeof bp, r.backpressure, 1);
        if (o->queue >= 0)
            snprintf(q, sizeof q, "%lld", (long long)o->queue);
        else
            snprintf(q, sizeof q, "-");
        fmt_duration(lag, sizeof lag, o->has_wm ? o->wm_lag_s : -1);
        if (o->state_bytes >= 0) {
            sl_metrics_human(st, sizeof st, (double)o->state_bytes);
            strncat(st, "B", sizeof st - strlen(st) - 1);
        } else {
            snprintf(st, sizeof st, "-");
        }
        if (o->parallelism > 1)
            snprintf(name, sizeof name, "%.12s x%u", o->name, o->parallelism);
        else
            snprintf(name, sizeof name, "%.18s", o->name);
        printf("%-18s %-16.16s %8s %8s %7s %5s %6s %5s %8s %9s\n", name, o->type, in, out, err,
               busy, bp, q, lag, st);
    }
    long bn = sl_sample_bottleneck(a, b);
    if (!b->timing)
        printf("\n(busy is measured only with an admin endpoint's timing on)\n");
    else if (bn >= 0) {
        sl_op_rates r;
        sl_sample_rates(a, b, (size_t)bn, &r);
        printf("\nbottleneck: %s (%s) is busy %.0f%% of the time", b->ops[bn].name,
               b->ops[bn].type, r.busy * 100);
        double up_bp = 0;
        for (size_t i = 0; i < b->n_ops; i++) {
            sl_op_rates u;
            sl_sample_rates(a, b, i, &u);
            if (u.backpressure > up_bp)
                up_bp = u.backpressure;
        }
        if (up_bp >= 0.05)
            printf("; upstream waits on it up to %.0f%% of the time", up_bp * 100);
        printf("\n");
    } else {
        printf("\nno bottleneck: no operator is busy half of the time (the sources set the pace)\n");
    }
    fflush(stdout);
}

static int admin_of_file(const char *file, char *addr, size_t n)
{
    sl_diag d;
    sl_diag_init(&d);
    sl_pipeline *p = NULL;
    int rc = -1;
    if (sl_pipeline_load(file, NULL, 0, &d, &p) != 0) {
        sl_diag_print(&d, stderr);
    } else if (!p->admin_listen) {
        fprintf(stderr, "sluice: top: %s has no `admin: {listen: HOST:PORT}` block\n", file);
    } else {
        snprintf(addr, n, "%s", p->admin_listen);
        rc = 0;
    }
    sl_pipeline_destroy(&p);
    sl_diag_fini(&d);
    return rc;
}

int sl_cli_top(int argc, char **argv)
{
    static const struct option opts[] = {
        {"interval", required_argument, NULL, 'i'},
        {"once", no_argument, NULL, '1'},
        {"count", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int64_t interval = 1000000000;
    long count = -1;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'i':
            if (sl_parse_duration(optarg, &interval) != 0 || interval < 10000000) {
                fprintf(stderr, "sluice: top: invalid --interval '%s' (at least 10ms)\n", optarg);
                return 2;
            }
            break;
        case '1': count = 1; break;
        case 'n':
            count = strtol(optarg, NULL, 10);
            if (count < 1) {
                fprintf(stderr, "sluice: top: --count must be at least 1\n");
                return 2;
            }
            break;
        case 'h': fputs(usage_top, stdout); return 0;
        default: fputs(usage_top, stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "sluice: top: %s\n%s", optind >= argc ? "missing ADDR" : "too many arguments",
                usage_top);
        return 2;
    }
    char addr[512];
    const char *arg = argv[optind];
    if (access(arg, R_OK) == 0 && strstr(arg, ".yaml")) {
        if (admin_of_file(arg, addr, sizeof addr) != 0)
            return 1;
    } else {
        snprintf(addr, sizeof addr, "%s", arg);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int tty = isatty(STDOUT_FILENO) && count != 1;
    char err[512];
    sl_sample prev, cur;
    if (sl_admin_fetch(addr, &prev, err, sizeof err) != 0) {
        fprintf(stderr, "sluice: top: %s\n", err);
        return 1;
    }
    int status = 0;
    for (long shown = 0; !quit && (count < 0 || shown < count); shown++) {
        struct timespec ts = {.tv_sec = interval / 1000000000, .tv_nsec = interval % 1000000000};
        while (nanosleep(&ts, &ts) != 0 && !quit)
            ;
        if (quit)
            break;
        if (sl_admin_fetch(addr, &cur, err, sizeof err) != 0) {
            fprintf(stderr, "sluice: top: %s\n", err);
            status = 1; /* the pipeline ended or went away */
            break;
        }
        frame(addr, &prev, &cur, tty);
        sl_sample_fini(&prev);
        prev = cur;
    }
    sl_sample_fini(&prev);
    return status;
}
