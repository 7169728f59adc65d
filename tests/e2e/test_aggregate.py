#!/usr/bin/env python3
"""The windowed `aggregate` end to end, every expected row computed here,
independently, from the input's JSON lines.

1. Order analytics on 200000 events from gen_events.py (seed 11) plus one
   order whose total is null:

     source.file (watermark: {max_out_of_order: 10s}) -> route split
       (orders: type.startsWith("order.")) -> transform orders {orderId,
       customerId, amount: data.total, status} -> aggregate metrics
       (windows [{tumbling: 1m}, {hopping: 10m, every: 5m}], group_by
       [[], [status], [customerId]], where status != "CANCELLED", count,
       sum, avg, min, max, count_distinct x2, percentile x2, first, last)
       -> sink.file; metrics.late and metrics.errors -> sink.file.

   gen_events.py's events are at most ~6 s out of order, so with 10 s none
   is late and every figure is exact.  The output is compared with the
   expectation as a multiset keyed by (window start, window end, group): no
   row missing, none extra, none twice; count and first/last exactly; sum,
   avg with a relative 1e-9; min/max exactly, of the input's type;
   count_distinct within max(2%, 1); percentile(x, q) within 1% of the exact
   value of rank floor(q*(n-1)).  `time` is the window end, the computed
   names come in the order written.
   The same run again: without the source's watermark and with --no-fusion
   (every window flushed at end of stream: the same expectation), and with
   `parallelism: 2` on group_by [[customerId]], which must write exactly the
   [customerId] rows of the parallelism 1 run.

2. Session windows ({session: 30s}) on a hand-made stream, no watermark
   (they fire at end of stream): merging, an out-of-order event that bridges
   two sessions, two events exactly 30 s apart (not
   merged), group_by items as a path (named by its last segment) and as a
   `{name: expr}` map, int and double sums, a null value (counted by count(),
   ignored by the rest), and events whose group_by or compute expression
   fails (missing field) leaving by `errors` and aggregated nowhere.

3. Lateness with `batch: {max_events: 1, linger: 1ms}` (the watermark moves
   event by event): which events leave by `late` (one exactly at the
   watermark's boundary, one late for some windows but counted in another
   still open, one late for all), and with `allowed_lateness: 30s` the
   re-emissions with "update": true (one per input batch that changed the
   window), then lateness once the window's state is gone.

4. `sluice validate` on bad aggregates: exit 1 and file:line:col at the
   offending node (an unknown function in compute, a bad window duration,
   parallelism 2 with a grouping set that holds no partitioning key).

5. A memory budget: the pipeline of 1 on 100000 events (seed 5) with
   `memory: 64KiB` on the aggregate, whose state then spills to LMDB under
   state_dir, writes exactly the rows of the default budget (as a multiset,
   every value identical, the same JSON)."""
import collections
import json
import math
import os
import re

import e2elib

COUNT = 200000
SEED = 11
SEC = 1000000000
T0 = e2elib.parse_time("2026-01-01T00:00:00Z")

# the orders' figures, in the order written (the output must keep it)
COMPUTE = [
    ("orders", "count()"),
    ("revenue", "sum(amount)"),
    ("avg_amount", "avg(amount)"),
    ("min_amount", "min(amount)"),
    ("max_amount", "max(amount)"),
    ("customers", "count_distinct(customerId)"),
    ("distinct_orders", "count_distinct(orderId)"),
    ("p95_amount", "percentile(amount, 0.95)"),
    ("p50_amount", "percentile(amount, 0.5)"),
    ("first_order", "first(orderId)"),
    ("last_order", "last(orderId)"),
]

PIPELINE = """\
pipeline: aggregate-e2e
state_dir: %(state)s
batch: {max_events: 1024, linger: 5ms}
operators:
  events:
    type: source.file
    path: %(input)s
    format: jsonl
%(watermark)s
  split:
    type: route
    input: events
    routes:
      orders: type.startsWith("order.")

  orders:
    type: transform
    input: split.orders
    fields:
      orderId: data.orderId
      customerId: data.customerId
      amount: data.total
      status: data.status

  metrics:
    type: aggregate
    input: orders
    windows: [{tumbling: 1m}, {hopping: 10m, every: 5m}]
    group_by: %(group_by)s
    where: status != "CANCELLED"
    allowed_lateness: 0s
%(parallelism)s%(memory)s    compute:
%(compute)s
  metrics_out: {type: sink.file, input: metrics, path: %(out)s}
  late_out: {type: sink.file, input: metrics.late, path: %(late)s}
  errors_out: {type: sink.file, input: metrics.errors, path: %(errors)s}
"""

# One order with a null total, among the generated events (insert before line, JSON).
NULL_ORDER_AT = 100000
NULL_ORDER = ('{"id":"x-nulltotal","type":"order.completed","source":"order-service",'
              '"time":"2026-01-01T00:01:40.000Z","data":{"orderId":"o-x-null",'
              '"customerId":"cust-3","total":null,"status":"COMPLETED","items":1}}')


# ---- expected values and how a got value is compared with one ---------------------

class Exact:
    """The same JSON value and type (int, double, string)."""
    def __init__(self, v):
        self.v = v

    def ok(self, g):
        return e2elib.json_equal(self.v, g)

    def __repr__(self):
        return json.dumps(self.v)


