"""The app cache: Flask-Caching on the shared Redis, hit/miss counts per namespace, scoped clearing.

Every app-cache key is ``<prefix><namespace>:<rest>`` (or ``<namespace>/<rest>``), the prefix
being ``key("cache") + ":"``. The namespace of a key is its text up to the first ``:`` or ``/``
(a key with neither is its own namespace), so:

- ``cache.set("user:42", ...)`` lands in ``user``;
- ``@cache.cached()`` keys are ``view//path`` (Flask-Caching's ``view/%s``): namespace ``view``,
  or the first segment of the ``key_prefix`` given;
- ``@cache.memoize()`` keys are ``<name>:<hash><version>`` where ``<name>`` is
  ``make_name(qualified function name)`` when given, else the qualified name (``monitor.demo._expensive``);
  the function's version key ``<name>:<qualified name>_memver`` lives in the same namespace, so
  clearing the namespace clears it too; reading it is not counted as a hit or a miss.

Hits and misses are counted in process by the backend's ``get``/``get_many`` (``has`` is an
existence probe, not a read) and shipped by the flusher into one hash per minute.
"""
import logging
import os
import re
import threading
import time

import redis
from flask_caching import Cache
from flask_caching.backends.rediscache import RedisCache
from flask_caching.utils import function_namespace

from . import audit

#: Width of one stats bucket, in seconds (the hit-rate window is rounded to it).
BUCKET_S = 60
#: Longest window GET cache/stats accepts, in seconds; buckets live this long.
MAX_WINDOW_S = 86400
#: Default hit-rate window, in seconds.
DEFAULT_WINDOW_S = 3600
#: Distinct namespaces one worker counts per flush; the rest count under ``OTHER``.
MAX_NAMESPACES = 200
OTHER = "(other)"
#: Keys per SCAN call and per UNLINK call: small enough that Redis serves others in between.
SCAN_COUNT = 1000
UNLINK_BATCH = 500
#: Keys whose ``MEMORY USAGE`` is sampled to estimate the cache's memory.
MEMORY_SAMPLE = 200
#: Namespaces listed by stats (those with the most keys and reads first).
MAX_LISTED = 100
MEMVER = "_memver"
#: After a failed Redis call the app cache acts as an empty cache (reads miss, writes are
#: skipped) for this long without trying Redis, so a request pays at most one Redis
#: timeout budget, MONITOR_REDIS_TIMEOUT × (retries + 1), while Redis is dead or hung.
OUTAGE_PAUSE_S = 1.0
log = logging.getLogger(__name__)
_SEPARATOR = re.compile(r"[:/]")
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def namespace(key):
    """Return the namespace of an app-cache key given without the prefix."""
    return _SEPARATOR.split(key, 1)[0]


def _glob(text):
    return _GLOB_SPECIAL.sub(r"\\\1", text)


