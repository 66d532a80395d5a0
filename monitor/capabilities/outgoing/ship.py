"""The write side: the flusher shipper of the outgoing-call tally (layout in ``queries/tally.py``, kind ``o``)."""
from ..queries.tally import Shipper

KIND = "o"


def counters(groups, endpoints, flags, names):
    """Return the lifetime counter increments of a delta: calls, errors and ns per (host, method)."""
    found = {}
    for gid, (count, errors, ns, _) in groups.items():
        host, method, _ = names[gid]
        for counter, n in (("calls", count), ("errors", errors), ("ns", ns)):
            if n:
                found[(counter, host, method)] = found.get((counter, host, method), 0) + n
    return found


def shipper(monitor, collector):
    """Return the flusher shipper of this app's outgoing calls."""
    return Shipper(monitor, collector.tally, KIND, counters)
