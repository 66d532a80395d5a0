"""The metrics panel: totals, percentiles, per-endpoint table, charts and the monitor's own cost.

The charts are uPlot's (drawn by ``monitor.js``), fed by a JSON data island in the fragment:
the fragment stays the one thing a poll fetches, and its ETag covers the chart data too.
With the releases capability, the charts mark each deploy with a vertical line and the panel
compares the newest deploy's release with the one before (``releases.py``).
"""
from ...web import hooks
from ...web.panel import Panel
from . import layout, query

#: Windows the selector offers, in seconds, with their labels.
WINDOWS = {60: "1 min", 300: "5 min", 900: "15 min", 3600: "1 h", 21600: "6 h", 86400: "24 h",
           7 * 86400: "7 d", 30 * 86400: "30 d"}
#: Sortable columns of the endpoint table (descending, except names).
SORTS = ("count", "errors", "p50_ms", "p95_ms", "p99_ms", "endpoint")


def _choice(args, name, allowed, default):
    value = args.get(name, "")
    return value if value in allowed else default


def series(points, tier, markers=()):
    """Return the chart data island: times, and requests and errors per second, and p95 ms, per point;
    the deploy markers (time and release) in its span."""
    return {"t": [p["t"] for p in points],
            "requests": [round(p["requests"] / tier, 3) for p in points],
            "errors": [round(p["errors"] / tier, 3) for p in points],
            "p95_ms": [p["p95_ms"] for p in points],
            "markers": [{"t": m["t"], "label": m["release"]} for m in markers]}


class MetricsPanel(Panel):
    name = "metrics"
    title = "Metrics"
    params = ("window", "worker", "sort")

    def context(self, monitor, args):
        window = int(_choice(args, "window", {str(w) for w in WINDOWS}, "60"))
        store = monitor.store
        workers = query.recent_workers(store, window)
        choices = {f"{h}|{p}" for h, p in workers} | {h for h, _ in workers}
        target = _choice(args, "worker", choices, "")
        host, _, pid = target.partition("|")
        data = query.query(store, window, host=host or None, pid=int(pid) if pid else None,
                           lag_s=layout.lag(monitor.config["MONITOR_FLUSH_INTERVAL"]))
        sort = _choice(args, "sort", SORTS, "count")
        rows = sorted(data["endpoints"], key=lambda r: r[sort] if sort == "endpoint" else -r[sort])
        # Other capabilities' per-endpoint totals (SQL, outgoing HTTP), shown per request.
        columns = [column for found in monitor.capabilities.values()
                   for column in found.endpoint_columns(store, window, host or None, int(pid) if pid else None)]
        for row in rows:
            key, count = (row["endpoint"], row["method"]), row["count"]
            row["per_request"] = [round(totals.get(key, 0) / count, 2) if count else 0 for _, totals in columns]
        releases = monitor.capabilities.get("releases")
        start = data["series"][0]["t"] if data["series"] else data["generated_at"] - window
        markers = releases.markers(monitor, start, data["generated_at"]) if releases else []
        comparison = releases.comparison(monitor) if releases else None
        chart = series(data["series"], data["resolution_s"]["series"], markers)
        return {
            "data": data, "rows": rows, "sort": sort, "window": window, "windows": WINDOWS,
            "per_request": [label for label, _ in columns],
            "worker": target, "workers": workers, "hosts": sorted({h for h, _ in workers}),
            "series": chart, "peaks": {name: max((v for v in values if v is not None), default=0)
                                       for name, values in chart.items() if name not in ("t", "markers")},
            "markers": markers, "comparison": comparison,
            "redis_bytes": query.redis_bytes(store), "sample_every": hooks.SAMPLE + 1,
            "query": {"window": window, "worker": target, "sort": sort},
        }
