#!/usr/bin/env python3
"""Operator plugins (issue 7) end to end: .so files loaded by a real sluice.

Plugins come from the build directory of the binary under test (BUILD =
the directory above tools/sluice): the examples in
BUILD/operators/examples/ (example.currency, example.running_count,
bench.identity) and the broken ones in BUILD/tests/plugins/.

 inspect   `sluice inspect --plugin-dir EX` lists the plugins' operators
           with their summaries (and without plugins it does not);
           `inspect example.currency` shows every parameter with its
           default and `Origin:` = the .so's real path; SLUICE_PLUGIN_PATH
           (two directories, one empty) does the same.
 load      example.currency converts gen_events.py's amounts (a transform
           gives each event a currency by the last digit of its id, JPY
           being unknown): loaded through `plugins:` (a path relative to the
           pipeline file, run from another directory; validate and graph
           too), through --plugin-dir (explicit parameters, a top-level
           currency, payments without the amount) and through
           SLUICE_PLUGIN_PATH with --no-fusion. Every output line is the
           input line with the converted amount added, equal to Python's
           amount * rate / rate[to] to the last bit; every other event is
           in `errors` with the right reason and detail; example.running_count
           after it numbers each currency's events 1, 2, 3 in order. Without
           the plugin the type is unknown (exit 1).
 errors    each broken plugin (ABI 999, no entry symbol, an operator named
           filter, a file that is no shared object, a missing file, an
           operator a second copy already defined) is refused with exit 1 by
           validate and run, through `plugins:`, --plugin-dir and
           SLUICE_PLUGIN_PATH, with a message naming the file and the
           problem (the same file twice is one load); a plugin whose init
           reports a configuration error fails validate and run with
           file:line:col and its message; a plugin's parameter table
           drives validation (unknown key, did you mean) and currency's own
           check (`to` not in `rates`) points at the key; a string amount
           sends every event to errors with reason invalid.
 process   a plugin whose process returns SL_ERROR after 5000 events, fed
           by an unbounded generator, stops the run with exit 1 and a
           message naming the operator and its reason, fused and unfused,
           within seconds.
 crash     example.running_count (key data.status) under `checkpoint:
           {interval: 100ms}` behind a paced generator: three kill -9 at
           random points after output was published, then a run to the end:
           the output equals an uninterrupted run's (sorted lines; the
           uninterrupted run numbers every status 1..n in order). Then the
           same pipeline with another `key` is refused (exit 1, naming the
           operator and --fresh).
 resume    running_count over a file: a run to the end, more lines appended
           to the file, a rerun: the counts continue from the restored ones
           (the output = Python's running count over the whole file, line
           for line); a third run adds nothing.
 oot       the out-of-tree build of docs/plugins.md: currency.c copied to a
           temporary directory and built with `cc -shared -fPIC
           $(pkg-config --cflags sluice) currency.c -o currency.so`
           (PKG_CONFIG_PATH=BUILD/meson-uninstalled), also warning-free
           under -std=c11 -Wall -Wextra -Wpedantic -Werror; a pipeline
           using it gives Python's numbers. Skipped (with a message) only
           when pkg-config or cc is missing.
"""
import collections
import json
import os
import random
import re
import shutil
import subprocess
import time

import e2elib
import test_checkpoint as ck

EVENTS = 20000
SEED = 11

# The last digit of an event's id picks its currency; JPY is in no rate table.
DIGIT_CURRENCY = {"0": "USD", "1": "USD", "2": "GBP", "3": "EUR", "4": "USD", "5": "GBP",
                  "6": "EUR", "7": "EUR", "8": "USD", "9": "JPY"}
DEFAULT_RATES = {"USD": 0.92, "GBP": 1.17, "EUR": 1.0}


def currency_expr():
    """The transform expression giving DIGIT_CURRENCY[last digit of id]."""
    expr = '"?"'
    for d in sorted(DIGIT_CURRENCY, reverse=True):
        expr = '(id.endsWith("%s") ? "%s" : %s)' % (d, DIGIT_CURRENCY[d], expr)
    return expr


# Defaults everywhere: data.amount and data.currency in, data.amount_eur out;
# running_count numbers the events of each currency.
DEFAULTS_PIPELINE = """\
pipeline: plugins-defaults
%(plugins)soperators:
  src: {type: source.file, path: %(events)s}
  shape:
    type: transform
    input: src
    keep: [type]
    fields:
      "data.amount": 'has(data.total) ? data.total : data.amount'
      "data.currency": '%(currency)s'
  conv: {type: example.currency, input: shape}
  numbered: {type: example.running_count, input: conv, key: data.currency, into: n}
  out: {type: sink.file, input: numbered, path: %(out)s}
  errors: {type: sink.file, input: [conv.errors, numbered.errors], path: %(errors)s}
"""

