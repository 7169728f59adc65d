#!/usr/bin/env python3
"""Expressions end to end: the front half of DESIGN.md's order-analytics
pipeline on 200000 events from gen_events.py (seed 11) plus a few hand-made
odd events (no type, a numeric type, a missing or non-numeric total, data
that is not a map, an int total, -0.0):

  source.file -> route split (orders: type.startsWith("order."),
                              payments: type == "payment.processed")
     split.orders   -> transform orders   -> sink; -> filter large_orders
                                                      (amount > 100.0) -> sink
     split.payments -> transform payments -> sink
     split.default, split.errors, orders.errors, large_orders.errors -> sinks
  source.file -> filter selected (seed spec: types, start_time, end_time,
                 data: {total: {gt, lte}, status: {in}, customerId: {ne}})
                 -> out / rejected / errors sinks; the same spec once more
                 with `reorder: false`.

Every expected count and every expected output object is computed here,
independently, from the JSON lines with the json module (a small evaluator
of the same predicates with CEL's rules: a missing key is an error, `&&` is
false if any term is false, else an error if any erred).  Outputs are
compared in order, as JSON values with strict types, `time` as an instant;
transform outputs also in key order (id, time, then the fields).  The run
is repeated with --no-fusion and must write the same bytes.

Then `sluice validate` on files with a bad expression: exit 1 and
`file:line:col: message` with line:col at the offending token, computed
from the file's text (plain, quoted, escaped, multi-line and folded
scalars, a flow map, a route, the seed spec)."""
import json
import math
import os
import re

import e2elib

COUNT = 200000
SEED = 11

START = e2elib.parse_time("2026-01-01T00:00:30Z")
END = e2elib.parse_time("2026-01-01T00:03:00Z")
SPEC_TYPES = ("order.completed", "order.updated", "payment.processed")
SPEC_STATUS = ("PAID", "COMPLETED", "SHIPPED", "APPROVED")

SPEC = """\
    types: [order.completed, order.updated, payment.processed]
    start_time: 2026-01-01T00:00:30Z
    end_time: "2026-01-01T00:03:00Z"
    data:
      total: {gt: 100, lte: 400.5}
      status: {in: [PAID, COMPLETED, SHIPPED, APPROVED]}
      customerId: {ne: cust-42}
"""

SINKS = ["orders", "payments", "large", "large_errors", "other", "split_errors",
         "orders_errors", "sel", "sel_rejected", "sel_errors", "sel_fixed", "sel_fixed_rejected",
         "sel_fixed_errors"]

PIPELINE = """\
pipeline: order-analytics-front
batch: {max_events: 1024, linger: 5ms}
operators:
  events:
    type: source.file
    path: %(input)s
    format: jsonl

  split:
    type: route
    input: events
    routes:
      orders: type.startsWith("order.")
      payments: type == "payment.processed"

  orders:
    type: transform
    input: split.orders
    fields:
      orderId: data.orderId
      customerId: data.customerId
      amount: data.total
      status: data.status

  payments:
    type: transform
    input: split.payments
    fields:
      orderId: data.orderId
      amount: data.amount
      status: data.status

  large_orders:
    type: filter
    input: orders
    where: amount > 100.0

  selected:
    type: filter
    input: events
%(spec)s
  selected_fixed:
    type: filter
    input: events
    reorder: false
%(spec)s
  orders_out: {type: sink.file, input: orders, path: %(orders)s}
  payments_out: {type: sink.file, input: payments, path: %(payments)s}
  large_out: {type: sink.file, input: large_orders, path: %(large)s}
  large_errors_out: {type: sink.file, input: large_orders.errors, path: %(large_errors)s}
  other_out: {type: sink.file, input: split.default, path: %(other)s}
  split_errors_out: {type: sink.file, input: split.errors, path: %(split_errors)s}
  orders_errors_out: {type: sink.file, input: orders.errors, path: %(orders_errors)s}
  sel_out: {type: sink.file, input: selected, path: %(sel)s}
  sel_rejected_out: {type: sink.file, input: selected.rejected, path: %(sel_rejected)s}
  sel_errors_out: {type: sink.file, input: selected.errors, path: %(sel_errors)s}
  sel_fixed_out: {type: sink.file, input: selected_fixed, path: %(sel_fixed)s}
  sel_fixed_rejected_out: {type: sink.file, input: selected_fixed.rejected, path: %(sel_fixed_rejected)s}
  sel_fixed_errors_out: {type: sink.file, input: selected_fixed.errors, path: %(sel_fixed_errors)s}
"""

