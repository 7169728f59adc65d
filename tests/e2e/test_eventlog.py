#!/usr/bin/env python3
"""The durable event log end to end: source.file -> sink.log, then source.log
(follow: false) -> sink.file writes exactly the input's events, first
occurrence of each id, in order (gen_events.py re-sends some ids; the log
keeps one); running the writer again appends nothing (idempotent by id);
`sluice log stats/tail/get/query/append` print what the log holds (a query
computed independently here, paged with --after, both orders); usage errors
exit 2 and a missing or corrupt log exits 1; a following source.log picks up
what `sluice log append` adds from another process while it runs, and stops
on SIGTERM with everything written; retention by size keeps the newest events
within the limit, and by age drops what was appended before."""
import json
import os
import signal
import time

import e2elib

WRITE = """\
pipeline: log-write
operators:
  events:
    type: source.file
    path: %(input)s
  store:
    type: sink.log
    input: events
    path: %(log)s
%(retention)s"""

READ = """\
pipeline: log-read
operators:
  replay:
    type: source.log
    path: %(log)s
    follow: %(follow)s
    poll: 10ms
  out:
    type: sink.file
    input: replay
    path: %(out)s
    batch: {size: 1, interval: 10ms}
"""


def unique_events(path):
    """The events of a JSON-lines file, first occurrence of each id, in order."""
    seen, out = set(), []
    for ev in e2elib.read_jsonl(path):
        if ev["id"] not in seen:
            seen.add(ev["id"])
            out.append(ev)
    return out