class Num:
    """A number equal in value (int or double): min/max over mixed int and double."""
    def __init__(self, v):
        self.v = v

    def ok(self, g):
        return isinstance(g, (int, float)) and not isinstance(g, bool) and g == self.v

    def __repr__(self):
        return "%r (int or double)" % self.v


class Rel:
    """A double within a relative tolerance (sum, avg)."""
    def __init__(self, v, tol=1e-9):
        self.v, self.tol = v, tol

    def ok(self, g):
        return type(g) is float and abs(g - self.v) <= self.tol * max(abs(self.v), 1e-300)

    def __repr__(self):
        return "%r (double, relative %g)" % (self.v, self.tol)


class Hll:
    """count_distinct: an int within max(2%, 1) of the exact count."""
    def __init__(self, n):
        self.n = n

    def ok(self, g):
        return type(g) is int and abs(g - self.n) <= max(0.02 * self.n, 1)

    def __repr__(self):
        return "%d (int, +-max(2%%, 1))" % self.n


class Pct:
    """percentile: a double within 1% of the exact value."""
    def __init__(self, v):
        self.v = v

    def ok(self, g):
        return type(g) is float and abs(g - self.v) <= 0.01 * abs(self.v) + 1e-12

    def __repr__(self):
        return "%r (double, +-1%%)" % self.v


class Any:
    """Not specified (e.g. min over a group whose values were all null)."""
    def ok(self, g):
        return True

    def __repr__(self):
        return "(anything)"


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def expect_numeric(vals):
    """Expected sum/avg/min/max of the non-null values (None: not specified)."""
    vals = [v for v in vals if v is not None]
    if not vals:
        return Any(), Any(), Any(), Any()
    all_int = all(type(v) is int for v in vals)
    all_float = all(type(v) is float for v in vals)
    s = sum(vals) if all_int else math.fsum(vals)
    total = Exact(s) if all_int else Rel(float(s))
    avg = Rel(math.fsum(vals) / len(vals))
    lo, hi = min(vals), max(vals)
    if all_int or all_float:
        return total, avg, Exact(lo), Exact(hi)
    return total, avg, Num(lo), Num(hi)


def exact_percentile(vals, q):
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return Any()
    return Pct(float(vals[int(math.floor(q * (len(vals) - 1)))]))


# ---- reading and comparing the aggregate's output -------------------------------

def row_key(row):
    """(start ns, end ns, group as canonical JSON) of an output row, or None."""
    w = row.get("window") if isinstance(row, dict) else None
    if not isinstance(w, dict):
        return None
    s, e = w.get("start"), w.get("end")
    if not (isinstance(s, str) and isinstance(e, str) and s.endswith("Z") and e.endswith("Z")):
        return None
    s, e = e2elib.parse_time(s), e2elib.parse_time(e)
    g = row.get("group")
    if s is None or e is None or not isinstance(g, dict):
        return None
    return (s, e, json.dumps(g, sort_keys=True))


def fmt_ns(ns):
    """RFC 3339 text of ns (UTC), with milliseconds unless finer digits are needed."""
    s = repr(e2elib.Instant(ns))[8:-1]       # ...T00:00:00.000000000Z
    return s[:23] + "Z" if s.endswith("000000Z") else s


def fmt_key(k):
    return "[%s, %s) group %s" % (fmt_ns(k[0]), fmt_ns(k[1]), k[2])


def row_problems(row, key, want, names):
    """What is wrong with one output row against its expectation (a dict
    name -> expected, plus "update": bool)."""
    bad = []
    keys = list(row)
    fixed = {"window", "group", "time"}
    if want.get("update"):
        fixed.add("update")
        if row.get("update") is not True:
            bad.append("'update' is %r, expected true" % row.get("update"))
    elif "update" in row:
        bad.append("'update' present (%r) in a first emission" % row["update"])
    if set(keys) != fixed | set(names):
        bad.append("keys %s, expected %s" % (sorted(keys), sorted(fixed | set(names))))
    elif [k for k in keys if k in names] != list(names):
        bad.append("computed names in order %s, expected %s (as written)"
                   % ([k for k in keys if k in names], list(names)))
    tm = row.get("time")
    if not (isinstance(tm, str) and e2elib.parse_time(tm) == key[1]):
        bad.append("time %r, expected the window end %s" % (tm, fmt_ns(key[1])))
    for n in names:
        if n in row and not want[n].ok(row[n]):
            bad.append("%s = %s, expected %r" % (n, json.dumps(row[n]), want[n]))
    return bad


