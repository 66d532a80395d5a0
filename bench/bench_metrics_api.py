"""(c) ``GET /api/admin/metrics`` over 30 days of a fleet's data; Redis bytes per tier.

Writes what 30 days of roll-ups leave in Redis for 200 endpoints and 512 workers on 32 hosts
(every bucket of every kept tier, each a merged record as ``compact`` stores it, from the
fleet serving ``RATE`` requests/s with a lognormal latency per endpoint), then times the
full GET (auth, JSON) through the app for windows of 60 s to 30 days, and prints the Redis
bytes of each tier: per series and day, and at steady state. The fleet simulator
(``bench_fleet.py``) measures the same with the real flushes, for one hour of data.

Targets: GET p99 ≤ 50 ms for 60 s, 300 s and 1 h; ≤ 150 ms for 24 h and 30 d. The 1 h tier
of 200 endpoints, kept 30 days, under 100 MiB.
"""
import math
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench_fleet import time_gets  # noqa: E402  (this folder)

from monitor import create_app  # noqa: E402
from monitor.auth.users import Users  # noqa: E402
from monitor.capabilities.metrics import codec, histogram, layout, query, ship  # noqa: E402
from monitor.core.state import state  # noqa: E402

ENDPOINTS = 200
WORKERS = 512
HOSTS = 32
RATE = 1000
RUNS = 60
WINDOWS = (60, 300, 3600, 86400, 7 * 86400, 30 * 86400)
TARGET_MS = {60: 50, 300: 50, 3600: 50, 86400: 150, 30 * 86400: 150}
CLASS_SHARE = {"2xx": 0.93, "4xx": 0.05, "5xx": 0.02}
VARIANTS = 5
#: Bucket boundaries (ns) of the histogram, for the expected share of each bucket.
EDGES = np.array([histogram.GAMMA ** (i + histogram.OFFSET) for i in range(histogram.NBUCKETS + 1)])


def latency_shares(median_ns, sigma=0.6):
    """Return the share of a lognormal latency that falls in each histogram bucket."""
    z = (np.log(EDGES) - math.log(median_ns)) / (sigma * math.sqrt(2))
    cdf = 0.5 * (1 + np.array([math.erf(v) for v in z]))
    return np.diff(cdf)


SHARES = [latency_shares(2e6 * (1 + e % 20)) for e in range(ENDPOINTS)]


def fleet_rows(span_s, rng):
    """Return the endpoint rows of ``span_s`` seconds of the fleet's traffic (random draws)."""
    rows = {}
    per_endpoint = RATE * span_s / ENDPOINTS
    for e, shares in enumerate(SHARES):
        for cls, share in CLASS_SHARE.items():
            counts = rng.multinomial(rng.poisson(per_endpoint * share), shares / shares.sum())
            total = int(counts.sum())
            if total:
                nonzero = np.nonzero(counts)[0]
                rows[(f"/api/v1/resource{e}/<id>", "GET", cls)] = [
                    total, int(total * 2e6 * (1 + e % 20)), dict(zip(nonzero.tolist(), counts[nonzero].tolist()))]
    return rows


