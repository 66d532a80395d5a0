"""The write side: each worker's flusher shipper and the Redis layout it writes.

Redis layout (all keys under ``key("m", ...)``, every one with a TTL):

- ``m:s:<tier>:<bucket>`` hash, field ``host|pid`` → bytes: int64 counts by class and sum_us,
  then int32 (bucket index, count) pairs: the worker's summary of that time bucket (series
  chart); tiers 1 s, 10 s, 60 s, 600 s.
- ``m:d:<tier>:<bucket>`` hash, field ``host|pid`` → bytes: a JSON list of series
  ``[endpoint, method, class]``, a newline, int64 ``(count, sum_us)`` per series, then int32
  triples ``(series, bucket index, count)``; tiers 10 s, 60 s, 600 s, 3600 s.
- ``m:w:<host>:<pid>`` JSON worker sample (psutil, RSS slope, hook cost); ``m:workers``
  zset of ``host|pid`` by last sample time; ``m:total`` hash ``[endpoint, method, class]`` →
  lifetime count (the Prometheus counters).

Each worker writes its *cumulative* value of every open bucket on every tick (HSET, not
HINCRBY), so a retried or repeated write is harmless and a SIGKILLed worker loses only
what it recorded since its last successful tick.
"""
import json
from collections import deque

import numpy as np

from ...core.process import host_sample
from .codec import encode_detail, encode_summary

#: Summary tiers (series chart): bucket seconds → seconds kept, just past the longest
#: window that reads the tier (see ``series_tier``).
SUMMARY_TIERS = {1: 600, 10: 3600, 60: 6 * 3600, 600: 25 * 3600}
#: Detail tiers (per-endpoint table, per-worker requests): bucket seconds → seconds kept,
#: just past the longest window that reads the tier (see ``detail_tier``).
DETAIL_TIERS = {10: 600, 60: 3600, 600: 5 * 3600, 3600: 25 * 3600}
#: Unsent closed buckets a worker keeps per tier while Redis is unreachable.
MAX_PENDING = 120
#: Worker samples (and the worker index) outlive the longest window the API answers.
SAMPLE_TTL = 25 * 3600
#: The lifetime counters live on while any worker ships (each flush renews them).
TOTAL_TTL = 8 * 86400
#: RSS readings kept for the leak signal: one per 5 s over 5 minutes.
RSS_EVERY_S = 5
RSS_POINTS = 60


def _merge(into, delta):
    for key, (count, total_ns, buckets) in delta.items():
        series = into.get(key)
        if series is None:
            series = into[key] = [0, 0, {}]
        series[0] += count
        series[1] += total_ns
        target = series[2]
        for idx, n in buckets.items():
            target[idx] = target.get(idx, 0) + n



class Shipper:
    """Move the recorder's deltas into per-tier bucket accumulators and write them each tick."""

    def __init__(self, monitor, recorder):
        self.monitor = monitor
        self.recorder = recorder
        # (kind, tier) → {bucket start: {series: [count, ns, buckets]}}
        self.open = {("s", t): {} for t in SUMMARY_TIERS} | {("d", t): {} for t in DETAIL_TIERS}
        self.dirty = set()
        self.totals = {}
        self.rss = deque(maxlen=RSS_POINTS)

    def __call__(self, pipe, now):
        store = self.monitor.store
        delta = self.recorder.take()
        for (kind, tier), buckets in self.open.items():
            start = int(now // tier) * tier
            for old in [b for b in buckets if b != start and (kind, tier, b) not in self.dirty]:
                del buckets[old]
            while len(buckets) > MAX_PENDING:
                oldest = min(buckets)
                del buckets[oldest]
                self.dirty.discard((kind, tier, oldest))
            if delta:
                _merge(buckets.setdefault(start, {}), delta)
                self.dirty.add((kind, tier, start))
        for key, (count, _, _) in delta.items():
            self.totals[key] = self.totals.get(key, 0) + count
        worker = f"{self.monitor.process.host}|{self.monitor.process.pid}"
        sent = set(self.dirty)
        for kind, tier, start in sent:
            acc = self.open[(kind, tier)][start]
            name = store.key("m", kind, tier, start)
            pipe.hset(name, worker, encode_summary(acc) if kind == "s" else encode_detail(acc))
            ttl = (SUMMARY_TIERS if kind == "s" else DETAIL_TIERS)[tier]
            pipe.expire(name, int(ttl + tier))
        self.dirty.clear()
        totals, self.totals = self.totals, {}
        if totals:
            total_key = store.key("m", "total")
            for key, count in totals.items():
                pipe.hincrby(total_key, json.dumps(key), count)
            pipe.expire(total_key, TOTAL_TTL)
        self._sample(pipe, now, worker)

        def undo():
            self.dirty |= sent
            for key, count in totals.items():
                self.totals[key] = self.totals.get(key, 0) + count
        return undo

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
            path_ns=self.recorder.own_ns, path_n=self.recorder.own_n, flusher_cpu_s=round(flusher.cpu_s, 6),
            flush_ms=round(flusher.last_flush_s * 1000, 3), system=host_sample())
        name = store.key("m", "w", process.host, process.pid)
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