def compare_rows(t, what, path, want, names, max_report=8):
    """want: {key: [expected row, ...]} (several only for updates, in order).
    The output is a multiset: rows of different keys in any order; the rows
    of one key in the order expected."""
    rows = e2elib.read_jsonl(path)
    got = collections.OrderedDict()
    bad = []
    for i, r in enumerate(rows, 1):
        k = row_key(r)
        if k is None:
            bad.append("line %d has no window {start, end} (RFC 3339, ...Z) and group map: %s"
                       % (i, json.dumps(r)[:300]))
            continue
        got.setdefault(k, []).append(r)
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    for k, wl in want.items():
        gl = got.get(k)
        if gl is None:
            continue
        if len(gl) != len(wl):
            bad.append("%s: %d row(s), expected %d:\n      %s"
                       % (fmt_key(k), len(gl), len(wl), "\n      ".join(json.dumps(g) for g in gl)))
            continue
        for j, (g, w) in enumerate(zip(gl, wl)):
            p = row_problems(g, k, w, names)
            if p:
                bad.append("%s%s: %s\n      got: %s"
                           % (fmt_key(k), " (row %d of the key)" % (j + 1) if len(wl) > 1 else "",
                              "; ".join(p), json.dumps(g)))
    n_want = sum(len(v) for v in want.values())
    if missing or extra or bad:
        msg = ["%s: %d rows out, %d expected (%d keys missing, %d extra, %d rows differ)"
               % (what, len(rows), n_want, len(missing), len(extra), len(bad))]
        msg += ["  missing: %s" % fmt_key(k) for k in missing[:max_report]]
        msg += ["  extra:   %s: %s" % (fmt_key(k), json.dumps(got[k][0])) for k in extra[:max_report]]
        msg += ["  " + b for b in bad[:max_report]]
        t.fail("\n".join(msg))
    t.ok("%s: %d rows, each (window, group) expected exactly once%s, every figure within "
         "its tolerance" % (what, len(rows), " (or with its updates)" if n_want > len(want) else ""))
    return rows


def compare_drops(t, what, path, operator, reason, want_ids, by_id):
    """Drop envelopes with `reason` from `operator`, whose originals are exactly
    the events want_ids (as a set: one envelope per event, or more)."""
    got = e2elib.read_jsonl(path)
    bad = []
    ids = []
    for i, g in enumerate(got, 1):
        o = g.get("original") if isinstance(g, dict) else None
        oid = o.get("id") if isinstance(o, dict) else None
        ids.append(oid)
        if g.get("reason") != reason or g.get("operator") != operator:
            bad.append("line %d: reason %r operator %r, expected %r %r"
                       % (i, g.get("reason"), g.get("operator"), reason, operator))
        elif oid not in by_id or not e2elib.events_equal(by_id[oid], o):
            bad.append("line %d: original %s is not one of the input events"
                       % (i, json.dumps(o)[:300]))
        elif not isinstance(g.get("detail"), str):
            bad.append("line %d: no detail text: %s" % (i, json.dumps(g)[:300]))
    if bad or set(ids) != set(want_ids):
        t.fail("%s: expected envelopes (reason %s, operator %s) for exactly %s, got %d for %s%s"
               % (what, reason, operator, sorted(want_ids), len(got), ids,
                  "".join("\n  " + b for b in bad[:8])))
    t.ok("%s: %d envelope(s) (reason %s, operator %s, the original event) for exactly %s"
         % (what, len(got), reason, operator, sorted(want_ids) if want_ids else "no event"))
    return got


def run_pipeline(t, d, tag, text, extra_args=(), timeout=120):
    pipe = e2elib.write_pipeline(os.path.join(d, tag + ".yaml"), text)
    r = t.run(["validate", pipe], cwd=d, timeout=30)
    t.check_rc(r, 0, "%s: sluice validate" % tag)
    r = t.run(["run", pipe, "--no-progress"] + list(extra_args), cwd=d, timeout=timeout)
    t.check_rc(r, 0, "%s: sluice run%s" % (tag, "".join(" " + a for a in extra_args)))
    return r


# ---- 1. order analytics on gen_events.py output ---------------------------------

def floor_div(a, b):
    return a // b   # Python floors: right for times before the epoch too


def windows_of(t_ns):
    """[(start, end)] of the main pipeline's windows holding t: the 1-minute
    tumbling window, then every 10-minute window starting at a multiple of 5."""
    out = []
    m = 60 * SEC
    s = floor_div(t_ns, m) * m
    out.append((s, s + m))
    d, e = 600 * SEC, 300 * SEC
    k = floor_div(t_ns - d, e) + 1
    while k * e <= t_ns:
        out.append((k * e, k * e + d))
        k += 1
    return out


def expected_orders(orders, grouping):
    """{key: [expected row]} for the main aggregate over `orders`: dicts with
    orderId, customerId, amount, status, and the event time `t` (ns), in
    arrival order, already through `where`.  grouping: names of the grouping
    sets' fields, e.g. [[], ["status"], ["customerId"]]."""
    accs = collections.defaultdict(list)
    gkeys = [[(json.dumps({f: o[f] for f in gs}, sort_keys=True)) for gs in grouping]
             for o in orders]
    for i, o in enumerate(orders):
        for w in windows_of(o["t"]):
            for gk in gkeys[i]:
                accs[(w[0], w[1], gk)].append(i)
    want = {}
    for k, idx in accs.items():
        evs = [orders[i] for i in idx]
        amounts = [o["amount"] for o in evs]
        total, avg, lo, hi = expect_numeric(amounts)
        # first/last: smallest/largest event time; ties: first/last arrival
        first = min(range(len(evs)), key=lambda j: (evs[j]["t"], j))
        last = max(range(len(evs)), key=lambda j: (evs[j]["t"], j))
        want[k] = [{
            "orders": Exact(len(evs)),
            "revenue": total,
            "avg_amount": avg,
            "min_amount": lo,
            "max_amount": hi,
            "customers": Hll(len({o["customerId"] for o in evs})),
            "distinct_orders": Hll(len({o["orderId"] for o in evs})),
            "p95_amount": exact_percentile(amounts, 0.95),
            "p50_amount": exact_percentile(amounts, 0.5),
            "first_order": Exact(evs[first]["orderId"]),
            "last_order": Exact(evs[last]["orderId"]),
        }]
    return want


