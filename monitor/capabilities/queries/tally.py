"""Per-window aggregates of named groups, fleet-wide: the storage of this capability and of ``outgoing``.

A *group* is one SQL statement, or one outgoing-call target (host, method, path template).
Each process keeps, per group, a count, an error count, the total time and a latency
histogram (the metrics capability's buckets, so every percentile is within 2%); per endpoint
(rule, method) the events, errors and time it spent; *flags* (N+1 findings: per group and
endpoint, the requests that showed one, an example request id and its executions); and the
slowest single events. Past ``max_groups`` distinct groups a process counts the rest under
one overflow group, as endpoint series are capped.

The flusher's shipper merges them into the open time buckets of four tiers (bucket sizes the
metrics table also has, so that per-request figures divide by request counts over the same
time; kept 24 h, as named groups cost more than the metrics' rows: the metrics table offers
no SQL or HTTP columns for its 7 d and 30 d windows)
and writes each changed bucket's cumulative aggregates as one hash field per worker, in the
flusher's exactly-once batch: a repeated write changes nothing, and a SIGKILLed worker loses
at most what it recorded since its last tick.

Redis layout under ``key(<kind>, ...)`` (kind ``q``: SQL, ``o``: outgoing), every key with a TTL:

- ``<kind>:<tier>:<bucket start>`` hash: field ``host|pid`` → JSON of the worker's aggregates
  in that bucket; field ``n:<group id>`` → JSON of the group's name (the normalised SQL, or
  ``[host, method, path]``), written once per bucket by each worker that used the group.
- ``<kind>:total`` hash: JSON ``[counter, label, ...]`` → lifetime value (Prometheus counters).
"""
import hashlib
import heapq
import itertools
import json
import threading
import time
from math import log

import numpy as np
from flask import current_app
from flask.globals import _cv_app, _cv_request

from ...web.hooks import UNMATCHED
from ...web.request_id import request_id
from ..metrics.collect import OVERFLOW  # noqa: F401  the one overflow label, for the tallies' users
from ..metrics.histogram import INV_LOG, MIN_NS, NBUCKETS, OFFSET, percentile_rows

#: Tiers: bucket seconds → seconds kept.
TIERS = {10: 600, 60: 3600, 600: 5 * 3600, 3600: 25 * 3600}
#: Longest window the API answers, and the default.
MAX_WINDOW_S = 86400
DEFAULT_WINDOW_S = 3600
#: Windows the panels offer, in seconds, with their labels.
WINDOWS = {300: "5 min", 900: "15 min", 3600: "1 h", 21600: "6 h", 86400: "24 h"}
#: Unsent closed buckets a worker keeps per tier while Redis is unreachable.
MAX_PENDING = 120
#: Slowest single events kept per worker and bucket, and listed.
SLOWEST = 20
#: The lifetime counters live on while any worker ships (each flush renews them).
TOTAL_TTL = 8 * 86400
OVERFLOW_ID = "overflow"
#: The endpoint label of events outside any request (one in a request no rule matched counts
#: under ``UNMATCHED``, as in the metrics).
NO_REQUEST = ("<no request>", "")


