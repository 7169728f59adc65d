#!/usr/bin/env python3
"""test_logging.py - `--log-level` and `--log-format` (engine/log.h).

json: every stderr line is one JSON object with time (RFC 3339), level,
pipeline and msg (operator when an operator logged it); logfmt: key="value"
pairs; --log-level error hides the info lines; an unknown level or format
is a usage error (exit 2).
"""
import json
import os
import re

import e2elib

PIPELINE = """\
pipeline: logs
state_dir: {state}
checkpoint: {{interval: 50ms}}
operators:
  gen: {{type: source.generator, count: 20000}}
  unique: {{type: dedup, input: gen}}
  sink: {{type: sink.null, input: unique}}
"""


def main(t):
    d = t.tmpdir()
    path = e2elib.write_pipeline(os.path.join(d, "p.yaml"),
                                 PIPELINE.format(state=e2elib.yaml_str(os.path.join(d, "st"))))
    r = t.run(["run", path, "--no-progress", "--fresh", "--log-format", "json",
               "--log-level", "debug"])
    t.check_rc(r, 0, "json, debug")
    lines = r.stderr.decode().splitlines()
    objs = [json.loads(line) for line in lines]
    t.check(len(objs) >= 3, "json: several lines (%d)" % len(objs), r.describe())
    for o in objs:
        t.check_eq(sorted(set(o) - {"operator"}), ["level", "msg", "pipeline", "time"],
                   "json: the keys of %r" % o["msg"][:40])
        t.check(e2elib.parse_time(o["time"]) is not None and o["pipeline"] == "logs",
                "json: time is RFC 3339 and the pipeline is named", repr(o))
    levels = {o["level"] for o in objs}
    t.check({"debug", "info"} <= levels, "json: debug and info lines at --log-level debug (%s)"
            % sorted(levels))
    t.check(any(o.get("operator") == "unique" for o in objs),
            "json: an operator's line names the operator")

    r = t.run(["run", path, "--no-progress", "--fresh", "--log-format", "logfmt"])
    t.check_rc(r, 0, "logfmt")
    lines = r.stderr.decode().splitlines()
    t.check(lines, "logfmt: lines were written")
    for line in lines:
        pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line)
        t.check(pairs and " ".join('%s="%s"' % p for p in pairs) == line,
                "logfmt: %s... is key=\"value\" pairs" % line[:50], line)
        keys = [k for k, _ in pairs]
        t.check(keys[:3] == ["time", "level", "pipeline"] and keys[-1] == "msg"
                and "debug" not in line.split()[1], "logfmt: time, level, pipeline ... msg, "
                "no debug line at the default level", line)

    r = t.run(["run", path, "--no-progress", "--fresh", "--log-level", "error"])
    t.check_rc(r, 0, "--log-level error")
    t.check_eq(r.stderr.decode(), "", "--log-level error: no info lines")
    for flag, value in (("--log-level", "loud"), ("--log-format", "xml")):
        r = t.run(["run", path, flag, value])
        t.check_rc(r, 2, "%s %s is a usage error" % (flag, value))
        t.check(value in r.stderr.decode(), "the message names '%s'" % value, r.describe())


if __name__ == "__main__":
    e2elib.main(main)
