"""e2elib.py - shared helpers for sluice's end-to-end tests (standard library only).

Every test script does:

    import e2elib
    def main(t):            # t is an e2elib.Test
        ...
    e2elib.main(main)

and is run as `python3 test_x.py [SLUICE_BINARY] [--option ...]`.  The binary
comes from the first argument (meson passes the built executable), else from
$SLUICE_BIN, else <repo>/build/tools/sluice.  The shared directory (for
bench/gen_events.py) comes from $SLUICE_SHARED, else <repo>/../shared.

A test prints one "ok:" line per check that passed and stops at the first
failed check with "FAIL: <what was expected, what happened>", exit status 1.
Child processes are always killed, temporary directories always removed
(unless SLUICE_E2E_KEEP=1).  Exit status 77 means "skipped" to meson.
"""
import argparse
import base64
import calendar
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIP = 77


class Failure(Exception):
    pass


class Skip(Exception):
    pass


class Result:
    def __init__(self, args, rc, stdout, stderr, elapsed):
        self.args, self.rc, self.stdout, self.stderr, self.elapsed = args, rc, stdout, stderr, elapsed

    def describe(self, limit=3000):
        def cut(b):
            s = b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")
            return s if len(s) <= limit else s[:limit] + "\n... (%d more characters)" % (len(s) - limit)
        return ("command: %s\nexit status: %s (%.2f s)\n--- stderr:\n%s\n--- stdout:\n%s"
                % (" ".join(self.args), self.rc, self.elapsed, cut(self.stderr), cut(self.stdout)))


class Test:
    """One test run: argument parsing, checks, temp dirs, child processes."""

    def __init__(self, name, argv, add_args=None):
        ap = argparse.ArgumentParser(prog=name)
        ap.add_argument("sluice", nargs="?", help="path of the sluice binary")
        if add_args:
            add_args(ap)
        self.args = ap.parse_args(argv)
        self.name = name
        self.sluice = os.path.abspath(self.args.sluice or os.environ.get("SLUICE_BIN")
                                      or os.path.join(REPO, "build", "tools", "sluice"))
        if not os.access(self.sluice, os.X_OK):
            raise Failure("sluice binary not found or not executable: %s "
                          "(pass it as the first argument or set SLUICE_BIN)" % self.sluice)
        self.shared = os.path.abspath(os.environ.get("SLUICE_SHARED")
                                      or os.path.join(REPO, "..", "shared"))
        self.gen_events_py = os.path.join(self.shared, "bench", "gen_events.py")
        # Sanitizer builds run several times slower: widen time bounds there.
        # Meson says which (SLUICE_E2E_SANITIZE = b_sanitize); else look at the binary.
        self.sanitize = os.environ.get("SLUICE_E2E_SANITIZE", "")
        if not self.sanitize:
            with open(self.sluice, "rb") as f:
                exe = f.read()
            found = [n for n, sym in (("address", b"__asan_init"), ("thread", b"__tsan_init"),
                                      ("undefined", b"__ubsan_handle_")) if sym in exe]
            self.sanitize = ",".join(found) or "none"
        self.slow = 4.0 if self.sanitize != "none" else 1.0
        self.children = []
        self.tmpdirs = []
        self.checks = 0
        self.t0 = time.monotonic()

    # ---- reporting -------------------------------------------------------
    def log(self, msg):
        print(msg, flush=True)

    def ok(self, msg):
        self.checks += 1
        print("ok: " + msg, flush=True)

    def fail(self, msg):
        raise Failure(msg)

    def check(self, cond, msg, detail=""):
        """Assert cond; msg says what is expected (printed as ok: or FAIL:)."""
        if not cond:
            raise Failure(msg + (("\n" + detail) if detail else ""))
        self.ok(msg)

    def check_eq(self, got, want, msg):
        if got != want:
            raise Failure("%s\n  expected: %r\n  got:      %r" % (msg, want, got))
        self.ok("%s (%r)" % (msg, got))

    def check_rc(self, res, want, msg):
        if res.rc != want:
            raise Failure("%s: expected exit status %d, got %s\n%s" % (msg, want, res.rc, res.describe()))
        self.ok("%s: exit status %d (%.2f s)" % (msg, want, res.elapsed))

    # ---- files -----------------------------------------------------------
    def tmpdir(self, tag=""):
        d = tempfile.mkdtemp(prefix="sluice-e2e-%s%s-" % (self.name, ("-" + tag) if tag else ""))
        self.tmpdirs.append(d)
        return d

    def write(self, path, text):
        mode = "wb" if isinstance(text, bytes) else "w"
        with open(path, mode) as f:
            f.write(text)
        return path

    def gen_events(self, path, count, seed=7, *extra):
        if not os.path.isfile(self.gen_events_py):
            raise Failure("cannot find %s (set SLUICE_SHARED to the shared directory)" % self.gen_events_py)
        t0 = time.monotonic()
        with open(path, "wb") as f:
            r = subprocess.run([sys.executable, self.gen_events_py, "--count", str(count),
                                "--seed", str(seed)] + [str(x) for x in extra],
                               stdout=f, stderr=subprocess.PIPE, timeout=600)
        if r.returncode != 0:
            raise Failure("gen_events.py failed: %s" % r.stderr.decode("utf-8", "replace"))
        self.log("generated %d events into %s (%.1f s)" % (count, path, time.monotonic() - t0))
        return path

    # ---- processes -------------------------------------------------------
    def spawn(self, args, cwd=None, env=None, stdout=None, stderr=None):
        """Start `sluice ARGS...` in the background (killed when the test ends)."""
        argv = [self.sluice] + [str(a) for a in args]
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=stdout if stdout is not None else subprocess.PIPE,
                             stderr=stderr if stderr is not None else subprocess.PIPE)
        p.argv = argv
        p.started = time.monotonic()
        self.children.append(p)
        return p

    def wait(self, p, timeout, what):
        """Wait for a spawned process; kill it and fail if it outlives timeout."""
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            res = Result(p.argv, "killed", out or b"", err or b"", time.monotonic() - p.started)
            raise Failure("%s: did not exit within %.1f s (killed)\n%s" % (what, timeout, res.describe()))
        return Result(p.argv, p.returncode, out or b"", err or b"", time.monotonic() - p.started)

    def run(self, args, timeout=60, cwd=None, env=None, what=None):
        """Run `sluice ARGS...` to completion (bounded by timeout x slowness)."""
        p = self.spawn(args, cwd=cwd, env=env)
        return self.wait(p, timeout * self.slow, what or "sluice " + " ".join(str(a) for a in args))

    def cleanup(self):
        for p in self.children:
            if p.poll() is None:
                try:
                    p.kill()
                    p.wait(timeout=10)
                except Exception:
                    pass
        if os.environ.get("SLUICE_E2E_KEEP"):
            for d in self.tmpdirs:
                print("kept %s" % d)
        else:
            for d in self.tmpdirs:
                shutil.rmtree(d, ignore_errors=True)


