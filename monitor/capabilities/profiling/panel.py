"""The profiling panel: CPU sessions, heap summaries and tracemalloc diffs (admins act and read)."""
from flask_login import current_user

from ...web import body
from ...web.panel import Panel
from . import memory, sessions
from .api import with_links


class ProfilingPanel(Panel):
    name = "profiling"
    title = "Profiling"
    poll = "2s"
    actions = {
        "cpu_start": ("admin", "cpu_start"), "cpu_stop": ("admin", "cpu_stop"),
        "heap": ("admin", "heap"), "trace_start": ("admin", "trace_start"), "trace_stop": ("admin", "trace_stop"),
    }

    def context(self, monitor, args):
        if not current_user.can("admin"):
            return {"admin": False}
        cpu_profiler, mem = monitor.cpu_profiler, monitor.memory_profiler
        heaps, traces = mem.recent("snaps"), mem.recent("traces")
        return {
            "admin": True, "running": cpu_profiler.running(),
            "sessions": [with_links(s) for s in cpu_profiler.sessions()],
            "heap": heaps[0] if heaps else None, "trace": traces[0] if traces else None,
            "tracing": mem.running(), "duration_default": sessions.DURATION_DEFAULT,
            "duration_max": sessions.DURATION_MAX, "trace_max": mem.max_s,
        }

    def cpu_start(self, monitor):
        fields = body.fields(**sessions.START_FIELDS)
        duration = sessions.parse_duration(fields.get("duration_s"))
        target = sessions.parse_target(fields.get("target"))
        sid = monitor.cpu_profiler.start(duration, target, current_user.name)
        return f"CPU session {sid} started on {target} for {duration} s."

    def cpu_stop(self, monitor):
        summary = monitor.cpu_profiler.stop(body.fields(**sessions.STOP_FIELDS).get("session_id"))
        return f"CPU session {summary['session_id']}: {summary['status']}, {summary['requests']} requests."

    def heap(self, monitor):
        found = monitor.memory_profiler.snapshot(body.fields(**memory.SNAPSHOT_FIELDS).get("target"))
        return f"Heap summary of {found['worker']}: {found['objects']} objects."

    def trace_start(self, monitor):
        fields = body.fields(**memory.TRACE_FIELDS)
        mem = monitor.memory_profiler
        found = mem.start(fields.get("target"), mem.parse_max(fields.get("max_duration_s")))
        return f"tracemalloc started on {found['worker']} (stops by itself after {found['max_duration_s']} s)."

    def trace_stop(self, monitor):
        body.fields()
        found = monitor.memory_profiler.stop()
        return f"tracemalloc on {found['worker']}: {found['status']}, {len(found['top'])} sites."
