"""The per-process background flusher: ships in-process aggregates to Redis on a timer.

The request hot path never talks to Redis. Capabilities register *shippers* and *tasks*:
each tick, every shipper adds its writes to one batch (sent in one round trip), then
every task runs (reads, command polling, evaluation). A shipper may return a callback
that puts its data back when the batch was not sent, so an outage loses nothing it can hold.

Each batch is applied exactly once. A send that fails may still land: a hung Redis runs what
sat in its socket buffer when it resumes, and redis-py retries a timed-out call by itself. So
the batch goes to Redis as one Lua script (``APPLY_ONCE``) carrying this process's sequence
number, which Redis applies only if the process's ack key holds a lower one; a batch whose
send failed is kept and sent again, unchanged, before anything newer.

On a Redis Cluster the script declares only the ack key, yet writes others: Redis accepts
that because every key of a fleet shares the ack key's hash tag (``store.key``), so they all
live in the one slot the script was routed to.

A shipper that wants the answers of its commands (a list's length after RPUSH, say) has a
``landed(commands, replies)`` method: it is called with them once its batch was applied.
"""
import logging
import os
import secrets
import threading
import time

import redis

log = logging.getLogger(__name__)

#: Never connected: its pipelines only collect each tick's commands, the same way for a single
#: Redis, a Sentinel set or a cluster (whose pipelines keep commands elsewhere).
COLLECTOR = redis.Redis()
#: Seconds a process's ack key outlives its last flush.
ACK_TTL_S = 3600
#: KEYS[1]: the process's ack key; ARGV: sequence number, ack TTL, then for each command its
#: argument count and its arguments. Runs the batch unless a batch with this sequence number
#: (or a later one) was applied already (answer 0); a failing command does not stop the
#: others. Answers the commands' replies, in order.
APPLY_ONCE = """
local seq = tonumber(ARGV[1])
if seq <= tonumber(redis.call('GET', KEYS[1]) or '0') then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local replies = {}
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  replies[#replies + 1] = redis.pcall(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return replies
"""


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
        #: CPU seconds of the threads that ran the ticks (time.thread_time): the monitor's background cost.
        self.cpu_s = 0.0
        self.failures = 0
        self.apply_once = store.redis.register_script(APPLY_ONCE)
        self._new_sequence()

    def _new_sequence(self):
        """Give this process its own ack key and sequence (again after a fork)."""
        self.ack_key = self.store.key("flush", secrets.token_hex(8))
        self.seq = 0
        self.unsent = None

    def add_shipper(self, fn):
        """Call ``fn(pipe, now)`` each tick; it may return an ``undo()`` for a failed send.

        ``fn.landed(commands, replies)``, if defined, gets the commands it added and their replies
        once they were applied.
        """
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
        if self.pid != os.getpid():
            self.cpu_s = 0.0  # a forked child counts its own
        self.pid = os.getpid()
        self._new_sequence()
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
        started, cpu = time.perf_counter(), time.thread_time()
        undo = []
        try:
            pipe = COLLECTOR.pipeline(transaction=False)
            spans = []
            for shipper in self.shippers:
                first = len(pipe.command_stack)
                callback = shipper(pipe, now)
                if callback:
                    undo.append(callback)
                if hasattr(shipper, "landed") and len(pipe.command_stack) > first:
                    spans.append((shipper, first, [command for command, _ in pipe.command_stack[first:]]))
            if self.unsent is not None:
                self._send(self.unsent)  # still down: this tick's data is put back below
            if pipe.command_stack:
                self.seq += 1
                args = [self.seq, ACK_TTL_S]
                for command, _ in pipe.command_stack:
                    args += [len(command), *command]
                self.unsent = (args, spans)
                undo = []  # from here the batch is kept whole until it lands
                self._send(self.unsent)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.failures += 1
            for callback in undo:
                callback()
            log.debug("flush failed: %s", exc)
        except Exception:  # a bug, or a batch Redis refuses: dropped, not retried forever
            self.failures += 1
            self.unsent = None
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
        self.cpu_s += time.thread_time() - cpu

    def _send(self, batch):
        args, spans = batch
        replies = self.apply_once(keys=[self.ack_key], args=args)
        self.unsent = None
        if replies:  # 0 when an earlier send of this batch was applied and only its answer lost
            for shipper, first, commands in spans:
                shipper.landed(commands, replies[first:first + len(commands)])
