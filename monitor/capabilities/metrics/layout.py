"""The Redis layout of the metrics: record kinds, their tiers and retention, and bucket names.

Every key is under ``key("m", ...)`` and has a TTL:

- ``m:<kind>:<tier>:<bucket start>`` a list of records (``codec``): what the whole fleet
  recorded in that time bucket. Kinds:

  | kind | rows | histograms | used for |
  |---|---|---|---|
  | ``d`` | (endpoint, method, class) | yes | the endpoint table, totals and percentiles |
  | ``s`` | (class,) | yes | the fleet's chart |
  | ``h`` | (host, class) | yes | a host's totals, percentiles and chart (``host=``) |
  | ``w`` | (host, pid) | counts by class | workers[] and a worker's totals and chart (``pid=``) |

  Workers append their deltas to the finest tier of each kind only. A bucket that closed is
  merged into one record marked *rolled*, and what it had not yet rolled up is appended, as
  one record, to the bucket of the next tier that holds it (``compact``). So a coarse bucket
  holds one record per finer bucket, and the work of keeping every tier follows the buckets,
  not the flushes.
- ``m:t`` list of records, rows (endpoint, method, class), counts only: the lifetime totals
  (the Prometheus counters).
- ``m:r:<release id>`` list of records, rows (endpoint, method, class) with histograms: a
  release's whole run (``releases``).
- ``m:lock:<kind>:<tier>:<start>`` a merge's lock; ``m:sample:<host>:<pid>`` a worker's last
  sample (JSON); ``m:workers`` zset of ``host|pid`` by last sample time.
"""
DAY = 86400
#: Record kinds → {bucket seconds: seconds a bucket is kept once it ended}: each tier is kept
#: just past the longest window that reads it (``query.plan`` and ``query.resolution``).
TIERS = {
    "d": {10: 360, 60: 2 * 3600, 600: 25 * 3600, 3600: 30 * DAY + 3600, 6 * 3600: 8 * DAY, DAY: 31 * DAY,
          7 * DAY: 31 * DAY},
    "s": {1: 600, 10: 3600, 60: 6 * 3600, 600: 25 * 3600, 3600: 8 * DAY, DAY: 31 * DAY},
    "h": {10: 360, 60: 2 * 3600, 600: 25 * 3600, 3600: 8 * DAY, DAY: 31 * DAY},
    "w": {10: 360, 60: 2 * 3600, 600: 25 * 3600, 3600: 8 * DAY, DAY: 31 * DAY},
}
#: The tier workers write for each kind.
FINEST = {kind: min(tiers) for kind, tiers in TIERS.items()}
#: A bucket's records are rolled up into its parent at the first flush a grace (two flush
#: intervals and a second) after it closed, or after a late write: a query reads the finer
#: buckets of the last ``lag(interval)`` seconds as well, for what they have not rolled up yet.
LAG_S = 30


#: Data is written to a bucket only if its key outlives the bucket's roll-up by this much.
ROLL_UP_S = 60


def lag(interval):
    """Return how far back a roll-up may be pending at this flush interval."""
    return max(LAG_S, 3 * interval + 5)


def coarser(kind, tier):
    """Return the next tier of ``kind`` above ``tier``, or None at the top."""
    return min((t for t in TIERS[kind] if t > tier), default=None)


def finer(kind, tier):
    """Return the next tier of ``kind`` below ``tier``, or None at the bottom."""
    return max((t for t in TIERS[kind] if t < tier), default=None)


def name(store, kind, tier, start):
    """Return the list key of a bucket."""
    return store.key("m", kind, tier, start)


def parse(key):
    """Return ``(kind, tier, start)`` of a bucket's list key."""
    kind, tier, start = key.rsplit(":", 3)[1:]
    return kind, int(tier), int(start)


def kept_tier(kind, tier, start, until):
    """Return the first tier of ``kind`` from ``tier`` up whose bucket holding ``start`` is kept
    past ``until`` (a Unix time), or None: where data of that time may still be written."""
    while tier is not None and expires(kind, tier, start // tier * tier) <= until:
        tier = coarser(kind, tier)
    return tier


def compressed(kind, tier):
    """Tell whether a tier's merged records are zlib-compressed: all but the finest tier's
    (short-lived, and read the most), and every worker record (their names repeat)."""
    return kind == "w" or tier > FINEST[kind]


def expires(kind, tier, start):
    """Return when a bucket's key expires (a Unix time: every writer sets the same)."""
    return start + tier + TIERS[kind][tier]
