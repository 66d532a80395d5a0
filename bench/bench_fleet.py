"""Fleet simulator: N workers running the real recorder, shipper, compaction and flusher against
one redis-server, for N = 8, 64 and 512 workers × 200 endpoints.

Each simulated worker is what a gunicorn worker holds: a ``Recorder``, a ``Flusher`` with the
metrics ``Shipper`` (and its ``Compactor`` task), and its own host and pid (16 workers a host).
The fleet's request rate is held fixed, so only the number of workers changes between rows:

1. **fill**: one hour of traffic in virtual time. Every worker records its share of each step
   and flushes (``Flusher.tick(now)``): 60 s steps up to 15 minutes ago (older 10 s buckets have
   expired by then, and the shipper writes such flushes to the 60 s tier), 10 s steps after.
   So the buckets hold what an hour of flushes and roll-ups leaves behind, except the 1 s and
   10 s chart tiers, which get one bucket a step (a few hundred KiB less, the same for every N).
2. **live**: every worker's flusher thread runs at a 1 s interval for ``--live`` seconds while a
   driver records the same traffic in real time. Measured: Redis CPU (INFO cpu), commands per
   second, flush latency (each ``tick``, compaction included, while N threads share one GIL).
3. **memory**: MEMORY USAGE of the metrics keys (1 h of data), and Redis ``used_memory``.
4. **query**: ``GET /api/admin/metrics`` through the app for windows of 60 s to 30 days.

Prints one table, the memory ratio of the largest to the smallest fleet (target ≤ 1.5×),
and the paper figure: how many workers one Redis core carries at a 1 s flush.
"""
import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from monitor import create_app  # noqa: E402
from monitor.auth.users import Users  # noqa: E402
from monitor.capabilities.metrics import query  # noqa: E402
from monitor.capabilities.metrics.collect import Recorder  # noqa: E402
from monitor.capabilities.metrics.ship import Shipper  # noqa: E402
from monitor.core.flusher import Flusher  # noqa: E402
from monitor.core.process import ProcessInfo  # noqa: E402
from monitor.core.state import Requests, state  # noqa: E402
from monitor.core.store import Store  # noqa: E402
from support.redis_servers import SystemRedis  # noqa: E402

WORKERS_PER_HOST = 16
#: Redis timeout of the simulated workers: N threads share one GIL here, so a reply may wait
#: for its thread far longer than in a worker process of its own.
TIMEOUT_S = 10.0
WINDOWS = (60, 300, 3600, 86400, 30 * 86400)
TARGET_MS = {60: 50, 300: 50, 3600: 50, 86400: 150, 30 * 86400: 150}


class SimProcess(ProcessInfo):
    """The identity of one simulated worker, with fixed psutil readings (all share one process)."""

    def __init__(self, host, pid):
        super().__init__(host)
        self.pid = pid

    def sample(self):
        return {"rss_mb": 80.0, "cpu_percent": 3.0, "threads": 3, "open_files": 9, "gc": [1, 2, 3],
                "uptime_s": round(self.uptime, 1)}


class TimedFlusher(Flusher):
    """The real flusher, keeping the wall and CPU (this thread's) time of each tick."""

    def __init__(self, store, interval):
        super().__init__(store, interval)
        self.ticks = []

    def tick(self, now=None):
        started, cpu = time.perf_counter(), time.thread_time()
        super().tick(now)
        self.ticks.append((time.perf_counter() - started, time.thread_time() - cpu))


class Worker:
    """What the metrics shipper reads from a worker's MonitorState."""

    def __init__(self, store, host, pid, interval):
        self.store = store
        self.process = SimProcess(host, pid)
        self.requests = Requests()
        self.flusher = TimedFlusher(store, interval)
        self.recorder = Recorder(self.requests, 2000)
        self.shipper = self.flusher.add_shipper(Shipper(self, self.recorder))


class Traffic:
    """The fleet's requests: ``endpoints`` GET routes, each with its own lognormal latency,
    about 1 in 50 answered 5xx and 1 in 20 answered 4xx."""

    def __init__(self, endpoints, seed=7):
        rnd = random.Random(seed)
        self.pool = []
        for _ in range(50_000):
            e = rnd.randrange(endpoints)
            status = 500 if rnd.random() < 0.02 else 404 if rnd.random() < 0.05 else 200
            ns = int(rnd.lognormvariate(0, 0.6) * 2e6 * (1 + e % 20))
            self.pool.append((f"/api/v1/resource{e}/<id>", "GET", status, ns))
        self.at = 0
        self.recorded = 0

    def record(self, recorder, n):
        pool, at = self.pool, self.at
        for i in range(n):
            recorder.record(*pool[(at + i) % len(pool)])
        self.at = (at + n) % len(pool)
        self.recorded += n


