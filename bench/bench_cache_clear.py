"""Clearing 100k app-cache keys while another client PINGs Redis: does anyone wait?

Fills the app cache with N keys of namespace ``bulk`` (plus keys of another namespace and
outside the prefix, which must survive), then times a PING loop in a separate process three
ways: alone (baseline), during ``cache.clear(namespace="bulk")`` (SCAN + UNLINK in batches), and
during a full clear. Prints the PING p50/p99/max against the baseline and the clear's duration
and count. Target: no PING waits more than 50 ms. Usage: ``python bench/bench_cache_clear.py [N]``.
"""
import multiprocessing
import os
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from monitor import create_app  # noqa: E402
from monitor.capabilities.cache import query as cache_query  # noqa: E402
from monitor.core.cache import prefix  # noqa: E402
from monitor.core.embedded import EmbeddedRedis  # noqa: E402
from monitor.core.state import state  # noqa: E402

KEYS = 100_000
OTHER = 1000
BASELINE_S = 2.0


def ping_loop(url, stop, out):
    """PING back to back until ``stop`` is set; put the latencies (ms) on ``out``."""
    client = redis.Redis.from_url(url)
    times = []
    while not stop.is_set():
        t0 = time.perf_counter()
        client.ping()
        times.append((time.perf_counter() - t0) * 1000)
    out.put(times)


def during(url, action):
    """Run ``action()`` while a PING loop runs in another process; return (result, seconds, pings)."""
    stop, out = multiprocessing.Event(), multiprocessing.Queue()
    pinger = multiprocessing.Process(target=ping_loop, args=(url, stop, out))
    pinger.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - t0
    stop.set()
    pings = out.get()
    pinger.join()
    return result, seconds, pings


def fill(monitor, count, namespace="bulk", value=b"x" * 100):
    """Write ``count`` app-cache keys of ``namespace`` by pipelines."""
    raw, start = monitor.store.raw, prefix(monitor.store)
    for first in range(0, count, 10_000):
        pipe = raw.pipeline(transaction=False)
        for i in range(first, min(count, first + 10_000)):
            pipe.set(f"{start}{namespace}:{i}", value)
        pipe.execute()


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(url, keys, prefix="benchcache", instance=None):
    """Fill, clear a namespace then everything under PING loops; return the table's rows."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"MONITOR_INSTANCE_PATH": instance or tmp, "MONITOR_REDIS_URL": url,
                          "MONITOR_KEY_PREFIX": prefix, "MONITOR_DEMO": False})
        monitor = state(app)
        fill(monitor, keys)
        fill(monitor, OTHER, "other")
        outside = monitor.store.key("outside")
        monitor.store.redis.set(outside, "keep")
        rows = [("baseline (PING alone)", None, *during(url, lambda: time.sleep(BASELINE_S)))]
        rows.append(("clear namespace bulk", keys, *during(url, lambda: cache_query.clear(monitor, "bulk"))))
        fill(monitor, keys)
        rows.append(("clear all", keys + OTHER, *during(url, lambda: cache_query.clear(monitor))))
        survived = monitor.store.redis.get(outside) == "keep"
        monitor.store.redis.delete(outside)
        monitor.flusher.stop(flush=False)
        return rows, survived


def main():
    keys = int(sys.argv[1]) if len(sys.argv) > 1 else KEYS
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(tmp).start()
        try:
            rows, survived = run(server.url, keys, instance=tmp)
        finally:
            server.stop()
    base = rows[0][4]
    print(f"{keys} keys of 100 B; PING loop in a separate process over the local unix socket\n")
    print(f"{'run':<24} {'cleared':>8} {'expected':>8} {'clear s':>8} {'pings':>7} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'p99 ×':>6} {'max ×':>6}")
    for name, expected, cleared, seconds, pings in rows:
        print(f"{name:<24} {cleared if expected else '-':>8} {expected or '-':>8} {seconds:>8.2f} {len(pings):>7} "
              f"{pct(pings, .5):>7.3f} {pct(pings, .99):>7.3f} {max(pings):>7.2f} "
              f"{pct(pings, .99) / pct(base, .99):>6.1f} {max(pings) / max(base):>6.1f}")
    worst = max(max(r[4]) for r in rows[1:])
    print(f"\nworst PING during a clear: {worst:.2f} ms (target ≤ 50 ms: {'met' if worst <= 50 else 'MISSED'}); "
          f"key outside the prefix kept: {survived}")


if __name__ == "__main__":
    main()
