"""The read side: the fleet's metrics over a window, from the merged buckets of ``ship.py``.

A window is covered by few buckets whatever its length (``plan``): the finest tier still kept
at the window's start for its first bucket, then at each step the coarsest bucket that
starts there. Buckets that closed less than ``layout.lag`` ago may not have rolled up
yet, so the finer buckets of that span are read too (``expand``), each record counted at
one level only (a rolled record's rows are in its parent), in one MULTI/EXEC so no roll-up
falls between two reads. Every bucket is one merged record plus a bounded few appended since
(``compact``): a query reads a bounded number of bytes however many workers write.

What a scope can show:

- the whole fleet: everything (endpoint rows with percentiles, totals, chart, workers[]);
- ``host=``: the host's totals, status classes, percentiles and chart (kind ``h``), its workers;
- ``pid=`` (with or without ``host=``): the worker's totals, status classes, mean latency and
  chart of requests and errors (kind ``w``); no percentiles (``null``): keeping a histogram per
  worker would make the store grow with the workers again.

Endpoint rows are the fleet's only: under ``host=`` or ``pid=`` ``endpoints`` is empty.
"""
import json
import time

import numpy as np

from . import codec, layout
from .codec import CLASS_CODE, CLASSES
from .histogram import BUCKET_MS, NBUCKETS, percentile_rows
from .layout import TIERS

#: The longest window the API, the panel and /metrics answer: 30 days.
MAX_WINDOW_S = 30 * 86400
#: A bucket counts as kept until this long before its TTL runs out (clocks of hosts differ).
MARGIN_S = 30
#: A window is resolved (its table's first bucket, its chart's points) by the coarsest tier
#: that gives at least this many buckets.
POINTS = 24
ERRORS = CLASS_CODE["5xx"]
#: The scope of a query → (kind of its totals, kind of its chart).
KINDS = {"fleet": ("d", "s"), "host": ("h", "h"), "worker": ("w", "w")}


def kept(kind, tier, start, now):
    """Tell whether the bucket of ``tier`` starting at ``start`` is still in Redis."""
    return start + tier + TIERS[kind][tier] - MARGIN_S > now