# Hand-made events inserted among the generated ones: (insert before line, JSON text).
EXTRAS = [
    (10, '{"id":"x-refund","type":"refund.issued","source":"billing","time":"2026-01-01T00:01:00Z",'
         '"data":{"orderId":"o-00000001","amount":5.5,"status":"PAID"}}'),
    (20000, '{"id":"x-notype","source":"billing","time":"2026-01-01T01:01:00.5+01:00",'
            '"data":{"orderId":"o-x","customerId":"cust-1","total":150.0,"status":"PAID"}}'),
    (40000, '{"id":"x-numtype","type":5,"source":"s","time":"2026-01-01T00:01:00Z","data":{}}'),
    (60000, '{"id":"x-nototal","type":"order.created","source":"order-service",'
            '"time":"2026-01-01T00:01:01Z","data":{"orderId":"o-x3","customerId":"cust-9","status":"PENDING"}}'),
    (80000, '{"id":"x-inttotal","type":"order.updated","source":"order-service",'
            '"time":"2026-01-01T00:02:00Z","data":{"orderId":"o-x4","customerId":"cust-9",'
            '"total":250,"status":"PAID","items":2}}'),
    (100000, '{"id":"x-strtotal","type":"order.updated","source":"order-service",'
             '"time":"2026-01-01T00:02:00.25Z","data":{"orderId":"o-x5","customerId":"cust-9",'
             '"total":"120.0","status":"PAID"}}'),
    (120000, '{"id":"x-nulltotal","type":"order.completed","source":"order-service",'
             '"time":"2026-01-01T00:02:01Z","data":{"orderId":"o-x6","customerId":"cust-3",'
             '"total":null,"status":"COMPLETED"}}'),
    (140000, '{"id":"x-datastr","type":"order.created","source":"order-service",'
             '"time":"2026-01-01T00:02:02Z","data":"oops"}'),
    (160000, '{"id":"x-negzero","type":"payment.processed","source":"payment-service",'
             '"time":"2026-01-01T00:02:03Z","data":{"id":"pay-x","orderId":"o-\\u00e9\\"q",'
             '"amount":-0.0,"status":"APPROVED"}}'),
    (180000, '{"id":"x-cust42","type":"order.completed","source":"order-service",'
             '"time":"2026-01-01T00:02:04Z","data":{"orderId":"o-x8","customerId":"cust-42",'
             '"total":200.5,"status":"COMPLETED","items":1}}'),
]


# ---- an independent evaluator of the pipeline's predicates ------------------------

class Err:
    """A CEL evaluation error (a value, as in CEL)."""
    def __init__(self, why):
        self.why = why

    def __repr__(self):
        return "Err(%s)" % self.why


def attr(ev, name):
    return ev[name] if name in ev else Err("no such key: '%s'" % name)


CEL_TYPE = {str: "string", int: "int", float: "double", bool: "bool", list: "list",
            type(None): "null"}


def field(ev, name):
    d = attr(ev, "data")
    if isinstance(d, Err):
        return d
    if not isinstance(d, dict):
        return Err("type '%s' does not support field selection" % CEL_TYPE[type(d)])
    return d[name] if name in d else Err("no such key: '%s'" % name)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def cmp(v, op, lit):
    """Ordering comparison v OP lit (lit a number): an error unless v is a number."""
    if isinstance(v, Err):
        return v
    if not is_num(v):
        return Err("no matching overload for '%s'" % op)
    return {">": v > lit, ">=": v >= lit, "<": v < lit, "<=": v <= lit}[op]


