"""The read side: the fleet's SQL over a window, its per-endpoint totals and its Prometheus counters."""
import time

from prometheus_client.core import CounterMetricFamily

from . import tally
from .ship import KIND


def report(store, window_s, threshold, now=None):
    """Return the GET /api/admin/queries body: statements, slowest, N+1 findings, endpoint totals."""
    now = time.time() if now is None else now
    merged = tally.read(store, KIND, window_s, now)
    names = merged["names"]
    rows = tally.group_rows(merged["groups"])
    statements = sorted(({"id": gid, "sql": names.get(gid, gid), **row} for gid, row in rows.items()),
                        key=lambda row: (-row["total_ms"], row["sql"]))
    slowest = [{"sql": names.get(event["id"], event["id"]), "duration_ms": tally.ms(event["us"] / 1000),
                "endpoint": event["endpoint"], "method": event["method"], "error": bool(event["detail"]),
                "request_id": event["request_id"], "time": event["time"], "worker": event["worker"]}
               for event in merged["slowest"]]
    n_plus_one = sorted(({"endpoint": rule, "method": method, "sql": names.get(gid, gid), "count": requests,
                          "executions": executions, "example_request_id": rid}
                         for (gid, rule, method), (requests, rid, executions, _) in merged["flags"].items()),
                        key=lambda row: (-row["count"], row["endpoint"], row["sql"]))
    endpoints = sorted(({"endpoint": rule, "method": method, "queries": count, "errors": errors,
                         "sql_ms": tally.ms(us / 1000)}
                        for (rule, method), (count, errors, us) in merged["endpoints"].items()),
                       key=lambda row: (-row["sql_ms"], row["endpoint"], row["method"]))
    return {"statements": statements, "slowest": slowest, "n_plus_one": n_plus_one, "endpoints": endpoints,
            "threshold": threshold, "window_s": window_s, "generated_at": round(now, 3)}


def endpoint_columns(store, window_s, host=None, pid=None):
    """Return the metrics table's SQL columns: totals per (rule, method), to divide by its requests."""
    if window_s > tally.MAX_WINDOW_S:  # not kept that long: no column rather than a wrong one
        return []
    spent = tally.read(store, KIND, window_s, host=host, pid=pid)["endpoints"]
    if not spent:
        return []
    return [("SQL ms per request", {key: us / 1000 for key, (_, _, us) in spent.items()}),
            ("queries per request", {key: count for key, (count, _, _) in spent.items()})]


def metric_families(store):
    """Yield the lifetime SQL counters per endpoint (labels bounded by the app's rules)."""
    families = {
        "queries": CounterMetricFamily("monitor_sql_queries", "SQL statements run, by endpoint.",
                                       labels=["endpoint", "method"]),
        "errors": CounterMetricFamily("monitor_sql_errors", "SQL statements that raised, by endpoint.",
                                      labels=["endpoint", "method"]),
        "ns": CounterMetricFamily("monitor_sql_seconds", "Time spent in SQL statements, by endpoint.",
                                  labels=["endpoint", "method"]),
        "nplusone": CounterMetricFamily("monitor_sql_nplusone_requests",
                                        "Requests that ran one statement more than MONITOR_NPLUSONE_THRESHOLD "
                                        "times, by endpoint.", labels=["endpoint", "method"]),
    }
    for (counter, rule, method), value in sorted(tally.totals(store, KIND).items()):
        if counter in families:
            families[counter].add_metric([rule, method], value / 1e9 if counter == "ns" else value)
    yield from families.values()
