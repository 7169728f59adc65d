#!/usr/bin/env python3
"""Graceful stop: an unbounded source.generator (100000 events/s) -> sink.file
stopped by SIGINT (and by SIGTERM) after ~1.5 s exits 0 within 2 s and has
written exactly evt-0000000000 .. evt-<N-1> (N > 0): nothing lost in flight,
nothing duplicated.  A second signal during the drain stops at once (within
0.5 s, though batches are still queued for a slow sink): exit 130.

All the cases run; the failures are listed together at the end."""
import json
import os
import signal
import time

import e2elib

PIPELINE = """\
pipeline: sigint
batch: {max_events: 1024, linger: 5ms}
operators:
  gen:
    type: source.generator
    count: 0
    rate: 100000
    dup_frac: 0
  hop:
    type: identity
    input: gen
    fuse: %(fuse)s
  out:
    type: sink.file
    input: hop
    path: %(out)s
"""

# A drain that takes a while: an unbounded source at full speed into a slow
# sink (each batch of 1024 events costs DELAY; the queues hold several batches).
SLOW = """\
pipeline: sigint-slow
batch: {max_events: 1024, linger: 5ms}
operators:
  gen:
    type: source.generator
    count: 0
    dup_frac: 0
%(hop)s  slow:
    type: sink.null
    input: %(slow_input)s
    delay: %(delay)s
    fuse: false
"""
HOP = """\
  hop:
    type: identity
    input: gen
    fuse: false
"""


def graceful(t, d, name, sig, fuse):
    out = os.path.join(d, name + ".jsonl")
    pipe = e2elib.write_pipeline(os.path.join(d, name + ".yaml"), PIPELINE % {
        "fuse": "true" if fuse else "false", "out": e2elib.yaml_str(out)})
    p = t.spawn(["run", pipe, "--no-progress"], cwd=d)
    time.sleep(1.5)
    t.check(p.poll() is None, "%s: still running after 1.5 s (unbounded source)" % name)
    p.send_signal(sig)
    sent = time.monotonic()
    r = t.wait(p, 2.0 * t.slow + 10, "%s: sluice run after %s" % (name, signal.Signals(sig).name))
    took = time.monotonic() - sent
    t.check_rc(r, 0, "%s: exit after %s" % (name, signal.Signals(sig).name))
    t.check(took <= 2.0 * t.slow, "%s: exited %.2f s after the signal (limit %.1f s)"
            % (name, took, 2.0 * t.slow), r.describe())
    ids = []
    with open(out, "rb") as f:
        for i, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                t.fail("%s: line %d is cut short (no newline): %r" % (name, i, line[-100:]))
            try:
                ids.append(json.loads(line)["id"])
            except (ValueError, KeyError) as e:
                t.fail("%s: line %d is not an event (%s): %r" % (name, i, e, line[:200]))
    n = len(ids)
    t.check(n > 0, "%s: %d events written before the stop" % (name, n))
    if ids != ["evt-%010d" % i for i in range(n)]:
        seen = set(ids)
        dups = len(ids) - len(seen)
        gaps = [i for i in range(n) if "evt-%010d" % i not in seen][:5]
        first_bad = next(i for i, x in enumerate(ids) if x != "evt-%010d" % i)
        t.fail("%s: ids are not evt-0000000000..evt-%010d: %d duplicates, missing e.g. %r, "
               "first difference at line %d: %r" % (name, n - 1, dups, gaps, first_bad + 1,
                                                     ids[first_bad]))
    t.ok("%s: ids are exactly evt-0000000000..evt-%010d, no gap, no duplicate" % (name, n - 1))


def twice(t, d, name, gap, hop, delay):
    pipe = e2elib.write_pipeline(os.path.join(d, name + ".yaml"), SLOW % {
        "hop": HOP if hop else "", "slow_input": "hop" if hop else "gen", "delay": delay})
    p = t.spawn(["run", pipe, "--no-progress"], cwd=d)
    time.sleep(1.0)
    t.check(p.poll() is None, "%s: still running after 1 s" % name)
    p.send_signal(signal.SIGINT)
    time.sleep(gap)
    t.check(p.poll() is None, "%s: still draining %.1f s after the first SIGINT" % (name, gap))
    p.send_signal(signal.SIGINT)
    sent = time.monotonic()
    r = t.wait(p, 2.0 * t.slow + 10, "%s: sluice run after a second SIGINT" % name)
    took = time.monotonic() - sent
    # "At once": within a few of the slow sink's per-batch sleeps, not after
    # the queued batches have been drained.
    limit = 0.5 * t.slow
    problems = []
    if r.rc != 130:
        problems.append("expected exit status 130, got %s" % r.rc)
    if took > limit:
        problems.append("stopped %.2f s after the second signal (limit %.1f s)" % (took, limit))
    if problems:
        t.fail("%s: a second SIGINT during the drain must stop at once (exit 130 within %.1f s): %s\n%s"
               % (name, limit, "; ".join(problems), r.describe()))
    t.ok("%s: a second SIGINT during the drain stops at once: exit 130 after %.2f s (limit %.1f s)"
         % (name, took, limit))


def main(t):
    d = t.tmpdir()
    failures = []

    def case(name, fn, *args):
        try:
            fn(t, d, name, *args)
        except e2elib.Failure as e:
            print("FAIL (%s): %s" % (name, e), flush=True)
            failures.append(name)
            for p in t.children:
                if p.poll() is None:
                    p.kill()
                    p.wait()

    case("sigint_fused", graceful, signal.SIGINT, True)
    case("sigint_unfused", graceful, signal.SIGINT, False)
    case("sigterm", graceful, signal.SIGTERM, False)
    case("two_sigints_3_stages", twice, 0.2, True, "100ms")
    case("two_sigints_2_stages", twice, 0.2, False, "50ms")
    if failures:
        t.fail("%d of 5 cases failed: %s" % (len(failures), ", ".join(failures)))


if __name__ == "__main__":
    e2elib.main(main)