def kind_rows(kind, detail):
    """Return the rows of ``kind`` for the fleet's endpoint rows (hosts and workers share them evenly)."""
    if kind == "d":
        return detail
    if kind == "s":
        return codec.group(detail, lambda key: (key[2],))
    if kind == "h":
        out = {}
        for host in range(HOSTS):
            share = codec.group(detail, lambda key, h=host: (f"host{h}", key[2]))
            for row in share.values():
                row[0] //= HOSTS
                row[1] //= HOSTS
                row[2] = {i: n // HOSTS or 1 for i, n in row[2].items()}
            out.update(share)
        return out
    total = sum(row[0] for row in detail.values()) // WORKERS
    return {(f"host{w // (WORKERS // HOSTS)}", 10_000 + w): [total, total * 5_000_000, {1: total}]
            for w in range(WORKERS)}


def synthesise(store, now):
    """Write every kept bucket of every tier: one merged, rolled record each (the open ones too)."""
    rng = np.random.default_rng(42)
    pipe = store.raw.pipeline(transaction=False)
    for kind, tiers in layout.TIERS.items():
        for tier, kept in tiers.items():
            # a few draws of the steady traffic a tier's bucket holds, taken in turn
            variants = [codec.pack(codec.decode(codec.encode(kind_rows(kind, fleet_rows(tier, rng)))),
                                   layout.compressed(kind, tier), rolled=True) for _ in range(VARIANTS)]
            last = int(now // tier) * tier
            first = max(int((now - kept - tier) // tier) * tier, last - (30 * 86400 // tier + 1) * tier)
            for i, start in enumerate(range(first, last + 1, tier)):
                name = layout.name(store, kind, tier, start)
                pipe.rpush(name, variants[i % VARIANTS])
                pipe.expireat(name, layout.expires(kind, tier, start))
            pipe.execute()
    for w in range(WORKERS):
        host, pid = f"host{w // (WORKERS // HOSTS)}", 10_000 + w
        pipe.set(store.key("m", "sample", host, pid), (
            '{"rss_mb":80.0,"cpu_percent":3.0,"threads":3,"open_files":9,"gc":[1,2,3],"uptime_s":3600,'
            f'"host":"{host}","pid":{pid},"ts":{now},"requests_total":1,"in_flight":0,'
            '"rss_slope_mb_per_min":0.0,"hook_ns":2000,"hook_n":1,"flush_ms":1.0,'
            '"system":{"cpu_percent":10.0,"memory_percent":20.0,"load_avg":[0.1,0.2,0.3]}}'), ex=ship.SAMPLE_TTL)
        pipe.zadd(store.key("m", "workers"), {f"{host}|{pid}": now})
    pipe.execute()


def held_bytes(store):
    """Return {(kind, tier): (bytes, keys)} by MEMORY USAGE."""
    out = {}
    names = [n for n in store.scan_prefix("m") if n.split(":")[2] in layout.TIERS]
    pipe = store.redis.pipeline(transaction=False)
    for name in names:
        pipe.memory_usage(name, samples=0)
    for name, size in zip(names, pipe.execute()):
        kind, tier, _ = layout.parse(name)
        held, count = out.get((kind, tier), (0, 0))
        out[(kind, tier)] = (held + (size or 0), count + 1)
    return out


def duration(seconds):
    return f"{seconds / 86400:.0f} d" if seconds >= 86400 else f"{seconds / 3600:.1f} h" if seconds >= 3600 \
        else f"{seconds / 60:.0f} min"


def main():
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"MONITOR_INSTANCE_PATH": tmp, "MONITOR_KEY_PREFIX": "benchmetrics", "MONITOR_DEMO": False})
        monitor = state(app)
        monitor.flusher.stop(flush=False)
        store = monitor.store
        now = time.time()
        started = time.perf_counter()
        synthesise(store, now)
        series = len(fleet_rows(3600, np.random.default_rng(1)))
        print(f"synthesised 30 days of {ENDPOINTS} endpoints ({series} series), {WORKERS} workers on {HOSTS} hosts, "
              f"{RATE} requests/s, in {time.perf_counter() - started:.1f} s")
        users = Users(store)
        users.create("bench", "viewer", "bench-password-123")
        headers = {"Authorization": f"Bearer {users.create_token('bench')}"}
        print(f"\n{'window':>8} {'rows':>5} {'buckets read':>12} {'GET p50':>8} {'GET p99':>8} {'CPU p50':>8}  target")
        for window, (p50, p99, cpu, body) in time_gets(app.test_client(), headers, WINDOWS, RUNS).items():
            target = f"p99 ≤ {TARGET_MS[window]} ms" if window in TARGET_MS else ""
            read = len(layout_reads(window, now))
            print(f"{window:>8} {len(body['endpoints']):>5} {read:>12} {p50:>7.1f}m {p99:>7.1f}m {cpu:>7.1f}m  {target}")
        print("\nRedis bytes by tier (MEMORY USAGE; each bucket one merged record)")
        print("(a row: an endpoint series for d, a status class for s, a host's class for h, a worker for w)")
        print(f"{'tier':>9} {'kept':>8} {'keys':>5} {'MiB':>7} {'B/row/bucket':>12} {'B/row/day':>10} "
              f"{'B/row held':>10} {'steady MiB':>10}")
        for (kind, tier), (size, keys) in sorted(held_bytes(store).items()):
            rows = {"d": series, "s": 3, "h": 3 * HOSTS, "w": WORKERS}[kind]
            per_bucket = size / keys / rows
            kept = layout.TIERS[kind][tier]
            held = per_bucket * (kept // tier + 1)
            print(f"{kind + ':' + str(tier):>9} {duration(kept):>8} {keys:>5} {size / 2**20:>7.2f} "
                  f"{per_bucket:>12.0f} {per_bucket * 86400 / tier:>10.0f} {held:>10.0f} {held * rows / 2**20:>10.2f}")
        hour = held_bytes(store)[("d", 3600)][0]
        print(f"\nthe 1 h tier of {ENDPOINTS} endpoints, 30 days: {hour / 2**20:.1f} MiB (target < 100 MiB); "
              f"all metrics: {sum(s for s, _ in held_bytes(store).values()) / 2**20:.1f} MiB")
        for name in store.scan_prefix(""):
            store.redis.delete(name)


def layout_reads(window, now):
    """Return the buckets a fleet query of ``window`` reads (endpoint table, workers, chart)."""
    chart = query.resolution("s", window, now)
    return (query.expand("d", query.plan("d", window, now), now) + query.expand("w", query.plan("w", window, now), now)
            + query.expand("s", [(chart, s) for s in query.chart_starts(window, chart, now)], now))


if __name__ == "__main__":
    main()
