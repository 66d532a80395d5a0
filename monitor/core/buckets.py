"""Time buckets for per-window figures in Redis: the tiers kept, and the buckets a window reads.

A capability that counts events per window (exceptions per group, slow requests per
endpoint) writes each event into the bucket of every tier that holds its time, merged at
write (HINCRBY, or ZADD and a trim for a top-K), so a bucket is one key however many
workers write. A window is read in whole buckets of the finest tier kept over all of it:
minutes up to 6 hours, hours up to 7 days (so a window is rounded out to its buckets, as the
metrics table's is).
"""
#: Bucket seconds → seconds a bucket is kept after it ends.
TIERS = {60: 6 * 3600, 3600: 8 * 86400}
#: The longest window the tiers answer.
MAX_WINDOW_S = 7 * 86400


def tier(window_s, age_s=0.0):
    """Return the finest tier that still holds a whole window of ``window_s`` seconds that ended ``age_s`` ago."""
    return min((t for t, kept in TIERS.items() if kept >= window_s + age_s + t), default=max(TIERS))


def start(t, size):
    """Return the start of the bucket of ``size`` seconds that holds time ``t``."""
    return int(t // size) * size


def starts(window_s, size, now):
    """Return the starts of the buckets of ``size`` seconds that cover the last ``window_s`` seconds."""
    return range(start(now - window_s, size), start(now, size) + 1, size)


def expires(size, begin):
    """Return when the bucket of ``size`` seconds starting at ``begin`` expires (a Unix time)."""
    return begin + size + TIERS[size]
