"""The write side: each worker's flusher shipper (the layout it writes is in ``layout``).

Each flush appends the recorder's delta (the requests since the last flush) as one record to
the current finest bucket of each kind, and to the lifetime totals; merging and rolling up
into the coarser tiers is ``compact``'s. The deltas are safe to add because every flush is
applied exactly once (``core/flusher.py``).

A worker whose send fails keeps its deltas and sends them with its next flush: per kind its
last ``MAX_PENDING`` finest buckets, the older ones merged into the next tier's buckets (so
the 1 s chart tier keeps its last 120 s, the coarser tiers every request). A SIGKILLed
worker loses only what it recorded since its last flush.
"""
import json
import time
from collections import deque

import numpy as np

from ...core.process import host_sample
from . import codec, layout, releases
from .compact import Compactor

#: Unsent closed buckets a worker keeps per tier while Redis is unreachable.
MAX_PENDING = 120
#: Worker samples (and the worker index) outlive the longest window that lists live workers.
SAMPLE_TTL = 25 * 3600
#: The lifetime counters live on while any worker ships (each flush renews them).
TOTAL_TTL = 8 * layout.DAY
#: RSS readings kept for the leak signal: one per 5 s over 5 minutes.
RSS_EVERY_S = 5
RSS_POINTS = 60


def rows(kind, delta, host, pid):
    """Return the rows of a record of ``kind`` for a recorder delta (see ``layout``)."""
    if kind == "d":
        return delta
    if kind == "s":
        return codec.group(delta, lambda key: (key[2],))
    if kind == "h":
        return codec.group(delta, lambda key: (host, key[2]))
    count = ns = 0
    classes = {}  # a worker's one row: its counts per status class stand in its histogram
    for (_, _, cls), (n, total_ns, _) in delta.items():
        count += n
        ns += total_ns
        code = codec.CLASS_CODE[cls]
        classes[code] = classes.get(code, 0) + n
    return {(host, pid): [count, ns, classes]}


def combine(a, b):
    """Return a new delta holding both deltas (neither is changed: the kinds share them)."""
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
    """Each tick, append the recorder's delta to the current finest bucket of each kind."""

    def __init__(self, monitor, recorder):
        self.monitor = monitor
        self.recorder = recorder
        self.pending = {kind: {} for kind in layout.TIERS}  # kind → {(tier, start): delta not yet sent}
        self.totals = {}
        self.by_release = {}  # this worker's delta not yet appended to its release's list
        self.expiring = {}  # list name → bucket end, for the lists whose EXPIREAT was sent
        self.pruned = 0.0
        self.grace = 2 * monitor.flusher.interval + 1
        self.compactor = Compactor(monitor.store, self.grace)
        monitor.flusher.add_task(self.compactor)
        self.rss = deque(maxlen=RSS_POINTS)

    def _hold(self, kind, now, delta):
        """Add ``delta`` to the kind's current finest bucket. A bucket past the last
        MAX_PENDING closed ones of its tier, or one whose key would expire before it can be
        rolled up (held through a long outage), goes into the next tier's bucket instead."""
        buckets = self.pending[kind]
        tier = layout.FINEST[kind]
        current = (tier, int(now // tier) * tier)
        if delta:
            held = buckets.get(current)
            buckets[current] = delta if held is None else combine(held, delta)
        deadline = time.time() + self.grace + layout.ROLL_UP_S  # TTLs run on the real clock
        while tier is not None:
            closed = sorted(key for key in buckets if key[0] == tier and key != current)
            late = {key for key in buckets if key[0] == tier and layout.expires(kind, *key) <= deadline}
            above = layout.coarser(kind, tier)
            for key in set(closed[:max(len(closed) - MAX_PENDING, 0)]) | late:
                acc = buckets.pop(key)
                if above is not None:
                    target = (above, key[1] // above * above)
                    held = buckets.get(target)
                    buckets[target] = acc if held is None else combine(held, acc)
            tier = above

    def __call__(self, pipe, now):
        store = self.monitor.store
        process = self.monitor.process
        delta = self.recorder.take()
        for kind in self.pending:
            self._hold(kind, now, delta)
        if delta:
            self.totals = combine(self.totals, delta) if self.totals else delta
            self.by_release = combine(self.by_release, delta) if self.by_release else delta
        pending, self.pending = self.pending, {kind: {} for kind in layout.TIERS}
        totals, self.totals = self.totals, {}
        by_release, self.by_release = self.by_release, {}
        encoded = {}  # the kinds mostly share one delta: each record is encoded once
        queued = []
        for kind, buckets in pending.items():
            for (tier, start), acc in buckets.items():
                blob = encoded.get((kind, id(acc)))
                if blob is None:
                    blob = encoded[(kind, id(acc))] = codec.encode(rows(kind, acc, process.host, process.pid))
                name = layout.name(store, kind, tier, start)
                pipe.rpush(name, blob)
                if name not in self.expiring:
                    pipe.expireat(name, layout.expires(kind, tier, start))
                    self.expiring[name] = start + tier
                    queued.append(name)
                self.compactor.due(name, max(start + tier, now) + self.grace)
        if totals:
            name = store.key("m", "t")
            pipe.rpush(name, codec.encode(codec.group(totals, tuple, histogram=False)))
            pipe.expire(name, TOTAL_TTL)
        if by_release:
            name = releases.key(store, process.release)
            # mostly the very delta of this tick's finest "d" bucket, encoded above already
            pipe.rpush(name, encoded.get(("d", id(by_release))) or codec.encode(by_release))
            pipe.expire(name, releases.RELEASE_TTL)
        if now >= self.pruned + 60:  # forget the buckets that closed a while ago
            self.expiring = {name: end for name, end in self.expiring.items() if end > now - 60}
            self.pruned = now
        self._sample(pipe, now, f"{process.host}|{process.pid}")

        def undo():
            for kind, buckets in pending.items():
                for key, acc in buckets.items():
                    held = self.pending[kind].get(key)
                    self.pending[kind][key] = acc if held is None else combine(acc, held)
            if totals:
                self.totals = combine(totals, self.totals) if self.totals else totals
            if by_release:
                self.by_release = combine(by_release, self.by_release) if self.by_release else by_release
            for name in queued:
                self.expiring.pop(name, None)
        return undo

    def landed(self, commands, replies):
        """Ask for a merge of each list this flush brought to a multiple of ``EVERY`` records."""
        self.compactor.landed(commands, replies)

    def _sample(self, pipe, now, worker):
        store = self.monitor.store
        process = self.monitor.process
        sample = process.sample()
        if not self.rss or now - self.rss[-1][0] >= RSS_EVERY_S:
            self.rss.append((now, sample["rss_mb"]))
        requests = self.monitor.requests
        flusher = self.monitor.flusher
        sample.update(
            host=process.host, pid=process.pid, ts=now, requests_total=requests.total,
            in_flight=requests.in_flight, rss_slope_mb_per_min=rss_slope(self.rss),
            path_ns=requests.own_ns, path_n=requests.own_n, flusher_cpu_s=round(flusher.cpu_s, 6),
            series=len(self.recorder.known),
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
