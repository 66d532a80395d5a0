"""Soak: 200k requests across the demo routes, 10k distinct unknown URLs, many query strings.

Starts real gunicorn (3 sync workers, embedded Redis, instance in a temp dir), warms it up,
reads each worker's RSS, Redis ``used_memory``, the metrics keys' bytes, the series each
worker holds and the log stream's length, sends a fixed plan of requests (plain sockets from
a few threads, each request once, one connection each, as gunicorn's sync workers close
after every answer; ``wrk`` cannot stop after an exact count without leaving idle
connections that pin sync workers), then reads everything again. The series cap
(``MONITOR_METRICS_MAX_SERIES``) is set to 10 and the plan has 14 series, so ``<overflow>``
takes part; the log stream cap (``MONITOR_LOG_MAXLEN``) is 1000. Targets: each worker's RSS
grows by at most 10 MB, Redis stays within the documented bound, each worker holds at most
the cap of series (plus the ``<overflow>`` labels), no raw URL becomes a label, and the
merged totals equal the requests sent. Exits 1 when a target fails.

Usage: ``python bench/bench_soak.py [--requests N] [--unknown U] [--workers W] [--connections C]
[--max-seconds S]``.
The suite (tests/test_soak.py) runs :func:`soak` on 20k requests.
"""
import argparse
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from monitor.capabilities.logs import query as logs  # noqa: E402
from monitor.capabilities.logs.handler import stream_key  # noqa: E402
from monitor.capabilities.metrics import query as metrics  # noqa: E402
from monitor.capabilities.metrics.collect import OVERFLOW  # noqa: E402
from monitor.core import embedded  # noqa: E402
from monitor.core.store import Store  # noqa: E402
from monitor.web.hooks import STATUS_CLASS, UNMATCHED  # noqa: E402
from support import free_port  # noqa: E402
from support.gunicorn import Gunicorn  # noqa: E402

#: Settings the soak runs with (env of the gunicorn master).
MAX_SERIES = 10
LOG_MAXLEN = 1000
#: Documented in docs/metrics.md ("Retention and memory"): Redis bytes per endpoint series
#: held in every tier at steady state, per worker, and the fleet's chart and host tiers.
SERIES_BYTES = 120 * 1024
WORKER_BYTES = 16 * 1024
FLEET_BYTES = 4 * 1024 * 1024
#: Documented in docs/logs-and-alerts.md: bytes per stream entry, up to a record with a Flask traceback.
LOG_ENTRY_BYTES = 1200
#: Documented: the stream may sit up to ~100 entries above its cap (whole nodes are trimmed).
LOG_SLACK = 100
RSS_GROWTH_MB = 10.0
CACHE_KEYS = 50
#: Label of the monitor's own routes in the plan: answered, never counted as app traffic.
OWN = "<own>"
#: The request mix, one of each per round: method, path (``{i}`` a running number), and the
#: series it counts under (endpoint rule, method, status class).
MIX = (
    ("GET", "/demo/hello?v={i}", ("/demo/hello", "GET", "2xx")),
    ("HEAD", "/demo/hello", ("/demo/hello", "HEAD", "2xx")),
    ("OPTIONS", "/demo/hello", ("/demo/hello", "OPTIONS", "2xx")),
    ("GET", "/demo/cached/k{k}", ("/demo/cached/<key>", "GET", "2xx")),
    ("GET", "/demo/sleep?ms=1&i={i}", ("/demo/sleep", "GET", "2xx")),
    ("GET", "/demo/sleep?ms=x{i}", ("/demo/sleep", "GET", "4xx")),
    ("GET", "/demo/log?level=INFO&msg=soak+{i}", ("/demo/log", "GET", "2xx")),
    ("GET", "/demo/log?level=LOUD{i}", ("/demo/log", "GET", "4xx")),
    ("GET", "/demo/error?i={i}", ("/demo/error", "GET", "5xx")),
    ("GET", "/?i={i}", ("/", "GET", "2xx")),
    ("POST", "/demo/hello?i={i}", (UNMATCHED, "POST", "4xx")),
    ("DELETE", "/demo/cached/k{k}", (UNMATCHED, "DELETE", "4xx")),
    ("PURGE", "/demo/hello", (UNMATCHED, "OTHER", "4xx")),
    ("GET", "/health", (OWN, "GET", "2xx")),
    ("GET", "/login?next=/admin/x{i}", (OWN, "GET", "2xx")),
)
UNKNOWN = ("GET", "/soak/{tag}/{n}/page?q={n}", (UNMATCHED, "GET", "4xx"))


