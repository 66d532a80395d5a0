"""The read side: the fleet's slowest requests over a window (of one endpoint rule, or all), and their counts."""
import json
import time

from ...core import buckets
from . import layout
from .collect import KEEP


def report(store, slow, window_s, rule=None, now=None):
    """Return the GET /api/admin/requests/slow body: the ``KEEP`` slowest requests of the window, slowest
    first, and the slow requests per endpoint; ``slow`` (``collect.SlowRequests``) gives the thresholds."""
    now = time.time() if now is None else now
    size = buckets.tier(window_s)
    starts = buckets.starts(window_s, size, now)
    pipe = store.redis.pipeline(transaction=False)
    for begin in starts:
        pipe.zrevrange(layout.top(store, size, begin, rule), 0, KEEP - 1, withscores=True)
        pipe.hgetall(layout.counts(store, size, begin))
    replies = pipe.execute()
    found = [(us, member) for reply in replies[::2] for member, us in reply]
    found.sort(key=lambda item: (-item[0], item[1]))
    requests = [json.loads(member) for _, member in found[:KEEP]]
    endpoints = []
    for endpoint, n in _totals(replies[1::2]).items():
        method, _, endpoint_rule = endpoint.partition(" ")
        if rule is None or endpoint_rule == rule:
            endpoints.append({"endpoint": endpoint_rule, "method": method, "count": n,
                              "threshold_ms": slow.threshold_ns(endpoint_rule) / 1e6})
    endpoints.sort(key=lambda row: (-row["count"], row["endpoint"], row["method"]))
    return {"requests": requests, "endpoints": endpoints, "count": sum(row["count"] for row in endpoints),
            "threshold_ms": slow.default_ns / 1e6, "thresholds_ms": {r: ns / 1e6 for r, ns in slow.thresholds.items()},
            "window_s": window_s, "resolution_s": size, "generated_at": round(now, 3)}


def _totals(replies):
    """Return ``{"METHOD rule": slow requests}`` summed over buckets' count hashes."""
    totals = {}
    for reply in replies:
        for endpoint, n in reply.items():
            totals[endpoint] = totals.get(endpoint, 0) + int(n)
    return totals


def count(store, window_s, now, method=None, rule=None):
    """Return the slow requests of the window ending at ``now`` (of one endpoint rule, and method, when named)."""
    size = buckets.tier(window_s, max(0.0, time.time() - now))
    pipe = store.redis.pipeline(transaction=False)
    for begin in buckets.starts(window_s, size, now):
        pipe.hgetall(layout.counts(store, size, begin))
    return sum(n for endpoint, n in _totals(pipe.execute()).items()
               if rule in (None, endpoint.partition(" ")[2]) and method in (None, endpoint.partition(" ")[0]))