def cel_and(terms):
    """CEL's && over terms: false if any is false, else an error if any erred, else true."""
    if any(x is False for x in terms):
        return False
    errs = [x for x in terms if isinstance(x, Err)]
    return errs[0] if errs else True


def event_time(ev):
    v = attr(ev, "time")
    if isinstance(v, Err):
        return v
    ns = e2elib.parse_time(v)
    return ns if ns is not None else Err("time is not a timestamp")


def route(ev):
    """split: 'orders', 'payments', 'default' or 'errors' (first_match)."""
    typ = attr(ev, "type")
    if isinstance(typ, Err):
        r1 = r2 = typ
    else:
        r1 = typ.startswith("order.") if isinstance(typ, str) else Err("no matching overload")
        r2 = typ == "payment.processed"     # == on different types is false, not an error
    if r1 is True:
        return "orders"
    if r2 is True:
        return "payments"
    return "errors" if isinstance(r1, Err) or isinstance(r2, Err) else "default"


def transform(ev, fields):
    """{id, time, fields...} or the Err of the first field that fails."""
    out = {k: ev[k] for k in ("id", "time") if k in ev}
    for name, src in fields:
        v = field(ev, src)
        if isinstance(v, Err):
            return Err("field '%s': %s" % (name, v.why))
        out[name] = v
    return out


ORDER_FIELDS = [("orderId", "orderId"), ("customerId", "customerId"), ("amount", "total"),
                ("status", "status")]
PAYMENT_FIELDS = [("orderId", "orderId"), ("amount", "amount"), ("status", "status")]


def large(order):
    return cmp(order["amount"], ">", 100.0)


def selected(ev):
    typ = attr(ev, "type")
    t = event_time(ev)
    total = field(ev, "total")
    status = field(ev, "status")
    cust = field(ev, "customerId")
    terms = [
        typ if isinstance(typ, Err) else typ in SPEC_TYPES,
        t if isinstance(t, Err) else t >= START,
        t if isinstance(t, Err) else t < END,
        cmp(total, ">", 100),
        cmp(total, "<=", 400.5),
        status if isinstance(status, Err) else (isinstance(status, str) and status in SPEC_STATUS),
        cust if isinstance(cust, Err) else cust != "cust-42",
    ]
    return cel_and(terms)


# ---- comparing outputs ---------------------------------------------------------------

def compare_events(t, what, want, path, key_order=False):
    got = e2elib.read_jsonl(path)
    if len(got) != len(want):
        t.fail("%s: expected %d events, got %d" % (what, len(want), len(got)))
    for i, (w, g) in enumerate(zip(want, got)):
        if not e2elib.events_equal(w, g):
            t.fail("%s: event %d differs:\n  expected: %s\n  got:      %s"
                   % (what, i, json.dumps(w), json.dumps(g)))
        if key_order and list(g) != list(w):
            t.fail("%s: event %d: keys in order %s, expected %s" % (what, i, list(g), list(w)))
    t.ok("%s: %d events, each equal to the expected object (time as an instant)%s, in order"
         % (what, len(got), ", keys in order" if key_order else ""))
    return got


def compare_drops(t, what, operator, want, path, detail_re):
    """want: [(event, expected detail or None)]; detail_re checks the rest."""
    got = e2elib.read_jsonl(path)
    if len(got) != len(want):
        t.fail("%s: expected %d drop envelopes, got %d (ids %s...)"
               % (what, len(want), len(got), [g.get("original", {}).get("id") for g in got[:5]]))
    for i, ((ev, detail), g) in enumerate(zip(want, got)):
        bad = []
        if g.get("reason") != "eval_error":
            bad.append("reason %r, expected 'eval_error'" % g.get("reason"))
        if g.get("operator") != operator:
            bad.append("operator %r, expected %r" % (g.get("operator"), operator))
        if not e2elib.events_equal(ev, g.get("original")):
            bad.append("original %s, expected %s" % (json.dumps(g.get("original")), json.dumps(ev)))
        d = g.get("detail")
        if not isinstance(d, str) or (detail is not None and d != detail and
                                        not d.startswith(detail + " (")) or not re.search(detail_re, d):
            bad.append("detail %r, expected %r" % (d, detail if detail is not None else detail_re))
        if bad:
            t.fail("%s: envelope %d: %s" % (what, i, "; ".join(bad)))
    t.ok("%s: %d drop envelopes (reason eval_error, operator %s, the original event, the "
         "error message), in order" % (what, len(got), operator))


