/*
 * sluice_log.c - `sluice log stats|tail|get|query|append`: the event log from
 * the command line (engine/eventlog.h, docs/eventlog.md).
 *
 * Events are printed one per line as {"offset": N, "event": {...}} (JSON,
 * `time` as RFC 3339 text), so a query's last offset is the --after of the
 * next page. Reading commands never create a log; `append` does. Exit status:
 * 0 done, 1 no log / a damaged log / not found / refused lines, 2 usage.
 */
#include "sluice_log.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "json.h"
#include "timefmt.h"

#define APPEND_BATCH 4096 /* lines per durable append in `append` */

static const char *const usage =
    "usage: sluice log <command> DIR [options]\n"
    "\n"
    "Inspect or feed the durable event log in directory DIR (sink.log, source.log).\n"
    "\n"
    "commands:\n"
    "  stats DIR [--json]          events, offsets, bytes, time range, types\n"
    "  tail DIR [-n N] [-f]        the last N events (default 10); -f: then follow appends\n"
    "  get DIR ID                  the event with this id\n"
    "  query DIR [--type T]... [--from TIME] [--to TIME] [--limit N]\n"
    "            [--after OFFSET] [--order asc|desc]\n"
    "                              events of these types with from <= time < to (RFC 3339),\n"
    "                              ordered by time; --after continues after that offset\n"
    "  append DIR FILE             append JSON lines (FILE '-' is stdin); durable on exit\n"
    "\n"
    "Events print as JSON lines {\"offset\": N, \"event\": {...}}.\n"
    "Exit status: 0 ok, 1 no log in DIR, damaged, not found or lines refused, 2 usage.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "sluice log: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

static sl_eventlog *open_log(const char *dir, int create)
{
    sl_eventlog_opts o = {.create = create};
    sl_eventlog *log = NULL;
    char err[512];
    if (sl_eventlog_open(dir, &o, &log, err, sizeof err) != 0)
        fprintf(stderr, "sluice log: %s\n", err);
    return log;
}

static int fail(const char *dir, int rc)
{
    fprintf(stderr, "sluice log: event log '%s': %s\n", dir, sl_eventlog_strerror(rc));
    return 1;
}

/* Print {"offset":N,"event":...} and a newline. Returns 0 or -1 (not msgpack, or stdout). */
static int print_event(sl_wbuf *w, const sl_eventlog_event *ev)
{
    char head[48];
    sl_wbuf_reset(w);
    int n = snprintf(head, sizeof head, "{\"offset\":%" PRIu64 ",\"event\":", ev->offset);
    if (sl_wbuf_append(w, head, (size_t)n) != 0 || sl_msgpack_to_json(ev->data, ev->len, w) != 0 ||
        sl_wbuf_append(w, "}\n", 2) != 0)
        return -1;
    return fwrite(w->data, 1, w->len, stdout) == w->len ? 0 : -1;
}

static void time_text(int64_t ns, char *buf)
{
    if (ns == 0)
        strcpy(buf, "-");
    else
        sl_time_format(ns, buf);
}

