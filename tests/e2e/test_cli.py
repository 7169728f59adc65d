#!/usr/bin/env python3
"""The sluice command line: --version, --help of every command (exit 0),
unknown command (exit 2 with a suggestion), usage errors (exit 2), `inspect`,
`graph` (DOT naming every operator and edge), a missing input file at run
(exit 1 naming the operator and the path), sink.stdout (JSON lines and
msgpack on stdout), --set and ${VAR} overrides."""
import json
import os
import re

import e2elib

COMMANDS = ["run", "validate", "graph", "inspect"]

GRAPH = """\
pipeline: cli-graph
operators:
  events:
    type: source.file
    path: in.jsonl
  hop1:
    type: identity
    input: events
    fuse: true
  hop2:
    type: identity
    input: hop1
    parallelism: 2
  out:
    type: sink.file
    input: hop2
    path: out.jsonl
  dead_letter:
    type: sink.file
    input: events.errors
    path: dead.jsonl
"""

STDOUT = """\
pipeline: cli-stdout
operators:
  gen:
    type: source.generator
    count: 5
    dup_frac: 0
  print:
    type: sink.stdout
    input: gen
    format: ${FORMAT:-jsonl}
"""


def main(t):
    d = t.tmpdir()
    r = t.run(["--version"])
    t.check_rc(r, 0, "sluice --version")
    t.check(re.match(r"^sluice \d+\.\d+\.\d+", r.stdout.decode()) is not None,
            "--version prints 'sluice X.Y.Z' (%s)" % r.stdout.decode().strip(), r.describe())

    r = t.run(["--help"])
    t.check_rc(r, 0, "sluice --help")
    out = r.stdout.decode()
    t.check(all(c in out for c in COMMANDS), "--help lists %s" % ", ".join(COMMANDS), r.describe())
    for c in COMMANDS:
        r = t.run([c, "--help"])
        t.check_rc(r, 0, "sluice %s --help" % c)
        t.check(("sluice " + c) in r.stdout.decode(), "sluice %s --help shows its usage" % c,
                r.describe())

    r = t.run(["valdate", "x.yaml"])
    t.check_rc(r, 2, "unknown command 'valdate'")
    t.check("did you mean 'validate'" in r.stderr.decode(),
            "unknown command suggests 'validate'", r.describe())
    r = t.run(["frobnicate"])
    t.check_rc(r, 2, "unknown command 'frobnicate'")
    t.check("frobnicate" in r.stderr.decode(), "the message names the unknown command", r.describe())
    r = t.run([])
    t.check_rc(r, 2, "sluice with no command")
    r = t.run(["run"])
    t.check_rc(r, 2, "sluice run without FILE")
    r = t.run(["run", "x.yaml", "--no-such-option"])
    t.check_rc(r, 2, "sluice run with an unknown option")

    # inspect
    r = t.run(["inspect"])
    t.check_rc(r, 0, "sluice inspect")
    types = [l.split()[0] for l in r.stdout.decode().splitlines() if l.strip()]
    for want in ("source.file", "source.generator", "source.zmq", "sink.file", "sink.stdout",
                 "sink.zmq", "sink.null", "identity"):
        t.check(want in types, "inspect lists %s" % want, r.describe())
    r = t.run(["inspect", "source.file"])
    t.check_rc(r, 0, "sluice inspect source.file")
    out = r.stdout.decode()
    path_line = next((l for l in out.splitlines() if l.split()[:1] == ["path"]), "")
    t.check("required" in path_line, "inspect source.file: 'path' is required (%s)" % path_line.strip(),
            out)
    t.check(re.search(r"\berrors\b", out) is not None and "format" in out and "max_line" in out,
            "inspect source.file shows the errors port and format, max_line", out)
    r = t.run(["inspect", "source.fil"])
    t.check(r.rc == 1 and "source.file" in r.stderr.decode(),
            "inspect of an unknown type: exit 1, suggests source.file", r.describe())

    # graph
    t.write(os.path.join(d, "in.jsonl"), "")
    pipe = e2elib.write_pipeline(os.path.join(d, "graph.yaml"), GRAPH)
    r = t.run(["graph", pipe])
    t.check_rc(r, 0, "sluice graph")
    dot = r.stdout.decode()
    t.check(re.match(r'^\s*digraph\s+"?[\w-]*"?\s*\{', dot) is not None and dot.rstrip().endswith("}"),
            "graph output is a DOT digraph", dot)
    t.check(dot.count("{") == dot.count("}"), "DOT braces balance", dot)
    for op in ("events", "hop1", "hop2", "out", "dead_letter"):
        t.check(('"%s"' % op) in dot, "graph names operator %s" % op, dot)
    for a, b in (("events", "hop1"), ("hop1", "hop2"), ("hop2", "out"), ("events", "dead_letter")):
        t.check(re.search(r'"%s"(:"?\w+"?)?\s*->\s*"%s"' % (a, b), dot) is not None,
                "graph has the edge %s -> %s" % (a, b), dot)
    t.check("subgraph cluster" in dot, "graph draws stages as clusters", dot)
    t.check(re.search(r'"events"(:"?\w+"?)?\s*->\s*"hop1"[^\n]*fused', dot) is not None,
            "events -> hop1 (fuse: true) is a fused edge", dot)
    r2 = t.run(["graph", pipe, "--no-fusion"])
    t.check(r2.rc == 0 and dot.count("subgraph cluster") < r2.stdout.decode().count("subgraph cluster"),
            "graph --no-fusion draws more stages (%d) than the fused plan (%d)"
            % (r2.stdout.decode().count("subgraph cluster"), dot.count("subgraph cluster")), r2.describe())

    # run: missing input file
    missing = os.path.join(d, "no", "such", "events.jsonl")
    r = t.run(["run", pipe, "--no-progress", "--set", "operators.events.path=" + missing], cwd=d)
    t.check_rc(r, 1, "run with a missing input file")
    err = r.stderr.decode()
    t.check("events" in err and missing in err,
            "the error names the operator 'events' and the path", r.describe())

    # sink.stdout, jsonl then msgpack (${FORMAT:-jsonl} from the environment)
    pipe = e2elib.write_pipeline(os.path.join(d, "stdout.yaml"), STDOUT)
    env = {k: v for k, v in os.environ.items() if k != "FORMAT"}
    r = t.run(["run", pipe, "--no-progress"], cwd=d, env=env)
    t.check_rc(r, 0, "run source.generator -> sink.stdout")
    lines = r.stdout.decode().splitlines()
    try:
        evs = [json.loads(l) for l in lines]
    except ValueError as e:
        t.fail("sink.stdout output is not JSON lines (%s):\n%s" % (e, r.stdout.decode()[:2000]))
    t.check_eq([e.get("id") for e in evs], ["evt-%010d" % i for i in range(5)],
               "sink.stdout prints 5 JSON lines, ids")
    t.check(all(e2elib.parse_time(e.get("time")) is not None for e in evs),
            "sink.stdout: each time is RFC 3339 text")
    r = t.run(["run", pipe, "--no-progress"], cwd=d, env=dict(env, FORMAT="msgpack"))
    t.check_rc(r, 0, "run with FORMAT=msgpack (${FORMAT:-jsonl})")
    try:
        objs = [o for _, o in e2elib.msgpack_objects(r.stdout)]
    except (e2elib.MsgpackError, UnicodeDecodeError) as e:
        t.fail("sink.stdout format msgpack: not msgpack (%s): %r" % (e, r.stdout[:200]))
    t.check_eq([o.get("id") for o in objs], ["evt-%010d" % i for i in range(5)],
               "sink.stdout format msgpack: 5 maps, ids")
    for o, e in zip(objs, evs):
        if not e2elib.events_equal(o, e):
            t.fail("msgpack and JSON outputs differ: %r vs %r" % (o, e))
    t.ok("sink.stdout msgpack events equal the JSON ones")
    r = t.run(["run", pipe, "--no-progress", "--set", "operators.gen.count=3"], cwd=d, env=env)
    t.check(r.rc == 0 and len(r.stdout.decode().splitlines()) == 3,
            "--set operators.gen.count=3 overrides the file (3 lines)", r.describe())


if __name__ == "__main__":
    e2elib.main(main)
