#!/usr/bin/env python3
"""`sluice validate` on pipeline files with mistakes: exit 1 and one
`file:line:col: message` line per problem (sorted by position), each pointing
at the offending YAML node and saying what is wrong.  Also: several mistakes
are all reported in one run, valid files (with ${VAR:-default}) pass, and
`sluice run` on an invalid file runs nothing.

Every case is checked; the failures are listed together at the end."""
import os
import re

import e2elib

UNSET = "SLUICE_E2E_SURELY_UNSET_VAR"


def pos(text, needle, nth=1, shift=0):
    """1-based (line, col) of the nth occurrence of needle in text (+shift chars)."""
    idx = -1
    for _ in range(nth):
        idx = text.index(needle, idx + 1)
        if idx < 0:
            raise ValueError(needle)
    idx += shift
    line = text.count("\n", 0, idx) + 1
    col = idx - (text.rfind("\n", 0, idx) + 1) + 1
    return line, col


# Each case: name -> (yaml text, [(needle spec, [phrases])]).  A needle spec is
# a string or (string, nth, shift); the diagnostic must be at its position and
# contain every phrase.  The number of diagnostics must match exactly.
BASE_SINK = """\
  out:
    type: sink.file
    input: events
    path: out.jsonl
"""

CASES = {}

CASES["unknown_type"] = ("""\
pipeline: t
operators:
  events:
    type: source.fil
    path: in.jsonl
""" + BASE_SINK, [("source.fil", ["unknown operator type 'source.fil'", "did you mean 'source.file'?"])])

# `pth` instead of `path`: the unknown key, and the now missing `path`
# (reported at the operator's mapping, i.e. its first key).
CASES["unknown_param"] = ("""\
pipeline: t
operators:
  events:
    type: source.file
    pth: in.jsonl
""" + BASE_SINK, [(("type: source.file", 1, 0), ["missing required parameter 'path'"]),
                  ("pth:", ["unknown parameter 'pth'", "did you mean 'path'?"])])

CASES["missing_required"] = ("""\
pipeline: t
operators:
  events:
    type: source.file
    format: jsonl
""" + BASE_SINK, [(("type: source.file", 1, 0), ["missing required parameter 'path'", "source.file"])])

CASES["bad_parallelism"] = ("""\
pipeline: t
operators:
  events:
    type: source.file
    path: in.jsonl
    parallelism: abc
""" + BASE_SINK, [("abc", ["parallelism", "'abc'"])])

CASES["bad_int"] = ("""\
pipeline: t
operators:
  events:
    type: source.generator
    count: xyz
""" + BASE_SINK, [("xyz", ["'xyz'", "count"])])

CASES["bad_duration"] = ("""\
pipeline: t
batch:
  max_events: 100
  linger: 5x
operators:
  events:
    type: source.file
    path: in.jsonl
""" + BASE_SINK, [("5x", ["invalid duration '5x'", "linger"])])

CASES["bad_duration_flow"] = ("""\
pipeline: t
batch: {max_events: 100, linger: 5x}
operators:
  events: {type: source.file, path: in.jsonl}
""" + BASE_SINK, [("5x", ["invalid duration '5x'", "linger"])])

CASES["bad_size"] = ("""\
pipeline: t
operators:
  events:
    type: source.file
    path: in.jsonl
    max_line: 12XB
""" + BASE_SINK, [("12XB", ["invalid size '12XB'", "max_line"])])

CASES["dangling_input"] = ("""\
pipeline: t
operators:
  events:
    type: source.file
    path: in.jsonl
  out:
    type: sink.file
    input: nosuch
    path: out.jsonl
""", [("nosuch", ["'nosuch'", "no operator"])])

CASES["dangling_input_in_list"] = ("""\
pipeline: t
operators:
  events:
    type: source.file
    path: in.jsonl
  out:
    type: sink.file
    input: [events, nosuch]
    path: out.jsonl
""", [("nosuch", ["'nosuch'", "no operator"])])

