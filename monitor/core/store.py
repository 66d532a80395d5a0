"""The shared store: the one place that makes Redis connections and names Redis keys.

Every call has a short socket timeout and a bounded number of retries, so a dead or hung
Redis costs a caller at most ``MONITOR_REDIS_TIMEOUT`` × (retries + 1) and never hangs a
request. Keys are ``<MONITOR_KEY_PREFIX>:<part>:<part>...``; callers never build keys by
hand, so two apps with two prefixes can share one Redis.
"""
import os
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import embedded
from .process import MASTER_ENV

#: How long a Redis connection may sit idle before it is checked with a PING.
HEALTH_CHECK_INTERVAL = 10
#: How long ``ok()`` trusts its last answer, so /health under load does not PING per call.
OK_CACHE_S = 0.5


def resolve_url(config):
    """Return the Redis URL for this config, starting the embedded Redis if needed."""
    if config["MONITOR_REDIS_URL"]:
        return config["MONITOR_REDIS_URL"]
    instance = config["MONITOR_INSTANCE_PATH"]
    # A gunicorn worker uses its master's Redis even while it is down, never one of its own.
    if os.environ.get(MASTER_ENV) or embedded.is_running(instance):
        return embedded.url(instance)
    return embedded.ensure(instance)


def connect(url, timeout=0.25, retries=1, decode=True):
    """Make a Redis client with the monitor's timeouts and retries."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), retries), retry_on_timeout=True,
        health_check_interval=HEALTH_CHECK_INTERVAL, decode_responses=decode,
        client_name="monitor")


def safe_url(url):
    """Return the URL with any password masked, for log lines."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def release(lock):
    """Release a lock made by ``Store.lock``; one that expired or changed hands meanwhile needs nothing."""
    try:
        lock.release()
    except redis.exceptions.LockError:
        pass


def renew(lock):
    """Reset a lock's TTL to its timeout; return False when it is no longer held with its token."""
    try:
        return lock.reacquire()
    except redis.exceptions.LockError:
        return False


class Store:
    """Redis clients (text and bytes) and the key helper for one app."""

    def __init__(self, url, prefix, timeout=0.25, retries=1):
        self.url = url
        self.prefix = prefix
        self.redis = connect(url, timeout, retries, decode=True)
        self.raw = connect(url, timeout, retries, decode=False)
        self._ok = (0.0, False)
        self._scripts = {}

    @classmethod
    def from_config(cls, config):
        return cls(resolve_url(config), config["MONITOR_KEY_PREFIX"],
                   config["MONITOR_REDIS_TIMEOUT"], config["MONITOR_REDIS_RETRIES"])

    def key(self, *parts):
        """Return the prefixed key for these parts."""
        return ":".join([self.prefix, *map(str, parts)])

    def ok(self):
        """Tell whether Redis answers a PING now (cached for a fraction of a second)."""
        checked, answer = self._ok
        if time.monotonic() - checked < OK_CACHE_S:
            return answer
        try:
            answer = bool(self.redis.ping())
        except redis.RedisError:
            answer = False
        # Stamped after the PING: a hung Redis's timed-out PING is then trusted for OK_CACHE_S too,
        # so /health polled hard costs a worker at most half its time, not all of it.
        self._ok = (time.monotonic(), answer)
        return answer

    def script(self, source):
        """Return redis-py's ``Script`` of this Lua source on the text client (sent once, then by SHA)."""
        found = self._scripts.get(source)
        if found is None:
            found = self._scripts[source] = self.redis.register_script(source)
        return found

    def lock(self, *parts, timeout, token=None):
        """Return redis-py's ``Lock`` on ``key(*parts)``, holding ``token`` for every thread.

        A lock's token is what the fleet knows it by (an operation or session id), so any
        process that knows it may extend or release it: ``acquire(blocking=False, token=...)``,
        ``reacquire()`` (TTL back to ``timeout``), ``release()``; the last two raise
        ``redis.exceptions.LockError`` when the lock is no longer held with that token.
        """
        lock = self.redis.lock(self.key(*parts), timeout=timeout, thread_local=False)
        lock.local.token = token.encode() if token is not None else None
        return lock

    def scan_prefix(self, *parts, count=1000):
        """Iterate the keys under ``key(*parts)`` with SCAN (never KEYS)."""
        return self.redis.scan_iter(match=self.key(*parts, "*"), count=count)
