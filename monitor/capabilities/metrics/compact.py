"""Merging a bucket's records in Redis, and rolling a closed bucket up into the next tier.

Every worker's flush appends one record to the finest bucket of each kind (``ship.py``).
Two merges keep the lists short, whatever the number of workers:

- **open merge**: the flush (or roll-up) whose append brings a list to a multiple of
  ``EVERY`` records merges what the list has not rolled up into one record;
- **roll-up**: each worker that wrote a bucket asks, a grace after the bucket closed (or after
  a late write to it), that it be merged into one record marked rolled (``codec.ROLLED``);
  what it had not rolled up yet is appended, as one record, to the bucket of the next tier.

So a closed bucket is one record (its size follows the series and the latency spread, not the
worker count), an open finest bucket holds at most about ``EVERY`` more, and an open coarse
bucket one record per finer bucket that closed in it.

Both are safe against every race: a short lock (``CLAIM``) gives one worker the records,
and the swap (``SWAP``) happens only while that worker still holds the lock, so no one else
merged them meanwhile; records appended meanwhile stay behind. A merge that outlived its
lock is dropped; a swap that timed out and is retried finds its lock gone and does nothing.
The replacement and the roll-up are one script: no count is lost or counted twice.

The lists need not be metrics': a ``Compactor`` takes the record format (``codec``: ``decode``,
``merge``, ``pack``, ``rolled``; the flags in a record's second byte, ``ROLLED`` among them,
which CLAIM reads without decoding) and the bucket layout (``layout``: ``name``, ``parse``,
``coarser``, ``kept_tier``, ``expires``, ``compressed``, ``ROLL_UP_S``) of its family; the
continuous profiles' minutes and hours are merged and rolled up the same way.
"""
import secrets
import time

from . import codec as metrics_codec
from . import layout as metrics_layout

#: Records an open list may gain before its next merge.
EVERY = 32
#: How long a merge may hold its bucket's lock (a merge takes milliseconds).
LOCK_MS = 2000

#: KEYS: list, lock. ARGV: '1' for a roll-up ('0': an open merge), lock ms, lock token. The
#: list's records if there is work (an open merge: two records or more; a roll-up: anything
#: but one rolled record) and the lock was free (now taken), else nil.
CLAIM = """
local n = redis.call('LLEN', KEYS[1])
if n == 0 or (n == 1 and (ARGV[1] == '0'
    or bit.band(string.byte(redis.call('LINDEX', KEYS[1], 0), 2), %d) ~= 0)) then return false end
if not redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('LRANGE', KEYS[1], 0, n - 1)
""" % metrics_codec.ROLLED
#: KEYS: list, lock, parent list. ARGV: records read, lock token, record for the parent ('' for
#: none), the parent's expiry (Unix time), then the records that replace those read, in order.
#: Keeps the records appended since and the TTL, frees the lock. 0 if the lock was no longer
#: this token's, else the parent's length (1 when nothing went to it).
SWAP = """
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2])
local ttl = redis.call('PTTL', KEYS[1])
redis.call('LTRIM', KEYS[1], ARGV[1], -1)
for i = #ARGV, 5, -1 do redis.call('LPUSH', KEYS[1], ARGV[i]) end
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
if ARGV[3] == '' then return 1 end
local n = redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('EXPIREAT', KEYS[3], ARGV[4])
return n
"""


def lock_key(store, name):
    """Return the lock key of the list ``name`` (same hash tag, so same slot)."""
    return store.key("lock", name.partition("}:")[2])


class Compactor:
    """Merge the lists this worker asks for: at its next run (``want``), or rolled up at a
    given time (``due``). A flusher task; ``grace`` is how long after a bucket closes the
    fleet's last writes to it may still land."""

    def __init__(self, store, grace, codec=metrics_codec, layout=metrics_layout):
        self.store = store
        self.grace = grace
        self.codec = codec
        self.layout = layout
        self.claim = store.raw.register_script(CLAIM)
        self.swap = store.raw.register_script(SWAP)
        self.wanted = set()
        self.closing = {}  # list name → when to roll it up

    def landed(self, commands, replies):
        """Want a merge of each list that a flush's RPUSH brought to a multiple of ``EVERY`` records."""
        for command, reply in zip(commands, replies):
            if command[0] == "RPUSH" and isinstance(reply, int) and reply % EVERY == 0:
                self.want(command[1])

    def want(self, name):
        """Merge what ``name`` has not rolled up, at the next run."""
        self.wanted.add(name)

    def due(self, name, at):
        """Roll the bucket ``name`` up at ``at`` (or later)."""
        if self.closing.get(name, 0) < at:
            self.closing[name] = at

    def __call__(self, now):
        """Run the merges wanted and the roll-ups due."""
        ready = {name: at for name, at in self.closing.items() if at <= now}
        for name in ready:
            del self.closing[name]
        work = {name: False for name in self.wanted} | dict.fromkeys(ready, True)
        self.wanted = set()
        try:
            if work:
                self.compact(work, now)
        except Exception:
            for name, at in ready.items():  # the roll-ups are tried again at the next run
                self.due(name, at)
            raise

    def compact(self, work, now):
        """Merge each list of ``{name: roll up?}``, if no one else merges it now; return how many
        this call replaced."""
        codec, layout = self.codec, self.layout
        token = secrets.token_hex(8)
        pipe = self.store.raw.pipeline(transaction=False)
        for name, roll in work.items():
            self.claim(keys=[name, lock_key(self.store, name)], args=[int(roll), LOCK_MS, token], client=pipe)
        claimed = [(name, blobs) for name, blobs in zip(work, pipe.execute()) if blobs]
        if not claimed:
            return 0
        pipe = self.store.raw.pipeline(transaction=False)
        parents = []
        for name, blobs in claimed:
            records = [codec.decode(blob) for blob in blobs]
            fresh = [record for blob, record in zip(blobs, records) if not codec.rolled(blob)]
            parent, up, expiry = name, b"", 0
            if work[name]:  # roll up: one rolled record; what was not rolled goes to the next tier
                kind, tier, start = layout.parse(name)
                replace = [codec.pack(codec.merge(records), layout.compressed(kind, tier), rolled=True)]
                # past a tier kept shorter than this one (old data rolled up late), to the next kept
                until = time.time() + self.grace + layout.ROLL_UP_S
                above = layout.kept_tier(kind, layout.coarser(kind, tier), start, until)
                if above is not None and fresh:
                    top = start // above * above
                    parent = layout.name(self.store, kind, above, top)
                    up = codec.pack(codec.merge(fresh), layout.compressed(kind, above))
                    expiry = layout.expires(kind, above, top)
            else:  # open merge: the rolled records stay as they are
                replace = [blob for blob in blobs if codec.rolled(blob)]
                if fresh:
                    replace.append(codec.pack(codec.merge(fresh), compress=False))
            parents.append(parent if up else None)
            self.swap(keys=[name, lock_key(self.store, name), parent],
                      args=[len(blobs), token, up, expiry, *replace], client=pipe)
        done = pipe.execute()
        for parent, length in zip(parents, done):
            if parent and length:  # the parent rolls up in its turn (at once if it had closed: a late roll-up)
                _, tier, start = layout.parse(parent)
                self.due(parent, max(start + tier, now) + self.grace)
                if length % EVERY == 0:  # late roll-ups may pile up in a coarse bucket too
                    self.want(parent)
        return sum(bool(n) for n in done)
