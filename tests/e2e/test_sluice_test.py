#!/usr/bin/env python3
"""`sluice test` (docs/testing.md): passing tests exit 0 with a summary; a
wrong expectation exits 1 and names the field path, the expected and the
actual value; order any vs strict; match exact vs partial; the count form;
capturing a port that is not a sink; numbers and times compared by value;
mistakes in a test file reported as file:line:col (unknown keys with a
suggestion, an input that is not a source, an expectation that is not a
sink or port) and nothing run; the real sinks, the state_dir and the
checkpoints are never written; the time limit stops a pipeline that takes
too long and the next test still runs; FILE as a pipeline, a test file or a
directory; --run, --set, -v, usage errors; and every pipeline in
pipelines/ has tests that the suite runs."""
import glob
import os
import re

import e2elib

PIPELINE = """\
pipeline: shop
state_dir: {d}/state
checkpoint: {{interval: 1s}}
operators:
  events:
    type: source.file
    path: {d}/data/events.jsonl
    watermark: {{max_out_of_order: 5s}}
  split:
    type: route
    input: events
    routes:
      orders: type == "order.created"
  orders:
    type: transform
    input: split.orders
    fields:
      orderId: data.orderId
      total: data.total
  big:
    type: filter
    input: orders
    where: total > 100.0
  big_out: {{type: sink.file, input: big, path: {d}/out/big.jsonl}}
  all_out: {{type: sink.file, input: orders, path: {d}/out/all.jsonl}}
"""

EVENTS = """\
      events:
        - {id: a, type: order.created, time: "2026-01-01T00:00:00Z", data: {orderId: A, total: 150}}
        - {id: b, type: order.created, time: "2026-01-01T00:00:01Z", data: {orderId: B, total: 20}}
        - {id: c, type: order.created, time: "2026-01-01T00:00:02Z", data: {orderId: C, total: 300.5}}
        - {id: d, type: refund, time: "2026-01-01T00:00:03Z", data: {orderId: A}}
"""

PASSING = """\
tests:
  - name: big orders are kept
    inputs:
""" + EVENTS + """\
    expect:
      big_out:
        - {orderId: A, total: 150.0}
        - {orderId: C, total: 300.5, time: "2026-01-01T00:00:02.000Z"}
      all_out: {count: 3}
      split.default: [{id: d, type: refund}]
  - name: nothing in, nothing out
    inputs:
      events: []
    no_output: [big_out, all_out]
"""

WRONG = """\
tests:
  - name: a wrong total
    inputs:
""" + EVENTS + """\
    expect:
      big_out:
        - {orderId: A, total: 150}
        - {orderId: C, total: 301}
      all_out: {count: 4}
"""

ORDER = """\
tests:
  - name: reversed strict
    inputs:
""" + EVENTS + """\
    expect:
      big_out: [{orderId: C}, {orderId: A}]
  - name: reversed any
    order: any
    inputs:
""" + EVENTS + """\
    expect:
      big_out: [{orderId: C}, {orderId: A}]
"""

MATCH = """\
tests:
  - name: partial subset
    inputs:
""" + EVENTS + """\
    expect:
      big_out: [{orderId: A}, {orderId: C}]
  - name: exact subset
    match: exact
    inputs:
""" + EVENTS + """\
    expect:
      big_out: [{orderId: A}, {orderId: C}]
  - name: exact whole
    inputs:
""" + EVENTS + """\
    expect:
      big_out:
        events:
          - {id: a, time: "2026-01-01T00:00:00Z", orderId: A, total: 150}
          - {id: c, time: "2026-01-01T00:00:02Z", orderId: C, total: 300.5}
        match: exact
"""

BAD = """\
tests:
  - name: bad
    inptus: {}
    inputs:
      orders: [{id: x}]
      evnts: [{id: y}]
    expect:
      big_ot: []
      split: []
      split.nope: []
"""

