"""The app cache: Flask-Caching on the shared Redis (``monitor.cache``), whose reads can be counted.

Every app-cache key is ``<prefix><namespace>:<rest>`` (or ``<namespace>/<rest>``), the prefix
being ``key("cache") + ":"``. The namespace of a key is its text up to the first ``:`` or ``/``
(a key with neither is its own namespace), so:

- ``cache.set("user:42", ...)`` lands in ``user``;
- ``@cache.cached()`` keys are ``view//path`` (Flask-Caching's ``view/%s``): namespace ``view``,
  or the first segment of the ``key_prefix`` given;
- ``@cache.memoize()`` keys are ``<name>:<hash><version>`` where ``<name>`` is
  ``make_name(qualified function name)`` when given, else the qualified name (``monitor.dev.demo._expensive``);
  the function's version key ``<name>:<qualified name>_memver`` lives in the same namespace, so
  clearing the namespace clears it too; reading it is not counted as a hit or a miss.

Hits and misses are counted in process by the backend's ``get``/``get_many`` (``has`` is an
existence probe, not a read) once the cache capability attaches a :class:`HitCounter`, whose
shipper sends them to the store.
"""
import logging
import os
import re
import threading
import time
from collections import deque

import redis
from flask_caching import Cache
from flask_caching.backends.rediscache import RedisCache
from flask_caching.utils import function_namespace

#: Distinct namespaces one worker counts per flush; the rest count under ``OTHER``.
MAX_NAMESPACES = 200
OTHER = "(other)"
MEMVER = "_memver"
#: After a failed Redis call the app cache acts as an empty cache (reads miss, writes are
#: skipped) for this long without trying Redis, so a request pays at most one Redis
#: timeout budget, MONITOR_REDIS_TIMEOUT × (retries + 1), while Redis is dead or hung.
OUTAGE_PAUSE_S = 1.0
log = logging.getLogger(__name__)
SEPARATOR = re.compile(r"[:/]")


def namespace(key):
    """Return the namespace of an app-cache key given without the prefix."""
    return SEPARATOR.split(key, 1)[0]


class HitCounter:
    """This process's hits and misses per namespace since the last flush.

    A read only appends ``(key, hit)`` (one C call, atomic under the GIL); the flusher's
    :meth:`take` sorts the batch into namespaces.
    """

    def __init__(self):
        self._fresh()
        os.register_at_fork(after_in_child=self._fresh)

    def _fresh(self):
        self.reads = deque()
        #: The hot path's call: count one read, ``(key without the prefix, hit)``.
        self.count = self.reads.append
        self.lock = threading.Lock()  # one take or put_back at a time
        self.counts = {}

    def take(self):
        """Return the counts so far, {namespace: [hits, misses]}, and start afresh."""
        with self.lock:
            counts, self.counts = self.counts, {}
            reads, popleft = self.reads, self.reads.popleft
            names = {}
            for _ in range(len(reads)):  # what is appended meanwhile waits for the next call
                key, hit = popleft()
                name = names.get(key)
                if name is None:
                    if key.endswith(MEMVER):
                        continue
                    name = names[key] = namespace(key)
                pair = counts.get(name)
                if pair is None:
                    if len(counts) >= MAX_NAMESPACES:
                        name = OTHER
                    pair = counts.setdefault(name, [0, 0])
                pair[0 if hit else 1] += 1
        return counts

    def put_back(self, counts):
        """Merge counts that could not be shipped back in."""
        with self.lock:
            for name, (hits, misses) in counts.items():
                pair = self.counts.setdefault(name, [0, 0])
                pair[0] += hits
                pair[1] += misses


class CountingRedisCache(RedisCache):
    """Flask-Caching's Redis backend that counts each read as a hit or a miss, in process.

    While Redis is unreachable it never raises: it answers as an empty cache (a read is a
    counted miss, ``set``/``add``/``delete`` return False) so the host app's requests go on.
    """

    counter = None
    _down_until = 0.0
    _outage = False

    def _safely(self, fallback, call, *args):
        if self._down_until:
            if time.monotonic() < self._down_until:
                return fallback
            self._down_until = 0.0
        try:
            result = call(*args)
        except redis.RedisError as exc:
            if not self._outage:
                log.warning("app cache: Redis is unreachable (%s); reads miss until it answers", exc)
            self._outage = True
            self._down_until = time.monotonic() + OUTAGE_PAUSE_S
            return fallback
        if self._outage:
            self._outage = False
            log.info("app cache: Redis answers again")
        return result

    def get(self, key):
        value = self._safely(None, RedisCache.get, self, key)
        if self.counter is not None:
            self.counter.count((key, value is not None))
        return value

    def get_many(self, *keys):
        values = self._safely([None] * len(keys), RedisCache.get_many, self, *keys)
        if self.counter is not None:
            count = self.counter.count
            for key, value in zip(keys, values):
                count((key, value is not None))
        return values

    def set(self, key, value, timeout=None):
        return self._safely(False, super().set, key, value, timeout)

    def add(self, key, value, timeout=None):
        return self._safely(False, super().add, key, value, timeout)

    def set_many(self, mapping, timeout=None):
        return self._safely([], super().set_many, mapping, timeout)

    def delete(self, key):
        return self._safely(False, super().delete, key)

    def delete_many(self, *keys):
        return self._safely([], super().delete_many, *keys)

    def unlink(self, *keys):
        return self._safely(0, super().unlink, *keys)

    def has(self, key):
        return self._safely(False, super().has, key)

    def inc(self, key, delta=1):
        return self._safely(None, super().inc, key, delta)

    def dec(self, key, delta=1):
        return self._safely(None, super().dec, key, delta)

    def clear(self):
        return self._safely(False, super().clear)


class AppCache(Cache):
    """Flask-Caching's ``Cache`` whose memoized keys start with their namespace."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.memo_namespaces = {}

    def memoize(self, timeout=None, make_name=None, *args, **kwargs):
        decorate = super().memoize(timeout, make_name, *args, **kwargs)

        def register(f):
            fname = function_namespace(f)[0]
            self.memo_namespaces[fname] = make_name(fname) if callable(make_name) else fname
            return decorate(f)
        return register

    def _memvname(self, funcname):
        return f"{self._memo_namespace(funcname)}:{funcname}{MEMVER}"

    def _memo_namespace(self, fname):
        # A method's per-instance version key is "<qualified name>.<instance id>".
        found = self.memo_namespaces.get(fname) or self.memo_namespaces.get(fname.rsplit(".", 1)[0])
        return namespace(found or fname)

    def _memoize_make_cache_key(self, make_name=None, *args, **kwargs):
        make_key = super()._memoize_make_cache_key(make_name, *args, **kwargs)

        def make_cache_key(f, *fargs, **fkwargs):
            fname = function_namespace(f, args=fargs)[0]
            name = make_name(fname) if callable(make_name) else fname
            return f"{namespace(name)}:{make_key(f, *fargs, **fkwargs)}"
        return make_cache_key



def prefix(store):
    """Return the key prefix of the app cache."""
    return store.key("cache") + ":"


def init_app(app, cache, store):
    """Point the app cache at the shared Redis, under its own key prefix."""
    cache.init_app(app, config={
        "CACHE_TYPE": "monitor.core.cache.CountingRedisCache", "CACHE_REDIS_HOST": store.raw,
        "CACHE_KEY_PREFIX": prefix(store), "CACHE_DEFAULT_TIMEOUT": 300})
