"""(alerts) One evaluation round of the fleet's alert rules: 20, 200 and 1,000 rules. Target: 200 rules ≤ 200 ms.

Synthesises an hour of metrics for 8 workers × 200 endpoints (``bench_metrics_api.synthesise``),
the workers' heartbeats, cache reads and 5,000 log lines, then stores N rules in the mix an
operator writes: latency, 5xx and rate rules on endpoints and the fleet, some per host, worker
memory and liveness, the cache hit rate and error-log lines, over windows of 1, 5, 15 and 60
minutes. A round reads each source once (one metrics query per window and host, the workers
once, ...), so its cost is about (distinct sources × a query) + (rules × a judgement). The
last row gives every rule a window of its own: the worst case, one query per rule.
"""
import json
import os
import random
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "bench")]

from bench_metrics_api import ENDPOINTS, WORKERS, synthesise  # noqa: E402

from monitor import create_app  # noqa: E402
from monitor.capabilities.alerts import rules  # noqa: E402
from monitor.capabilities.cluster import registry  # noqa: E402
from monitor.core.state import state  # noqa: E402

TARGET_MS, TARGET_RULES = 200.0, 200
RUNS = 15
WINDOWS = (60, 300, 900, 3600)
HOSTS = sorted({f"host{w // 4}" for w in range(WORKERS)})
#: Thresholds of the request metrics (latencies: 500 ms): some rules fire, most do not.
THRESHOLDS = {"error_rate": 0.05, "request_rate": 5000.0}


def fleet_extras(store, now):
    """Write the heartbeats, cache reads and log lines the other rules read."""
    pipe = store.redis.pipeline(transaction=False)
    for w in range(WORKERS):
        host, pid = f"host{w // 4}", 1000 + w
        registry.write_entry(pipe, store, "w", f"{host}:{pid}", {
            "id": f"{host}:{pid}", "host": host, "pid": pid, "master_pid": 1, "started_at": now - 3600, "ts": now,
            "stale_after": 6.0, "requests": 1000, "in_flight": 0, "rss_mb": 80.0 + w, "cpu_percent": 3.0}, now, 30)
    for minute in range(0, 3600, 60):
        name = store.key("cachestats", int((now - minute) // 60) * 60)
        pipe.hset(name, mapping={"h:demo": 90, "m:demo": 10})
        pipe.expire(name, 86400)
    stream = store.key("logs", "stream")
    for i in range(5000):
        level = ("INFO", "WARNING", "ERROR")[i % 3]
        pipe.xadd(stream, {"ts": f"{now - 300 + i * 0.06:.3f}", "level": level, "logger": "app", "host": HOSTS[i % 2],
                           "pid": "1000", "message": f"request {i} {'timeout' if i % 7 == 0 else 'ok'}"})
    pipe.execute()


def rule_mix(n, config, rnd, own_windows=False):
    """Return ``n`` valid rule objects in an operator's mix (``own_windows``: each with a window of its own)."""
    made = []
    for i in range(n):
        window = 60 + i if own_windows else rnd.choice(WINDOWS)
        kind = rnd.random()
        if kind < 0.40:
            body = {"metric": rnd.choice(("latency_p95", "latency_p99", "error_rate")), "op": ">",
                    "scope": f"endpoint:/api/v1/resource{rnd.randrange(ENDPOINTS)}/<id>"}
        elif kind < 0.65:
            body = {"metric": rnd.choice(("latency_p50", "latency_p95", "error_rate", "request_rate")), "op": ">"}
        elif kind < 0.75:
            window = WINDOWS[1] if not own_windows else window
            body = {"metric": rnd.choice(("latency_p95", "error_rate")), "op": ">", "scope": f"host:{rnd.choice(HOSTS)}"}
        elif kind < 0.85:
            body = rnd.choice(({"metric": "worker_rss", "op": ">", "threshold": 1024.0},
                               {"metric": "rss_growth", "op": ">", "threshold": 200.0},
                               {"metric": "workers_alive", "op": "<", "threshold": 4.0, "scope": f"host:{rnd.choice(HOSTS)}"},
                               {"metric": "stale_heartbeats", "op": ">", "threshold": 0.0}))
        elif kind < 0.90:
            body = {"metric": "cache_hit_rate", "op": "<", "threshold": 0.5}
        else:
            window = rnd.choice((60, 300)) if not own_windows else window
            body = {"metric": "log_lines", "op": ">", "threshold": 10.0,
                    "params": {"level": rnd.choice(("WARNING", "ERROR")), "text": rnd.choice(("", "timeout"))}}
        body.setdefault("threshold", THRESHOLDS.get(body["metric"], 500.0))
        made.append(rules.validate({"id": f"b{i}", "name": f"bench {i}", "window_s": window, "for_s": 30, **body},
                                   config, {}))
    return made


def measure(monitor, made, now):
    """Store ``made`` as the fleet's rules; return (round ms per run, sources read per round)."""
    store = monitor.store
    pipe = store.redis.pipeline(transaction=False)
    pipe.delete(rules.rules_key(store), store.key("alerts", "state"), store.key("alerts", "history"))
    pipe.set(store.key("alerts", "seeded"), "1")
    pipe.hset(rules.rules_key(store), mapping={rule["id"]: json.dumps(rule) for rule in made})
    pipe.execute()
    monitor.alerts.evaluate(now)  # first round: compiles the rules, states enter pending
    times = []
    for run in range(RUNS):
        started = time.perf_counter()
        monitor.alerts.evaluate(now + run + 1)
        times.append((time.perf_counter() - started) * 1000)
    return times, monitor.alerts.cost["sources"]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"MONITOR_INSTANCE_PATH": tmp, "MONITOR_KEY_PREFIX": "benchalerts", "MONITOR_DEMO": False})
        monitor = state(app)
        store = monitor.store
        now = time.time()
        started = time.perf_counter()
        synthesise(store, now)
        fleet_extras(store, now)
        print(f"synthesised {WORKERS} workers × {ENDPOINTS} endpoints × 1 h, heartbeats, cache reads and 5,000 log "
              f"lines in {time.perf_counter() - started:.1f} s")
        for window in WINDOWS:
            t0 = time.perf_counter()
            for _ in range(5):
                app.extensions["monitor"].capabilities["metrics"].window(monitor, window, now=now)
            print(f"one metrics query, {window:>4} s window: {(time.perf_counter() - t0) / 5 * 1000:6.1f} ms")
        rnd = random.Random(20)
        print(f"\n{'rules':>18} {'sources':>8} {'round p50':>10} {'round max':>10} {'per rule':>9} "
              f"{'p50 / target':>13}")
        rows = [(str(n), rule_mix(n, app.config, rnd)) for n in (20, 200, 1000)]
        rows.append(("200, own windows", rule_mix(200, app.config, rnd, own_windows=True)))
        for label, made in rows:
            times, sources = measure(monitor, made, now)
            p50 = statistics.median(times)
            ratio = f"{p50 / TARGET_MS:.2f}" + (" (≤ 1)" if label == str(TARGET_RULES) else "")
            print(f"{label:>18} {sources:>8} {p50:>8.1f}ms {max(times):>8.1f}ms {p50 / len(made):>7.2f}ms {ratio:>13}")
        print(f"\ntarget: {TARGET_RULES} rules in ≤ {TARGET_MS:.0f} ms per round (MONITOR_ALERT_INTERVAL, 5 s by default)")
        for name in store.scan_prefix(""):
            store.redis.delete(name)


if __name__ == "__main__":
    main()