def resolution(kind, window_s, now):
    """Return the tier that resolves a window: the coarsest giving ``POINTS`` buckets in it,
    among those still kept at its start (the finest of them for a short window)."""
    lo = now - window_s
    usable = [t for t in sorted(TIERS[kind]) if kept(kind, t, int(lo // t) * t, now)] or [max(TIERS[kind])]
    return max([t for t in usable if window_s >= POINTS * t] or usable[:1])


def plan(kind, window_s, now):
    """Return the ``(tier, start)`` buckets of ``kind`` that cover the last ``window_s`` s.

    The first bucket is the window's ``resolution`` bucket that holds its start (so the cover
    reaches back at most 1/``POINTS`` of the window further); each next one is the coarsest
    that starts where the last ended.
    """
    tiers = sorted(TIERS[kind])
    edge = resolution(kind, window_s, now)
    cursor = int((now - window_s) // edge) * edge
    out = [(edge, cursor)]
    cursor += edge
    while cursor <= now:
        tier = max(t for t in tiers if cursor % t == 0 and (t == edge or kept(kind, t, cursor, now)))
        out.append((tier, cursor))
        cursor += tier
    return out


def expand(kind, roots, now, lag_s=layout.LAG_S):
    """Return ``[(root index, tier, start, is root)]``: the buckets ``roots`` and, under those
    that closed less than ``lag_s`` ago, the finer buckets of that span (recursively)."""
    out = []

    def visit(i, tier, start, root):
        out.append((i, tier, start, root))
        below = layout.finer(kind, tier)
        if below is None or start + tier <= now - lag_s:
            return
        for child in range(start, min(start + tier, int(now // below) * below + 1), below):
            if child + below > now - lag_s:
                visit(i, below, child, False)

    for i, (tier, start) in enumerate(roots):
        visit(i, tier, start, True)
    return out


def chart_starts(window_s, tier, now):
    """Return the bucket starts of a window's chart points."""
    return list(range(int((now - window_s) // tier) * tier, int(now // tier) * tier + 1, tier))


class Sums:
    """Rows of many records added up by group and point: counts by status class, µs sums and
    dense latency histograms. ``key(name)`` gives a row's group, or None to leave it out;
    ``parts`` are ``(point, Record)``. Worker rows (``workers``) have no latency histogram:
    their triples are their counts by class."""

    def __init__(self, parts, key, points=1, workers=False):
        self.index = {}
        mapped = {}  # decoded records share the list of a names list seen before: map it once
        rows, triples = [], []
        for point, record in parts:
            found = mapped.get(id(record.names))
            if found is None:
                found = mapped[id(record.names)] = (
                    np.array([-1 if (g := key(name)) is None else self.index.setdefault(g, len(self.index))
                              for name in record.names], dtype=np.int64),
                    np.array([CLASS_CODE.get(name[-1], 0) for name in record.names], dtype=np.int64))
            gid, cls = found
            rows.append((point, gid, cls, record.counts, record.sums))
            if len(record.rows):
                triples.append((point, gid[record.rows], record.buckets, record.hits))
        size = self.size = len(self.index)
        self.by_class = np.zeros((points, size, len(CLASSES)))
        self.sums = np.zeros(size)
        self.hist = None if workers else np.zeros((points, size, NBUCKETS))
        if not size:
            return
        point = np.repeat([r[0] for r in rows], [len(r[1]) for r in rows])
        gid, cls, counts, sums = (np.concatenate([r[i] for r in rows]) for i in range(1, 5))
        keep = gid >= 0
        self.sums = np.bincount(gid[keep], weights=sums[keep], minlength=size)
        if not workers:
            self.by_class = self._add(((point * size + gid) * len(CLASSES) + cls)[keep], counts[keep],
                                      (points, size, len(CLASSES)))
        if triples:
            point = np.repeat([t[0] for t in triples], [len(t[1]) for t in triples])
            gid, bucket, hits = (np.concatenate([t[i] for t in triples]) for i in range(1, 4))
            keep = gid >= 0
            width = len(CLASSES) if workers else NBUCKETS
            cells = ((point * size + gid) * width + np.minimum(bucket, width - 1).astype(np.int64))[keep]
            if workers:
                self.by_class = self._add(cells, hits[keep], (points, size, width))
            else:
                self.hist = self._add(cells, hits[keep], (points, size, width))

    @staticmethod
    def _add(cells, weights, shape):
        return np.bincount(cells, weights=weights, minlength=int(np.prod(shape))).reshape(shape)


def _key(scope, host, pid):
    """Return the group key of a total's rows for this scope (one group, 0), or None to leave a row out."""
    if scope == "fleet":
        return lambda name: (name[0], name[1])  # (endpoint, method)
    if scope == "host":
        return lambda name: 0 if name[0] == host else None
    return lambda name: 0 if name[1] == pid and host in (None, name[0]) else None


def _chart_key(scope, host, pid):
    return (lambda name: 0) if scope == "fleet" else _key(scope, host, pid)


def query(store, window_s, host=None, pid=None, now=None, lag_s=layout.LAG_S):
    """Return the fleet's metrics over the last ``window_s`` s (the GET /api/admin/metrics body);
    ``lag_s``: ``layout.lag`` of the fleet's flush interval."""
    now = time.time() if now is None else now
    scope = "worker" if pid is not None else "host" if host is not None else "fleet"
    total_kind, chart_kind = KINDS[scope]
    totals_plan = plan(total_kind, window_s, now)
    chart_s = resolution(chart_kind, window_s, now)
    starts = chart_starts(window_s, chart_s, now)
    reads = {"totals": (total_kind, expand(total_kind, totals_plan, now, lag_s)),
             "workers": ("w", expand("w", plan("w", window_s, now), now, lag_s)),
             "chart": (chart_kind, expand(chart_kind, [(chart_s, s) for s in starts], now, lag_s))}
    names = list(dict.fromkeys(layout.name(store, kind, t, s) for kind, found in reads.values()
                               for _, t, s, _ in found))
    pipe = store.raw.pipeline(transaction=True)  # one snapshot: no roll-up between two reads
    for name in names:
        pipe.lrange(name, 0, -1)
    pipe.zrangebyscore(store.key("m", "workers"), now - max(window_s, 10), "+inf")
    replies = pipe.execute()
    blobs = dict(zip(names, replies))
    recent = [m.decode() for m in replies[-1]]

    def parts(part):
        """Return ``(point, Record)`` of one read: every record of a root bucket, the not yet
        rolled records of the finer ones."""
        kind, found = reads[part]
        return [(i, codec.decode(blob)) for i, t, s, root in found
                for blob in blobs[layout.name(store, kind, t, s)] if root or not codec.rolled(blob)]

    totals = Sums([(0, r) for _, r in parts("totals")], _key(scope, host, pid), workers=scope == "worker")
    by_class = totals.by_class[0].sum(axis=0)
    by_status = {c: int(by_class[CLASS_CODE[c]]) for c in ("2xx", "3xx", "4xx", "5xx")}
    total, errors = int(by_class.sum()), int(by_class[ERRORS])
    micros = float(totals.sums.sum())
    span = max(now - totals_plan[0][1], 1.0)
    if totals.hist is not None:
        overall = totals.hist[0].sum(axis=0, keepdims=True)
        p50, p90, p95, p99 = (_ms(v) for v in percentile_rows(overall, (0.5, 0.9, 0.95, 0.99))[0])
        nonzero = np.nonzero(overall[0])[0]
        top = _ms(BUCKET_MS[nonzero[-1]]) if len(nonzero) else 0.0
    else:
        p50 = p90 = p95 = p99 = top = None
    wanted = _key("worker", host, pid) if pid is not None else _key("host", host, None) if host else None
    workers = Sums([(0, r) for _, r in parts("workers")],
                   lambda n: n if wanted is None or wanted(n) is not None else None, workers=True)
    per_worker = {worker: int(workers.by_class[0, g].sum()) for worker, g in workers.index.items()}
    chart = Sums(parts("chart"), _chart_key(scope, host, pid), points=len(starts), workers=chart_kind == "w")
    worker_rows, system, overhead = _workers(store, recent, per_worker, host, pid)
    return {
        "requests": {"total": total, "rate_per_s": round(total / span, 3), "errors": errors,
                     "error_rate": round(errors / total, 4) if total else 0.0, "by_status": by_status},
        "latency_ms": {"p50": p50, "p90": p90, "p95": p95, "p99": p99, "max": top,
                       "mean": _ms(micros / total / 1000) if total else 0.0},
        "endpoints": _endpoints(totals) if scope == "fleet" else [],
        "workers": worker_rows,
        "system": system,
        "series": _series(chart, starts),
        "window_s": window_s,
        "generated_at": round(now, 3),
        "scope": {"kind": scope, "endpoints": scope == "fleet", "percentiles": scope != "worker"},
        "resolution_s": {"table": totals_plan[0][0], "series": chart_s},
        "overhead": overhead,
    }


def _ms(value):
    return round(float(value), 3)


def _endpoints(totals):
    """Return the endpoint rows, busiest first."""
    if not totals.size:
        return []
    count = totals.by_class[0].sum(axis=1)
    failed = totals.by_class[0, :, ERRORS]
    quantiles = percentile_rows(totals.hist[0], (0.5, 0.95, 0.99))
    rows = [
        {"endpoint": endpoint, "method": method, "count": int(count[g]), "errors": int(failed[g]),
         "p50_ms": _ms(quantiles[g, 0]), "p95_ms": _ms(quantiles[g, 1]), "p99_ms": _ms(quantiles[g, 2]),
         "mean_ms": _ms(totals.sums[g] / count[g] / 1000) if count[g] else 0.0}
        for (endpoint, method), g in totals.index.items()]
    rows.sort(key=lambda row: (-row["count"], row["endpoint"], row["method"]))
    return rows


def _series(chart, starts):
    """Return the chart points: requests, errors and p95 (None without histograms) of each bucket."""
    if chart.size:
        by_class = chart.by_class[:, 0, :]
        requests, errors = by_class.sum(axis=1), by_class[:, ERRORS]
    else:
        requests = errors = np.zeros(len(starts))
    p95 = percentile_rows(chart.hist[:, 0, :], (0.95,))[:, 0] if chart.hist is not None and chart.size else None
    return [{"t": start, "requests": int(requests[i]), "errors": int(errors[i]),
             "p95_ms": _ms(p95[i]) if p95 is not None and requests[i] else None} for i, start in enumerate(starts)]


def _workers(store, recent, per_worker, host, pid):
    """Return workers[] (seen in the window, or sampling now), the hosts' system mean, own cost."""
    names = set(per_worker)
    for member in recent:
        name, _, number = member.rpartition("|")
        if (host is None or name == host) and (pid is None or int(number) == pid):
            names.add((name, int(number)))
    names = sorted(names)
    samples = store.redis.mget([store.key("m", "sample", h, p) for h, p in names]) if names else []
    workers = []
    hosts = {}
    path_ns = path_n = flusher_cpu_s = requests = uptime_s = 0
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
            path_ns += sample.get("path_ns", 0)
            path_n += sample.get("path_n", 0)
            flusher_cpu_s += sample.get("flusher_cpu_s", 0.0)
            requests += sample.get("requests_total", 0)
            uptime_s += sample.get("uptime_s", 0.0)
            flush.append(sample["flush_ms"])
    readings = [system for system, _ in hosts.values()]
    system = {"cpu_percent": None, "memory_percent": None, "load_avg": None}
    if readings:
        system = {
            "cpu_percent": round(sum(r["cpu_percent"] for r in readings) / len(readings), 1),
            "memory_percent": round(sum(r["memory_percent"] for r in readings) / len(readings), 1),
            "load_avg": [round(sum(r["load_avg"][i] for r in readings) / len(readings), 2) for i in range(3)],
            "hosts": len(readings)}
    return workers, system, _overhead(path_ns, path_n, flusher_cpu_s, requests, uptime_s, flush)


def _overhead(path_ns, path_n, flusher_cpu_s, requests, uptime_s, flush):
    """Return the monitor's own CPU per host-app request: its timing point (a sample of requests
    timed with perf_counter_ns) plus its flusher thread (time.thread_time over every tick), summed
    over the workers' lifetimes; the flusher's CPU per second of uptime; the mean flush."""
    path = path_ns / path_n / 1000 if path_n else None
    flusher = flusher_cpu_s * 1e6 / requests if requests else None
    return {"cpu_us_per_request": round(path + flusher, 3) if path is not None and flusher is not None else None,
            "path_us_per_request": round(path, 3) if path is not None else None,
            "flusher_us_per_request": round(flusher, 3) if flusher is not None else None,
            "flusher_ms_per_s": round(flusher_cpu_s * 1000 / uptime_s, 3) if uptime_s else None,
            "flush_ms": round(sum(flush) / len(flush), 3) if flush else None}


def recent_workers(store, window_s, now=None):
    """Return the (host, pid) of workers that sampled within the window, sorted."""
    now = time.time() if now is None else now
    members = store.redis.zrangebyscore(store.key("m", "workers"), now - window_s, "+inf")
    return sorted((host, int(pid)) for host, _, pid in (m.rpartition("|") for m in members))


def totals(store):
    """Return the fleet's lifetime request counts: {(endpoint, method, class): count}."""
    merged = codec.merge([codec.decode(blob) for blob in store.raw.lrange(store.key("m", "t"), 0, -1)])
    return {name: int(n) for name, n in zip(merged.names, merged.counts) if n}


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