# ---- validate: diagnostics at the token -----------------------------------------------

def pos(text, needle, nth=1):
    """1-based (line, col) of the nth occurrence of needle in text."""
    idx = -1
    for _ in range(nth):
        idx = text.index(needle, idx + 1)
    line = text.count("\n", 0, idx) + 1
    return line, idx - (text.rfind("\n", 0, idx) + 1) + 1


VALIDATE_HEAD = """\
pipeline: bad-expressions
operators:
  events:
    type: source.file
    path: in.jsonl
"""
VALIDATE_TAIL = """\
  out:
    type: sink.null
    input: %s
"""

# name -> (operator text, input of the sink, needle of the token (text, nth), phrases)
BAD = {
    "plain": ("""\
  big:
    type: filter
    input: events
    where: type.startWith("order.") && data.total > 100.0
""", "big", ("startWith", 1), ["unknown function 'startWith'", "did you mean 'startsWith'?"]),
    "single_quoted": ("""\
  big:
    type: filter
    input: events
    where: 'data.total > 1 + 1.0'
""", "big", ("+", 1), ["no matching overload for '+' applied to (int, double)"]),
    "transform_flow_map": ("""\
  orders:
    type: transform
    input: events
    fields: {orderId: data.orderId, amount: size(1), status: data.status}
""", "orders", ("size(1)", 1), ["no matching overload for 'size' applied to (int)"]),
    "route": ("""\
  split:
    type: route
    input: events
    routes:
      orders: type.startsWith("order.")
      payments: type == "payment.processed" || data.amount > 1u + 1
""", "split.orders", ("+", 1), ["no matching overload for '+' applied to (uint, int)"]),
    "double_quoted_escapes": ("""\
  big:
    type: filter
    input: events
    where: "type == \\"order.created\\" && data.total > 1 + 1.0"
""", "big", ("+", 1), ["no matching overload for '+' applied to (int, double)"]),
    "plain_multiline": ("""\
  big:
    type: filter
    input: events
    where: type.startsWith("order.") &&
      data.total > 1 + 1.0
""", "big", ("+", 1), ["no matching overload for '+' applied to (int, double)"]),
    "folded_block": ("""\
  big:
    type: filter
    input: events
    where: >
      type.startsWith("order.") &&
      data.total > 1 + 1.0
""", "big", ("+", 1), ["no matching overload for '+' applied to (int, double)"]),
    "spec_bad_start_time": ("""\
  big:
    type: filter
    input: events
    types: [order.created]
    start_time: yesterday
""", "big", ("yesterday", 1), ["yesterday"]),
}

DIAG = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>.*)$")


def check_bad(t, d, name, body, sink_input, needle, phrases):
    text = VALIDATE_HEAD + body + VALIDATE_TAIL % sink_input
    fname = "bad_%s.yaml" % name
    t.write(os.path.join(d, fname), text)
    r = t.run(["validate", fname], cwd=d, timeout=30)
    err = r.stderr.decode("utf-8", "replace")
    line, col = pos(text, *needle)
    diags = [(int(m.group("line")), int(m.group("col")), m.group("msg"))
             for m in (DIAG.match(l) for l in err.splitlines()) if m and m.group("file") == fname]
    want = "%s:%d:%d: %s" % (fname, line, col, " ... ".join(phrases))
    if r.rc != 1 or len(diags) != 1 or diags[0][:2] != (line, col) or \
            not all(p in diags[0][2] for p in phrases):
        t.fail("%s: expected exit 1 and exactly one diagnostic %s (the token %r on that "
               "line: %r)\n%s" % (name, want, needle[0], text.splitlines()[line - 1], r.describe()))
    t.ok("%s: exit 1, %s:%d:%d: %s" % (name, fname, line, col, diags[0][2]))


