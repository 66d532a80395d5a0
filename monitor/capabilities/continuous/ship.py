"""The write side: each worker's flusher shipper of its sampled minutes (the layout is ``layout``'s).

At the first flush after a minute ended, the worker appends one record per endpoint it
sampled in that minute to that endpoint's minute list, in the flusher's exactly-once batch,
and asks its compactor (the metrics' ``Compactor``, with this capability's codec and layout)
to roll the list up a grace later: merged into one record, the new part appended to the
hour's list, which is rolled up in its turn after the hour. A worker that stops ships its
current minute at its last flush.

A roll-up is asked for by the workers that wrote the list. One that all of them left undone
(they stopped within the grace) is found by the sweep: once a minute one worker (the first
to take ``c:sweep:<minute>``) asks for a roll-up of the last few minutes' lists, and of the
last hour's, of every endpoint sampled lately; a list with nothing left to roll up costs a
claim that finds nothing.

While Redis is unreachable a worker keeps its unsent minutes, at most ``MAX_HELD`` of them
(the oldest are dropped first, counted in ``dropped``).
"""
from ..metrics.compact import Compactor
from . import codec, layout

#: Unsent minutes a worker keeps while Redis is unreachable.
MAX_HELD = 30
#: The endpoint index keeps labels sampled within the hour tier's retention.
INDEX_TTL = layout.TIERS[layout.HOUR] + layout.HOUR
#: The sweep looks at the endpoints sampled in this many last seconds, and at these last minutes.
SWEEP_SINCE_S = 900
SWEEP_MINUTES = 5


def by_label(counts):
    """Return ``{label: {folded stack: samples}}`` of a minute's ``{(label, stack): samples}``."""
    out = {}
    for (label, stack), count in counts.items():
        stacks = out.get(label)
        if stacks is None:
            stacks = out[label] = {}
        folded = ";".join(stack)
        stacks[folded] = stacks.get(folded, 0) + count
    return out


class Shipper:
    """Each tick, append the minutes the sampler closed to their endpoints' minute lists."""

    def __init__(self, monitor, sampler):
        self.monitor = monitor
        self.sampler = sampler
        self.held = []  # [(minute start, {label: {folded stack: samples}})], oldest first
        self.dropped = 0
        self.grace = 2 * monitor.flusher.interval + 1
        self.compactor = Compactor(monitor.store, self.grace, codec=codec, layout=layout)
        self.swept = None
        monitor.flusher.add_task(self.sweep)
        monitor.flusher.add_task(self.compactor)

    def __call__(self, pipe, now):
        store = self.monitor.store
        final = self.monitor.flusher.stopping.is_set()
        self.held += [(minute, by_label(counts)) for minute, counts in self.sampler.take(now, everything=final)]
        self._trim(now)
        if not self.held:
            return None
        held, self.held = self.held, []
        latest = {}
        for minute, labels in held:
            for label, stacks in labels.items():
                name = layout.name(store, layout.endpoint_id(label), layout.MINUTE, minute)
                pipe.rpush(name, codec.encode(stacks))
                pipe.expireat(name, layout.expires(None, layout.MINUTE, minute))
                self.compactor.due(name, max(minute + layout.MINUTE, now) + self.grace)
                latest[label] = max(latest.get(label, 0), minute)
        index = layout.index(store)
        pipe.zadd(index, latest, gt=True)
        pipe.zremrangebyscore(index, "-inf", now - INDEX_TTL)
        pipe.expire(index, INDEX_TTL)

        def undo():
            self.held[:0] = held
            self._trim(now)
        return undo

    def _trim(self, now):
        """Drop held minutes past ``MAX_HELD``, and those whose lists would expire before their roll-up."""
        deadline = now + self.grace + layout.ROLL_UP_S
        keep = [(minute, labels) for minute, labels in self.held[-MAX_HELD:]
                if layout.expires(None, layout.MINUTE, minute) > deadline]
        self.dropped += len(self.held) - len(keep)
        self.held = keep

    def landed(self, commands, replies):
        """Ask for a merge of each list this flush brought to a multiple of the compactor's ``EVERY`` records."""
        self.compactor.landed(commands, replies)

    def sweep(self, now):
        """Once a minute, in one worker of the fleet: ask for the roll-ups its writers may have left undone."""
        minute = int(now // 60) * 60
        if minute == self.swept:
            return
        self.swept = minute
        store = self.monitor.store
        if not store.raw.set(store.key("c", "sweep", minute), 1, nx=True, ex=2 * layout.MINUTE):
            return
        hour = minute // layout.HOUR * layout.HOUR - layout.HOUR
        for label in store.redis.zrangebyscore(layout.index(store), now - SWEEP_SINCE_S, "+inf"):
            eid = layout.endpoint_id(label)
            for back in range(1, SWEEP_MINUTES + 1):
                self.compactor.due(layout.name(store, eid, layout.MINUTE, minute - back * layout.MINUTE), now)
            if minute - hour <= layout.HOUR + SWEEP_MINUTES * layout.MINUTE:
                self.compactor.due(layout.name(store, eid, layout.HOUR, hour), now + self.grace)