static void human(uint64_t b, char *buf, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = (double)b;
    int u = 0;
    while (x >= 1024 && u < 4) {
        x /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", x, unit[u]);
}

/* ------------------------------------------------------------ stats */

static int cmd_stats(int argc, char **argv)
{
    int json = 0;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (argv[i][0] == '-' && argv[i][1])
            return usage_error("stats: unknown option '%s'", argv[i]);
        else if (!dir)
            dir = argv[i];
        else
            return usage_error("stats: unexpected argument '%s'", argv[i]);
    }
    if (!dir)
        return usage_error("stats: missing DIR%s", "");
    sl_eventlog *log = open_log(dir, 0);
    if (!log)
        return 1;
    sl_eventlog_stats s;
    int rc = sl_eventlog_stats_get(log, &s);
    sl_eventlog_close(&log);
    if (rc != 0)
        return fail(dir, rc);
    char t[4][40];
    time_text(s.oldest_append_ns, t[0]);
    time_text(s.newest_append_ns, t[1]);
    time_text(s.first_time_ns, t[2]);
    time_text(s.last_time_ns, t[3]);
    if (json) {
        sl_wbuf w = {0};
        sl_mp_write_cstr(&w, dir);
        sl_wbuf dj = {0};
        sl_msgpack_to_json(w.data, w.len, &dj);
        printf("{\"dir\":%.*s,\"events\":%" PRIu64 ",\"first_offset\":%" PRIu64
               ",\"next_offset\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"file_bytes\":%" PRIu64
               ",\"used_bytes\":%" PRIu64 ",\"map_size\":%" PRIu64 ",\"types\":%" PRIu64,
               (int)dj.len, (const char *)dj.data, s.count, s.first_offset, s.next_offset, s.bytes,
               s.file_bytes, s.used_bytes, s.map_size, s.types);
        if (s.count)
            printf(",\"last_offset\":%" PRIu64 ",\"oldest_append\":\"%s\",\"newest_append\":\"%s\""
                   ",\"first_time\":\"%s\",\"last_time\":\"%s\"}\n",
                   s.next_offset - 1, t[0], t[1], t[2], t[3]);
        else
            printf(",\"last_offset\":null,\"oldest_append\":null,\"newest_append\":null"
                   ",\"first_time\":null,\"last_time\":null}\n");
        sl_wbuf_fini(&w);
        sl_wbuf_fini(&dj);
    } else {
        char b[4][32];
        human(s.bytes, b[0], sizeof b[0]);
        human(s.file_bytes, b[1], sizeof b[1]);
        human(s.used_bytes, b[2], sizeof b[2]);
        human(s.map_size, b[3], sizeof b[3]);
        printf("log           %s\n", dir);
        printf("events        %" PRIu64 "\n", s.count);
        if (s.count)
            printf("offsets       %" PRIu64 " .. %" PRIu64 "  (next %" PRIu64 ", %" PRIu64
                   " removed by retention)\n",
                   s.first_offset, s.next_offset - 1, s.next_offset, s.first_offset);
        else
            printf("offsets       none  (next %" PRIu64 ")\n", s.next_offset);
        printf("bytes         %s of events  (file %s, %s in use, map %s)\n", b[0], b[1], b[2],
               b[3]);
        printf("appended      %s .. %s\n", t[0], t[1]);
        printf("event time    %s .. %s  (first and last event)\n", t[2], t[3]);
        printf("types         %" PRIu64 "\n", s.types);
    }
    return ferror(stdout) ? 1 : 0;
}

/* ------------------------------------------------------------ tail */

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || *s == '-')
        return -1;
    *out = v;
    return 0;
}

