#!/usr/bin/env python3
"""An operator that fails makes the run exit 1 promptly with a message naming
the operator, the path and the reason - even with an unbounded source feeding
it: a sink.file whose path cannot be opened (/dev/null/x, a path under a
regular file) and one whose writes fail (/dev/full), fused and unfused."""
import os

import e2elib

PIPELINE = """\
pipeline: operator-error
batch: {max_events: 256, linger: 5ms}
operators:
  gen:
    type: source.generator
    count: 0
    rate: %(rate)d
  hop:
    type: identity
    input: gen
    fuse: %(fuse)s
  broken_sink:
    type: sink.file
    input: hop
    path: %(path)s
    fuse: %(fuse)s
"""


def case(t, d, name, path, reason, fuse, rate=0):
    pipe = e2elib.write_pipeline(os.path.join(d, name + ".yaml"), PIPELINE % {
        "rate": rate, "fuse": "true" if fuse else "false", "path": e2elib.yaml_str(path)})
    r = t.run(["run", pipe, "--no-progress"], timeout=20, cwd=d, what=name)
    t.check_rc(r, 1, "%s (%s)" % (name, "fused" if fuse else "unfused"))
    err = r.stderr.decode("utf-8", "replace")
    missing = [w for w in ("broken_sink", path, reason) if w not in err]
    t.check(not missing, "%s: stderr names the operator, the path and '%s'" % (name, reason),
            "missing %r in:\n%s" % (missing, err))
    t.check(r.elapsed < 10 * t.slow, "%s: stopped after %.2f s" % (name, r.elapsed))


def main(t):
    d = t.tmpdir()
    regular = t.write(os.path.join(d, "a-regular-file"), "x\n")
    for fuse in (True, False):
        case(t, d, "under_dev_null", "/dev/null/x.jsonl", "Not a directory", fuse)
        case(t, d, "under_a_file", os.path.join(regular, "sub", "x.jsonl"), "Not a directory", fuse)
        if os.path.exists("/dev/full"):
            case(t, d, "write_fails", "/dev/full", "No space left on device", fuse)
            # Slow source: the failure comes from the sink's timed flush.
            case(t, d, "write_fails_slow_source", "/dev/full", "No space left on device", fuse, 1000)


if __name__ == "__main__":
    e2elib.main(main)