def main(fn, add_args=None):
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    # A signal from the test runner (timeout) must still kill our children.
    def on_signal(sig, frame):
        raise Failure("interrupted by signal %d" % sig)
    signal.signal(signal.SIGTERM, on_signal)
    t = None
    status = 1
    try:
        t = Test(name, sys.argv[1:], add_args)
        t.log("%s: sluice = %s, shared = %s, sanitize = %s" % (name, t.sluice, t.shared, t.sanitize))
        fn(t)
        print("PASS: %s (%d checks, %.1f s)" % (name, t.checks, time.monotonic() - t.t0), flush=True)
        status = 0
    except Skip as e:
        print("SKIP: %s" % e, flush=True)
        status = SKIP
    except Failure as e:
        print("FAIL: %s" % e, flush=True)
    except KeyboardInterrupt:
        print("FAIL: interrupted", flush=True)
    except Exception:
        traceback.print_exc()
        print("FAIL: %s raised an unexpected exception (above)" % name, flush=True)
    finally:
        if t is not None:
            t.cleanup()
    sys.exit(status)


# ---- pipelines ---------------------------------------------------------------

def yaml_str(s):
    """A YAML double-quoted scalar for s (JSON strings are valid YAML)."""
    return json.dumps(s)


def write_pipeline(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


# ---- time ---------------------------------------------------------------------

_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


def parse_time(s):
    """RFC 3339 text -> integer nanoseconds since the epoch (None if not RFC 3339)."""
    m = _RFC3339.match(s) if isinstance(s, str) else None
    if not m:
        return None
    y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7)
    ns = int((frac[1:] + "000000000")[:9]) if frac else 0
    secs = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0))
    tz = m.group(8)
    if tz not in ("Z", "z"):
        off = int(tz[1:3]) * 3600 + int(tz[4:6]) * 60
        secs -= off if tz[0] == "+" else -off
    return secs * 1000000000 + ns


