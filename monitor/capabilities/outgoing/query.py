"""The read side: the fleet's outgoing calls over a window, per-endpoint totals and Prometheus counters."""
import time

from prometheus_client.core import CounterMetricFamily

from ..queries import tally
from .ship import KIND


def report(store, window_s, now=None):
    """Return the GET /api/admin/outgoing body: groups by host, method and path; slowest calls; endpoints."""
    now = time.time() if now is None else now
    merged = tally.read(store, KIND, window_s, now)
    names = merged["names"]
    unnamed = [tally.OVERFLOW] * 3  # a name lost with its bucket's hash: never expected, never a 500

    def target(gid):
        host, method, path = names.get(gid, unnamed)
        return {"host": host, "method": method, "path": path}

    rows = tally.group_rows(merged["groups"])
    groups = sorted(({"id": gid, **target(gid), **row,
                      "error_rate": round(row["errors"] / row["count"], 4) if row["count"] else 0.0}
                     for gid, row in rows.items()),
                    key=lambda row: (-row["total_ms"], row["host"], row["path"], row["method"]))
    slowest = [{**target(event["id"]), "status": event["detail"], "duration_ms": tally.ms(event["us"] / 1000),
                "endpoint": event["endpoint"], "endpoint_method": event["method"],
                "request_id": event["request_id"], "time": event["time"], "worker": event["worker"]}
               for event in merged["slowest"]]
    endpoints = sorted(({"endpoint": rule, "method": method, "calls": count, "errors": errors,
                         "http_ms": tally.ms(us / 1000)}
                        for (rule, method), (count, errors, us) in merged["endpoints"].items()),
                       key=lambda row: (-row["http_ms"], row["endpoint"], row["method"]))
    return {"groups": groups, "slowest": slowest, "endpoints": endpoints, "window_s": window_s,
            "generated_at": round(now, 3)}


def endpoint_columns(store, window_s, host=None, pid=None):
    """Return the metrics table's HTTP column: outgoing ms per (rule, method), to divide by its requests."""
    if window_s > tally.MAX_WINDOW_S:  # not kept that long: no column rather than a wrong one
        return []
    spent = tally.read(store, KIND, window_s, host=host, pid=pid)["endpoints"]
    return [("HTTP ms per request", {key: us / 1000 for key, (_, _, us) in spent.items()})] if spent else []


def metric_families(store):
    """Yield the lifetime outgoing-call counters per (host, method), hosts capped per worker."""
    families = {
        "calls": CounterMetricFamily("monitor_outgoing_requests", "Outgoing HTTP calls, by host and method.",
                                     labels=["host", "method"]),
        "errors": CounterMetricFamily("monitor_outgoing_errors",
                                      "Outgoing HTTP calls that raised or answered 5xx, by host and method.",
                                      labels=["host", "method"]),
        "ns": CounterMetricFamily("monitor_outgoing_seconds", "Time to the response headers of outgoing calls.",
                                  labels=["host", "method"]),
    }
    for (counter, host, method), value in sorted(tally.totals(store, KIND).items()):
        if counter in families:
            families[counter].add_metric([host, method], value / 1e9 if counter == "ns" else value)
    yield from families.values()
