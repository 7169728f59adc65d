#!/usr/bin/env python3
"""dedup -> route -> join end to end, every figure computed here from the
input's JSON lines.

  gen_events.py (60000 events, seed 5: re-sends and late events included)
  -> source.file (watermark: {max_out_of_order: 10s})
  -> dedup (key id, horizon 1h)
  -> route split {orders, payments} -> transform orders / payments
  -> join (orderId = orderId, within 90s, inner or left) -> sink.file

Expected: the events with ids seen for the first time (file order), orders
paired with payments of the same orderId whose times are at most 90 s apart
(many-to-many: updated/completed orders share an orderId), each pair once;
for the left join also one row with nulls per order that pairs with nothing.
gen_events.py's events are at most ~6 s out of order, so with 10 s nothing
is late. Then the same pipeline with `parallelism: 3` on the join and 2 on
dedup must write the same rows (as a multiset). Last, pipelines/order-analytics.yaml
(DESIGN.md's example: dedup, route, join within 1h, aggregate) on the same
events: its joined rows and removed duplicates must be the ones computed here.
"""
import collections
import json
import os

import e2elib

PIPELINE = """\
pipeline: join-e2e
state_dir: {state}
operators:
  events:
    type: source.file
    path: {events}
    watermark: {{max_out_of_order: 10s}}
  unique:
    type: dedup
    input: events
    key: id
    capacity: 100000
    error_rate: 0.01
    horizon: 1h
    parallelism: {dpar}
  split:
    type: route
    input: unique
    routes:
      orders: type.startsWith("order.")
      payments: type == "payment.processed"
  orders:
    type: transform
    input: split.orders
    fields: {{orderId: data.orderId, amount: data.total}}
  payments:
    type: transform
    input: split.payments
    fields: {{orderId: data.orderId, amount: data.amount}}
  pairs:
    type: join
    left: orders
    right: payments
    on: {{left: orderId, right: orderId}}
    within: 90s
    kind: {kind}
    parallelism: {jpar}
    fields:
      orderId: left.orderId
      orderAmount: left.amount
      paymentAmount: right.amount
  out:
    type: sink.file
    input: pairs
    path: {out}
  late:
    type: sink.file
    input: pairs.late
    path: {late}
  dups:
    type: sink.file
    input: unique.duplicates
    path: {dups}
"""


def expected(events_path, kind, within_s=90):
    seen = set()
    orders, payments = collections.defaultdict(list), collections.defaultdict(list)
    dups = 0
    for line in open(events_path):
        e = json.loads(line)
        if e["id"] in seen:
            dups += 1
            continue
        seen.add(e["id"])
        t = e2elib.parse_time(e["time"])
        if e["type"].startswith("order."):
            orders[e["data"]["orderId"]].append((e["id"], t, e["data"]["total"]))
        elif e["type"] == "payment.processed":
            payments[e["data"]["orderId"]].append((e["id"], t, e["data"]["amount"]))
    rows = collections.Counter()
    for oid, os_ in orders.items():
        for (lid, tl, la) in os_:
            matched = False
            for (rid, tr, ra) in payments.get(oid, []):
                if abs(tr - tl) <= within_s * 10**9:
                    rows[(oid, la, ra, "%s/%s" % (lid, rid))] += 1
                    matched = True
            if not matched and kind == "left":
                rows[(oid, la, None, "%s/" % lid)] += 1
    return rows, dups


def got_rows(path):
    rows = collections.Counter()
    for line in open(path):
        r = json.loads(line)
        rows[(r["orderId"], r["orderAmount"], r["paymentAmount"], r["id"])] += 1
    return rows


def run(t, d, events, kind, jpar, dpar):
    tag = "%s-j%d-d%d" % (kind, jpar, dpar)
    paths = {k: os.path.join(d, "%s-%s.jsonl" % (k, tag)) for k in ("out", "late", "dups")}
    y = e2elib.write_pipeline(os.path.join(d, tag + ".yaml"), PIPELINE.format(
        state=os.path.join(d, "state-" + tag), events=events, kind=kind, jpar=jpar, dpar=dpar,
        **paths))
    t.check_rc(t.run(["run", y], timeout=120), 0, "run %s" % tag)
    return paths


def main(t):
    d = t.tmpdir()
    events = t.gen_events(os.path.join(d, "events.jsonl"), 60000, 5)
    for kind in ("inner", "left"):
        want, dups = expected(events, kind)
        t.check(sum(want.values()) > 1000, "the stream has pairs to find (%d)" % sum(want.values()))
        p = run(t, d, events, kind, 1, 1)
        got = got_rows(p["out"])
        t.check(got == want, "%s join: %d rows, as computed independently" % (kind, sum(want.values())),
                "missing %s, extra %s" % (list((want - got).items())[:3], list((got - want).items())[:3]))
        t.check_eq(e2elib.count_lines(p["late"]), 0, "%s join: nothing late" % kind)
        t.check_eq(e2elib.count_lines(p["dups"]), dups, "%s join: duplicates removed" % kind)
        par = run(t, d, events, kind, 3, 2)
        t.check(got_rows(par["out"]) == got, "%s join: parallelism 3 (dedup 2) = parallelism 1" % kind)

    want, dups = expected(events, "inner", within_s=3600)
    out = os.path.join(d, "analytics")
    env = dict(os.environ, EVENTS=events, OUT=out, STATE_DIR=os.path.join(d, "state-analytics"))
    y = os.path.join(e2elib.REPO, "pipelines", "order-analytics.yaml")
    t.check_rc(t.run(["run", y, "--no-progress"], timeout=120, env=env), 0,
               "run pipelines/order-analytics.yaml")
    got = collections.Counter()
    for line in open(os.path.join(out, "joined.jsonl")):
        r = json.loads(line)
        got[(r["orderId"], r["orderAmount"], r["paymentAmount"], r["id"])] += 1
    t.check(got == want, "order-analytics: %d joined rows, as computed independently"
            % sum(want.values()))
    t.check_eq(e2elib.count_lines(os.path.join(out, "duplicates.jsonl")), dups,
               "order-analytics: duplicates removed")
    t.check(e2elib.count_lines(os.path.join(out, "metrics.jsonl")) > 0,
            "order-analytics: window rows written")


if __name__ == "__main__":
    e2elib.main(main)
