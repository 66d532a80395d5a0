"""The write side: the flusher shipper of the SQL tally (layout in ``tally.py``, kind ``q``)."""
from .tally import Shipper

KIND = "q"


def counters(groups, endpoints, flags, names):
    """Return the lifetime counter increments of a delta: queries, errors, ns and N+1 requests per endpoint."""
    found = {}
    for (rule, method), (count, errors, ns) in endpoints.items():
        found[("queries", rule, method)] = count
        found[("errors", rule, method)] = errors
        found[("ns", rule, method)] = ns
    for (_, (rule, method)), (requests, _, _) in flags.items():
        key = ("nplusone", rule, method)
        found[key] = found.get(key, 0) + requests
    return {key: n for key, n in found.items() if n}


def shipper(monitor, collector):
    """Return the flusher shipper of this app's SQL."""
    return Shipper(monitor, collector.tally, KIND, counters)
