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

    from ..web.panel import Panel
    from ..web.urls import Urls
    from .cache import AppCache
    from .capability import Capability
    from .store import Store


class Counters:
    """This worker's live request counters, kept by the timing point, read by heartbeats."""

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
    #: What looks at host-app requests, each plugged into the timing point (``web/hooks.py``):
    #: the on-demand profiler's probe, the exceptions' sinks, the slow-request sink and
    #: threshold, and the running requests' thread → rule label map (the continuous profiler's).
    probe: object | None = None  # profiling.collect.RequestProbe
    exception_sinks: list
    slow: tuple | None = None
    threads: dict | None = None
    started: bool
    #: Called once in each process when it starts serving (the app is complete by then).
    on_start: list
    cache: AppCache
    #: The monitor's URL space in this app: MONITOR_URL_PREFIX and its blueprints.
    urls: Urls
    #: The ``Monitor`` that made this state (its ``role_loader``).
    extension: object  # monitor.extension.Monitor
    #: What signs the monitor's cookie and CSRF tokens when the app has no SECRET_KEY.
    secret_key: str
    limiter: Limiter | None = None
    # What each capability's init_app fills in (None when it is left out). The core imports no
    # capability (nor the extension above it), not even for a type: each is named by its class.
    recorder: object | None = None  # metrics.collect.Recorder
    cpu_profiler: object | None = None  # profiling.sessions.CpuSessions
    #: The continuous profiler's sampler (None when MONITOR_CONTINUOUS_HZ is 0).
    sampler: object | None = None  # continuous.sampler.Sampler
    memory_profiler: object | None = None  # profiling.memory.MemoryProfiler
    log_handler: object | None = None  # logs.handler.StreamHandler
    alerts: object | None = None  # alerts.evaluator.Evaluator
    sql: object | None = None  # queries.collect.SqlCollector
    outgoing: object | None = None  # outgoing.collect.CallCollector
    #: The exceptions capability's groups since the last flush (its sink is in ``exception_sinks``).
    exceptions: object | None = None  # exceptions.collect.Collector
    #: The slow-requests capability's thresholds and top lists (its sink is ``slow``).
    slow_requests: object | None = None  # slow.collect.SlowRequests

    def __init__(self, config, store, cache, capabilities):
        self.config = config
        self.store = store
        self.cache = cache
        self.capabilities = {found.name: found for found in capabilities}
        self.panels = {}
        self.process = ProcessInfo(config["MONITOR_HOST_NAME"], config["MONITOR_RELEASE"])
        self.flusher = Flusher(store, config["MONITOR_FLUSH_INTERVAL"])
        self.commands = Commands(store)
        self.features = {}
        self.exception_sinks = []
        self.counters = Counters()
        self.on_start = []
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
        for callback in self.on_start:
            callback()


def state(app=None):
    """Return the monitor state of ``app`` (default: the current app)."""
    return (app or current_app).extensions["monitor"]
