"""The OpenAPI description of the queries capability's route (``api/openapi.py`` assembles it)."""
from ...api.schema import BOOL, INT, NUM, STR, arr, null, obj, op, query, ref
from .tally import DEFAULT_WINDOW_S, MAX_WINDOW_S

WINDOW = query("window", {"type": "integer", "minimum": 10, "maximum": MAX_WINDOW_S, "default": DEFAULT_WINDOW_S},
               "seconds")

SCHEMAS = {
    "Queries": obj(
        ("statements", "slowest", "n_plus_one"),
        statements=arr(obj(("sql", "count", "total_ms", "p95_ms"), id=STR, sql=STR, count=INT, errors=INT,
                           total_ms=NUM, mean_ms=NUM, p50_ms=NUM, p95_ms=NUM, p99_ms=NUM)),
        slowest=arr(obj(("sql", "duration_ms", "endpoint", "request_id"), sql=STR, duration_ms=NUM, endpoint=STR,
                        method=STR, error=BOOL, request_id=null(STR), time=NUM, worker=STR)),
        n_plus_one=arr(obj(("endpoint", "sql", "count", "example_request_id"), endpoint=STR, method=STR, sql=STR,
                           count=INT, executions=INT, example_request_id=null(STR))),
        endpoints=arr(obj("all", endpoint=STR, method=STR, queries=INT, errors=INT, sql_ms=NUM)),
        threshold=INT, window_s=INT, generated_at=NUM),
}


def paths(config):
    """Return the operations of this capability's routes for an app with ``config``."""
    return {"/api/admin/queries": {"get": op(
        "The fleet's SQL over a window: statements, slowest executions, N+1 findings", "viewer",
        ref("Queries"), params=[WINDOW])}}
