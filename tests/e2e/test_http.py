#!/usr/bin/env python3
"""test_http.py - source.http and respond (docs/gateway/http.md) on real sockets.

Three pipelines, each a real `sluice run` on 127.0.0.1 with port 0 (the port is
read from the log line "listening on http://127.0.0.1:PORT"); clients are
http.client and raw sockets (standard library only).

 echo      source.http -> route -> transform `answer` (parallelism 2, --no-fusion:
           requests cross threads) -> respond -> sink.file on respond's usage port.
           The answer echoes method, path, query, headers and body as JSON.
           Checks: GET with query and repeated headers, POST body, HEAD, keep-alive
           (100 requests on one connection), pipelining (20 requests in one write, 20
           answers in order), 50 threads x 200 requests each answered with its own
           echo (the conn handle survives stages and threads), 413 (Content-Length
           and chunked), malformed HTTP (garbage, a bad method, 150 header fields,
           header over max_header: 431, head over h2o's limit: 400) and still serving,
           a status chosen by the pipeline, an invalid response (500 and the errors
           port), no response (500), answered twice (one stale answer, counted), and
           the usage events (one per answer: status, method, path, latency_ms,
           bytes_out).
 timeouts  fused, two event loops, respond listed (and started) before its source;
           header 1s, body 1s, idle 1.5s, response 1s. Half a head: 408 and
           close; half a body: 408; idle keep-alive and idle new connections closed;
           a request whose event lost its conn (respond's errors port) gets 504, and
           the connection stays usable.
 slow      throttle 5/s in delay mode, max_inflight 4: 30 requests at once get 503
           with Retry-After at once except the 4 admitted, which are answered; then
           SIGTERM with 4 requests in flight: each gets its own real answer, new
           connections are refused, exit 0.
"""
import http.client
import json
import os
import re
import select
import signal
import socket
import threading
import time

import e2elib


class Server:
    """A `sluice run` of a pipeline with a source.http, stderr in a file."""

    def __init__(self, t, name, yaml_text, args=()):
        self.t = t
        self.dir = t.tmpdir(name)
        self.name = name
        self.usage = os.path.join(self.dir, "usage.jsonl")
        self.errors = os.path.join(self.dir, "errors.jsonl")
        pipe = e2elib.write_pipeline(os.path.join(self.dir, "p.yaml"),
                                     yaml_text % {"usage": self.usage, "errors": self.errors})
        self.log_path = os.path.join(self.dir, "stderr.txt")
        self.log_file = open(self.log_path, "wb")
        self.p = t.spawn(["run", pipe, "--no-progress"] + list(args), stdout=open(os.devnull, "wb"),
                         stderr=self.log_file)
        deadline = time.monotonic() + 15 * t.slow
        self.port = None
        while time.monotonic() < deadline and self.p.poll() is None:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        if self.port is None:
            t.fail("%s: no 'listening on' line within 15 s\n%s" % (name, self.log()))
        t.ok("%s: listening on port %d (from the log)" % (name, self.port))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=30):
        """SIGTERM, wait; returns (exit status, seconds)."""
        t0 = time.monotonic()
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout * self.t.slow)
        except Exception:
            self.p.kill()
            self.p.wait()
            self.t.fail("%s: did not exit within %d s of SIGTERM\n%s" % (self.name, timeout, self.log()))
        self.log_file.close()
        text = self.log()
        if re.search(r"ERROR: \w+Sanitizer|runtime error: |Sanitizer:DEADLYSIGNAL|LeakSanitizer", text):
            self.t.fail("%s: sanitizer report\n%s" % (self.name, text))
        return rc, time.monotonic() - t0


