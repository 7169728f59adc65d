#!/usr/bin/env python3
"""bench_checkpoint.py - what checkpoints cost (docs/checkpoints.md).

  tools/bench/bench_checkpoint.py [BUILDDIR]
  meson test -C BUILDDIR --benchmark -v checkpoint

For aggregates of growing state (10M generator events, count and sum per
group: 5 statuses per minute, then 1k, 100k and 1M customers in one
1-day window), runs the same pipeline without checkpoints and with
`checkpoint: {interval: 1s}`, BENCH_REPEAT times each, taking turns, and
reports the best wall time of each, the overhead, and what the engine logs
at the end of a checkpointed run: how many checkpoints, their pause
(barriers + snapshots + commit and fsync, during which the pipeline stands
still) and the state_dir's size. Nothing is asserted.

Environment: BENCH_SCALE (event count factor), BENCH_REPEAT (3).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the harness's helpers: pipelines, aggregate_ops, log)

CASES = (  # row name, the generator's extra parameters, window, group_by
    ("agg(status), 1m windows", "", "1m", "[[data.status]]"),
    ("agg(customer), 1k customers", "\n    customers: 1000", "1d", "[[data.customerId]]"),
    ("agg(customer), 100k customers", "\n    customers: 100000", "1d", "[[data.customerId]]"),
    ("agg(customer), 1M customers", "\n    customers: 1000000", "1d", "[[data.customerId]]"),
)

SUMMARY = re.compile(r"checkpoints: (\d+) taken.*?pause ([\d.]+) ms average, ([\d.]+) ms max; "
                     r"snapshots and sync ([\d.]+) ms average; state_dir ([\d.]+) MiB at most")


def pipeline(path, n, gen_extra, window, group_by, state_dir, checkpoint):
    bench.write(path, f"""\
pipeline: bench-checkpoint
state_dir: {state_dir}
{"checkpoint: {interval: 1s}" if checkpoint else ""}
{bench.BATCH}
operators:
  gen:
    type: source.generator
    count: {n}
    seed: 7{gen_extra}
    watermark: {{max_out_of_order: 10s}}
{bench.aggregate_ops(window, group_by)}
  sink: {{type: sink.null, input: op}}
""")


def run(sluice, path, state_dir, cwd):
    shutil.rmtree(state_dir, ignore_errors=True)
    t0 = time.monotonic()
    p = subprocess.run([sluice, "run", "--no-progress", path], cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit("bench: %s failed:\n%s" % (path, p.stderr))
    shutil.rmtree(state_dir, ignore_errors=True)
    return wall, p.stderr


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(bench.ROOT, "build"))
    sluice = os.path.join(build, "tools", "sluice")
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    n = max(1, int(bench.GEN_EVENTS * scale))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as tmp:
        state_dir = os.path.join(tmp, "state")
        for name, extra, window, group_by in CASES:
            paths = []
            for ck in (False, True):
                paths.append(os.path.join(tmp, "p%d.yaml" % ck))
                pipeline(paths[-1], n, extra, window, group_by, state_dir, ck)
            best = [None, None]
            summary = None
            for i in range(repeat):
                for k, path in enumerate(paths):
                    wall, err = run(sluice, path, state_dir, tmp)
                    bench.log("  %-32s %-14s run %d/%d: %.3f s" %
                              (name, "checkpoint 1s" if k else "no checkpoint", i + 1, repeat, wall))
                    if best[k] is None or wall < best[k]:
                        best[k] = wall
                        if k:
                            summary = SUMMARY.search(err)
            rows.append((name, best[0], best[1], summary))
    print("| scenario (%s events) | no checkpoints | checkpoint every 1 s | overhead | "
          "checkpoints | pause avg / max | of which snapshots + fsync | state_dir |" %
          "{:,}".format(n))
    print("|---|---|---|---|---|---|---|---|")
    for name, base, ck, m in rows:
        cols = ("%s / %s ms" % (m.group(2), m.group(3)), m.group(4) + " ms",
                m.group(5) + " MiB", m.group(1)) if m else ("n/a",) * 4
        print("| %s | %.2f s (%s ev/s) | %.2f s (%s ev/s) | %+.1f%% | %s | %s | %s | %s |" %
              (name, base, bench.human_rate(n / base), ck, bench.human_rate(n / ck),
               (ck / base - 1) * 100, cols[3], cols[0], cols[1], cols[2]))
    print("best of %d runs each, taking turns; BENCH_SCALE=%g" % (repeat, scale))


if __name__ == "__main__":
    main()