def run_orders(t, d, tag, src, group_by, watermark=True, parallelism=0, memory=None,
               extra_args=()):
    """PIPELINE over src (in d, files named after tag): checks that nothing left by
    metrics.late or metrics.errors and returns the path of the rows written."""
    paths = {k: os.path.join(d, "%s-%s.jsonl" % (tag, k)) for k in ("out", "late", "errors")}
    text = PIPELINE % dict(
        state=e2elib.yaml_str(os.path.join(d, tag + "-state")),
        input=e2elib.yaml_str(src),
        watermark="    watermark: {max_out_of_order: 10s}\n" if watermark else "",
        group_by=group_by,
        parallelism="    parallelism: %d\n" % parallelism if parallelism else "",
        memory="    memory: %s\n" % memory if memory else "",
        compute="".join("      %s: %s\n" % (n, e) for n, e in COMPUTE),
        **{k: e2elib.yaml_str(p) for k, p in paths.items()})
    run_pipeline(t, d, tag, text, extra_args, timeout=180)
    by_id = {}
    compare_drops(t, tag + ": metrics.late", paths["late"], "metrics", "late", [], by_id)
    compare_drops(t, tag + ": metrics.errors", paths["errors"], "metrics", "eval_error", [], by_id)
    return paths["out"]


def order_analytics(t):
    d = t.tmpdir("orders")
    gen = t.gen_events(os.path.join(d, "gen.jsonl"), COUNT, SEED)
    with open(gen, "rb") as f:
        lines = f.read().decode("utf-8").splitlines()
    t.check_eq(len(lines), COUNT, "gen_events.py lines")
    lines.insert(NULL_ORDER_AT, NULL_ORDER)
    src = t.write(os.path.join(d, "in.jsonl"), "\n".join(lines) + "\n")

    # ---- expected, from the JSON lines alone
    orders = []
    max_seen = None
    max_ooo = 0
    for line in lines:
        ev = json.loads(line)
        ns = e2elib.parse_time(ev["time"])
        if max_seen is not None:
            max_ooo = max(max_ooo, max_seen - ns)
        max_seen = ns if max_seen is None else max(max_seen, ns)
        if not ev["type"].startswith("order."):
            continue
        dt = ev["data"]
        if dt["status"] == "CANCELLED":      # where: status != "CANCELLED"
            continue
        orders.append({"orderId": dt["orderId"], "customerId": dt["customerId"],
                       "amount": dt["total"], "status": dt["status"], "t": ns})
    t.check(max_ooo < 10 * SEC, "the input is at most %.3f s out of order (< max_out_of_order "
            "10s: no event is late)" % (max_ooo / SEC))
    names = [n for n, _ in COMPUTE]
    want = expected_orders(orders, [[], ["status"], ["customerId"]])
    n_tumbling = sum(1 for k in want if k[1] - k[0] == 60 * SEC)
    n_hopping = sum(1 for k in want if k[1] - k[0] == 600 * SEC)
    t.log("expected: %d orders aggregated, %d rows (%d tumbling 1m, %d hopping 10m/5m)"
          % (len(orders), len(want), n_tumbling, n_hopping))
    t.check(n_hopping > 0 and any(k[0] < T0 for k in want),
            "the input reaches a hopping window that starts before the first event "
            "(2025-12-31T23:55:00Z)")
    null_keys = [k for k in want if k[1] - k[0] == 60 * SEC and k[2] == '{"customerId": "cust-3"}'
                 and k[0] <= T0 + 100 * SEC < k[1]]
    t.check(len(null_keys) == 1 and want[null_keys[0]][0]["orders"].v >= 2,
            "the null total shares its 1-minute cust-3 window with other orders "
            "(so min/max/avg there are specified)")

    def run(tag, group_by, **kw):
        return run_orders(t, d, tag, src, group_by, **kw)

    main_out = run("main", "[[], [status], [customerId]]")
    rows = compare_rows(t, "main (watermark 10s)", main_out, want, names)

    # a few figures spelled out (the comparison above checks them all)
    by_key = {row_key(r): r for r in rows}
    k = null_keys[0]
    evs = [o for o in orders if o["customerId"] == "cust-3" and k[0] <= o["t"] < k[1]]
    r = by_key[k]
    t.check(r["orders"] == len(evs) and isinstance(r["min_amount"], float),
            "the null total counts in count() (%d orders for cust-3 in %s) and is ignored "
            "by min/max/sum/avg" % (len(evs), fmt_key(k)), json.dumps(r))
    paid = (T0, T0 + 60 * SEC, '{"status": "PAID"}')
    want_paid = [o for o in orders if o["status"] == "PAID" and T0 <= o["t"] < T0 + 60 * SEC]
    t.check(paid in by_key and by_key[paid]["orders"] == len(want_paid),
            "the first minute has %d PAID orders, revenue %.2f" %
            (len(want_paid), math.fsum(o["amount"] for o in want_paid)),
            json.dumps(by_key.get(paid)))

    # every window flushed at end of stream (no watermark), one thread per operator
    nowm = run("no_watermark", "[[], [status], [customerId]]", watermark=False,
               extra_args=["--no-fusion"])
    compare_rows(t, "no watermark, --no-fusion (flushed at end of stream)", nowm, want, names)

    # parallelism 2 keyed by customerId: exactly the parallelism 1 rows
    par = run("parallel", "[[customerId]]", parallelism=2)
    want_c = {k: v for k, v in want.items() if k[2].startswith('{"customerId"')}
    par_rows = compare_rows(t, "parallelism 2, group_by [[customerId]]", par, want_c, names)
    canon = lambda r: json.dumps(r, sort_keys=True)
    one = sorted(canon(r) for r in rows if row_key(r)[2].startswith('{"customerId"'))
    two = sorted(canon(r) for r in par_rows)
    if one != two:
        diff = sorted(set(one) ^ set(two))[:6]
        t.fail("parallelism 2 does not write the same [customerId] rows as parallelism 1 "
               "(%d vs %d rows); some that differ:\n  %s" % (len(two), len(one), "\n  ".join(diff)))
    t.ok("parallelism 2 writes exactly the [customerId] rows of parallelism 1 (%d rows, "
         "every value identical)" % len(two))


