"""The collection side of continuous profiling: a thread that samples the requests running in this worker.

``monitor.requests.running`` maps each thread that serves a host-app request to the request's
rule label; the timing point (``web/hooks.py``) sets an entry before the view runs and deletes
it after (its register of the requests in flight: the sampler adds nothing per request). The
sampler thread wakes ``hz`` times a second. While no request runs it goes back to sleep: idle threads, the flusher and
the monitor's other threads are never in the map. Otherwise it reads ``sys._current_frames()``
once and, for each request thread, folds its stack: the frames below the timing point, root
first, each named ``file:function`` (``file:function:line`` with ``lines``), the file relative
to the ``sys.path`` entry that holds it. The frames of the on-demand profiler's probe are left
out (its wrapper would split one request's stacks in two while a session runs).

Samples are counted per (rule label, stack) in the current minute. Past ``max_stacks``
distinct stacks in a minute, new stacks count as the label's ``(other)``. The flusher's
shipper takes each minute once it ended (``take``).

A sample says where a request's thread was, running or waiting: a share is a share of the
requests' wall-clock time. Native calls (``time.sleep``, a socket read) show as the Python
frame that made them.
"""
import os
import sys
import threading
import time

from .codec import OTHER

#: Frames a folded stack keeps, root first; a deeper stack ends with ``(deeper)``.
MAX_DEPTH = 128
#: The longest frame name kept.
MAX_FRAME = 200
DEEPER = "(deeper)"


def frame_name(path, function, line=None):
    """Return a frame's name in folded stacks: no ``;`` (the separator) and no line break."""
    name = f"{path}:{function}" if line is None else f"{path}:{function}:{line}"
    return name.replace(";", ",").replace("\n", " ")[:MAX_FRAME]


class Sampler:
    """This worker's sampling thread and the folded stacks of the current minute."""

    def __init__(self, threads, hz, lines, max_stacks):
        #: The timing point's map: thread id → rule label of the request it runs.
        self.threads = threads
        self.interval = 1.0 / hz
        self.lines = lines
        self.max_stacks = max_stacks
        #: The code of the timing point's wrapper: a stack starts below its frame.
        self.root = None
        #: Files whose frames are left out of stacks (the on-demand profiler's probe).
        self.skipped = frozenset()
        self.names = {}  # code object (or (code, line)) → frame name
        self.paths = {}  # file name → the name shown
        self._fresh()
        os.register_at_fork(after_in_child=self._fresh)

    def _fresh(self):
        self.lock = threading.Lock()
        self.minute = None
        self.counts = {}  # (label, stack tuple) → samples, this minute
        self.closed = []  # [(minute start, counts)] ended, not taken yet
        self.samples = 0
        self.thread = None
        self.pid = None
        self.stopping = None

    @property
    def running(self):
        return self.pid == os.getpid() and self.thread is not None and self.thread.is_alive()

    def start(self, root, skipped, stopping):
        """Start the thread in this process (again after a fork) until ``stopping`` is set; idempotent."""
        if self.running:
            return
        self.root = root
        self.skipped = frozenset(skipped)
        self.pid = os.getpid()
        self.stopping = stopping
        self.thread = threading.Thread(target=self._run, name="monitor-sampler", daemon=True)
        self.thread.start()

    def _run(self):
        threads, wait, interval, clock = self.threads, self.stopping.wait, self.interval, time.monotonic
        due = clock()
        while True:
            # On a fixed schedule: the time a sample takes, and the GIL's switch interval it may
            # wait for while a request runs Python code, do not slow the rate down.
            due = max(due + interval, clock())
            if wait(due - clock()):
                return
            if threads:
                self.sample(time.time())

    def sample(self, now):
        """Count one sample of each running request's stack."""
        running = self.threads.copy()  # one C call: safe while requests add and remove themselves
        frames = sys._current_frames()
        minute = int(now // 60) * 60
        with self.lock:
            if minute != self.minute:
                self._close(minute)
            counts = self.counts
            for ident, label in running.items():
                frame = frames.get(ident)
                if frame is None:
                    continue
                stack = self.fold(frame)
                if stack is None:  # the thread left its request meanwhile
                    continue
                key = (label, stack)
                if key in counts:
                    counts[key] += 1
                elif len(counts) < self.max_stacks:
                    counts[key] = 1
                else:
                    other = (label, (OTHER,))
                    counts[other] = counts.get(other, 0) + 1
                self.samples += 1

    def fold(self, frame):
        """Return the stack of ``frame`` below the timing point: frame names, root first (None: the
        timing point is not on it)."""
        names, root, lines = self.names, self.root, self.lines
        stack = []
        while frame is not None:
            code = frame.f_code
            if code is root:
                break
            key = (code, frame.f_lineno) if lines else code
            name = names.get(key)
            if name is None:
                name = names[key] = self._name(code, frame.f_lineno if lines else None)
            if name:
                stack.append(name)
            frame = frame.f_back
        if frame is None and root is not None:
            return None
        stack.reverse()
        if len(stack) > MAX_DEPTH:
            stack[MAX_DEPTH - 1:] = [DEEPER]
        return tuple(stack)

    def _name(self, code, line):
        """Return the name of a frame of ``code``, or ``""`` for a frame left out."""
        if code.co_filename in self.skipped:
            return ""
        path = self.paths.get(code.co_filename)
        if path is None:
            path = self.paths[code.co_filename] = short_path(code.co_filename)
        return frame_name(path, code.co_qualname, line)

    def _close(self, minute):
        """End the current minute (under the lock): its counts wait for the shipper."""
        if self.counts:
            self.closed.append((self.minute, self.counts))
        self.minute, self.counts = minute, {}

    def take(self, now, everything=False):
        """Return ``[(minute start, {(label, stack): samples})]`` of the minutes that ended by ``now``
        (with ``everything``, the current one too: a worker that stops ships it)."""
        with self.lock:
            if self.minute is not None and (everything or self.minute + 60 <= now):
                self._close(None)
            taken, self.closed = self.closed, []
        return taken


def short_path(filename):
    """Return ``filename`` relative to the longest ``sys.path`` entry holding it (``flask/app.py``)."""
    best = ""
    for entry in sys.path:
        entry = os.path.abspath(entry or os.curdir)
        if filename.startswith(entry + os.sep) and len(entry) > len(best):
            best = entry
    return filename[len(best) + 1:] if best else filename