class HitCounter:
    """This process's hits and misses per namespace since the last flush."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        os.register_at_fork(after_in_child=self.take)

    def count(self, key, hit):
        """Count one read of ``key`` (without the prefix)."""
        if key.endswith(MEMVER):
            return
        name = namespace(key)
        with self.lock:
            pair = self.counts.get(name)
            if pair is None:
                if len(self.counts) >= MAX_NAMESPACES:
                    name = OTHER
                pair = self.counts.setdefault(name, [0, 0])
            pair[0 if hit else 1] += 1

    def take(self):
        """Return the counts so far and start afresh."""
        with self.lock:
            counts, self.counts = self.counts, {}
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
        value = self._safely(None, super().get, key)
        if self.counter is not None:
            self.counter.count(key, value is not None)
        return value

    def get_many(self, *keys):
        values = self._safely([None] * len(keys), super().get_many, *keys)
        if self.counter is not None:
            for key, value in zip(keys, values):
                self.counter.count(key, value is not None)
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


def prefix(monitor):
    """Return the key prefix of the app cache."""
    return monitor.store.key("cache") + ":"


def init_app(app, monitor):
    """Point ``monitor.cache`` at the shared Redis and ship its hit/miss counts."""
    store = monitor.store
    monitor.cache.init_app(app, config={
        "CACHE_TYPE": "monitor.cache.CountingRedisCache", "CACHE_REDIS_HOST": store.raw,
        "CACHE_KEY_PREFIX": prefix(monitor), "CACHE_DEFAULT_TIMEOUT": 300})
    counter = HitCounter()
    app.extensions["cache"][monitor.cache].counter = counter

    def ship(pipe, now):
        counts = counter.take()
        if not counts:
            return None
        name = store.key("cachestats", int(now // BUCKET_S) * BUCKET_S)
        for ns, (hits, misses) in counts.items():
            if hits:
                pipe.hincrby(name, f"h:{ns}", hits)
            if misses:
                pipe.hincrby(name, f"m:{ns}", misses)
        pipe.expire(name, MAX_WINDOW_S + BUCKET_S)
        return lambda: counter.put_back(counts)

    monitor.flusher.add_shipper(ship)
    monitor.features["cache"] = True


def _reads(monitor, window, now):
    """Return {namespace: [hits, misses]} over the buckets that overlap the last ``window`` s."""
    store = monitor.store
    first = int((now - window) // BUCKET_S + 1) * BUCKET_S
    starts = range(first, int(now // BUCKET_S) * BUCKET_S + 1, BUCKET_S)
    pipe = store.redis.pipeline(transaction=False)
    for start in starts:
        pipe.hgetall(store.key("cachestats", start))
    reads = {}
    for bucket in pipe.execute():
        for field, count in bucket.items():
            kind, _, ns = field.partition(":")
            reads.setdefault(ns, [0, 0])[0 if kind == "h" else 1] += int(count)
    return reads


def stats(monitor, window=DEFAULT_WINDOW_S, budget_s=None):
    """Return the contract's cache/stats: keys (SCAN, bounded in time), reads, memory, Redis INFO."""
    budget_s = monitor.config["MONITOR_CACHE_SCAN_BUDGET"] if budget_s is None else budget_s
    raw, start = monitor.store.raw, prefix(monitor)
    deadline = time.monotonic() + budget_s
    keys, sample, approximate = {}, [], False
    for key in raw.scan_iter(match=_glob(start) + "*", count=SCAN_COUNT):
        ns = namespace(key.decode("utf-8", "replace")[len(start):])
        keys[ns] = keys.get(ns, 0) + 1
        if len(sample) < MEMORY_SAMPLE:
            sample.append(key)
        if time.monotonic() > deadline:
            approximate = True
            break
    total = sum(keys.values())
    memory = 0
    if sample:
        pipe = raw.pipeline(transaction=False)
        for key in sample:
            pipe.memory_usage(key, samples=0)
        sizes = [size for size in pipe.execute() if size is not None]
        memory = round(sum(sizes) / len(sizes) * total) if sizes else 0
    reads = _reads(monitor, window, time.time())
    hits = sum(pair[0] for ns, pair in reads.items() if ns)
    misses = sum(pair[1] for ns, pair in reads.items() if ns)
    names = sorted(set(keys) | set(reads),
                   key=lambda ns: (-(keys.get(ns, 0) + sum(reads.get(ns, (0, 0)))), ns))[:MAX_LISTED]
    info = monitor.store.redis.info()
    return {
        "backend": "redis", "prefix": start, "keys": total, "approximate": approximate,
        "hits": hits, "misses": misses, "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
        "window_s": window, "memory_bytes": memory, "memory_sampled_keys": len(sample),
        "namespaces": [{"name": ns, "keys": keys.get(ns, 0), "hits": reads.get(ns, (0, 0))[0],
                        "misses": reads.get(ns, (0, 0))[1]} for ns in names],
        "redis": {
            "version": info.get("redis_version"), "used_memory": info.get("used_memory"),
            "evicted_keys": info.get("evicted_keys"), "connected_clients": info.get("connected_clients"),
            "ops_per_sec": info.get("instantaneous_ops_per_sec"),
            "keyspace_hits": info.get("keyspace_hits"), "keyspace_misses": info.get("keyspace_misses"),
        },
    }


def check_namespace(value):
    """Return a valid namespace to clear (or None for all), or raise ValueError saying what is accepted."""
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 200 or _SEPARATOR.search(value) \
            or not value.isprintable():
        raise ValueError("namespace must be a string of 1 to 200 printable characters without ':' or '/'")
    return value


def clear(monitor, ns=None):
    """Delete the app cache's keys (of namespace ``ns``) by SCAN and batched UNLINK; return the count."""
    ns = check_namespace(ns)
    store, start = monitor.store, prefix(monitor)
    raw = store.raw
    cleared = 0
    try:
        if ns is None:
            pattern = _glob(start) + "*"
        else:
            pattern = _glob(start + ns) + "[:/]*"
            cleared += raw.unlink(start + ns)
        batch = []
        for key in raw.scan_iter(match=pattern, count=SCAN_COUNT):
            batch.append(key)
            if len(batch) >= UNLINK_BATCH:
                cleared += raw.unlink(*batch)
                batch = []
        if batch:
            cleared += raw.unlink(*batch)
    except Exception:
        audit.record(store, "cache.clear", "error", namespace=ns or "*", cleared=cleared)
        raise
    audit.record(store, "cache.clear", "ok", namespace=ns or "*", cleared=cleared)
    return cleared
