#!/usr/bin/env python3
"""The `throttle` end to end: the configured rate holds within +-2% over 10 s
of wall-clock time in each mode, and with several named limits at once.

Two pipelines run at the same time (the whole test takes ~10-12 s):

1. rates: source.generator offering 4000 events/s for 10 s (40000 events, no
   duplicates, nothing late), fanned out to three throttles:
     drop     rate 1000/s, burst 50, mode drop     -> sink.file
     reroute  rate 1000/s, burst 50, mode reroute  -> sink.file (out, over_limit)
     named    mode reroute, limits publish 200/s (burst 10), subscribe 50/s
              (burst 5), query 20/s (burst 2), selected from data.status
              (PENDING, PAID, SHIPPED; every other status names no limit and
              passes unthrottled)                  -> sink.file (out, over_limit)
   Expected passes: burst + rate x E, where E is how long the stream was
   offered to the throttle.  E is measured on the engine's own clock: each
   over_limit envelope carries the wall-clock time at which the throttle
   rerouted it, so E = (time of the last envelope - time of the first) plus
   the few milliseconds of stream before the first and after the last
   rerouted event (from the generator's pacing, ids / 4000 per second).  The
   drop throttle has no envelopes; it reads the same batches of the same
   generator as the reroute throttle, so it is measured against the reroute
   throttle's E (both see each batch within a few milliseconds).
   Also checked: reroute's out + over_limit hold every offered event exactly
   once, the envelopes' reason, operator, detail and retry_after_ms, and every
   event of no named limit passed.

2. delay: source.generator (as fast as it can, 10020 events) -> throttle
   rate 1000/s, burst 20, mode delay -> sink.stdout, with batches of 16
   events so that what the throttle lets through reaches stdout within 16 ms.
   The test reads stdout line by line and stamps each line's arrival: the
   span from the first line to the last must be (N - burst) / rate = 10 s
   within 2%, the count at each whole second must follow burst + rate x t, and
   no event may be lost or reordered.

3. `sluice validate` refuses `limits` without `select`, at the limits node."""
import json
import os
import re
import subprocess
import threading
import time

import e2elib

OFFERED = 4000            # events per second offered by the generator
SECONDS = 10
COUNT = OFFERED * SECONDS
# A bucket of 50 tolerates 50 ms without the throttle's thread running (a
# busy machine: the suite runs tests in parallel) before tokens are lost.
RATE, BURST = 1000, 50
NAMED = [                 # name, rate, burst, the data.status that selects it
    ("publish", 200, 10, "PENDING"),
    ("subscribe", 50, 5, "PAID"),
    ("query", 20, 2, "SHIPPED"),
]
DELAY_RATE, DELAY_BURST = 1000, 20
DELAY_COUNT = DELAY_RATE * SECONDS + DELAY_BURST
DELAY_BATCH = 16
TOLERANCE = 0.02

SELECT = " : ".join('data.status == "%s" ? "%s"' % (status, name)
                    for name, _, _, status in NAMED) + ' : "none"'

RATES = """\
pipeline: throttle-rates
batch: {max_events: 1024, linger: 5ms}
operators:
  gen:
    type: source.generator
    count: %(count)d
    rate: %(offered)d
    event_rate: %(offered)d
    dup_frac: 0
    late_frac: 0
  drop:
    type: throttle
    input: gen
    rate: %(rate)d
    burst: %(burst)d
    mode: drop
  reroute:
    type: throttle
    input: gen
    rate: %(rate)d
    burst: %(burst)d
    mode: reroute
  named:
    type: throttle
    input: gen
    mode: reroute
    limits:
%(limits)s    select: '%(select)s'
  drop_out: {type: sink.file, input: drop, path: %(drop_out)s}
  reroute_out: {type: sink.file, input: reroute, path: %(reroute_out)s}
  reroute_over: {type: sink.file, input: reroute.over_limit, path: %(reroute_over)s}
  named_out: {type: sink.file, input: named, path: %(named_out)s}
  named_over: {type: sink.file, input: named.over_limit, path: %(named_over)s}
"""

DELAY = """\
pipeline: throttle-delay
batch: {max_events: %(batch)d, linger: 5ms}
operators:
  gen:
    type: source.generator
    count: %(count)d
    rate: 0
    dup_frac: 0
    late_frac: 0
  delay:
    type: throttle
    input: gen
    rate: %(rate)d
    burst: %(burst)d
  out: {type: sink.stdout, input: delay}
"""

BAD = """\
pipeline: bad-throttle
operators:
  gen: {type: source.generator, count: 10}
  limit:
    type: throttle
    input: gen
    limits: {publish: {rate: 200, burst: 200}}
  out: {type: sink.null, input: limit}
"""


def seq(ev):
    """The generator's event number, from its id evt-%010d."""
    return int(ev["id"][4:])


def deviation(got, want):
    return (got - want) / want


