"""The slow-requests capability: the fleet's slowest requests per minute and endpoint, against thresholds.

``collect`` is the timing point's slow-request sink and each process's per-minute top lists,
``layout`` the Redis keys, ``ship`` the flusher's writes and ``query`` the read side; ``api``,
``panel`` and ``spec`` are its surfaces, and the alert rules read ``count``.
"""
from ...core.capability import Capability
from ...core.config import Setting, number
from . import api, query, spec
from .collect import SlowRequests
from .panel import SlowPanel
from .ship import Shipper


def thresholds(name, value):
    """Parse per-endpoint thresholds: ``rule=ms`` pairs separated by commas or spaces, or a dict."""
    pairs = value.items() if isinstance(value, dict) else \
        [pair.rsplit("=", 1) for pair in str(value).replace(",", " ").split()]
    found = {}
    for rule, ms in pairs:
        rule = str(rule).strip()
        if isinstance(ms, bool) or not rule.startswith("/"):
            raise ValueError
        found[rule] = number(0, 600_000, int)(name, ms)
    return found


class Slow(Capability):
    name = "slow"
    settings = (
        Setting("MONITOR_SLOW_MS", 1000, number(1, 600_000, int), "milliseconds, 1 to 600000",
                "A host-app request that takes at least this long is a slow request (unless its endpoint has "
                "its own threshold)."),
        Setting("MONITOR_SLOW_ENDPOINTS", {}, thresholds,
                "`rule=ms` pairs separated by commas or spaces, e.g. `/reports/<int:id>=5000 /demo/sleep=200`",
                "Thresholds of particular endpoint rules (their URL rules, as the metrics table names them)."),
    )
    panels = (SlowPanel,)

    def init_app(self, app, monitor):
        monitor.slow_requests = SlowRequests(app.config["MONITOR_SLOW_MS"], app.config["MONITOR_SLOW_ENDPOINTS"],
                                             monitor.extension)
        monitor.slow = (monitor.slow_requests.least_ns, monitor.slow_requests.sink)
        monitor.flusher.add_shipper(Shipper(monitor, monitor.slow_requests))

    def register_api(self, bp):
        api.register(bp)

    def spec(self, config):
        return spec.paths(config), spec.SCHEMAS

    def count(self, monitor, window_s, now, method=None, rule=None):
        """Return the fleet's slow requests over the window (of one endpoint rule and method), for alert rules."""
        return query.count(monitor.store, window_s, now, method, rule)


capability = Slow()
