"""The metrics capability: request rates, latency percentiles and errors per endpoint, fleet-wide.

``collect`` holds the hot path's in-process aggregates, ``histogram`` and ``codec`` the
mergeable numbers and their bytes, ``layout`` the Redis keys and tiers, ``ship`` the
flusher's writes, ``compact`` the merges and roll-ups in Redis, ``query`` the read side,
``releases`` the per-release figures;
``api``, ``prometheus`` (``GET /metrics``), ``panel`` and ``spec`` are its surfaces.
"""
from ...core.capability import Capability
from ...core.config import Setting, number
from . import api, prometheus, query, releases, spec
from .collect import Recorder
from .panel import MetricsPanel
from .ship import Shipper


class Metrics(Capability):
    name = "metrics"
    settings = (
        Setting("MONITOR_METRICS_MAX_SERIES", 2000, number(10, 100000, int), "a whole number, 10 to 100000",
                "Distinct (endpoint rule, method, status class) series each worker records; requests "
                "past the cap count under the endpoint label `<overflow>`."),
    )
    panels = (MetricsPanel,)

    def init_app(self, app, monitor):
        monitor.recorder = Recorder(monitor.requests, app.config["MONITOR_METRICS_MAX_SERIES"])
        monitor.flusher.add_shipper(Shipper(monitor, monitor.recorder))

    def register_api(self, bp):
        api.register(bp)

    def blueprints(self):
        return (prometheus.bp,)

    def spec(self, config):
        return spec.paths(config), spec.SCHEMAS

    def window(self, monitor, window_s, host=None, now=None):
        """Return the fleet's (or one host's) metrics over the last ``window_s`` s: the GET metrics body."""
        return query.query(monitor.store, window_s, host=host, now=now)

    def compare_releases(self, monitor, release, previous, deployed_at):
        """Return each endpoint's p95 and error rate over ``release``'s run against ``previous``'s (``releases``)."""
        return releases.compare(monitor.store, release, previous, deployed_at)


capability = Metrics()
