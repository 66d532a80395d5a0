"""The write side: each worker's flusher shipper and the Redis layout it writes.

Redis layout (every key under ``key("m", ...)``, every one with a TTL):

- ``m:<kind>:<tier>:<bucket start>`` list of records (``codec``): what the whole fleet
  recorded in that time bucket. Each flush of each worker appends its delta (the requests
  since its last flush) as one record, and the list is merged in place (``compact``), so a
  bucket's size follows its series, not the number of workers. Kinds:

  | kind | rows | histograms | used for |
  |---|---|---|---|
  | ``d`` | (endpoint, method, class) | yes | the endpoint table, totals and percentiles |
  | ``s`` | (class,) | yes | the chart series |
  | ``h`` | (host, class) | yes | a host's totals, percentiles and chart (``host=``) |
  | ``w`` | (host, pid, class) | no | workers[] and a worker's totals and chart (``pid=``) |

- ``m:t`` list of records, rows (endpoint, method, class), counts only: lifetime totals
  (the Prometheus counters), merged the same way.
- ``m:sample:<host>:<pid>`` the worker's last sample (JSON: psutil readings, RSS slope, hook
  cost); ``m:workers`` zset of ``host|pid`` by last sample time.

The deltas are safe to add because every flush is applied exactly once (``core/flusher.py``).
A worker whose send fails keeps its deltas (the 1 s tier its last ``MAX_PENDING`` buckets,
the coarser tiers everything) and sends them with its next flush; a SIGKILLed worker loses
only what it recorded since its last flush.
"""
import json
from collections import deque

import numpy as np

from ...core.process import host_sample
from . import codec
from .compact import EVERY, Compactor

DAY = 86400
#: Record kinds → {bucket seconds: seconds a bucket is kept once it ended}: each tier is kept
#: just past the longest window that reads it (``query.plan`` and ``query.chart_tier``).
TIERS = {
    "d": {10: 900, 60: 2 * 3600, 600: 25 * 3600, 3600: 30 * DAY + 3600, DAY: 31 * DAY},
    "s": {1: 600, 10: 3600, 60: 6 * 3600, 600: 25 * 3600, 3600: 8 * DAY, DAY: 31 * DAY},
    "h": {10: 900, 60: 2 * 3600, 600: 25 * 3600, 3600: 8 * DAY, DAY: 31 * DAY},
    "w": {10: 900, 60: 2 * 3600, 600: 25 * 3600, 3600: 8 * DAY, DAY: 31 * DAY},
}
#: Tier → the kinds written at that bucket size.
KINDS_AT = {tier: [kind for kind in TIERS if tier in TIERS[kind]] for tier in sorted({t for k in TIERS.values() for t in k})}
#: Unsent closed buckets a worker keeps per tier while Redis is unreachable.
MAX_PENDING = 120
#: Worker samples (and the worker index) outlive the longest window that lists live workers.
SAMPLE_TTL = 25 * 3600
#: The lifetime counters live on while any worker ships (each flush renews them).
TOTAL_TTL = 8 * DAY
#: RSS readings kept for the leak signal: one per 5 s over 5 minutes.
RSS_EVERY_S = 5
RSS_POINTS = 60


def _labels(kind, host, pid):
    """Return the row label of ``kind`` for a recorder key (endpoint, method, class)."""
    return {"d": None, "s": lambda key: (key[2],), "h": lambda key: (host, key[2]),
            "w": lambda key: (host, pid, key[2])}[kind]


def combine(a, b):
    """Return a new delta holding both deltas (neither is changed: tiers share them)."""
    out = {key: [count, ns, dict(buckets)] for key, (count, ns, buckets) in a.items()}
    for key, (count, ns, buckets) in b.items():
        series = out.get(key)
        if series is None:
            out[key] = [count, ns, dict(buckets)]
            continue
        series[0] += count
        series[1] += ns
        target = series[2]
        for idx, n in buckets.items():
            target[idx] = target.get(idx, 0) + n
    return out


