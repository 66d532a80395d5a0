"""Memory profiling of one worker: a guppy3 heap summary by type, and tracemalloc start/stop.

The answering worker serves its own requests; another worker (``pid:P`` on this host, or
``worker:HOST:PID`` anywhere) gets a command through the store and answers on its next
flusher tick. tracemalloc slows a worker several-fold, so one runs at a time in the fleet
(``lock``, redis-py's Lock whose token is the running trace as JSON) and the traced worker
stops it by itself after its maximum duration. Keys, under ``key("prof", "mem", ...)``:
``lock`` (the running trace as JSON), ``snaps`` and ``traces`` (recent results, newest
first, capped, with a TTL).
"""
import json
import linecache
import os
import secrets
import threading
import time
import tracemalloc

from guppy import hpy

from ...core import audit
from ...core.commands import worker_target
from ...core.errors import Refused
from ...core.store import release
from ...web import body
from ..cluster import registry
from .sessions import parse_seconds

#: Rows of a heap summary and of a tracemalloc diff.
TOP_TYPES = 30
TOP_SITES = 25
#: Results kept per kind (heap summaries, tracemalloc diffs).
KEEP = 5
#: How long the trace lock outlives the trace's maximum duration.
LOCK_GRACE_S = 30
#: How long a command to another worker may take to come back.
COMMAND_TIMEOUT_S = 15
#: The bodies of a heap summary and of a trace's start, from the API or the panel.
SNAPSHOT_FIELDS = {"target": body.text()}
TRACE_FIELDS = {"target": body.text(), "max_duration_s": body.whole(-2**31, 2**31)}
#: Allocations made by the tracing machinery itself are left out of the diff.
_OWN_FILES = (tracemalloc.__file__, linecache.__file__, __file__)


def heap_summary(limit=TOP_TYPES):
    """Return this process's heap by type (guppy3): totals and the largest types."""
    started = time.perf_counter()
    heap = hpy().heap()
    rows = [{"type": row.name, "count": row.count, "bytes": row.size}
            for _, row in zip(range(limit), heap.bytype.stat.get_rows())]
    return {"total_bytes": heap.size, "objects": heap.count, "by_type": rows,
            "took_ms": round((time.perf_counter() - started) * 1000, 1)}


def _top_sites(before, after, limit=TOP_SITES):
    """Return the allocation sites that grew most between two tracemalloc snapshots."""
    own = [tracemalloc.Filter(False, path) for path in _OWN_FILES]
    diff = after.filter_traces(own).compare_to(before.filter_traces(own), "lineno")
    grown = [stat for stat in diff if stat.size_diff > 0][:limit]
    return [{"file": stat.traceback[0].filename, "line": stat.traceback[0].lineno,
             "size_diff_bytes": stat.size_diff, "count_diff": stat.count_diff} for stat in grown]


