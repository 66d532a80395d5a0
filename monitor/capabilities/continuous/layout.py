"""The Redis layout of the continuous profiles: per endpoint, a list of records per minute and per hour.

Every key is under ``key("c", ...)`` and has a TTL:

- ``c:<endpoint id>:60:<minute start>``: a list of records (``codec``), the folded stacks the
  fleet sampled at that endpoint in that minute. Each worker appends its part once, after
  the minute ended (``ship``). A grace later the list is rolled up by the metrics' compactor
  (``metrics/compact.py``): merged into one record marked rolled, and what it had not rolled
  up yet appended, as one record, to the hour's list. Kept a day.
- ``c:<endpoint id>:3600:<hour start>``: one record per minute rolled up into it, merged into
  one record after the hour ended (and at every 32nd record). Kept 7 days.
- ``c:endpoints``: zset of the endpoint rule labels by the start of the last minute sampled.
- ``c:sweep:<minute start>``: which worker looks for lists left unrolled, that minute (``ship``).
- ``lock:c:...``: the lock of a merge (``metrics/compact.py``).

The endpoint id is a digest of the rule label, which may hold any character. These functions
are the ``layout`` the compactor asks for (its ``kind`` is the endpoint id here).
"""
import hashlib

DAY = 86400
#: Bucket seconds → seconds a bucket is kept once it ended.
TIERS = {60: DAY, 3600: 7 * DAY}
MINUTE, HOUR = 60, 3600
#: Data is written to a bucket only if its key outlives the bucket's roll-up by this much.
ROLL_UP_S = 60


def endpoint_id(label):
    """Return the short id of an endpoint rule label, as it stands in key names."""
    return hashlib.blake2b(label.encode(), digest_size=8).hexdigest()


def name(store, kind, tier, start):
    """Return the list key of a bucket (``kind``: the endpoint id)."""
    return store.key("c", kind, tier, start)


def parse(key):
    """Return ``(endpoint id, tier, start)`` of a bucket's list key."""
    kind, tier, start = key.rsplit(":", 3)[1:]
    return kind, int(tier), int(start)


def index(store):
    """Return the key of the zset of endpoint labels."""
    return store.key("c", "endpoints")


def coarser(kind, tier):
    """Return the tier above ``tier`` (the hour above the minute), or None."""
    return HOUR if tier == MINUTE else None


def expires(kind, tier, start):
    """Return when a bucket's key expires (a Unix time: every writer sets the same)."""
    return start + tier + TIERS[tier]


def kept_tier(kind, tier, start, until):
    """Return ``tier`` if its bucket holding ``start`` is kept past ``until``, else None."""
    return tier if tier is not None and expires(kind, tier, start // tier * tier) > until else None


def compressed(kind, tier):
    """Tell whether a tier's records are compressed: always (``codec.pack``)."""
    return True


def settle(interval):
    """Return how long after an hour ended minutes may still be rolled up into it, at this flush interval."""
    return 2 * MINUTE + 3 * interval + 5
