#!/usr/bin/env python3
"""source.file with malformed input: good lines go out on `out` (in order,
unchanged), every bad line leaves by the `errors` port as one dead-letter
envelope {reason, operator, detail, time, original, file, line}, blank lines
are skipped, CRLF line ends are accepted, and the run exits 0."""
import json
import os

import e2elib

PIPELINE = """\
pipeline: malformed
operators:
  events:
    type: source.file
    path: %(input)s
    max_line: 1KiB
  good:
    type: sink.file
    input: events
    path: %(good)s
  dead_letter:
    type: sink.file
    input: events.errors
    path: %(dead)s
"""


def ev(i, time="2026-01-01T00:00:%02d.250Z" % 0, **data):
    return json.dumps({"id": "ok-%d" % i, "type": "order.created", "source": "test",
                       "time": time, "data": data or {"n": i, "total": 12.5}},
                      separators=(",", ":")).encode()


def main(t):
    d = t.tmpdir()
    # (raw bytes of the line including its terminator, kind); kind: good | bad | blank
    lines = [
        (ev(1) + b"\n", "good"),
        (b'{"id":"x1","type":"t", oops}\n', "bad"),                       # malformed JSON
        (ev(2, "2026-01-01T00:00:01Z", s="caf\u00e9", f=0.1) + b"\n", "good"),
        (b'[1,2,3]\n', "bad"),                                             # an array, not an event
        (b'\n', "blank"),
        (b'{"id":"x2","type":"t","time":"yesterday at noon","data":{}}\n', "bad"),  # bad time
        (ev(3, "2026-01-01T00:00:02.5+01:00") + b"\r\n", "good"),          # CRLF, time with offset
        (b'\r\n', "blank"),                                                # blank CRLF line
        (b'{"id":"x3","data":{"a":1}\r\n', "bad"),                         # malformed, CRLF
        (b'{"id":"x4","pad":"' + b"x" * 2000 + b'"}\n', "bad"),            # longer than max_line
        (ev(4, n=None, items=[1, 2, {"k": "v"}], neg=-7, big=12345678901234) + b"\n", "good"),
        (b'{"id":"x5","time":"2026-13-45T99:00:00Z"}\n', "bad"),           # impossible date
        (b'"just a string"\n', "bad"),
        (b'{"id":"x6","time":"2026-01-01T00:00:00Z",}\n', "bad"),          # trailing comma
        (b'\n', "blank"),
        (ev(5, "2026-01-01T00:00:03.123456789Z"), "good"),                 # last line, no newline
    ]
    src = os.path.join(d, "mixed.jsonl")
    t.write(src, b"".join(l for l, _ in lines))
    good_path = os.path.join(d, "good.jsonl")
    dead_path = os.path.join(d, "dead.jsonl")
    pipe = e2elib.write_pipeline(os.path.join(d, "malformed.yaml"), PIPELINE % {
        "input": e2elib.yaml_str(src), "good": e2elib.yaml_str(good_path),
        "dead": e2elib.yaml_str(dead_path)})

    r = t.run(["run", pipe, "--no-progress"], timeout=60, cwd=d)
    t.check_rc(r, 0, "run over a file with %d bad lines" % sum(k == "bad" for _, k in lines))

    want_good = [json.loads(l) for l, k in lines if k == "good"]
    got_good = e2elib.read_jsonl(good_path)
    t.check_eq(len(got_good), len(want_good), "good events written")
    for i, (w, g) in enumerate(zip(want_good, got_good)):
        if not e2elib.events_equal(w, g):
            t.fail("good event %d differs:\n  in:  %s\n  out: %s" % (i, json.dumps(w), json.dumps(g)))
    t.ok("good events equal their input lines (time as an instant), in order, CRLF and "
         "unterminated last line included")

    want_dead = [(n, l) for n, (l, k) in enumerate(lines, 1) if k == "bad"]
    got_dead = e2elib.read_jsonl(dead_path)
    t.check_eq(len(got_dead), len(want_dead), "dead-letter envelopes written (one per bad line)")
    for (line_no, raw), env in zip(want_dead, got_dead):
        what = "dead letter for line %d" % line_no
        if not isinstance(env, dict):
            t.fail("%s: not an object: %r" % (what, env))
        missing = [k for k in ("reason", "operator", "detail", "time", "original", "file", "line")
                   if k not in env]
        if missing:
            t.fail("%s: missing %s in %s" % (what, missing, json.dumps(env)))
        problems = []
        if env["reason"] != "malformed":
            problems.append("reason %r, expected 'malformed'" % env["reason"])
        if env["operator"] != "events":
            problems.append("operator %r, expected 'events'" % env["operator"])
        if env["file"] != src:
            problems.append("file %r, expected %r" % (env["file"], src))
        if type(env["line"]) is not int or env["line"] != line_no:
            problems.append("line %r, expected %d" % (env["line"], line_no))
        if not isinstance(env["detail"], str) or not env["detail"]:
            problems.append("detail %r is not a non-empty string" % env["detail"])
        if e2elib.parse_time(env["time"]) is None:
            problems.append("time %r is not RFC 3339" % env["time"])
        want_orig = raw.rstrip(b"\n").rstrip(b"\r").decode()
        if len(raw) < 1024 and env["original"] != want_orig:
            problems.append("original %r, expected the line %r" % (env["original"], want_orig))
        if len(raw) >= 1024 and not (isinstance(env["original"], str)
                                     and want_orig.startswith(env["original"])):
            problems.append("original of the over-long line is not a prefix of the line")
        if problems:
            t.fail("%s: %s\n  envelope: %s" % (what, "; ".join(problems), json.dumps(env)[:500]))
        t.ok("%s: reason, operator, file, line, detail, time, original (%s)"
             % (what, env["detail"].split(": ", 1)[-1][:60]))


if __name__ == "__main__":
    e2elib.main(main)
