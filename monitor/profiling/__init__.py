"""On-demand CPU and memory profiling of live workers.

``init_app`` hangs a ``CpuProfiler`` and a ``MemoryProfiler`` on the monitor state,
registers the request hooks (idle unless a session targets this worker or a request asks
``?_profile=1``), the command handlers and the flusher tasks.
"""
from flask import g, request
from flask_login import current_user

from ..security import is_own_path
from .cpu import CpuProfiler, report_response
from .memory import MemoryProfiler, heap_summary

#: The query string that turns one host-app request into its own pyinstrument report (admins).
PROFILE_QUERY = b"_profile=1"
#: Sampling interval for a single-request report: fine, since one request is short and costs little.
PAGE_INTERVAL = 0.0001


def init_app(app, monitor):
    """Register the profiling capability on ``app``."""
    cpu = monitor.cpu_profiler = CpuProfiler(monitor)
    memory = monitor.memory_profiler = MemoryProfiler(monitor)

    @app.before_request
    def _profile_start():
        if cpu.active is None and PROFILE_QUERY not in request.query_string:
            return
        if is_own_path(request.path):
            return
        if request.args.get("_profile") == "1" and current_user.is_authenticated and current_user.can("admin"):
            g.monitor_profile_page = cpu.profiler(PAGE_INTERVAL)
        else:
            g.monitor_profile = cpu.begin()

    @app.after_request
    def _profile_page(response):
        profiler = g.pop("monitor_profile_page", None)
        if profiler is None:
            return response
        return report_response(cpu.html(profiler.stop()))

    @app.teardown_request
    def _profile_end(exc):
        unfinished = g.pop("monitor_profile_page", None)  # the view raised: no report, but stop sampling
        if unfinished is not None:
            unfinished.stop()
        entry = g.pop("monitor_profile", None)
        if entry:
            cpu.end(*entry)

    monitor.commands.handler("profiler.heap")(heap_summary)
    monitor.commands.handler("profiler.trace_start")(memory.trace_start)
    monitor.commands.handler("profiler.trace_stop")(memory.trace_stop)
    monitor.flusher.add_task(cpu.tick)
    monitor.flusher.add_task(memory.tick)
    monitor.features["profiling"] = True
