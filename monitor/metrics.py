"""Fleet-wide request metrics: a mergeable histogram, the Redis layout, the shipper, the query.

Histogram: log-spaced buckets with ratio ``GAMMA`` = 1.04 (as in DDSketch). A latency in
bucket ``i`` lies in (GAMMA^(i-1), GAMMA^i] ns and is reported as 2·GAMMA^i/(GAMMA+1), so
every percentile is within (GAMMA-1)/(GAMMA+1) < 2% of the true value at its rank. Buckets
from 1 µs to 100 s: ~470 of them, kept sparse, merged by adding counts.

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
import functools
import json
import math
import threading
import time
from collections import deque

import numpy as np

from .system import host_sample, worker_sample

GAMMA = 1.04
_INV_LOG = 1 / math.log(GAMMA)
#: Latencies below 1 µs count as 1 µs; above 100 s as 100 s.
MIN_NS = 1_000
MAX_NS = 100_000_000_000
OFFSET = int(math.log(MIN_NS) * _INV_LOG)
NBUCKETS = int(math.log(MAX_NS) * _INV_LOG) + 2 - OFFSET
#: Representative value (ms) of each bucket.
BUCKET_MS = np.array([2 * GAMMA ** (i + OFFSET) / (GAMMA + 1) / 1e6 for i in range(NBUCKETS)])

CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
#: Status class by ``status // 100`` (0..9); codes past 599 count as server errors.
STATUS_CLASS = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx", "5xx", "5xx", "5xx", "5xx")
UNMATCHED = "<unmatched>"
OVERFLOW = "<overflow>"

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


def bucket_index(ns):
    """Return the histogram bucket of a latency in ns."""
    return min(max(int(math.log(max(ns, MIN_NS)) * _INV_LOG) - OFFSET + 1, 0), NBUCKETS - 1)


def percentile_rows(hist, qs):
    """Return the ``qs`` percentiles (ms) of each row of a dense histogram matrix."""
    cum = np.cumsum(hist, axis=1)
    total = cum[:, -1]
    out = np.zeros((hist.shape[0], len(qs)))
    for j, q in enumerate(qs):
        target = np.floor(q * np.maximum(total - 1, 0)) + 1
        idx = np.minimum((cum < target[:, None]).sum(axis=1), NBUCKETS - 1)
        out[:, j] = np.where(total > 0, BUCKET_MS[idx], 0.0)
    return out


class Recorder:
    """This process's request aggregates: the hot path's only state."""

    def __init__(self, max_series):
        self.max_series = max_series
        self.lock = threading.Lock()  # in-process only: the flusher swaps ``current`` under it
        self.current = {}
        self.known = set()
        self.own_ns = 0
        self.own_n = 0

    def record(self, key, ns):
        """Count one request of series ``key`` = (endpoint, method, class) that took ``ns``."""
        index = int(math.log(ns if ns > MIN_NS else MIN_NS) * _INV_LOG) - OFFSET + 1
        lock = self.lock
        lock.acquire()  # not ``with``: a third of the price on CPython 3.11
        try:
            series = self.current.get(key)
            if series is None:
                key = self._admit(key)
                series = self.current.get(key)
                if series is None:
                    series = self.current[key] = [0, 0, {}]
            series[0] += 1
            series[1] += ns
            buckets = series[2]
            buckets[index] = buckets.get(index, 0) + 1
        finally:
            lock.release()

    def _admit(self, key):
        """Return ``key``, or its overflow label once the cap of distinct series is reached."""
        if key in self.known:
            return key
        if len(self.known) >= self.max_series:
            return (OVERFLOW, key[1], key[2])
        self.known.add(key)
        return key

    def take(self):
        """Swap out what was recorded since the last call."""
        with self.lock:
            delta, self.current = self.current, {}
        return delta


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


def encode_summary(acc):
    """Return the bytes of one bucket's summary: int64 counts by class and sum_us, then int32
    (bucket index, count) pairs of the histogram merged over all series."""
    by_class = dict.fromkeys(CLASSES, 0)
    total_ns = 0
    merged = {}
    for (endpoint, method, cls), (count, ns, buckets) in acc.items():
        by_class[cls] += count
        total_ns += ns
        for idx, n in buckets.items():
            merged[idx] = merged.get(idx, 0) + n
    pairs = [x for item in sorted(merged.items()) for x in item]
    return (np.array([*by_class.values(), total_ns // 1000], dtype=np.int64).tobytes()
            + np.array(pairs, dtype=np.int32).tobytes())


def encode_detail(acc):
    """Return the bytes of one bucket's per-series detail: JSON names, then int64 (count, sum_us)
    per series, then int32 (series, bucket index, count) triples."""
    names = []
    sums = []
    triples = []
    for sid, ((endpoint, method, cls), (count, ns, buckets)) in enumerate(acc.items()):
        names.append([endpoint, method, cls])
        sums += (count, ns // 1000)
        for idx, n in buckets.items():
            triples += (sid, idx, n)
    return (json.dumps(names, separators=(",", ":")).encode() + b"\n"
            + np.array(sums, dtype=np.int64).tobytes() + np.array(triples, dtype=np.int32).tobytes())


#: Bytes per series in a detail blob's int64 (count, sum_us) pairs, and per int32 triple.
PAIR_BYTES, TRIPLE_BYTES = 16, 12


def split_detail(blob):
    """Return a detail blob's JSON head and the numbers after it (a memoryview): PAIR_BYTES per
    series of (count, sum_us) pairs, then the (series, bucket index, count) triples."""
    cut = blob.index(b"\n")
    return blob[:cut], memoryview(blob)[cut + 1:]


def decode_detail(blob):
    """Return (series names, int64 (count, sum_us) rows, int32 (series, index, count) rows) of a blob."""
    head, numbers = split_detail(blob)
    names = json.loads(head)
    cut = PAIR_BYTES * len(names)
    return (names, np.frombuffer(numbers[:cut], dtype=np.int64).reshape(-1, 2),
            np.frombuffer(numbers[cut:], dtype=np.int32).reshape(-1, 3))


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
        self.last_hook = (0, 0)

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
        sample = worker_sample(process)
        if not self.rss or now - self.rss[-1][0] >= RSS_EVERY_S:
            self.rss.append((now, sample["rss_mb"]))
        counters = self.monitor.counters
        flusher = self.monitor.flusher
        sample.update(
            host=process.host, pid=process.pid, ts=now, requests_total=counters.requests,
            in_flight=counters.in_flight, rss_slope_mb_per_min=rss_slope(self.rss),
            hook_ns=self.recorder.own_ns, hook_n=self.recorder.own_n,
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


def detail_tier(window_s):
    """Return the detail tier a window reads: the coarsest giving at least 4 buckets."""
    return max([t for t in DETAIL_TIERS if window_s >= 4 * t] or [min(DETAIL_TIERS)])


def series_tier(window_s):
    """Return the summary tier of the chart series: the coarsest giving at least 30 points."""
    return max([t for t in SUMMARY_TIERS if window_s >= 30 * t] or [min(SUMMARY_TIERS)])


def _buckets(now, window_s, tier):
    first = int((now - window_s) // tier) * tier
    if first + tier <= now - window_s:
        first += tier
    return list(range(first, int(now // tier) * tier + 1, tier))


def _wanted(field, host, pid):
    name, _, number = field.decode().rpartition("|")
    if (host is not None and name != host) or (pid is not None and int(number) != pid):
        return None
    return name, int(number)


def query(store, window_s, host=None, pid=None, now=None):
    """Return the fleet's metrics over the last ``window_s`` s (the GET /api/admin/metrics body)."""
    now = time.time() if now is None else now
    d_tier, s_tier = detail_tier(window_s), series_tier(window_s)
    d_buckets, s_buckets = _buckets(now, window_s, d_tier), _buckets(now, window_s, s_tier)
    pipe = store.raw.pipeline(transaction=False)
    for start in d_buckets:
        pipe.hgetall(store.key("m", "d", d_tier, start))
    for start in s_buckets:
        pipe.hgetall(store.key("m", "s", s_tier, start))
    pipe.zrangebyscore(store.key("m", "workers"), now - max(window_s, 10), "+inf")
    replies = pipe.execute()
    details, summaries, recent = replies[:len(d_buckets)], replies[len(d_buckets):-1], replies[-1]

    wanted = functools.lru_cache(maxsize=None)(lambda field: _wanted(field, host, pid))
    endpoints, per_worker, by_status, total_us, hist = _merge_details(details, wanted)
    total = sum(by_status.values())
    errors = by_status["5xx"]
    span = max(now - d_buckets[0], 1.0)
    overall = hist.sum(axis=0, keepdims=True) if len(hist) else np.zeros((1, NBUCKETS))
    p50, p90, p95, p99 = percentile_rows(overall, (0.5, 0.9, 0.95, 0.99))[0] if total else (0.0,) * 4
    nonzero = np.nonzero(overall[0])[0]
    workers, system, overhead = _workers(store, recent, per_worker, wanted)
    return {
        "requests": {"total": total, "rate_per_s": round(total / span, 3), "errors": errors,
                     "error_rate": round(errors / total, 4) if total else 0.0, "by_status": by_status},
        "latency_ms": {"p50": _ms(p50), "p90": _ms(p90), "p95": _ms(p95), "p99": _ms(p99),
                       "max": _ms(BUCKET_MS[nonzero[-1]]) if len(nonzero) else 0.0,
                       "mean": _ms(total_us / total / 1000) if total else 0.0},
        "endpoints": endpoints,
        "workers": workers,
        "system": system,
        "series": _series(summaries, s_buckets, wanted),
        "window_s": window_s,
        "generated_at": round(now, 3),
        "resolution_s": {"table": d_tier, "series": s_tier},
        "overhead": overhead,
    }


