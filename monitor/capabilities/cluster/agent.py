"""The agent in each gunicorn master: registers its host and carries out cluster operations.

It runs as one daemon thread in the master (started from ``when_ready``). Every tick it
refreshes the host's registry entry, drops the workers its master saw exit (counting the
exits nobody asked for as crashes), and runs the commands queued for its host. It acts on
its workers only through gunicorn's control socket (whose server lives in this very
process) and a reload through HUP to this verified master: never USR2, never TERM or KILL
to a master.
"""
import logging
import os
import signal
import threading
import time
from collections import deque

import gunicorn
import redis
from gunicorn.ctl.client import ControlClient, ControlClientError

from ...core import audit
from ...core.commands import Commands, host_target
from ...core.errors import Refused
from . import operations, registry

log = logging.getLogger(__name__)

#: Seconds between ticks: host entry refresh, exit bookkeeping, command polling.
TICK_S = 0.5
#: Tries to reach the control socket (0.25 s apart) before a step fails.
CTL_ATTEMPTS = 40
#: Seconds to wait for a control-socket answer; the master answers in milliseconds, and a
#: connection caught by a fork (the new worker holds its copy open) only ends at this timeout.
CTL_TIMEOUT_S = 2
#: How long a new worker may take to boot and send its first heartbeat.
BOOT_TIMEOUT_S = 60


class OperationFailed(RuntimeError):
    """An operation step that did not complete."""


