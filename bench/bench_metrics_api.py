"""(c) ``GET /api/admin/metrics`` latency with 8 workers × 200 endpoints × 1 hour of data in Redis.

Synthesises the data the shippers would have written (every tier, every bucket of the last
hour, each endpoint with a spread of latencies), then times ``metrics.query`` alone and the
full GET (auth, JSON) through the app for several windows. Also prints the Redis bytes the
data holds per tier, per series and per day. Target: p99 of the GET ≤ 25 ms for the default
60 s window.
"""
import os
import random
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from monitor import create_app  # noqa: E402
from monitor.auth.users import Users  # noqa: E402
from monitor.capabilities.metrics import codec, histogram, query, ship  # noqa: E402
from monitor.core.state import state  # noqa: E402

WORKERS = 8
ENDPOINTS = 200
HOUR = 3600
RUNS = 200
WINDOWS = (60, 300, 3600, 86400)


def bucket_series(rnd, scale):
    """One bucket's series of one worker: each endpoint with ~``scale`` requests of spread latency."""
    acc = {}
    for e in range(ENDPOINTS):
        count = max(1, int(rnd.expovariate(1 / scale)))
        base = 2e6 * (1 + e % 20)
        buckets = {}
        for _ in range(min(count, 12)):  # a dozen distinct latencies per endpoint and bucket
            idx = histogram.bucket_index(rnd.lognormvariate(0, 0.4) * base)
            buckets[idx] = buckets.get(idx, 0) + max(1, count // 12)
        n = sum(buckets.values())
        acc[(f"/api/v1/resource{e}/<id>", "GET", "5xx" if e % 50 == 0 else "2xx")] = [n, int(n * base), buckets]
    return acc


def synthesise(store, now):
    """Write what 8 workers × 200 endpoints would ship over the last hour."""
    rnd = random.Random(42)
    pipe = store.raw.pipeline(transaction=False)
    for tier, ttl in ship.DETAIL_TIERS.items():
        first = int((now - min(HOUR, ttl)) // tier) * tier
        for start in range(first, int(now // tier) * tier + 1, tier):
            for w in range(WORKERS):
                name = store.key("m", "d", tier, start)
                pipe.hset(name, f"host{w // 4}|{1000 + w}", codec.encode_detail(bucket_series(rnd, tier / 5)))
                pipe.expire(name, ttl)
            pipe.execute()
    for tier, ttl in ship.SUMMARY_TIERS.items():
        first = int((now - min(HOUR, ttl)) // tier) * tier
        for start in range(first, int(now // tier) * tier + 1, tier):
            for w in range(WORKERS):
                name = store.key("m", "s", tier, start)
                acc = bucket_series(rnd, tier / 5) if tier >= 60 else {
                    k: v for k, v in list(bucket_series(rnd, 1).items())[:20]}
                pipe.hset(name, f"host{w // 4}|{1000 + w}", codec.encode_summary(acc))
                pipe.expire(name, ttl)
            pipe.execute()
    for w in range(WORKERS):
        host, pid = f"host{w // 4}", 1000 + w
        pipe.set(store.key("m", "w", host, pid), (
            '{"rss_mb":80.0,"cpu_percent":3.0,"threads":3,"open_files":9,"gc":[1,2,3],"uptime_s":3600,'
            f'"host":"{host}","pid":{pid},"ts":{now},"requests_total":1,"in_flight":0,'
            '"rss_slope_mb_per_min":0.0,"hook_ns":2000,"hook_n":1,"flush_ms":1.0,'
            '"system":{"cpu_percent":10.0,"memory_percent":20.0,"load_avg":[0.1,0.2,0.3]}}'), ex=ship.SAMPLE_TTL)
        pipe.zadd(store.key("m", "workers"), {f"{host}|{pid}": now})
    pipe.execute()


def held_bytes(store):
    """Return MEMORY USAGE by key family: {(kind, tier): (bytes, keys)}."""
    out = {}
    for name in store.scan_prefix("m"):
        parts = name.split(":")
        family = (parts[2], int(parts[3])) if parts[2] in ("d", "s") else (parts[2], 0)
        size, count = out.get(family, (0, 0))
        out[family] = (size + (store.redis.memory_usage(name, samples=0) or 0), count + 1)
    return out


def flush_cost(app):
    """Return the median and max ms of a flusher tick while 200 series take 1000 requests/s."""
    monitor = state(app)
    rnd = random.Random(1)
    now = time.time()
    times = []
    for tick in range(30):
        for e in range(ENDPOINTS):
            for _ in range(5):
                monitor.recorder.record((f"/flush/r{e}", "GET", "2xx"), int(rnd.lognormvariate(15, 1)))
        started = time.perf_counter()
        monitor.flusher.tick(now + tick)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"MONITOR_INSTANCE_PATH": tmp, "MONITOR_KEY_PREFIX": "benchmetrics", "MONITOR_DEMO": False})
        monitor = state(app)
        store = monitor.store
        now = time.time()
        started = time.perf_counter()
        synthesise(store, now)
        print(f"synthesised {WORKERS} workers × {ENDPOINTS} endpoints × 1 h in {time.perf_counter() - started:.1f} s")
        users = Users(store)
        users.create("bench", "viewer", "bench-password-123")
        headers = {"Authorization": f"Bearer {users.create_token('bench')}"}
        client = app.test_client()
        print(f"\n{'window':>8} {'rows':>5} {'query p50':>10} {'query p99':>10} {'GET p50':>9} {'GET p99':>9}  target")
        for window in WINDOWS:
            query_ms, get_ms = [], []
            for _ in range(RUNS if window <= 3600 else RUNS // 4):
                t0 = time.perf_counter()
                body = query.query(store, window, now=now)
                query_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                response = client.get(f"/api/admin/metrics?window={window}", headers=headers)
                get_ms.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200
            target = "≤ 25 ms" if window == 60 else ""
            print(f"{window:>8} {len(body['endpoints']):>5} {statistics.median(query_ms):>9.1f}m "
                  f"{pct(query_ms, .99):>9.1f}m {statistics.median(get_ms):>8.1f}m {pct(get_ms, .99):>8.1f}m  {target}")
        print("\nRedis bytes held (this synthetic hour):")
        sizes = held_bytes(store)
        series = WORKERS * ENDPOINTS
        print(f"{'family':>10} {'keys':>6} {'MiB':>8} {'B/series/bucket':>16} {'buckets kept':>13} {'B/series kept':>14}")
        steady = 0
        for (kind, tier), (size, keys) in sorted(sizes.items()):
            if kind != "d":
                print(f"{kind + (':' + str(tier) if tier else ''):>10} {keys:>6} {size / 2**20:>8.2f}")
                continue
            per = size / keys / series
            kept = ship.DETAIL_TIERS[tier] // tier
            steady += per * kept
            print(f"{'d:' + str(tier):>10} {keys:>6} {size / 2**20:>8.2f} {per:>16.0f} {kept:>13} {per * kept:>14.0f}")
        print(f"\nper series (endpoint × method × class, per worker) at steady state: {steady / 1024:.0f} KiB held; "
              f"it turns over within 25 h, so that is also bytes per series per day")
        monitor.flusher.stop(flush=False)
        median, worst = flush_cost(app)
        print(f"\none worker's flush with {ENDPOINTS} busy series (1000 requests/s): "
              f"median {median:.1f} ms, max {worst:.1f} ms per tick")
        for name in store.scan_prefix(""):
            store.redis.delete(name)


if __name__ == "__main__":
    main()