CASES["unknown_port"] = ("""\
pipeline: t
operators:
  events:
    type: source.file
    path: in.jsonl
  out:
    type: sink.file
    input: events.nope
    path: out.jsonl
""", [("events.nope", ["no output port 'nope'", "events"])])

DUP = """\
pipeline: t
operators:
  events:
    type: source.file
    path: in.jsonl
  events:
    type: source.file
    path: other.jsonl
""" + BASE_SINK
CASES["duplicate_name"] = (DUP, [(("  events:", 2, 2), ["duplicate key 'events'",
                                                        "line %d" % pos(DUP, "events:")[0]])])

CASES["cycle"] = ("""\
pipeline: t
operators:
  events:
    type: source.file
    path: in.jsonl
  a:
    type: identity
    input: b
  b:
    type: identity
    input: a
""", [(("type: identity", 1, 0), ["'a'", "cycle"]),
      (("type: identity", 2, 0), ["'b'", "cycle"])])

# The same cycle, also read by a sink: the sink is downstream of the cycle,
# not part of it, and must not be reported as such.
CASES["cycle_with_reader"] = ("""\
pipeline: t
operators:
  events:
    type: source.file
    path: in.jsonl
  a:
    type: identity
    input: [events, b]
  b:
    type: identity
    input: a
  out:
    type: sink.file
    input: b
    path: out.jsonl
""", [(("type: identity", 1, 0), ["'a'", "cycle"]),
      (("type: identity", 2, 0), ["'b'", "cycle"])])

CASES["empty_pipeline"] = ("""\
pipeline: t
operators: {}
""", [("{}", ["empty pipeline"])])

CASES["yaml_syntax"] = ("""\
pipeline: t
operators:
  events:
    type: source.file
    path: a: b
""" + BASE_SINK, [(("a: b", 1, 1), ["mapping values are not allowed"])])

CASES["unset_variable"] = ("""\
pipeline: t
operators:
  events:
    type: source.file
    path: ${%s}
""" % UNSET + BASE_SINK, [("${" + UNSET, ["environment variable '%s' is not set" % UNSET])])

# Three different mistakes in one file: all three reported, in file order.
CASES["three_mistakes"] = ("""\
pipeline: t
batch:
  linger: 5x
operators:
  events:
    type: source.fil
    path: in.jsonl
  copy:
    type: source.file
    path: in2.jsonl
  out:
    type: sink.file
    input: [events, copy]
    path: out.jsonl
    apend: true
""", [("5x", ["invalid duration '5x'"]),
      ("source.fil\n", ["unknown operator type 'source.fil'", "did you mean 'source.file'?"]),
      ("apend", ["unknown parameter 'apend'", "did you mean 'append'?"])])

VALID = """\
pipeline: t
batch: {max_events: 100, linger: 5ms}
operators:
  events:
    type: source.file
    path: ${%s:-in.jsonl}
    max_line: 64KiB
  out:
    type: sink.file
    input: events
    path: ${SLUICE_E2E_OUT}
""" % UNSET

DIAG = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>.*)$")