# Every parameter set: the generator's own total (payments have none), a
# top-level currency, into a new nested map.
EXPLICIT_RATES = {"USD": 1.0, "EUR": 1.087, "GBP": 1.27}
EXPLICIT_PIPELINE = """\
pipeline: plugins-explicit
operators:
  src: {type: source.file, path: %(events)s}
  shape:
    type: transform
    input: src
    keep: [type, data]
    fields: {currency: '%(currency)s'}
  conv:
    type: example.currency
    input: shape
    field: data.total
    currency_field: currency
    to: GBP
    rates: {USD: 1.0, EUR: 1.087, GBP: 1.27}
    into: converted.gbp
  out: {type: sink.file, input: conv, path: %(out)s}
  errors: {type: sink.file, input: conv.errors, path: %(errors)s}
"""


class Env:
    """Where the plugins of the build under test are."""

    def __init__(self, t):
        self.build = os.path.dirname(os.path.dirname(t.sluice))
        self.examples = os.path.join(self.build, "operators", "examples")
        self.tests = os.path.join(self.build, "tests", "plugins")
        wanted = ([self.ex(n) for n in ("currency", "running_count", "identity_plugin")] +
                  [self.bad(n) for n in ("bad_abi", "no_entry", "dup_name", "init_fails",
                                         "process_fails")])
        missing = [p for p in wanted if not os.path.isfile(p)]
        if missing:
            t.fail("plugins not built next to %s: %s (build the tree: ninja -C %s)"
                   % (t.sluice, ", ".join(missing), self.build))

    def ex(self, name):
        return os.path.join(self.examples, name + ".so")

    def bad(self, name):
        return os.path.join(self.tests, name + ".so")


def no_sanitizer_report(t, res, what):
    if re.search(rb"ERROR: \w+Sanitizer|runtime error: |Sanitizer:DEADLYSIGNAL|LeakSanitizer",
                 res.stderr):
        t.fail("%s: sanitizer report\n%s" % (what, res.describe()))


def run(t, args, what, want_rc=0, **kw):
    res = t.run(args, what=what, **kw)
    no_sanitizer_report(t, res, what)
    t.check_rc(res, want_rc, what)
    return res


def text(res):
    return res.stderr.decode("utf-8", "replace") + res.stdout.decode("utf-8", "replace")


def env_with(**over):
    env = dict(os.environ)
    env.pop("SLUICE_PLUGIN_PATH", None)
    env.update(over)
    return env


# ---- expected output, computed in Python ------------------------------------------------

def read_events(path):
    return [json.loads(l) for l in open(path, "rb") if l.strip()]


def shaped_defaults(ev):
    """The transform of DEFAULTS_PIPELINE applied to one input event."""
    d = ev["data"]
    return {"id": ev["id"], "time": ev["time"], "type": ev["type"],
            "data": {"amount": d["total"] if "total" in d else d["amount"],
                     "currency": DIGIT_CURRENCY[ev["id"][-1]]}}


def expect_defaults(events):
    """(out, errors): the events DEFAULTS_PIPELINE writes, and {id: (reason, detail)}."""
    out, errors = [], {}
    n = collections.Counter()
    for ev in events:
        s = shaped_defaults(ev)
        cur = s["data"]["currency"]
        if cur not in DEFAULT_RATES:
            errors.setdefault(s["id"], []).append(
                ("unknown_currency", "currency '%s' is not in the rate table" % cur, s))
            continue
        s["data"]["amount_eur"] = float(s["data"]["amount"]) * DEFAULT_RATES[cur] / DEFAULT_RATES["EUR"]
        n[cur] += 1
        s["n"] = n[cur]
        out.append(s)
    return out, errors


def expect_explicit(events):
    out, errors = [], {}
    for ev in events:
        s = {"id": ev["id"], "time": ev["time"], "type": ev["type"], "data": ev["data"],
             "currency": DIGIT_CURRENCY[ev["id"][-1]]}
        if "total" not in ev["data"]:
            errors.setdefault(s["id"], []).append(("missing_field", "no field 'data.total'", s))
        elif s["currency"] not in EXPLICIT_RATES:
            errors.setdefault(s["id"], []).append(
                ("unknown_currency", "currency '%s' is not in the rate table" % s["currency"], s))
        else:
            s = dict(s)
            s["converted"] = {"gbp": float(ev["data"]["total"]) * EXPLICIT_RATES[s["currency"]]
                              / EXPLICIT_RATES["GBP"]}
            out.append(s)
    return out, errors


