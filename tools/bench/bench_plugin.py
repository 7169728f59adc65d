#!/usr/bin/env python3
"""bench_plugin.py - what an operator loaded from a .so costs (docs/plugins.md).

  tools/bench/bench_plugin.py [BUILDDIR]
  meson test -C BUILDDIR --benchmark -v plugin

Times source.generator (10M events) -> HOP -> sink.null where HOP is the
built-in `identity` or `bench.identity`, the same code compiled as a plugin
(operators/examples/identity_plugin.c, loaded through `plugins:`), once and
as a chain of 8 (which lifts the hops' cost above the generator's noise),
and with no hop at all as the floor. Each pipeline runs fused (one thread:
a hop is a direct call) and with --no-fusion (every operator a thread of its
own: every batch crosses a thread boundary at every hop). BENCH_REPEAT runs
of each, taking turns; the best wall time and the least CPU time count.
A source has a stage of its own, so even fused the generator runs on one
thread and the hops and the sink on another: on two or more cores the wall
time is mostly the generator's, and the hops' cost shows in the CPU time
(GNU time's user + sys). Prints a table: wall time and events/s, CPU time,
what each hop adds in CPU per event over the floor, and plugin / built-in.
Nothing is asserted.

Environment: BENCH_SCALE (event count factor, 1 = 10M), BENCH_REPEAT (3).
"""
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the harness's helpers: measure, write, machine_info, log)

CHAIN = 8
HOPS = (  # row name, the hops' type (None: no hop), how many in a row
    ("none (generator -> sink.null)", None, 0),
    ("identity (built-in)", "identity", 1),
    ("bench.identity (plugin .so)", "bench.identity", 1),
    ("%d x identity (built-in)" % CHAIN, "identity", CHAIN),
    ("%d x bench.identity (plugin .so)" % CHAIN, "bench.identity", CHAIN),
)


def pipeline(path, n, hop, hops, plugin):
    ops = "".join("  hop%d: {type: %s, input: %s}\n" % (i, hop, "hop%d" % (i - 1) if i else "gen")
                  for i in range(hops))
    ops += "  sink: {type: sink.null, input: %s}\n" % ("hop%d" % (hops - 1) if hops else "gen")
    return bench.write(path, f"""\
pipeline: bench-plugin
{"plugins: [%s]" % json.dumps(plugin) if hop == "bench.identity" else ""}
{bench.BATCH}
operators:
  gen: {{type: source.generator, count: {n}, seed: 7}}
{ops}""")


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(bench.ROOT, "build"))
    sluice = os.path.join(build, "tools", "sluice")
    plugin = os.path.join(build, "operators", "examples", "identity_plugin.so")
    for f in (sluice, plugin):
        if not os.path.isfile(f):
            raise SystemExit("bench_plugin: %s is missing (build the tree: ninja -C %s)" % (f, build))
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    n = max(1, int(bench.GEN_EVENTS * scale))
    for line in bench.machine_info(build):
        bench.log(line)
    if not bench.TIME:
        bench.log("bench_plugin: /usr/bin/time (GNU time) not found: CPU times are not shown")
    with tempfile.TemporaryDirectory(prefix="bench-plugin-") as tmp:
        cmds = []
        for i, (name, hop, hops) in enumerate(HOPS):
            path = pipeline(os.path.join(tmp, "p%d.yaml" % i), n, hop, hops, plugin)
            for fused in (True, False):
                cmds.append(("%s x%d%s" % (hop or "none", hops, "" if fused else " unfused"),
                             [sluice, "run", "--no-progress", path] + ([] if fused else ["--no-fusion"])))
        # taking turns, so that a burst of load elsewhere hits every pipeline alike
        wall, cpu = {}, {}
        for r in range(repeat):
            for key, argv in cmds:
                w, _, c, _ = bench.run_once(argv, tmp)
                bench.log("  %-28s run %d/%d: %7.3f s wall  %s CPU" %
                          (key, r + 1, repeat, w, "%.2f s" % c if c is not None else "n/a"))
                wall[key] = min(wall.get(key, w), w)
                if c is not None:
                    cpu[key] = min(cpu.get(key, c), c)

    def cells(key, hops):
        """wall (ev/s) | CPU | CPU per event and hop over the floor"""
        floor = "none x0" + (" unfused" if key.endswith("unfused") else "")
        out = "%.3f s (%s ev/s)" % (wall[key], bench.human_rate(n / wall[key]))
        if key not in cpu:
            return out + " | n/a | n/a"
        out += " | %.2f s" % cpu[key]
        if not hops:
            return out + " | -"
        return out + " | %+.1f ns" % ((cpu[key] - cpu[floor]) / n / hops * 1e9)

    print("| hops (%s events, batches of 1024) | fused: wall | CPU | CPU per event and hop | "
          "--no-fusion: wall | CPU | CPU per event and hop |" % "{:,}".format(n))
    print("|---|---|---|---|---|---|---|")
    for name, hop, hops in HOPS:
        k = "%s x%d" % (hop or "none", hops)
        print("| %s | %s | %s |" % (name, cells(k, hops), cells(k + " unfused", hops)))
    for hops in (1, CHAIN):
        row = []
        for sfx in ("", " unfused"):
            p, b = "bench.identity x%d%s" % (hops, sfx), "identity x%d%s" % (hops, sfx)
            row.append("%.3fx" % (wall[p] / wall[b]))
            row.append("%.3fx" % (cpu[p] / cpu[b]) if p in cpu and b in cpu else "n/a")
        print("| plugin / built-in, %d hop%s | %s | %s | | %s | %s | |"
              % (hops, "s" if hops > 1 else "", row[0], row[1], row[2], row[3]))
    print("best of %d runs each (wall and CPU separately), taking turns; BENCH_SCALE=%g; a "
          "source has a stage (thread) of its own, so fused = generator | hops + sink"
          % (repeat, scale))


if __name__ == "__main__":
    main()