class Conn:
    """A raw socket with an HTTP/1.1 response reader."""

    def __init__(self, port, timeout=10.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head=False):
        """(status, headers with lower-case names, body)."""
        status = int(self._line().split()[1])
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            k, v = line.split(b":", 1)
            headers[k.decode().strip().lower()] = v.decode().strip()
        n = 0 if head else int(headers.get("content-length", "0"))
        return status, headers, self._exact(n)

    def closed_within(self, seconds):
        """Seconds until the peer closes (data read meanwhile is kept in self.buf), or None."""
        t0 = time.monotonic()
        self.s.settimeout(0.05)
        while time.monotonic() - t0 < seconds:
            try:
                b = self.s.recv(65536)
                if not b:
                    return time.monotonic() - t0
                self.buf += b
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - t0
        return None

    def close(self):
        self.s.close()


def get(path, extra=b"", method=b"GET"):
    return method + b" " + path.encode() + b" HTTP/1.1\r\nHost: test\r\n" + extra + b"\r\n"


def post(path, body, extra=b""):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n" % len(body)
            + extra + b"\r\n" + body)


def raw_exchange(port, data, wait=5.0):
    """Send data on a new connection; everything read until close (or wait seconds)."""
    c = Conn(port, timeout=wait)
    try:
        c.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    out = b""
    try:
        while True:
            b = c.s.recv(65536)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError):
        pass
    c.close()
    return out


def status_of(raw):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", raw)
    return int(m.group(1)) if m else None


ANSWER = r'''{"status": has(query.status) ? int(query.status) : 200,
                  "headers": {"content-type": "application/json", "x-request-id": id},
                  "body": {"method": method, "path": path, "query": query, "headers": headers,
                           "body": body}}'''

ECHO_YAML = """
pipeline: http-echo
batch: {max_events: 1024, linger: 0ms}
operators:
  http:
    type: source.http
    listen: 127.0.0.1:0
    max_body: 64KiB
    max_header: 16KiB
    timeouts: {header: 5s, body: 5s, idle: 30s, response: 20s}
  split:
    type: route
    input: http
    routes:
      dup: path == "/dup"
      bare: path == "/noresp"
  answer:
    type: transform
    input: split.default
    parallelism: 2
    keep: [conn, method, path]
    fields:
      operation: '"echo"'
      response: '%(answer)s'
  dup1: {type: transform, input: split.dup, keep: [conn, method, path], fields: {response: '{"body": "first"}'}}
  dup2: {type: transform, input: split.dup, keep: [conn, method, path], fields: {response: '{"body": "second"}'}}
  bare: {type: transform, input: split.bare, keep: [conn, method, path]}
  reply:
    type: respond
    input: [answer, dup1, dup2, bare]
  usage: {type: sink.file, input: reply, path: %%(usage)s}
  errors: {type: sink.file, input: reply.errors, path: %%(errors)s}
""" % {"answer": ANSWER.replace("\n", " ")}

TIMEOUTS_YAML = """
pipeline: http-timeouts
batch: {max_events: 1024, linger: 0ms}
operators:
  reply:                  # before its source: started first
    type: respond
    input: [answer, lost]
  http:
    type: source.http
    listen: 127.0.0.1:0
    threads: 2
    timeouts: {header: 1s, body: 1s, idle: 1500ms, response: 1s}
  split:
    type: route
    input: http
    routes:
      lost: path == "/noconn"
  lost:
    type: transform
    input: split.lost
    keep: [method, path]
    fields: {response: '{"body": "never sent"}'}
  answer:
    type: transform
    input: split.default
    keep: [conn]
    fields: {response: '{"body": path}'}
  errors: {type: sink.file, input: reply.errors, path: %(errors)s}
"""

SLOW_YAML = """
pipeline: http-slow
batch: {max_events: 1024, linger: 0ms}
operators:
  http:
    type: source.http
    listen: 127.0.0.1:0
    max_inflight: 4
    retry_after: 2s
    drain: 20s
  slow:
    type: throttle
    input: http
    rate: 5
    burst: 1
    mode: delay
  answer:
    type: transform
    input: slow
    keep: [conn]
    fields: {response: '{"headers": {"content-type": "text/plain"}, "body": "answer for " + path}'}
  reply:
    type: respond
    input: answer
"""


# ---- echo ------------------------------------------------------------------------------------

