#!/usr/bin/env python3
"""Backpressure: a fast source.generator (300000 events, no rate limit) ->
identity -> a slow sink.null (5 ms per batch), each in its own stage.  The slow
sink must throttle the source through the bounded queues, so the process's
resident memory stays far below what buffering the whole stream would take
(~47 MB of msgpack).  VmRSS is sampled every 50 ms; the run must exit 0 and
every event must reach the slow sink (its final --progress line) and a second,
file sink on the same stream (exact count, ids in order)."""
import json
import os
import signal
import time

import e2elib

COUNT = 300000
DELAY_MS = 5
BATCH = 1024

PIPELINE = """\
pipeline: backpressure
batch: {max_events: %(batch)d, linger: 5ms}
operators:
  gen:
    type: source.generator
    count: %(count)d
    rate: 0
    dup_frac: 0
  hop:
    type: identity
    input: gen
    fuse: false
  slow:
    type: sink.null
    input: hop
    delay: %(delay)dms
    fuse: false
  copy:
    type: sink.file
    input: hop
    path: %(out)s
    fuse: false
"""


def add_args(ap):
    ap.add_argument("--max-rss-mb", type=float, default=0,
                    help="bound on peak VmRSS above an idle pipeline's, MB (default 22)")


IDLE = """\
pipeline: idle
operators:
  wait: {type: source.zmq, endpoint: "ipc://%(sock)s"}
  sink: {type: sink.null, input: wait}
"""


def baseline_rss_kb(t, d, env):
    """VmRSS of the same binary running a pipeline that holds no events (a
    source waiting on an ipc socket): the libraries, sanitizer shadow and
    thread stacks, which the bound below is not about."""
    pipe = e2elib.write_pipeline(os.path.join(d, "idle.yaml"),
                                 IDLE % {"sock": os.path.join(d, "idle.sock")})
    p = t.spawn(["run", pipe, "--no-progress"], cwd=d, env=env)
    time.sleep(0.5 * t.slow)
    rss = 0
    for _ in range(5):
        rss = max(rss, e2elib.vm_rss_kb(p.pid) or 0)
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    t.wait(p, 30, "the idle pipeline after SIGINT")
    if not rss:
        t.fail("could not read the idle pipeline's VmRSS")
    return rss


def main(t):
    d = t.tmpdir()
    out = os.path.join(d, "copy.jsonl")
    pipe = e2elib.write_pipeline(os.path.join(d, "backpressure.yaml"), PIPELINE % {
        "batch": BATCH, "count": COUNT, "delay": DELAY_MS, "out": e2elib.yaml_str(out)})
    env = dict(os.environ)
    bound_mb = t.args.max_rss_mb or 22.0
    if "address" in t.sanitize:
        # ASan's quarantine holds freed memory (256 MB by default) and would
        # hide the queues; keep it small for this measurement.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64").lstrip(":")
    base = baseline_rss_kb(t, d, env)
    t.log("baseline VmRSS of an idle pipeline: %.1f MB" % (base / 1024.0))

    stderr_path = os.path.join(d, "stderr.txt")
    with open(stderr_path, "wb") as errf:
        p = t.spawn(["run", pipe, "--progress"], cwd=d, env=env, stdout=open(os.devnull, "wb"),
                    stderr=errf)
        peak = 0
        samples = 0
        deadline = time.monotonic() + 120 * t.slow
        while p.poll() is None:
            rss = e2elib.vm_rss_kb(p.pid)
            if rss is not None:
                peak = max(peak, rss)
                samples += 1
            if time.monotonic() > deadline:
                p.kill()
                p.wait()
                t.fail("the run did not finish within %.0f s (killed)" % (120 * t.slow))
            time.sleep(0.05)
        elapsed = time.monotonic() - p.started
    with open(stderr_path, "rb") as f:
        err = f.read().decode("utf-8", "replace")
    res = e2elib.Result(p.argv, p.returncode, b"", err.encode(), elapsed)
    t.check_rc(res, 0, "run with a slow sink")
    t.log("peak VmRSS %.1f MB over %d samples, run took %.2f s" % (peak / 1024.0, samples, elapsed))
    t.check(samples >= 5, "VmRSS sampled %d times while the pipeline ran" % samples)
    # The sink really was the bottleneck: it sleeps at least once per full batch.
    min_secs = (COUNT // BATCH) * DELAY_MS / 1000.0
    t.check(elapsed >= min_secs * 0.8, "the slow sink paced the run: %.2f s >= %.2f s"
            % (elapsed, min_secs * 0.8), res.describe())
    grown = (peak - base) / 1024.0
    t.check(grown < bound_mb, "peak VmRSS %.1f MB is %.1f MB above an idle pipeline's, < %.0f MB "
            "(the whole stream would be about 47 MB of msgpack)"
            % (peak / 1024.0, grown, bound_mb), res.describe())

    progress = e2elib.final_progress(err)
    if "slow" not in progress:
        t.fail("no --progress line for 'slow' on stderr:\n" + err[-3000:])
    got = progress["slow"][0]
    # --progress humanises counts (4 significant digits): allow its rounding.
    t.check(abs(got - COUNT) <= COUNT * 0.0005 + 1,
            "final progress: slow sink received %.0f events (~%d)" % (got, COUNT), err[-2000:])
    n = e2elib.count_lines(out)
    t.check_eq(n, COUNT, "events written by the file sink on the same stream")
    with open(out, "rb") as f:
        for i, line in enumerate(f):
            if json.loads(line)["id"] != "evt-%010d" % i:
                t.fail("copy: line %d has id %r, expected evt-%010d" % (i + 1, json.loads(line)["id"], i))
    t.ok("copy: ids evt-0000000000..evt-%010d in order" % (COUNT - 1))


if __name__ == "__main__":
    e2elib.main(main, add_args)
