"""The "Slow queries" panel: statements by time spent, N+1 findings and the slowest executions."""
from ...web.panel import Panel
from . import query
from .tally import WINDOWS, panel_window

#: Statements the panel lists (by total time).
LISTED = 25


class QueriesPanel(Panel):
    name = "queries"
    title = "Slow queries"
    poll = "10s"

    def context(self, monitor, args):
        window = panel_window(args)
        data = query.report(monitor.store, window, monitor.config["MONITOR_NPLUSONE_THRESHOLD"])
        return {"data": data, "statements": data["statements"][:LISTED], "window": window, "windows": WINDOWS,
                "total": sum(row["count"] for row in data["statements"]),
                "total_ms": sum(row["total_ms"] for row in data["statements"])}
