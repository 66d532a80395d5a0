"""The hot path's state: this process's requests, appended by the timing point (``web/hooks.py``)."""
import threading
from collections import deque

import numpy as np

from ...web.hooks import METHODS, STATUS_CLASS
from .histogram import INV_LOG, MIN_NS, NBUCKETS, OFFSET

OVERFLOW = "<overflow>"


class Recorder:
    """This process's request aggregates: the hot path appends one tuple, the flusher aggregates.

    A request's only write is ``pending.append((endpoint, method, status, ns))``: one C call,
    atomic under the GIL, so neither a lock nor a dict lookup on the request's path. Each
    flusher tick drains ``pending`` into series ``(endpoint, method, class)`` →
    ``[count, ns, {bucket: n}]`` (:meth:`take`): a batch per tick is far cheaper than the same
    work per request.
    """

    def __init__(self, max_series):
        self.max_series = max_series
        self.pending = deque()
        self.lock = threading.Lock()  # one take() at a time (the flusher, or a test driving it)
        self.known = set()
        #: The timing point's own time, over a sample of requests (see web/hooks.py).
        self.own_ns = 0
        self.own_n = 0

    def record(self, endpoint, method, status, ns):
        """Count one request of ``endpoint`` (its rule) and ``method`` that answered ``status`` in ``ns``."""
        self.pending.append((endpoint, method, status, ns))

    def take(self):
        """Aggregate what was recorded since the last call: {(endpoint, method, class): [count, ns, {bucket: n}]}."""
        with self.lock:
            pending = self.pending
            popleft = pending.popleft
            groups = {}
            for _ in range(len(pending)):  # what is appended meanwhile waits for the next call
                endpoint, method, status, ns = popleft()
                durations = groups.get((endpoint, method, status))
                if durations is None:
                    durations = groups[(endpoint, method, status)] = []
                durations.append(ns)
            delta = {}
            for (endpoint, method, status), durations in groups.items():
                key = self._admit((endpoint, method if method in METHODS else "OTHER",
                                   STATUS_CLASS[status // 100 % 10]))
                ns = np.array(durations, dtype=np.int64)
                index = np.minimum((np.log(np.maximum(ns, MIN_NS)) * INV_LOG).astype(np.int64) - (OFFSET - 1),
                                   NBUCKETS - 1)
                series = delta.get(key)
                if series is None:
                    series = delta[key] = [0, 0, {}]
                series[0] += len(durations)
                series[1] += int(ns.sum())
                buckets = series[2]
                for idx, n in zip(*(a.tolist() for a in np.unique(index, return_counts=True))):
                    buckets[idx] = buckets.get(idx, 0) + n
        return delta

    def _admit(self, key):
        """Return ``key``, or its overflow label once the cap of distinct series is reached."""
        if key in self.known:
            return key
        if len(self.known) >= self.max_series:
            return (OVERFLOW, key[1], key[2])
        self.known.add(key)
        return key