# ---- 2. session windows on a hand-made stream ------------------------------------

def at(s):
    """RFC 3339 text of T0 + s seconds (s may have a fraction of ms precision)."""
    ms = int(round(s * 1000))
    sec, ms = divmod(ms, 1000)
    return "%s.%03dZ" % (fmt_ns(T0 + sec * SEC)[:19], ms)


def ev(eid, s, data):
    return {"id": eid, "type": "sample", "source": "e2e", "time": at(s), "data": data}


SESSION_EVENTS = [          # in arrival order
    ev("a1", 0, {"user": "a", "amount": 10, "item": "x"}),
    ev("a2", 10, {"user": "a", "amount": 20, "item": "y"}),
    ev("a3", 35, {"user": "a", "amount": 5, "item": "x"}),      # 25 s after a2: merged
    ev("b0", 60, {"user": "b", "amount": 3, "item": "z"}),
    ev("a4", 70, {"user": "a", "amount": 7, "item": "z"}),      # 35 s after a3: a new session
    ev("b1", 100, {"user": "b", "amount": 1.5, "item": "x"}),   # 40 s after b0: new
    ev("b2", 150, {"user": "b", "amount": 2.5, "item": "x"}),   # 50 s after b1: new ...
    ev("b3", 125, {"user": "b", "amount": None, "item": "y"}),  # ... until b3 bridges them
    ev("c1", 200, {"user": "c", "amount": 4, "item": "x"}),
    ev("d1", 215, {"user": "c", "item": "x"}),                  # no amount: errors
    ev("c2", 230, {"user": "c", "amount": 6, "item": "y"}),     # exactly 30 s after c1
    ev("e1", 255, {"amount": 1, "item": "x"}),                  # no user: errors
]

SESSION_COMPUTE = [("n", "count()"), ("total", "sum(data.amount)"), ("mean", "avg(data.amount)"),
                   ("lo", "min(data.amount)"), ("hi", "max(data.amount)"),
                   ("items", "count_distinct(data.item)"),
                   ("p50", "percentile(data.amount, 0.5)"),
                   ("first_id", "first(id)"), ("last_id", "last(id)")]

SESSION_PIPELINE = """\
pipeline: aggregate-sessions
state_dir: %(state)s
operators:
  events:
    type: source.file
    path: %(input)s
  sessions:
    type: aggregate
    input: events
    windows: [{session: 30s}]
    group_by: [[], [data.user], [{who: data.user.upper()}]]
    compute:
%(compute)s
  out: {type: sink.file, input: sessions, path: %(out)s}
  late: {type: sink.file, input: sessions.late, path: %(late)s}
  errors: {type: sink.file, input: sessions.errors, path: %(errors)s}
"""


