#!/usr/bin/env python3
"""Behaviour checks for the HTTP library evaluation (docs/design/http-library.md).

Starts h2o_server and mhd_server itself (always stopping them), speaks raw HTTP/1.1 over
sockets and prints one table: keep-alive, pipelining order, request size limits, header / body /
idle timeouts, Server-Sent Events from another thread, and graceful shutdown with a request in
flight. It asserts nothing: it records what each library does, so the numbers in the doc come
from a run anyone can repeat:

    features.py --h2o ./h2o_server --mhd ./mhd_server [--port 18090]
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time

TIMEOUT_S = 2          # every server gets a 2 s timeout
MAX_BODY = 1 << 20     # and a 1 MiB body limit


class Conn:
    """A socket with a buffered HTTP/1.1 response reader."""

    def __init__(self, port, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError("closed")
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

    def response(self):
        """Returns (status, headers with lower-case names, body)."""
        status = int(self._line().split()[1])
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            k, v = line.split(b":", 1)
            headers[k.decode().strip().lower()] = v.decode().strip()
        if "content-length" in headers:
            body = self._exact(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    self._line()
                    break
                body += self._exact(size)
                self._exact(2)
        else:
            body = b""
        return status, headers, body

    def closed_within(self, seconds):
        """Seconds until the peer closes (reading and dropping data), or None if still open."""
        t0 = time.monotonic()
        self.s.settimeout(0.05)
        while time.monotonic() - t0 < seconds:
            try:
                if not self.s.recv(65536):
                    return time.monotonic() - t0
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - t0
        return None

    def close(self):
        self.s.close()


def get(path, extra=b""):
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n"


def status_or_close(c):
    try:
        st, h, _ = c.response()
        return "%d%s" % (st, ", then close" if h.get("connection", "") == "close" else "")
    except (EOFError, ConnectionResetError):
        return "closed, no response"
    except socket.timeout:
        return "no answer in 5 s"


# ---- the checks: each returns a short text for the table ----------------------------------

def t_keepalive(port):
    c = Conn(port)
    c.send(get("/x"))
    a = c.response()
    c.send(get("/p/a"))
    b = c.response()
    c.close()
    ok = a[0] == 200 and b[2] == b'{"id":"a"}'
    return "ok" if ok else "FAIL %r %r" % (a, b)


def t_pipeline(port, n=50):
    c = Conn(port)
    c.send(b"".join(get("/p/%d" % i) for i in range(n)))
    got = [c.response()[2] for _ in range(n)]
    c.close()
    want = [b'{"id":"%d"}' % i for i in range(n)]
    return "ok, %d in order" % n if got == want else "FAIL: %r" % got[:5]


def t_pipeline_split(port):
    c = Conn(port)
    c.send(get("/p/1") + b"GET /p/2 HTTP/1.1\r\nHo")
    time.sleep(0.05)
    c.send(b"st: t\r\n\r\n")
    got = [c.response()[2] for _ in range(2)]
    c.close()
    return "ok" if got == [b'{"id":"1"}', b'{"id":"2"}'] else "FAIL %r" % got


def t_header(port, size):
    c = Conn(port)
    try:
        c.send(get("/x", b"X-Big: " + b"a" * size + b"\r\n"))
    except (BrokenPipeError, ConnectionResetError):
        return "reset while sending"
    r = status_or_close(c)
    c.close()
    return r


def t_many_headers(port, n=150):
    c = Conn(port)
    c.send(get("/x", b"".join(b"X-H%d: v\r\n" % i for i in range(n))))
    r = status_or_close(c)
    c.close()
    return r


def t_body_cl_over(port):
    c = Conn(port)
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (2 * MAX_BODY))
    r = status_or_close(c)
    c.close()
    return r


def t_body_chunked_over(port):
    c = Conn(port)
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
    sent = 0
    try:
        while sent < 3 * MAX_BODY // 2:
            c.send(chunk)
            sent += 0x10000
        c.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        return "closed after %d KiB, no response" % (sent // 1024)
    r = status_or_close(c)
    c.close()
    return r


def t_body_ok(port):
    c = Conn(port)
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + b"a" * 1000)
    a = c.response()[0]
    c.send(get("/x"))
    b = c.response()[0]
    c.close()
    return "ok, keep-alive after it" if (a, b) == (200, 200) else "FAIL %r %r" % (a, b)


def fmt_close(t, cap):
    return "closed at %.1f s" % t if t is not None else "still open at %d s" % cap


def t_idle_new(port):
    c = Conn(port)
    r = fmt_close(c.closed_within(8), 8)
    c.close()
    return r


def t_idle_keepalive(port):
    c = Conn(port)
    c.send(get("/x"))
    c.response()
    r = fmt_close(c.closed_within(8), 8)
    c.close()
    return r


def t_slow_headers(port):
    """A header line every 0.5 s (slowloris): does the header timeout bound the whole header?"""
    c = Conn(port)
    c.send(b"GET /x HTTP/1.1\r\nHost: t\r\n")
    t0 = time.monotonic()
    i = 0
    try:
        while time.monotonic() - t0 < 8:
            time.sleep(0.5)
            c.send(b"X-%d: v\r\n" % i)
            i += 1
            c.s.settimeout(0.01)
            try:
                if not c.s.recv(1):
                    return "closed at %.1f s" % (time.monotonic() - t0)
            except socket.timeout:
                pass
    except (BrokenPipeError, ConnectionResetError):
        return "closed at %.1f s" % (time.monotonic() - t0)
    c.close()
    return "still open at 8 s (%d lines sent)" % i


def t_slow_body(port):
    c = Conn(port)
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 8:
            time.sleep(0.5)
            c.send(b"a")
            c.s.settimeout(0.01)
            try:
                if not c.s.recv(1):
                    return "closed at %.1f s" % (time.monotonic() - t0)
            except socket.timeout:
                pass
    except (BrokenPipeError, ConnectionResetError):
        return "closed at %.1f s" % (time.monotonic() - t0)
    c.close()
    return "still open at 8 s"


def t_sse(port):
    c = Conn(port)
    t0 = time.monotonic()
    c.send(get("/sse"))
    st, h, body = c.response()
    dt = time.monotonic() - t0
    c.close()
    events = body.count(b"\n\n")
    te = h.get("transfer-encoding", "-")
    return "%d, %s, %d events in %.0f ms" % (st, te, events, dt * 1000)


def t_sse_client_gone(port):
    """Client leaves mid-stream; then the server must still answer others."""
    c = Conn(port)
    c.send(get("/sse"))
    time.sleep(0.06)
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    time.sleep(0.2)
    return "server fine after" if t_keepalive(port) == "ok" else "FAIL"


# ---- servers ------------------------------------------------------------------------------

class Server:
    def __init__(self, argv, port):
        self.port = port
        self.p = subprocess.Popen(argv, stderr=subprocess.PIPE)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start: %r" % argv)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p.stderr.close()


def argv_for(kind, bins, port, mode, extra=()):
    if kind == "h2o":
        return [bins["h2o"], "-p", str(port), "-m", mode, "-T", str(TIMEOUT_S * 1000),
                "-B", str(MAX_BODY)] + list(extra)
    return [bins["mhd"], "-p", str(port), "-m", mode, "-T", str(TIMEOUT_S),
            "-B", str(MAX_BODY)] + list(extra)


def t_shutdown(kind, bins, port):
    """SIGTERM with one request in flight (worker holds it 300 ms) and one idle keep-alive."""
    srv = Server(argv_for(kind, bins, port, "deferred", ["-d", "300"]), port)
    try:
        idle = Conn(port)
        idle.send(get("/x"))
        idle.response()
        busy = Conn(port)
        busy.send(get("/p/inflight"))
        time.sleep(0.1)
        t0 = time.monotonic()
        srv.p.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            new = "new connection accepted"
        except OSError:
            new = "new connections refused"
        try:
            st, h, body = busy.response()
            inflight = "in-flight answered %d (Connection: %s)" % (st, h.get("connection", "-"))
        except Exception as e:  # noqa: BLE001 - record whatever happened
            inflight = "in-flight LOST (%s)" % type(e).__name__
        t_idle = idle.closed_within(8)
        srv.p.wait(15)
        t_exit = time.monotonic() - t0
        return "%s; idle keep-alive %s; %s; exit %d after %.2f s" % (
            inflight, "closed" if t_idle is not None else "NOT closed", new,
            srv.p.returncode, t_exit)
    finally:
        srv.stop()


def t_backpressure(kind, bins, port):
    """20 requests at once at a worker that holds each batch 300 ms, admission limit 4."""
    srv = Server(argv_for(kind, bins, port, "deferred", ["-d", "300", "-q", "4"]), port)
    try:
        conns = [Conn(port) for _ in range(20)]
        for c in conns:
            c.send(get("/x"))
        t0 = time.monotonic()
        got = {}
        retry = 0
        for c in conns:
            st, h, _ = c.response()
            got[st] = got.get(st, 0) + 1
            retry += st == 503 and "retry-after" in h
        dt = time.monotonic() - t0
        for c in conns:
            c.close()
        return "%s; %d with Retry-After; all answered in %.2f s" % (
            ", ".join("%d x%d" % kv for kv in sorted(got.items())), retry, dt)
    finally:
        srv.stop()


CHECKS = [
    ("keep-alive, 2 requests", t_keepalive, "both"),
    ("pipelining, 50 in one write", t_pipeline, "both"),
    ("pipelining, request split across writes", t_pipeline_split, "both"),
    ("header 16 KiB", lambda p: t_header(p, 16 << 10), "inline"),
    ("header 64 KiB", lambda p: t_header(p, 64 << 10), "inline"),
    ("header 600 KiB", lambda p: t_header(p, 600 << 10), "inline"),
    ("150 header lines", t_many_headers, "inline"),
    ("POST 1000 B body", t_body_ok, "both"),
    ("POST Content-Length 2 MiB (limit 1 MiB)", t_body_cl_over, "inline"),
    ("POST chunked 1.5 MiB (limit 1 MiB)", t_body_chunked_over, "inline"),
    ("idle new connection (timeout 2 s)", t_idle_new, "inline"),
    ("idle keep-alive after a response", t_idle_keepalive, "inline"),
    ("slow headers, a line per 0.5 s", t_slow_headers, "inline"),
    ("slow body, a byte per 0.5 s", t_slow_body, "inline"),
    ("SSE: 3 events from another thread", t_sse, "deferred"),
    ("SSE: client resets mid-stream", t_sse_client_gone, "deferred"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--h2o", required=True)
    ap.add_argument("--mhd", required=True)
    ap.add_argument("--port", type=int, default=18090)
    a = ap.parse_args()
    bins = {"h2o": os.path.abspath(a.h2o), "mhd": os.path.abspath(a.mhd)}
    cols = [("h2o", "inline"), ("h2o", "deferred"), ("mhd", "inline"), ("mhd", "deferred")]
    results = {}
    for kind, mode in cols:
        srv = Server(argv_for(kind, bins, a.port, mode), a.port)
        try:
            for name, fn, where in CHECKS:
                if where not in ("both", mode):
                    continue
                try:
                    results[(name, kind, mode)] = fn(a.port)
                except Exception as e:  # noqa: BLE001 - a crash or hang is a finding
                    results[(name, kind, mode)] = "ERROR %s: %s" % (type(e).__name__, e)
                if srv.p.poll() is not None:
                    results[(name, kind, mode)] += " (SERVER DIED)"
                    srv = Server(argv_for(kind, bins, a.port, mode), a.port)
        finally:
            srv.stop()
    special = [("pipeline full: 503 + Retry-After", t_backpressure),
               ("graceful shutdown", t_shutdown)]
    for name, fn in special:
        for kind in ("h2o", "mhd"):
            try:
                results[(name, kind, "deferred")] = fn(kind, bins, a.port)
            except Exception as e:  # noqa: BLE001
                results[(name, kind, "deferred")] = "ERROR %s: %s" % (type(e).__name__, e)

    names = [n for n, _, _ in CHECKS] + [n for n, _ in special]
    print("| check | h2o inline | h2o deferred | mhd inline | mhd deferred |")
    print("|---|---|---|---|---|")
    for n in names:
        row = [results.get((n, k, m), "") for k, m in cols]
        print("| %s | %s |" % (n, " | ".join(row)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