def write_jsonl(t, path, events):
    t.write(path, "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events))
    return path


def run_pipeline(t, d, name, text, what):
    pipe = e2elib.write_pipeline(os.path.join(d, name + ".yaml"), text)
    r = t.run(["run", pipe, "--no-progress"], cwd=d, timeout=120)
    t.check_rc(r, 0, what)
    return r


def log_cmd(t, args, want_rc, what):
    r = t.run(["log"] + [str(a) for a in args], timeout=60)
    t.check_rc(r, want_rc, what)
    return r


def lines(r):
    return [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]


def check_events(t, got, want, what):
    """got: [{"offset", "event"}] lines; want: [(offset, event)]."""
    if len(got) != len(want):
        t.fail("%s: %d events, expected %d\n  got: %r\n  want: %r"
               % (what, len(got), len(want), got[:3], want[:3]))
    for i, (g, (off, ev)) in enumerate(zip(got, want)):
        if g.get("offset") != off or not e2elib.events_equal(g.get("event"), ev):
            t.fail("%s: line %d is %r, expected offset %d %r" % (what, i, g, off, ev))
    t.ok("%s: %d events with their offsets" % (what, len(got)))


def round_trip(t, d):
    src = t.gen_events(os.path.join(d, "in.jsonl"), 20000)
    log = os.path.join(d, "log")
    uniq = unique_events(src)
    t.check(len(uniq) < 20000, "the input re-sends some ids (%d unique of 20000)" % len(uniq))
    run_pipeline(t, d, "write", WRITE % {"input": e2elib.yaml_str(src), "log": e2elib.yaml_str(log),
                                        "retention": ""}, "file -> sink.log")
    want = write_jsonl(t, os.path.join(d, "want.jsonl"), uniq)
    out = os.path.join(d, "out.jsonl")
    run_pipeline(t, d, "read", READ % {"log": e2elib.yaml_str(log), "follow": "false",
                                      "out": e2elib.yaml_str(out)}, "source.log -> sink.file")
    e2elib.compare_jsonl(t, want, out, "sink.log then source.log")

    # the same input again: every id is in the log already
    run_pipeline(t, d, "write", WRITE % {"input": e2elib.yaml_str(src), "log": e2elib.yaml_str(log),
                                        "retention": ""}, "file -> sink.log a second time")
    st = json.loads(log_cmd(t, ["stats", log, "--json"], 0, "sluice log stats --json").stdout)
    t.check_eq(st["events"], len(uniq), "a second run appends nothing: events")
    return log, uniq


def cli(t, d, log, uniq):
    n = len(uniq)
    st = json.loads(log_cmd(t, ["stats", log, "--json"], 0, "stats --json").stdout)
    t.check_eq((st["first_offset"], st["last_offset"], st["next_offset"]), (0, n - 1, n),
               "stats: offsets")
    t.check_eq(st["types"], len({e["type"] for e in uniq}), "stats: distinct types")
    t.check(e2elib.parse_time(st["first_time"]) == e2elib.parse_time(uniq[0]["time"]) and
            e2elib.parse_time(st["last_time"]) == e2elib.parse_time(uniq[-1]["time"]),
            "stats: event times of the first and last events (%s, %s)"
            % (st["first_time"], st["last_time"]))
    t.check(st["bytes"] > 100 * n and st["file_bytes"] >= st["used_bytes"] > 0,
            "stats: %d bytes of events, a %d-byte file" % (st["bytes"], st["file_bytes"]))
    r = log_cmd(t, ["stats", log], 0, "stats (text)")
    text = r.stdout.decode()
    t.check("events        %d" % n in text and "0 .. %d" % (n - 1) in text,
            "stats text shows the count and the offsets", r.describe())

    r = log_cmd(t, ["tail", log, "-n", 5], 0, "tail -n 5")
    check_events(t, lines(r), [(n - 5 + i, uniq[n - 5 + i]) for i in range(5)], "tail -n 5")
    r = log_cmd(t, ["tail", log], 0, "tail")
    t.check_eq(len(lines(r)), 10, "tail prints 10 events by default")

    r = log_cmd(t, ["get", log, uniq[1234]["id"]], 0, "get an id")
    check_events(t, lines(r), [(1234, uniq[1234])], "get")
    r = log_cmd(t, ["get", log, "evt-nope"], 1, "get an id that is not there")
    t.check("no event with id 'evt-nope'" in r.stderr.decode(), "get says the id is not there",
            r.describe())

    # query: payments in a time window, by (time, offset); computed here from the input
    lo, hi = "2026-01-01T00:00:03Z", "2026-01-01T00:00:12.5Z"
    lo_ns, hi_ns = e2elib.parse_time(lo), e2elib.parse_time(hi)
    types = {"payment.processed", "order.completed"}
    want = sorted(((e2elib.parse_time(e["time"]), off), off, e) for off, e in enumerate(uniq)
                  if e["type"] in types and lo_ns <= e2elib.parse_time(e["time"]) < hi_ns)
    want = [(off, e) for _, off, e in want]
    t.check(len(want) > 200, "the query window holds %d events" % len(want))
    base = ["query", log, "--type", "payment.processed", "--type", "order.completed",
            "--from", lo, "--to", hi]
    r = log_cmd(t, base, 0, "query by types and time")
    check_events(t, lines(r), want, "query (all)")
    for order, expect in (("asc", want), ("desc", want[::-1])):
        got, after = [], None
        for page in range(1000):
            args = base + ["--limit", 100, "--order", order] + (["--after", after] if after is not None else [])
            r = t.run(["log"] + [str(a) for a in args])
            if r.rc != 0:
                t.fail("query page %d (%s) failed\n%s" % (page, order, r.describe()))
            page_lines = lines(r)
            got += page_lines
            if len(page_lines) < 100:
                break
            after = page_lines[-1]["offset"]
        check_events(t, got, expect, "query paged by 100 with --after, %s" % order)
    r = log_cmd(t, ["query", log, "--type", "no.such.type"], 0, "query an unknown type")
    t.check_eq(r.stdout, b"", "an unknown type matches nothing")

    # append: a new log from JSON lines; again: duplicates; a line without id: refused
    log2 = os.path.join(d, "log2")
    part = write_jsonl(t, os.path.join(d, "part.jsonl"), uniq[:500])
    r = log_cmd(t, ["append", log2, part], 0, "append 500 events to a new log")
    t.check("appended 500 (offsets 0..499), duplicates 0, refused 0" in r.stdout.decode(),
            "append reports what it stored", r.describe())
    r = log_cmd(t, ["append", log2, part], 0, "append the same file again")
    t.check("appended 0, duplicates 500" in r.stdout.decode(), "all duplicates the second time",
            r.describe())
    bad = t.write(os.path.join(d, "bad.jsonl"),
                  '{"id":"new-1","type":"x"}\n{"type":"x","data":1}\nnot json\n{"id":"new-2"}\n')
    r = log_cmd(t, ["append", log2, bad], 1, "append with refused lines")
    err = r.stderr.decode()
    t.check("bad.jsonl:2: refused: no 'id'" in err and "bad.jsonl:3: refused:" in err,
            "each refused line is named with its reason", r.describe())
    t.check("appended 2 (offsets 500..501)" in r.stdout.decode(), "the good lines went in",
            r.describe())

    # usage and missing logs
    log_cmd(t, ["stats"], 2, "stats without DIR")
    log_cmd(t, [], 2, "log without a command")
    log_cmd(t, ["frob", log], 2, "an unknown log command")
    log_cmd(t, ["query", log, "--order", "sideways"], 2, "query --order sideways")
    log_cmd(t, ["query", log, "--from", "yesterday"], 2, "query --from yesterday")
    log_cmd(t, ["tail", log, "-n", "x"], 2, "tail -n x")
    r = log_cmd(t, ["stats", os.path.join(d, "nothing")], 1, "stats of a missing directory")
    t.check("no event log at" in r.stderr.decode(), "says there is no event log", r.describe())
    junk = os.path.join(d, "junk")
    os.mkdir(junk)
    t.write(os.path.join(junk, "data.mdb"), bytes(range(256)) * 64)
    r = log_cmd(t, ["tail", junk], 1, "tail of a corrupt log")
    t.check("not an event log" in r.stderr.decode(), "says it is not an event log", r.describe())
    r = log_cmd(t, ["--help"], 0, "log --help")
    t.check("sluice log" in r.stdout.decode(), "log --help shows the usage", r.describe())


def follow(t, d, uniq):
    log = os.path.join(d, "live")
    out = os.path.join(d, "live.jsonl")
    pipe = e2elib.write_pipeline(os.path.join(d, "follow.yaml"), READ % {
        "log": e2elib.yaml_str(log), "follow": "true", "out": e2elib.yaml_str(out)})
    p = t.spawn(["run", pipe, "--no-progress"], cwd=d)
    parts = [uniq[:300], uniq[300:1000]]
    for i, part in enumerate(parts):
        time.sleep(0.5)
        t.check(p.poll() is None, "the following source.log runs (part %d)" % i)
        f = write_jsonl(t, os.path.join(d, "live-%d.jsonl" % i), part)
        log_cmd(t, ["append", log, f], 0, "append part %d from another process" % i)
    want = sum(len(x) for x in parts)
    deadline = time.monotonic() + 10 * t.slow
    while time.monotonic() < deadline and (not os.path.exists(out) or e2elib.count_lines(out) < want):
        time.sleep(0.05)
    t.check(p.poll() is None, "still following after the appends")
    p.send_signal(signal.SIGTERM)
    r = t.wait(p, 10 * t.slow, "the following pipeline after SIGTERM")
    t.check_rc(r, 0, "follow: exit after SIGTERM")
    e2elib.compare_jsonl(t, write_jsonl(t, os.path.join(d, "live-want.jsonl"), parts[0] + parts[1]),
                         out, "follow: the appends of another process, in order")


def retention(t, d, uniq):
    src = write_jsonl(t, os.path.join(d, "ret-in.jsonl"), uniq[:5000])
    log = os.path.join(d, "ret-size")
    limit = 200000
    run_pipeline(t, d, "ret-size", WRITE % {"input": e2elib.yaml_str(src), "log": e2elib.yaml_str(log),
                                           "retention": "    retention: {max_size: %d}\n" % limit},
                 "sink.log with retention.max_size")
    st = json.loads(log_cmd(t, ["stats", log, "--json"], 0, "stats after size retention").stdout)
    t.check(0 < st["bytes"] <= limit and st["first_offset"] > 0 and st["next_offset"] == 5000,
            "size retention: %d bytes <= %d, offsets %d..%d" % (st["bytes"], limit,
                                                              st["first_offset"], st["last_offset"]))
    out = os.path.join(d, "ret.jsonl")
    run_pipeline(t, d, "ret-read", READ % {"log": e2elib.yaml_str(log), "follow": "false",
                                          "out": e2elib.yaml_str(out)}, "read what retention kept")
    kept = write_jsonl(t, os.path.join(d, "ret-want.jsonl"), uniq[st["first_offset"]:5000])
    e2elib.compare_jsonl(t, kept, out, "size retention keeps exactly the newest events")

    log = os.path.join(d, "ret-age")
    a = write_jsonl(t, os.path.join(d, "age-a.jsonl"), uniq[:100])
    b = write_jsonl(t, os.path.join(d, "age-b.jsonl"), uniq[100:150])
    ret = "    retention: {max_age: 1s}\n"
    run_pipeline(t, d, "age-a", WRITE % {"input": e2elib.yaml_str(a), "log": e2elib.yaml_str(log),
                                        "retention": ret}, "sink.log with max_age: first part")
    time.sleep(1.5)
    run_pipeline(t, d, "age-b", WRITE % {"input": e2elib.yaml_str(b), "log": e2elib.yaml_str(log),
                                        "retention": ret}, "sink.log with max_age: 1.5 s later")
    st = json.loads(log_cmd(t, ["stats", log, "--json"], 0, "stats after age retention").stdout)
    t.check_eq((st["first_offset"], st["events"]), (100, 50),
               "age retention dropped the part appended 1.5 s before")


def main(t):
    r = t.run(["log", "--help"])
    if r.rc != 0 and b"unknown command 'log'" in r.stderr:
        t.fail("this sluice has no `log` command: tools/sluice.c must dispatch it to sl_cli_log "
               "(tools/sluice_log.h)")
    d = t.tmpdir()
    log, uniq = round_trip(t, d)
    cli(t, d, log, uniq)
    follow(t, d, uniq)
    retention(t, d, uniq)


e2elib.main(main)
