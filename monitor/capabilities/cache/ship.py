"""The write side of the cache's hit rate: each process's hit and miss counts, one hash per minute."""

#: Width of one stats bucket, in seconds (the hit-rate window is rounded to it).
BUCKET_S = 60
#: Longest window GET cache/stats accepts, in seconds; buckets live this long.
MAX_WINDOW_S = 86400


def stats_key(store, now):
    """Return the hit/miss hash of the minute ``now`` falls in."""
    return store.key("cachestats", int(now // BUCKET_S) * BUCKET_S)


class Shipper:
    """The flusher shipper of this process's hit and miss counts."""

    def __init__(self, store, counter):
        self.store = store
        self.counter = counter

    def __call__(self, pipe, now):
        counts = self.counter.take()
        if not counts:
            return None
        name = stats_key(self.store, now)
        for ns, (hits, misses) in counts.items():
            if hits:
                pipe.hincrby(name, f"h:{ns}", hits)
            if misses:
                pipe.hincrby(name, f"m:{ns}", misses)
        pipe.expire(name, MAX_WINDOW_S + BUCKET_S)
        return lambda: self.counter.put_back(counts)
