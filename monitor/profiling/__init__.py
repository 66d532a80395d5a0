"""On-demand CPU and memory profiling of live workers.

``init_app`` hangs a ``CpuProfiler`` and a ``MemoryProfiler`` on the monitor state and
registers the command handlers and the flusher tasks. The monitor's request hooks
(``instrumentation.py``) call :func:`request_start` for a host-app request only while a session
targets this worker or the request asks ``?_profile=1``, and :func:`request_end` only for a
request that started a profiler.
"""
from flask_login import current_user

from .cpu import CpuProfiler, report_response
from .memory import MemoryProfiler, heap_summary

#: The query string that turns one host-app request into its own pyinstrument report (admins).
PROFILE_QUERY = b"_profile=1"
#: Sampling interval for a single-request report: fine, since one request is short and costs little.
PAGE_INTERVAL = 0.0001
#: WSGI environ key of a profiled request's ``(profiler, session_id)``; session_id None: its own report.
PROFILE = "monitor.profile"


def init_app(app, monitor):
    """Register the profiling capability on ``app``."""
    cpu = monitor.cpu_profiler = CpuProfiler(monitor)
    memory = monitor.memory_profiler = MemoryProfiler(monitor)
    monitor.commands.handler("profiler.heap")(heap_summary)
    monitor.commands.handler("profiler.trace_start")(memory.trace_start)
    monitor.commands.handler("profiler.trace_stop")(memory.trace_stop)
    monitor.flusher.add_task(cpu.tick)
    monitor.flusher.add_task(memory.tick)
    monitor.features["profiling"] = True


def request_start(cpu, req):
    """Profile a host-app request: for its own report (an admin's ``?_profile=1``) or the session."""
    if req.args.get("_profile") == "1" and current_user.is_authenticated and current_user.can("admin"):
        req.environ[PROFILE] = (cpu.profiler(PAGE_INTERVAL), None)
        return
    entry = cpu.begin()
    if entry:
        req.environ[PROFILE] = entry


def request_end(cpu, environ, response=None):
    """Stop the request's profiler; return its report for ``?_profile=1`` (with a response), else ``response``."""
    profiler, session_id = environ.pop(PROFILE)
    if session_id is not None:
        cpu.end(profiler, session_id)
        return response
    session = profiler.stop()
    return response if response is None else report_response(cpu.html(session))
