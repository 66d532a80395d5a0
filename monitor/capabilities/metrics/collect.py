"""The aggregation of this process's requests, as the timing point leaves them in ``monitor.requests``."""
import threading
from collections import defaultdict

import numpy as np

from ...web.hooks import METHODS, STATUS_CLASS
from .histogram import INV_LOG, MIN_NS, NBUCKETS, OFFSET

OVERFLOW = "<overflow>"


class Recorder:
    """This process's request aggregates: the timing point leaves tuples, the flusher aggregates.

    A request's only write is ``monitor.requests.ended.append((endpoint, method, status, ns))``:
    one C call, atomic under the GIL, so neither a lock nor a dict lookup on the request's path
    (``core/state.py``). Each flusher tick drains them into series ``(endpoint, method, class)``
    → ``[count, ns, {bucket: n}]`` (:meth:`take`): a batch per tick is far cheaper than the
    same work per request.
    """

    def __init__(self, requests, max_series):
        self.requests = requests
        self.max_series = max_series
        self.lock = threading.Lock()  # one take() at a time (the flusher, or a test driving it)
        self.known = set()

    def record(self, endpoint, method, status, ns):
        """Count one request of ``endpoint`` (its rule) and ``method`` that answered ``status`` in ``ns``."""
        self.requests.ended.append((endpoint, method, status, ns))

    def take(self):
        """Aggregate what was recorded since the last call: {(endpoint, method, class): [count, ns, {bucket: n}]}."""
        with self.lock:
            groups = defaultdict(list)
            for endpoint, method, status, ns in self.requests.take():
                groups[endpoint, method, status].append(ns)
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
