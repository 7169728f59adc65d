#!/usr/bin/env python3
"""Checkpoints and recovery (issue 6) end to end, everything but the kill -9
loops of test_crash.py.

The pipeline (PIPELINE below), on gen_events.py's stream (seed 21):

  source.file events_src (watermark max_out_of_order 10s: the generator's
  events are at most 5 s late, so nothing is late and results do not depend
  on timing) -> dedup uniq_ids (key id) -> route split
    orders -> transform -> aggregate order_metrics (tumbling 1m + hopping
              10m/1m x grouping sets [], [status], [customerId]: count, sum,
              avg, count_distinct, percentile) -> sink.file metrics_out
           -> filter big_orders (amount > 400) -> sink.file big_out
    orders x payments -> join order_payment (orderId, within 3m) -> joined_out
  uniq_ids.duplicates -> dups_out; order_payment.late + order_metrics.late
  -> late_out (must stay empty)

Outputs are compared as sorted lines (the order of window and join rows is
not defined); the duplicates' envelope `time` (wall clock) is left out.
The truth is a run WITHOUT `checkpoint:`; then:

 ref   an uninterrupted run with `checkpoint: {interval: 200ms}` writes the
       same, leaves no *.pending / *.part-* files.
 (b)   a second run on that completed state_dir: exit 0, every output file
       byte-identical, nothing reprocessed (duplicates file unchanged).
 (c)   `--fresh` on it: the same output again (not appended to); with the
       output files deleted first, --fresh writes them all again; --fresh
       after a kill -9 (stale pending parts) too.
 (h)   the pipeline without `checkpoint:` on a state_dir holding a completed
       checkpoint restores nothing: the full output, twice in a row.
 (a)   SIGTERM once 30% of the input is read: exit 0, the visible output is a
       strict sub-multiset of the truth (windows not flushed); the rerun is
       stopped by SIGINT at 60% (the visible files only grew: the earlier
       bytes are a prefix); the third run ends: output = truth.  Five runs
       in a row stopped by SIGTERM as soon as the input is open (before
       any periodic checkpoint), each exit 0, then a run to the end: truth.
 (e)   kill -9 at 40% (after a checkpoint), then change unrelated things (big_orders' `where`, a new
       filter + sink.file branch, a new aggregate, metrics_out's batch
       settings): the run restores (exit 0), the untouched sinks end equal to
       the truth, and the new aggregate started empty (it counts fewer
       orders than the stream holds, but some).
 (f)   stop at 40%, then incompatible changes (dedup key / horizon /
       parallelism, aggregate windows / group_by / compute, join on /
       within, the source's path, the aggregate removed): exit 1 quickly,
       stderr names the operator and mentions --fresh; the refused runs
       leave the state usable (the original pipeline then finishes = truth);
       with --fresh each changed pipeline runs (exit 0) and the sinks the
       change does not touch equal the truth.
 (g)   data.mdb overwritten with garbage (whole file; first 64 KiB only) or
       truncated (to half; to 8 KiB): exit 1 (not a crash) within 20 s, stderr holds the state_dir path; a state_dir that
       is a regular file: exit 1, path in the message; an existing empty
       state_dir: a normal first run (= truth).
 (i)   source.generator (30000 events paced at 12000/s) -> dedup -> sink.file:
       kill -9 twice and SIGTERM once, each after more output was published;
       the last run's output is line for line an uninterrupted run's.
 (d)   a slow sink: throttle (mode delay, 2000/s) before sink.file,
       `batch: {max_events: 64}`, interval 200ms, 6000 events: three kill -9
       ~1 s into a run, each time the visible output has grown; the fourth
       run finishes with exactly the deduplicated input in order.  A SIGTERM
       there stops with exit 0 (the barrier passes the throttle), a
       SIGTERM+SIGINT pair exits 130 at once; each rerun still ends = the
       deduplicated input.

test_crash.py imports the helpers of this file.
"""
import collections
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time

import e2elib

EVENTS = 150000
SEED = 21
INTERVAL = "200ms"

# Sinks compared with the truth, and the keys left out of their lines.
SINKS = ("joined", "metrics", "dups", "late", "big")
DROP_KEYS = {"dups": ("time",)}     # a duplicate's envelope `time` is the wall clock
MUST_HAVE_ROWS = ("joined", "metrics", "dups", "big")

DEFAULTS = {
    "checkpoint": "checkpoint: {interval: %s}\n" % INTERVAL,
    "batch": "batch: {max_events: 1024, linger: 5ms}\n",
    "dedup_key": "id",
    "horizon": "1h",
    "dedup_par": "",
    "windows": "[{tumbling: 1m}, {hopping: 10m, every: 1m}]",
    "group_by": "[[], [status], [customerId]]",
    "compute_extra": "",
    "join_on": "{left: orderId, right: orderId}",
    "within": "3m",
    "join_par": "",
    "big_where": "amount > 400.0",
    "metrics_batch": "",
    "extra": "",
}

PIPELINE_HEAD = """\
pipeline: checkpoint-e2e
state_dir: %(state)s
%(checkpoint)s%(batch)soperators:
  events_src:
    type: source.file
    path: %(events)s
    watermark: {max_out_of_order: 10s}
  uniq_ids:
    type: dedup
    input: events_src
    key: %(dedup_key)s
    capacity: 1000000
    error_rate: 0.01
    horizon: %(horizon)s
%(dedup_par)s  split:
    type: route
    input: uniq_ids
    routes:
      orders: type.startsWith("order.")
      payments: type == "payment.processed"
  orders:
    type: transform
    input: split.orders
    fields: {orderId: data.orderId, customerId: data.customerId, amount: data.total, status: data.status}
  payments:
    type: transform
    input: split.payments
    fields: {orderId: data.orderId, amount: data.amount, status: data.status}
  order_payment:
    type: join
    left: orders
    right: payments
    on: %(join_on)s
    within: %(within)s
    kind: inner
%(join_par)s    fields: {orderId: left.orderId, customerId: left.customerId, orderAmount: left.amount, paymentAmount: right.amount, paymentStatus: right.status}
  big_orders:
    type: filter
    input: orders
    where: %(big_where)s
  joined_out: {type: sink.file, input: order_payment, path: %(joined)s}
  dups_out: {type: sink.file, input: uniq_ids.duplicates, path: %(dups)s}
  big_out: {type: sink.file, input: big_orders, path: %(big)s}
"""

