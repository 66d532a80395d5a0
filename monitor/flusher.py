"""The per-process background flusher: ships in-process aggregates to Redis on a timer.

The request hot path never talks to Redis. Capabilities register *shippers* and *tasks*:
each tick, every shipper adds its writes to one pipeline (sent in one round trip), then
every task runs (reads, command polling, evaluation). A shipper may return a callback
that puts its data back when the pipeline fails, so an outage loses nothing it can hold.
"""
import logging
import os
import threading
import time

import redis

log = logging.getLogger(__name__)


class Flusher:
    """One daemon thread per process that calls shippers and tasks every ``interval`` s."""

    def __init__(self, store, interval):
        self.store = store
        self.interval = interval
        self.shippers = []
        self.tasks = []
        self.pid = None
        self.thread = None
        self.stopping = threading.Event()
        self.last_flush_s = 0.0
        self.last_ok = None
        self.failures = 0

    def add_shipper(self, fn):
        """Call ``fn(pipe, now)`` each tick; it may return an ``undo()`` for a failed send."""
        self.shippers.append(fn)
        return fn

    def add_task(self, fn):
        """Call ``fn(now)`` each tick, after the pipeline was sent."""
        self.tasks.append(fn)
        return fn

    @property
    def running(self):
        return self.pid == os.getpid() and self.thread is not None and self.thread.is_alive()

    def start(self):
        """Start the thread in this process (again after a fork); idempotent."""
        if self.running:
            return
        self.pid = os.getpid()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="monitor-flusher", daemon=True)
        self.thread.start()

    def stop(self, flush=True):
        """Stop the thread, shipping what is buffered once more."""
        if not self.running:
            return
        self.stopping.set()
        self.thread.join(self.interval + 2)
        if flush:
            self.tick()

    def _run(self):
        while not self.stopping.wait(self.interval):
            self.tick()

    def tick(self, now=None):
        """Ship once and run the tasks; never raise."""
        now = time.time() if now is None else now
        started = time.perf_counter()
        undo = []
        try:
            pipe = self.store.redis.pipeline(transaction=False)
            for shipper in self.shippers:
                callback = shipper(pipe, now)
                if callback:
                    undo.append(callback)
            pipe.execute()
            self.last_ok = now
        except redis.RedisError as exc:
            self.failures += 1
            for callback in undo:
                callback()
            log.debug("flush failed: %s", exc)
        except Exception:
            for callback in undo:
                callback()
            log.exception("flush failed")
        for task in self.tasks:
            try:
                task(now)
            except redis.RedisError as exc:
                log.debug("flusher task %s failed: %s", getattr(task, "__name__", task), exc)
            except Exception:
                log.exception("flusher task failed")
        self.last_flush_s = time.perf_counter() - started
