"""The Redis layout of exception groups: every key under ``key("exc", ...)``, every one with a TTL.

Counts are merged as they are written (HINCRBY, ZADD GT/LT) in each worker's exactly-once
flush (``core/flusher.py``), so every count is exact and a group is a few keys however many
workers see it:

- ``exc:g:<id>`` hash: ``type``, ``culprit`` (the innermost app frame), ``message`` (of the
  latest occurrence shipped), ``count`` (since the group was first seen); once resolved,
  ``resolved_at``, ``resolved_by`` and ``resolved_releases`` (JSON: the releases it had been
  seen in).
- ``exc:g:<id>:e`` hash ``METHOD rule`` → count (``<no request>`` for logged exceptions);
  ``exc:g:<id>:w`` hash ``host|pid`` → count; ``exc:g:<id>:r`` zset release → time of its
  latest occurrence in that release; ``exc:g:<id>:s`` list of samples (JSON), newest first,
  at most ``collect.SAMPLES``.
- ``exc:last`` and ``exc:first`` zsets: group id → its latest and first occurrence (the
  index of groups; ``exc:first`` answers "new groups since").
- ``exc:resolved`` set of the groups marked resolved (what a regression is looked for in).
- ``exc:<tier>:<bucket start>`` hash: group id → occurrences in that minute or hour
  (``core/buckets.py``): windows and sparklines.

A group's keys live ``RETENTION_S`` past its last occurrence; the index keys as long as any
group is written, their members pruned by time.
"""
#: How long a group is kept after its last occurrence.
RETENTION_S = 30 * 86400


def group(store, gid, part=None):
    """Return the key of a group's hash, or of one of its parts (``e``, ``w``, ``r``, ``s``)."""
    return store.key("exc", "g", gid, part) if part else store.key("exc", "g", gid)


def index(store, name):
    """Return the key of an index: ``last``, ``first`` or ``resolved``."""
    return store.key("exc", name)


def bucket(store, size, start):
    """Return the key of a time bucket's counts."""
    return store.key("exc", size, start)