def check_echo(t, st, h, body, method, path, query, want_headers=None, want_body=""):
    t.check(st == 200, "%s %s: 200 (got %r)" % (method, path, st))
    try:
        e = json.loads(body)
    except ValueError:
        t.fail("%s %s: the body is not JSON: %r" % (method, path, body[:200]))
    t.check_eq((e["method"], e["path"], e["query"], e["body"]), (method, path, query, want_body),
               "%s %s: method, decoded path, query and body echoed" % (method, path))
    for k, v in (want_headers or {}).items():
        t.check_eq(e["headers"].get(k), v, "%s %s: header %s as received" % (method, path, k))
    t.check(h.get("content-type") == "application/json" and h.get("x-request-id", "").startswith("r-"),
            "%s %s: response headers from the event (content-type, x-request-id = the event's id)"
            % (method, path))
    return e


def echo_basics(t, port):
    c = Conn(port)
    c.send(get("/items/a%20b/%C3%A9?x=1&y=two%20words&x=2&flag&z=a%2Bb+c",
               b"X-Test: one\r\nx-test: two\r\nAccept: */*\r\n"))
    st, h, body = c.response()
    e = check_echo(t, st, h, body, "GET", "/items/a b/\u00e9",
                   {"x": "1", "y": "two words", "flag": "", "z": "a+b c"},
                   {"x-test": "one, two", "accept": "*/*", "host": "test"})
    t.check(h.get("server") == "sluice" and "date" in h and h.get("content-length") == str(len(body)),
            "server, date and content-length headers added by the server")
    t.check(all(k == k.lower() for k in e["headers"]), "request header names are lower case")

    payload = "h\u00e9llo, body with \"quotes\"\n" * 10
    c.send(post("/submit", payload.encode(), b"Content-Type: text/plain\r\n"))
    st, h, body = c.response()
    check_echo(t, st, h, body, "POST", "/submit", {}, {"content-type": "text/plain"}, payload)

    c.send(get("/head", method=b"HEAD"))
    st, h, body = c.response(head=True)
    t.check(st == 200 and body == b"" and int(h["content-length"]) > 0,
            "HEAD: 200, content-length of the body, no body")

    c.send(get("/s?status=404"))
    st, h, body = c.response()
    t.check_eq(st, 404, "a status chosen by the pipeline (response.status from the query)")
    c.close()
    return 4


def echo_keepalive(t, port, n=100):
    c = Conn(port)
    for i in range(n):
        c.send(get("/ka/%d?i=%d" % (i, i)))
        st, h, body = c.response()
        e = json.loads(body)
        if st != 200 or e["path"] != "/ka/%d" % i or e["query"] != {"i": str(i)}:
            t.fail("keep-alive request %d: got %r %r" % (i, st, body[:200]))
        if h.get("connection") == "close":
            t.fail("keep-alive request %d: the server closed the connection" % i)
    c.close()
    t.ok("keep-alive: %d requests on one connection, each answered with its own echo" % n)
    return n


def echo_pipelining(t, port, n=20):
    c = Conn(port)
    c.send(b"".join(get("/pipe/%d" % i) for i in range(n)))
    got = [json.loads(c.response()[2])["path"] for _ in range(n)]
    c.close()
    t.check_eq(got, ["/pipe/%d" % i for i in range(n)],
               "pipelining: %d requests in one write, %d answers in order" % (n, n))
    return n