def compare_events(t, want, got_path, what):
    """got_path holds exactly `want`, in order (floats compared exactly)."""
    got = e2elib.read_jsonl(got_path)
    bad = []
    for i, (w, g) in enumerate(zip(want, got)):
        if not e2elib.events_equal(w, g):
            bad.append("line %d:\n    expected: %s\n    got:      %s"
                       % (i + 1, json.dumps(w, sort_keys=True), json.dumps(g, sort_keys=True)))
            if len(bad) == 3:
                break
    if bad or len(want) != len(got):
        t.fail("%s: %d events expected, %d written%s" % (what, len(want), len(got),
                                                         ("; first differences:\n  " + "\n  ".join(bad))
                                                         if bad else ""))
    t.ok("%s: the %d events Python computes, in order, amounts equal to the last bit"
         % (what, len(want)))


def compare_errors(t, want, got_path, what):
    """Every envelope in got_path is one of `want` ({id: [(reason, detail, original)]})."""
    left = {k: list(v) for k, v in want.items()}
    n = 0
    for env in e2elib.read_jsonl(got_path):
        n += 1
        orig = env.get("original") or {}
        cands = left.get(orig.get("id"), [])
        hit = next((c for c in cands if c[0] == env.get("reason") and c[1] == env.get("detail")
                    and e2elib.events_equal(c[2], orig)), None)
        if hit is None:
            t.fail("%s: unexpected drop envelope %s\n  expected for that id: %s"
                   % (what, json.dumps(env)[:400], cands))
        if env.get("operator") != "conv":
            t.fail("%s: envelope names operator %r, expected 'conv'" % (what, env.get("operator")))
        cands.remove(hit)
    rest = sum(len(v) for v in left.values())
    t.check(rest == 0, "%s: all %d rejected events in errors with reason and detail (%s)"
            % (what, n, ", ".join("%s %d" % kv for kv in sorted(collections.Counter(
                c[0] for v in want.values() for c in v).items()))),
            "%d envelopes missing, e.g. %s" % (rest, [v for v in left.values() if v][:2]))


# ---- the parts ------------------------------------------------------------------------------

def part_inspect(t, env, root):
    res = run(t, ["inspect"], "inspect without plugins", env=env_with())
    t.check("example.currency" not in text(res), "inspect without plugins: no example.currency")
    res = run(t, ["inspect", "--plugin-dir", env.examples], "inspect --plugin-dir EX", env=env_with())
    out = res.stdout.decode()
    for name, summary in (("example.currency", "Converts an amount into another currency"),
                          ("example.running_count", "Adds to each event how many events"),
                          ("bench.identity", "Passes events through unchanged")):
        line = next((l for l in out.splitlines() if l.startswith(name + " ")), None)
        t.check(line is not None and summary in line,
                "inspect --plugin-dir: lists %s with its summary" % name, out)
    t.check(re.search(r"^filter\s", out, re.M) is not None,
            "inspect --plugin-dir: built-ins still listed", out)

    res = run(t, ["inspect", "--plugin-dir", env.examples, "example.currency"],
              "inspect --plugin-dir EX example.currency", env=env_with())
    out = res.stdout.decode()
    origin = os.path.realpath(env.ex("currency"))
    t.check(re.search(r"^Origin:\s+%s$" % re.escape(origin), out, re.M) is not None,
            "inspect example.currency: Origin: %s" % origin, out)
    for p, default in (("field", "data.amount"), ("currency_field", "data.currency"), ("to", "EUR"),
                       ("rates", "{USD: 0.92, GBP: 1.17, EUR: 1.0}"), ("into", "data.amount_eur")):
        t.check(re.search(r"^\s+%s\s+\S+\s+optional, default: %s$" % (p, re.escape(default)), out,
                          re.M) is not None,
                "inspect example.currency: parameter %s, default %s" % (p, default), out)
    t.check(re.search(r"^Outputs:\s+out errors$", out, re.M) is not None,
            "inspect example.currency: outputs out, errors", out)

    empty = os.path.join(root, "empty-plugin-dir")
    os.makedirs(empty, exist_ok=True)
    res = run(t, ["inspect", "example.running_count"], "SLUICE_PLUGIN_PATH=EMPTY:EX inspect",
              env=env_with(SLUICE_PLUGIN_PATH=empty + ":" + env.examples))
    out = res.stdout.decode()
    t.check("Origin:      %s" % os.path.realpath(env.ex("running_count")) in out
            and re.search(r"^\s+key\s+string\s+optional, default: type$", out, re.M),
            "SLUICE_PLUGIN_PATH: inspect example.running_count shows its origin and key", out)
    res = run(t, ["inspect", "example.currency"], "inspect example.currency without plugins",
              want_rc=1, env=env_with())
    t.check("example.currency" in text(res), "inspect of a type no plugin defines: exit 1, named")