def _ms(value):
    return round(float(value), 3)


def _merge_details(details, wanted):
    """Merge detail blobs: endpoint rows, per-worker counts, status counts, sum, dense histograms.

    The Python loop only slices each worker's blob; the numbers are read in one pass each.
    """
    index = {}
    seen = {}
    class_code = {c: i for i, c in enumerate(CLASSES)}
    owners, gids, classes, sums, triples, n_series, n_triples = [], [], [], [], [], [], []
    for fields in details:
        for field, blob in fields.items():
            worker = wanted(field)
            if worker is None:
                continue
            # Consecutive buckets of a worker mostly carry the same series list: map it once.
            head, numbers = split_detail(blob)
            mapped = seen.get(head)
            if mapped is None:
                names = json.loads(head)
                mapped = seen[head] = (
                    np.array([index.setdefault((e, m), len(index)) for e, m, _ in names], dtype=np.int64),
                    np.array([class_code[c] for _, _, c in names], dtype=np.int64))
            local, cls_codes = mapped
            cut = PAIR_BYTES * len(local)
            owners.append(worker)
            gids.append(local)
            classes.append(cls_codes)
            sums.append(numbers[:cut])
            triples.append(numbers[cut:])
            n_series.append(len(local))
            n_triples.append((len(numbers) - cut) // TRIPLE_BYTES)
    pairs = np.frombuffer(b"".join(sums), dtype=np.int64).reshape(-1, 2)
    per_field = np.bincount(np.repeat(np.arange(len(owners)), n_series), weights=pairs[:, 0], minlength=len(owners))
    per_worker = {}
    for worker, n in zip(owners, per_field.tolist()):
        per_worker[worker] = per_worker.get(worker, 0) + int(n)
    size = len(index)
    by_status = dict.fromkeys(("2xx", "3xx", "4xx", "5xx"), 0)
    if not size:
        return [], per_worker, by_status, 0, np.zeros((0, NBUCKETS))
    gid, cls = np.concatenate(gids), np.concatenate(classes)
    count = np.bincount(gid, weights=pairs[:, 0], minlength=size)
    micros = np.bincount(gid, weights=pairs[:, 1], minlength=size)
    failed = np.bincount(gid[cls == 4], weights=pairs[cls == 4, 0], minlength=size)
    for code, n in enumerate(np.bincount(cls, weights=pairs[:, 0], minlength=len(CLASSES))):
        if CLASSES[code] in by_status:
            by_status[CLASSES[code]] = int(n)
    flat = np.frombuffer(b"".join(triples), dtype=np.int32).reshape(-1, 3)
    first_row = np.concatenate(([0], np.cumsum(n_series)[:-1]))  # each field's first row in ``gid``
    rows = gid[np.repeat(first_row, n_triples) + flat[:, 0]]
    cells = rows * NBUCKETS + np.clip(flat[:, 1], 0, NBUCKETS - 1)
    hist = np.bincount(cells, weights=flat[:, 2], minlength=size * NBUCKETS).reshape(size, NBUCKETS)
    quantiles = percentile_rows(hist, (0.5, 0.95, 0.99))
    endpoints = [
        {"endpoint": endpoint, "method": method, "count": int(count[g]), "errors": int(failed[g]),
         "p50_ms": _ms(quantiles[g, 0]), "p95_ms": _ms(quantiles[g, 1]), "p99_ms": _ms(quantiles[g, 2]),
         "mean_ms": _ms(micros[g] / count[g] / 1000) if count[g] else 0.0}
        for (endpoint, method), g in index.items()]
    endpoints.sort(key=lambda row: (-row["count"], row["endpoint"], row["method"]))
    return endpoints, per_worker, by_status, int(micros.sum()), hist


def _series(summaries, starts, wanted):
    """Return the chart points: requests, errors and p95 of each bucket, all workers merged."""
    head = 8 * len(CLASSES)
    points, heads, tails = [], [], []
    for point, fields in enumerate(summaries):
        for field, raw in fields.items():
            if wanted(field) is not None:
                points.append(point)
                heads.append(raw[:head])
                tails.append(raw[head + 8:])  # past the classes and sum_us
    by_class = np.zeros((len(starts), len(CLASSES)), dtype=np.int64)
    hist = np.zeros((len(starts), NBUCKETS))
    if points:
        np.add.at(by_class, points, np.frombuffer(b"".join(heads), dtype=np.int64).reshape(-1, len(CLASSES)))
        pairs = np.frombuffer(b"".join(tails), dtype=np.int32).reshape(-1, 2)
        owner = np.repeat(points, [len(tail) // 8 for tail in tails])
        cells = owner * NBUCKETS + np.minimum(pairs[:, 0], NBUCKETS - 1)
        hist = np.bincount(cells, weights=pairs[:, 1],
                           minlength=len(starts) * NBUCKETS).reshape(len(starts), NBUCKETS)
    p95 = percentile_rows(hist, (0.95,))[:, 0]
    requests, errors = by_class.sum(axis=1), by_class[:, CLASSES.index("5xx")]
    return [{"t": start, "requests": int(requests[i]), "errors": int(errors[i]),
             "p95_ms": _ms(p95[i]) if requests[i] else None} for i, start in enumerate(starts)]


def _workers(store, recent, per_worker, wanted):
    """Return workers[] (seen in the window, or sampling now), the hosts' system mean, own cost."""
    names = {tuple(w) for w in per_worker}
    for member in recent:
        worker = wanted(member)
        if worker is not None:
            names.add(worker)
    names = sorted(names)
    samples = store.redis.mget([store.key("m", "w", h, p) for h, p in names]) if names else []
    workers = []
    hosts = {}
    hook_ns = hook_n = 0
    flush = []
    for (name, number), raw in zip(names, samples):
        sample = json.loads(raw) if raw else {}
        workers.append({
            "host": name, "pid": number, "requests": per_worker.get((name, number), 0),
            "rss_mb": sample.get("rss_mb"), "cpu_percent": sample.get("cpu_percent"),
            "threads": sample.get("threads"), "open_files": sample.get("open_files"),
            "gc": sample.get("gc"), "uptime_s": sample.get("uptime_s"),
            "rss_slope_mb_per_min": sample.get("rss_slope_mb_per_min"),
            "last_sample_s": round(time.time() - sample["ts"], 1) if sample else None})
        if sample:
            if sample["ts"] > hosts.get(name, ({}, 0))[1]:
                hosts[name] = (sample["system"], sample["ts"])
            hook_ns += sample["hook_ns"]
            hook_n += sample["hook_n"]
            flush.append(sample["flush_ms"])
    readings = [system for system, _ in hosts.values()]
    system = {"cpu_percent": None, "memory_percent": None, "load_avg": None}
    if readings:
        system = {
            "cpu_percent": round(sum(r["cpu_percent"] for r in readings) / len(readings), 1),
            "memory_percent": round(sum(r["memory_percent"] for r in readings) / len(readings), 1),
            "load_avg": [round(sum(r["load_avg"][i] for r in readings) / len(readings), 2) for i in range(3)],
            "hosts": len(readings)}
    overhead = {"hook_us_per_request": round(hook_ns / hook_n / 1000, 3) if hook_n else None,
                "flush_ms": round(sum(flush) / len(flush), 3) if flush else None}
    return workers, system, overhead


def recent_workers(store, window_s, now=None):
    """Return the (host, pid) of workers that sampled within the window, sorted."""
    now = time.time() if now is None else now
    members = store.redis.zrangebyscore(store.key("m", "workers"), now - window_s, "+inf")
    return sorted((host, int(pid)) for host, _, pid in (m.rpartition("|") for m in members))


def totals(store):
    """Return the fleet's lifetime request counts: {(endpoint, method, class): count}."""
    return {tuple(json.loads(field)): int(n) for field, n in store.redis.hgetall(store.key("m", "total")).items()}


_bytes_cache = {}


def redis_bytes(store, max_age=30.0):
    """Return the bytes Redis holds for metrics keys (MEMORY USAGE over a SCAN; cached)."""
    cached = _bytes_cache.get(store.prefix)
    if cached and time.monotonic() - cached[0] < max_age:
        return cached[1]
    total = 0
    keys = list(store.scan_prefix("m"))
    for i in range(0, len(keys), 500):
        pipe = store.redis.pipeline(transaction=False)
        for name in keys[i:i + 500]:
            pipe.memory_usage(name, samples=0)
        total += sum(n or 0 for n in pipe.execute())
    _bytes_cache[store.prefix] = (time.monotonic(), total)
    return total


def init_app(app, monitor, recorder):
    """Register the metrics shipper on this app's flusher."""
    monitor.metrics = recorder
    monitor.flusher.add_shipper(Shipper(monitor, recorder))