def echo_concurrency(t, port, threads=50, per_thread=200):
    errors = []
    counts = [0] * threads

    def worker(k):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30 * t.slow)
            for i in range(per_thread):
                tag = "%d-%d" % (k, i)
                c.request("GET", "/c/%d/%d?tag=%s" % (k, i, tag), headers={"X-Tag": tag})
                r = c.getresponse()
                body = r.read()
                e = json.loads(body)
                if (r.status != 200 or e["path"] != "/c/%d/%d" % (k, i) or e["query"] != {"tag": tag}
                        or e["headers"].get("x-tag") != tag):
                    errors.append("thread %d request %d: %r %r" % (k, i, r.status, body[:200]))
                    return
                counts[k] += 1
            c.close()
        except Exception as ex:  # noqa: BLE001 - reported below
            errors.append("thread %d: %r" % (k, ex))

    t0 = time.monotonic()
    ths = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    dt = time.monotonic() - t0
    if errors:
        t.fail("concurrency: %d failures, first: %s" % (len(errors), errors[0]))
    total = sum(counts)
    t.check_eq(total, threads * per_thread,
               "concurrency: %d threads x %d requests, each answered with its own echo (%.1f s, "
               "%.0f req/s)" % (threads, per_thread, dt, total / dt))
    return total


