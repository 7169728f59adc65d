#!/usr/bin/env python3
"""bench.py - sluice's benchmark harness: events/s and peak RSS of a few
pipelines, each beside a hand-written C loop doing the same work.

  tools/bench/bench.py [BUILDDIR]         (default: build/)
  meson test -C BUILDDIR --benchmark -v   (the same, run by meson)

Scenarios (docs/benchmarks.md says what each measures):
  gen->null             source.generator -> sink.null
  file->file            source.file (JSON lines) -> sink.file (JSON lines)
  gen->4xid->null       source.generator -> 4 identity -> sink.null, fused
  ... --no-fusion       the same, one thread per operator, batches over ZeroMQ
  gen->filter->null     a filter, type.startsWith("order.") && data.total > 100.0
  gen->transform->null  a transform computing 5 fields from data (id, time kept)
  gen->agg(status)->null    aggregate: count() and sum(data.total) per 1-minute
                            tumbling window and data.status (watermark 10s, LMDB state)
  gen->agg(customer)->null  the same per data.customerId, 1M distinct customers
  gen->dedup->null      dedup by id (capacity 10M, 1% error rate) of the generator's
                        stream with 1% re-sent events
  gen->join->null       route orders/payments, join them on data.orderId within 90s

Every figure is the whole process timed from outside (wall clock from spawn
to exit, peak RSS from GNU time's %M), for the engine and the loop alike.
Each command runs BENCH_REPEAT times (3), engine and loop taking turns; the
fastest run is reported, and the largest peak RSS. Nothing is asserted: it
prints numbers (timing assertions would make tests flaky), and fails only if
a command fails or a scenario's output differs from the loop's (file->file
compares the timed outputs; filter and transform run once more, untimed,
into msgpack files that must be byte for byte the loop's; the aggregates
run once more into JSON lines, which must hold as many rows as the loop
built). The aggregates' state directory is emptied before each run and its
size (du) taken after it: the LMDB size printed below the table.

Environment:
  BENCH_SCALE=0.1    scale the event counts (10M generated, 1M from file)
  BENCH_REPEAT=3     runs per command
  BENCH_ONLY=a,h,i   run only these scenarios (by letter, as logged)
  SLUICE_SHARED      where shared/bench/gen_events.py is (default ../shared)

The input of file->file is made once by gen_events.py (about 17 s per 1M
events) and cached in BUILDDIR/bench-data/. Standard library only.
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

GEN_EVENTS = 10_000_000
FILE_EVENTS = 1_000_000
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None  # GNU time, for RSS
HOPS = 4
BATCH = "batch: {max_events: 1024, linger: 5ms}"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_once(argv, cwd):
    """Run argv; return (wall s, peak RSS KiB or None, CPU s or None, stdout text).

    Peak RSS comes from GNU time, not from our own wait4: Linux carries the
    high-water mark of the image a process exec'd from into its ru_maxrss, so a
    child forked from this Python process would report at least Python's RSS.
    /usr/bin/time forks the command from a ~1 MiB image, which is the floor.
    """
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss:
        cmd = ([TIME, "-f", "%M %U %S", "-o", rss.name] if TIME else []) + argv
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=cwd, stdout=out, stdin=subprocess.DEVNULL)
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            raise SystemExit("bench: %s exited with status %d" % (" ".join(argv), proc.returncode))
        out.seek(0)
        text = out.read().decode(errors="replace")
        peak, cpu = None, None
        if TIME:
            f = rss.read().split()
            peak, cpu = int(f[-3]), float(f[-2]) + float(f[-1])
    return wall, peak, cpu, text


def disk_usage(path):
    """Bytes allocated on disk under path, as du counts them (0 if it is missing)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for f in files + dirs:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def measure(cmds, cwd, repeat, state_sizes=None):
    """Run each (name, argv, expected events or None[, state dir]) `repeat` times, round
    robin, so that a burst of load from elsewhere on the machine hits them alike. A
    state dir is removed before each run and its size after it goes to
    state_sizes[name] (the largest over the runs). Returns, per command, (best wall
    time, largest peak RSS, CPU time of the best run)."""
    res = [[None, 0, None] for _ in cmds]
    for i in range(repeat):
        for (name, argv, expect, *state), r in zip(cmds, res):
            if state:
                shutil.rmtree(state[0], ignore_errors=True)
            wall, peak, cpu, text = run_once(argv, cwd)
            if state:
                size = disk_usage(state[0])
                state_sizes[name] = max(state_sizes.get(name, 0), size)
                shutil.rmtree(state[0], ignore_errors=True)
            if expect is not None:
                # the loop prints "EVENTS SECONDS": check it did all the work
                got = int(text.split()[0])
                if got != expect:
                    raise SystemExit("bench: %s: %d events, expected %d" % (name, got, expect))
            log("  %-28s run %d/%d: %7.3f s wall  %s CPU  %s" %
                (name, i + 1, repeat, wall, "%.2f s" % cpu if cpu is not None else "n/a",
                 human_rss(peak)))
            if r[0] is None or wall < r[0]:
                r[0], r[2] = wall, cpu
            r[1] = max(r[1], peak or 0)
    return [tuple(r) for r in res]