def session_rows():
    """The expected rows, by hand (start s, end s, group, figures)."""
    def row(n, total, mean, lo, hi, items, p50, first, last):
        return {"n": Exact(n), "total": total, "mean": Rel(mean), "lo": lo, "hi": hi,
                "items": Hll(items), "p50": Pct(p50), "first_id": Exact(first),
                "last_id": Exact(last)}
    a_0 = row(3, Exact(35), 35 / 3, Exact(5), Exact(20), 2, 10.0, "a1", "a3")
    a_70 = row(1, Exact(7), 7.0, Exact(7), Exact(7), 1, 7.0, "a4", "a4")
    b_60 = row(1, Exact(3), 3.0, Exact(3), Exact(3), 1, 3.0, "b0", "b0")
    # b1, b2 and b3 (amount null): count() 3, the rest over 1.5 and 2.5
    b_100 = row(3, Rel(4.0), 2.0, Exact(1.5), Exact(2.5), 2, 1.5, "b1", "b2")
    c_200 = row(1, Exact(4), 4.0, Exact(4), Exact(4), 1, 4.0, "c1", "c1")
    c_230 = row(1, Exact(6), 6.0, Exact(6), Exact(6), 1, 6.0, "c2", "c2")
    # all users: 0..35 and b0 at 60, a4 at 70 merge; b1 is exactly 30 s after a4
    all_0 = row(5, Exact(45), 9.0, Exact(3), Exact(20), 3, 7.0, "a1", "a4")
    want = {}
    for s, e, g, r in [(0, 100, {}, all_0), (100, 180, {}, b_100), (200, 230, {}, c_200),
                       (230, 260, {}, c_230)]:
        want[(T0 + s * SEC, T0 + e * SEC, json.dumps(g, sort_keys=True))] = [r]
    for user, sessions in (("a", [(0, 65, a_0), (70, 100, a_70)]),
                           ("b", [(60, 90, b_60), (100, 180, b_100)]),
                           ("c", [(200, 230, c_200), (230, 260, c_230)])):
        for s, e, r in sessions:
            for g in ({"user": user}, {"who": user.upper()}):
                want[(T0 + s * SEC, T0 + e * SEC, json.dumps(g, sort_keys=True))] = [r]
    return want


def sessions(t):
    d = t.tmpdir("sessions")
    src = t.write(os.path.join(d, "in.jsonl"),
                  "".join(json.dumps(e) + "\n" for e in SESSION_EVENTS))
    paths = {k: os.path.join(d, k + ".jsonl") for k in ("out", "late", "errors")}
    text = SESSION_PIPELINE % dict(
        state=e2elib.yaml_str(os.path.join(d, "state")), input=e2elib.yaml_str(src),
        compute="".join("      %s: %s\n" % c for c in SESSION_COMPUTE),
        **{k: e2elib.yaml_str(p) for k, p in paths.items()})
    run_pipeline(t, d, "sessions", text, timeout=30)
    by_id = {e["id"]: e for e in SESSION_EVENTS}
    compare_rows(t, "sessions (30s)", paths["out"], session_rows(),
                 [n for n, _ in SESSION_COMPUTE])
    compare_drops(t, "sessions.errors (a missing compute or group_by field)", paths["errors"],
                  "sessions", "eval_error", ["d1", "e1"], by_id)
    compare_drops(t, "sessions.late (no watermark: nothing is late)", paths["late"], "sessions",
                  "late", [], by_id)


# ---- 3. lateness, watermark event by event ----------------------------------------

LATE_PIPELINE = """\
pipeline: aggregate-lateness
state_dir: %(state)s
batch: {max_events: 1, linger: 1ms}
operators:
  events:
    type: source.file
    path: %(input)s
    watermark: {max_out_of_order: 10s}
  agg:
    type: aggregate
    input: events
    windows: %(windows)s
    group_by: %(group_by)s
%(lateness)s    compute:
      n: count()
      mask: sum(data.v)
      first_id: first(id)
      last_id: last(id)
  out: {type: sink.file, input: agg, path: %(out)s}
  late: {type: sink.file, input: agg.late, path: %(late)s}
  errors: {type: sink.file, input: agg.errors, path: %(errors)s}
"""
LATE_NAMES = ["n", "mask", "first_id", "last_id"]


def late_events(spec):
    """[(id, seconds)] -> events whose data.v = 2^i says which were aggregated."""
    return [ev(eid, s, {"k": "x", "v": 1 << i}) for i, (eid, s) in enumerate(spec)]


# Tumbling 1m and hopping 2m/1m, allowed_lateness 0; watermark = max - 10 s.
LATE_SPEC = [
    ("L0", 5),        # wm -5
    ("L1", 30),       # wm 20
    ("L2", 70),       # wm 60: [0,1m) and [-1m,1m) fire (watermark >= end)
    ("L3", 59.999),   # late for [0,1m) and [-1m,1m) (end <= wm); counts in [0,2m)
    ("L4", 65),       # wm 60
    ("L5", 135),      # wm 125: [1m,2m) and [0,2m) fire
    ("L6", 119.5),    # late for [1m,2m) and [0,2m); counts in [1m,3m)
    ("L7", 50),       # late for all of its windows
    ("L8", 130),      # wm 125
]


def late_rows():
    def row(n, mask, first, last):
        return [{"n": Exact(n), "mask": Exact(mask), "first_id": Exact(first),
                 "last_id": Exact(last)}]
    m = {eid: 1 << i for i, (eid, _) in enumerate(LATE_SPEC)}
    g = json.dumps({"k": "x"})
    w = lambda s, e: (T0 + s * SEC, T0 + e * SEC, g)
    return {
        # tumbling 1m
        w(0, 60): row(2, m["L0"] + m["L1"], "L0", "L1"),
        w(60, 120): row(2, m["L2"] + m["L4"], "L4", "L2"),              # by event time
        w(120, 180): row(2, m["L5"] + m["L8"], "L8", "L5"),
        # hopping 2m every 1m
        w(-60, 60): row(2, m["L0"] + m["L1"], "L0", "L1"),
        w(0, 120): row(5, m["L0"] + m["L1"] + m["L2"] + m["L3"] + m["L4"], "L0", "L2"),
        w(60, 180): row(5, m["L2"] + m["L4"] + m["L5"] + m["L6"] + m["L8"], "L4", "L5"),
        w(120, 240): row(2, m["L5"] + m["L8"], "L8", "L5"),
    }


