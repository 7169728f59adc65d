#!/usr/bin/env python3
"""N events from gen_events.py through source.file -> sink.file come out
exactly as they went in (same count, same order, each event equal to its input
line as JSON, `time` equal as an instant); the same pipeline run with
--no-fusion writes byte-identical output.

N: $SLUICE_E2E_EVENTS, else --events (meson passes it), else 1000000.
"""
import filecmp
import os
import re

import e2elib

PIPELINE = """\
pipeline: roundtrip
batch: {max_events: 1024, linger: 5ms}
operators:
  events:
    type: source.file
    path: %(input)s
    format: jsonl
  copy:
    type: sink.file
    input: events
    path: ${OUT:-out/default.jsonl}
    fuse: true
"""


def add_args(ap):
    ap.add_argument("--events", type=int, default=1000000)


def main(t):
    n = int(os.environ.get("SLUICE_E2E_EVENTS") or t.args.events)
    d = t.tmpdir()
    src = t.gen_events(os.path.join(d, "events.jsonl"), n, 11)
    pipe = e2elib.write_pipeline(os.path.join(d, "roundtrip.yaml"),
                                 PIPELINE % {"input": e2elib.yaml_str(src)})

    # The two runs really differ in how they execute: one stage vs two.
    g = t.run(["graph", pipe])
    t.check_rc(g, 0, "sluice graph")
    t.check(re.search(r'"events"\S* -> "copy"[^\n]*fused', g.stdout.decode()) is not None,
            "fused plan: events -> copy is a fused edge", g.describe())
    g = t.run(["graph", pipe, "--no-fusion"])
    t.check(re.search(r'"events"\S* -> "copy"[^\n]*forward', g.stdout.decode()) is not None,
            "--no-fusion plan: events -> copy is a forward edge", g.describe())

    # Output path from the environment here, from --set below; the parent
    # directory does not exist yet (the sink makes it).
    fused_out = os.path.join(d, "out", "fused.jsonl")
    env = dict(os.environ, OUT=fused_out)
    r = t.run(["run", pipe, "--no-progress"], timeout=240, env=env, cwd=d)
    t.check_rc(r, 0, "sluice run (fused), %d events" % n)
    t.log("fused run: %.2f s, %.0f events/s" % (r.elapsed, n / max(r.elapsed, 1e-9)))
    t.check_eq(e2elib.count_lines(fused_out), n, "fused run: output lines")
    e2elib.compare_jsonl(t, src, fused_out, "fused run")

    plain_out = os.path.join(d, "out", "unfused.jsonl")
    r = t.run(["run", pipe, "--no-progress", "--no-fusion", "--set",
               "operators.copy.path=" + plain_out], timeout=240, cwd=d)
    t.check_rc(r, 0, "sluice run --no-fusion, %d events" % n)
    t.log("unfused run: %.2f s, %.0f events/s" % (r.elapsed, n / max(r.elapsed, 1e-9)))
    t.check(filecmp.cmp(fused_out, plain_out, shallow=False),
            "--no-fusion output is byte-identical to the fused output (%d bytes)"
            % os.path.getsize(fused_out),
            "sizes: fused %d, unfused %d bytes" % (os.path.getsize(fused_out), os.path.getsize(plain_out)))


if __name__ == "__main__":
    e2elib.main(main, add_args)