def redis_stats(store):
    info = store.redis.info()
    return info["used_cpu_sys"] + info["used_cpu_user"], info["total_commands_processed"], info["used_memory"]


def clear(store):
    for name in store.redis.scan_iter(match=store.key("*"), count=1000):
        store.redis.unlink(name)


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def fleet(store, n):
    """Return ``n`` simulated workers, each with its own Redis clients (as worker processes have)."""
    return [Worker(Store(store.url, store.prefix, timeout=TIMEOUT_S), f"host{i // WORKERS_PER_HOST}", 10_000 + i, 1.0)
            for i in range(n)]


def fill(workers, traffic, rate):
    """Record and flush one hour of the fleet's traffic in virtual time; return the seconds it took."""
    started = time.perf_counter()
    now = time.time()
    t = now - 3600
    while t < now - 10:
        step = 60 if t < now - 900 else 10
        for worker in workers:
            traffic.record(worker.recorder, max(1, round(rate * step / len(workers))))
            worker.flusher.tick(t + random.uniform(0, step))
        t += step
    return time.perf_counter() - started


def live(store, workers, traffic, rate, seconds):
    """Run every worker's flusher thread at 1 s while a driver records ``rate`` requests/s;
    return Redis CPU %, commands/s, Redis CPU ms per flush and the flush times."""
    for worker in workers:
        worker.flusher.ticks = []
    stop = threading.Event()

    def drive():  # the fleet's requests, in real time, spread over the workers
        per_tick = max(1, round(rate / 10 / len(workers)))
        while not stop.wait(0.1):
            for worker in workers:
                traffic.record(worker.recorder, per_tick)

    cpu0, ops0, _ = redis_stats(store)
    wall0 = time.monotonic()
    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    for worker in workers:
        worker.flusher.start()
    time.sleep(seconds)
    stop.set()
    driver.join()
    for worker in workers:  # each ships what it still holds, as a worker on its way out
        worker.flusher.stop(flush=True)
    for worker in workers:  # the merges the next flushes would run (N threads on one GIL fall behind)
        worker.shipper.compactor(time.time())
    cpu1, ops1, _ = redis_stats(store)
    wall = time.monotonic() - wall0
    ticks = [t for w in workers for t in w.flusher.ticks]
    return {"cpu_percent": (cpu1 - cpu0) / wall * 100, "ops": (ops1 - ops0) / wall,
            "cpu_ms_per_flush": (cpu1 - cpu0) / max(len(ticks), 1) * 1000,
            "flush_p50": pct([t[0] * 1000 for t in ticks], 0.5), "flush_p99": pct([t[0] * 1000 for t in ticks], 0.99),
            "flush_cpu": statistics.median([t[1] * 1000 for t in ticks]) if ticks else 0.0,
            "failures": sum(w.flusher.failures for w in workers)}