PIPELINE_METRICS = """\
  order_metrics:
    type: aggregate
    input: orders
    windows: %(windows)s
    group_by: %(group_by)s
    allowed_lateness: 0s
    compute:
      orders: count()
      revenue: sum(amount)
      avg_amount: avg(amount)
      customers: count_distinct(customerId)
      p95: percentile(amount, 0.95)
%(compute_extra)s  metrics_out:
    type: sink.file
    input: order_metrics
    path: %(metrics)s
%(metrics_batch)s  late_out: {type: sink.file, input: [order_payment.late, order_metrics.late], path: %(late)s}
"""

PIPELINE_NO_METRICS = """\
  late_out: {type: sink.file, input: order_payment.late, path: %(late)s}
"""


# ---- paths, pipelines -----------------------------------------------------------

class Case:
    """One run directory: its state_dir, its output files, its pipeline file."""

    def __init__(self, root, name, events):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.events = events
        self.state = os.path.join(self.dir, "state")
        self.outdir = os.path.join(self.dir, "out")
        self.out = {s: os.path.join(self.outdir, s + ".jsonl") for s in SINKS}
        self.yaml = os.path.join(self.dir, "pipeline.yaml")
        self.runs = 0

    def write(self, metrics=True, **over):
        v = dict(DEFAULTS)
        v.update(over)
        v["state"] = e2elib.yaml_str(self.state)
        v["events"] = e2elib.yaml_str(v.get("events_path") or self.events)
        for s, p in self.out.items():
            v[s] = e2elib.yaml_str(p)
        text = PIPELINE_HEAD % v + ((PIPELINE_METRICS % v) if metrics else (PIPELINE_NO_METRICS % v)) + v["extra"]
        return e2elib.write_pipeline(self.yaml, text)

    def stderr_path(self):
        self.runs += 1
        return os.path.join(self.dir, "run-%d.stderr" % self.runs)


# ---- running ---------------------------------------------------------------------

class Run:
    """A sluice process whose stderr goes to a file (no pipe to fill)."""

    def __init__(self, t, args, stderr_path, cwd=None):
        self.t = t
        self.stderr_path = stderr_path
        self.errf = open(stderr_path, "wb")
        self.p = t.spawn(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=self.errf)
        self.errf.close()
        self.started = self.p.started

    def poll(self):
        return self.p.poll()

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def wait(self, timeout, what):
        try:
            self.p.wait(timeout=timeout)
        except Exception:
            self.p.kill()
            self.p.wait()
            self.t.fail("%s: did not exit within %.1f s (killed)\n%s"
                        % (what, timeout, self.result("killed").describe()))
        res = self.result(self.p.returncode)
        # A sanitizer report ends the process with exit 1, which a refused
        # restore also gives: never take one for the other.
        if re.search(rb"ERROR: \w+Sanitizer|runtime error: |Sanitizer:DEADLYSIGNAL", res.stderr):
            self.t.fail("%s: sanitizer report (a crash or undefined behaviour), exit %s\n%s"
                        % (what, res.rc, res.describe()))
        return res

    def result(self, rc):
        return e2elib.Result(self.p.argv, rc, b"", self.stderr(), time.monotonic() - self.started)

    def kill9(self):
        """SIGKILL and reap; True if it was still running when killed."""
        alive = self.p.poll() is None
        if alive:
            self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        return alive


RUN_ARGS = []      # extra `sluice run` arguments for every run (test_crash --no-fusion)


def start(t, case, extra=(), cwd=None):
    return Run(t, ["run", case.yaml, "--no-progress"] + RUN_ARGS + list(extra), case.stderr_path(),
               cwd=cwd)


def run_to_end(t, case, what, extra=(), timeout=120, want_rc=0):
    r = start(t, case, extra)
    res = r.wait(timeout * t.slow, what)
    t.check_rc(res, want_rc, what)
    return res


