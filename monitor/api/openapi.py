"""``GET /api/openapi.json``: the OpenAPI 3.1 description of the monitor's JSON routes.

Hand-written next to the views it describes: ``tests/test_openapi.py`` fails when a route
of ``app.url_map`` under ``/api/``, ``/health`` or ``/metrics`` is missing here (or one here
does not exist), when an operation's ``x-required-role`` differs from its view's
``@role_required``, and schemathesis checks every answer of a live server against it.
"""
import copy

from flask import Blueprint, current_app, jsonify

from .. import audit
from ..auth import require_login
from ..auth.decorators import role_required
from ..responses import register_store_handler
from .errors import no_store

bp = Blueprint("monitor_openapi", __name__)
bp.before_request(require_login)
bp.after_request(no_store)
register_store_handler(bp)

# ---------------------------------------------------------------- schema helpers

STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
ANY = {}


def null(schema):
    """``schema`` or null."""
    return {**schema, "type": [schema["type"], "null"]}


def arr(items):
    return {"type": "array", "items": items}


def obj(required=(), **properties):
    """An object with ``properties``; the names in ``required`` must be present (others may be)."""
    schema = {"type": "object", "properties": properties}
    if required == "all":
        required = list(properties)
    if required:
        schema["required"] = list(required)
    return schema


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


ERROR_TEXT = {400: "Bad input (nothing changed)", 401: "Not logged in: no session cookie or bearer token",
              403: "Role too low, or a cookie request without its CSRF token", 404: "Not found",
              409: "Conflicts with the current state", 503: "The shared store (Redis) is unreachable"}


def _error(status):
    answer = {"description": ERROR_TEXT[status],
              "content": {"application/json": {"schema": ref("Error")}}}
    if status == 401:
        answer["headers"] = {"WWW-Authenticate": {"schema": STR}}
    if status == 503:
        answer["headers"] = {"Retry-After": {"schema": STR, "description": "seconds"}}
    return answer


def query(name, schema, description):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def path(name, schema, description):
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def op(summary, role, answer, *, status=200, params=(), body=None, body_required=False, errors=(),
       content="application/json", headers=None):
    """One operation: ``role`` is the least role that may call it, ``answer`` the success body schema.

    Every operation may answer 401 and 503; 403 where the role is above viewer; 400 where it
    takes query parameters or a body; ``errors`` adds the operation's own (400, 404, 409); 414
    where it takes query parameters.
    """
    success = {"description": "OK", "content": {content: {"schema": answer}}}
    if headers:
        success["headers"] = headers
    takes_query = any(param["in"] == "query" for param in params)
    codes = {401, 503, *errors}
    if role != "viewer":
        codes.add(403)
    if takes_query or body:
        codes.add(400)
    operation = {"summary": summary, "description": f"Role: {role} or above.", "x-required-role": role,
                 "responses": {str(status): success, **{str(code): _error(code) for code in sorted(codes)}}}
    if takes_query:
        operation["responses"]["414"] = {"description": "URL longer than gunicorn's request line limit "
                                                        "(4094 bytes); gunicorn answers it, as plain text"}
    if params:
        operation["parameters"] = list(params)
    if body:
        operation["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": body}}}
        if not body_required:
            operation["description"] += " An empty body counts as `{}`."
    return operation


# ---------------------------------------------------------------- component schemas