def part_load(t, env, root, events_path):
    events = read_events(events_path)
    want_out, want_err = expect_defaults(events)
    t.check(len(want_out) > 0.6 * len(events) and want_err,
            "load: %d events, %d converted and %d unknown currencies expected"
            % (len(events), len(want_out), sum(len(v) for v in want_err.values())))

    # (1) plugins: with a path relative to the pipeline file, run from elsewhere
    d = os.path.join(root, "yaml")
    os.makedirs(os.path.join(d, "lib"))
    shutil.copy(env.ex("currency"), os.path.join(d, "lib", "currency.so"))
    shutil.copy(env.ex("running_count"), os.path.join(d, "lib", "running_count.so"))
    out, err = os.path.join(d, "out.jsonl"), os.path.join(d, "errors.jsonl")
    pipe = e2elib.write_pipeline(os.path.join(d, "pipeline.yaml"), DEFAULTS_PIPELINE % {
        "plugins": "plugins: [lib/currency.so, lib/running_count.so]\n",
        "events": e2elib.yaml_str(events_path), "currency": currency_expr(),
        "out": e2elib.yaml_str(out), "errors": e2elib.yaml_str(err)})
    elsewhere = t.tmpdir("cwd")
    run(t, ["validate", pipe], "plugins: (relative): validate", cwd=elsewhere, env=env_with())
    res = run(t, ["graph", pipe], "plugins: (relative): graph", cwd=elsewhere, env=env_with())
    t.check(b"example.currency" in res.stdout, "graph shows the plugin's type")
    run(t, ["run", pipe, "--no-progress"], "plugins: [lib/currency.so, ...] run from another "
        "directory", cwd=elsewhere, env=env_with())
    compare_events(t, want_out, out, "plugins: (relative)")
    compare_errors(t, want_err, err, "plugins: (relative)")

    # (2) --plugin-dir, every parameter set
    d = os.path.join(root, "dir")
    os.makedirs(d)
    out, err = os.path.join(d, "out.jsonl"), os.path.join(d, "errors.jsonl")
    pipe = e2elib.write_pipeline(os.path.join(d, "pipeline.yaml"), EXPLICIT_PIPELINE % {
        "events": e2elib.yaml_str(events_path), "currency": currency_expr(),
        "out": e2elib.yaml_str(out), "errors": e2elib.yaml_str(err)})
    res = run(t, ["validate", pipe], "no plugin loaded: validate", want_rc=1, env=env_with())
    t.check("unknown operator type 'example.currency'" in text(res),
            "without the plugin: unknown operator type 'example.currency'", res.describe())
    run(t, ["run", pipe, "--no-progress", "--plugin-dir", env.examples], "--plugin-dir EX run",
        cwd=d, env=env_with())
    w_out, w_err = expect_explicit(events)
    compare_events(t, w_out, out, "--plugin-dir (explicit parameters)")
    compare_errors(t, w_err, err, "--plugin-dir (explicit parameters)")

    # (3) SLUICE_PLUGIN_PATH, unfused (the plugin's batches cross threads)
    d = os.path.join(root, "env")
    os.makedirs(d)
    out, err = os.path.join(d, "out.jsonl"), os.path.join(d, "errors.jsonl")
    pipe = e2elib.write_pipeline(os.path.join(d, "pipeline.yaml"), DEFAULTS_PIPELINE % {
        "plugins": "", "events": e2elib.yaml_str(events_path), "currency": currency_expr(),
        "out": e2elib.yaml_str(out), "errors": e2elib.yaml_str(err)})
    empty = os.path.join(root, "empty-plugin-dir")
    os.makedirs(empty, exist_ok=True)
    run(t, ["run", pipe, "--no-progress", "--no-fusion"], "SLUICE_PLUGIN_PATH=EMPTY:EX run "
        "--no-fusion", cwd=d, env=env_with(SLUICE_PLUGIN_PATH=empty + ":" + env.examples))
    compare_events(t, want_out, out, "SLUICE_PLUGIN_PATH --no-fusion")
    compare_errors(t, want_err, err, "SLUICE_PLUGIN_PATH --no-fusion")


MINIMAL = """\
pipeline: plugins-errors
%(plugins)soperators:
  gen: {type: source.generator, count: 100}
  op: {type: %(type)s, input: gen%(params)s}
  out: {type: sink.null, input: op}
"""


