#!/usr/bin/env python3
"""Crash recovery (issue 6): kill -9 at >= 20 points of a run, restart, and
the final output equals an uninterrupted run.

1. File pipeline: gen_events.py (200000 events, seed 31; divided by twice
   the sanitizer slowdown) -> source.file (watermark max_out_of_order 10s:
   the generator's events are at most 5 s late, so nothing is late and
   results do not depend on timing) -> dedup (key id) -> route orders /
   payments -> transforms -> join (orderId, within 3m) -> sink.file, and
   orders -> aggregate (tumbling 1m + hopping 10m/1m, grouping sets [],
   [status], [customerId]; count, sum, avg, count_distinct, percentile) ->
   sink.file; duplicates and late events -> sink.file too; `checkpoint:
   {interval: 150ms}`.  The pipeline is test_checkpoint.py's.

   Reference: one uninterrupted run (its own state_dir), duration D.  Then,
   with a seeded random.Random: start the run, let it live a random time,
   kill -9, restart ... until a run exits by itself (it must exit 0); that
   sequence's outputs (sorted lines; the duplicates' wall-clock envelope
   `time` left out) must equal the reference, the main ones non-empty, and
   no *.pending / *.part-* file may remain.  The first run of a sequence
   lives a random time in the third of D (early, middle, late) with the
   fewest kills so far (an exact position: nothing was interrupted before),
   the restarts a random time in (0, D).  Sequences (fresh output and state directories each) go on
   until >= 20 kills were made, at least 3 in each third of the run.  After
   every kill the visible output files must only have grown: the bytes they
   held are a prefix of what they hold now, and they end with a whole line.
   Each kill's phase is printed too, from /proc/PID/fdinfo of the input:
   input not open yet, being read (how much), all read (draining, final
   checkpoint).

2. The event log (skipped while sink.log / source.log do not exist):
   file -> sink.log (checkpoint interval 50ms) killed at three random points
   of its input, restarted: reading the log back (source.log -> sink.file)
   gives each input id exactly once, in input order, with its attributes,
   as after an uninterrupted fill, and `sluice log stats` counts them; then
   source.log (follow: false) -> dedup (by orderId) -> aggregate ->
   sink.file under >= 20 kill -9 points as in 1, compared with an
   uninterrupted run over the same log.

--seed changes the kill schedule, --min-kills the number of kill points,
--only file|log runs one part; --parallelism N (dedup and join of the file
part) and --no-fusion explore more channels to align.
"""
import collections
import json
import os
import random
import re
import time

import e2elib
import test_checkpoint as ck

EVENTS = 200000
SEED = 31
INTERVAL = "150ms"
MIN_PER_THIRD = 3

MAIN_SINKS = ("joined", "metrics", "dups")


def add_args(ap):
    ap.add_argument("--seed", type=int, default=20260106)
    ap.add_argument("--min-kills", type=int, default=20)
    ap.add_argument("--only", default="", help="file or log (default both)")
    ap.add_argument("--parallelism", type=int, default=1,
                    help="file part: parallelism of the dedup and the join (more channels to align)")
    ap.add_argument("--no-fusion", action="store_true", help="run every operator in a stage of its own")


class Stats:
    def __init__(self):
        self.kills = []          # (phase, fraction of the input or None, estimated progress)
        self.after_publish = 0   # kills made when the sequence had published output
        self.runs = 0
        self.sequences = 0
        self.checkpoints = 0     # taken by runs that ended (their stderr's summary)
        self.restored = 0        # runs whose stderr says it restored a checkpoint

    def scan_stderr(self, text):
        """Informational only: the engine's own words, whatever they are."""
        self.checkpoints += sum(int(n) for n in re.findall(r"checkpoints: (\d+) taken", text))
        if re.search(r"restor\w* checkpoint", text):
            self.restored += 1

    def thirds(self):
        c = collections.Counter()
        for _, _, est in self.kills:
            c[min(2, int(est * 3))] += 1
        return [c[0], c[1], c[2]]

    def covered(self, min_kills):
        return len(self.kills) >= min_kills and min(self.thirds()) >= MIN_PER_THIRD