/* Print every event from the reader's offset to the end. Returns 0 or an exit status. */
static int drain(sl_eventlog_reader *r, const char *dir, sl_wbuf *w)
{
    sl_eventlog_event evs[256];
    int n;
    while ((n = sl_eventlog_reader_next(r, evs, 256)) > 0)
        for (int i = 0; i < n; i++)
            if (print_event(w, &evs[i]) != 0) {
                fprintf(stderr, "sluice log: cannot write the event at offset %" PRIu64 "\n",
                        evs[i].offset);
                return 1;
            }
    if (n < 0)
        return fail(dir, n);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_tail(int argc, char **argv)
{
    static const struct option opts[] = {
        {"lines", required_argument, NULL, 'n'}, {"follow", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    uint64_t count = 10;
    int follow = 0, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "n:fh", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            if (parse_u64(optarg, &count) != 0)
                return usage_error("tail: invalid -n '%s' (expected a count)", optarg);
            break;
        case 'f': follow = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind != argc - 1)
        return usage_error("tail: expected one DIR%s", "");
    const char *dir = argv[optind];
    sl_eventlog *log = open_log(dir, 0);
    if (!log)
        return 1;
    uint64_t first, next;
    sl_eventlog_reader *r = NULL;
    sl_wbuf w = {0};
    int rc = sl_eventlog_bounds(log, &first, &next), status;
    if (rc == 0)
        rc = sl_eventlog_reader_open(log, next - first > count ? next - count : first, &r);
    if (rc != 0) {
        status = fail(dir, rc);
        goto out;
    }
    while ((status = drain(r, dir, &w)) == 0 && follow)
        if ((rc = sl_eventlog_wait(log, sl_eventlog_reader_offset(r), 200000000ll)) < 0) {
            status = fail(dir, rc);
            break;
        }
out:
    sl_wbuf_fini(&w);
    sl_eventlog_reader_close(&r);
    sl_eventlog_close(&log);
    return status;
}

/* ------------------------------------------------------------ get */

static int cmd_get(int argc, char **argv)
{
    if (argc != 3)
        return usage_error("get: expected DIR ID%s", "");
    sl_eventlog *log = open_log(argv[1], 0);
    if (!log)
        return 1;
    sl_wbuf copy = {0}, w = {0};
    sl_eventlog_event ev;
    int rc = sl_eventlog_get(log, argv[2], strlen(argv[2]), &ev, &copy), status = 0;
    if (rc < 0)
        status = fail(argv[1], rc);
    else if (rc == 1) {
        fprintf(stderr, "sluice log: no event with id '%s' in '%s'\n", argv[2], argv[1]);
        status = 1;
    } else if (print_event(&w, &ev) != 0 || fflush(stdout) != 0) {
        status = 1;
    }
    sl_wbuf_fini(&copy);
    sl_wbuf_fini(&w);
    sl_eventlog_close(&log);
    return status;
}

/* ------------------------------------------------------------ query */

typedef struct printer {
    sl_wbuf w;
    int failed;
} printer;

static int print_visit(void *arg, const sl_eventlog_event *ev)
{
    printer *p = arg;
    if (print_event(&p->w, ev) != 0)
        p->failed = 1;
    return p->failed;
}

static int cmd_query(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},  {"from", required_argument, NULL, 'F'},
        {"to", required_argument, NULL, 'T'},    {"limit", required_argument, NULL, 'l'},
        {"after", required_argument, NULL, 'a'}, {"order", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    sl_eventlog_query q = {.from_ns = INT64_MIN, .to_ns = INT64_MAX};
    const char **types = calloc((size_t)argc + 1, sizeof *types);
    int ch, status = 2;
    if (!types)
        return 1;
    q.types = types;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 't': types[q.n_types++] = optarg; break;
        case 'F':
        case 'T':
            if (sl_time_parse(optarg, strlen(optarg), ch == 'F' ? &q.from_ns : &q.to_ns) != 0) {
                usage_error("query: invalid time '%s' (expected RFC 3339, e.g. "
                            "2026-01-01T00:00:00Z)", optarg);
                goto out;
            }
            break;
        case 'l':
            if (parse_u64(optarg, &q.limit) != 0) {
                usage_error("query: invalid --limit '%s'", optarg);
                goto out;
            }
            break;
        case 'a':
            if (parse_u64(optarg, &q.after) != 0) {
                usage_error("query: invalid --after '%s' (expected an offset)", optarg);
                goto out;
            }
            q.has_after = 1;
            break;
        case 'o':
            if (strcmp(optarg, "asc") != 0 && strcmp(optarg, "desc") != 0) {
                usage_error("query: invalid --order '%s' (expected asc or desc)", optarg);
                goto out;
            }
            q.desc = optarg[0] == 'd';
            break;
        case 'h': fputs(usage, stdout); status = 0; goto out;
        default: fputs(usage, stderr); goto out;
        }
    }
    if (optind != argc - 1) {
        usage_error("query: expected one DIR%s", "");
        goto out;
    }
    if (q.from_ns > q.to_ns) {
        usage_error("query: --from is after --to%s", "");
        goto out;
    }
    const char *dir = argv[optind];
    sl_eventlog *log = open_log(dir, 0);
    status = 1;
    if (!log)
        goto out;
    printer p = {{0}, 0};
    int64_t n = sl_eventlog_query_run(log, &q, print_visit, &p);
    if (n == -ENOENT)
        fprintf(stderr, "sluice log: the event at offset %" PRIu64 " (--after) is no longer in "
                "the log (retention removed it)\n", q.after);
    else if (n < 0)
        fail(dir, (int)n);
    else if (!p.failed && fflush(stdout) == 0)
        status = 0;
    sl_wbuf_fini(&p.w);
    sl_eventlog_close(&log);
out:
    free(types);
    return status;
}

/* ------------------------------------------------------------ append */

typedef struct importer {
    sl_eventlog *log;
    const char *file;
    sl_wbuf events;                  /* msgpack back to back */
    size_t ends[APPEND_BATCH];
    uint64_t lines[APPEND_BATCH];    /* line number of each */
    const uint8_t *evs[APPEND_BATCH];
    size_t lens[APPEND_BATCH];
    sl_eventlog_result res[APPEND_BATCH];
    size_t n;
    uint64_t appended, duplicates, refused;
    uint64_t first_off, last_off;
} importer;