NUMBER_OR_NULL = null(NUM)
SCHEMAS = {
    "Error": obj("all", error={"type": "string", "enum": [
        "bad_request", "unauthorized", "forbidden", "not_found", "method_not_allowed", "conflict",
        "rate_limited", "unavailable"]}, detail=STR),
    "Health": obj(
        "all", status={"type": "string", "enum": ["healthy", "degraded"]},
        timestamp={"type": "string", "format": "date-time"},
        worker=obj("all", id=STR, pid=INT, host=STR, clustered=BOOL, uptime=NUM,
                   memory=obj("all", rss=NUM)),
        redis=obj("all", ok=BOOL),
        monitoring={"type": "object", "additionalProperties": BOOL}),
    "Metrics": obj(
        ("requests", "latency_ms", "endpoints", "workers", "system", "series", "window_s", "generated_at"),
        requests=obj("all", total=INT, rate_per_s=NUM, errors=INT, error_rate=NUM,
                     by_status=obj("all", **{"2xx": INT, "3xx": INT, "4xx": INT, "5xx": INT})),
        latency_ms=obj("all", p50=NUM, p90=NUM, p95=NUM, p99=NUM, max=NUM, mean=NUM),
        endpoints=arr(obj(("endpoint", "method", "count", "errors", "p50_ms", "p95_ms", "p99_ms"),
                          endpoint=STR, method=STR, count=INT, errors=INT, p50_ms=NUM, p95_ms=NUM,
                          p99_ms=NUM, mean_ms=NUM)),
        workers=arr(obj(("host", "pid", "requests", "rss_mb", "cpu_percent"), host=STR, pid=INT,
                        requests=INT, rss_mb=NUMBER_OR_NULL, cpu_percent=NUMBER_OR_NULL)),
        system=obj(("cpu_percent", "memory_percent", "load_avg"), cpu_percent=NUMBER_OR_NULL,
                   memory_percent=NUMBER_OR_NULL, load_avg=null(arr(NUM))),
        series=arr(obj("all", t=INT, requests=INT, errors=INT, p95_ms=NUMBER_OR_NULL)),
        window_s=INT, generated_at=NUM,
        resolution_s=obj((), table=INT, series=INT), overhead={"type": "object"}),
    "CacheStats": obj(
        ("backend", "prefix", "keys", "hits", "misses", "hit_rate", "memory_bytes", "namespaces", "redis"),
        backend=STR, prefix=STR, keys=INT, approximate=BOOL, hits=INT, misses=INT,
        hit_rate=NUMBER_OR_NULL, window_s=INT, memory_bytes=INT, memory_sampled_keys=INT,
        namespaces=arr(obj("all", name=STR, keys=INT, hits=INT, misses=INT)),
        redis=obj(("version", "used_memory", "evicted_keys", "connected_clients"),
                  version=null(STR), used_memory=null(INT), evicted_keys=null(INT),
                  connected_clients=null(INT), ops_per_sec=null(INT), keyspace_hits=null(INT),
                  keyspace_misses=null(INT))),
    "Operation": obj(
        ("id", "mode", "status", "hosts", "progress"),
        id=STR, mode={"type": "string", "enum": ["rolling", "worker", "reload", "add", "remove"]},
        host=null(STR), pid=null(INT), hosts=arr(STR), user=null(STR), status=STR,
        created_at=NUM, started_at=NUMBER_OR_NULL, finished_at=NUMBER_OR_NULL,
        progress=obj(("done", "total"), done=INT, total=null(INT)), steps=arr({"type": "object"}),
        message=null(STR), error=null(STR)),
    "ClusterStatus": obj(
        ("hosts", "workers", "count", "alive"),
        hosts=arr(obj(("host", "master_pid", "workers_target"), host=STR, master_pid=null(INT),
                      workers_target=null(INT), status=STR, managed=BOOL, workers=INT, workers_alive=INT)),
        workers=arr(obj(("id", "host", "pid", "status", "started_at", "uptime_s", "last_heartbeat_s",
                         "requests", "in_flight", "rss_mb", "cpu_percent"),
                        id=STR, host=STR, pid=INT, master_pid=null(INT),
                        status={"type": "string", "enum": ["alive", "stale"]}, started_at=NUM, uptime_s=NUM,
                        last_heartbeat_s=NUM, requests=INT, in_flight=INT, rss_mb=NUMBER_OR_NULL,
                        cpu_percent=NUMBER_OR_NULL)),
        count=INT, alive=INT, operation={"oneOf": [ref("Operation"), {"type": "null"}]}, generated_at=NUM),
    "LogEntry": obj(("id", "ts", "level", "logger", "message", "host", "pid"),
                    id=STR, ts=NUM, level=STR, logger=STR, message=STR, host=STR, pid=INT,
                    exc_text=STR, request_id=STR),
    "Alert": obj(("id", "rule", "state"), id=STR, rule=STR, title=STR,
                 state={"type": "string", "enum": ["pending", "firing", "resolved", "inactive"]},
                 since=NUM, value=ANY, detail=null(STR), acked_by=STR, acked_at=NUM),
    "CpuSession": obj(
        ("session_id", "status", "target", "duration_s", "samples", "requests", "has_result", "report_url",
         "speedscope_url"),
        session_id=STR, status={"type": "string", "enum": ["running", "stopping", "done", "lost"]},
        target=STR, duration_s=INT, started_at=NUM, ends_at=NUM, started_by=STR,
        stopped_at=NUMBER_OR_NULL, stop_reason=null(STR), remaining_s=NUM, requests=INT, samples=INT,
        workers=arr(obj(("worker", "requests", "samples", "state"), worker=STR, requests=INT, samples=INT,
                        state=STR)),
        lost_workers=arr(STR), has_result=BOOL, truncated=BOOL, url=STR,
        report_url=null(STR), speedscope_url=null(STR)),
}

TARGET_CPU = {"type": ["string", "null"], "pattern": r"^(\s*(all|host:\s*\S[\s\S]*|pid:\s*[0-9]*[1-9][0-9]*)\s*)?$",
              "description": '"all" (default), "host:NAME" or "pid:NUMBER"'}
