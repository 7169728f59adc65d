#!/usr/bin/env python3
"""Two pipelines over ZeroMQ on 127.0.0.1: B (source.zmq PULL bind -> sink.file)
runs in the background, A (source.file -> sink.zmq PUSH connect) sends a file;
B ends by itself on A's end-of-stream marker (exit 0) and its output equals the
input.  In msgpack and in jsonl wire format, and with two senders into one
receiver (eos_count: 2)."""
import collections
import os
import time

import e2elib

COUNT = 50000

RECEIVER = """\
pipeline: zmq-receiver
operators:
  wire:
    type: source.zmq
    socket: pull
    mode: bind
    endpoint: tcp://127.0.0.1:%(port)d
    format: %(format)s
    eos_count: %(eos)d
  out:
    type: sink.file
    input: wire
    path: %(out)s
"""

SENDER = """\
pipeline: zmq-sender
operators:
  events:
    type: source.file
    path: %(input)s
  wire:
    type: sink.zmq
    input: events
    socket: push
    mode: connect
    endpoint: tcp://127.0.0.1:%(port)d
    format: %(format)s
"""


def start_receiver(t, d, name, fmt, eos):
    out = os.path.join(d, name + "-received.jsonl")
    for attempt in range(5):
        port = e2elib.free_port()
        pipe = e2elib.write_pipeline(os.path.join(d, name + "-receiver.yaml"), RECEIVER % {
            "port": port, "format": fmt, "eos": eos, "out": e2elib.yaml_str(out)})
        b = t.spawn(["run", pipe, "--no-progress"], cwd=d)
        deadline = time.monotonic() + 10 * t.slow
        while time.monotonic() < deadline and b.poll() is None and not e2elib.tcp_listening(port):
            time.sleep(0.02)
        if e2elib.tcp_listening(port) and b.poll() is None:
            t.ok("%s: receiver B listens on tcp://127.0.0.1:%d" % (name, port))
            return b, port, out
        if b.poll() is None:
            b.kill()
        r = t.wait(b, 10, name + ": receiver")
        t.log("%s: receiver did not come up on port %d (attempt %d):\n%s"
              % (name, port, attempt + 1, r.describe()))
    t.fail("%s: the receiver never listened on its port" % name)


def run_sender(t, d, name, src, port, fmt, tag="sender"):
    pipe = e2elib.write_pipeline(os.path.join(d, "%s-%s.yaml" % (name, tag)), SENDER % {
        "input": e2elib.yaml_str(src), "port": port, "format": fmt})
    r = t.run(["run", pipe, "--no-progress"], timeout=60, cwd=d)
    t.check_rc(r, 0, "%s: %s A (source.file -> sink.zmq %s)" % (name, tag, fmt))


def one_to_one(t, d, src, fmt):
    name = "zmq-" + fmt
    b, port, out = start_receiver(t, d, name, fmt, 1)
    run_sender(t, d, name, src, port, fmt)
    r = t.wait(b, 20 * t.slow, name + ": receiver B after the sender's end of stream")
    t.check_rc(r, 0, "%s: receiver B exits by itself after A's end of stream" % name)
    e2elib.compare_jsonl(t, src, out, name + ": received file")


def two_to_one(t, d, src1, src2, fmt):
    name = "zmq-two-senders"
    b, port, out = start_receiver(t, d, name, fmt, 2)
    run_sender(t, d, name, src1, port, fmt, "sender-1")
    time.sleep(0.3)
    t.check(b.poll() is None, "%s: receiver still running after one of two ends of stream" % name)
    run_sender(t, d, name, src2, port, fmt, "sender-2")
    r = t.wait(b, 20 * t.slow, name + ": receiver B after both ends of stream")
    t.check_rc(r, 0, "%s: receiver B exits after the second end of stream (eos_count: 2)" % name)
    ins = [[e2elib.canonical(l) for l in open(p, "rb") if l.strip()] for p in (src1, src2)]
    got = [e2elib.canonical(l) for l in open(out, "rb")]
    t.check_eq(len(got), len(ins[0]) + len(ins[1]), "%s: events received" % name)
    t.check(collections.Counter(got) == collections.Counter(ins[0] + ins[1]),
            "%s: the received events are the union of both inputs" % name)
    for i, mine in enumerate(ins):
        keep = set(mine)
        t.check([e for e in got if e in keep] == mine,
                "%s: sender %d's events arrive in its order" % (name, i + 1))


def receiver_late(t, d, src, fmt):
    """The sender starts first and finishes before the receiver binds.  It may
    wait for the receiver or fail loudly, but it must not report success
    (exit 0) for events that were never delivered."""
    name = "zmq-receiver-late"
    small = os.path.join(d, "small.jsonl")
    with open(src, "rb") as f, open(small, "wb") as g:
        for i, line in enumerate(f):
            if i == 1000:
                break
            g.write(line)
    port = e2elib.free_port()
    out = os.path.join(d, name + "-received.jsonl")
    spipe = e2elib.write_pipeline(os.path.join(d, name + "-sender.yaml"), SENDER % {
        "input": e2elib.yaml_str(small), "port": port, "format": fmt})
    a = t.spawn(["run", spipe, "--no-progress"], cwd=d)
    time.sleep(2.0)
    rpipe = e2elib.write_pipeline(os.path.join(d, name + "-receiver.yaml"), RECEIVER % {
        "port": port, "format": fmt, "eos": 1, "out": e2elib.yaml_str(out)})
    b = t.spawn(["run", rpipe, "--no-progress"], cwd=d)
    ra = t.wait(a, 30 * t.slow, name + ": sender A")
    if ra.rc != 0:
        b.kill()
        b.wait()
        t.ok("%s: sender A failed loudly (exit %s) without a receiver:\n%s"
             % (name, ra.rc, ra.stderr.decode("utf-8", "replace").strip()))
        return
    deadline = time.monotonic() + 5 * t.slow
    while b.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    got = e2elib.count_lines(out) if os.path.exists(out) else 0
    if b.poll() is None:
        b.kill()
        b.wait()
    t.check(got == 1000, "%s: sender A exited 0, so all 1000 events must reach the receiver that "
            "bound 2 s later (got %d%s)" % (name, got, "; receiver still waiting for the end of "
                                            "stream" if b.returncode < 0 else ""),
            ra.describe())
    t.check_eq(b.returncode, 0, "%s: receiver exit status" % name)


def main(t):
    d = t.tmpdir()
    src = t.gen_events(os.path.join(d, "events.jsonl"), COUNT, 21)
    one_to_one(t, d, src, "msgpack")
    one_to_one(t, d, src, "jsonl")
    src2 = t.gen_events(os.path.join(d, "events2.jsonl"), COUNT // 5, 22)
    two_to_one(t, d, src, src2, "msgpack")
    receiver_late(t, d, src, "msgpack")


if __name__ == "__main__":
    e2elib.main(main)