def shared_dir():
    d = os.environ.get("SLUICE_SHARED") or os.path.join(ROOT, "..", "shared")
    if not os.path.isfile(os.path.join(d, "bench", "gen_events.py")):
        raise SystemExit("bench: cannot find shared/bench/gen_events.py (looked in %s; "
                         "set SLUICE_SHARED)" % d)
    return d


def events_file(data_dir, count):
    """The JSON-lines input of file->file, generated once and cached."""
    path = os.path.join(data_dir, "events-%d-seed7.jsonl" % count)
    if os.path.exists(path):
        return path
    os.makedirs(data_dir, exist_ok=True)
    script = os.path.join(shared_dir(), "bench", "gen_events.py")
    log("bench: generating %d events into %s (once)" % (count, path))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        subprocess.run([sys.executable, script, "--count", str(count), "--seed", "7"],
                       stdout=f, check=True)
    os.replace(tmp, path)
    return path


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def pipelines(tmp, gen_n, in_path, out_path):
    """The scenarios' pipeline files, written into tmp."""
    a = write(os.path.join(tmp, "gen-null.yaml"), f"""\
pipeline: bench-gen-null
{BATCH}
operators:
  gen: {{type: source.generator, count: {gen_n}, seed: 7}}
  sink: {{type: sink.null, input: gen}}
""")
    b = write(os.path.join(tmp, "file-file.yaml"), f"""\
pipeline: bench-file-file
{BATCH}
operators:
  events: {{type: source.file, path: {json.dumps(in_path)}, format: jsonl}}
  copy: {{type: sink.file, input: events, path: {json.dumps(out_path)}, format: jsonl}}
""")
    hops = "".join("  hop%d: {type: identity, input: %s}\n" %
                   (i, "gen" if i == 1 else "hop%d" % (i - 1)) for i in range(1, HOPS + 1))
    c = write(os.path.join(tmp, "gen-chain-null.yaml"), f"""\
pipeline: bench-gen-chain-null
{BATCH}
operators:
  gen: {{type: source.generator, count: {gen_n}, seed: 7}}
{hops}  sink: {{type: sink.null, input: hop{HOPS}}}
""")
    return a, b, c


FILTER_WHERE = 'type.startsWith("order.") && data.total > 100.0'
TRANSFORM_FIELDS = ("{orderId: data.orderId, customerId: data.customerId, amount: data.total, "
                    "status: data.status, items: data.items}")


def stateless_pipelines(tmp, gen_n, out_path):
    """(d) filter and (e) transform, each into sink.null (timed) and into a msgpack
    file (checked against the loop's output). Returns {name: (timed, checked)}."""
    ops = {"filter": "{type: filter, input: gen, where: %s}" % json.dumps(FILTER_WHERE),
           "transform": "{type: transform, input: gen, fields: %s}" % TRANSFORM_FIELDS}
    res = {}
    for name, op in ops.items():
        files = []
        for sink in ("{type: sink.null, input: op}",
                     "{type: sink.file, input: op, path: %s, format: msgpack}" %
                     json.dumps(out_path)):
            files.append(write(os.path.join(tmp, "gen-%s-%d-%d.yaml" % (name, gen_n, len(files))), f"""\
pipeline: bench-gen-{name}
{BATCH}
operators:
  gen: {{type: source.generator, count: {gen_n}, seed: 7}}
  op: {op}
  sink: {sink}
"""))
        res[name] = tuple(files)
    return res


