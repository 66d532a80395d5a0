"""``MonitorState``: everything the monitor keeps for one app, in ``app.extensions["monitor"]``.

Every attribute is declared here with its type. The capabilities fill in their own
(``recorder``, ``cpu_profiler``, ...) from their ``init_app``; one left out leaves its
attribute None.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from flask import current_app

from .commands import Commands, worker_target
from .flusher import Flusher
from .process import ProcessInfo

if TYPE_CHECKING:
    from flask_limiter import Limiter

    from ..capabilities.alerts.evaluator import Evaluator
    from ..capabilities.logs.handler import StreamHandler
    from ..capabilities.metrics.collect import Recorder
    from ..capabilities.outgoing.collect import CallCollector
    from ..capabilities.profiling.cpu import CpuProfiler
    from ..capabilities.profiling.memory import MemoryProfiler
    from ..capabilities.queries.collect import SqlCollector
    from ..web.panel import Panel
    from .cache import AppCache
    from .capability import Capability
    from .store import Store


class Counters:
    """This worker's live request counters, kept by the request hooks, read by heartbeats."""

    __slots__ = ("requests", "in_flight")

    def __init__(self):
        self.requests = 0
        self.in_flight = 0


class MonitorState:
    """The monitor's state for one app."""

    config: dict
    store: Store
    process: ProcessInfo
    flusher: Flusher
    commands: Commands
    counters: Counters
    #: Capabilities by name, in MONITOR_CAPABILITIES order.
    capabilities: dict[str, Capability]
    #: Every capability's panels, in display order.
    panels: dict[str, Panel]
    #: What /health reports under ``monitoring``.
    features: dict[str, bool]
    #: Per-request probes (see ``web/hooks.py``), each ``begin(req)`` and ``end(token, response)``.
    probes: list
    started: bool
    cache: AppCache
    limiter: Limiter | None = None
    recorder: Recorder | None = None
    cpu_profiler: CpuProfiler | None = None
    memory_profiler: MemoryProfiler | None = None
    log_handler: StreamHandler | None = None
    alerts: Evaluator | None = None
    sql: SqlCollector | None = None
    outgoing: CallCollector | None = None

    def __init__(self, config, store, cache, capabilities):
        self.config = config
        self.store = store
        self.cache = cache
        self.capabilities = {found.name: found for found in capabilities}
        self.panels = {}
        self.process = ProcessInfo(config["MONITOR_HOST_NAME"])
        self.flusher = Flusher(store, config["MONITOR_FLUSH_INTERVAL"])
        self.commands = Commands(store)
        self.features = {}
        self.probes = []
        self.counters = Counters()
        self.flusher.add_task(self._run_commands)
        os.register_at_fork(after_in_child=self._forked)
        self.started = False

    def _forked(self):
        self.started = False
        self.counters = Counters()

    def _run_commands(self, now):
        self.commands.run_pending(worker_target(self.process.host, self.process.pid))

    def start_worker(self):
        """Start this process's background work (after a fork, once)."""
        if self.started:
            return
        self.started = True
        self.process.refresh()
        self.flusher.start()


def state(app=None):
    """Return the monitor state of ``app`` (default: the current app)."""
    return (app or current_app).extensions["monitor"]
