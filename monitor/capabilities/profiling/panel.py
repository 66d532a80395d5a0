"""The profiling panel: CPU sessions, heap summaries and tracemalloc diffs (admins act and read).

With the continuous capability, the panel also shows its flame graph view, whose query
arguments are the panel's (``params``, set by ``bind``); the panel's own poll renders that
view as a placeholder, which the page keeps in place of the graph it shows
(``continuous/panel.py``).
"""
import re

from flask import request, session
from flask_login import current_user

from ...core.errors import Refused
from ...web import body
from ...web.format import fmt_count
from ...web.panel import Panel
from . import memory, sessions
from .api import with_links

#: Results a viewer dismissed, kept in their session (the newest few).
DISMISSED = "monitor_dismissed"
DISMISSED_KEEP = 20
RESULT_ID = re.compile(r"^[0-9a-f]{1,32}$")


class ProfilingPanel(Panel):
    name = "profiling"
    title = "Profiling"
    poll = "10s"
    actions = {
        "cpu_start": ("admin", "cpu_start"), "cpu_stop": ("admin", "cpu_stop"),
        "heap": ("admin", "heap"), "trace_start": ("admin", "trace_start"), "trace_stop": ("admin", "trace_stop"),
        "dismiss": ("admin", "dismiss"),
    }

    def bind(self, monitor):
        """Read the query arguments of the continuous profiler's view, when that capability runs."""
        continuous = monitor.capabilities.get("continuous")
        self.params = continuous.params if continuous is not None else ()

    def context(self, monitor, args):
        if not current_user.can("admin"):
            return {"admin": False, "poll": ""}  # one sentence that cannot change: no polling
        cpu_profiler, mem = monitor.cpu_profiler, monitor.memory_profiler
        dismissed = session.get(DISMISSED, [])
        heaps = [h for h in mem.recent("snaps") if h["snapshot_id"] not in dismissed]
        traces = [t for t in mem.recent("traces") if t["session_id"] not in dismissed]
        running, tracing = cpu_profiler.running(), mem.running()
        continuous = monitor.capabilities.get("continuous")
        polled = request.headers.get("HX-Trigger") == f"panel-{self.name}"
        return {
            "admin": True, "running": running, "poll": "2s" if running or tracing else self.poll,
            "sessions": [with_links(s) for s in cpu_profiler.sessions()],
            "heap": heaps[0] if heaps else None, "trace": traces[0] if traces else None,
            "tracing": tracing, "duration_default": sessions.DURATION_DEFAULT,
            "duration_max": sessions.DURATION_MAX, "trace_max": mem.max_s,
            "continuous": continuous.view(monitor, args, placeholder=polled) if continuous is not None else None,
        }

    def cpu_start(self, monitor):
        fields = body.fields(**sessions.START_FIELDS)
        duration = sessions.parse_duration(fields.get("duration_s"))
        target = sessions.parse_target(fields.get("target"))
        sid = monitor.cpu_profiler.start(duration, target, current_user.name)
        return f"CPU session {sid} started on {target} for {duration} s."

    def cpu_stop(self, monitor):
        summary = monitor.cpu_profiler.stop(body.fields(**sessions.STOP_FIELDS).get("session_id"))
        return f"CPU session {summary['session_id']}: {summary['status']}, {fmt_count(summary['requests'], 'request')}."

    def heap(self, monitor):
        found = monitor.memory_profiler.snapshot(body.fields(**memory.SNAPSHOT_FIELDS).get("target"))
        return f"Heap summary of {found['worker']}: {fmt_count(found['objects'], 'object')}."

    def trace_start(self, monitor):
        fields = body.fields(**memory.TRACE_FIELDS)
        mem = monitor.memory_profiler
        found = mem.start(fields.get("target"), mem.parse_max(fields.get("max_duration_s")))
        return f"tracemalloc started on {found['worker']} (stops by itself after {found['max_duration_s']} s)."

    def trace_stop(self, monitor):
        body.fields()
        found = monitor.memory_profiler.stop()
        return f"tracemalloc on {found['worker']}: {found['status']}, {fmt_count(len(found['top']), 'site')}."

    def dismiss(self, monitor):
        """Hide a heap summary or tracemalloc result from this viewer's panel (kept in their session)."""
        result = body.fields(id=body.text(32)).get("id", "")
        if not RESULT_ID.match(result):
            raise Refused("id names a heap summary or a tracemalloc session")
        session[DISMISSED] = [result, *session.get(DISMISSED, [])][:DISMISSED_KEEP]
        return None
