"""``GET /metrics``: Prometheus text exposition of the fleet's merged metrics.

Rendered by prometheus_client from the same data as the JSON API (a custom collector that
reads Redis), never from per-process files. Lifetime request counts are counters; the
window's percentiles and per-worker readings are gauges.
"""
from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ...api.args import int_arg
from ...auth.decorators import role_required
from ...auth.guard import require_login
from ...core.state import state
from ...web.responses import register_handlers
from . import layout, query

bp = Blueprint("monitor_prometheus", __name__)
bp.before_request(require_login)
register_handlers(bp)


class FleetCollector:
    """Yield the fleet's metric families from one ``query.query`` and the lifetime totals, then
    those the other capabilities add (``Capability.prometheus``)."""

    def __init__(self, store, window_s, lag_s, capabilities=()):
        self.store = store
        self.window_s = window_s
        self.lag_s = lag_s
        self.capabilities = capabilities

    def collect(self):
        data = query.query(self.store, self.window_s, lag_s=self.lag_s)
        requests = CounterMetricFamily("monitor_http_requests", "Requests served by the fleet since counting began.",
                                       labels=["endpoint", "method", "status_class"])
        for (endpoint, method, cls), count in sorted(query.totals(self.store).items()):
            requests.add_metric([endpoint, method, cls], count)
        yield requests
        yield GaugeMetricFamily("monitor_window_seconds", "Window of the gauges below.", value=self.window_s)
        yield GaugeMetricFamily("monitor_window_requests", "Requests in the window.",
                                value=data["requests"]["total"])
        yield GaugeMetricFamily("monitor_window_errors", "5xx answers in the window.",
                                value=data["requests"]["errors"])
        yield GaugeMetricFamily("monitor_window_rate_per_second", "Requests per second in the window.",
                                value=data["requests"]["rate_per_s"])
        latency = GaugeMetricFamily("monitor_window_latency_seconds", "Latency percentiles over the window.",
                                    labels=["quantile"])
        for name, q in (("p50", "0.5"), ("p90", "0.9"), ("p95", "0.95"), ("p99", "0.99")):
            latency.add_metric([q], data["latency_ms"][name] / 1000)
        yield latency
        count = GaugeMetricFamily("monitor_endpoint_window_requests", "Requests per endpoint in the window.",
                                  labels=["endpoint", "method"])
        errors = GaugeMetricFamily("monitor_endpoint_window_errors", "5xx answers per endpoint in the window.",
                                   labels=["endpoint", "method"])
        quantiles = GaugeMetricFamily("monitor_endpoint_window_latency_seconds",
                                      "Latency percentiles per endpoint over the window.",
                                      labels=["endpoint", "method", "quantile"])
        for row in data["endpoints"]:
            labels = [row["endpoint"], row["method"]]
            count.add_metric(labels, row["count"])
            errors.add_metric(labels, row["errors"])
            for field, q in (("p50_ms", "0.5"), ("p95_ms", "0.95"), ("p99_ms", "0.99")):
                quantiles.add_metric([*labels, q], row[field] / 1000)
        yield count
        yield errors
        yield quantiles
        worker_requests = GaugeMetricFamily("monitor_worker_window_requests", "Requests per worker in the window.",
                                            labels=["host", "pid"])
        rss = GaugeMetricFamily("monitor_worker_rss_bytes", "Resident memory per worker.", labels=["host", "pid"])
        cpu = GaugeMetricFamily("monitor_worker_cpu_percent", "CPU per worker.", labels=["host", "pid"])
        for worker in data["workers"]:
            labels = [worker["host"], str(worker["pid"])]
            worker_requests.add_metric(labels, worker["requests"])
            if worker["rss_mb"] is not None:
                rss.add_metric(labels, worker["rss_mb"] * 2**20)
                cpu.add_metric(labels, worker["cpu_percent"])
        yield worker_requests
        yield rss
        yield cpu
        for found in self.capabilities:
            yield from found.prometheus(self.store, self.window_s)


@bp.get("/metrics")
@role_required("viewer")
def exposition():
    """The Prometheus text format of the merged metrics (``?window=`` s, default 60)."""
    window = int_arg("window", 60, 10, query.MAX_WINDOW_S)
    registry = CollectorRegistry(auto_describe=False)
    monitor = state()
    registry.register(FleetCollector(monitor.store, window, layout.lag(monitor.config["MONITOR_FLUSH_INTERVAL"]),
                                     monitor.capabilities.values()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
