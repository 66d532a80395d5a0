"""``MonitorState``: everything the monitor keeps for one app, in ``app.extensions["monitor"]``.

Every attribute is declared here with its type. The capabilities fill in their own
(``recorder``, ``cpu_profiler``, ...) from their ``init_app``; one left out leaves its
attribute None.
"""
from __future__ import annotations

import os
from collections import deque
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


class Requests:
    """This worker's host-app requests, as the timing point (``web/hooks.py``) leaves them.

    - ``running``: thread id → rule label of the request that thread runs. Its length is the
      requests in flight; the continuous profiler samples the threads in it.
    - ``ended``: a tuple ``(label, method, status, ns)`` per ended request, appended by the
      timing point (one C call, atomic under the GIL) and drained by :meth:`take` each flush:
      by the metrics capability's recorder, or by the core when that capability is left out.
    - ``own_ns``, ``own_n``: the timing point's own time, summed over a sample of requests.

    A request pays a dict set, a dict delete and an append: no counter is incremented, the
    totals are lengths. The timing point holds ``running`` and ``ended``, so a fork clears
    them in place.
    """

    def __init__(self):
        self.running = {}
        self.ended = deque()
        self.clear()

    def clear(self):
        self.running.clear()
        self.ended.clear()
        self.taken = self.own_ns = self.own_n = 0

    @property
    def total(self):
        """The host-app requests this process ended."""
        return self.taken + len(self.ended)

    @property
    def in_flight(self):
        return len(self.running)

    def take(self):
        """Return the ended requests not taken yet, oldest first; one caller at a time (what
        is appended meanwhile waits for the next call)."""
        popleft = self.ended.popleft
        taken = [popleft() for _ in range(len(self.ended))]
        self.taken += len(taken)
        return taken


class MonitorState:
    """The monitor's state for one app."""

    config: dict
    store: Store
    process: ProcessInfo
    flusher: Flusher
    commands: Commands
    #: Capabilities by name, in MONITOR_CAPABILITIES order.
    capabilities: dict[str, Capability]
    #: Every capability's panels, in display order.
    panels: dict[str, Panel]
    #: What /health reports under ``monitoring``.
    features: dict[str, bool]
    #: What looks at host-app requests, each plugged into the timing point (``web/hooks.py``):
    #: the on-demand profiler's probe, the exceptions' sinks, the slow-request sink and
    #: threshold. The requests it timed are in ``requests``.
    probe: object | None = None  # profiling.collect.Collector
    exception_sinks: list
    slow: tuple | None = None
    requests: Requests
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
        self.requests = Requests()
        self.on_start = []
        self.flusher.add_task(self._run_commands)
        self.flusher.add_task(self._count_requests)
        os.register_at_fork(after_in_child=self._forked)
        self.started = False

    def _forked(self):
        self.started = False
        self.requests.clear()

    def _run_commands(self, now):
        self.commands.run_pending(worker_target(self.process.host, self.process.pid))

    def _count_requests(self, now):
        if self.recorder is None:  # no capability aggregates the ended requests: count them
            self.requests.take()

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
