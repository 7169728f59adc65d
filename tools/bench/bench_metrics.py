#!/usr/bin/env python3
"""bench_metrics.py - what the admin endpoint's measuring costs the hot path
(docs/operations.md, docs/benchmarks.md).

  tools/bench/bench_metrics.py [BUILDDIR]
  meson test -C BUILDDIR --benchmark -v metrics

Times source.generator (10M events) -> 8 x identity -> sink.null three ways:
without an admin endpoint (events in/out and operator counters are counted
always), with `admin: {listen: 127.0.0.1:0}` (adds the batch duration
histogram: two clock reads per batch per operator, and the queue and
backpressure counters), and with the endpoint scraped 10 times a second
(/metrics and /api/pipeline rendered on the admin thread meanwhile). Each
runs fused and with --no-fusion (every hop a thread), with batches of 1024
and of 64 events (where per-batch costs weigh 16 times more). BENCH_REPEAT
runs of each, taking turns; best wall time and least CPU count. Prints the
CPU time per event each variant adds over the plain run. Nothing is asserted.

Environment: BENCH_SCALE (event count factor, 1 = 10M), BENCH_REPEAT (3).
"""
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

HOPS = 8


def pipeline(path, n, batch, admin):
    ops = "".join("  hop%d: {type: identity, input: %s}\n" % (i, "hop%d" % (i - 1) if i else "gen")
                  for i in range(HOPS))
    return bench.write(path, f"""\
pipeline: bench-metrics
batch: {{max_events: {batch}, linger: 5ms}}
{"admin: {listen: '127.0.0.1:0'}" if admin else ""}
operators:
  gen: {{type: source.generator, count: {n}, seed: 7}}
{ops}  sink: {{type: sink.null, input: hop{HOPS - 1}}}
""")


def scraped_run(argv, cwd):
    """run_once, with a thread scraping the admin endpoint 10 times a second."""
    err_path = os.path.join(cwd, "scrape.err")
    stop = threading.Event()
    scrapes = [0]

    def scrape():
        addr = None
        while not stop.is_set() and addr is None:
            try:
                with open(err_path) as f:
                    for line in f:
                        if "admin endpoint on " in line:
                            addr = line.split("admin endpoint on ")[1].split()[0]
            except OSError:
                pass
            time.sleep(0.01)
        while addr and not stop.is_set():
            for path in ("/metrics", "/api/pipeline"):
                try:
                    urllib.request.urlopen(addr + path, timeout=2).read()
                    scrapes[0] += 1
                except OSError:
                    pass
            time.sleep(0.1)

    t = threading.Thread(target=scrape)
    t.start()
    t0 = time.monotonic()
    cmd = ([bench.TIME, "-f", "%e %U %S %M"] if bench.TIME else []) + argv
    with open(err_path, "w") as err:
        subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, check=True)
    wall = time.monotonic() - t0
    stop.set()
    t.join()
    cpu = None
    with open(err_path) as f:
        last = f.read().strip().splitlines()[-1].split()
    if bench.TIME and len(last) == 4:
        cpu = float(last[1]) + float(last[2])
    return wall, cpu, scrapes[0]


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(bench.ROOT, "build"))
    sluice = os.path.join(build, "tools", "sluice")
    if not os.path.isfile(sluice):
        raise SystemExit("bench_metrics: %s is missing (ninja -C %s)" % (sluice, build))
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    n = max(1, int(bench.GEN_EVENTS * scale))
    for line in bench.machine_info(build):
        bench.log(line)
    modes = ("off", "on", "scraped")
    wall, cpu, scrapes = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        cmds = []
        for batch in (1024, 64):
            for mode in modes:
                path = pipeline(os.path.join(tmp, "p-%d-%s.yaml" % (batch, mode)), n, batch,
                                mode != "off")
                for fused in (True, False):
                    key = (batch, mode, fused)
                    cmds.append((key, [sluice, "run", "--no-progress", path] +
                                 ([] if fused else ["--no-fusion"])))
        for r in range(repeat):
            for key, argv in cmds:
                if key[1] == "scraped":
                    w, c, s = scraped_run(argv, tmp)
                    scrapes[key] = s
                else:
                    w, _, c, _ = bench.run_once(argv, tmp)
                bench.log("  batch %4d %-8s %-9s run %d/%d: %7.3f s wall  %s CPU" %
                          (key[0], key[1], "fused" if key[2] else "no-fusion", r + 1, repeat, w,
                           "%.2f s" % c if c is not None else "n/a"))
                wall[key] = min(wall.get(key, w), w)
                if c is not None:
                    cpu[key] = min(cpu.get(key, c), c)

    print("| batch | mode | fused: wall | CPU | CPU/event vs off | --no-fusion: wall | CPU | "
          "CPU/event vs off |")
    print("|---|---|---|---|---|---|---|---|")
    for batch in (1024, 64):
        for mode in modes:
            row = ["%d" % batch, mode + (" (%d scrapes)" % scrapes.get((batch, mode, True), 0)
                                         if mode == "scraped" else "")]
            for fused in (True, False):
                k, off = (batch, mode, fused), (batch, "off", fused)
                row.append("%.3f s (%s ev/s)" % (wall[k], bench.human_rate(n / wall[k])))
                if k in cpu and off in cpu:
                    row.append("%.2f s" % cpu[k])
                    row.append("-" if mode == "off" else
                               "%+.2f ns" % ((cpu[k] - cpu[off]) / n * 1e9))
                else:
                    row += ["n/a", "n/a"]
            print("| " + " | ".join(row) + " |")
    print("%s events, source.generator -> %d x identity -> sink.null; best of %d runs each, "
          "taking turns; BENCH_SCALE=%g" % ("{:,}".format(n), HOPS, repeat, scale))


if __name__ == "__main__":
    main()