SLOW_PIPELINE = """\
pipeline: slow
operators:
  events: {{type: source.file, path: {d}/none.jsonl}}
  slow: {{type: throttle, input: events, rate: 1, burst: 1}}
  out: {{type: sink.file, input: slow, path: {d}/slow-out.jsonl}}
"""

SLOW = """\
tests:
  - name: too slow
    timeout: 1s
    inputs:
      events: [{id: a}, {id: b}, {id: c}, {id: d}, {id: e}, {id: f}, {id: g}, {id: h}]
    expect:
      out: {count: 8}
  - name: fast enough
    inputs:
      events: [{id: a}]
    expect:
      out: [{id: a}]
"""


def out_text(r):
    return r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")


def main(t):
    d = t.tmpdir()
    pipe = t.write(os.path.join(d, "shop.yaml"), PIPELINE.format(d=d))

    def test_file(name, text):
        return t.write(os.path.join(d, name), "pipeline: shop.yaml\n" + text)

    # --- passing tests; FILE as the pipeline (tests beside it) and as the test file
    t.write(os.path.join(d, "shop.test.yaml"), PASSING)
    r = t.run(["test", pipe])
    t.check_rc(r, 0, "sluice test PIPELINE (its shop.test.yaml passes)")
    out = r.stdout.decode()
    t.check(re.search(r"^2 passed, 0 failed", out, re.M) is not None,
            "summary line '2 passed, 0 failed'", r.describe())
    t.check(re.search(r'^ok +\S*shop\.test\.yaml:2 "big orders are kept"', out, re.M) is not None,
            "an ok line names the file, the test's line and its name", r.describe())
    r = t.run(["test", os.path.join(d, "shop.test.yaml")])
    t.check_rc(r, 0, "sluice test TESTFILE (default pipeline: the name without .test)")

    # --- nothing outside the temporary directory was written
    for what in ("out", "state"):
        t.check(not os.path.exists(os.path.join(d, what)),
                "the pipeline's %s/ was not created (sinks captured, state_dir moved)" % what)
    t.check(not glob.glob(os.path.join(d, "**", "*.jsonl"), recursive=True),
            "no JSON-lines file was written next to the pipeline")

    # --- a wrong expectation: exit 1, path, expected and got
    wrong = test_file("wrong.test.yaml", WRONG)
    r = t.run(["test", wrong])
    t.check_rc(r, 1, "a wrong expectation")
    out = r.stdout.decode()
    t.check(re.search(r'^FAIL \S*wrong\.test\.yaml:3 "a wrong total": big_out$', out, re.M)
            is not None, "FAIL line names the file:line, the test and the sink", r.describe())
    t.check("event 2 (line 13): at .total: expected 301, got 300.5" in out,
            "the difference names the event, its line, the field path, expected and got",
            r.describe())
    t.check("expected 4 events, got 3" in out, "the count form says expected and got",
            r.describe())
    t.check(re.search(r"^0 passed, 1 failed", out, re.M) is not None,
            "summary line '0 passed, 1 failed'", r.describe())
    t.check("150" not in out.split("big_out")[1].split("all_out")[0],
            "150 == 150.0 == 150: numbers compare by value (no difference reported for A)",
            r.describe())

    # --- order: strict vs any
    r = t.run(["test", test_file("order.test.yaml", ORDER)])
    t.check_rc(r, 1, "reversed expectations: the strict test fails")
    out = r.stdout.decode()
    t.check('FAIL' in out and '"reversed strict": big_out' in out and
            "event 1 (line 11): came out as event 2, not 1" in out,
            "strict order compares output i with expectation i, and says where it came out",
            r.describe())
    t.check(re.search(r'^ok .*"reversed any"', out, re.M) is not None,
            "order: any accepts the same events in another order", r.describe())

    # --- match: partial vs exact
    r = t.run(["test", test_file("match.test.yaml", MATCH)])
    t.check_rc(r, 1, "an exact match of a subset of keys fails")
    out = r.stdout.decode()
    t.check(re.search(r'^ok .*"partial subset"', out, re.M) is not None,
            "partial matching ignores keys not written", r.describe())
    t.check(re.search(r'^ok .*"exact whole"', out, re.M) is not None,
            "match: exact passes with every key written (times compared as instants)",
            r.describe())
    t.check('"exact subset": big_out' in out and "at .total: unexpected key (got 150" in out,
            "match: exact reports a key that was not expected", r.describe())

    # --- -v prints every capture; --run filters
    r = t.run(["test", pipe, "-v", "--run", "nothing in"])
    t.check_rc(r, 0, "--run 'nothing in' -v")
    out = r.stdout.decode()
    t.check("big orders are kept" not in out and re.search(r"^1 passed, 0 failed", out, re.M),
            "--run runs only the tests whose name contains NAME", r.describe())
    t.check(re.search(r"^  big_out: 0 events$", out, re.M) is not None,
            "-v prints what each sink received", r.describe())
    r = t.run(["test", pipe, "-v", "--run", "big orders"])
    t.check('"orderId":"C"' in r.stdout.decode(), "-v prints the captured events", r.describe())
    t.check(re.search(r'^  split\.default: 1 event\n    \{"id":"d","type":"refund"', r.stdout.decode(),
                      re.M) is not None,
            "the route's default port (no sink reads it) was captured", r.describe())

    # --- the temporary directories are removed (TMPDIR is honoured)
    tmp = os.path.join(d, "tmp")
    os.mkdir(tmp)
    r = t.run(["test", pipe], env=dict(os.environ, TMPDIR=tmp))
    t.check_rc(r, 0, "sluice test with TMPDIR set")
    t.check(os.listdir(tmp) == [], "every test's temporary directory was removed (%s)"
            % os.listdir(tmp))
    r = t.run(["test", pipe, "--keep", "--run", "big orders"], env=dict(os.environ, TMPDIR=tmp))
    kept = re.findall(r"^  kept (\S+)$", r.stdout.decode(), re.M)
    t.check(len(kept) == 1 and os.path.isfile(os.path.join(kept[0], "sink-big_out.jsonl")),
            "--keep keeps the directory with the captured sinks (%s)" % kept, r.describe())
    r = t.run(["test", pipe, "--run", "no such test"])
    t.check_rc(r, 1, "--run that matches no test")

    # --- --set applies to the pipeline under test
    r = t.run(["test", pipe, "--set", "operators.big.where=total > 1000.0"])
    t.check_rc(r, 1, "--set raising the filter's threshold makes the test fail")
    t.check("expected 2 events, got 0" in r.stdout.decode(),
            "... because big_out is then empty", r.describe())

    # --- mistakes in the test file: file:line:col, did you mean, nothing runs
    bad = test_file("bad.test.yaml", BAD)
    r = t.run(["test", bad])
    t.check_rc(r, 1, "a test file with mistakes")
    err = r.stderr.decode()
    t.check(re.search(r"bad\.test\.yaml:4:5: unknown key 'inptus' in a test "
                      r"\(did you mean 'inputs'\?\)", err) is not None,
            "unknown key: file:line:col and did you mean", r.describe())
    t.check(re.search(r"bad\.test\.yaml:6:7: input 'orders' is not a source", err) is not None,
            "an input for an operator that is not a source", r.describe())
    t.check(re.search(r"bad\.test\.yaml:7:7: input 'evnts' names no source.*did you mean "
                      r"'events'", err) is not None,
            "an input for an unknown operator, with a suggestion", r.describe())
    t.check(re.search(r"bad\.test\.yaml:9:7: expect: 'big_ot' names no operator.*did you mean "
                      r"'big_out'", err) is not None,
            "an expectation for an unknown sink, with a suggestion", r.describe())
    t.check(re.search(r"bad\.test\.yaml:10:7: expect: 'split' \(route\) has several output "
                      r"ports", err) is not None,
            "an expectation for an operator with several ports", r.describe())
    t.check(re.search(r"bad\.test\.yaml:11:7: expect: operator 'split' has no output port "
                      r"'nope' \(ports: ", err) is not None,
            "an expectation for a port that does not exist", r.describe())
    t.check("passed" in r.stdout.decode() and "not run" in r.stdout.decode(),
            "the summary says the file was not run", r.describe())

    r = t.run(["test", test_file("syntax.test.yaml", "tests:\n  - name: x\n    inputs: {a: [\n")])
    t.check(r.rc == 1 and re.search(r"syntax\.test\.yaml:\d+:\d+: ", r.stderr.decode()),
            "a YAML syntax error in a test file: exit 1 with file:line:col", r.describe())

    # --- the time limit
    slow_pipe = t.write(os.path.join(d, "slow.yaml"), SLOW_PIPELINE.format(d=d))
    t.write(os.path.join(d, "slow.test.yaml"), SLOW)
    r = t.run(["test", slow_pipe], timeout=30)
    t.check_rc(r, 1, "a test over its time limit")
    out = r.stdout.decode()
    t.check(re.search(r'^FAIL .*"too slow": timed out after 1s', out, re.M) is not None,
            "the timed-out test says so", r.describe())
    t.check(re.search(r'^ok .*"fast enough"', out, re.M) is not None,
            "the next test still runs after a timeout", r.describe())
    t.check(r.elapsed < 10 * t.slow,
            "the slow pipeline (8 s of throttling) was stopped (%.1f s)" % r.elapsed, r.describe())
    t.check(not os.path.exists(os.path.join(d, "slow-out.jsonl")),
            "the slow pipeline's sink file was not written")

    # --- a directory runs every *.test.yaml in it
    sub = os.path.join(d, "suite")
    os.mkdir(sub)
    t.write(os.path.join(sub, "shop.yaml"), PIPELINE.format(d=d))
    t.write(os.path.join(sub, "a.test.yaml"), "pipeline: shop.yaml\n" + PASSING)
    t.write(os.path.join(sub, "b.test.yaml"), "pipeline: shop.yaml\n" + MATCH)
    r = t.run(["test", sub])
    t.check_rc(r, 1, "a directory with one failing test")
    t.check(re.search(r"^4 passed, 1 failed", r.stdout.decode(), re.M) is not None,
            "the directory's two test files ran (4 passed, 1 failed)", r.describe())

    # --- usage and missing files
    r = t.run(["test"])
    t.check_rc(r, 2, "sluice test without FILE")
    r = t.run(["test", pipe, "--bogus"])
    t.check_rc(r, 2, "sluice test with an unknown option")
    r = t.run(["test", "--help"])
    t.check_rc(r, 0, "sluice test --help")
    r = t.run(["test", slow_pipe.replace("slow.yaml", "nothing.yaml")])
    t.check_rc(r, 1, "sluice test on a missing file")
    lonely = t.write(os.path.join(d, "lonely.yaml"), PIPELINE.format(d=d))
    r = t.run(["test", lonely])
    t.check(r.rc == 1 and "lonely.test.yaml" in r.stderr.decode(),
            "a pipeline without a test file: exit 1 naming the file it looked for", r.describe())

    # --- every pipeline in pipelines/ has tests, and the suite runs them
    pipelines = sorted(p for p in glob.glob(os.path.join(e2elib.REPO, "pipelines", "*.yaml"))
                       if not p.endswith(".test.yaml"))
    with open(os.path.join(e2elib.REPO, "tests", "e2e", "meson.build")) as f:
        build = f.read()
    for p in pipelines:
        name = os.path.basename(p)[:-len(".yaml")]
        t.check(os.path.isfile(p[:-len(".yaml")] + ".test.yaml"),
                "pipelines/%s.yaml has tests (%s.test.yaml)" % (name, name))
        t.check("'%s'" % name in build,
                "tests/e2e/meson.build runs `sluice test pipelines/%s.yaml`" % name)


if __name__ == "__main__":
    e2elib.main(main)