def crash_loop(t, make_case, input_path, sinks, duration, stats, rnd, what, compare, min_kills,
               max_kills=None):
    """Sequences of kill -9 / restart until enough kill points; compare each
    completed sequence with compare(case, what, result).

    When a run is killed: the first run of a sequence lives a random time in
    the third of the reference duration D that has had the fewest kills so
    far (its position in the run is exact: nothing was interrupted before
    it); the restarts live a random time in (0, D).  A kill's position in the run is
    its lifetime / D for a first run, else the sequence's summed run time /
    D (an over-estimate: restoring and replaying count), at most 1.
    With input_path (a file the source reads with read(2)) the phase is also
    recorded from the input's fd offset in /proc: "startup" (not open yet),
    "reading" (with the fraction read: read-ahead runs well in front of the
    processing), "drain" (all read: windows closing, the final checkpoint)."""
    size = os.path.getsize(input_path) if input_path else None
    max_kills = max_kills or 3 * min_kills + 20
    max_runs_per_seq = 60
    t_start = time.monotonic()
    max_time = 60 * duration + 60
    while not stats.covered(min_kills):
        if time.monotonic() - t_start > max_time:
            t.fail("%s: the kill loop ran %.0f s (limit 60 x the reference duration + 60 s) with %d "
                   "kills, per third of the run %s" % (what, time.monotonic() - t_start,
                                                        len(stats.kills), stats.thirds()))
        if len(stats.kills) >= max_kills:
            t.fail("%s: after %d kills the kill points still do not cover the run "
                   "(per third of the run: %s, want >= %d each)"
                   % (what, len(stats.kills), stats.thirds(), MIN_PER_THIRD))
        stats.sequences += 1
        case = make_case("%s-seq%d" % (what, stats.sequences))
        vis = ck.Visible([case.out[s] for s in sinks])
        seq_kills = 0
        seq_time = 0.0
        for n in range(1, max_runs_per_seq + 1):
            stats.runs += 1
            r = ck.start(t, case)
            if n == 1:
                # the third of the run with the fewest kills so far (restarts
                # mostly land late: their position only grows)
                th = stats.thirds()
                third = th.index(min(th))
                life = rnd.uniform(third * duration / 3, (third + 1) * duration / 3)
            else:
                life = rnd.uniform(0.0, duration)
            deadline = r.started + life
            seen_open = False
            frac = None

            def sample():
                nonlocal seen_open, frac
                if size is None:
                    return
                pos = ck.input_pos(r.p.pid, input_path)
                if pos is not None:
                    seen_open, frac = True, pos / size
                elif seen_open:
                    frac = 1.0          # closed after reading: the source ended

            while r.poll() is None:
                now = time.monotonic()
                if now >= deadline:
                    break
                sample()
                time.sleep(min(0.005, max(0.0, deadline - now)))
            if r.poll() is None:
                sample()
                if r.kill9():
                    lifetime = time.monotonic() - r.started
                    seq_time += lifetime
                    est = min(1.0, seq_time / duration)
                    if size is None:
                        phase = "running"
                    elif not seen_open:
                        phase = "startup"
                    elif frac >= 1.0:
                        phase = "drain"
                    else:
                        phase = "reading"
                    stats.kills.append((phase, frac, est))
                    seq_kills += 1
                    stats.scan_stderr(r.stderr().decode("utf-8", "replace"))
                    vis.advance(t, "%s: after kill %d (run %d of sequence %d, %.2f s into it, %s%s)"
                                % (what, len(stats.kills), n, stats.sequences, lifetime, phase,
                                   "" if phase != "reading" else " at %.0f%% of the input" % (frac * 100)),
                                killed=True)
                    if vis.total() > 0:
                        stats.after_publish += 1
                    continue
            res = r.wait(120 * t.slow, "%s: run %d of sequence %d" % (what, n, stats.sequences))
            stats.scan_stderr(res.stderr.decode("utf-8", "replace"))
            if res.rc != 0:
                t.fail("%s: run %d of sequence %d (after %d kills) exited %s instead of 0\n%s"
                       % (what, n, stats.sequences, seq_kills, res.rc, res.describe()))
            if n == 1 and res.elapsed < duration:
                # an uninterrupted run was quicker than the reference (which a
                # busy machine may have slowed): kill within the real run length
                t.log("%s: an uninterrupted run took %.2f s: kill times now drawn within that, "
                      "not %.2f s" % (what, res.elapsed, duration))
                duration = res.elapsed
            vis.advance(t, "%s: end of sequence %d" % (what, stats.sequences))
            compare(case, "%s: sequence %d (%d kills, %d runs)" % (what, stats.sequences, seq_kills, n),
                    res)
            ck.check_no_leftovers(t, case, "%s: sequence %d" % (what, stats.sequences))
            break
        else:
            t.fail("%s: sequence %d did not finish within %d runs (no progress between kills?)"
                   % (what, stats.sequences, max_runs_per_seq))
    th = stats.thirds()
    phases = collections.Counter(k[0] for k in stats.kills)
    t.check(stats.after_publish >= min_kills // 4,
            "%s: %d of the %d kills came after a checkpoint had published output (so the restart "
            "restores real state), want >= %d" % (what, stats.after_publish, len(stats.kills),
                                                  min_kills // 4))
    t.ok("%s: %d kill -9 points over %d sequences, %d runs (%d restarts); per third of the run: "
         "%d / %d / %d (%s); the runs that ended took %d checkpoints; %d runs said they restored one"
         % (what, len(stats.kills), stats.sequences, stats.runs, stats.runs - stats.sequences,
            th[0], th[1], th[2], ", ".join("%s %d" % kv for kv in sorted(phases.items())),
            stats.checkpoints, stats.restored))
    t.log("%s: kill points, %% of the run (s: input not open yet, r: reading, with %% of the input "
          "read, d: input all read): %s" % (what, " ".join(
              "%.0f%s" % (k[2] * 100, {"startup": "s", "drain": "d", "running": ""}.get(
                  k[0], "r%.0f" % ((k[1] or 0) * 100))) for k in stats.kills)))


def events_for(t, count):
    """Fewer events under sanitizers, where a checkpoint's pause grows more
    than the per-event cost (about 0.5 s a checkpoint with ASan+UBSan)."""
    return count if t.slow == 1 else int(count / (2 * t.slow))


def file_part(t, root, rnd):
    n = events_for(t, EVENTS)
    events = t.gen_events(os.path.join(root, "events.jsonl"), n, SEED)
    interval = "checkpoint: {interval: %s}\n" % INTERVAL
    over = {"checkpoint": interval}
    if t.args.parallelism > 1:
        par = "    parallelism: %d\n" % t.args.parallelism
        over.update(dedup_par=par, join_par=par)

    ref = ck.Case(root, "ref", events)
    ref.write(**over)
    res = ck.run_to_end(t, ref, "reference: an uninterrupted run", timeout=120)
    duration = res.elapsed
    t.log("reference run: %.2f s for %d events" % (duration, n))
    truth = ck.Truth(ref)
    for s in MAIN_SINKS:
        t.check(len(truth.lines[s]) > 0, "reference: %s has rows (%d)" % (s, len(truth.lines[s])))
    t.check_eq(len(truth.lines["late"]), 0, "reference: nothing late")
    ck.check_no_leftovers(t, ref, "reference")

    def make_case(name):
        c = ck.Case(root, name, events)
        c.write(**over)
        return c

    def compare(case, what, res):
        ck.compare_outputs(t, truth, case, what, detail=res.describe())

    stats = Stats()
    crash_loop(t, make_case, events, ck.SINKS, duration, stats, rnd, "file", compare,
               t.args.min_kills)


LOG_FILL = """\
pipeline: crash-log-fill
state_dir: %(state)s
checkpoint: {interval: 50ms}
operators:
  events_src:
    type: source.file
    path: %(events)s
  to_log:
    type: sink.log
    input: events_src
    path: %(log)s
"""

LOG_READ = """\
pipeline: crash-log-read
state_dir: %(state)s
operators:
  from_log:
    type: source.log
    path: %(log)s
    from: start
    follow: false
  out:
    type: sink.file
    input: from_log
    path: %(out)s
"""

# dedup by orderId drops each payment (its order came first, < 2 min before)
# and nothing ages out (the stream spans minutes of event time, horizon 1h):
# the result does not depend on timing.
LOG_ANALYTICS = """\
pipeline: crash-log-analytics
state_dir: %(state)s
checkpoint: {interval: %(interval)s}
batch: {max_events: 1024, linger: 5ms}
operators:
  from_log:
    type: source.log
    path: %(log)s
    from: start
    follow: false
    watermark: {max_out_of_order: 10s}
  first_per_order:
    type: dedup
    input: from_log
    key: data.orderId
    horizon: 1h
  per_minute:
    type: aggregate
    input: first_per_order
    windows: [{tumbling: 1m}, {hopping: 10m, every: 1m}]
    group_by: [[], [data.status], [data.customerId]]
    allowed_lateness: 0s
    compute:
      orders: count()
      revenue: sum(data.total)
      customers: count_distinct(data.customerId)
      p95: percentile(data.total, 0.95)
  metrics_out: {type: sink.file, input: per_minute, path: %(metrics)s}
  dups_out: {type: sink.file, input: first_per_order.duplicates, path: %(dups)s}
  late_out: {type: sink.file, input: per_minute.late, path: %(late)s}
"""

LOG_SINKS = ("metrics", "dups", "late")


class LogCase(ck.Case):
    def __init__(self, root, name, log, template, sinks):
        ck.Case.__init__(self, root, name, log)
        self.out = {s: os.path.join(self.outdir, s + ".jsonl") for s in sinks}
        v = {"state": e2elib.yaml_str(self.state), "interval": INTERVAL, "log": e2elib.yaml_str(log),
             "events": e2elib.yaml_str(getattr(self, "events_path", "") or "")}
        v.update({s: e2elib.yaml_str(p) for s, p in self.out.items()})
        self.template, self.v = template, v

    def write_with(self, **kw):
        v = dict(self.v)
        v.update({k: e2elib.yaml_str(x) for k, x in kw.items()})
        return e2elib.write_pipeline(self.yaml, self.template % v)


def read_log_ids(t, root, log, name):
    """Every event of the log, read back by a source.log -> sink.file run."""
    c = LogCase(root, name, log, LOG_READ, ("out",))
    c.write_with()
    ck.run_to_end(t, c, "%s: read the log back (source.log, follow: false)" % name, timeout=120)
    return e2elib.read_jsonl(c.out["out"])


def log_part(t, root, rnd):
    missing = [op for op in ("source.log", "sink.log") if t.run(["inspect", op], timeout=10).rc != 0]
    if missing:
        t.log("the event log part is skipped: no operator %s (sluice inspect)" % " / ".join(missing))
        return
    # Release: 0.6 x the file part's events (the log pipeline is lighter).
    # Sanitizers: the events / slowdown, more than the file part's share: a
    # checkpoint pauses ~0.5 s there, and a shorter run would be killed
    # mostly before its first checkpoint.
    n = int(EVENTS * 0.6) if t.slow == 1 else int(EVENTS / t.slow)
    events = t.gen_events(os.path.join(root, "log-events.jsonl"), n, SEED + 1)
    first = collections.OrderedDict()
    for line in open(events, "rb"):
        ev = json.loads(line)
        first.setdefault(ev["id"], ev)
    want_ids = list(first)

    # 1. file -> sink.log, uninterrupted and under kill -9
    log_ref = os.path.join(root, "log-ref")
    fill = LogCase(root, "log-fill-ref", log_ref, LOG_FILL, ())
    fill.write_with(events=events)
    res = ck.run_to_end(t, fill, "log: fill the event log, uninterrupted", timeout=120)
    fill_duration = res.elapsed
    t.log("log: filled with %d events in %.2f s" % (n, fill_duration))

    log_crash = os.path.join(root, "log-crash")
    fill = LogCase(root, "log-fill-crash", log_crash, LOG_FILL, ())
    fill.write_with(events=events)
    # kill -9 at a random fraction of the input read (the fill is quick: a
    # random time would mostly hit the start-up), three times, then let it end
    kills = []
    size = os.path.getsize(events)
    targets = sorted(rnd.uniform(0.05, 0.95) for _ in range(3))
    for i in range(1, 61):
        r = ck.start(t, fill)
        target = targets[len(kills)] if len(kills) < 3 else None
        pos = None
        while r.poll() is None and target is not None:
            pos = ck.input_pos(r.p.pid, events)
            if pos is not None and pos >= target * size:
                break
            time.sleep(0.0005)
        if target is not None and r.poll() is None and r.kill9():
            kills.append(pos / size)
            continue
        res = r.wait(120 * t.slow, "log: fill run %d" % i)
        t.check_rc(res, 0, "log: fill under kill -9: run %d ends after %d kills" % (i, len(kills)))
        break
    else:
        t.fail("log: the fill did not end within 60 runs")
    t.check(len(kills) > 0, "log: the fill was killed while reading its input (%d times)" % len(kills))
    t.log("log: fill killed at %s of the input read" % ", ".join("%.0f%%" % (k * 100) for k in kills))
    for log, what in ((log_ref, "uninterrupted fill"), (log_crash, "fill with %d kill -9" % len(kills))):
        got = read_log_ids(t, root, log, "read-" + os.path.basename(log))
        ids = [ev.get("id") for ev in got]
        if ids != want_ids:
            c = collections.Counter(ids)
            twice = [k for k, m in c.items() if m > 1]
            t.fail("log (%s): the log does not hold each input id once, in input order: %d ids "
                   "expected, %d read, %d twice (e.g. %s), %d missing (e.g. %s)"
                   % (what, len(want_ids), len(ids), len(twice), twice[:3],
                      len(set(want_ids) - set(ids)), sorted(set(want_ids) - set(ids))[:3]))
        bad = [ev for ev in got
               if not all(e2elib.events_equal({k: first[ev["id"]][k]}, {k: ev.get(k)})
                          for k in first[ev["id"]])]
        t.check(not bad, "log (%s): each of the %d unique input events once, in input order, "
                "its attributes as in the input" % (what, len(want_ids)),
                "first differing: %s" % (bad[:1],))
    st = t.run(["log", "stats", log_crash], timeout=30)
    if st.rc == 2 and b"unknown command" in st.stderr:
        t.log("log: `sluice log` does not exist yet: the log was checked by reading it back only")
    else:
        t.check_rc(st, 0, "sluice log stats")
        text = (st.stdout + st.stderr).decode("utf-8", "replace")
        t.check(re.search(r"(?<![\d.])%d(?![\d.])" % len(want_ids), text.replace(",", "")) is not None,
                "sluice log stats reports %d events" % len(want_ids), st.describe())

    # 2. source.log -> dedup -> aggregate -> sink.file under kill -9
    ref = LogCase(root, "log-analytics-ref", log_ref, LOG_ANALYTICS, LOG_SINKS)
    ref.write_with()
    res = ck.run_to_end(t, ref, "log: reference analytics run over the log", timeout=120)
    duration = res.elapsed
    truth = ck.Truth(ref, LOG_SINKS)
    for s in ("metrics", "dups"):
        t.check(len(truth.lines[s]) > 0, "log reference: %s has rows (%d)" % (s, len(truth.lines[s])))
    t.check_eq(len(truth.lines["late"]), 0, "log reference: nothing late")
    ck.check_no_leftovers(t, ref, "log reference")

    def make_case(name):
        c = LogCase(root, name, log_ref, LOG_ANALYTICS, LOG_SINKS)
        c.write_with()
        return c

    def compare(case, what, res):
        ck.compare_outputs(t, truth, case, what, detail=res.describe())

    stats = Stats()
    crash_loop(t, make_case, None, LOG_SINKS, duration, stats, rnd, "log", compare, t.args.min_kills)


def main(t):
    only = t.args.only
    if only not in ("", "file", "log"):
        t.fail("--only: file or log")
    if t.args.no_fusion:
        ck.RUN_ARGS.append("--no-fusion")
    root = t.tmpdir()
    rnd = random.Random(t.args.seed)
    t.log("kill schedule seed %d" % t.args.seed)
    if only in ("", "file"):
        t0 = time.monotonic()
        file_part(t, root, rnd)
        t.log("file part: %.1f s" % (time.monotonic() - t0))
    if only in ("", "log"):
        t0 = time.monotonic()
        log_part(t, root, rnd)
        t.log("log part: %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    e2elib.main(main, add_args)