def group_id(name):
    """Return the short stable id of a group name (JSON-able)."""
    text = name if isinstance(name, str) else json.dumps(name, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def in_context(attr, default):
    """Return ``(request or None, collector)``: the ``attr`` collector of the app in context, else ``default``.

    Events outside any app context (a thread of the host's own) go to ``default``, the
    collector of the app that last started this capability in the process.
    """
    ctx = _cv_request.get(None)
    if ctx is not None:
        return ctx.request, getattr(ctx.app.extensions.get("monitor"), attr, None)
    app_ctx = _cv_app.get(None)
    if app_ctx is not None:
        return None, getattr(app_ctx.app.extensions.get("monitor"), attr, None)
    return None, default


def endpoint_of(req):
    """Return the (rule, method) that ``req``'s events count under, or None for a request to one of
    the monitor's own routes (its SQL and calls are not the app's)."""
    if current_app.extensions["monitor"].urls.is_own_endpoint(req.endpoint):
        return None
    rule = req.url_rule
    return rule.rule if rule is not None else UNMATCHED, req.method


class Tally:
    """One process's aggregates of named groups since the flusher last took them."""

    def __init__(self, max_groups, overflow_name):
        self.max_groups = max_groups
        self.lock = threading.Lock()  # in-process only: the flusher swaps the aggregates under it
        #: Group id → name, for every group this process admitted (and the overflow group).
        self.names = {}
        self.overflow_name = overflow_name
        self.order = itertools.count()
        self._fresh()

    def _fresh(self):
        self.groups = {}     # id → [count, errors, ns, {histogram bucket: count}]
        self.endpoints = {}  # (rule, method) → [count, errors, ns]
        self.flags = {}      # (id, (rule, method)) → [requests, example request id, its counts]
        self.slowest = []    # min-heap of (ns, order, id, (rule, method), detail, request id, time)

    def admit(self, name):
        """Return the id of group ``name``, or the overflow group's once the cap is reached."""
        gid = group_id(name)
        with self.lock:
            if gid in self.names:
                return gid
            if len(self.names) - (OVERFLOW_ID in self.names) >= self.max_groups:
                self.names[OVERFLOW_ID] = self.overflow_name
                return OVERFLOW_ID
            self.names[gid] = name
        return gid

    def record(self, gid, ns, failed, endpoint, detail=None):
        """Count one event of group ``gid`` at ``endpoint`` that took ``ns`` (``failed``: 0 or 1)."""
        # histogram.bucket_index inlined (a third of this method's cost as a call): per statement
        index = int(log(ns if ns > MIN_NS else MIN_NS) * INV_LOG) - OFFSET + 1
        if index >= NBUCKETS:
            index = NBUCKETS - 1
        lock = self.lock
        lock.acquire()  # not ``with``: cheaper on CPython 3.11, as in the metrics recorder
        try:
            group = self.groups.get(gid)
            if group is None:
                group = self.groups[gid] = [0, 0, 0, {}]
            group[0] += 1
            group[1] += failed
            group[2] += ns
            buckets = group[3]
            buckets[index] = buckets.get(index, 0) + 1
            spent = self.endpoints.get(endpoint)
            if spent is None:
                spent = self.endpoints[endpoint] = [0, 0, 0]
            spent[0] += 1
            spent[1] += failed
            spent[2] += ns
            slowest = self.slowest
            if len(slowest) < SLOWEST or ns > slowest[0][0]:
                entry = (ns, next(self.order), gid, endpoint, detail, request_id(), time.time())
                (heapq.heappush if len(slowest) < SLOWEST else heapq.heapreplace)(slowest, entry)
        finally:
            lock.release()

    def flag(self, gid, endpoint, counts):
        """Note a request at ``endpoint`` that ran ``gid`` past the threshold; ``counts`` is its own
        per-group tally, read again when shipped (the request may still be running now)."""
        with self.lock:
            found = self.flags.get((gid, endpoint))
            if found is None:
                self.flags[(gid, endpoint)] = [1, request_id(), counts]
            else:
                found[0] += 1

    def take(self):
        """Swap out what was recorded since the last call: (groups, endpoints, flags, slowest)."""
        with self.lock:
            taken = (self.groups, self.endpoints, self.flags, self.slowest)
            self._fresh()
        return taken


class _Bucket:
    """A worker's cumulative aggregates of one time bucket, as shipped."""

    __slots__ = ("groups", "endpoints", "flags", "slowest", "named")

    def __init__(self):
        self.groups, self.endpoints, self.flags, self.slowest, self.named = {}, {}, {}, [], set()

    def merge(self, groups, endpoints, flags, slowest):
        for gid, (count, errors, ns, buckets) in groups.items():
            into = self.groups.get(gid)
            if into is None:
                into = self.groups[gid] = [0, 0, 0, {}]
            into[0] += count
            into[1] += errors
            into[2] += ns
            hist = into[3]
            for index, n in buckets.items():
                hist[index] = hist.get(index, 0) + n
        for endpoint, numbers in endpoints.items():
            into = self.endpoints.setdefault(endpoint, [0, 0, 0])
            for i, n in enumerate(numbers):
                into[i] += n
        for key, (requests, rid, counts) in flags.items():
            executions = counts.get(key[0], 0)
            into = self.flags.get(key)
            if into is None:
                self.flags[key] = [requests, rid, executions]
            else:
                into[0] += requests
                if executions > into[2]:
                    into[1:] = [rid, executions]
        self.slowest = heapq.nlargest(SLOWEST, self.slowest + slowest)

    def encode(self):
        return json.dumps({
            "g": {gid: [count, errors, ns // 1000, [x for pair in sorted(hist.items()) for x in pair]]
                  for gid, (count, errors, ns, hist) in self.groups.items()},
            "e": [[*endpoint, count, errors, ns // 1000] for endpoint, (count, errors, ns) in self.endpoints.items()],
            "f": [[gid, *endpoint, requests, rid, executions]
                  for (gid, endpoint), (requests, rid, executions) in self.flags.items()],
            "s": [[ns // 1000, gid, *endpoint, detail, rid, round(at, 3)]
                  for ns, _, gid, endpoint, detail, rid, at in self.slowest],
        }, separators=(",", ":"))


class Shipper:
    """The flusher shipper of one ``Tally``: per-tier open buckets, each written whole when it changed.

    ``counters(groups, endpoints, flags, names)`` returns the lifetime counter increments of a
    delta, ``{(counter, label, ...): n}``, kept in ``<kind>:total`` for ``GET /metrics``.
    """

    def __init__(self, monitor, tally, kind, counters):
        self.monitor = monitor
        self.tally = tally
        self.kind = kind
        self.counters = counters
        self.open = {tier: {} for tier in TIERS}  # tier → {bucket start: _Bucket}
        self.dirty = set()
        self.totals = {}

    def __call__(self, pipe, now):
        store = self.monitor.store
        groups, endpoints, flags, slowest = self.tally.take()
        fresh = bool(endpoints)  # every recorded event counts under an endpoint
        for tier, buckets in self.open.items():
            start = int(now // tier) * tier
            for old in [b for b in buckets if b != start and (tier, b) not in self.dirty]:
                del buckets[old]
            while len(buckets) > MAX_PENDING:
                oldest = min(buckets)
                del buckets[oldest]
                self.dirty.discard((tier, oldest))
            if fresh:
                bucket = buckets.get(start)
                if bucket is None:
                    bucket = buckets[start] = _Bucket()
                bucket.merge(groups, endpoints, flags, slowest)
                self.dirty.add((tier, start))
        if fresh:
            for key, n in self.counters(groups, endpoints, flags, self.tally.names).items():
                self.totals[key] = self.totals.get(key, 0) + n
        worker = f"{self.monitor.process.host}|{self.monitor.process.pid}"
        sent, named = set(self.dirty), []
        for tier, start in sent:
            bucket = self.open[tier][start]
            name = store.key(self.kind, tier, start)
            pipe.hset(name, worker, bucket.encode())
            new = [gid for gid in bucket.groups if gid not in bucket.named]
            if new:
                pipe.hset(name, mapping={f"n:{gid}": json.dumps(self.tally.names[gid]) for gid in new})
                bucket.named.update(new)
                named.append((bucket, new))
            pipe.expire(name, TIERS[tier] + tier)
        self.dirty.clear()
        totals, self.totals = self.totals, {}
        if totals:
            total_key = store.key(self.kind, "total")
            for key, n in totals.items():
                pipe.hincrby(total_key, json.dumps(key), n)
            pipe.expire(total_key, TOTAL_TTL)

        def undo():
            self.dirty |= sent
            for bucket, new in named:
                bucket.named.difference_update(new)
            for key, n in totals.items():
                self.totals[key] = self.totals.get(key, 0) + n
        return undo


def tier_of(window_s):
    """Return the tier a window reads: the coarsest giving at least 4 buckets (as the metrics table)."""
    return max([t for t in TIERS if window_s >= 4 * t] or [min(TIERS)])


def _starts(now, window_s, tier):
    first = int((now - window_s) // tier) * tier
    if first + tier <= now - window_s:
        first += tier
    return range(first, int(now // tier) * tier + 1, tier)


def read(store, kind, window_s, now=None, host=None, pid=None):
    """Return the fleet's (or one host's, one worker's) aggregates of ``kind`` over the last ``window_s`` s.

    A dict: ``groups`` {id: [count, errors, µs, {bucket: n}]}, ``names`` {id: name},
    ``endpoints`` {(rule, method): [count, errors, µs]}, ``flags`` {(id, rule, method):
    [requests, example request id, executions, worker]}, ``slowest`` [dicts], slowest first.
    """
    now = time.time() if now is None else now
    tier = tier_of(window_s)
    pipe = store.redis.pipeline(transaction=False)
    for start in _starts(now, window_s, tier):
        pipe.hgetall(store.key(kind, tier, start))
    groups, names, endpoints, flags, slowest = {}, {}, {}, {}, []
    for fields in pipe.execute():
        for field, value in fields.items():
            if field.startswith("n:"):
                names[field[2:]] = json.loads(value)
                continue
            name, _, number = field.rpartition("|")
            if (host is not None and name != host) or (pid is not None and int(number) != pid):
                continue
            blob = json.loads(value)
            for gid, (count, errors, us, pairs) in blob["g"].items():
                into = groups.get(gid)
                if into is None:
                    into = groups[gid] = [0, 0, 0, {}]
                into[0] += count
                into[1] += errors
                into[2] += us
                hist = into[3]
                for index, n in zip(pairs[::2], pairs[1::2]):
                    hist[index] = hist.get(index, 0) + n
            for rule, method, count, errors, us in blob["e"]:
                into = endpoints.setdefault((rule, method), [0, 0, 0])
                into[0] += count
                into[1] += errors
                into[2] += us
            for gid, rule, method, requests, rid, executions in blob["f"]:
                into = flags.get((gid, rule, method))
                if into is None:
                    into = flags[(gid, rule, method)] = [0, rid, executions, field]
                into[0] += requests
                if executions > into[2]:
                    into[1:] = [rid, executions, field]
            slowest += ({"us": us, "id": gid, "endpoint": rule, "method": method, "detail": detail,
                         "request_id": rid, "time": at, "worker": field} for us, gid, rule, method, detail, rid, at
                        in blob["s"])
    slowest = heapq.nlargest(SLOWEST, slowest, key=lambda event: event["us"])
    return {"groups": groups, "names": names, "endpoints": endpoints, "flags": flags, "slowest": slowest}


def group_rows(groups):
    """Return ``{id: {count, errors, total_ms, mean_ms, p50_ms, p95_ms, p99_ms}}`` of merged groups."""
    ids = list(groups)
    hist = np.zeros((len(ids), NBUCKETS))
    for row, gid in enumerate(ids):
        for index, n in groups[gid][3].items():
            hist[row, index] += n
    quantiles = percentile_rows(hist, (0.5, 0.95, 0.99)) if ids else ()
    rows = {}
    for gid, (p50, p95, p99) in zip(ids, quantiles):
        count, errors, us, _ = groups[gid]
        rows[gid] = {"count": count, "errors": errors, "total_ms": ms(us / 1000),
                     "mean_ms": ms(us / count / 1000) if count else 0.0,
                     "p50_ms": ms(p50), "p95_ms": ms(p95), "p99_ms": ms(p99)}
    return rows


def panel_window(args):
    """Return the window a panel shows: its ``window`` argument when offered, else the default."""
    value = args.get("window", "")
    return int(value) if value in {str(w) for w in WINDOWS} else DEFAULT_WINDOW_S


def ms(value):
    return round(float(value), 3)


def totals(store, kind):
    """Return the lifetime counters of ``kind``: {(counter, label, ...): value}."""
    return {tuple(json.loads(field)): int(n) for field, n in store.redis.hgetall(store.key(kind, "total")).items()}
