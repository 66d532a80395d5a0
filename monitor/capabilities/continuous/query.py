"""The read side: the fleet's folded stacks over a window, from the minute and hour lists of ``ship``.

A window is taken whole minutes: from the minute that holds its start to the end of the minute
that holds its end. Each clock hour it touches is read from one tier only, so a stack is never
counted twice (a rolled minute's stacks are in its hour's list too):

- the hour's list, when the window covers the whole hour and the hour has settled (every
  minute of it rolled up: ``layout.settle`` after it ended), or when the part of the hour the
  window covers is older than the minutes' day;
- else the minute lists of that part (all their records: rolled or not, each minute's own).

The span that was read (``from``, ``until``) may so be wider than the window asked for, by
at most an hour at each end for a window older than a day.
"""
from . import codec, layout
from .layout import HOUR, MINUTE

#: A bucket counts as kept until this long before its TTL runs out (clocks of hosts differ).
MARGIN_S = 30
#: The longest window read, and the default.
MAX_WINDOW_S = 7 * layout.DAY
DEFAULT_WINDOW_S = 3600
#: The longest endpoint label a query names.
MAX_ENDPOINT = 1000


def kept(tier, start, now):
    """Tell whether the bucket of ``tier`` starting at ``start`` is still in Redis."""
    return layout.expires(None, tier, start) - MARGIN_S > now


def span(window_s, until):
    """Return the whole minutes ``[lo, hi)`` that hold the window of ``window_s`` s ending at ``until``."""
    lo = int(until - window_s) // MINUTE * MINUTE
    hi = -(-int(until) // MINUTE) * MINUTE
    return lo, max(hi, lo + MINUTE)


def plan(lo, hi, now, settle_s):
    """Return the ``(tier, start)`` buckets that cover the minutes ``[lo, hi)``, each hour from one tier."""
    out = []
    for hour in range(lo // HOUR * HOUR, hi, HOUR):
        first, last = max(hour, lo), min(hour + HOUR, hi)
        minutes = [m for m in range(first, last, MINUTE) if kept(MINUTE, m, now)]
        whole = first == hour and last == hour + HOUR
        settled = hour + HOUR <= now - settle_s
        if kept(HOUR, hour, now) and settled and (whole or len(minutes) < (last - first) // MINUTE):
            out.append((HOUR, hour))
        else:
            out += [(MINUTE, m) for m in minutes]
    return out


def endpoints(store, since):
    """Return the endpoint labels sampled since ``since`` (a Unix time), by name."""
    return sorted(store.redis.zrangebyscore(layout.index(store), since, "+inf"))


class Profile:
    """The fleet's samples over a span: folded stacks (each starting with its endpoint's label)
    and their counts, the samples per endpoint, and the span and tiers read."""

    def __init__(self, stacks, by_endpoint, buckets, lo, hi):
        self.stacks = stacks
        self.by_endpoint = by_endpoint
        self.samples = sum(by_endpoint.values())
        self.lo = min((start for _, start in buckets), default=lo)
        self.hi = max((start + tier for tier, start in buckets), default=hi)
        self.resolution_s = max((tier for tier, _ in buckets), default=MINUTE)


def read(store, labels, lo, hi, now, settle_s):
    """Return the Profile of the endpoints ``labels`` over the minutes ``[lo, hi)``."""
    buckets = plan(lo, hi, now, settle_s)
    pipe = store.raw.pipeline(transaction=False)
    for label in labels:
        eid = layout.endpoint_id(label)
        for tier, start in buckets:
            pipe.lrange(layout.name(store, eid, tier, start), 0, -1)
    replies = iter(pipe.execute())
    stacks, by_endpoint = {}, {}
    for label in labels:
        mine = {}
        for _ in buckets:
            for blob in next(replies):
                codec.add(mine, codec.decode(blob))
        total = sum(mine.values())
        if not total:
            continue
        by_endpoint[label] = total
        head = label + ";"
        for stack, count in mine.items():
            stacks[head + stack if stack else label] = count
    return Profile(stacks, by_endpoint, buckets, lo, hi)


def profile(store, window_s, until, endpoint, now, settle_s):
    """Return the Profile of one endpoint (or of every one: ``endpoint`` None) over a window."""
    lo, hi = span(window_s, until)
    labels = [endpoint] if endpoint is not None else endpoints(store, lo)
    return read(store, labels, lo, hi, now, settle_s)