# Tumbling 1m, allowed_lateness 30s.
ALLOWED_SPEC = [
    ("J0", 5),
    ("J1", 30),
    ("J2", 75),       # wm 65: [0,1m) fires
    ("J3", 40),       # wm 65 < 60+30: [0,1m) updated and re-emitted
    ("J4", 59),       # again: a second re-emission
    ("J5", 100),      # wm 90 = end + lateness: [0,1m)'s state is gone
    ("J6", 45),       # late
    ("J7", 119),      # [1m,2m) still open
    ("J8", 185),      # wm 175: [1m,2m) fires and is gone at once
    ("J9", 110),      # late (end 2m + 30s <= wm)
]


def allowed_rows():
    m = {eid: 1 << i for i, (eid, _) in enumerate(ALLOWED_SPEC)}

    def row(n, ids, first, last, update=False):
        r = {"n": Exact(n), "mask": Exact(sum(m[i] for i in ids)), "first_id": Exact(first),
             "last_id": Exact(last)}
        if update:
            r["update"] = True
        return r
    g = json.dumps({})
    w = lambda s, e: (T0 + s * SEC, T0 + e * SEC, g)
    return {
        w(0, 60): [row(2, ["J0", "J1"], "J0", "J1"),
                   row(3, ["J0", "J1", "J3"], "J0", "J3", update=True),
                   row(4, ["J0", "J1", "J3", "J4"], "J0", "J4", update=True)],
        w(60, 120): [row(3, ["J2", "J5", "J7"], "J2", "J7")],
        w(180, 240): [row(1, ["J8"], "J8", "J8")],
    }


def lateness(t):
    failures = []
    for tag, spec, windows, group_by, allowed, want, late_ids in (
            ("late", LATE_SPEC, "[{tumbling: 1m}, {hopping: 2m, every: 1m}]",
             "[data.k]", None, late_rows(), ["L3", "L6", "L7"]),
            ("allowed_lateness", ALLOWED_SPEC, "[{tumbling: 1m}]", "[[]]", "30s",
             allowed_rows(), ["J6", "J9"])):
        try:
            lateness_case(t, tag, spec, windows, group_by, allowed, want, late_ids)
        except e2elib.Failure as e:
            print("FAIL (%s): %s" % (tag, e), flush=True)
            failures.append(tag)
    if failures:
        t.fail("lateness: failed: %s" % ", ".join(failures))


def lateness_case(t, tag, spec, windows, group_by, allowed, want, late_ids):
    """One run of LATE_PIPELINE on the events of spec: rows, late and errors."""
    d = t.tmpdir(tag)
    events = late_events(spec)
    src = t.write(os.path.join(d, "in.jsonl"), "".join(json.dumps(e) + "\n" for e in events))
    paths = {k: os.path.join(d, k + ".jsonl") for k in ("out", "late", "errors")}
    text = LATE_PIPELINE % dict(
        state=e2elib.yaml_str(os.path.join(d, "state")), input=e2elib.yaml_str(src),
        windows=windows, group_by=group_by,
        lateness="    allowed_lateness: %s\n" % allowed if allowed else "",
        **{k: e2elib.yaml_str(p) for k, p in paths.items()})
    run_pipeline(t, d, tag, text, timeout=30)
    by_id = {e["id"]: e for e in events}
    compare_rows(t, "%s: windows %s, group_by %s%s" % (
        tag, windows, group_by, ", allowed_lateness %s" % allowed if allowed else ""),
        paths["out"], want, LATE_NAMES)
    compare_drops(t, tag + ": agg.late", paths["late"], "agg", "late", late_ids, by_id)
    compare_drops(t, tag + ": agg.errors", paths["errors"], "agg", "eval_error", [], by_id)


# ---- 4. validate: diagnostics at the offending node ---------------------------------

VALIDATE = """\
pipeline: bad-aggregate
operators:
  events:
    type: source.file
    path: in.jsonl
  agg:
    type: aggregate
    input: events
    windows: %(windows)s
    group_by: %(group_by)s
%(parallelism)s    compute:
      n: count()
      %(compute)s
  out:
    type: sink.null
    input: agg
"""

OK_ARGS = {"windows": "[{tumbling: 1m}]", "group_by": "[[data.customerId]]",
           "parallelism": "", "compute": "total: sum(data.total)"}

# name -> (overrides, [needles: (text, nth, shift); any of them is the node], phrase regex)
BAD = {
    "unknown_function": ({"compute": "total: cnt()"}, [("cnt()", 1, 0)], r"cnt"),
    "bad_window_duration": ({"windows": "[{tumbling: 5x}]"}, [("5x", 1, 0)], r"5x"),
    "parallel_all_events": (
        {"parallelism": "    parallelism: 2\n", "group_by": "[[], [data.customerId]]"},
        [("parallelism: 2", 1, 13), ("parallelism", 1, 0), ("[[], [data", 1, 0),
         ("[], [data", 1, 0), ("group_by", 1, 0)],
        r"parallelism|partition"),
    "parallel_no_common_key": (
        {"parallelism": "    parallelism: 2\n",
         "group_by": "[[data.customerId], [data.status]]"},
        [("parallelism: 2", 1, 13), ("parallelism", 1, 0), ("[[data.customerId]", 1, 0),
         ("[[data.customerId]", 1, 1), ("[data.status]", 1, 0), ("group_by", 1, 0)],
        r"parallelism|partition"),
}