def part_errors(t, env, root):
    d = os.path.join(root, "errors")
    os.makedirs(d)
    junk = t.write(os.path.join(d, "junk.so"), "this is no shared object\n")
    twin = os.path.join(d, "twin", "currency_copy.so")
    os.makedirs(os.path.dirname(twin))
    shutil.copy(env.ex("currency"), twin)
    cases = (  # label, plugin file, what the message must say
        ("ABI 999", env.bad("bad_abi"), "built for ABI 999, this sluice has ABI 1"),
        ("no entry symbol", env.bad("no_entry"), "no symbol 'sluice_plugin'"),
        ("an operator named filter", env.bad("dup_name"), "operator 'filter' is already defined"),
        ("not a shared object", junk, "cannot load it"),
    )
    for label, path, says in cases:
        name = os.path.basename(path)
        pipe = e2elib.write_pipeline(os.path.join(d, "p-%s.yaml" % name), MINIMAL % {
            "plugins": "plugins: [%s]\n" % e2elib.yaml_str(path), "type": "identity", "params": ""})
        for cmd in ("validate", "run"):
            res = run(t, [cmd, pipe, "--no-progress"] if cmd == "run" else [cmd, pipe],
                      "%s: plugins: [%s] %s" % (label, name, cmd), want_rc=1, env=env_with())
            s = text(res)
            t.check(("plugin '%s'" % path) in s and says in s and res.elapsed < 10 * t.slow,
                    "%s (%s): the message names '%s' and says '%s'" % (label, cmd, path, says),
                    res.describe())
        # alone in a directory: --plugin-dir and SLUICE_PLUGIN_PATH
        alone = os.path.join(d, "dir-" + name[:-3])
        os.makedirs(alone)
        shutil.copy(path, os.path.join(alone, name))
        plain = e2elib.write_pipeline(os.path.join(d, "plain.yaml"), MINIMAL % {
            "plugins": "", "type": "identity", "params": ""})
        for how, args, ev in (("--plugin-dir", ["--plugin-dir", alone], {}),
                              ("SLUICE_PLUGIN_PATH", [], {"SLUICE_PLUGIN_PATH": alone})):
            res = run(t, ["run", plain, "--no-progress"] + args, "%s: %s %s" % (label, how, name),
                      want_rc=1, env=env_with(**ev))
            s = text(res)
            t.check(name in s and says in s,
                    "%s through %s: exit 1, the message names %s and says '%s'"
                    % (label, how, name, says), res.describe())
    res = run(t, ["inspect", "--plugin-dir", os.path.join(d, "dir-bad_abi")],
              "inspect --plugin-dir with a bad plugin", want_rc=1, env=env_with())
    t.check("bad_abi.so" in text(res), "inspect --plugin-dir: a bad plugin is named, exit 1")

    # a missing file, relative to the pipeline's directory
    pipe = e2elib.write_pipeline(os.path.join(d, "missing.yaml"), MINIMAL % {
        "plugins": "plugins: [no/such/plugin.so]\n", "type": "identity", "params": ""})
    res = run(t, ["validate", pipe], "a missing plugin file", want_rc=1, env=env_with())
    s = text(res)
    t.check("missing.yaml:2:" in s and "no/such/plugin.so" in s and "No such file" in s,
            "missing plugin: file:line:col, the path and 'No such file'", res.describe())

    # the same operator from a second file
    pipe = e2elib.write_pipeline(os.path.join(d, "twin.yaml"), MINIMAL % {
        "plugins": "plugins: [twin/currency_copy.so]\n", "type": "example.currency", "params": ""})
    res = run(t, ["validate", pipe, "--plugin-dir", env.examples],
              "the same operator in two plugin files", want_rc=1, env=env_with())
    s = text(res)
    t.check("currency_copy.so" in s and "'example.currency' is already defined" in s
            and os.path.realpath(env.ex("currency")) in s,
            "two files defining example.currency: the message names both", res.describe())
    # the same file twice is one load
    pipe = e2elib.write_pipeline(os.path.join(d, "twice.yaml"), MINIMAL % {
        "plugins": "plugins: [%s, %s]\n" % (e2elib.yaml_str(env.ex("identity_plugin")),
                                            e2elib.yaml_str(env.ex("identity_plugin"))),
        "type": "bench.identity", "params": ""})
    run(t, ["run", pipe, "--no-progress", "--plugin-dir", env.examples],
        "the same file through plugins: twice and --plugin-dir", env=env_with())

    # init reports a configuration error
    pipe = e2elib.write_pipeline(os.path.join(d, "init.yaml"), MINIMAL % {
        "plugins": "plugins: [%s]\n" % e2elib.yaml_str(env.bad("init_fails")),
        "type": "test.init_fails", "params": ", reason: no API key configured"})
    for cmd in ("validate", "run"):
        res = run(t, [cmd, pipe], "init fails: %s" % cmd, want_rc=1, env=env_with())
        t.check(re.search(r"init\.yaml:5:\d+: no API key configured", text(res)) is not None,
                "init fails (%s): init.yaml:5:COL: no API key configured" % cmd, res.describe())
        t.check("from plugin '%s'" % os.path.realpath(env.bad("init_fails")) in text(res),
                "init fails (%s): the message names the plugin's file" % cmd, res.describe())
    # ... and a built-in's parameter check applies to plugins too
    pipe = e2elib.write_pipeline(os.path.join(d, "param.yaml"), MINIMAL % {
        "plugins": "", "type": "example.currency", "params": ", to: CHF, ratez: {}"})
    res = run(t, ["validate", pipe, "--plugin-dir", env.examples], "currency: bad parameters",
              want_rc=1, env=env_with())
    s = text(res)
    t.check("unknown parameter 'ratez'" in s and "did you mean 'rates'" in s,
            "a plugin's parameter table drives validation (unknown 'ratez', did you mean 'rates')",
            res.describe())
    # an amount that is not a number: every event to errors, reason invalid
    out = os.path.join(d, "invalid.jsonl")
    pipe = e2elib.write_pipeline(os.path.join(d, "invalid.yaml"), """\
pipeline: plugins-invalid
operators:
  gen: {type: source.generator, count: 100}
  conv: {type: example.currency, input: gen, field: data.status, currency_field: type}
  sink: {type: sink.null, input: conv}
  errors: {type: sink.file, input: conv.errors, path: %s}
""" % e2elib.yaml_str(out))
    run(t, ["run", pipe, "--no-progress", "--plugin-dir", env.examples], "currency: a string amount",
        env=env_with())
    envs = e2elib.read_jsonl(out)
    t.check(len(envs) == 100 and all(e.get("reason") == "invalid" and e.get("detail") ==
                                      "not a number: 'data.status'" for e in envs),
            "a string amount: the 100 events in errors, reason invalid, detail names the field",
            json.dumps(envs[:2]))
    pipe = e2elib.write_pipeline(os.path.join(d, "param2.yaml"), MINIMAL % {
        "plugins": "", "type": "example.currency", "params": ", to: CHF"})
    res = run(t, ["validate", pipe, "--plugin-dir", env.examples], "currency: to not in rates",
              want_rc=1, env=env_with())
    t.check(re.search(r"param2\.yaml:4:\d+: 'to: CHF' is not in 'rates'", text(res)) is not None,
            "the plugin's own config_error: param2.yaml:4:COL: 'to: CHF' is not in 'rates'",
            res.describe())


