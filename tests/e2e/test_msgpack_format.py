#!/usr/bin/env python3
"""msgpack files: jsonl -> sink.file (format: msgpack) writes back-to-back
msgpack maps with `time` as a timestamp extension (-1), equal to the input;
source.file (format: msgpack) -> sink.file jsonl gives the original events
back.  A truncated msgpack file: the complete events before the cut go out,
the tail leaves by the errors port (one envelope with its offset and bytes);
a file cut exactly between two events has no error at all.  Event times at
the ends of the representable range (int64 nanoseconds) that the source
accepts are written back as RFC 3339 text."""
import base64
import json
import os

import e2elib

COUNT = 20000

# Values that must survive JSON -> msgpack -> JSON exactly.
EDGE = [
    {"id": "edge-1", "type": "t", "source": "s", "time": "2026-01-01T00:00:00.123456789Z",
     "data": {"a": 100.0, "b": 1e300, "c": -0.0, "d": 5e-324, "e": 18446744073709551615,
              "f": -9223372036854775808, "g": 0.1, "h": "\u00e9\U0001F600\n\"\\\t", "i": True,
              "j": None, "k": [], "l": {}, "m": 1.7976931348623157e308, "n": -1, "o": 255,
              "p": 65536, "q": -33, "r": "x" * 300, "s": [1, [2, [3, {"z": False}]]]}},
    {"id": "edge-2", "type": "t", "source": "s", "time": "1969-12-31T23:59:59.5Z", "data": {}},
    {"id": "edge-3", "type": "t", "source": "s", "time": "2200-01-01T00:00:00.25Z", "data": "text"},
    {"id": "edge-4", "type": "t", "source": "s", "time": "2026-06-30T12:00:00+05:30",
     "data": {"nested_time": "2026-01-01T00:00:00.000Z"}},
]

TO_MSGPACK = """\
pipeline: to-msgpack
operators:
  events:
    type: source.file
    path: %(input)s
    format: %(in_format)s
  out:
    type: sink.file
    input: events
    path: %(out)s
    format: %(out_format)s
  dead_letter:
    type: sink.file
    input: events.errors
    path: %(dead)s
"""


def convert(t, d, name, src, in_fmt, out_fmt):
    out = os.path.join(d, name + (".mpk" if out_fmt == "msgpack" else ".jsonl"))
    dead = os.path.join(d, name + "-dead.jsonl")
    pipe = e2elib.write_pipeline(os.path.join(d, name + ".yaml"), TO_MSGPACK % {
        "input": e2elib.yaml_str(src), "in_format": in_fmt, "out": e2elib.yaml_str(out),
        "out_format": out_fmt, "dead": e2elib.yaml_str(dead)})
    r = t.run(["run", pipe, "--no-progress"], timeout=120, cwd=d)
    t.check_rc(r, 0, "%s: %s -> %s" % (name, in_fmt, out_fmt))
    return out, dead


