"""The "Slow requests" panel: the window's slowest requests, of all endpoints or one."""
from ...web.panel import Panel
from . import query

#: Windows the panel offers, in seconds, with their labels.
WINDOWS = {3600: "1 h", 21600: "6 h", 86400: "24 h", 7 * 86400: "7 d"}
DEFAULT_WINDOW_S = 3600


class SlowPanel(Panel):
    name = "slow"
    title = "Slow requests"
    poll = "10s"
    params = ("slow_window", "slow_endpoint")

    def context(self, monitor, args):
        raw = args.get("slow_window", "")
        window = int(raw) if raw in {str(w) for w in WINDOWS} else DEFAULT_WINDOW_S
        every = query.report(monitor.store, monitor.slow_requests, window)
        rules = sorted({row["endpoint"] for row in every["endpoints"]})
        rule = args.get("slow_endpoint", "")
        data = query.report(monitor.store, monitor.slow_requests, window, rule) if rule in rules else every
        return {"data": data, "window": window, "windows": WINDOWS, "rules": rules, "rule": rule if rule in rules else "",
                "logs": "logs" in monitor.panels}