def gets(url, prefix, runs, endpoints):
    """Time GET /api/admin/metrics through the app for each window: {window: (p50, p99, CPU p50)} ms."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"MONITOR_REDIS_URL": url, "MONITOR_KEY_PREFIX": prefix, "MONITOR_INSTANCE_PATH": tmp,
                          "MONITOR_DEMO": False})
        state(app).flusher.stop(flush=False)
        users = Users(state(app).store)
        users.create("bench", "viewer", "bench-password-123")
        headers = {"Authorization": f"Bearer {users.create_token('bench')}"}
        timed = time_gets(app.test_client(), headers, WINDOWS, runs)
    for window, (*_, body) in timed.items():
        assert len(body["endpoints"]) == endpoints, window
    return {window: figures[:3] for window, figures in timed.items()}


def time_gets(client, headers, windows, runs):
    """Time ``runs`` GETs of /api/admin/metrics for each window; return {window: (wall p50, wall p99,
    CPU p50, the last body)}, times in ms."""
    out = {}
    for window in windows:
        times, cpu = [], []
        for _ in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            response = client.get(f"/api/admin/metrics?window={window}", headers=headers)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            assert response.status_code == 200, response.get_data(as_text=True)
        out[window] = (statistics.median(times), pct(times, 0.99), statistics.median(cpu), response.get_json())
    return out


def simulate(url, n, args):
    """Run one fleet of ``n`` workers; return its row of figures."""
    prefix = f"fleet{n}"
    store = Store(url, prefix, timeout=TIMEOUT_S)
    clear(store)
    _, _, base_memory = redis_stats(store)
    workers = fleet(store, n)
    traffic = Traffic(args.endpoints)
    row = {"n": n, "fill_s": fill(workers, traffic, args.rate)}
    row.update(live(store, workers, traffic, args.rate, args.live))
    counted = sum(query.totals(store).values())
    if counted != traffic.recorded:
        raise SystemExit(f"{n} workers: {traffic.recorded} requests recorded, {counted} counted")
    row["metrics_mib"] = query.redis_bytes(store, max_age=0) / 2**20
    row["used_mib"] = (redis_stats(store)[2] - base_memory) / 2**20
    # The simulated fleet's objects live in this process, not in a serving worker: frozen, so that
    # Python's full collections (whose cost follows the heap) do not land in the GETs' times.
    gc.collect()
    gc.freeze()
    try:
        row["latency"] = gets(url, prefix, args.runs, args.endpoints)
    finally:
        gc.unfreeze()
    clear(store)
    return row


def busy(url, args):
    """Return the live figures of ``--busy`` workers serving ``--busy-rate`` requests/s each."""
    store = Store(url, "busy", timeout=TIMEOUT_S)
    clear(store)
    workers = fleet(store, args.busy)
    figures = live(store, workers, Traffic(args.endpoints), args.busy * args.busy_rate, args.live)
    clear(store)
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="8,64,512", help="fleet sizes, comma-separated")
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--rate", type=int, default=1000, help="the fleet's requests per second")
    parser.add_argument("--live", type=float, default=20.0, help="seconds of live flushing at 1 s")
    parser.add_argument("--runs", type=int, default=60, help="GETs per window")
    parser.add_argument("--busy", type=int, default=64, help="workers of the busy run (0: none)")
    parser.add_argument("--busy-rate", type=int, default=200, help="requests/s of each busy worker")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        server = SystemRedis(os.path.join(tmp, "redis"))
        try:
            rows = [simulate(server.url, n, args) for n in sizes]
            hard = busy(server.url, args) if args.busy else None
        finally:
            server.stop()
    print(f"\nfleet simulator: {args.endpoints} endpoints, {args.rate} requests/s over the fleet, 1 h filled, "
          f"then {args.live:g} s of 1 s flushes")
    print("\nRedis and the flushes (flush: one worker's tick, wall p50 / p99 with N threads on one GIL, and its own "
          "CPU p50)")
    print(f"{'workers':>7} {'fill s':>6} {'Redis CPU':>9} {'ops/s':>7} {'Redis CPU/flush':>15} "
          f"{'flush p50 / p99':>16} {'flush CPU':>9} {'metrics MiB':>11} {'used MiB':>8} {'failed':>6}")
    for r in rows:
        print(f"{r['n']:>7} {r['fill_s']:>6.0f} {r['cpu_percent']:>8.1f}% {r['ops']:>7.0f} "
              f"{r['cpu_ms_per_flush']:>13.3f}ms {r['flush_p50']:>7.1f} / {r['flush_p99']:>4.0f} ms "
              f"{r['flush_cpu']:>7.2f}ms {r['metrics_mib']:>11.2f} {r['used_mib']:>8.1f} {r['failures']:>6}")
    print(f"\nGET /api/admin/metrics, ms: wall p50 / p99 (CPU p50 of the request); {args.runs} GETs a window")
    print(f"{'workers':>7}" + "".join(f" {label(w):>24}" for w in WINDOWS))
    for r in rows:
        line = f"{r['n']:>7}"
        for window in WINDOWS:
            p50, p99, cpu = r["latency"][window]
            mark = "" if p99 <= TARGET_MS[window] else "!"
            line += f" {p50:>6.1f} / {p99:>6.1f}{mark:1} ({cpu:>5.1f})"
        print(line)
    if len(rows) > 1:
        ratio = rows[-1]["metrics_mib"] / rows[0]["metrics_mib"]
        print(f"\nmetrics memory, {rows[-1]['n']} workers / {rows[0]['n']} workers: {ratio:.2f}× (target ≤ 1.5×)")
    per_flush = rows[-1]["cpu_ms_per_flush"]
    print(f"Redis CPU per flush at {rows[-1]['n']} workers: {per_flush:.3f} ms → one Redis core carries about "
          f"{1000 / per_flush:,.0f} such workers flushing every second (at 100% of the core)")
    if hard:
        print(f"busy workers ({args.busy} × {args.busy_rate} requests/s over {args.endpoints} endpoints): Redis CPU "
              f"{hard['cpu_percent']:.1f}%, {hard['ops']:.0f} ops/s, {hard['cpu_ms_per_flush']:.3f} ms a flush → "
              f"about {1000 / hard['cpu_ms_per_flush']:,.0f} busy workers a core; flush CPU {hard['flush_cpu']:.2f} ms "
              f"in the worker")
    print("targets: GET p99 ≤ 50 ms for 60 s, 300 s, 3600 s; ≤ 150 ms for 24 h and 30 d ('!' marks a miss)")
    return rows


def label(window):
    return {60: "60s", 300: "300s", 3600: "1h", 86400: "24h", 30 * 86400: "30d"}[window]


if __name__ == "__main__":
    main()