class Shipper:
    """Each tick, append the recorder's delta to every tier's current bucket (one record per kind)."""

    def __init__(self, monitor, recorder):
        self.monitor = monitor
        self.recorder = recorder
        self.pending = {tier: {} for tier in KINDS_AT}  # tier → {bucket start: delta not yet sent}
        self.totals = {}
        self.expiring = {}  # list name → bucket end, for the lists whose EXPIREAT was sent
        self.pruned = 0.0
        self.compactor = Compactor(monitor.store)
        monitor.flusher.add_task(self.compactor)
        self.rss = deque(maxlen=RSS_POINTS)

    def __call__(self, pipe, now):
        store = self.monitor.store
        process = self.monitor.process
        delta = self.recorder.take()
        for tier, buckets in self.pending.items():
            start = int(now // tier) * tier
            if delta:
                held = buckets.get(start)
                buckets[start] = delta if held is None else combine(held, delta)
            while len(buckets) - (start in buckets) > MAX_PENDING:
                del buckets[min(buckets)]
        if delta:
            self.totals = combine(self.totals, delta) if self.totals else delta
        pending, self.pending = self.pending, {tier: {} for tier in KINDS_AT}
        totals, self.totals = self.totals, {}
        encoded = {}  # the tiers mostly share one delta: each kind's record is encoded once
        queued = []
        for tier, buckets in pending.items():
            for start, acc in buckets.items():
                for kind in KINDS_AT[tier]:
                    blob = encoded.get((kind, id(acc)))
                    if blob is None:
                        label = _labels(kind, process.host, process.pid)
                        rows = acc if label is None else codec.group(acc, label, histogram=kind != "w")
                        blob = encoded[(kind, id(acc))] = codec.encode(rows)
                    name = store.key("m", kind, tier, start)
                    pipe.rpush(name, blob)
                    if name not in self.expiring:
                        pipe.expireat(name, start + tier + TIERS[kind][tier])
                        self.expiring[name] = start + tier
                        queued.append(name)
                    self.compactor.due(name, max(start + tier, now) + 2 * self.monitor.flusher.interval + 1)
        if totals:
            name = store.key("m", "t")
            pipe.rpush(name, codec.encode(codec.group(totals, tuple, histogram=False)))
            pipe.expire(name, TOTAL_TTL)
        if now >= self.pruned + 60:  # forget the buckets that closed a while ago
            self.expiring = {name: end for name, end in self.expiring.items() if end > now - 60}
            self.pruned = now
        worker = f"{process.host}|{process.pid}"
        self._sample(pipe, now, worker)

        def undo():
            for tier, buckets in pending.items():
                for start, acc in buckets.items():
                    held = self.pending[tier].get(start)
                    self.pending[tier][start] = acc if held is None else combine(acc, held)
            if totals:
                self.totals = combine(totals, self.totals) if self.totals else totals
            for name in queued:
                self.expiring.pop(name, None)
        return undo

    def landed(self, commands, replies):
        """Ask for a merge of each list this flush brought to a multiple of ``EVERY`` records."""
        for command, reply in zip(commands, replies):
            if command[0] == "RPUSH" and isinstance(reply, int) and reply % EVERY == 0:
                self.compactor.want(command[1])

    def _sample(self, pipe, now, worker):
        store = self.monitor.store
        process = self.monitor.process
        sample = process.sample()
        if not self.rss or now - self.rss[-1][0] >= RSS_EVERY_S:
            self.rss.append((now, sample["rss_mb"]))
        counters = self.monitor.counters
        flusher = self.monitor.flusher
        sample.update(
            host=process.host, pid=process.pid, ts=now, requests_total=counters.requests,
            in_flight=counters.in_flight, rss_slope_mb_per_min=rss_slope(self.rss),
            hook_ns=self.recorder.own_ns, hook_n=self.recorder.own_n,
            flush_ms=round(flusher.last_flush_s * 1000, 3), system=host_sample())
        name = store.key("m", "sample", process.host, process.pid)
        pipe.set(name, json.dumps(sample, separators=(",", ":")), ex=SAMPLE_TTL)
        index = store.key("m", "workers")
        pipe.zadd(index, {worker: now})
        pipe.zremrangebyscore(index, "-inf", now - SAMPLE_TTL)
        pipe.expire(index, SAMPLE_TTL)


def rss_slope(points):
    """Return the least-squares RSS slope (MB per minute) of ``(t, rss_mb)`` points, or 0."""
    if len(points) < 3:
        return 0.0
    ts = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    ts = ts - ts.mean()
    spread = float((ts * ts).sum())
    return round(float((ts * (ys - ys.mean())).sum()) / spread * 60, 3) if spread else 0.0
