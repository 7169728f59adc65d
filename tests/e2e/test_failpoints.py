#!/usr/bin/env python3
"""test_failpoints.py - a crash at each dangerous instant of a checkpoint.

Random `kill -9`s (test_crash.py) rarely land in the microseconds between a
checkpoint's commit and the sink's publication. SLUICE_CRASH_AT=<name>:<n>
(engine/failpoint.h) makes the engine SIGKILL itself the n-th time it passes
one of those instants. For each failpoint and n, the first run must die
there, the second (no failpoint) must finish, and every sink's file must
equal an uninterrupted run's, with no pending or part file left behind.
"""
import os

import e2elib

FAILPOINTS = ("checkpoint.before_commit", "checkpoint.after_commit", "file.after_rename",
              "file.mid_publish", "file.after_publish")
PASSES = (1, 2, 3)

PIPELINE = """\
pipeline: failpoints
state_dir: {state}
checkpoint: {{interval: 20ms}}
batch: {{max_events: 256, linger: 5ms}}
operators:
  events:
    type: source.file
    path: {events}
    watermark: {{max_out_of_order: 300s}}
  unique:
    type: dedup
    input: events
  per_type:
    type: aggregate
    input: unique
    windows: [{{tumbling: 1m}}]
    group_by: [[type]]
    compute: {{n: count(), total: sum(data.total)}}
  metrics_out:
    type: sink.file
    input: per_type
    path: {out}/metrics.jsonl
  raw_out:
    type: sink.file
    input: unique
    path: {out}/raw.jsonl
"""
SINKS = ("metrics.jsonl", "raw.jsonl")


def run_case(t, tmp, events, name, state, out, env=None):
    path = os.path.join(tmp, name + ".yaml")
    e2elib.write_pipeline(path, PIPELINE.format(state=e2elib.yaml_str(state), events=events,
                                                out=out))
    return t.run(["run", "--no-progress", path], timeout=120, env=env)


def sorted_lines(path):
    with open(path, "rb") as f:
        return sorted(f.read().splitlines())


def main(t):
    tmp = t.tmpdir()
    events = t.gen_events(os.path.join(tmp, "events.jsonl"), 60000, 11)
    ref_out = os.path.join(tmp, "ref")
    r = run_case(t, tmp, events, "ref", os.path.join(tmp, "ref-state"), ref_out)
    t.check_rc(r, 0, "the uninterrupted run")
    want = {s: sorted_lines(os.path.join(ref_out, s)) for s in SINKS}
    t.check(all(want.values()), "the uninterrupted run wrote every sink")
    for fp in FAILPOINTS:
        for n in PASSES:
            tag = "%s-%d" % (fp.replace(".", "_"), n)
            state, out = os.path.join(tmp, tag + "-state"), os.path.join(tmp, tag)
            env = dict(os.environ, SLUICE_CRASH_AT="%s:%d" % (fp, n))
            r = run_case(t, tmp, events, tag, state, out, env)
            t.check(r.rc == -9, "SLUICE_CRASH_AT=%s:%d kills the run there" % (fp, n),
                    r.describe())
            r = run_case(t, tmp, events, tag, state, out)
            t.check_rc(r, 0, "the restart after %s:%d" % (fp, n))
            # before the first commit there is no checkpoint yet: the restart starts afresh
            first_commit_done = n > 1 or fp not in ("checkpoint.before_commit",
                                                    "file.after_rename")
            t.check_eq("restored checkpoint" in r.stderr.decode(), first_commit_done,
                       "the restart restores a checkpoint iff one was complete")
            for s in SINKS:
                got = sorted_lines(os.path.join(out, s))
                t.check(got == want[s], "%s after %s:%d equals the uninterrupted run's (%d lines)"
                        % (s, fp, n, len(got)),
                        "got %d lines, want %d" % (len(got), len(want[s])))
            left = sorted(f for f in os.listdir(out) if f not in SINKS)
            t.check_eq(left, [], "nothing pending is left in the output directory")


if __name__ == "__main__":
    e2elib.main(main)