def aggregate_ops(window, group_by):
    return f"""\
  op:
    type: aggregate
    input: gen
    windows: [{{tumbling: {window}}}]
    group_by: {group_by}
    where: has(data.total)
    compute: {{n: count(), total: sum(data.total)}}"""


STATEFUL_SCENARIOS = (
    # tag, row name, the generator's extra parameters, the operators after it (the last one
    # named op), the loop's command
    ("f", "agg(status)", "", aggregate_ops("1m", "[[data.status]]"), "agg-status"),
    # one window of 1 day: 10M events from 1M customers put ~1M groups in it, more than
    # the default memory budget (128MiB) holds, so the aggregate spills to LMDB
    ("g", "agg(customer)", "\n    customers: 1000000", aggregate_ops("1d", "[[data.customerId]]"),
     "agg-customer"),
    ("h", "dedup", "", """\
  op:
    type: dedup
    input: gen
    key: id
    capacity: 10000000
    error_rate: 0.01
    horizon: 24h""", "dedup"),
    ("i", "join", "", """\
  split:
    type: route
    input: gen
    routes: {orders: 'type.startsWith("order.")', payments: 'type == "payment.processed"'}
  op:
    type: join
    left: split.orders
    right: split.payments
    on: {left: data.orderId, right: data.orderId}
    within: 90s
    fields: {orderId: left.data.orderId, total: left.data.total, amount: right.data.amount}""",
     "join"),
)


def stateful_pipelines(tmp, gen_n, tag, name, gen_extra, ops, state_dir, out_path):
    """(f)-(i): source.generator (watermark 10s) -> ops -> sink.null (timed) or sink.file
    JSON lines (rows counted). Returns (timed, checked)."""
    files = []
    for sink in ("{type: sink.null, input: op}",
                 "{type: sink.file, input: op, path: %s}" % json.dumps(out_path)):
        files.append(write(os.path.join(tmp, "gen-%s-%d-%d.yaml" % (tag, gen_n, len(files))), f"""\
pipeline: bench-{tag}
state_dir: {json.dumps(state_dir)}
{BATCH}
operators:
  gen:
    type: source.generator
    count: {gen_n}
    seed: 7{gen_extra}
    watermark: {{max_out_of_order: 10s}}
{ops}
  sink: {sink}
"""))
    return tuple(files)


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return n
            n += b.count(b"\n")


def same_file(p, q):
    if os.path.getsize(p) != os.path.getsize(q):
        return False
    with open(p, "rb") as f, open(q, "rb") as g:
        while True:
            x, y = f.read(1 << 20), g.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def machine_info(build):
    lines = []
    try:
        ncpu = len(os.sched_getaffinity(0))
    except AttributeError:
        ncpu = os.cpu_count()
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = "%.1f GiB" % (kib / 1024 / 1024)
    except (OSError, ValueError, IndexError):
        pass
    lines.append("machine: %d CPUs usable (nproc), %s, %s RAM, %s %s" %
                 (ncpu, model, mem, platform.system(), platform.release()))
    buildtype = "?"
    try:
        with open(os.path.join(build, "meson-info", "intro-buildoptions.json")) as f:
            for o in json.load(f):
                if o["name"] in ("buildtype", "b_sanitize"):
                    if o["name"] == "buildtype":
                        buildtype = o["value"]
                    elif o["value"] not in ("none", []):
                        buildtype += " sanitize=%s" % o["value"]
    except (OSError, ValueError, KeyError):
        pass
    cc = "?"
    try:
        with open(os.path.join(build, "meson-logs", "meson-log.txt")) as f:
            for line in f:
                if line.startswith("C compiler for the host machine:"):
                    # "cc (gcc 12.2.0 "cc (Debian ...) 12.2.0")": keep "gcc 12.2.0"
                    m = re.search(r"\((\S+ [0-9][^ \"]*)", line)
                    cc = m.group(1) if m else line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    rev = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "?"
    lines.append("build: %s, %s, buildtype %s, sluice %s" % (build, cc, buildtype, rev))
    if buildtype not in ("release", "debugoptimized", "?"):
        lines.append("warning: buildtype %s: these numbers say little about a release build"
                     % buildtype)
    return lines


