"""JSON API: CPU profiling sessions and their reports, heap summaries, tracemalloc (admins only)."""
from flask import Response, url_for
from flask_login import current_user

from ...auth.decorators import role_required
from ...core.errors import Refused
from ...core.state import state
from ...web import body
from . import memory, render, sessions


def with_links(summary):
    """Add the report links to a session summary once its result exists."""
    sid = summary["session_id"]
    has = summary["has_result"]
    return {**summary,
            "url": url_for("monitor_api.profiler_session", session_id=sid),
            "report_url": url_for("monitor_api.profiler_report", session_id=sid) if has else None,
            "speedscope_url": url_for("monitor_api.profiler_speedscope", session_id=sid) if has else None}


def _found(found, detail):
    if found is None:
        raise Refused(detail, 404)
    return found


def _result(sid):
    profiler = state().cpu_profiler
    _found(profiler.get(sid), f"no session {sid}")
    return _found(profiler.result(sid), f"session {sid} has no result (still running, or it saw no request)")


def register(bp):
    """Add the profiler routes to the API blueprint."""

    @bp.post("/profiler/cpu/start")
    @role_required("admin")
    def profiler_cpu_start():
        fields = body.fields(**sessions.START_FIELDS)
        duration = sessions.parse_duration(fields.get("duration_s"))
        target = sessions.parse_target(fields.get("target"))
        sid = state().cpu_profiler.start(duration, target, current_user.name)
        return {"session_id": sid, "status": "running", "target": target, "duration_s": duration}, 202

    @bp.post("/profiler/cpu/stop")
    @role_required("admin")
    def profiler_cpu_stop():
        sid = body.fields(**sessions.STOP_FIELDS).get("session_id")
        return with_links(state().cpu_profiler.stop(sid))

    @bp.get("/profiler/sessions")
    @role_required("admin")
    def profiler_sessions():
        profiler = state().cpu_profiler
        running = profiler.running()
        return {"sessions": [with_links(s) for s in profiler.sessions()],
                "running": running["session_id"] if running else None}

    @bp.get("/profiler/sessions/<session_id>")
    @role_required("admin")
    def profiler_session(session_id):
        return with_links(_found(state().cpu_profiler.get(session_id), f"no session {session_id}"))

    @bp.get("/profiler/sessions/<session_id>/report.html")
    @role_required("admin")
    def profiler_report(session_id):
        return render.report_response(render.html(_result(session_id)))

    @bp.get("/profiler/sessions/<session_id>/speedscope.json")
    @role_required("admin")
    def profiler_speedscope(session_id):
        return Response(render.speedscope(_result(session_id)), mimetype="application/json", headers={
            "Content-Disposition": f'attachment; filename="profile-{session_id}.speedscope.json"'})

    @bp.post("/profiler/memory/snapshot")
    @role_required("admin")
    def profiler_memory_snapshot():
        return state().memory_profiler.snapshot(body.fields(**memory.SNAPSHOT_FIELDS).get("target"))

    @bp.post("/profiler/memory/start")
    @role_required("admin")
    def profiler_memory_start():
        fields = body.fields(**memory.TRACE_FIELDS)
        profiler = state().memory_profiler
        return profiler.start(fields.get("target"), profiler.parse_max(fields.get("max_duration_s"))), 202

    @bp.post("/profiler/memory/stop")
    @role_required("admin")
    def profiler_memory_stop():
        body.fields()
        return state().memory_profiler.stop()
