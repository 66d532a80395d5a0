"""JSON API: CPU profiling sessions and their reports, heap summaries, tracemalloc (admins only)."""
from flask import Response, abort, url_for
from flask_login import current_user

from ..auth.decorators import role_required
from ..extension import state
from ..profiling import cpu as cpu_mod
from ..profiling import memory as memory_mod
from ..profiling.cpu import report_response
from . import bp
from .errors import BadRequest, json_body, json_int


def _parsed(parse, value):
    try:
        return parse(value)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def with_links(summary):
    """Add the report links to a session summary once its result exists."""
    sid = summary["session_id"]
    has = summary["has_result"]
    return {**summary,
            "url": url_for("monitor_api.profiler_session", session_id=sid),
            "report_url": url_for("monitor_api.profiler_report", session_id=sid) if has else None,
            "speedscope_url": url_for("monitor_api.profiler_speedscope", session_id=sid) if has else None}


@bp.post("/profiler/cpu/start")
@role_required("admin")
def profiler_cpu_start():
    body = json_body()
    duration = _parsed(cpu_mod.parse_duration, json_int(body, "duration_s"))
    target = _parsed(cpu_mod.parse_target, body.get("target"))
    try:
        sid = state().cpu_profiler.start(duration, target, current_user.name)
    except cpu_mod.Busy as exc:
        abort(409, str(exc))
    return {"session_id": sid, "status": "running", "target": target, "duration_s": duration}, 202


@bp.post("/profiler/cpu/stop")
@role_required("admin")
def profiler_cpu_stop():
    sid = json_body().get("session_id")
    if sid is not None and not isinstance(sid, str):
        raise BadRequest("session_id must be a string")
    try:
        summary = state().cpu_profiler.stop(sid)
    except cpu_mod.NotRunning as exc:
        abort(409, str(exc))
    except LookupError as exc:
        abort(404, str(exc))
    return with_links(summary)


@bp.get("/profiler/sessions")
@role_required("admin")
def profiler_sessions():
    profiler = state().cpu_profiler
    running = profiler.running()
    return {"sessions": [with_links(s) for s in profiler.sessions()],
            "running": running["session_id"] if running else None}


def _or_404(found, detail):
    if found is None:
        abort(404, detail)
    return found


def _session(sid):
    return _or_404(state().cpu_profiler.get(sid), f"no session {sid}")


@bp.get("/profiler/sessions/<session_id>")
@role_required("admin")
def profiler_session(session_id):
    return with_links(_session(session_id))


def _result(sid):
    _session(sid)
    return _or_404(state().cpu_profiler.result(sid),
                   f"session {sid} has no result (still running, or it saw no request)")


@bp.get("/profiler/sessions/<session_id>/report.html")
@role_required("admin")
def profiler_report(session_id):
    return report_response(cpu_mod.CpuProfiler.html(_result(session_id)))


@bp.get("/profiler/sessions/<session_id>/speedscope.json")
@role_required("admin")
def profiler_speedscope(session_id):
    body = cpu_mod.CpuProfiler.speedscope(_result(session_id))
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="profile-{session_id}.speedscope.json"'})


def _memory_call(action, *args):
    try:
        return action(*args)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    except (memory_mod.Busy, memory_mod.NotRunning, RuntimeError) as exc:
        abort(409, str(exc))
    except memory_mod.Unreachable as exc:
        abort(404, str(exc))


@bp.post("/profiler/memory/snapshot")
@role_required("admin")
def profiler_memory_snapshot():
    return _memory_call(state().memory_profiler.snapshot, json_body().get("target"))


@bp.post("/profiler/memory/start")
@role_required("admin")
def profiler_memory_start():
    body = json_body()
    memory = state().memory_profiler
    max_s = _parsed(memory.parse_max, json_int(body, "max_duration_s"))
    return _memory_call(memory.start, body.get("target"), max_s), 202


@bp.post("/profiler/memory/stop")
@role_required("admin")
def profiler_memory_stop():
    return _memory_call(state().memory_profiler.stop)
