"""Compaction: a bucket's list of records, merged into one record in Redis.

Every worker's flush appends one record to each bucket it writes (``ship.py``), so a bucket
would grow with the workers and the flushes. Whoever appends a record that brings a list to
a multiple of ``EVERY`` records merges it, as does, once, each worker that wrote a bucket
when the bucket has closed. So a closed bucket is one merged record (its size follows the
series and the latency spread, not the worker count) and an open one holds at most about
``EVERY`` records more: what a query reads is bounded whatever the fleet's size.

Merging is safe against every race: a short lock (``CLAIM``) keeps two workers from doing
the same work, and the swap (``SWAP``) happens only if the list still starts with the
record the merge read first. Records appended meanwhile stay behind the merged one. A swap
that times out and is retried finds the list changed and does nothing, so no count is lost
or counted twice.
"""
import logging
import secrets

from . import codec

log = logging.getLogger(__name__)

#: Records a list may gain before its next merge.
EVERY = 32
#: How long a merge may hold its bucket's lock (a merge takes milliseconds).
LOCK_MS = 2000

#: KEYS: list, lock. ARGV: minimum length, lock ms, lock token. The list's records when it
#: has at least the minimum and the lock was free (now taken), else nil.
CLAIM = """
local n = redis.call('LLEN', KEYS[1])
if n < tonumber(ARGV[1]) then return false end
if not redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('LRANGE', KEYS[1], 0, n - 1)
"""
#: KEYS: list, lock. ARGV: records read, id of the first one, the merged record, lock token.
#: Replaces the records read by the merged one, keeping those appended since and the TTL;
#: 1 if it did, 0 if the list no longer starts with what was read.
SWAP = """
if redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
local first = redis.call('LINDEX', KEYS[1], 0)
local n = tonumber(ARGV[1])
if not first or string.sub(first, 1, 8) ~= ARGV[2] or redis.call('LLEN', KEYS[1]) < n then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('LTRIM', KEYS[1], n, -1)
redis.call('LPUSH', KEYS[1], ARGV[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""


def lock_key(store, name):
    """Return the lock key of the list ``name`` (same hash tag, so same slot)."""
    return store.key("m", "lock", name.rsplit(":m:", 1)[1])


class Compactor:
    """Merge the lists this worker asks for: now (``want``), or once a bucket closed (``due``)."""

    def __init__(self, store):
        self.store = store
        self.claim = store.raw.register_script(CLAIM)
        self.swap = store.raw.register_script(SWAP)
        self.wanted = set()
        self.closing = {}  # list name → when to merge it once more
        self.merged = 0

    def want(self, name):
        """Merge ``name`` at the next run."""
        self.wanted.add(name)

    def due(self, name, at):
        """Merge ``name`` once more at ``at`` (its bucket's end plus a grace), if it holds more than one record."""
        if self.closing.get(name, 0) < at:
            self.closing[name] = at

    def __call__(self, now):
        """Run the merges wanted and due (a flusher task)."""
        ready = [name for name, at in self.closing.items() if at <= now]
        for name in ready:
            del self.closing[name]
        work = [(name, EVERY) for name in self.wanted] + [(name, 2) for name in ready if name not in self.wanted]
        self.wanted = set()
        for name, least in work:
            self.compact(name, least)

    def compact(self, name, least=2):
        """Merge the list ``name`` if it holds at least ``least`` records and no one else merges
        it now; return True if this call replaced its records."""
        token = secrets.token_hex(8)
        lock = lock_key(self.store, name)
        blobs = self.claim(keys=[name, lock], args=[least, LOCK_MS, token])
        if not blobs:
            return False
        merged = codec.pack(codec.merge([codec.decode(blob) for blob in blobs]))
        done = bool(self.swap(keys=[name, lock], args=[len(blobs), codec.record_id(blobs[0]), merged, token]))
        self.merged += done
        return done
