"""Each process's slow requests since its last flush: per minute and endpoint, a count and the slowest few.

The timing point calls ``sink`` only for a request that took at least the smallest threshold
of any endpoint (``monitor.slow``); the sink then holds it against its own endpoint's
threshold. Per (minute, endpoint rule) this process keeps the number of slow requests by
method and the ``KEEP`` slowest (a heap), so memory stays fixed whatever the traffic; the
flusher merges them into the fleet's per-minute and per-hour top lists (``ship``).
"""
import heapq
import itertools
import threading
import time

from ...web.request_id import request_id

#: Slow requests kept per minute (or hour) and endpoint, and per minute (or hour) for all endpoints.
KEEP = 20


class SlowRequests:
    """One app's slow requests since the last flush, and the thresholds they are held against."""

    def __init__(self, default_ms, per_endpoint_ms, extension):
        self.default_ns = default_ms * 1_000_000
        self.thresholds = {rule: ms * 1_000_000 for rule, ms in per_endpoint_ms.items()}
        #: The timing point calls the sink for requests at least this slow.
        self.least_ns = min([self.default_ns, *self.thresholds.values()])
        self.extension = extension  # the Monitor: the host's request_user callback
        self.lock = threading.Lock()
        self.order = itertools.count()
        self.tops = {}    # (minute, rule) → min-heap of (ns, order, entry)
        self.counts = {}  # (minute, "METHOD rule") → slow requests

    def threshold_ns(self, rule):
        """Return the threshold of an endpoint rule, in ns."""
        return self.thresholds.get(rule, self.default_ns)

    def _user(self):
        callback = self.extension.request_user_callback
        if callback is None:
            return None
        try:
            name = callback()
        except Exception:  # the host's callback failing must not fail its request
            return None
        return None if name is None else str(name)[:200]

    def sink(self, req, label, status, ns):
        """Keep a request that took ``ns`` if its endpoint's threshold says it is slow (the timing point's sink)."""
        if ns < self.thresholds.get(label, self.default_ns):
            return
        now = time.time()
        entry = {"time": round(now, 3), "endpoint": label, "method": req.method, "status": status,
                 "duration_ms": round(ns / 1e6, 3), "request_id": request_id(), "user": self._user()}
        minute = int(now // 60) * 60
        endpoint = f"{req.method} {label}"
        with self.lock:
            self.counts[(minute, endpoint)] = self.counts.get((minute, endpoint), 0) + 1
            top = self.tops.get((minute, label))
            if top is None:
                top = self.tops[(minute, label)] = []
            item = (ns, next(self.order), entry)
            if len(top) < KEEP:
                heapq.heappush(top, item)
            elif ns > top[0][0]:
                heapq.heapreplace(top, item)

    def take(self):
        """Swap out what was kept since the last call: ``(tops, counts)``."""
        with self.lock:
            taken = (self.tops, self.counts)
            self.tops, self.counts = {}, {}
        return taken

    def put_back(self, tops, counts):
        """Keep again what ``take`` returned (its flush was not sent)."""
        with self.lock:
            for key, n in counts.items():
                self.counts[key] = self.counts.get(key, 0) + n
            for key, items in tops.items():
                self.tops[key] = heapq.nlargest(KEEP, self.tops.get(key, []) + items)
                heapq.heapify(self.tops[key])