TARGET_MEMORY = {"type": ["string", "null"], "pattern": r"^\s*(self|pid:[0-9]+|worker:.+:[0-9]+)?\s*$",
                 "description": '"pid:NUMBER" (this host) or "worker:HOST:PID"; none: the worker that answers'}
CURSOR = {"type": "string", "pattern": f"^({audit.CURSOR_RE.pattern[1:-1]})?$"}  # empty: the newest
RESTART_HOST = {"type": ["string", "null"], "minLength": 1, "maxLength": 255, "pattern": r"\S",
                "description": "the host to act on (default: every host for rolling, else the only one)"}
LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "entries per page")
LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _paths(tracemalloc_max_s):
    """The operations; ``tracemalloc_max_s`` is the app's MONITOR_TRACEMALLOC_MAX_S."""
    return {
        "/health": {"get": {
            "summary": "Liveness of the answering worker and of the shared store", "security": [],
            "description": "Public. Reveals no secret and no setting.",
            "responses": {"200": {"description": "OK (also while Redis is down: status degraded)",
                                  "content": {"application/json": {"schema": ref("Health")}}}}}},
        "/metrics": {"get": op(
            "Prometheus text exposition of the fleet's merged metrics", "viewer",
            {"type": "string"}, content="text/plain",
            params=[query("window", {"type": "integer", "minimum": 10, "maximum": 86400, "default": 60},
                          "window of the gauges, in seconds")])},
        "/api/openapi.json": {"get": op("This description", "viewer", {"type": "object"})},
        "/api/admin/metrics": {"get": op(
            "The fleet's merged request metrics over a window", "viewer", ref("Metrics"), params=[
                query("window", {"type": "integer", "minimum": 10, "maximum": 86400, "default": 60}, "seconds"),
                query("host", {"type": "string", "maxLength": 255}, "only this host's workers"),
                query("pid", {"type": "integer", "minimum": 1, "maximum": 2**31}, "only this worker")])},
        "/api/admin/cache/stats": {"get": op(
            "The app cache's keys, hit rate, memory and Redis figures", "viewer", ref("CacheStats"), params=[
                query("window", {"type": "integer", "minimum": 60, "maximum": 86400, "default": 3600},
                      "hit-rate window, in seconds")])},
        "/api/admin/cache/clear": {"post": op(
            "Delete the app cache's keys (all, or one namespace); never the monitor's own data", "operator",
            obj("all", cleared=INT, namespace=null(STR)),
            body={"type": "object", "additionalProperties": False, "properties": {
                "namespace": {"type": ["string", "null"], "minLength": 1, "maxLength": 200,
                          "pattern": r"^[^:/\x00-\x1f\x7f-\x9f]+$",
                              "description": "printable characters, no ':' or '/'"}}})},
        "/api/admin/cluster/status": {"get": op(
            "Every host and worker of the fleet, and the running operation", "viewer", ref("ClusterStatus"))},
        "/api/admin/cluster/restart": {"post": op(
            "Start a restart operation (one at a time in the fleet)", "operator",
            obj("all", operation_id=STR, status=STR, hosts=arr(STR)), status=202, errors=(404, 409),
            headers={"Location": {"schema": STR, "description": "the operation's URL"}}, body_required=True,
            body={"oneOf": [
                {"type": "object", "required": ["mode", "pid"], "properties": {
                    "mode": {"const": "worker"}, "pid": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                    "host": RESTART_HOST}},
                {"type": "object", "required": ["mode"], "properties": {
                    "mode": {"type": "string", "enum": ["rolling", "reload", "add", "remove"]},
                    "pid": {"type": "null", "description": "only with mode worker"}, "host": RESTART_HOST}}]})},
        "/api/admin/cluster/operations/{operation_id}": {"get": op(
            "A restart operation's record and progress", "viewer", ref("Operation"), errors=(404,),
            params=[path("operation_id", STR, "from POST cluster/restart")])},
        "/api/admin/logs": {"get": op(
            "The fleet's log lines, newest first", "viewer",
            obj("all", entries=arr(ref("LogEntry")), next=null(STR)), params=[
                query("level", {"type": "string", "enum": ["", *LEVELS, *(level.lower() for level in LEVELS)]},
                      "lowest level (default DEBUG)"),
                query("q", {"type": "string", "maxLength": 200}, "text in message, logger or exception"),
                query("host", STR, "only this host"),
                query("pid", {"type": "string", "pattern": "^([0-9]{1,10})?$"}, "only this process id"),
                LIMIT, query("before", CURSOR, "cursor: the `next` of the previous page")])},
        "/api/admin/alerts": {"get": op(
            "Active alerts, their history and the rules", "viewer",
            obj("all", active=arr(ref("Alert")), history=arr(ref("Alert")),
                rules=arr(obj("all", name=STR, title=STR, threshold=STR))))},
        "/api/admin/alerts/{alert_id}/ack": {"post": op(
            "Acknowledge an active alert", "operator", ref("Alert"), errors=(400, 404), params=[
                path("alert_id", {"type": "string", "pattern": r"^[a-z0-9_]{1,40}-\d{1,12}$"},
                     "such as error_rate-1700000000")])},
        "/api/admin/audit": {"get": op(
            "The audit log, newest first", "admin",
            obj("all", entries=arr(obj("all", id=STR, ts=NUM, time=STR, user=STR, action=STR, result=STR,
                                       ip=STR, detail={"type": "object"})),
                next=null(STR), cap=INT),
            params=[LIMIT, query("before", CURSOR, "cursor: the `next` of the previous page")])},
        "/api/admin/profiler/cpu/start": {"post": op(
            "Start a CPU profiling session on the target workers", "admin",
            obj("all", session_id=STR, status={"type": "string", "enum": ["running"]}, target=STR, duration_s=INT),
            status=202, errors=(409,), body={"type": "object", "properties": {
                "duration_s": {"type": ["integer", "null"], "minimum": 1, "maximum": 300, "default": 30},
                "target": TARGET_CPU}})},
        "/api/admin/profiler/cpu/stop": {"post": op(
            "Stop the running CPU session (or the one named) and merge its profile", "admin", ref("CpuSession"),
            errors=(404, 409), body={"type": "object", "properties": {"session_id": null(STR)}})},
        "/api/admin/profiler/sessions": {"get": op(
            "The kept CPU sessions, newest first", "admin",
            obj("all", sessions=arr(ref("CpuSession")), running=null(STR)))},
        "/api/admin/profiler/sessions/{session_id}": {"get": op(
            "One CPU session", "admin", ref("CpuSession"), errors=(404,),
            params=[path("session_id", STR, "a session id")])},
        "/api/admin/profiler/sessions/{session_id}/report.html": {"get": op(
            "The session's pyinstrument HTML report", "admin", {"type": "string"}, content="text/html",
            errors=(404,), params=[path("session_id", STR, "a session id")])},
        "/api/admin/profiler/sessions/{session_id}/speedscope.json": {"get": op(
            "The session's profile in speedscope's format (a download)", "admin", {"type": "object"},
            errors=(404,), params=[path("session_id", STR, "a session id")])},
        "/api/admin/profiler/memory/snapshot": {"post": op(
            "A heap summary (guppy3) of one worker", "admin",
            obj("all", snapshot_id=STR, worker=STR, taken_at=NUM, total_bytes=INT, objects=INT, took_ms=NUM,
                by_type=arr(obj("all", type=STR, count=INT, bytes=INT))),
            errors=(404, 409), body={"type": "object", "properties": {"target": TARGET_MEMORY}})},
        "/api/admin/profiler/memory/start": {"post": op(
            "Start tracemalloc on one worker (one session in the fleet)", "admin",
            obj("all", session_id=STR, worker=STR, started_at=NUM, max_duration_s=INT,
                status={"type": "string", "enum": ["running"]}),
            status=202, errors=(404, 409), body={"type": "object", "properties": {
                "target": TARGET_MEMORY,
                "max_duration_s": {"type": ["integer", "null"], "minimum": 1, "maximum": tracemalloc_max_s,
                                   "description": "default and most: MONITOR_TRACEMALLOC_MAX_S"}}})},
        "/api/admin/profiler/memory/stop": {"post": op(
            "Stop tracemalloc; the allocation sites that grew most", "admin",
            obj(("session_id", "status", "top"), session_id=STR, status={"type": "string", "enum": ["done", "lost"]},
                worker=STR, started_at=NUM, stopped_at=NUM, reason=STR,
                top=arr(obj("all", file=STR, line=INT, size_diff_bytes=INT, count_diff=INT))),
            errors=(404, 409))},
    }


def spec(tracemalloc_max_s=120):
    """Return the OpenAPI document (a fresh dict) for an app whose MONITOR_TRACEMALLOC_MAX_S is given."""
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {"title": "monitor", "version": "1",
                 "description": "The monitor's JSON API. Send `Authorization: Bearer <token>`, or the "
                                "session cookie plus `X-CSRFToken` on unsafe methods. Errors are "
                                '`{"error": code, "detail": text}`.'},
        "paths": _paths(tracemalloc_max_s),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "an API token `mon_<id>_<secret>` (users page or `monitor create-token`)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "the login session; unsafe methods also need the X-CSRFToken header"}},
        },
        "security": [{"bearer": []}, {"session": []}],
    })


@bp.get("/api/openapi.json")
@role_required("viewer")
def openapi_json():
    """Serve the description to any logged-in user."""
    return jsonify(spec(current_app.config["MONITOR_TRACEMALLOC_MAX_S"]))