PROCESS_FAILS = """\
pipeline: plugins-process-fails
plugins: [%(plugin)s]
batch: {max_events: 256, linger: 5ms}
operators:
  gen: {type: source.generator, count: 0}
  failing: {type: test.process_fails, input: gen, after: 5000}
  out: {type: sink.null, input: failing}
"""


def part_process(t, env, root):
    pipe = e2elib.write_pipeline(os.path.join(root, "process.yaml"), PROCESS_FAILS % {
        "plugin": e2elib.yaml_str(env.bad("process_fails"))})
    for extra in ([], ["--no-fusion"]):
        what = "process returns SL_ERROR (%s)" % ("unfused" if extra else "fused")
        res = run(t, ["run", pipe, "--no-progress"] + extra, what, want_rc=1, timeout=30,
                  env=env_with())
        s = text(res)
        t.check("failing" in s and "process_fails gives up after 5000 events" in s,
                "%s: stderr names the operator and its reason" % what, res.describe())
        t.check(res.elapsed < 10 * t.slow, "%s: stopped after %.2f s (unbounded source)"
                % (what, res.elapsed))


CRASH = """\
pipeline: plugins-crash
plugins: [%(plugin)s]
state_dir: %(state)s
checkpoint: {interval: 100ms}
batch: {max_events: 256, linger: 5ms}
operators:
  gen: {type: source.generator, count: %(count)d, rate: %(rate)d, seed: 5}
  counts: {type: example.running_count, input: gen, key: %(key)s}
  out: {type: sink.file, input: counts, path: %(out)s}
"""


