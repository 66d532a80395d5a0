"""The read side: the fleet's metrics over a window, merged from every worker's buckets."""
import functools
import json
import time

import numpy as np

from .codec import CLASSES, PAIR_BYTES, TRIPLE_BYTES, split_detail
from .histogram import BUCKET_MS, NBUCKETS, percentile_rows
from .ship import DETAIL_TIERS, SUMMARY_TIERS


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