def check_case(t, d, name, text, expected, env):
    fname = name + ".yaml"
    t.write(os.path.join(d, fname), text)
    r = t.run(["validate", fname], cwd=d, env=env, timeout=30)
    err = r.stderr.decode("utf-8", "replace")
    if r.rc != 1:
        t.fail("expected exit status 1, got %s\n%s" % (r.rc, r.describe()))
    diags = []
    for l in err.splitlines():
        m = DIAG.match(l)
        if m and m.group("file") == fname:
            diags.append((int(m.group("line")), int(m.group("col")), m.group("msg")))
    want = []
    for spec, phrases in expected:
        needle, nth, shift = (spec, 1, 0) if isinstance(spec, str) else spec
        want.append(pos(text, needle, nth, shift) + (phrases,))
    problems = []
    for line, col, phrases in want:
        hits = [m for (l, c, m) in diags if (l, c) == (line, col)]
        if not hits:
            problems.append("no diagnostic at %s:%d:%d (expected one saying %s)"
                            % (fname, line, col, " ... ".join(phrases)))
        elif not any(all(p in m for p in phrases) for m in hits):
            problems.append("diagnostic at %s:%d:%d does not say %s: %r"
                            % (fname, line, col, " ... ".join(repr(p) for p in phrases), hits))
    if len(diags) != len(want):
        problems.append("expected %d diagnostic(s), got %d" % (len(want), len(diags)))
    if [(l, c) for l, c, _ in diags] != sorted((l, c) for l, c, _ in diags):
        problems.append("diagnostics are not sorted by position")
    if problems:
        t.fail("; ".join(problems) + "\n--- stderr:\n" + err)
    t.ok("%s: exit 1, %s" % (name, "; ".join("%s:%d:%d: %s" % (fname, l, c, m) for l, c, m in diags)))


def main(t):
    d = t.tmpdir()
    env = {k: v for k, v in os.environ.items() if k not in (UNSET, "SLUICE_E2E_OUT")}
    failures = []

    def case(name, fn):
        try:
            fn()
        except e2elib.Failure as e:
            print("FAIL (%s): %s" % (name, e), flush=True)
            failures.append(name)

    for name, (text, expected) in CASES.items():
        case(name, lambda: check_case(t, d, name, text, expected, env))

    def valid():
        t.write(os.path.join(d, "valid.yaml"), VALID)
        r = t.run(["validate", "valid.yaml"], cwd=d, env=dict(env, SLUICE_E2E_OUT="o.jsonl"))
        t.check_rc(r, 0, "a valid file (${VAR:-default} unset, ${VAR} set)")
        t.check(r.stdout.decode().startswith("valid.yaml: ok"), "validate prints 'valid.yaml: ok ...'",
                r.describe())
    case("valid", valid)

    def absolute_path():
        # The diagnostic names the file as given on the command line.
        p = os.path.join(d, "abs.yaml")
        text = CASES["bad_size"][0]
        t.write(p, text)
        r = t.run(["validate", p], cwd="/", env=env)
        line, col = pos(text, "12XB")
        t.check(r.rc == 1 and ("%s:%d:%d: " % (p, line, col)) in r.stderr.decode(),
                "absolute file name: exit 1 and '%s:%d:%d: ...'" % (p, line, col), r.describe())
    case("absolute_path", absolute_path)

    def run_invalid():
        # A valid source and sink, one bad key elsewhere: run must not start.
        t.write(os.path.join(d, "in.jsonl"),
                '{"id":"a","type":"t","source":"s","time":"2026-01-01T00:00:00Z","data":{}}\n')
        text = """\
pipeline: t
operators:
  events:
    type: source.file
    path: in.jsonl
  out:
    type: sink.file
    input: events
    path: run-out/out.jsonl
  other:
    type: sink.file
    input: events
    path: run-out/other.jsonl
    fsync: maybe
"""
        t.write(os.path.join(d, "run_invalid.yaml"), text)
        r = t.run(["run", "run_invalid.yaml", "--no-progress"], cwd=d, env=env, timeout=30)
        t.check_rc(r, 1, "sluice run on an invalid file")
        line, col = pos(text, "maybe")
        t.check("run_invalid.yaml:%d:%d: " % (line, col) in r.stderr.decode(),
                "run prints the diagnostic run_invalid.yaml:%d:%d:" % (line, col), r.describe())
        t.check(not os.path.exists(os.path.join(d, "run-out")),
                "nothing ran: no output file or directory was created")
    case("run_invalid", run_invalid)

    if failures:
        t.fail("%d of %d cases failed: %s" % (len(failures), len(CASES) + 3, ", ".join(failures)))


if __name__ == "__main__":
    e2elib.main(main)