def part_crash(t, env, root):
    count, rate = 30000, 10000

    def case(name, key="data.status", rate_=rate):
        c = ck.Case(root, name, "")
        c.out = {"out": os.path.join(c.outdir, "out.jsonl")}
        e2elib.write_pipeline(c.yaml, CRASH % {
            "plugin": e2elib.yaml_str(env.ex("running_count")), "state": e2elib.yaml_str(c.state),
            "count": count, "rate": rate_, "key": key, "out": e2elib.yaml_str(c.out["out"])})
        return c

    ref = case("crash-ref", rate_=0)
    ck.run_to_end(t, ref, "crash: uninterrupted run", timeout=60)
    lines = ck.read_lines(ref.out["out"])
    seen = collections.Counter()
    for i, l in enumerate(lines):
        ev = json.loads(l)
        k = json.dumps(ev["data"]["status"])
        seen[k] += 1
        if ev.get("count") != seen[k]:
            t.fail("crash: uninterrupted run, line %d: count %r, expected %d (the %d-th %s)\n%s"
                   % (i + 1, ev.get("count"), seen[k], seen[k], k, l[:300]))
    t.check(len(lines) == count and len(seen) >= 5,
            "crash: the uninterrupted run numbers each of %d statuses 1..n in order (%d events)"
            % (len(seen), len(lines)))
    want = sorted(lines)

    c = case("crash-kill")
    vis = ck.Visible(c.out.values())
    rnd = random.Random(17)
    for i in range(3):
        r = ck.start(t, c)
        ck.poll_growth(t, r, c.out["out"], "crash: run %d" % (i + 1), above=vis.total())
        time.sleep(rnd.uniform(0.0, 0.25))   # not a synchronisation: between checkpoints too
        if r.poll() is not None:
            t.fail("crash: run %d ended (exit %s) before the kill\n%s"
                   % (i + 1, r.poll(), r.result(r.poll()).describe()))
        r.kill9()
        grown = vis.advance(t, "crash: after kill %d" % (i + 1))
        t.check(grown > 0, "crash: kill -9 in run %d after %d more bytes were published"
                % (i + 1, grown))
    res = ck.run_to_end(t, c, "crash: last run", timeout=60)
    got = ck.read_lines(c.out["out"])
    if sorted(got) != want:
        t.fail("crash: after 3 x kill -9 the output differs from an uninterrupted run's (sorted): "
               "%s\n%s" % (ck.diff_summary(want, sorted(got)), res.describe()))
    t.ok("crash: after 3 x kill -9 and restarts, the %d lines of an uninterrupted run (sorted%s)"
         % (len(want), "; in the same order too" if got == lines else ""))
    ck.check_no_leftovers(t, c, "crash")

    # another key: the stored counts are refused
    e2elib.write_pipeline(c.yaml, CRASH % {
        "plugin": e2elib.yaml_str(env.ex("running_count")), "state": e2elib.yaml_str(c.state),
        "count": count, "rate": rate, "key": "type", "out": e2elib.yaml_str(c.out["out"])})
    r = ck.start(t, c)
    res = r.wait(30 * t.slow, "crash: key changed")
    t.check_rc(res, 1, "crash: restore with key changed from data.status to type refused")
    s = res.stderr.decode("utf-8", "replace")
    t.check("counts" in s and "--fresh" in s and "per 'data.status'" in s,
            "crash: the refusal names the operator, the stored key and --fresh", res.describe())


RESUME = """\
pipeline: plugins-resume
plugins: [%(plugin)s]
state_dir: %(state)s
checkpoint: {interval: 100ms}
operators:
  src: {type: source.file, path: %(events)s}
  counts: {type: example.running_count, input: src}
  out: {type: sink.file, input: counts, path: %(out)s}
"""


def part_resume(t, env, root, events_path):
    with open(events_path, "rb") as f:
        all_lines = [l for l in f if l.strip()]
    half = len(all_lines) // 2
    c = ck.Case(root, "resume", "")
    events = os.path.join(c.dir, "events.jsonl")
    with open(events, "wb") as f:
        f.writelines(all_lines[:half])
    out = os.path.join(c.outdir, "out.jsonl")
    e2elib.write_pipeline(c.yaml, RESUME % {
        "plugin": e2elib.yaml_str(env.ex("running_count")), "state": e2elib.yaml_str(c.state),
        "events": e2elib.yaml_str(events), "out": e2elib.yaml_str(out)})
    ck.run_to_end(t, c, "resume: first run over %d lines" % half)
    t.check_eq(e2elib.count_lines(out), half, "resume: first run wrote every line")
    with open(events, "ab") as f:
        f.writelines(all_lines[half:])
    res = ck.run_to_end(t, c, "resume: rerun after %d lines were appended" % (len(all_lines) - half))
    t.check("restored checkpoint" in res.stderr.decode("utf-8", "replace"),
            "resume: the rerun restored the final checkpoint", res.describe())
    want = []
    n = collections.Counter()
    for l in all_lines:
        ev = json.loads(l)
        n[ev["type"]] += 1
        ev["count"] = n[ev["type"]]
        want.append(ev)
    compare_events(t, want, out, "resume: counts continued from the restored ones")
    before = ck.file_digest(out)
    ck.run_to_end(t, c, "resume: third run, nothing appended")
    t.check(ck.file_digest(out) == before, "resume: the third run wrote nothing")