def echo_limits(t, port):
    """Requests the server itself refuses; returns how many of them became events (none)."""
    out = raw_exchange(port, b"POST /big HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n")
    t.check_eq(status_of(out), 413, "Content-Length over max_body (64KiB): 413 before the body")
    c = Conn(port)
    c.send(b"POST /big HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
    sent = 0
    try:
        while sent < 200000:
            c.send(b"4000\r\n" + b"a" * 0x4000 + b"\r\n")
            sent += 0x4000
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        st = c.response()[0]
    except (EOFError, ConnectionResetError):
        st = "closed"
    c.close()
    t.check(st in (413, "closed"), "chunked body over max_body: 413 (or closed), got %r" % (st,))

    t.check_eq(status_of(raw_exchange(port, b"HELLO\r\n\r\n")), 400, "a garbage request line: 400")
    t.check_eq(status_of(raw_exchange(port, b"G@T / HTTP/1.1\r\nHost: test\r\n\r\n")), 400,
               "a method that is not a token: 400")
    t.check_eq(status_of(raw_exchange(port, b"G\x01T / HTTP/1.1\r\nHost: test\r\n\r\n")), 400,
               "a control character in the method: 400")
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    t.check_eq(status_of(raw_exchange(port, get("/many", many))), 400, "150 header fields: 400")
    out = raw_exchange(port, get("/big", b"X-Big: " + b"a" * 32768 + b"\r\n"))
    t.check_eq(status_of(out), 431, "a 32 KiB header field (max_header 16KiB): 431")
    t.check(b"connection: close" in out.lower(), "431 closes the connection")
    out = raw_exchange(port, get("/huge", b"X-Big: " + b"a" * 600000 + b"\r\n"))
    t.check(status_of(out) in (400, 431), "a 600 KiB head: 400 or 431 (got %r)" % status_of(out))
    c = Conn(port)
    c.send(get("/after-garbage"))
    t.check_eq(json.loads(c.response()[2])["path"], "/after-garbage", "still serving after all that")
    c.close()
    return 1


def echo_special(t, port):
    """invalid response, no response, answered twice. Returns (answers, dup requests)."""
    c = Conn(port)
    c.send(get("/bad?status=99"))
    st, h, body = c.response()
    t.check(st == 500 and json.loads(body)["error"] == "internal",
            "a response status of 99: 500 with a JSON error (got %r %r)" % (st, body[:100]))
    c.send(get("/noresp"))
    st, h, body = c.response()
    t.check(st == 500 and json.loads(body)["error"] == "no response"
            and h.get("content-type") == "application/json",
            "an event without response: 500 {\"error\": \"no response\"} (got %r %r)" % (st, body[:100]))
    dups = 5
    for i in range(dups):
        c.send(get("/dup"))
        st, h, body = c.response()
        t.check(st == 200 and body in (b"first", b"second"),
                "answered twice: the answer that arrives first is written (got %r %r)" % (st, body))
    c.close()
    return 2 + dups, dups


def echo_test(t):
    srv = Server(t, "echo", ECHO_YAML, ["--no-fusion"])
    port = srv.port
    n = echo_basics(t, port)
    n += echo_keepalive(t, port)
    n += echo_pipelining(t, port)
    n += echo_concurrency(t, port)
    n += echo_limits(t, port)
    special, dups = echo_special(t, port)
    time.sleep(0.3)  # the second answers of /dup reach the loop
    rc, dt = srv.stop()
    t.check_eq(rc, 0, "echo: exit status after SIGTERM")
    log = srv.log()
    m = re.search(r"stale answers: (\d+)", log)
    t.check(m and int(m.group(1)) == dups,
            "each second answer of /dup is stale and counted (%d), never written" % dups, log)

    usage = e2elib.read_jsonl(srv.usage)
    answered = n + special + dups  # respond emits a usage event for both answers of /dup
    t.check_eq(len(usage), answered, "usage: one event per answer respond wrote")
    by_status = {}
    for u in usage:
        by_status[u["status"]] = by_status.get(u["status"], 0) + 1
        if (u.get("type") != "http.usage" or not u.get("id", "").startswith("r-")
                or not isinstance(u.get("latency_ms"), float) or not 0 <= u["latency_ms"] < 30000
                or not isinstance(u.get("bytes_out"), int) or "method" not in u or "path" not in u):
            t.fail("usage: a malformed usage event: %r" % u)
    t.check_eq(by_status, {200: answered - 3, 404: 1, 500: 2}, "usage: statuses")
    ka = [u for u in usage if u["path"] == "/ka/7"]
    t.check(len(ka) == 1 and ka[0]["method"] == "GET" and ka[0]["operation"] == "echo"
            and ka[0]["bytes_out"] > 50,
            "usage: method, path, operation (added by the pipeline) and bytes_out copied", repr(ka))
    lat = sorted(u["latency_ms"] for u in usage)
    t.ok("usage: latency_ms p50 %.3f ms, max %.1f ms" % (lat[len(lat) // 2], lat[-1]))
    errs = e2elib.read_jsonl(srv.errors)
    t.check(len(errs) == 1 and errs[0]["reason"] == "invalid_response"
            and errs[0]["original"]["path"] == "/bad",
            "the invalid response left by respond's errors port (drop envelope)", repr(errs))


# ---- timeouts --------------------------------------------------------------------------------

def timeouts_test(t):
    srv = Server(t, "timeouts", TIMEOUTS_YAML)
    port = srv.port
    slow = t.slow

    c = Conn(port)
    t0 = time.monotonic()
    c.send(b"GET /half HTTP/1.1\r\nHost: test\r\n")
    dt = c.closed_within(6 * slow)
    t.check(dt is not None and 0.8 <= dt <= 3 * slow and status_of(c.buf) == 408,
            "half a head: 408 and closed after the header timeout of 1 s (%s, %r)"
            % (dt, c.buf[:40]))
    c.close()

    c = Conn(port)
    c.send(b"POST /half HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789")
    dt = c.closed_within(6 * slow)
    t.check(dt is not None and 0.8 <= dt <= 3.5 * slow and status_of(c.buf) == 408,
            "half a body: 408 and closed after the body timeout of 1 s (%s, %r)" % (dt, c.buf[:40]))
    c.close()

    c = Conn(port)
    c.send(get("/one"))
    st, _, body = c.response()
    t.check(st == 200 and body == b"/one", "a request before going idle")
    dt = c.closed_within(8 * slow)
    t.check(dt is not None and 1.2 <= dt <= 4 * slow and not c.buf,
            "an idle keep-alive connection is closed after the idle timeout of 1.5 s (%s)" % dt)
    c.close()
    c = Conn(port)
    dt = c.closed_within(8 * slow)
    t.check(dt is not None and 1.2 <= dt <= 4 * slow,
            "a new connection that sends nothing is closed after 1.5 s (%s)" % dt)
    c.close()

    c = Conn(port)
    t0 = time.monotonic()
    c.send(get("/noconn"))
    st, h, body = c.response()
    dt = time.monotonic() - t0
    t.check(st == 504 and 0.8 <= dt <= 3 * slow and json.loads(body)["error"] == "timeout",
            "the answer never comes (the event lost its conn): 504 after the response timeout "
            "of 1 s (%r after %.2f s)" % (st, dt))
    c.send(get("/again"))
    st, h, body = c.response()
    t.check(st == 200 and body == b"/again", "the connection is still usable after the 504")
    c.close()

    rc, _ = srv.stop()
    t.check_eq(rc, 0, "timeouts: exit status after SIGTERM")
    errs = e2elib.read_jsonl(srv.errors)
    t.check(len(errs) == 1 and errs[0]["reason"] == "invalid" and errs[0]["original"]["path"] == "/noconn",
            "the event without conn left by respond's errors port", repr(errs))


# ---- slow: 503 and a graceful stop -----------------------------------------------------------

def slow_test(t):
    srv = Server(t, "slow", SLOW_YAML)
    port = srv.port

    n = 30
    conns = [Conn(port) for _ in range(n)]
    time.sleep(0.1)  # all accepted
    t0 = time.monotonic()
    for i, c in enumerate(conns):
        c.send(get("/burst/%d" % i))
    when = {}
    pending = set(range(n))
    while pending and time.monotonic() - t0 < 20 * t.slow:
        ready, _, _ = select.select([conns[i].s for i in pending], [], [], 1.0)
        now = time.monotonic() - t0
        for s_ in ready:
            i = next(k for k in pending if conns[k].s is s_)
            when[i] = now
            pending.discard(i)
    results = [c.response() for c in conns]
    for c in conns:
        c.close()
    got = {}
    for i, (st, h, body) in enumerate(results):
        got.setdefault(st, []).append(when[i])
        if st == 503:
            if h.get("retry-after") != "2" or json.loads(body)["error"] != "overloaded":
                t.fail("503 without Retry-After: 2 or the JSON error: %r %r" % (h, body))
        elif st == 200:
            if body != b"answer for /burst/%d" % i:
                t.fail("request %d answered with %r" % (i, body))
        else:
            t.fail("request %d: unexpected status %r" % (i, st))
    t.check(len(got.get(503, [])) >= n - 8 and set(got) <= {200, 503},
            "a full pipeline (max_inflight 4, throttle 5/s): %d x 503 with Retry-After, %d x 200 "
            "each with its own answer" % (len(got.get(503, [])), len(got.get(200, []))))
    t.check(max(got[503]) < 0.3 * t.slow and max(got.get(200, [0])) > max(got[503]),
            "the 503s come at once (the last after %.3f s), before the admitted requests are "
            "answered (the last after %.3f s)" % (max(got[503]), max(got.get(200, [0]))))

    time.sleep(1.5)  # the throttle's bucket refills
    inflight = [Conn(port) for _ in range(4)]
    for i, c in enumerate(inflight):
        c.send(get("/inflight/%d" % i))
        time.sleep(0.02)  # in this order through the throttle
    time.sleep(0.1)
    srv.p.send_signal(signal.SIGTERM)
    t_sig = time.monotonic()
    time.sleep(0.3)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    t.check(refused, "after SIGTERM new connections are refused")
    closing = 0
    for i, c in enumerate(inflight):
        st, h, body = c.response()
        t.check(st == 200 and body == b"answer for /inflight/%d" % i,
                "in flight at SIGTERM: request %d still gets its real answer (%r %r)" % (i, st, body))
        closing += h.get("connection") == "close"
        c.close()
    t.check(closing >= 2, "those answered after SIGTERM say Connection: close (%d of 4)" % closing)
    try:
        rc = srv.p.wait(20 * t.slow)
    except Exception:
        t.fail("slow: did not exit after SIGTERM\n%s" % srv.log())
    rc2, _ = srv.stop()  # (already exited: collects the log and checks for sanitizer reports)
    t.check_eq(rc, 0, "slow: exit status 0 after draining (%.2f s after SIGTERM)"
               % (time.monotonic() - t_sig))


def main(t):
    echo_test(t)
    timeouts_test(t)
    slow_test(t)


e2elib.main(main)
