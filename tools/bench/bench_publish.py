#!/usr/bin/env python3
"""bench_publish.py - how fast one `events_api` instance publishes durably
(docs/gateway/events.md).

  tools/bench/bench_publish.py [BUILDDIR] [--repeat N] [--scale F]

Writes request events (docs/gateway.md: POST /v1/events, a CloudEvents body
shaped like gen_events.py's orders, about 230 bytes of JSON per event) to a
msgpack file, then times `sluice run` of

    source.file (format: msgpack) -> events_api (log: a fresh directory) -> sink.null

for batches of 100 events per request and for single-event requests, in both
of the log's sync modes, and the same pipeline with `identity` in place of
events_api (what reading the file and moving the requests costs). The source
reads msgpack so that it costs little next to the operator; the request
bodies are still JSON, parsed by events_api as in the gateway. Each run
starts on an empty log; every event is unique. Reports the best and the
median wall time of N runs, the events and requests per second of the best,
and the least CPU time (user + system, all threads) of a run; checks with `sluice log stats` that every event is in the log.
Nothing is asserted.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


# ------------------------------------------------------------ a small msgpack writer

def mp(v, out):
    if v is None:
        out.append(0xC0)
    elif v is True or v is False:
        out.append(0xC3 if v else 0xC2)
    elif isinstance(v, int):
        if 0 <= v <= 0x7F:
            out.append(v)
        elif 0 <= v <= 0xFFFFFFFF:
            out += b"\xce" + struct.pack(">I", v)
        elif v >= 0:
            out += b"\xcf" + struct.pack(">Q", v)
        else:
            out += b"\xd3" + struct.pack(">q", v)
    elif isinstance(v, float):
        out += b"\xcb" + struct.pack(">d", v)
    elif isinstance(v, str):
        b = v.encode()
        n = len(b)
        if n <= 31:
            out.append(0xA0 | n)
        elif n <= 0xFF:
            out += bytes((0xD9, n))
        elif n <= 0xFFFF:
            out += b"\xda" + struct.pack(">H", n)
        else:
            out += b"\xdb" + struct.pack(">I", n)
        out += b
    elif isinstance(v, list):
        n = len(v)
        out += bytes((0x90 | n,)) if n <= 15 else b"\xdc" + struct.pack(">H", n)
        for x in v:
            mp(x, out)
    elif isinstance(v, dict):
        n = len(v)
        out += bytes((0x80 | n,)) if n <= 15 else b"\xde" + struct.pack(">H", n)
        for k, x in v.items():
            mp(k, out)
            mp(x, out)
    else:
        raise TypeError(type(v))


# ------------------------------------------------------------ the requests

STATUSES = ("CREATED", "PAID", "SHIPPED", "CANCELLED")


def cloudevent(i):
    s = i % 86400
    return {
        "specversion": "1.0",
        "id": f"evt-{i:012d}",
        "source": "/shop/orders",
        "type": ("order.created", "order.paid", "payment.processed")[i % 3],
        "time": f"2026-01-01T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{i % 1000:03d}Z",
        "datacontenttype": "application/json",
        "data": {"orderId": f"ord-{i // 3:09d}", "customerId": f"cust-{i % 5000:05d}",
                 "total": round(10 + (i * 7919 % 50000) / 100, 2), "status": STATUSES[i % 4]},
    }


def write_requests(path, n_requests, per_request):
    """n_requests POSTs of per_request events each; returns the body bytes written."""
    out = bytearray()
    body_bytes = 0
    with open(path, "wb") as f:
        for r in range(n_requests):
            evs = [cloudevent(r * per_request + k) for k in range(per_request)]
            if per_request == 1:
                body, ctype = json.dumps(evs[0], separators=(",", ":")), "application/cloudevents+json"
            else:
                body, ctype = json.dumps(evs, separators=(",", ":")), \
                    "application/cloudevents-batch+json"
            body_bytes += len(body)
            req = {"id": f"r-{r:012d}", "type": "http.request", "time": "2026-01-01T12:00:00Z",
                   "conn": r + 1, "method": "POST", "path": "/v1/events", "query": {},
                   "headers": {"content-type": ctype, "x-api-key": "sk_bench"},
                   "body": body, "remote": "127.0.0.1:40000",
                   "consumer": "bench", "plan": "pro", "scopes": ["events:read", "events:write"]}
            mp(req, out)
            if len(out) > 1 << 20:
                f.write(out)
                out.clear()
        f.write(out)
    return body_bytes


def pipeline(path, requests, log_dir, state_dir, op, sync, max_events, parallelism=1):
    if op == "events_api":
        body = f"""    type: events_api
    input: reqs
    parallelism: {parallelism}
    log: {log_dir}
    sync: {sync}"""
    else:
        body = """    type: identity
    input: reqs"""
    with open(path, "w") as f:
        f.write(f"""pipeline: bench-publish