class MemoryProfiler:
    """This worker's heap summaries and tracemalloc session, and their commands."""

    def __init__(self, monitor):
        self.store = monitor.store
        self.process = monitor.process
        self.commands = monitor.commands
        self.ttl = monitor.config["MONITOR_PROFILE_TTL"]
        self.max_s = monitor.config["MONITOR_TRACEMALLOC_MAX_S"]
        self.trace = None  # {"id", "baseline", "deadline", "started_at"} while this worker traces
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self):
        self.trace = None
        self._lock = threading.Lock()

    def key(self, *parts):
        return self.store.key("prof", "mem", *parts)

    # Worker side (command handlers and the flusher task)

    def _fleet_lock(self, token, max_s=0):
        return self.store.lock("prof", "mem", "lock", timeout=max_s + LOCK_GRACE_S, token=token)

    def trace_start(self, session_id, max_s, lock_token):
        """Start tracemalloc here; the baseline snapshot is taken at once."""
        with self._lock:
            if self.trace is not None or tracemalloc.is_tracing():
                raise Refused("tracemalloc already runs in this worker", 409)
            tracemalloc.start()
            now = time.time()
            self.trace = {"id": session_id, "baseline": tracemalloc.take_snapshot(),
                          "started_at": now, "deadline": now + max_s, "lock_token": lock_token}
        return {"worker": self.process.id}

    def trace_stop(self, session_id=None, reason="stopped"):
        """Stop tracemalloc here; store and return the top allocation sites since start."""
        with self._lock:
            trace = self.trace
            if trace is None or (session_id and trace["id"] != session_id):
                raise Refused("no such tracemalloc session in this worker", 409)
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            self.trace = None
        now = time.time()
        result = {"session_id": trace["id"], "status": "done", "worker": self.process.id,
                  "started_at": trace["started_at"], "stopped_at": now, "reason": reason,
                  "top": _top_sites(trace["baseline"], after)}
        self._keep("traces", result)
        release(self._fleet_lock(trace["lock_token"]))
        return result

    def tick(self, now):
        """Stop this worker's trace by itself once its maximum duration has passed."""
        trace = self.trace
        if trace is not None and now >= trace["deadline"]:
            self.trace_stop(trace["id"], reason="max duration")
            audit.record(self.store, "profiler.memory.stop", "ok", user="system",
                         session_id=trace["id"], reason="max duration")

    def _keep(self, kind, result):
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.lpush(self.key(kind), json.dumps(result))
        pipe.ltrim(self.key(kind), 0, KEEP - 1)
        pipe.expire(self.key(kind), self.ttl)
        pipe.execute()

    def recent(self, kind):
        """Return the kept heap summaries (``snaps``) or tracemalloc diffs (``traces``), newest first."""
        return [json.loads(item) for item in self.store.redis.lrange(self.key(kind), 0, KEEP - 1)]

    # The actions, for the API and the panel

    def parse_max(self, raw):
        """Return a trace's maximum duration (None: the setting), or refuse."""
        return parse_seconds(raw, "max_duration_s", 1, self.max_s, None)

    def resolve(self, raw):
        """Return the worker id a target names (default: this worker), or refuse."""
        text = (raw or "").strip() if isinstance(raw, str) or raw is None else None
        if text in ("", "self"):
            return self.process.id
        kind, _, rest = (text or "").partition(":")
        if kind == "pid" and rest.isdigit():
            return f"{self.process.host}:{int(rest)}"
        host, _, pid = rest.rpartition(":")
        if kind == "worker" and host and pid.isdigit():
            return f"{host}:{int(pid)}"
        raise Refused('target must be "pid:NUMBER" (this host) or "worker:HOST:PID"; none: this worker')

    def _run(self, worker, name, **args):
        """Run a handler here when ``worker`` is this process, else through a command."""
        if worker == self.process.id:
            return self.commands.handlers[name](**args)
        if not any(found["id"] == worker and found["status"] == "alive" for found in registry.workers(self.store)):
            raise Refused(f"no live worker {worker} in the fleet", 404)
        host, pid = worker.rsplit(":", 1)
        command_id = self.commands.send(worker_target(host, int(pid)), name, **args)
        answer = self.commands.wait([command_id], COMMAND_TIMEOUT_S).get(command_id)
        if answer is None:
            raise Refused(f"worker {worker} did not answer within {COMMAND_TIMEOUT_S} s", 404)
        if not answer["ok"]:
            raise Refused(answer["error"], answer["status"])
        return answer["result"]

    def snapshot(self, target=None):
        """Take a heap summary of the target worker, keep it and return it."""
        worker = self.resolve(target)
        result = {"snapshot_id": secrets.token_hex(6), "worker": worker, "taken_at": time.time(),
                  **self._run(worker, "profiler.heap")}
        self._keep("snaps", result)
        audit.record(self.store, "profiler.memory.snapshot", "ok", snapshot_id=result["snapshot_id"],
                     worker=worker)
        return result

    def running(self):
        """Return the running trace ``{"session_id", "worker", "started_at", "max_duration_s"}``, or None."""
        raw = self.store.redis.get(self.key("lock"))
        return json.loads(raw) if raw else None

    def start(self, target=None, max_s=None):
        """Start tracemalloc on the target worker (refused while one runs anywhere)."""
        worker = self.resolve(target)
        max_s = self.max_s if max_s is None else max_s
        session_id = secrets.token_hex(6)
        entry = {"session_id": session_id, "worker": worker, "started_at": time.time(), "max_duration_s": max_s}
        token = json.dumps(entry)
        lock = self._fleet_lock(token, max_s)
        if not lock.acquire(blocking=False, token=token):
            audit.record(self.store, "profiler.memory.start", "conflict", worker=worker)
            raise Refused("a tracemalloc session runs already; stop it first", 409)
        try:
            self._run(worker, "profiler.trace_start", session_id=session_id, max_s=max_s, lock_token=token)
        except Exception:
            release(lock)
            audit.record(self.store, "profiler.memory.start", "failed", worker=worker)
            raise
        audit.record(self.store, "profiler.memory.start", "ok", session_id=session_id, worker=worker,
                     max_duration_s=max_s)
        return {**entry, "status": "running"}

    def stop(self):
        """Stop the running trace; return the top allocation sites since its start."""
        token = self.store.redis.get(self.key("lock"))
        entry = json.loads(token) if token else None
        if entry is None:
            audit.record(self.store, "profiler.memory.stop", "conflict")
            raise Refused("no tracemalloc session is running", 409)
        try:
            result = self._run(entry["worker"], "profiler.trace_stop", session_id=entry["session_id"])
        except Refused as exc:
            # The traced worker is gone (or restarted): its trace died with it.
            release(self._fleet_lock(token))
            result = {**entry, "status": "lost", "top": [], "reason": str(exc)}
            self._keep("traces", result)
        audit.record(self.store, "profiler.memory.stop", result["status"], session_id=entry["session_id"],
                     worker=entry["worker"])
        return result