# ---- the test ------------------------------------------------------------------------

def main(t):
    d = t.tmpdir()
    gen = t.gen_events(os.path.join(d, "gen.jsonl"), COUNT, SEED)
    with open(gen, "rb") as f:
        lines = f.read().decode("utf-8").splitlines()
    t.check_eq(len(lines), COUNT, "gen_events.py lines")
    for at, extra in sorted(EXTRAS, reverse=True):
        lines.insert(at, extra)
    src = t.write(os.path.join(d, "in.jsonl"), "\n".join(lines) + "\n")
    events = [json.loads(l) for l in lines]

    # ---- expected, from the JSON lines alone
    exp = {k: [] for k in SINKS}
    for ev in events:
        r = route(ev)
        if r == "orders":
            o = transform(ev, ORDER_FIELDS)
            if isinstance(o, Err):
                exp["orders_errors"].append((ev, o.why))
            else:
                exp["orders"].append(o)
                v = large(o)
                if isinstance(v, Err):
                    exp["large_errors"].append((o, None))
                elif v:
                    exp["large"].append(o)
        elif r == "payments":
            p = transform(ev, PAYMENT_FIELDS)
            if isinstance(p, Err):
                t.fail("unexpected: a payment without orderId/amount/status in the input")
            exp["payments"].append(p)
        elif r == "errors":
            exp["split_errors"].append((ev, None))
        else:
            exp["other"].append(ev)
        s = selected(ev)
        for pre in ("sel", "sel_fixed"):
            if isinstance(s, Err):
                exp[pre + "_errors"].append((ev, None))
            elif s:
                exp[pre].append(ev)
            else:
                exp[pre + "_rejected"].append(ev)
    t.log("expected: " + ", ".join("%s %d" % (k, len(v)) for k, v in exp.items()))
    # the input exercises every path
    for k in SINKS:
        t.check(len(exp[k]) > 0, "the input sends some events to %s (%d)" % (k, len(exp[k])))
    n_orders = sum(1 for e in events if isinstance(e.get("type"), str) and e["type"].startswith("order."))
    n_pay = sum(1 for e in events if e.get("type") == "payment.processed")
    t.check_eq(len(exp["orders"]) + len(exp["orders_errors"]), n_orders,
               "orders routed = events whose type starts with 'order.'")
    t.check_eq(len(exp["payments"]), n_pay, "payments routed = payment.processed events")
    t.check_eq(len(exp["orders"]) + len(exp["orders_errors"]) + len(exp["payments"]) +
               len(exp["other"]) + len(exp["split_errors"]), len(events),
               "every event leaves split by exactly one port")

    outs = {}

    def run(tag, extra_args):
        od = os.path.join(d, tag)
        paths = {k: e2elib.yaml_str(os.path.join(od, k + ".jsonl")) for k in SINKS}
        pipe = e2elib.write_pipeline(os.path.join(d, tag + ".yaml"), PIPELINE % dict(
            paths, input=e2elib.yaml_str(src), spec=SPEC))
        r = t.run(["validate", pipe], cwd=d, timeout=30)
        t.check_rc(r, 0, "%s: sluice validate" % tag)
        r = t.run(["run", pipe, "--no-progress"] + extra_args, cwd=d, timeout=180)
        t.check_rc(r, 0, "%s: sluice run%s" % (tag, "".join(" " + a for a in extra_args)))
        outs[tag] = {k: os.path.join(od, k + ".jsonl") for k in SINKS}
        return outs[tag]

    o = run("default", [])
    # counts first: one line says it all when something is off
    got_counts = {k: e2elib.count_lines(p) for k, p in o.items()}
    t.check_eq(got_counts, {k: len(v) for k, v in exp.items()}, "events per sink")

    got_orders = compare_events(t, "orders (transform)", exp["orders"], o["orders"], key_order=True)
    compare_events(t, "payments (transform)", exp["payments"], o["payments"], key_order=True)
    got_large = compare_events(t, "large_orders (amount > 100.0)", exp["large"], o["large"],
                               key_order=True)
    compare_events(t, "split.default", exp["other"], o["other"])
    for pre, op in (("sel", "selected"), ("sel_fixed", "selected_fixed")):
        compare_events(t, op + " (spec) out", exp[pre], o[pre])
        compare_events(t, op + " (spec) rejected", exp[pre + "_rejected"], o[pre + "_rejected"])
        compare_drops(t, op + " (spec) errors", op, exp[pre + "_errors"], o[pre + "_errors"],
                      r"^no such key: '\w+'$|^no matching overload")
    compare_drops(t, "split.errors", "split", exp["split_errors"], o["split_errors"],
                  r"^no such key: 'type'$|^no matching overload for 'startsWith'")
    compare_drops(t, "orders.errors", "orders", exp["orders_errors"], o["orders_errors"],
                  r"^field '\w+': ")
    compare_drops(t, "large_orders.errors", "large_orders", exp["large_errors"],
                  o["large_errors"], r"^no matching overload for '>'")

    # a few values spelled out
    by_id = {e["id"]: e for e in got_orders}
    t.check(by_id.get("x-inttotal", {}).get("amount") == 250 and
            type(by_id["x-inttotal"]["amount"]) is int,
            "an int total stays an int: x-inttotal amount = 250", repr(by_id.get("x-inttotal")))
    t.check("x-inttotal" in {e["id"] for e in got_large},
            "250 (int) > 100.0 (double) holds: x-inttotal is a large order")
    t.check(by_id.get("x-nulltotal", {}).get("amount", 0) is None,
            "a null total is copied as null", repr(by_id.get("x-nulltotal")))
    first = events[0]
    want_first = {"id": first["id"], "time": first["time"], "orderId": first["data"]["orderId"],
                  "customerId": first["data"]["customerId"], "amount": first["data"]["total"],
                  "status": first["data"]["status"]}
    t.check(bool(got_orders) and e2elib.events_equal(got_orders[0], want_first),
            "the first order: %s" % json.dumps(want_first),
            "got %s" % (json.dumps(got_orders[0]) if got_orders else None))
    want_sum = math.fsum(e["amount"] for e in exp["large"])
    got_sum = math.fsum(e["amount"] for e in got_large)
    t.check_eq(got_sum, want_sum, "sum of large_orders amounts")
    pays = e2elib.read_jsonl(o["payments"])
    neg = [p for p in pays if p["id"] == "x-negzero"]
    t.check(len(neg) == 1 and neg[0]["orderId"] == 'o-\u00e9"q' and
            math.copysign(1.0, neg[0]["amount"]) < 0 and neg[0]["amount"] == 0.0,
            "payment x-negzero: orderId 'o-\u00e9\"q', amount -0.0", repr(neg))

    # fusion must not change results
    u = run("no_fusion", ["--no-fusion"])
    for k in SINKS:
        if k.endswith("errors"):
            # Drop envelopes carry the time they were made: compare without it.  A
            # reordering filter's detail names the error of whichever erring term
            # ran last, and the order comes from timings: compare without it there.
            drop = {"time": None, "detail": None} if k == "sel_errors" else {"time": None}

            def strip(p):
                return [json.dumps(dict(e, **drop), sort_keys=True) for e in e2elib.read_jsonl(p)]
            same = strip(o[k]) == strip(u[k])
        else:
            with open(o[k], "rb") as f, open(u[k], "rb") as g:
                same = f.read() == g.read()
        t.check(same, "--no-fusion writes the same %s as the default plan" % k)

    # ---- validate: diagnostics at the offending token
    vd = t.tmpdir("validate")
    failures = []
    for name, (body, sink_input, needle, phrases) in BAD.items():
        try:
            check_bad(t, vd, name, body, sink_input, needle, phrases)
        except e2elib.Failure as e:
            print("FAIL (%s): %s" % (name, e), flush=True)
            failures.append(name)
    if failures:
        t.fail("validate: %d of %d bad-expression cases failed: %s"
               % (len(failures), len(BAD), ", ".join(failures)))


if __name__ == "__main__":
    e2elib.main(main)