def check_rate(t, what, passed, rate, burst, span_s, detail=""):
    want = burst + rate * span_s
    dev = deviation(passed, want)
    msg = ("%s: %d passed in %.3f s at %g/s (burst %d): expected %.1f, %+.2f%% (within +-%g%%)%s"
           % (what, passed, span_s, rate, burst, want, 100 * dev, 100 * TOLERANCE, detail))
    t.check(abs(dev) <= TOLERANCE, msg)
    return dev


def envelope_span(envs, first_seq, last_seq):
    """How long the stream ran through the throttle, in seconds: from the
    engine's wall-clock stamps of the first and last rerouted events, plus
    the generator's pacing for the events before the first and after the last."""
    stamped = sorted((seq(e["original"]), e2elib.parse_time(e["time"])) for e in envs)
    (n0, t0), (n1, t1) = stamped[0], stamped[-1]
    return (t1 - t0) / 1e9 + (n0 - first_seq) / OFFERED + (last_seq - n1) / OFFERED


def check_envelopes(t, what, envs, operator, detail, rate):
    """Every envelope: reason over_limit, the operator, the limit's detail, and
    retry_after_ms between 1 and one emission interval (a saturated bucket)."""
    most = -(-1000 // rate)
    bad = []
    for e in envs:
        r = e.get("retry_after_ms")
        if (e.get("reason") != "over_limit" or e.get("operator") != operator or
                e.get("detail") != detail or type(r) is not int or not 1 <= r <= most or
                e2elib.parse_time(e.get("time")) is None or
                not isinstance(e.get("original"), dict)):
            bad.append(e)
    t.check(not bad, "%s: %d envelopes, each {reason: over_limit, operator: %s, detail: %r, "
                     "retry_after_ms in [1, %d], time, original}" % (what, len(envs), operator,
                                                                  detail, most),
            "first bad: %r" % (bad[:1],))


def validate_bad(t, d):
    path = t.write(os.path.join(d, "bad.yaml"), BAD)
    r = t.run(["validate", path], cwd=d, timeout=30)
    err = r.stderr.decode("utf-8", "replace")
    t.check(r.rc == 1 and re.search(r"bad\.yaml:7:13: .*select", err),
            "validate: 'limits' without 'select' -> exit 1, bad.yaml:7:13 names select",
            r.describe())


def run_delay(t, d, results):
    """Run the delay pipeline, stamping each stdout line as it arrives."""
    pipe = e2elib.write_pipeline(os.path.join(d, "delay.yaml"), DELAY % dict(
        batch=DELAY_BATCH, count=DELAY_COUNT, rate=DELAY_RATE, burst=DELAY_BURST))
    err = open(os.path.join(d, "delay.stderr"), "wb")
    p = t.spawn(["run", pipe, "--no-progress"], cwd=d, stderr=err)
    lines = results["delay_lines"]
    for line in iter(p.stdout.readline, b""):
        lines.append((time.monotonic(), line))
    p.stdout.close()
    results["delay_rc"] = p.wait()
    err.close()


def main(t):
    d = t.tmpdir()
    validate_bad(t, d)
    paths = {k: os.path.join(d, k + ".jsonl")
             for k in ("drop_out", "reroute_out", "reroute_over", "named_out", "named_over")}
    limits = "".join("      %s: {rate: %d, burst: %d}\n" % (n, r, b) for n, r, b, _ in NAMED)
    rates = e2elib.write_pipeline(os.path.join(d, "rates.yaml"), RATES % dict(
        count=COUNT, offered=OFFERED, rate=RATE, burst=BURST, limits=limits, select=SELECT,
        **{k: e2elib.yaml_str(p) for k, p in paths.items()}))
    t.check_rc(t.run(["validate", rates], cwd=d, timeout=30), 0, "validate rates.yaml")

    # both pipelines at once: the delay one in a thread that stamps its output lines
    results = {"delay_lines": [], "delay_rc": None}
    reader = threading.Thread(target=run_delay, args=(t, d, results), daemon=True)
    reader.start()
    p = t.spawn(["run", rates, "--no-progress"], cwd=d, stdout=subprocess.DEVNULL)
    r = t.wait(p, 60 * t.slow, "sluice run rates.yaml")
    t.check_rc(r, 0, "rates: sluice run (%d events offered at %d/s)" % (COUNT, OFFERED))
    reader.join(60 * t.slow)
    t.check(not reader.is_alive(), "delay: the run ended")
    with open(os.path.join(d, "delay.stderr"), "rb") as f:
        delay_err = f.read().decode("utf-8", "replace")
    t.check(results["delay_rc"] == 0, "delay: sluice run: exit status 0 (got %s)"
            % results["delay_rc"], "--- stderr:\n" + delay_err[-3000:])

    # ---- reroute: every event exactly once, out or over_limit; the rate by the envelopes' clock
    out = e2elib.read_jsonl(paths["reroute_out"])
    over = e2elib.read_jsonl(paths["reroute_over"])
    got = sorted([seq(e) for e in out] + [seq(e["original"]) for e in over])
    t.check(got == list(range(COUNT)),
            "reroute: out (%d) + over_limit (%d) hold each of the %d offered events once"
            % (len(out), len(over), COUNT))
    ids = [seq(e) for e in out]
    t.check(ids == sorted(set(ids)), "reroute: out keeps the offered order")
    check_envelopes(t, "reroute", over, "reroute", "rate %d/s, burst %d" % (RATE, BURST), RATE)
    span = envelope_span(over, 0, COUNT - 1)
    sched = (COUNT - 1) / OFFERED
    t.log("stream span through the throttle: %.4f s by the engine's clock (the generator's "
          "schedule: %.4f s)" % (span, sched))
    summary = []
    dev = check_rate(t, "reroute", len(out), RATE, BURST, span)
    summary.append("reroute: %d passed in %.3f s for %d/s = %+.2f%%"
                   % (len(out), span, RATE, 100 * dev))

    # ---- drop: the same stream, measured against the same span
    dropped = e2elib.read_jsonl(paths["drop_out"])
    ids = [seq(e) for e in dropped]
    t.check(ids == sorted(set(ids)) and all(0 <= i < COUNT for i in ids),
            "drop: out holds distinct offered events, in order")
    dev = check_rate(t, "drop", len(dropped), RATE, BURST, span,
                     " (span of the reroute throttle, same batches)")
    summary.append("drop: %d passed in %.3f s for %d/s = %+.2f%%"
                   % (len(dropped), span, RATE, 100 * dev))

    # ---- named limits: each within 2% on its own envelopes' clock; the rest unthrottled
    nout = e2elib.read_jsonl(paths["named_out"])
    nover = e2elib.read_jsonl(paths["named_over"])
    got = sorted([seq(e) for e in nout] + [seq(e["original"]) for e in nover])
    t.check(got == list(range(COUNT)),
            "named: out (%d) + over_limit (%d) hold each offered event once"
            % (len(nout), len(nover)))
    status = lambda e: (e.get("data") or {}).get("status")
    selected = {s: n for n, _, _, s in NAMED}
    stray = [e for e in nover if status(e["original"]) not in selected]
    free = [e for e in nout if status(e) not in selected]
    t.check(not stray, "named: no event of another status was throttled (%d passed unthrottled)"
            % len(free))
    for name, rate, burst, st in NAMED:
        passed = [e for e in nout if status(e) == st]
        envs = [e for e in nover if status(e["original"]) == st]
        stream = sorted([seq(e) for e in passed] + [seq(e["original"]) for e in envs])
        check_envelopes(t, "named %s" % name, envs, "named",
                        "limit '%s': %d/s, burst %d" % (name, rate, burst), rate)
        span_l = envelope_span(envs, stream[0], stream[-1])
        dev = check_rate(t, "named %s (data.status %s, %d offered, %.0f/s)"
                         % (name, st, len(stream), len(stream) / span_l),
                         len(passed), rate, burst, span_l)
        summary.append("named %s: %d passed in %.3f s for %d/s = %+.2f%%"
                       % (name, len(passed), span_l, rate, 100 * dev))

    # ---- delay: nothing lost, the span of the output 10 s within 2%, steady on the way
    lines = results["delay_lines"]
    evs = [json.loads(l) for _, l in lines]
    t.check([seq(e) for e in evs] == list(range(DELAY_COUNT)),
            "delay: all %d events out, in order (got %d)" % (DELAY_COUNT, len(evs)))
    first, last = lines[0][0], lines[-1][0]
    elapsed = last - first
    want = (DELAY_COUNT - DELAY_BURST) / DELAY_RATE
    dev = deviation(elapsed, want)
    t.check(abs(dev) <= TOLERANCE,
            "delay: first to last output line %.3f s, expected (N - burst) / rate = %.3f s: "
            "%+.2f%% (within +-%g%%)" % (elapsed, want, 100 * dev, 100 * TOLERANCE))
    summary.append("delay: %d events in %.3f s for %d/s (burst %d) = %+.2f%%"
                   % (DELAY_COUNT, elapsed, DELAY_RATE, DELAY_BURST, -100 * dev / (1 + dev)))
    bad = []
    for k in range(1, SECONDS):
        n = sum(1 for ts, _ in lines if ts <= first + k)
        w = DELAY_BURST + DELAY_RATE * k
        if abs(n - w) > TOLERANCE * w + DELAY_BATCH:
            bad.append("at %d s: %d lines, expected %d" % (k, n, w))
    t.check(not bad, "delay: at each whole second, burst + rate x t lines out (+-2%% and one "
                     "batch of %d)" % DELAY_BATCH, "; ".join(bad))
    for s in summary:
        t.log("measured: " + s)


if __name__ == "__main__":
    e2elib.main(main)
