#!/usr/bin/env python3
"""Parallel operators do not change results: source.generator -> identity
(parallelism 4, round robin; parallelism 3 keyed by data.customerId) ->
sink.file writes the same multiset of events as the serial run (parallelism 1),
a keyed edge keeps each key's events in order, and `sluice graph` labels the
edges round-robin / keyed."""
import collections
import json
import os
import re

import e2elib

COUNT = 200000

PIPELINE = """\
pipeline: parallel
batch: {max_events: 512, linger: 5ms}
operators:
  gen:
    type: source.generator
    count: %(count)d
    seed: 5
    dup_frac: 0
  hop:
    type: identity
    input: gen
    parallelism: %(par)d
%(extra)s  out:
    type: sink.file
    input: hop
    path: %(out)s
"""


def edge_label(dot, src, dst):
    m = re.search(r'"%s"(?::"?\w+"?)?\s*->\s*"%s"[^\n]*label="([^"]*)"' % (src, dst), dot)
    return m.group(1) if m else None


def main(t):
    d = t.tmpdir()
    runs = {}
    for name, par, extra in (("serial", 1, ""),
                             ("round_robin", 4, ""),
                             ("keyed", 3, "    partition_by: data.customerId\n")):
        out = os.path.join(d, name + ".jsonl")
        pipe = e2elib.write_pipeline(os.path.join(d, name + ".yaml"), PIPELINE % {
            "count": COUNT, "par": par, "extra": extra, "out": e2elib.yaml_str(out)})
        g = t.run(["graph", pipe])
        t.check_rc(g, 0, "%s: sluice graph" % name)
        dot = g.stdout.decode()
        t.check(dot.lstrip().startswith("digraph") and '"hop"' in dot,
                "%s: graph is DOT naming every operator" % name, dot)
        label = edge_label(dot, "gen", "hop")
        # serial: one-to-one (fused or forward, as the planner likes)
        want = {"serial": ("fused", "forward"), "round_robin": ("round-robin",),
                "keyed": ("keyed",)}[name]
        t.check(label is not None and any(w in label for w in want),
                "%s: edge gen -> hop is labelled %s (%r)" % (name, " or ".join(want), label), dot)
        if par > 1:
            t.check(("x%d" % par) in dot, "%s: graph shows hop x%d" % (name, par), dot)
        r = t.run(["run", pipe, "--no-progress"], timeout=120, cwd=d)
        t.check_rc(r, 0, "%s: run, parallelism %d" % (name, par))
        with open(out, "rb") as f:
            runs[name] = f.read().splitlines()
        t.check_eq(len(runs[name]), COUNT, "%s: events out" % name)

    serial = runs["serial"]
    ids = [json.loads(l)["id"] for l in serial]
    t.check(ids == ["evt-%010d" % i for i in range(COUNT)],
            "serial: ids evt-0000000000..evt-%010d in order" % (COUNT - 1))
    want = collections.Counter(serial)
    for name in ("round_robin", "keyed"):
        got = collections.Counter(runs[name])
        if got != want:
            missing = list((want - got).elements())[:3]
            extra = list((got - want).elements())[:3]
            t.fail("%s: output is not the serial output reordered: %d events missing "
                   "(e.g. %r), %d unexpected (e.g. %r)" % (name, sum((want - got).values()), missing,
                                                           sum((got - want).values()), extra))
        t.ok("%s: the multiset of %d events equals the serial run's" % (name, COUNT))

    # Keyed: all events of one key go through one instance, so per key the
    # order is the serial order (payments have no customerId: one key, None).
    def per_key(lines):
        seqs = collections.defaultdict(list)
        for l in lines:
            e = json.loads(l)
            seqs[e["data"].get("customerId")].append(e["id"])
        return seqs
    ks, kk = per_key(serial), per_key(runs["keyed"])
    bad = [k for k in ks if ks[k] != kk.get(k)]
    t.check(not bad, "keyed: each of %d customerIds keeps its events in serial order" % len(ks),
            "out of order for %d keys, e.g. %r" % (len(bad), bad[:3]))
    rr_in_order = runs["round_robin"] == serial
    t.log("round robin output %s the serial order" % ("kept" if rr_in_order else "interleaves"))


if __name__ == "__main__":
    e2elib.main(main)
