"""The OpenAPI description of the metrics capability's routes (``api/openapi.py`` assembles it)."""
from ...api.schema import BOOL, INT, NUM, NUMBER_OR_NULL, STR, arr, null, obj, op, query, ref
from .query import MAX_WINDOW_S

SCHEMAS = {
    "Metrics": obj(
        ("requests", "latency_ms", "endpoints", "workers", "system", "series", "window_s", "generated_at"),
        requests=obj("all", total=INT, rate_per_s=NUM, errors=INT, error_rate=NUM,
                     by_status=obj("all", **{"2xx": INT, "3xx": INT, "4xx": INT, "5xx": INT})),
        latency_ms=obj("all", p50=NUMBER_OR_NULL, p90=NUMBER_OR_NULL, p95=NUMBER_OR_NULL, p99=NUMBER_OR_NULL,
                       max=NUMBER_OR_NULL, mean=NUM),
        endpoints=arr(obj(("endpoint", "method", "count", "errors", "p50_ms", "p95_ms", "p99_ms"),
                          endpoint=STR, method=STR, count=INT, errors=INT, p50_ms=NUM, p95_ms=NUM,
                          p99_ms=NUM, mean_ms=NUM)),
        workers=arr(obj(("host", "pid", "requests", "rss_mb", "cpu_percent"), host=STR, pid=INT,
                        requests=INT, rss_mb=NUMBER_OR_NULL, cpu_percent=NUMBER_OR_NULL)),
        system=obj(("cpu_percent", "memory_percent", "load_avg"), cpu_percent=NUMBER_OR_NULL,
                   memory_percent=NUMBER_OR_NULL, load_avg=null(arr(NUM))),
        series=arr(obj("all", t=INT, requests=INT, errors=INT, p95_ms=NUMBER_OR_NULL)),
        window_s=INT, generated_at=NUM,
        scope=obj((), kind={"type": "string", "enum": ["fleet", "host", "worker"]}, endpoints=BOOL,
                  percentiles=BOOL),
        resolution_s=obj((), table=INT, series=INT), overhead={"type": "object"}),
}


def paths(config):
    """Return the operations of this capability's routes for an app with ``config``."""
    return {
        "/metrics": {"get": op(
            "Prometheus text exposition of the fleet's merged metrics", "viewer",
            {"type": "string"}, content="text/plain",
            params=[query("window", {"type": "integer", "minimum": 10, "maximum": MAX_WINDOW_S, "default": 60},
                          "window of the gauges, in seconds")])},
        "/api/admin/metrics": {"get": op(
            "The fleet's merged request metrics over a window", "viewer", ref("Metrics"), params=[
                query("window", {"type": "integer", "minimum": 10, "maximum": MAX_WINDOW_S, "default": 60}, "seconds"),
                query("host", {"type": "string", "maxLength": 255},
                      "only this host: totals, percentiles, chart, workers (no endpoint rows)"),
                query("pid", {"type": "integer", "minimum": 1, "maximum": 2**31},
                      "only this worker: totals, mean, chart; no percentiles (null), no endpoint rows")])},
    }
