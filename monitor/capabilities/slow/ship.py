"""The write side: each worker's flusher shipper of its slow requests (the layout is in ``layout``)."""
import json

from ...core import buckets
from . import layout
from .collect import KEEP


class Shipper:
    """Each tick, merge the slow requests kept since the last one into the fleet's buckets."""

    def __init__(self, monitor, slow):
        self.monitor = monitor
        self.slow = slow

    def __call__(self, pipe, now):
        tops, counts = self.slow.take()
        if not counts:
            return None
        store, process = self.monitor.store, self.monitor.process
        where = {"host": process.host, "pid": process.pid, "release": process.release}
        for (minute, rule), items in tops.items():
            members = {json.dumps({**entry, **where}, separators=(",", ":")): ns // 1000 for ns, _, entry in items}
            for size in buckets.TIERS:
                begin = buckets.start(minute, size)
                for key in (layout.top(store, size, begin), layout.top(store, size, begin, rule)):
                    pipe.zadd(key, members)
                    pipe.zremrangebyrank(key, 0, -KEEP - 1)
                    pipe.expireat(key, buckets.expires(size, begin))
        for (minute, endpoint), n in counts.items():
            for size in buckets.TIERS:
                begin = buckets.start(minute, size)
                pipe.hincrby(layout.counts(store, size, begin), endpoint, n)
                pipe.expireat(layout.counts(store, size, begin), buckets.expires(size, begin))

        def undo():
            self.slow.put_back(tops, counts)
        return undo