def human_rate(ev_s):
    return "%.2fM" % (ev_s / 1e6) if ev_s >= 1e5 else "%.0fk" % (ev_s / 1e3)


def human_rss(kib):
    return "%.1f MiB" % (kib / 1024) if kib else "n/a"


def human_bytes(n):
    return "%.1f MiB" % (n / 1048576) if n >= 104858 else "%d KiB" % (n // 1024)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", nargs="?", default=os.path.join(ROOT, "build"),
                    help="meson build directory (default: build/)")
    ap.add_argument("--sluice", help="the sluice binary (default: BUILD/tools/sluice)")
    ap.add_argument("--handloop",
                    help="the loop binary (default: BUILD/tools/bench/sluice-handloop)")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    sluice = os.path.abspath(a.sluice or os.path.join(build, "tools", "sluice"))
    loop = os.path.abspath(a.handloop or os.path.join(build, "tools", "bench", "sluice-handloop"))
    for exe in (sluice, loop):
        if not os.access(exe, os.X_OK):
            raise SystemExit("bench: %s not found; build first: ninja -C %s" % (exe, build))

    scale = float(os.environ.get("BENCH_SCALE", "1"))
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    if scale <= 0 or repeat < 1:
        raise SystemExit("bench: BENCH_SCALE must be > 0 and BENCH_REPEAT >= 1")
    gen_n = max(1, int(GEN_EVENTS * scale))
    file_n = max(1, int(FILE_EVENTS * scale))
    data_dir = os.path.join(build, "bench-data")
    in_path = events_file(data_dir, file_n)

    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
    want = lambda tag: not only or tag in only
    rows = []
    row_notes, state_sizes = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-", dir=data_dir) as tmp:
        eng_out = os.path.join(tmp, "engine-out.jsonl")
        loop_out = os.path.join(tmp, "loop-out.jsonl")
        ya, yb, yc = pipelines(tmp, gen_n, in_path, eng_out)
        run = [sluice, "run", "--no-progress"]

        if want("a"):
            log("bench: (a) gen->null, %d events" % gen_n)
            e, lp = measure([("engine gen->null", run + [ya], None),
                             ("loop gen", [loop, "gen", str(gen_n)], gen_n)], tmp, repeat)
            rows.append(("gen->null", gen_n, e, lp))

        if want("b"):
            log("bench: (b) file->file, %d events" % file_n)
            e, lp = measure([("engine file->file", run + [yb], None),
                             ("loop file", [loop, "file", in_path, loop_out], file_n)], tmp, repeat)
            if not same_file(eng_out, loop_out):
                raise SystemExit("bench: file->file: the engine's output differs from the loop's "
                                 "(%s, %s)" % (eng_out, loop_out))
            os.unlink(eng_out)
            os.unlink(loop_out)
            rows.append(("file->file", file_n, e, lp))

        if want("c"):
            log("bench: (c) gen->%dxidentity->null, %d events" % (HOPS, gen_n))
            e, u, lp = measure([("engine chain, fused", run + [yc], None),
                                ("engine chain, --no-fusion", run + ["--no-fusion", yc], None),
                                ("loop chain", [loop, "chain", str(gen_n), str(HOPS)], gen_n)],
                               tmp, repeat)
            rows.append(("gen->%dxid->null fused" % HOPS, gen_n, e, lp))
            rows.append(("gen->%dxid->null --no-fusion" % HOPS, gen_n, u, lp))

        for tag, name in [x for x in (("d", "filter"), ("e", "transform")) if want(x[0])]:
            # the output check needs no 10M events: 1M (or fewer) says as much
            checked = stateless_pipelines(tmp, min(gen_n, 1_000_000), eng_out)[name][1]
            timed = stateless_pipelines(tmp, gen_n, eng_out)[name][0]
            log("bench: (%s) gen->%s->null, %d events" % (tag, name, gen_n))
            subprocess.run(run + [checked], cwd=tmp, check=True, stdin=subprocess.DEVNULL)
            subprocess.run([loop, name, str(min(gen_n, 1_000_000)), loop_out], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL)
            if not same_file(eng_out, loop_out):
                raise SystemExit("bench: %s: the engine's output differs from the loop's "
                                 "(%s, %s)" % (name, eng_out, loop_out))
            os.unlink(eng_out)
            os.unlink(loop_out)
            e, lp = measure([("engine gen->%s->null" % name, run + [timed], None),
                             ("loop %s" % name, [loop, name, str(gen_n)], gen_n)], tmp, repeat)
            rows.append(("gen->%s->null" % name, gen_n, e, lp))

        state_dir = os.path.join(tmp, "state")
        check_n = min(gen_n, 1_000_000)
        for tag, name, gen_extra, ops, loop_cmd in filter(lambda x: want(x[0]),
                                                          STATEFUL_SCENARIOS):
            checked = stateful_pipelines(tmp, check_n, tag, name, gen_extra, ops, state_dir,
                                         eng_out)[1]
            timed = stateful_pipelines(tmp, gen_n, tag, name, gen_extra, ops, state_dir, eng_out)[0]
            row = "gen->%s->null" % name
            log("bench: (%s) %s, %d events" % (tag, row, gen_n))
            shutil.rmtree(state_dir, ignore_errors=True)
            subprocess.run(run + [checked], cwd=tmp, check=True, stdin=subprocess.DEVNULL)
            shutil.rmtree(state_dir, ignore_errors=True)
            eng_rows = count_lines(eng_out)
            os.unlink(eng_out)
            out = subprocess.run([loop, loop_cmd, str(check_n)], cwd=tmp, check=True,
                                 stdout=subprocess.PIPE).stdout.split()
            # the loop prints the rows it built (aggregate), its pairs (join) or the
            # duplicates it removed (dedup)
            loop_rows = check_n - int(out[2]) if loop_cmd == "dedup" else int(out[2])
            if loop_rows != eng_rows:
                raise SystemExit("bench: %s on %d events: the engine wrote %d rows, the loop "
                                 "%d" % (name, check_n, eng_rows, loop_rows))
            row_notes.append("%s: %d rows from %d events, engine and loop alike"
                             % (name, eng_rows, check_n))
            e, lp = measure([("engine " + row, run + [timed], None, state_dir),
                             ("loop " + loop_cmd, [loop, loop_cmd, str(gen_n)], gen_n)],
                            tmp, repeat, state_sizes)
            rows.append((row, gen_n, e, lp))

    head = ("scenario", "events", "engine ev/s", "engine RSS", "engine CPUs", "loop ev/s",
            "loop RSS", "engine/loop")
    table = []
    for name, n, (et, erss, ecpu), (lt, lrss, _) in rows:
        er, lr = n / et, n / lt
        table.append((name, "{:,}".format(n), human_rate(er), human_rss(erss),
                      "%.2f" % (ecpu / et) if ecpu is not None else "n/a", human_rate(lr),
                      human_rss(lrss), "%.2f" % (er / lr)))
    w = [max(len(r[i]) for r in [head] + table) for i in range(len(head))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i])
                                       for i, c in enumerate(r)) + " |"
    out = [fmt(head), "|" + "|".join("-" * (x + 2) for x in w) + "|"]
    out += [fmt(r) for r in table]
    out.append("")
    out.append("ev/s: events / wall time of the fastest of %d runs; RSS: largest peak RSS; "
               "engine CPUs: (user+sys) / wall of that run; engine/loop: ratio of ev/s. "
               "BENCH_SCALE=%g" % (repeat, scale))
    if state_sizes:
        out.append("LMDB state (du of state_dir after the run, largest of the runs): " +
                   ", ".join("%s %s" % (k, human_bytes(v)) for k, v in state_sizes.items()))
    if row_notes:
        out.append("rows (checked once, sink.file): " + "; ".join(row_notes))
    if min(r[2][0] for r in rows) < 1.0:
        out.append("note: engine runs under 1 s: fixed per-run costs (start-up, up to 50 ms to "
                   "notice the end) weigh on ev/s; see docs/benchmarks.md")
    if not TIME:
        out.append("peak RSS: n/a (needs GNU time at /usr/bin/time; apt-get install time)")
    out += machine_info(build)
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()