def part_oot(t, env, root, events_path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not shutil.which("pkg-config") or not cc:
        t.log("SKIP (oot): %s is not installed: the out-of-tree build is not tested"
              % ("pkg-config" if not shutil.which("pkg-config") else "a C compiler (cc)"))
        return
    d = os.path.join(root, "oot")
    os.makedirs(d)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "operators", "examples", "currency.c")
    shutil.copy(src, os.path.join(d, "currency.c"))
    uninstalled = os.path.join(env.build, "meson-uninstalled")
    penv = env_with(PKG_CONFIG_PATH=uninstalled)
    penv["CC"] = cc
    for label, cmd in (
            ("docs/plugins.md's command",
             '"$CC" -shared -fPIC $(pkg-config --cflags sluice) currency.c -o currency.so'),
            ("strict warnings",
             '"$CC" -std=c11 -Wall -Wextra -Wpedantic -Werror -shared -fPIC '
             '$(pkg-config --cflags sluice) currency.c -o strict.so')):
        r = subprocess.run(["sh", "-ec", cmd], cwd=d, env=penv, capture_output=True, timeout=120)
        t.check(r.returncode == 0, "oot: %s builds (PKG_CONFIG_PATH=%s): %s" % (label, uninstalled, cmd),
                "exit %d\n%s%s" % (r.returncode, r.stdout.decode(), r.stderr.decode()))
    out, err = os.path.join(d, "out.jsonl"), os.path.join(d, "errors.jsonl")
    # only currency.so: running_count comes from the build tree
    pipe = e2elib.write_pipeline(os.path.join(d, "pipeline.yaml"), DEFAULTS_PIPELINE % {
        "plugins": "plugins: [currency.so, %s]\n" % e2elib.yaml_str(env.ex("running_count")),
        "events": e2elib.yaml_str(events_path), "currency": currency_expr(),
        "out": e2elib.yaml_str(out), "errors": e2elib.yaml_str(err)})
    run(t, ["run", pipe, "--no-progress"], "oot: a pipeline with the plugin built outside the tree",
        env=env_with())
    events = read_events(events_path)
    want_out, want_err = expect_defaults(events)
    compare_events(t, want_out, out, "oot: out-of-tree currency.so")
    compare_errors(t, want_err, err, "oot: out-of-tree currency.so")


PARTS = ("inspect", "load", "errors", "process", "crash", "resume", "oot")


def add_args(ap):
    ap.add_argument("--only", default="", help="comma-separated parts (%s); default all"
                    % ",".join(PARTS))


def main(t):
    only = set(filter(None, t.args.only.split(","))) or set(PARTS)
    if only - set(PARTS):
        t.fail("unknown part(s) %s: choose among %s" % (sorted(only - set(PARTS)), ",".join(PARTS)))
    env = Env(t)
    root = t.tmpdir()
    events = t.gen_events(os.path.join(root, "events.jsonl"), int(EVENTS / t.slow), SEED)
    steps, failed = [], []
    for name, fn, args in (("inspect", part_inspect, ()), ("load", part_load, (events,)),
                           ("errors", part_errors, ()), ("process", part_process, ()),
                           ("crash", part_crash, ()), ("resume", part_resume, (events,)),
                           ("oot", part_oot, (events,))):
        if name not in only:
            continue
        t0 = time.monotonic()
        try:
            fn(t, env, root, *args)
        except e2elib.Failure as e:
            t.log("FAILED part (%s): %s" % (name, e))
            failed.append("part (%s): %s" % (name, e))
        steps.append("%s %.1f s" % (name, time.monotonic() - t0))
    t.log("time per part: " + ", ".join(steps))
    if failed:
        t.fail("%d of %d parts failed (each is shown above as FAILED part):\n%s"
               % (len(failed), len(only), "\n\n".join(failed)))


if __name__ == "__main__":
    e2elib.main(main, add_args)
