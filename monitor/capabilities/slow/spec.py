"""The OpenAPI description of the slow-requests capability's route (``api/openapi.py`` assembles it)."""
from ...api.schema import INT, NUM, STR, arr, null, obj, op, query
from ...core.buckets import MAX_WINDOW_S
from .api import DEFAULT_WINDOW_S, MAX_RULE

SCHEMAS = {
    "SlowRequests": obj(
        ("requests",),
        requests=arr(obj(("time", "endpoint", "method", "status", "duration_ms", "host", "pid", "request_id"),
                         time=NUM, endpoint=STR, method=STR, status=INT, duration_ms=NUM, host=STR, pid=INT,
                         request_id=null(STR), user=null(STR), release=STR)),
        endpoints=arr(obj("all", endpoint=STR, method=STR, count=INT, threshold_ms=NUM)),
        count=INT, threshold_ms=NUM, thresholds_ms={"type": "object", "additionalProperties": NUM},
        window_s=INT, resolution_s=INT, generated_at=NUM),
}


def paths(config):
    """Return the operations of this capability's routes for an app with ``config``."""
    return {"/api/admin/requests/slow": {"get": op(
        "The fleet's slowest requests over a window, slowest first, and the slow requests per endpoint", "viewer",
        {"$ref": "#/components/schemas/SlowRequests"}, params=[
            query("window", {"type": "integer", "minimum": 10, "maximum": MAX_WINDOW_S, "default": DEFAULT_WINDOW_S},
                  "seconds (read in whole minutes up to 6 h, in whole hours beyond)"),
            query("endpoint", {"type": "string", "maxLength": MAX_RULE, "pattern": "^([/<].*)?$"},
                  "only this endpoint rule, such as /demo/sleep")])}}
