"""The "Outgoing calls" panel: calls by host, method and path template, and the slowest calls."""
from ...web.panel import Panel
from ..queries.tally import WINDOWS, panel_window
from . import query

#: Groups the panel lists (by total time).
LISTED = 25


class OutgoingPanel(Panel):
    name = "outgoing"
    title = "Outgoing calls"
    poll = "10s"

    def context(self, monitor, args):
        window = panel_window(args)
        data = query.report(monitor.store, window)
        return {"data": data, "groups": data["groups"][:LISTED], "window": window, "windows": WINDOWS,
                "total": sum(row["count"] for row in data["groups"]),
                "errors": sum(row["errors"] for row in data["groups"])}