def plan(total, unknown, tag):
    """Return ``total`` requests ``(method, path, series)``: ``unknown`` of them distinct unknown URLs."""
    out = []
    n = 0
    for i in range(total):
        if n < unknown and (i + 1) * unknown // total > n:
            method, path, series = UNKNOWN
            out.append((method, path.format(tag=tag, n=n), series))
            n += 1
            continue
        method, path, series = MIX[i % len(MIX)]
        out.append((method, path.format(i=i, k=i % CACHE_KEYS), series))
    return out


def drive(url, requests_, connections, max_seconds):
    """Send each planned request once, ``connections`` at a time; return (answers, errors, seconds).

    ``answers`` counts by (own route?, method label, status class).

    Plain sockets, one connection per request (gunicorn's sync workers close after each
    answer), no retries: a request that fails is counted as an error, never sent twice.
    """
    host, port = urlsplit(url).hostname, urlsplit(url).port
    deadline = time.monotonic() + max_seconds
    answers, errors = Counter(), Counter()
    lock = threading.Lock()

    def run(share):
        mine, failed = Counter(), Counter()
        for method, path, series in share:
            if time.monotonic() > deadline:
                failed["not sent (time bound)"] += 1
                continue
            raw = (f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n"
                   "Connection: close\r\n\r\n").encode()
            try:
                with socket.create_connection((host, port), timeout=30) as sock:
                    sock.sendall(raw)
                    head = sock.recv(65536)
                    while sock.recv(65536):
                        pass
                mine[series[0] == OWN, series[1], STATUS_CLASS[int(head[9:12]) // 100]] += 1
            except (OSError, ValueError) as exc:
                failed[type(exc).__name__] += 1
        with lock:
            answers.update(mine)
            errors.update(failed)

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(requests_[c::connections],)) for c in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, errors, time.monotonic() - started


def series_per_worker(store):
    """Return {worker: the series it admitted under its cap} from the workers' samples."""
    out = {}
    for name in store.scan_prefix("m", "sample"):
        sample = json.loads(store.redis.get(name) or "{}")
        if sample:
            out[f"{sample['host']}|{sample['pid']}"] = sample["series"]
    return out


def readings(store, pids):
    """Return what the soak compares before and after: RSS, Redis memory, series, logs, totals."""
    info = store.redis.info("memory")
    return {
        "rss_mb": {pid: psutil.Process(pid).memory_info().rss / 2**20 for pid in pids},
        "used_memory": info["used_memory"],
        "metrics_bytes": metrics.redis_bytes(store, max_age=0),
        "log_bytes": store.redis.memory_usage(stream_key(store), samples=0) or 0,
        "log_length": logs.stats(store)["length"] or 0,
        "series": series_per_worker(store),
        "totals": metrics.totals(store),
    }


def by_method_class(totals):
    """Return lifetime counts by (method, class): exact whatever the overflow took."""
    out = Counter()
    for (_, method, cls), count in totals.items():
        out[method, cls] += count
    return out


def app_requests(requests_):
    """Return how many planned requests go to the host app (counted in its metrics)."""
    return sum(series[0] != OWN for _, _, series in requests_)


def wait_flushed(store, expected, timeout=15.0):
    """Wait until the lifetime totals reach ``expected`` requests; return them."""
    deadline = time.monotonic() + timeout
    while True:
        totals = metrics.totals(store)
        if sum(totals.values()) >= expected or time.monotonic() > deadline:
            return totals
        time.sleep(0.2)


def soak(url, store, pids, total, unknown, connections, max_seconds, warmup=None):
    """Warm up, read, drive ``total`` requests, read again; return the report (see :func:`table`)."""
    warm = plan(warmup or max(2000, total // 20), max(100, unknown // 20), "w")
    drive(url, warm, connections, max_seconds)
    wait_flushed(store, app_requests(warm))
    time.sleep(1.0)  # one more tick, so the after-warm-up flush is in the readings
    before = readings(store, pids)
    requests_ = plan(total, unknown, "s")
    answers, errors, seconds = drive(url, requests_, connections, max_seconds)
    wait_flushed(store, sum(before["totals"].values()) + app_requests(requests_))
    time.sleep(1.0)
    after = readings(store, pids)
    expected = Counter((series[0] == OWN, series[1], series[2]) for _, _, series in requests_)
    grown = by_method_class(after["totals"])
    grown.subtract(by_method_class(before["totals"]))
    labels = {s[0] for s in after["totals"]}
    return {"planned": len(requests_), "answers": answers, "errors": errors, "seconds": seconds, "before": before,
            "after": after, "expected": expected, "counted": +grown,
            "labels": labels, "allowed_labels": {s[0] for _, _, s in MIX} - {OWN} | {UNMATCHED, OVERFLOW},
            "workers": len(pids), "max_series": MAX_SERIES, "log_maxlen": LOG_MAXLEN}


def bounds(report):
    """Return the documented Redis bounds for this run: metrics bytes and all of Redis's growth."""
    series = len(report["after"]["totals"])
    metrics_bound = series * SERIES_BYTES + report["workers"] * WORKER_BYTES + FLEET_BYTES
    logs_bound = (report["log_maxlen"] + LOG_SLACK) * LOG_ENTRY_BYTES
    return metrics_bound, metrics_bound + logs_bound


def checks(report, rss_growth_mb=RSS_GROWTH_MB):
    """Return [(what, measured, target, ok)] for the soak's targets."""
    before, after = report["before"], report["after"]
    metrics_bound, redis_bound = bounds(report)
    answered = sum(report["answers"].values())
    app = Counter({(method, cls): n for (own, method, cls), n in report["expected"].items() if not own})
    out = [("requests answered (no errors)", answered, report["planned"],
            answered == report["planned"] and not report["errors"]),
           ("answers by (method, class) as planned", sum(report["answers"].values()),
            sum(report["expected"].values()), report["answers"] == report["expected"]),
           ("counted by (method, class) = sent to the app", sum(report["counted"].values()), sum(app.values()),
            report["counted"] == app)]
    for pid, rss in after["rss_mb"].items():
        grew = rss - before["rss_mb"][pid]
        out.append((f"worker {pid} RSS growth MB ({before['rss_mb'][pid]:.1f} → {rss:.1f})", round(grew, 1),
                    f"≤ {rss_growth_mb:g}", grew <= rss_growth_mb))
    out.append(("Redis metrics bytes", after["metrics_bytes"], f"≤ {metrics_bound}", after["metrics_bytes"] <= metrics_bound))
    grew = after["used_memory"] - before["used_memory"]
    out.append((f"Redis used_memory growth ({before['used_memory']} → {after['used_memory']})", grew,
                f"≤ {redis_bound}", grew <= redis_bound))
    overflow = len([s for s in after["totals"] if s[0] == OVERFLOW])
    for worker, series in sorted(after["series"].items()):
        out.append((f"series of {worker}", series, f"≤ {report['max_series']}", series <= report["max_series"]))
    out.append(("<overflow> series of the fleet", overflow, "", True))
    stray = sorted(report["labels"] - report["allowed_labels"])
    out.append(("endpoint labels outside the routes", len(stray), 0, not stray))
    cap = report["log_maxlen"] + LOG_SLACK
    out.append((f"log stream length ({after['log_bytes']} bytes)", after["log_length"], f"≤ {cap}",
                after["log_length"] <= cap))
    return out


def table(report, rss_growth_mb=RSS_GROWTH_MB):
    """Return the report as a printable table and whether every target holds."""
    rows = checks(report, rss_growth_mb)
    answered = sum(report["answers"].values())
    rate = answered / report["seconds"] if report["seconds"] else 0
    lines = [f"soak: {answered} requests in {report['seconds']:.1f} s ({rate:.0f} req/s), "
             f"{report['workers']} workers, series cap {report['max_series']}, log cap {report['log_maxlen']}",
             f"{'measure':<62} {'value':>12} {'target':>14}  ok"]
    lines += [f"{what:<62} {value:>12} {str(target):>14}  {'yes' if ok else 'NO'}" for what, value, target, ok in rows]
    return "\n".join(lines), all(ok for *_, ok in rows)


# ---------------------------------------------------------------- standalone run


def worker_pids(master, count, timeout=30):
    """Return the pids of the master's workers once there are ``count`` (its Redis aside)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = sorted(c.pid for c in psutil.Process(master).children() if "redis" not in c.name())
        if len(pids) == count or time.monotonic() > deadline:
            return pids
        time.sleep(0.2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--unknown", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--max-seconds", type=int, default=900, help="time bound of each run of requests")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: stop gunicorn
    with tempfile.TemporaryDirectory() as tmp:
        server = Gunicorn(tmp, {"MONITOR_KEY_PREFIX": "soak", "MONITOR_METRICS_MAX_SERIES": str(MAX_SERIES),
                                "MONITOR_LOG_MAXLEN": str(LOG_MAXLEN)}, args.workers, free_port())
        server.env.pop("REDIS_URL", None)  # the master's own embedded Redis
        server.start()
        try:
            pids = worker_pids(server.master_pid, args.workers)
            store = Store(embedded.url(tmp), "soak")
            report = soak(server.url, store, pids, args.requests, args.unknown, args.connections, args.max_seconds)
            report["alive"] = pids == worker_pids(server.master_pid, args.workers)
        finally:
            server.stop()
    text, ok = table(report)
    print(text)
    if not report["alive"]:
        print("a worker was replaced during the soak")
    sys.exit(0 if ok and report["alive"] else 1)


if __name__ == "__main__":
    main()