def input_pos(pid, path):
    """How far process pid has read path (its fd's offset), or None if not open."""
    want = os.path.realpath(path)
    fd_dir = "/proc/%d/fd" % pid
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(os.path.join(fd_dir, fd)) != want:
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith("pos:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            continue
    return None


def wait_input_fraction(t, run, path, frac, timeout, what, pause=0.003):
    """Poll until run has read frac of path; fail if it exits or times out first."""
    size = os.path.getsize(path)
    deadline = time.monotonic() + timeout
    while True:
        if run.poll() is not None:
            t.fail("%s: the run ended (exit %s) before it had read %d%% of the input: "
                   "nothing to interrupt\n%s" % (what, run.poll(), frac * 100,
                                                   run.result(run.poll()).describe()))
        pos = input_pos(run.p.pid, path)
        if pos is not None and pos >= frac * size:
            return pos / size
        if time.monotonic() > deadline:
            t.fail("%s: the run did not read %d%% of the input within %.0f s (at %s of %d bytes)\n%s"
                   % (what, frac * 100, timeout, pos, size, run.result("running").describe()))
        time.sleep(pause)


def stop(t, run, sig, what, timeout=30):
    run.p.send_signal(sig)
    sent = time.monotonic()
    res = run.wait(timeout * t.slow, what)
    t.check_rc(res, 0, "%s (%s, exited %.2f s after it)" % (what, signal.Signals(sig).name,
                                                             time.monotonic() - sent))
    return res


# ---- comparing ------------------------------------------------------------------

def read_lines(path, drop=()):
    """The file's lines (without newline); missing file -> []; with `drop`,
    each line re-encoded without those top-level keys."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if drop:
        out = []
        for l in lines:
            try:
                ev = json.loads(l)
            except ValueError:
                out.append(l)           # reported as a difference
                continue
            for k in drop:
                ev.pop(k, None)
            out.append(json.dumps(ev, sort_keys=True, separators=(",", ":")).encode())
        lines = out
    return lines


def sorted_lines(path, drop=()):
    return sorted(read_lines(path, drop))


def diff_summary(want, got, limit=3):
    cw, cg = collections.Counter(want), collections.Counter(got)
    missing, extra = cw - cg, cg - cw
    def show(c):
        items = list(c.items())[:limit]
        return "\n      ".join("%dx %s" % (n, l.decode("utf-8", "replace")[:300]) for l, n in items)
    return ("%d lines expected, %d got; %d missing, %d extra\n    missing: %s\n    extra:   %s"
            % (len(want), len(got), sum(missing.values()), sum(extra.values()),
               show(missing) or "-", show(extra) or "-"))


def float_only_diff(want, got):
    """True if the differing lines differ only in float values (last digits)."""
    cw, cg = collections.Counter(want), collections.Counter(got)
    missing, extra = sorted((cw - cg).elements()), sorted((cg - cw).elements())
    if not missing or len(missing) != len(extra):
        return False
    def shape(l):
        def strip(v):
            if isinstance(v, float):
                return "<float>"
            if isinstance(v, dict):
                return {k: strip(x) for k, x in v.items()}
            if isinstance(v, list):
                return [strip(x) for x in v]
            return v
        try:
            return json.dumps(strip(json.loads(l)), sort_keys=True)
        except ValueError:
            return l
    return sorted(map(shape, missing)) == sorted(map(shape, extra))


class Truth:
    """The expected sorted lines of each sink (from one run's files)."""

    def __init__(self, case, sinks=SINKS):
        self.lines = {s: sorted_lines(case.out[s], DROP_KEYS.get(s, ())) for s in sinks}


def compare_outputs(t, truth, case, what, sinks=None, detail=""):
    for s in (sinks or truth.lines):
        want = truth.lines[s]
        got = sorted_lines(case.out[s], DROP_KEYS.get(s, ()))
        if got != want:
            note = ""
            if float_only_diff(want, got):
                note = "\n  (the differing lines differ only in floating-point values)"
            t.fail("%s: %s differs from the uninterrupted run (sorted lines): %s%s%s"
                   % (what, os.path.basename(case.out[s]), diff_summary(want, got), note,
                      ("\n" + detail) if detail else ""))
    t.ok("%s: %s equal to the uninterrupted run (%s lines, sorted)"
         % (what, ", ".join(sinks or truth.lines),
            "/".join(str(len(truth.lines[s])) for s in (sinks or truth.lines))))


def leftovers(d):
    """Pending or part files of a transactional sink.file under d."""
    found = []
    for root, _, files in os.walk(d):
        for f in files:
            if f.endswith(".pending") or ".pending." in f or ".part-" in f:
                found.append(os.path.join(root, f))
    return sorted(found)


def check_no_leftovers(t, case, what):
    lo = leftovers(case.outdir)
    t.check(not lo, "%s: no *.pending / *.part-* files left next to the outputs" % what,
            "left: %s" % lo)


def file_digest(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return (None, None)
    return (len(data), hashlib.sha256(data).hexdigest())


class Visible:
    """Sizes and prefixes of the visible sink files: they may only grow."""

    def __init__(self, paths):
        self.paths = list(paths)
        self.size = {p: 0 for p in self.paths}
        self.prefix = {p: hashlib.sha256(b"").hexdigest() for p in self.paths}

    def advance(self, t, what, killed=False):
        """Check every file still starts with what it held last time and ends
        with a complete line; remember the new state. Returns total growth.

        killed: the process was just killed with SIGKILL. It may have died in
        the middle of publishing a part (a copy onto the visible file), which
        leaves a torn last line until the next run republishes the part at the
        same offset (docs/checkpoints.md). Then only the complete lines are
        remembered: the next look must still start with them."""
        grown = 0
        for p in self.paths:
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                data = None
            if data is None:
                if self.size[p]:
                    t.fail("%s: %s vanished (it held %d bytes)" % (what, p, self.size[p]))
                continue
            old = self.size[p]
            if len(data) < old or hashlib.sha256(data[:old]).hexdigest() != self.prefix[p]:
                t.fail("%s: the visible file %s was rewritten, not grown: it held %d bytes, "
                       "now %d bytes and the first %d bytes differ"
                       % (what, p, old, len(data), min(old, len(data))))
            if killed and data and not data.endswith(b"\n"):
                t.log("%s: %s ends with a torn line (%d bytes): the next run must complete it"
                      % (what, p, len(data) - data.rfind(b"\n") - 1))
                data = data[:data.rfind(b"\n") + 1]
            if data and not data.endswith(b"\n"):
                t.fail("%s: the visible file %s ends with a partial line (%d bytes): %r"
                       % (what, p, len(data), data[-120:]))
            grown += len(data) - old
            self.size[p] = len(data)
            self.prefix[p] = hashlib.sha256(data).hexdigest()
        return grown

    def total(self):
        return sum(self.size.values())


def mentions(stderr, *words):
    s = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    return all(w in s for w in words)


# ---- the scenarios ---------------------------------------------------------------

def scenario_reference(t, root, events):
    plain = Case(root, "plain", events)
    plain.write(checkpoint="")
    res = run_to_end(t, plain, "truth: the pipeline without a checkpoint block")
    plain_elapsed = res.elapsed
    truth = Truth(plain)
    for s in MUST_HAVE_ROWS:
        t.check(len(truth.lines[s]) > 0, "truth: %s has rows (%d)" % (s, len(truth.lines[s])))
    t.check_eq(len(truth.lines["late"]), 0, "truth: nothing late (max_out_of_order covers the stream)")

    ref = Case(root, "ref", events)
    ref.write()
    res = run_to_end(t, ref, "ref: uninterrupted run with checkpoint: {interval: %s}" % INTERVAL)
    t.log("ref: %.2f s with checkpoints (%.2f s without)" % (res.elapsed, plain_elapsed))
    compare_outputs(t, truth, ref, "ref (checkpoints on)")
    check_no_leftovers(t, ref, "ref")
    t.check(os.path.isfile(os.path.join(ref.state, "data.mdb")),
            "ref: the state_dir holds data.mdb", "state_dir: %s" % os.listdir(ref.state)
            if os.path.isdir(ref.state) else "state_dir missing")
    return truth, ref, res.elapsed


def scenario_rerun_completed(t, ref):
    """(b) a second run on the completed state_dir of the reference run."""
    before = {s: file_digest(p) for s, p in ref.out.items()}
    res = run_to_end(t, ref, "(b) second run on a completed state_dir", timeout=60)
    after = {s: file_digest(p) for s, p in ref.out.items()}
    changed = [s for s in before if before[s] != after[s]]
    t.check(not changed, "(b) second run: every output file byte-identical (%s)"
            % ", ".join("%s %s B" % (s, before[s][0]) for s in SINKS),
            "changed: %s\n%s" % (", ".join("%s: %s -> %s bytes" % (s, before[s][0], after[s][0])
                                           for s in changed), res.describe()))
    check_no_leftovers(t, ref, "(b)")


def scenario_fresh(t, truth, ref):
    """(c) --fresh on the completed state_dir of the reference run."""
    res = run_to_end(t, ref, "(c) --fresh on the completed state_dir", extra=["--fresh"])
    compare_outputs(t, truth, ref, "(c) --fresh (not appended to the old output)", detail=res.describe())
    check_no_leftovers(t, ref, "(c)")
    shutil.rmtree(ref.outdir)
    res = run_to_end(t, ref, "(c) --fresh with the output files deleted", extra=["--fresh"])
    compare_outputs(t, truth, ref, "(c) --fresh wrote every output again", detail=res.describe())
    check_no_leftovers(t, ref, "(c) deleted outputs")
    # kill -9 mid-run (pending parts next to the outputs), then --fresh
    r = start(t, ref, ["--fresh"])
    poll_growth(t, r, ref.out["big"], "(c) --fresh run to kill", above=0)
    r.kill9()
    res = run_to_end(t, ref, "(c) --fresh after a kill -9 mid-run", extra=["--fresh"])
    compare_outputs(t, truth, ref, "(c) --fresh after a kill -9 (stale pending parts ignored)",
                    detail=res.describe())
    check_no_leftovers(t, ref, "(c) --fresh after a kill -9")


def scenario_no_checkpoint(t, truth, root, events):
    """(h) without checkpoint: nothing is restored, even from a completed checkpoint."""
    c = Case(root, "nockpt", events)
    c.write()
    run_to_end(t, c, "(h) a checkpointed run to completion, to leave a checkpoint behind")
    c.write(checkpoint="")
    for i in (1, 2):
        shutil.rmtree(c.outdir)
        res = run_to_end(t, c, "(h) run %d without checkpoint: on that state_dir" % i)
        compare_outputs(t, truth, c, "(h) run %d without checkpoint: recomputed from scratch" % i,
                        detail=res.describe())


def scenario_sigterm(t, truth, root, events, ref_elapsed):
    """(a) SIGTERM at 30%, SIGINT at 60% of the input, then a full run."""
    c = Case(root, "sigterm", events)
    c.write()
    vis = Visible(c.out.values())
    limit = 30 + 10 * ref_elapsed
    for frac, sig in ((0.3, signal.SIGTERM), (0.6, signal.SIGINT)):
        r = start(t, c)
        got = wait_input_fraction(t, r, events, frac, limit * t.slow, "(a) %s" % signal.Signals(sig).name)
        t.log("(a) %s after %.0f%% of the input was read" % (signal.Signals(sig).name, got * 100))
        res = stop(t, r, sig, "(a) stop mid-run")
        grown = vis.advance(t, "(a) after %s" % signal.Signals(sig).name)
        t.check(grown > 0, "(a) the stop's checkpoint published output (%d bytes more)" % grown,
                res.describe())
        partial = {s: sorted_lines(c.out[s], DROP_KEYS.get(s, ())) for s in SINKS}
        for s in ("joined", "metrics"):
            extra = collections.Counter(partial[s]) - collections.Counter(truth.lines[s])
            t.check(not extra, "(a) after %s: every %s row is a row of the uninterrupted run"
                    % (signal.Signals(sig).name, s),
                    "rows no uninterrupted run writes: %s\n%s"
                    % ([l[:200] for l in list(extra)[:3]], res.describe()))
            t.check(len(partial[s]) < len(truth.lines[s]),
                    "(a) after %s: %s is not complete (%d of %d rows: the stop does not flush "
                    "open windows or read the rest)" % (signal.Signals(sig).name, s,
                                                        len(partial[s]), len(truth.lines[s])))
    res = run_to_end(t, c, "(a) third run, to the end")
    vis.advance(t, "(a) after the last run")
    compare_outputs(t, truth, c, "(a) SIGTERM + SIGINT + rerun", detail=res.describe())
    check_no_leftovers(t, c, "(a)")

    # SIGTERM as soon as the input is open (before any periodic checkpoint;
    # start-up may not be over), five runs in a row, then a run to the end
    c = Case(root, "sigterm-early", events)
    c.write()
    for i in range(5):
        r = start(t, c)
        wait_input_fraction(t, r, events, 0.0, limit * t.slow, "(a) early SIGTERM %d" % (i + 1),
                            pause=0)
        stop(t, r, signal.SIGTERM, "(a) SIGTERM %d as soon as the input is open" % (i + 1))
    res = run_to_end(t, c, "(a) rerun after five early SIGTERMs")
    compare_outputs(t, truth, c, "(a) five early SIGTERMs + rerun", detail=res.describe())
    check_no_leftovers(t, c, "(a) early SIGTERM")


def stopped_case(t, root, name, events, frac, ref_elapsed):
    c = Case(root, name, events)
    c.write()
    r = start(t, c)
    wait_input_fraction(t, r, events, frac, (30 + 10 * ref_elapsed) * t.slow, name)
    stop(t, r, signal.SIGTERM, "%s: stopped at %d%% of the input" % (name, frac * 100))
    return c


RECOUNT = """\
  cheap_orders:
    type: filter
    input: orders
    where: amount < 5.0
  cheap_out: {type: sink.file, input: cheap_orders, path: %(cheap)s}
  recount:
    type: aggregate
    input: orders
    windows: [{tumbling: 1d}]
    group_by: [[]]
    compute: {n: count()}
  recount_out: {type: sink.file, input: recount, path: %(recount)s}
"""


def scenario_unrelated_change(t, truth, root, events, ref_elapsed):
    """(e) a restore after changes that leave the old state usable."""
    # killed (not stopped): pending parts of the old sinks lie next to them
    c = Case(root, "unrelated", events)
    c.write()
    r = start(t, c)
    wait_input_fraction(t, r, events, 0.4, (30 + 10 * ref_elapsed) * t.slow, "(e)")
    poll_growth(t, r, c.out["big"], "(e) run to kill", above=0)
    r.kill9()
    t.check(os.path.getsize(c.out["big"]) > 0, "(e) killed at >= 40%% of the input, after a checkpoint "
            "(%d bytes published)" % os.path.getsize(c.out["big"]))
    cheap = os.path.join(c.outdir, "cheap.jsonl")
    recount = os.path.join(c.outdir, "recount.jsonl")
    c.write(big_where="amount > 300.0",
            metrics_batch="    batch: {size: 7, interval: 20ms}\n",
            extra=RECOUNT.replace("%(cheap)s", e2elib.yaml_str(cheap))
                         .replace("%(recount)s", e2elib.yaml_str(recount)))
    res = run_to_end(t, c, "(e) restore after unrelated changes (a filter's where, a new "
                     "filter + sink.file branch, a new aggregate, a sink's batch)")
    compare_outputs(t, truth, c, "(e) unchanged sinks", sinks=("joined", "metrics", "dups", "late"),
                    detail=res.describe())
    check_no_leftovers(t, c, "(e)")
    orders = 0
    seen = set()
    cheap_ids = set()
    for line in open(events, "rb"):
        ev = json.loads(line)
        if ev["id"] in seen:
            continue
        seen.add(ev["id"])
        if ev["type"].startswith("order."):
            orders += 1
            if ev["data"]["total"] < 5.0:
                cheap_ids.add(ev["id"])
    rows = e2elib.read_jsonl(recount)
    n = sum(r.get("n", 0) for r in rows)
    t.check(0 < n < orders, "(e) the new aggregate started empty: it counted %d of the %d orders "
            "(those after the restored checkpoint)" % (n, orders), res.describe())
    got_cheap = [r["id"] for r in e2elib.read_jsonl(cheap)]
    t.check(0 < len(got_cheap) < len(cheap_ids) and set(got_cheap) <= cheap_ids
            and len(set(got_cheap)) == len(got_cheap),
            "(e) the new filter branch wrote %d of the %d cheap orders (those after the checkpoint), "
            "each once" % (len(got_cheap), len(cheap_ids)))


def scenario_incompatible(t, truth, root, events, ref_elapsed):
    """(f) changes that make the old state unusable."""
    base = stopped_case(t, root, "incompat", events, 0.4, ref_elapsed)
    base_state = os.path.join(root, "incompat-state-copy")
    shutil.copytree(base.state, base_state)
    events_copy = os.path.join(root, "events-copy.jsonl")
    shutil.copyfile(events, events_copy)
    par2 = "    parallelism: 2\n"
    all_sinks = ("joined", "metrics", "dups", "late", "big")
    cases = [
        # (label, operator the message must name, write() overrides, sinks equal to the truth with --fresh)
        ("dedup key", "uniq_ids", {"dedup_key": "data.orderId"}, ()),
        ("dedup horizon", "uniq_ids", {"horizon": "2h"}, all_sinks),
        ("dedup parallelism", "uniq_ids", {"dedup_par": par2}, all_sinks),
        ("aggregate windows", "order_metrics", {"windows": "[{tumbling: 1m}]"},
         ("joined", "dups", "late", "big")),
        ("aggregate group_by", "order_metrics", {"group_by": "[[], [status]]"},
         ("joined", "dups", "late", "big")),
        ("aggregate compute", "order_metrics", {"compute_extra": "      top: max(amount)\n"},
         ("joined", "dups", "late", "big")),
        ("join on", "order_payment", {"join_on": "{left: orderId, right: status}"},
         ("metrics", "dups", "big")),
        ("join within", "order_payment", {"within": "4m"}, ("metrics", "dups", "late", "big")),
        ("source path", "events_src", {"events_path": events_copy}, all_sinks),
        ("aggregate removed", "order_metrics", {"metrics": False}, ("joined", "dups", "big")),
    ]
    # Each change on its own copy of the stopped run's directory (an accepted
    # change would move that state on); every case runs, failures are listed
    # together.
    failures = []
    for i, (label, op, over, same) in enumerate(cases):
        over = dict(over)
        metrics = over.pop("metrics", True)
        c = Case(root, "refuse-%d" % i, events)
        shutil.rmtree(c.dir)
        shutil.copytree(base.dir, c.dir)
        c.write(metrics=metrics, **over)
        r = start(t, c)
        res = r.wait(30 * t.slow, "(f) %s" % label)
        if res.rc != 1:
            failures.append("(f) %s: expected exit status 1 (restore refused), got %s\n%s"
                            % (label, res.rc, res.describe()))
        elif not (mentions(res.stderr, op) and mentions(res.stderr, "--fresh")):
            failures.append("(f) %s: exit 1, but the message does not name '%s' and mention --fresh\n%s"
                            % (label, op, res.describe()))
        else:
            t.ok("(f) %s: refused (exit 1, %.2f s), the message names '%s' and mentions --fresh"
                 % (label, res.elapsed, op))
    # Refused runs leave the state as it was: after three of them on the same
    # directory, the original pipeline resumes.
    shared_ok = True
    for label, op, over, same in (cases[0], cases[3], cases[8]):
        over = dict(over)
        base.write(**over)
        res = start(t, base).wait(30 * t.slow, "(f) %s" % label)
        if res.rc != 1:
            shared_ok = False
            failures.append("(f) %s (on the shared directory): expected exit status 1, got %s\n%s"
                            % (label, res.rc, res.describe()))
    try:
        if shared_ok:
            base.write()
            res = run_to_end(t, base, "(f) the original pipeline after three refused runs")
            compare_outputs(t, truth, base, "(f) original pipeline resumed after refused runs",
                            detail=res.describe())
        for i, (label, op, over, same) in enumerate(cases):
            over = dict(over)
            metrics = over.pop("metrics", True)
            c = Case(root, "fresh-%d" % i, events)
            shutil.copytree(base_state, c.state)
            c.write(metrics=metrics, **over)
            res = run_to_end(t, c, "(f) %s with --fresh" % label, extra=["--fresh"])
            if same:
                compare_outputs(t, truth, c, "(f) %s with --fresh" % label, sinks=same,
                                detail=res.describe())
            else:
                t.check(e2elib.count_lines(c.out["metrics"]) > 0,
                        "(f) %s with --fresh: window rows written" % label)
    except e2elib.Failure as e:
        failures.append(str(e))
    if failures:
        t.fail("%d failure(s) in (f):\n%s" % (len(failures), "\n".join(failures)))


def scenario_corrupt(t, truth, ref_state_src, root, events):
    """(g) a corrupt or impossible state_dir; every case runs, failures are
    listed together."""
    rnd = random.Random(99)
    failures = []

    def case(fn, *a):
        try:
            fn(*a)
        except e2elib.Failure as e:
            failures.append(str(e))

    def corrupt(label, how):
        c = Case(root, "corrupt-" + how, events)
        shutil.copytree(ref_state_src, c.state)
        data = os.path.join(c.state, "data.mdb")
        size = os.path.getsize(data)
        if how in ("all", "head"):
            with open(data, "r+b") as f:
                f.write(rnd.randbytes(size if how == "all" else min(size, 65536)))
        else:
            os.truncate(data, size // 2 if how == "half" else 8192)
        c.write()
        r = start(t, c)
        res = r.wait(20 * t.slow, "(g) %s" % label)
        if res.rc != 1:
            why = ""
            if isinstance(res.rc, int) and (res.rc < 0 or res.rc > 128):
                sig = -res.rc if res.rc < 0 else res.rc - 128
                why = " (killed by signal %d, %s: a crash)" % (sig, signal.Signals(sig).name)
            t.fail("(g) %s: expected exit status 1, got %s%s\n%s" % (label, res.rc, why, res.describe()))
        t.ok("(g) %s: exit status 1 (%.2f s)" % (label, res.elapsed))
        t.check(mentions(res.stderr, c.state), "(g) %s: the message names the state_dir %s"
                % (label, c.state), res.describe())

    for label, how in (("whole data.mdb overwritten with garbage", "all"),
                       ("first 64 KiB of data.mdb overwritten with garbage", "head"),
                       ("data.mdb truncated to half its size", "half"),
                       ("data.mdb truncated to 8 KiB", "8k")):
        case(corrupt, label, how)

    def regular_file():
        c = Case(root, "statefile", events)
        t.write(c.state, "not a directory\n")
        c.write()
        res = start(t, c).wait(20 * t.slow, "(g) state_dir is a regular file")
        t.check_rc(res, 1, "(g) state_dir is a regular file")
        t.check(mentions(res.stderr, c.state), "(g) state_dir is a regular file: the message names it",
                res.describe())
    case(regular_file)

    def empty_dir():
        c = Case(root, "emptystate", events)
        os.makedirs(c.state)
        c.write()
        res = run_to_end(t, c, "(g) an existing, empty state_dir")
        compare_outputs(t, truth, c, "(g) empty state_dir: a normal first run", detail=res.describe())
    case(empty_dir)
    if failures:
        t.fail("%d failure(s) in (g):\n%s" % (len(failures), "\n".join(failures)))


# ---- (d) a slow sink ----------------------------------------------------------------

SLOW = """\
pipeline: checkpoint-slow-sink
state_dir: %(state)s
checkpoint: {interval: 200ms}
batch: {max_events: 64, linger: 5ms}
operators:
  events_src:
    type: source.file
    path: %(events)s
    watermark: {max_out_of_order: 10s}
  uniq_ids:
    type: dedup
    input: events_src
    key: id
    horizon: 1h
  slow:
    type: throttle
    input: uniq_ids
    rate: 2000
    burst: 64
    mode: delay
  out:
    type: sink.file
    input: slow
    path: %(out)s
"""

SLOW_EVENTS = 10000


def scenario_slow_sink(t, root):
    events = t.gen_events(os.path.join(root, "slow-events.jsonl"), SLOW_EVENTS, 23)
    want = []
    seen = set()
    for line in open(events, "rb"):
        ev = json.loads(line)
        if ev["id"] not in seen:
            seen.add(ev["id"])
            want.append(ev["id"])
    t.log("(d) %d events, %d unique: %.1f s at 2000/s" % (SLOW_EVENTS, len(want), len(want) / 2000.0))

    def case(name):
        c = Case(root, name, events)
        c.out = {"out": os.path.join(c.outdir, "out.jsonl")}
        e2elib.write_pipeline(c.yaml, SLOW % {"state": e2elib.yaml_str(c.state),
                                              "events": e2elib.yaml_str(events),
                                              "out": e2elib.yaml_str(c.out["out"])})
        return c

    def check_final(c, res, what):
        got = [ev.get("id") for ev in e2elib.read_jsonl(c.out["out"])]
        if got != want:
            dup = [k for k, n in collections.Counter(got).items() if n > 1]
            t.fail("%s: output is not the deduplicated input in order: %d ids expected, %d written, "
                   "%d ids twice (e.g. %s), %d missing, first difference at line %s\n%s"
                   % (what, len(want), len(got), len(dup), dup[:3], len(set(want) - set(got)),
                      next((i + 1 for i, (a, b) in enumerate(zip(want, got)) if a != b),
                           min(len(want), len(got)) + 1), res.describe()))
        t.ok("%s: the %d deduplicated events, in order, each once" % (what, len(want)))
        check_no_leftovers(t, c, what)

    # kill -9 three times, each once the run has published more output (a
    # checkpoint completed behind the slow sink), plus a random 0-0.3 s
    c = case("slow-kill")
    vis = Visible(c.out.values())
    rnd = random.Random(5)
    for i in range(3):
        r = start(t, c)
        before = vis.total()
        poll_growth(t, r, c.out["out"], "(d) run %d" % (i + 1), above=before)
        pause = rnd.uniform(0.0, 0.3)
        time.sleep(pause)   # not a synchronisation: the kill lands somewhere after a checkpoint
        if r.poll() is not None:
            t.fail("(d) run %d ended before the kill (exit %s): the throttle does not slow it"
                   "\n%s" % (i + 1, r.poll(), r.result(r.poll()).describe()))
        r.kill9()
        grown = vis.advance(t, "(d) after kill %d" % (i + 1), killed=True)
        t.check(grown > 0, "(d) kill -9 %d, %.1f s into run %d: the visible output grew by %d bytes "
                "(checkpoints complete behind a slow sink)" % (i + 1, time.monotonic() - r.started,
                                                              i + 1, grown))
    res = run_to_end(t, c, "(d) last run after 3 kills", timeout=60)
    vis.advance(t, "(d) after the last run")
    check_final(c, res, "(d) slow sink, 3 x kill -9")

    # one SIGTERM: the stop's barrier gets through the delaying throttle
    c = case("slow-term")
    vis = Visible(c.out.values())
    r = start(t, c)
    poll_growth(t, r, c.out["out"], "(d) SIGTERM")
    res = stop(t, r, signal.SIGTERM, "(d) SIGTERM behind a slow sink", timeout=15)
    vis.advance(t, "(d) after SIGTERM")
    n = e2elib.count_lines(c.out["out"])
    t.check(0 < n < len(want), "(d) SIGTERM: stopped before the end (%d of %d events visible)"
            % (n, len(want)), res.describe())
    res = run_to_end(t, c, "(d) rerun after SIGTERM", timeout=60)
    vis.advance(t, "(d) after the rerun")
    check_final(c, res, "(d) SIGTERM + rerun")

    # SIGTERM then SIGINT: the second signal stops at once, exit 130
    c = case("slow-twice")
    r = start(t, c)
    poll_growth(t, r, c.out["out"], "(d) two signals")
    r.p.send_signal(signal.SIGTERM)
    r.p.send_signal(signal.SIGINT)
    sent = time.monotonic()
    res = r.wait(10 * t.slow, "(d) SIGTERM + SIGINT")
    t.check_rc(res, 130, "(d) SIGTERM + SIGINT at once")
    t.check(time.monotonic() - sent < 2.0 * t.slow, "(d) the second signal stopped it within %.1f s"
            % (2.0 * t.slow), res.describe())
    res = run_to_end(t, c, "(d) rerun after exit 130", timeout=60)
    check_final(c, res, "(d) exit 130 + rerun")


def poll_growth(t, r, path, what, above=0, timeout=20):
    """Wait until path (a visible sink file) holds more than `above` bytes: a
    checkpoint completed and published."""
    deadline = time.monotonic() + timeout * t.slow
    while True:
        if r.poll() is not None:
            t.fail("%s: the run ended (exit %s) before the visible output grew past %d bytes\n%s"
                   % (what, r.poll(), above, r.result(r.poll()).describe()))
        try:
            if os.path.getsize(path) > above:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            t.fail("%s: the visible output did not grow past %d bytes within %.0f s (no checkpoint "
                   "completed?)\n%s" % (what, above, timeout * t.slow, r.result("running").describe()))
        time.sleep(0.01)


# ---- (i) source.generator resumes from its stored position ----------------------------

GENERATOR = """\
pipeline: checkpoint-generator
state_dir: %(state)s
checkpoint: {interval: 100ms}
batch: {max_events: 256, linger: 5ms}
operators:
  gen:
    type: source.generator
    count: %(count)d
    rate: %(rate)d
    seed: 3
  uniq_ids:
    type: dedup
    input: gen
    key: id
    horizon: 1h
  out:
    type: sink.file
    input: uniq_ids
    path: %(out)s
"""


def scenario_generator(t, root):
    """(i) kill -9 twice and SIGTERM once during a paced generator run: the
    output is line for line that of an uninterrupted run (the generator's
    position and random stream, and dedup's state, restored)."""
    count, rate = 30000, 12000

    def case(name):
        c = Case(root, name, "")
        c.out = {"out": os.path.join(c.outdir, "out.jsonl")}
        e2elib.write_pipeline(c.yaml, GENERATOR % {"state": e2elib.yaml_str(c.state), "count": count,
                                                   "rate": rate, "out": e2elib.yaml_str(c.out["out"])})
        return c

    ref = case("gen-ref")
    run_to_end(t, ref, "(i) generator: uninterrupted run", timeout=60)
    want = read_lines(ref.out["out"])
    t.check(len(want) > count * 0.9, "(i) generator: %d of %d events pass dedup" % (len(want), count))

    c = case("gen-crash")
    vis = Visible(c.out.values())
    rnd = random.Random(8)
    for i, how in enumerate(("kill -9", "kill -9", "SIGTERM")):
        r = start(t, c)
        poll_growth(t, r, c.out["out"], "(i) generator run %d" % (i + 1), above=vis.total())
        time.sleep(rnd.uniform(0.0, 0.2))   # not a synchronisation: kill between checkpoints too
        if r.poll() is not None:
            t.fail("(i) generator: run %d ended (exit %s) before the %s\n%s"
                   % (i + 1, r.poll(), how, r.result(r.poll()).describe()))
        if how == "SIGTERM":
            stop(t, r, signal.SIGTERM, "(i) generator: SIGTERM in run %d" % (i + 1))
        else:
            r.kill9()
        grown = vis.advance(t, "(i) generator: after %s in run %d" % (how, i + 1),
                            killed=how == "kill -9")
        t.check(grown > 0, "(i) generator: %s in run %d after %d more bytes were published"
                % (how, i + 1, grown))
    res = run_to_end(t, c, "(i) generator: last run", timeout=60)
    got = read_lines(c.out["out"])
    if got != want:
        first = next((k for k, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
        t.fail("(i) generator: after 2 x kill -9 and a SIGTERM the output differs from an "
               "uninterrupted run: %d lines expected, %d written; first difference at line %d:\n"
               "  expected: %s\n  got:      %s\n%s"
               % (len(want), len(got), first + 1,
                  want[first][:200] if first < len(want) else "(end)",
                  got[first][:200] if first < len(got) else "(end)", res.describe()))
    t.ok("(i) generator: after 2 x kill -9 and a SIGTERM, the %d lines of an uninterrupted run, "
         "in order" % len(want))
    check_no_leftovers(t, c, "(i) generator")


PARTS = ("b", "c", "h", "a", "e", "f", "g", "d", "i")


def add_args(ap):
    ap.add_argument("--only", default="", help="comma-separated parts to run (%s); default all"
                    % ",".join(PARTS))


def main(t):
    only = set(filter(None, t.args.only.split(","))) or set(PARTS)
    bad = only - set(PARTS)
    if bad:
        t.fail("unknown part(s) %s: choose among %s" % (sorted(bad), ",".join(PARTS)))
    root = t.tmpdir()
    n = int(EVENTS / t.slow)
    events = t.gen_events(os.path.join(root, "events.jsonl"), n, SEED)
    steps = []
    failed = []

    def step(name, fn, *a):
        """Run one part; a failed part is reported at the end, the next runs."""
        if name not in only and name != "ref":
            return None
        t0 = time.monotonic()
        try:
            return fn(*a)
        except e2elib.Failure as e:
            if name == "ref":
                raise
            t.log("FAILED part (%s): %s" % (name, e))
            failed.append("part (%s): %s" % (name, e))
        finally:
            steps.append("%s %.1f s" % (name, time.monotonic() - t0))

    truth, ref, ref_elapsed = step("ref", scenario_reference, t, root, events)
    ref_state = os.path.join(root, "completed-state")
    shutil.copytree(ref.state, ref_state)
    step("b", scenario_rerun_completed, t, ref)
    step("c", scenario_fresh, t, truth, ref)
    step("h", scenario_no_checkpoint, t, truth, root, events)
    step("a", scenario_sigterm, t, truth, root, events, ref_elapsed)
    step("e", scenario_unrelated_change, t, truth, root, events, ref_elapsed)
    step("f", scenario_incompatible, t, truth, root, events, ref_elapsed)
    step("g", scenario_corrupt, t, truth, ref_state, root, events)
    step("d", scenario_slow_sink, t, root)
    step("i", scenario_generator, t, root)
    t.log("time per part: " + ", ".join(steps))
    if failed:
        t.fail("%d of %d parts failed (each is shown above as FAILED part):\n%s"
               % (len(failed), len(only), "\n\n".join(failed)))


if __name__ == "__main__":
    e2elib.main(main, add_args)