DIAG = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>.*)$")


def pos(text, needle, nth=1, shift=0):
    idx = -1
    for _ in range(nth):
        idx = text.index(needle, idx + 1)
    idx += shift
    return text.count("\n", 0, idx) + 1, idx - (text.rfind("\n", 0, idx) + 1) + 1


def validate_errors(t):
    d = t.tmpdir("validate")
    good = t.write(os.path.join(d, "good.yaml"), VALIDATE % OK_ARGS)
    r = t.run(["validate", good], cwd=d, timeout=30)
    t.check_rc(r, 0, "validate: the base pipeline (no mistake) is valid")
    r = t.run(["inspect", "aggregate"], timeout=30)
    out = r.stdout.decode("utf-8", "replace")
    t.check(r.rc == 0 and re.search(r"(?m)^Outputs:.*\blate\b", out) and
            re.search(r"(?m)^Outputs:.*\berrors\b", out),
            "sluice inspect aggregate: exit 0, output ports include late and errors", out)
    failures = []
    for name, (over, needles, phrase) in BAD.items():
        text = VALIDATE % dict(OK_ARGS, **over)
        fname = "bad_%s.yaml" % name
        t.write(os.path.join(d, fname), text)
        r = t.run(["validate", fname], cwd=d, timeout=30)
        err = r.stderr.decode("utf-8", "replace")
        at_ = {pos(text, *n) for n in needles}
        diags = [(int(m.group("line")), int(m.group("col")), m.group("msg"))
                 for m in (DIAG.match(l) for l in err.splitlines()) if m and m.group("file") == fname]
        hits = [x for x in diags if x[:2] in at_ and re.search(phrase, x[2], re.I)]
        stray = [x for x in diags if x[:2] not in at_]
        if r.rc != 1 or not hits or stray:
            print("FAIL (%s): expected exit 1 and a diagnostic at %s matching /%s/ (and none "
                  "elsewhere); got %r\n%s\n--- file:\n%s"
                  % (name, " or ".join("%s:%d:%d" % ((fname,) + p) for p in sorted(at_)), phrase,
                     diags, r.describe(), text), flush=True)
            failures.append(name)
            continue
        t.ok("validate %s: exit 1, %s:%d:%d: %s" % (name, fname, hits[0][0], hits[0][1], hits[0][2]))
    if failures:
        t.fail("validate: %d of %d bad-aggregate cases failed: %s"
               % (len(failures), len(BAD), ", ".join(failures)))


# ---- 5. a memory budget: spilled state gives the same rows --------------------------

MEMORY_COUNT = 100000
MEMORY_SEED = 5


def memory_budget(t):
    """Part 5: the same rows whatever the aggregate's memory budget."""
    d = t.tmpdir("memory")
    src = t.gen_events(os.path.join(d, "in.jsonl"), MEMORY_COUNT, MEMORY_SEED)
    canon = lambda r: json.dumps(r, sort_keys=True)
    group_by = "[[], [status], [customerId]]"
    one = sorted(canon(r) for r in
                 e2elib.read_jsonl(run_orders(t, d, "memory_default", src, group_by)))
    two = sorted(canon(r) for r in
                 e2elib.read_jsonl(run_orders(t, d, "memory_64KiB", src, group_by, memory="64KiB")))
    mdb = os.path.join(d, "memory_64KiB-state", "data.mdb")
    t.check(os.path.isfile(mdb) and os.path.getsize(mdb) > 0,
            "memory: 64KiB: the aggregate's state went to LMDB (%s)" % mdb)
    # 100 s of events: 1-minute windows that fired mid-stream and at the end
    ends = {json.loads(r)["window"]["end"] for r in one}
    t.check(len(one) > 1000 and len(ends) >= 3,
            "the default budget wrote %d rows over %d window ends" % (len(one), len(ends)))
    if one != two:
        diff = sorted(set(one) ^ set(two))[:6]
        t.fail("memory: 64KiB does not write the same rows as the default budget (%d vs %d "
               "rows); some that differ:\n  %s" % (len(two), len(one), "\n  ".join(diff)))
    t.ok("memory: 64KiB writes exactly the rows of the default budget (%d rows, every value "
         "identical)" % len(two))


def main(t):
    failures = []
    # every part runs; the failures are listed together at the end
    parts = (("validate", validate_errors), ("sessions", sessions), ("lateness", lateness),
             ("memory budget", memory_budget), ("order analytics", order_analytics))
    for name, fn in parts:
        try:
            fn(t)
        except e2elib.Failure as e:
            print("FAIL (%s): %s" % (name, e), flush=True)
            failures.append(name)
    if failures:
        t.fail("%d of %d parts failed: %s" % (len(failures), len(parts), ", ".join(failures)))


if __name__ == "__main__":
    e2elib.main(main)
