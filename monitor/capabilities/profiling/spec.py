"""The OpenAPI description of the profiling capability's routes (``api/openapi.py`` assembles it)."""
from ...api.schema import (
    BOOL,
    INT,
    NUM,
    NUMBER_OR_NULL,
    STR,
    arr,
    null,
    obj,
    op,
    path,
    ref,
)

SCHEMAS = {
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


def paths(config):
    """Return the operations of this capability's routes for an app with ``config``."""
    return {
        "/api/admin/profiler/cpu/start": {"post": op(
            "Start a CPU profiling session on the target workers", "admin",
            obj("all", session_id=STR, status={"type": "string", "enum": ["running"]}, target=STR, duration_s=INT),
            status=202, errors=(409,), body={"type": "object", "additionalProperties": False, "properties": {
                "duration_s": {"type": ["integer", "null"], "minimum": 1, "maximum": 300, "default": 30},
                "target": TARGET_CPU}})},
        "/api/admin/profiler/cpu/stop": {"post": op(
            "Stop the running CPU session (or the one named) and merge its profile", "admin", ref("CpuSession"),
            errors=(404, 409), body={"type": "object", "additionalProperties": False,
                                                   "properties": {"session_id": null(STR)}})},
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
            errors=(404, 409), body={"type": "object", "additionalProperties": False,
                                                   "properties": {"target": TARGET_MEMORY}})},
        "/api/admin/profiler/memory/start": {"post": op(
            "Start tracemalloc on one worker (one session in the fleet)", "admin",
            obj("all", session_id=STR, worker=STR, started_at=NUM, max_duration_s=INT,
                status={"type": "string", "enum": ["running"]}),
            status=202, errors=(404, 409), body={"type": "object", "additionalProperties": False, "properties": {
                "target": TARGET_MEMORY,
                "max_duration_s": {"type": ["integer", "null"], "minimum": 1, "maximum": config["MONITOR_TRACEMALLOC_MAX_S"],
                                   "description": "default and most: MONITOR_TRACEMALLOC_MAX_S"}}})},
        "/api/admin/profiler/memory/stop": {"post": op(
            "Stop tracemalloc; the allocation sites that grew most", "admin",
            obj(("session_id", "status", "top"), session_id=STR, status={"type": "string", "enum": ["done", "lost"]},
                worker=STR, started_at=NUM, stopped_at=NUM, reason=STR,
                top=arr(obj("all", file=STR, line=INT, size_diff_bytes=INT, count_diff=INT))),
            errors=(404, 409))},
    }
