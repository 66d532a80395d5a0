"""The OpenAPI description of the outgoing capability's route (``api/openapi.py`` assembles it)."""
from ...api.schema import INT, NUM, STR, arr, null, obj, op, ref
from ..queries.spec import WINDOW

SCHEMAS = {
    "Outgoing": obj(
        ("groups",),
        groups=arr(obj(("host", "method", "path", "count", "errors", "p95_ms"), id=STR, host=STR, method=STR,
                       path=STR, count=INT, errors=INT, error_rate=NUM, total_ms=NUM, mean_ms=NUM, p50_ms=NUM,
                       p95_ms=NUM, p99_ms=NUM)),
        slowest=arr(obj(("host", "method", "path", "status", "duration_ms"), host=STR, method=STR, path=STR,
                        status=null(INT), duration_ms=NUM, endpoint=STR, endpoint_method=STR,
                        request_id=null(STR), time=NUM, worker=STR)),
        endpoints=arr(obj("all", endpoint=STR, method=STR, calls=INT, errors=INT, http_ms=NUM)),
        window_s=INT, generated_at=NUM),
}


def paths(config):
    """Return the operations of this capability's routes for an app with ``config``."""
    return {"/api/admin/outgoing": {"get": op(
        "The fleet's outgoing HTTP calls over a window, by host, method and path template", "viewer",
        ref("Outgoing"), params=[WINDOW])}}
