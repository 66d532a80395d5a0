"""Soak at the suite's size: bench/bench_soak.py's run with 20k requests, 2k distinct unknown URLs."""
import importlib.util
import time
from pathlib import Path

import pytest

from monitor.capabilities.metrics.collect import OVERFLOW
from monitor.web.hooks import UNMATCHED
from support import bearer

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bench_soak", ROOT / "bench" / "bench_soak.py")
soak = importlib.util.module_from_spec(spec)
spec.loader.exec_module(soak)

REQUESTS = 20_000
UNKNOWN = 2_000
#: The bench's 10 MB per worker for 200k requests, floored for allocator noise at this size.
RSS_GROWTH_MB = 4.0


def api_total(server, user):
    return server.get("/api/admin/metrics?window=600", headers=bearer(user)).json()["requests"]["total"]


@pytest.mark.slow
def test_soak_20k_stays_bounded_and_counts_exactly(gunicorn, store, make_user):
    server = gunicorn(workers=3, env={"MONITOR_METRICS_MAX_SERIES": str(soak.MAX_SERIES),
                                      "MONITOR_LOG_MAXLEN": str(soak.LOG_MAXLEN)})
    pids = server.wait_workers(3)
    user = make_user("viewer")
    started = time.monotonic()
    report = soak.soak(server.url, store, pids, REQUESTS, UNKNOWN, connections=8, max_seconds=90, warmup=3000)
    text, ok = soak.table(report, RSS_GROWTH_MB)
    print(f"\n{text}\n({time.monotonic() - started:.0f} s in all)")
    before, after = report["before"], report["after"]

    # Every request answered once, as planned, and counted once: overflow keeps method and class.
    assert report["errors"] == {}
    assert report["answers"] == report["expected"]
    app = sum(n for (own, _, _), n in report["expected"].items() if not own)
    assert sum(report["counted"].values()) == app == REQUESTS - sum(
        n for (own, _, _), n in report["expected"].items() if own)
    assert sum(after["totals"].values()) - sum(before["totals"].values()) == app
    assert api_total(server, user) == sum(after["totals"].values())
    assert server.worker_pids() == pids  # no worker was replaced under load

    # Cardinality: 2k unknown URLs under one label, every worker at its cap, the rest in <overflow>.
    assert report["labels"] <= report["allowed_labels"]
    assert {UNMATCHED, OVERFLOW} <= report["labels"]
    # A worker that met <unmatched> after its 10th series counts unknown URLs under <overflow>.
    absorbed = sum(n for (label, method, cls), n in after["totals"].items()
                   if label in (UNMATCHED, OVERFLOW) and (method, cls) == ("GET", "4xx"))
    assert absorbed >= UNKNOWN
    assert len(after["series"]) == 3
    planned = {s for _, _, s in soak.MIX if s[0] != soak.OWN} | {soak.UNKNOWN[2]}
    # each worker sees every planned series in the warm-up: its cap full, the rest in <overflow>,
    # which keeps method and class (workers overflow different series: the fleet has their union)
    assert list(after["series"].values()) == [soak.MAX_SERIES] * 3
    overflowed = {(m, c) for label, m, c in after["totals"] if label == OVERFLOW}
    assert overflowed and overflowed <= {(m, c) for _, m, c in planned}

    # Memory: RSS per worker, Redis against the documented bound, the log stream at its cap.
    for pid in pids:
        assert after["rss_mb"][pid] - before["rss_mb"][pid] <= RSS_GROWTH_MB, text
    metrics_bound, redis_bound = soak.bounds(report)
    assert 0 < after["metrics_bytes"] <= metrics_bound
    assert after["used_memory"] - before["used_memory"] <= redis_bound
    assert soak.LOG_MAXLEN <= after["log_length"] <= soak.LOG_MAXLEN + soak.LOG_SLACK
    assert after["log_bytes"] <= after["log_length"] * soak.LOG_ENTRY_BYTES
    assert ok, text