state_dir: {state_dir}
batch: {{max_events: {max_events}, linger: 5ms}}
operators:
  reqs:
    type: source.file
    path: {requests}
    format: msgpack
  api:
{body}
  answers: {{type: sink.null, input: {"api.answered" if op == "events_api" else "api"}}}
""")


def run(sluice, yaml_path, log_dir, state_dir):
    shutil.rmtree(log_dir, ignore_errors=True)
    shutil.rmtree(state_dir, ignore_errors=True)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run([sluice, "run", yaml_path, "--no-progress", "--log-level", "warn"],
                       capture_output=True, text=True)
    dt = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"sluice run failed ({p.returncode}):\n{p.stderr}")
    return dt, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def stored(sluice, log_dir):
    p = subprocess.run([sluice, "log", "stats", log_dir, "--json"], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"sluice log stats failed:\n{p.stderr}")
    return json.loads(p.stdout)["events"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builddir", nargs="?", default=os.path.join(ROOT, "build"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="event count factor")
    ap.add_argument("--max-events", type=int, default=1024, help="batch.max_events")
    ap.add_argument("--sync", default="ordered,fast")
    ap.add_argument("--parallelism", type=int, default=1, help="events_api instances")
    args = ap.parse_args()
    sluice = os.path.join(args.builddir, "tools", "sluice")
    tmp = tempfile.mkdtemp(prefix="bench-publish-", dir=os.environ.get("BENCH_TMP", "/tmp"))
    try:
        cases = (("batches of 100", 100, int(5000 * args.scale)),
                 ("single events", 1, int(100000 * args.scale)))
        print(f"batch.max_events {args.max_events}, linger 5ms, events_api parallelism "
              f"{args.parallelism}; best (median) of {args.repeat}")
        print(f"{'requests':<16}{'sync':<9}{'events':>9}{'best s':>8}{'median s':>10}"
              f"{'events/s':>11}{'requests/s':>12}{'identity s':>12}{'cpu s':>8}")
        for name, per, n_req in cases:
            reqs = os.path.join(tmp, f"requests-{per}.msgpack")
            body = write_requests(reqs, n_req, per)
            n_ev = n_req * per
            log_dir, state_dir, yml = (os.path.join(tmp, x) for x in ("log", "state", "p.yaml"))
            pipeline(yml, reqs, log_dir, state_dir, "identity", "", args.max_events)
            base = min(run(sluice, yml, log_dir, state_dir)[0] for _ in range(args.repeat))
            for sync in args.sync.split(","):
                pipeline(yml, reqs, log_dir, state_dir, "events_api", sync, args.max_events,
                         args.parallelism)
                times, cpus = [], []
                for _ in range(args.repeat):
                    dt, cpu = run(sluice, yml, log_dir, state_dir)
                    times.append(dt)
                    cpus.append(cpu)
                    got = stored(sluice, log_dir)
                    if got != n_ev:
                        sys.exit(f"{name}: the log holds {got} events, expected {n_ev}")
                best = min(times)
                print(f"{name:<16}{sync:<9}{n_ev:>9}{best:>8.3f}{statistics.median(times):>10.3f}"
                      f"{n_ev / best:>11,.0f}{n_req / best:>12,.0f}{base:>12.3f}"
                      f"{min(cpus):>8.3f}", flush=True)
            os.unlink(reqs)
            print(f"  ({body / n_ev:.0f} bytes of JSON body per event)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