static int flush_batch(importer *im)
{
    for (size_t i = 0; i < im->n; i++) {
        size_t s = i ? im->ends[i - 1] : 0;
        im->evs[i] = im->events.data + s;
        im->lens[i] = im->ends[i] - s;
    }
    int rc = im->n ? sl_eventlog_append(im->log, im->evs, im->lens, im->n, im->res) : 0;
    if (rc < 0) {
        fprintf(stderr, "sluice log: appending to '%s': %s\n", sl_eventlog_dir(im->log),
                sl_eventlog_strerror(rc));
        return -1;
    }
    for (size_t i = 0; i < im->n; i++) {
        if (im->res[i].status == SL_EVENTLOG_APPENDED) {
            if (!im->appended++)
                im->first_off = im->res[i].offset;
            im->last_off = im->res[i].offset;
        } else if (im->res[i].status == SL_EVENTLOG_DUPLICATE) {
            im->duplicates++;
        } else {
            fprintf(stderr, "%s:%" PRIu64 ": refused: %s\n", im->file, im->lines[i],
                    im->res[i].why);
            im->refused++;
        }
    }
    im->n = 0;
    sl_wbuf_reset(&im->events);
    return 0;
}

static int cmd_append(int argc, char **argv)
{
    if (argc != 3)
        return usage_error("append: expected DIR FILE%s", "");
    const char *dir = argv[1], *file = argv[2];
    int is_stdin = strcmp(file, "-") == 0;
    FILE *in = is_stdin ? stdin : fopen(file, "r");
    if (!in) {
        fprintf(stderr, "sluice log: cannot open '%s': %s\n", file, strerror(errno));
        return 1;
    }
    importer *im = calloc(1, sizeof *im);
    sl_json_parser *jp = sl_json_parser_new();
    char *line = NULL;
    size_t cap = 0;
    int status = 1;
    if (!im || !jp)
        goto out;
    im->file = is_stdin ? "stdin" : file;
    if (!(im->log = open_log(dir, 1)))
        goto out;
    uint64_t lineno = 0;
    ssize_t len;
    char err[256];
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        size_t k = 0;
        while (k < (size_t)len && (line[k] == ' ' || line[k] == '\t'))
            k++;
        if (k == (size_t)len)
            continue; /* blank */
        if (cap < (size_t)len + SL_JSON_PADDING) { /* the parser reads past the end */
            char *l = realloc(line, (size_t)len + SL_JSON_PADDING);
            if (!l)
                goto out;
            line = l;
            cap = (size_t)len + SL_JSON_PADDING;
        }
        if (sl_json_to_msgpack(jp, line, (size_t)len, cap, 1, &im->events, err, sizeof err) != 0) {
            fprintf(stderr, "%s:%" PRIu64 ": refused: %s\n", im->file, lineno, err);
            im->refused++;
            continue;
        }
        im->lines[im->n] = lineno;
        im->ends[im->n++] = im->events.len;
        if (im->n == APPEND_BATCH && flush_batch(im) != 0)
            goto out;
    }
    if (ferror(in)) {
        fprintf(stderr, "sluice log: reading '%s': %s\n", im->file, strerror(errno));
        goto out;
    }
    if (flush_batch(im) != 0)
        goto out;
    if (im->appended)
        printf("appended %" PRIu64 " (offsets %" PRIu64 "..%" PRIu64 "), duplicates %" PRIu64
               ", refused %" PRIu64 "\n",
               im->appended, im->first_off, im->last_off, im->duplicates, im->refused);
    else
        printf("appended 0, duplicates %" PRIu64 ", refused %" PRIu64 "\n", im->duplicates,
               im->refused);
    status = im->refused ? 1 : 0;
out:
    if (im) {
        sl_eventlog_close(&im->log);
        sl_wbuf_fini(&im->events);
    }
    free(im);
    free(line);
    sl_json_parser_destroy(&jp);
    if (!is_stdin)
        fclose(in);
    return status;
}

int sl_cli_log(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    argc--;
    argv++;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
    if (strcmp(cmd, "stats") == 0)
        return cmd_stats(argc, argv);
    if (strcmp(cmd, "tail") == 0)
        return cmd_tail(argc, argv);
    if (strcmp(cmd, "get") == 0)
        return cmd_get(argc, argv);
    if (strcmp(cmd, "query") == 0)
        return cmd_query(argc, argv);
    if (strcmp(cmd, "append") == 0)
        return cmd_append(argc, argv);
    return usage_error("unknown command '%s'", cmd);
}