class Instant:
    """An event time compared as an instant (from RFC 3339 text or a msgpack timestamp)."""
    __slots__ = ("ns",)

    def __init__(self, ns):
        self.ns = ns

    def __eq__(self, other):
        return isinstance(other, Instant) and other.ns == self.ns

    def __hash__(self):
        return hash(self.ns)

    def __repr__(self):
        s, ns = divmod(self.ns, 1000000000)
        return "Instant(%s.%09dZ)" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)), ns)


def normalize_event(ev):
    """An event with its top-level `time` turned into an Instant (if it is RFC 3339 text)."""
    if isinstance(ev, dict) and isinstance(ev.get("time"), str):
        ns = parse_time(ev["time"])
        if ns is not None:
            ev = dict(ev)
            ev["time"] = Instant(ns)
    return ev


def json_equal(a, b):
    """Strict equality of JSON values: bool, int and float are distinct types,
    floats must be exactly equal (-0.0 != 0.0), object key order is ignored."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return a == b


def events_equal(a, b):
    """Two events (dicts from JSON or msgpack) equal as values, time as an instant."""
    return json_equal(normalize_event(a), normalize_event(b))


def canonical(line):
    """A JSON line as a canonical text (sorted keys, `time` as integer ns),
    for comparing multisets of events."""
    ev = normalize_event(json.loads(line))
    if isinstance(ev, dict) and isinstance(ev.get("time"), Instant):
        ev = dict(ev)
        ev["time"] = {"$instant_ns": ev["time"].ns}
    return json.dumps(ev, sort_keys=True, separators=(",", ":"))


def compare_jsonl(t, want_path, got_path, what, max_report=5):
    """Check that got_path holds exactly the events of want_path, line for line
    (order kept): equal as JSON values with `time` compared as an instant.
    Blank lines in want_path are ignored.  Returns the number of events."""
    n = 0
    n_want = n_got = 0
    bad = []
    with open(want_path, "rb") as fw, open(got_path, "rb") as fg:
        want_lines = (l for l in fw if l.strip())
        for lw, lg in itertools.zip_longest(want_lines, fg):
            n += 1
            n_want += lw is not None
            n_got += lg is not None
            if lw is None or lg is None:
                continue            # count the rest
            if bad and len(bad) >= max_report:
                continue
            if not lg.endswith(b"\n"):
                bad.append("output line %d is not terminated by a newline: %r" % (n, lg[:200]))
                continue
            if lw.rstrip(b"\r\n") == lg.rstrip(b"\n"):
                continue
            try:
                ew, eg = json.loads(lw), json.loads(lg)
            except ValueError as e:
                bad.append("line %d: output is not JSON (%s): %r" % (n, e, lg[:200]))
                continue
            if not events_equal(ew, eg):
                bad.append("line %d differs:\n    in:  %s\n    out: %s"
                           % (n, lw.decode("utf-8", "replace").rstrip(), lg.decode("utf-8", "replace").rstrip()))
    if bad:
        t.fail("%s: output differs from input (%d events in, %d lines out):\n  %s"
               % (what, n_want, n_got, "\n  ".join(bad)))
    if n_want != n_got:
        t.fail("%s: %d events in, %d lines out" % (what, n_want, n_got))
    n = n_got
    t.ok("%s: %d events out, each equal to its input line (time as an instant), order kept" % (what, n))
    return n


def read_jsonl(path):
    out = []
    with open(path, "rb") as f:
        for i, l in enumerate(f, 1):
            try:
                out.append(json.loads(l))
            except ValueError as e:
                raise Failure("%s:%d: not a JSON line (%s): %r" % (path, i, e, l[:200]))
    return out


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return n
            n += b.count(b"\n")


# ---- msgpack (a decoder just big enough to check sluice's files) -----------------

class MsgpackError(Exception):
    pass


def _mp_decode(buf, pos):
    if pos >= len(buf):
        raise MsgpackError("truncated at byte %d" % pos)
    b = buf[pos]
    pos += 1

    def take(n):
        nonlocal pos
        if pos + n > len(buf):
            raise MsgpackError("truncated at byte %d" % pos)
        s = buf[pos:pos + n]
        pos += n
        return s

    def container(n, is_map):
        nonlocal pos
        if is_map:
            d = {}
            for _ in range(n):
                k, pos = _mp_decode(buf, pos)
                v, pos = _mp_decode(buf, pos)
                d[k] = v
            return d
        a = []
        for _ in range(n):
            v, pos = _mp_decode(buf, pos)
            a.append(v)
        return a

    if b <= 0x7F:
        return b, pos
    if 0x80 <= b <= 0x8F:
        return container(b & 0x0F, True), pos
    if 0x90 <= b <= 0x9F:
        return container(b & 0x0F, False), pos
    if 0xA0 <= b <= 0xBF:
        return take(b & 0x1F).decode("utf-8"), pos
    if b >= 0xE0:
        return b - 0x100, pos
    if b == 0xC0:
        return None, pos
    if b == 0xC2:
        return False, pos
    if b == 0xC3:
        return True, pos
    if b in (0xC4, 0xC5, 0xC6):
        n = struct.unpack(">" + "BHI"[b - 0xC4], take(1 << (b - 0xC4)))[0]
        return bytes(take(n)), pos
    if b in (0xC7, 0xC8, 0xC9, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8):
        if b >= 0xD4:
            n = 1 << (b - 0xD4)
        else:
            n = struct.unpack(">" + "BHI"[b - 0xC7], take(1 << (b - 0xC7)))[0]
        typ = struct.unpack(">b", take(1))[0]
        data = bytes(take(n))
        if typ == -1:
            if n == 4:
                return Instant(struct.unpack(">I", data)[0] * 1000000000), pos
            if n == 8:
                v = struct.unpack(">Q", data)[0]
                return Instant((v & 0x3FFFFFFFF) * 1000000000 + (v >> 34)), pos
            if n == 12:
                nsec, sec = struct.unpack(">Iq", data)
                return Instant(sec * 1000000000 + nsec), pos
            raise MsgpackError("bad timestamp length %d" % n)
        return ("ext", typ, data), pos
    if b == 0xCA:
        return struct.unpack(">f", take(4))[0], pos
    if b == 0xCB:
        return struct.unpack(">d", take(8))[0], pos
    if 0xCC <= b <= 0xCF:
        return struct.unpack(">" + "BHIQ"[b - 0xCC], take(1 << (b - 0xCC)))[0], pos
    if 0xD0 <= b <= 0xD3:
        return struct.unpack(">" + "bhiq"[b - 0xD0], take(1 << (b - 0xD0)))[0], pos
    if b in (0xD9, 0xDA, 0xDB):
        n = struct.unpack(">" + "BHI"[b - 0xD9], take(1 << (b - 0xD9)))[0]
        return take(n).decode("utf-8"), pos
    if b in (0xDC, 0xDD):
        n = struct.unpack(">" + "HI"[b - 0xDC], take(2 << (b - 0xDC)))[0]
        return container(n, False), pos
    if b in (0xDE, 0xDF):
        n = struct.unpack(">" + "HI"[b - 0xDE], take(2 << (b - 0xDE)))[0]
        return container(n, True), pos
    raise MsgpackError("invalid byte 0x%02x at %d" % (b, pos - 1))


def msgpack_objects(buf):
    """Decode back-to-back msgpack objects: list of (offset, object)."""
    out = []
    pos = 0
    while pos < len(buf):
        start = pos
        obj, pos = _mp_decode(buf, pos)
        out.append((start, obj))
    return out


# ---- sockets, processes -----------------------------------------------------------

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tcp_listening(port):
    """True if some socket listens on 127.0.0.1:port (from /proc/net/tcp)."""
    want = "0100007F:%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if len(parts) > 3 and parts[1] == want and parts[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def vm_rss_kb(pid):
    """The VmRSS of pid in KiB, or None once it has exited."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def parse_human(s):
    """A humanised count from --progress ("950", "12.3k", "1.20M") -> float."""
    m = re.match(r"^([0-9.]+)([kMGT]?)$", s)
    if not m:
        raise Failure("cannot read the count %r in the progress output" % s)
    return float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[m.group(2)]


def final_progress(stderr_text):
    """The last --progress line of each operator: {name: (in, out)} as floats."""
    last = {}
    for line in stderr_text.splitlines():
        m = re.match(r"^\s+(\S+)\s+in\s+(\S+)\s+out\s+(\S+)\s+\S+ ev/s\s*$", line)
        if m:
            last[m.group(1)] = (parse_human(m.group(2)), parse_human(m.group(3)))
    return last


def b64(data):
    return base64.b64encode(data).decode("ascii")