def main(t):
    d = t.tmpdir()
    src = t.gen_events(os.path.join(d, "events.jsonl"), COUNT, 31)
    with open(src, "a") as f:
        for e in EDGE:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    with open(src, "rb") as f:
        want = [json.loads(l) for l in f]
    n = len(want)

    # 1. jsonl -> msgpack file; decode it here.
    mpk, dead = convert(t, d, "to_msgpack", src, "jsonl", "msgpack")
    t.check_eq(os.path.getsize(dead), 0, "to_msgpack: dead-letter file size")
    with open(mpk, "rb") as f:
        data = f.read()
    try:
        objs = e2elib.msgpack_objects(data)
    except (e2elib.MsgpackError, UnicodeDecodeError) as e:
        t.fail("to_msgpack: output is not back-to-back msgpack: %s" % e)
    t.check_eq(len(objs), n, "to_msgpack: msgpack objects in the file")
    t.check(all(isinstance(o, dict) for _, o in objs), "to_msgpack: every object is a map")
    t.check(all(isinstance(o.get("time"), e2elib.Instant) for _, o in objs),
            "to_msgpack: every `time` is a msgpack timestamp (extension -1)")
    for i, ((_, got), w) in enumerate(zip(objs, want)):
        if not e2elib.events_equal(w, got):
            t.fail("to_msgpack: event %d differs:\n  in:  %s\n  out: %r" % (i, json.dumps(w), got))
    t.ok("to_msgpack: all %d events equal their input (time as an instant, edge values exact)" % n)

    # 2. msgpack -> jsonl equals the original.
    back, dead = convert(t, d, "from_msgpack", mpk, "msgpack", "jsonl")
    t.check_eq(os.path.getsize(dead), 0, "from_msgpack: dead-letter file size")
    e2elib.compare_jsonl(t, src, back, "from_msgpack")

    # 3. Truncated inside an event: the prefix goes out, the tail to errors.
    k = 1234
    start, end = objs[k][0], objs[k + 1][0]
    cut = start + (end - start) // 2
    trunc = t.write(os.path.join(d, "truncated.mpk"), data[:cut])
    out, dead = convert(t, d, "truncated", trunc, "msgpack", "jsonl")
    got = e2elib.read_jsonl(out)
    t.check_eq(len(got), k, "truncated at byte %d (inside event %d): events out" % (cut, k))
    t.check(all(e2elib.events_equal(w, g) for w, g in zip(want, got)),
            "truncated: the events out equal the first %d input events" % k)
    envs = e2elib.read_jsonl(dead)
    t.check_eq(len(envs), 1, "truncated: dead-letter envelopes")
    env = envs[0]
    problems = []
    for key, val in (("operator", "events"), ("file", trunc), ("offset", start)):
        if env.get(key) != val:
            problems.append("%s %r, expected %r" % (key, env.get(key), val))
    if not env.get("reason") or not env.get("detail"):
        problems.append("reason and detail must be non-empty")
    if e2elib.parse_time(env.get("time")) is None:
        problems.append("time %r is not RFC 3339" % env.get("time"))
    try:
        orig = base64.b64decode(env.get("original", ""), validate=True)
    except (ValueError, TypeError):
        orig = None
    if orig != data[start:cut]:
        problems.append("original is not the base64 of the %d tail bytes" % (cut - start))
    t.check(not problems, "truncated: envelope has reason, operator, file, offset %d, time and the "
            "tail bytes as original" % start, "; ".join(problems) + "\n" + json.dumps(env)[:600])

    # 4. Cut exactly between two events: nothing malformed.
    exact = t.write(os.path.join(d, "exact.mpk"), data[:start])
    out, dead = convert(t, d, "exact_cut", exact, "msgpack", "jsonl")
    t.check_eq(e2elib.count_lines(out), k, "cut between events %d and %d: events out" % (k - 1, k))
    t.check_eq(os.path.getsize(dead), 0, "cut between events: dead-letter file size")

    # 5. The ends of the time range: int64 nanoseconds since the epoch span
    #    1677-09-21T00:12:43.145224192Z .. 2262-04-11T23:47:16.854775807Z.
    #    A time the source accepts must come out as RFC 3339 text again.
    limits = ["1677-09-21T00:12:43.145224192Z", "1677-09-21T00:12:44Z",
              "2262-04-11T23:47:16Z", "2262-04-11T23:47:16.854775807Z",
              "2262-04-11T23:47:15.999999999Z"]
    lim_src = t.write(os.path.join(d, "limits.jsonl"), "".join(
        json.dumps({"id": "lim-%d" % i, "type": "t", "source": "s", "time": x, "data": {}}) + "\n"
        for i, x in enumerate(limits)))
    lim_mpk, dead = convert(t, d, "limits_to_msgpack", lim_src, "jsonl", "msgpack")
    t.check_eq(os.path.getsize(dead), 0, "limits: dead-letter file size (all times in range)")
    with open(lim_mpk, "rb") as f:
        got = [o.get("time") for _, o in e2elib.msgpack_objects(f.read())]
    t.check_eq(got, [e2elib.Instant(e2elib.parse_time(x)) for x in limits],
               "limits: msgpack timestamps")
    for name, path, fmt in (("limits_jsonl", lim_src, "jsonl"), ("limits_msgpack", lim_mpk, "msgpack")):
        out, dead = convert(t, d, name, path, fmt, "jsonl")
        got = [e.get("time") for e in e2elib.read_jsonl(out)]
        bad = [(w, g) for w, g in zip(limits, got)
               if not isinstance(g, str) or e2elib.parse_time(g) != e2elib.parse_time(w)]
        t.check(len(got) == len(limits) and not bad,
                "%s: the %d times at the ends of the range come out as the same RFC 3339 instants"
                % (name, len(limits)), "in -> out: %s" % "\n  ".join("%s -> %s" % (w, json.dumps(g))
                                                                    for w, g in bad))


if __name__ == "__main__":
    e2elib.main(main)