class Agent:
    """The master's cluster agent thread."""

    def __init__(self, server, settings, store):
        self.server = server
        self.store = store
        self.host = settings["MONITOR_HOST_NAME"]
        self.grace = settings["MONITOR_WORKER_GRACE"]
        self.stale_after = registry.stale_after(settings)
        self.started_at = time.time()
        self.crashes = 0
        self.exits = deque()
        self.expected = set()
        self.commands = Commands(store)
        self.commands.handler("cluster.operation")(self.accept)
        self.stopping = threading.Event()
        self.thread = None
        self.running = None

    # ------------------------------------------------------------ life cycle

    def start(self):
        """Start the agent thread."""
        self.thread = threading.Thread(target=self._run, name="monitor-agent", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Stop the thread and take the host off the registry."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(TICK_S * 4)
        try:
            self.forget_exits()
            registry.drop_entry(self.store, "h", self.host)
        except redis.RedisError as exc:
            log.warning("cluster: host entry not removed: %s", exc)

    def child_exit(self, worker):
        """Note a worker's exit (called by the master's ``child_exit`` hook; no I/O here)."""
        self.exits.append((worker.pid, not self.server.LISTENERS))

    def _run(self):
        while not self.stopping.wait(TICK_S):
            try:
                self.tick()
            except redis.RedisError as exc:
                log.debug("cluster agent tick failed: %s", exc)
            except Exception:
                log.exception("cluster agent tick failed")

    def tick(self, now=None):
        """Register the host, forget exited workers, run queued commands."""
        self.forget_exits()
        self.register(now)
        self.commands.run_pending(host_target(self.host))

    def forget_exits(self):
        """Drop the workers that exited from the registry; count the unexpected exits.

        The agent thread and an operation's thread both call this: each exit is popped once.
        """
        while True:
            try:
                pid, stopping = self.exits.popleft()
            except IndexError:
                return
            registry.drop_entry(self.store, "w", f"{self.host}:{pid}")
            if pid in self.expected:
                self.expected.discard(pid)
            elif not stopping:
                self.crashes += 1
                log.warning("cluster: worker %s exited unexpectedly (%d crashes)", pid, self.crashes)

    def register(self, now=None):
        """Write this host's registry entry."""
        now = time.time() if now is None else now
        record = {
            "host": self.host, "master_pid": self.server.pid, "workers_target": self.server.num_workers,
            "gunicorn": gunicorn.__version__, "started_at": round(self.started_at, 3),
            "crashes": self.crashes, "ts": now, "stale_after": self.stale_after,
        }
        pipe = self.store.redis.pipeline(transaction=False)
        registry.write_entry(pipe, self.store, "h", self.host, record, now, self.grace)
        pipe.execute()

    # ------------------------------------------------------------ operations

    def accept(self, operation_id):
        """Start carrying out an operation in its own thread (handler of ``cluster.operation``)."""
        if self.running is not None and self.running.is_alive():
            raise Refused("an operation is already running on this host", 409)
        self.running = threading.Thread(target=self._execute, args=(operation_id,),
                                        name="monitor-operation", daemon=True)
        self.running.start()
        return {"accepted": operation_id}

    def _execute(self, operation_id):
        op = operations.operation(self.store, operation_id)
        if op is None or op["status"] in operations.FINAL:
            return
        if op["started_at"] is None:
            op["started_at"] = round(time.time(), 3)
        op.update(status="running", message=f"running on {self.host}")
        step = getattr(self, "_" + op["mode"])
        try:
            self._verify_master()
            operations.save_operation(self.store, op)
            step(op)
        except Exception as exc:
            log.warning("cluster: operation %s (%s) failed on %s: %s", op["id"], op["mode"], self.host, exc)
            op.update(status="failed", error=str(exc), message=f"failed on {self.host}")
        else:
            hosts = op["hosts"]
            following = hosts[hosts.index(self.host) + 1:] if self.host in hosts else []
            if following:
                op["message"] = f"{self.host} done; next {following[0]}"
                operations.save_operation(self.store, op)
                self.commands.send(host_target(following[0]), "cluster.operation", operation_id=op["id"])
                return
            op.update(status="done", message="done")
        op["finished_at"] = round(time.time(), 3)
        try:
            self.register()
            operations.save_operation(self.store, op)
            operations.release_lock(self.store, op["id"])
        except redis.RedisError as exc:  # the lock then lapses by itself after LOCK_TTL_S
            log.warning("cluster: outcome of operation %s not stored: %s", op["id"], exc)
        audit.record(self.store, "cluster.restart", op["status"], user=op["user"], mode=op["mode"],
                     host=op["host"], pid=op["pid"], operation=op["id"], error=op["error"],
                     replaced=[[s["old_pid"], s["new_pid"]] for s in op["steps"]])

    def _verify_master(self):
        # The control socket's server runs in this process; make sure it is this master's.
        if os.getpid() != self.server.pid:
            raise OperationFailed("the agent does not run in its gunicorn master")

    def _step(self, op, action, old_pid=None, new_pid=None):
        op["steps"].append({"host": self.host, "action": action, "old_pid": old_pid, "new_pid": new_pid,
                            "ts": round(time.time(), 3)})
        op["progress"]["done"] += 1
        self.forget_exits()
        self.register()
        operations.save_operation(self.store, op)

    def _add_total(self, op, count):
        op["progress"]["total"] = (op["progress"]["total"] or 0) + count
        operations.save_operation(self.store, op)

    def _ctl(self, command, *args, repeatable=False):
        """Send one control-socket command; a ``repeatable`` one is retried after any error."""
        # The socket's server pauses while the master forks, dropping connections, so
        # connecting is retried; a command that changes something is sent only once.
        for _ in range(CTL_ATTEMPTS):
            client = ControlClient(os.path.abspath(self.server.cfg.control_socket), timeout=CTL_TIMEOUT_S)
            try:
                client.connect()
                return client.send_command(command, [str(a) for a in args])
            except ControlClientError as exc:
                dropped = str(exc).startswith(("Failed to connect", "Communication error"))
                if not dropped or (not repeatable and str(exc).startswith("Communication error")):
                    raise OperationFailed(f"control socket: {command}: {exc}") from None
                time.sleep(0.25)
            finally:
                client.close()
        raise OperationFailed(f"gunicorn's control socket does not answer ({command})")

    def _resize(self, command):
        """Add or remove one worker; a dropped answer is judged by the master's target count."""
        before = self.server.num_workers
        try:
            self._ctl(command, 1)
        except OperationFailed:
            if self.server.num_workers == before:
                raise

    def _gunicorn_pids(self):
        """Return this master's worker pids, oldest first.

        Read from the arbiter's table, as the control socket's ``show workers`` does: polling
        the socket while the master forks costs a full client timeout whenever the new
        worker inherits the open connection.
        """
        workers = list(self.server.WORKERS.items())
        return [pid for pid, worker in sorted(workers, key=lambda item: item[1].age)]

    def _answering(self):
        """Return the pids of this host's workers with a fresh heartbeat."""
        return {w["pid"] for w in registry.workers(self.store) if w["host"] == self.host and w["status"] == "alive"}

    def _wait(self, op, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while not self.stopping.is_set():
            found = predicate()
            if found:
                return found
            if time.monotonic() > deadline:
                raise OperationFailed(f"timed out after {timeout:.0f}s waiting for {what}")
            operations.save_operation(self.store, op)  # keeps the lock alive while waiting
            time.sleep(0.2)
        raise OperationFailed("the master is shutting down")

    def _new_worker(self, op, known):
        """Wait for a worker outside ``known`` that gunicorn runs and that heartbeats; return its pid."""
        def fresh():
            new = (set(self._gunicorn_pids()) - known) & self._answering()
            return min(new) if new else None
        return self._wait(op, fresh, BOOT_TIMEOUT_S, "a new worker's first heartbeat")

    def _gone(self, op, pid):
        self._wait(op, lambda: pid not in self._gunicorn_pids(),
                   self.server.cfg.graceful_timeout + 10, f"worker {pid} to exit")

    def _worker(self, op):
        pid = op["pid"]
        before = set(self._gunicorn_pids())
        if pid not in before:
            raise OperationFailed(f"pid {pid} is not a worker of this master")
        self._add_total(op, 1)
        self.expected.add(pid)
        answer = self._ctl("worker kill", pid, repeatable=True)  # a second SIGTERM changes nothing
        if not answer.get("success") and pid in self._gunicorn_pids():
            self.expected.discard(pid)
            raise OperationFailed(answer.get("error") or f"worker {pid} was not stopped")
        self._gone(op, pid)
        self._step(op, "restart", pid, self._new_worker(op, before))

    def _rolling(self, op):
        """Replace every worker, one at a time: add one, wait for its heartbeat, remove the oldest.

        A worker that dies meanwhile is replaced by gunicorn itself: that step is ``crashed``,
        its new pid the replacement once it heartbeats, and the operation goes on.
        """
        old = self._gunicorn_pids()
        self._add_total(op, len(old))
        known = set(old)
        handled = set()
        while True:
            running = self._gunicorn_pids()
            for pid in [p for p in old if p not in running and p not in handled]:
                handled.add(pid)
                new_pid = self._new_worker(op, known)
                known.add(new_pid)
                self._step(op, "crashed", pid, new_pid)
            if not [p for p in running if p in old and p not in handled]:
                break
            self._resize("worker add")
            try:
                new_pid = self._new_worker(op, known)
            except OperationFailed:
                self.expected.add(self._gunicorn_pids()[0])
                self._resize("worker remove")  # back to the target count
                raise
            known.add(new_pid)
            oldest = self._gunicorn_pids()[0]
            if oldest not in old:
                raise OperationFailed(f"the oldest worker {oldest} is not one to replace")
            self.expected.add(oldest)
            self._resize("worker remove")  # gunicorn stops the oldest worker, gracefully
            self._gone(op, oldest)
            handled.add(oldest)
            self._step(op, "replace", oldest, new_pid)

    def _reload(self, op):
        before = set(self._gunicorn_pids())
        self._add_total(op, 1)
        self.expected.update(before)
        self._verify_master()
        os.kill(self.server.pid, signal.SIGHUP)  # what the socket's reload does, without a lost answer
        self._wait(op, lambda: not before & set(self._gunicorn_pids()),
                   self.server.cfg.graceful_timeout + BOOT_TIMEOUT_S, "the old workers to exit")
        self._wait(op, lambda: len(self._answering() - before) >= self.server.num_workers,
                   BOOT_TIMEOUT_S, "the new workers' heartbeats")
        self._step(op, "reload")

    def _add(self, op):
        before = set(self._gunicorn_pids())
        self._add_total(op, 1)
        self._resize("worker add")
        self._step(op, "add", None, self._new_worker(op, before))

    def _remove(self, op):
        if self.server.num_workers <= 1:
            raise OperationFailed("refusing to remove the last worker")
        self._add_total(op, 1)
        oldest = self._gunicorn_pids()[0]
        self.expected.add(oldest)
        self._resize("worker remove")
        self._gone(op, oldest)
        self._step(op, "remove", oldest, None)
