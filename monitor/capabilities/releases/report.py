"""Each worker's release report, and the deploy markers it may write: one Lua script every few seconds.

A worker reports ``(release, host, pid)``. The script keeps the releases the fleet has run
(first and last report) and, atomically, the fleet's *current* release. The current one
changes to the reporting worker's release when:

- there is none yet (the fleet's first start: no marker);
- the worker's release was first seen after the current one (a deploy: its first worker to
  report writes the marker, its others find it current already);
- no live worker reports the current release any more (a roll-back to an older release,
  once the newer one's last worker is gone).

So a rolling restart or a reload onto a new release writes one marker, however many workers
and hosts, and an old worker restarting on a host not deployed yet writes none.

Keys (``key("rel", ...)``, each with a TTL renewed by every report): ``rel:names`` hash
release id → name; ``rel:first``, ``rel:last`` zsets release id → first and latest report;
``rel:workers`` zset ``<release id>|host|pid`` → latest report; ``rel:current`` the current
release id; ``rel:markers`` zset of deploy markers (JSON ``{t, release, previous}``) by time.
"""
from ...core.process import release_id

#: Reports are sent at most this often (each flusher tick past it).
REPORT_S = 2.0
#: How long everything is kept after the last report that touched it.
RETENTION_S = 31 * 86400
#: Worker entries are dropped a day after their last report.
WORKER_TTL_S = 86400

#: KEYS: names, first, last, workers, current, markers. ARGV: release id, name, worker member, now,
#: seconds a worker counts as live, retention, a worker entry's TTL. Answers 1 when it wrote a deploy marker.
REPORT = """
local rid, now, stale, keep = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('HSETNX', KEYS[1], rid, ARGV[2])
redis.call('ZADD', KEYS[2], 'NX', now, rid)
redis.call('ZADD', KEYS[3], 'GT', now, rid)
redis.call('ZADD', KEYS[4], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[7]))
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - keep)) do
  redis.call('HDEL', KEYS[1], gone)
  redis.call('ZREM', KEYS[2], gone)
  redis.call('ZREM', KEYS[3], gone)
end
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - keep)
local current = redis.call('GET', KEYS[5])
local wrote = 0
if current ~= rid then
  local switch = not current
  if current then
    local theirs = tonumber(redis.call('ZSCORE', KEYS[2], current) or '0')
    switch = tonumber(redis.call('ZSCORE', KEYS[2], rid)) > theirs
    if not switch then
      switch = true
      for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], now - stale, '+inf')) do
        if string.sub(member, 1, #current + 1) == current .. '|' then switch = false break end
      end
    end
  end
  if switch then
    redis.call('SET', KEYS[5], rid)
    if current then
      local previous = redis.call('HGET', KEYS[1], current) or current
      redis.call('ZADD', KEYS[6], now, cjson.encode({t = now, release = ARGV[2], previous = previous}))
      wrote = 1
    end
  end
end
for i = 1, 6 do redis.call('EXPIRE', KEYS[i], keep) end
return wrote
"""


def keys(store):
    """Return the report script's keys, in order."""
    return [store.key("rel", name) for name in ("names", "first", "last", "workers", "current", "markers")]


def live_s(interval):
    """Return how long a worker counts as running its release after its last report, at this flush interval."""
    return max(10.0, 3 * max(interval, REPORT_S) + 2)


class Reporter:
    """A flusher task: this worker's report, every ``REPORT_S`` seconds."""

    def __init__(self, monitor):
        self.monitor = monitor
        self.script = monitor.store.script(REPORT)
        self.last = 0.0
        self.markers = 0  # deploy markers this process wrote (tests, docs)

    def __call__(self, now):
        if now - self.last < REPORT_S:
            return
        process, store = self.monitor.process, self.monitor.store
        rid = release_id(process.release)
        wrote = self.script(keys=keys(store), args=[
            rid, process.release, f"{rid}|{process.host}|{process.pid}", repr(now),
            live_s(self.monitor.flusher.interval), RETENTION_S, WORKER_TTL_S])
        self.last = now
        self.markers += wrote
