"""The metrics panel: totals, percentiles, per-endpoint table, SVG charts and the monitor's own cost."""
from ...web.panel import Panel
from . import query

#: Windows the selector offers, in seconds, with their labels.
WINDOWS = {60: "1 min", 300: "5 min", 900: "15 min", 3600: "1 h", 21600: "6 h", 86400: "24 h"}
#: Sortable columns of the endpoint table (descending, except names).
SORTS = ("count", "errors", "p50_ms", "p95_ms", "p99_ms", "endpoint")
CHART_W, CHART_H = 300, 70


def _choice(args, name, allowed, default):
    value = args.get(name, "")
    return value if value in allowed else default


def chart(points, field, tier):
    """Return SVG geometry for one series field: polyline points, the peak and its label."""
    values = [(p[field] or 0) / (tier if field != "p95_ms" else 1) for p in points]
    peak = max(values, default=0) or 1
    step = CHART_W / max(len(values) - 1, 1)
    line = " ".join(f"{i * step:.1f},{CHART_H - v / peak * (CHART_H - 4):.1f}" for i, v in enumerate(values))
    return {"points": line, "peak": round(max(values, default=0), 2)}


class MetricsPanel(Panel):
    name = "metrics"
    title = "Metrics"

    def context(self, monitor, args):
        window = int(_choice(args, "window", {str(w) for w in WINDOWS}, "60"))
        store = monitor.store
        workers = query.recent_workers(store, window)
        choices = {f"{h}|{p}" for h, p in workers} | {h for h, _ in workers}
        target = _choice(args, "worker", choices, "")
        host, _, pid = target.partition("|")
        data = query.query(store, window, host=host or None, pid=int(pid) if pid else None)
        sort = _choice(args, "sort", SORTS, "count")
        rows = sorted(data["endpoints"], key=lambda r: r[sort] if sort == "endpoint" else -r[sort])
        # Other capabilities' per-endpoint totals (SQL, outgoing HTTP), shown per request.
        columns = [column for found in monitor.capabilities.values()
                   for column in found.endpoint_columns(store, window, host or None, int(pid) if pid else None)]
        for row in rows:
            key, count = (row["endpoint"], row["method"]), row["count"]
            row["per_request"] = [round(totals.get(key, 0) / count, 2) if count else 0 for _, totals in columns]
        tier = data["resolution_s"]["series"]
        return {
            "data": data, "rows": rows, "sort": sort, "window": window, "windows": WINDOWS,
            "per_request": [label for label, _ in columns],
            "worker": target, "workers": workers, "hosts": sorted({h for h, _ in workers}),
            "charts": [("Requests / s", chart(data["series"], "requests", tier)),
                       ("p95 latency, ms", chart(data["series"], "p95_ms", tier)),
                       ("Errors / s", chart(data["series"], "errors", tier))],
            "chart_w": CHART_W, "chart_h": CHART_H,
            "redis_bytes": query.redis_bytes(store),
            "query": {"window": window, "worker": target, "sort": sort},
        }
