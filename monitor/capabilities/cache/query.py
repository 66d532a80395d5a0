"""The cache's read side and its one action: statistics, and clearing (all, or one namespace)."""
import re
import time

from ...core import audit
from ...core.cache import SEPARATOR, namespace, prefix
from ...core.errors import Refused
from ...web import body
from .ship import BUCKET_S, stats_key

#: Default hit-rate window, in seconds.
DEFAULT_WINDOW_S = 3600
#: Keys per SCAN call and per UNLINK call: small enough that Redis serves others in between.
SCAN_COUNT = 1000
UNLINK_BATCH = 500
#: Keys whose ``MEMORY USAGE`` is sampled to estimate the cache's memory.
MEMORY_SAMPLE = 200
#: Namespaces listed by stats (those with the most keys and reads first).
MAX_LISTED = 100
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def _glob(text):
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def _reads(monitor, window, now):
    """Return {namespace: [hits, misses]} over the buckets that overlap the last ``window`` s."""
    store = monitor.store
    first = int((now - window) // BUCKET_S + 1) * BUCKET_S
    starts = range(first, int(now // BUCKET_S) * BUCKET_S + 1, BUCKET_S)
    pipe = store.redis.pipeline(transaction=False)
    for start in starts:
        pipe.hgetall(stats_key(store, start))
    reads = {}
    for bucket in pipe.execute():
        for field, count in bucket.items():
            kind, _, ns = field.partition(":")
            reads.setdefault(ns, [0, 0])[0 if kind == "h" else 1] += int(count)
    return reads


def _totals(reads):
    """Return (hits, misses) summed over the app's namespaces."""
    return sum(pair[0] for ns, pair in reads.items() if ns), sum(pair[1] for ns, pair in reads.items() if ns)


def hit_counts(monitor, window, now):
    """Return the app cache's (hits, misses) over the last ``window`` s before ``now``."""
    return _totals(_reads(monitor, window, now))


def stats(monitor, window=DEFAULT_WINDOW_S, budget_s=None):
    """Return the contract's cache/stats: keys (SCAN, bounded in time), reads, memory, Redis INFO."""
    budget_s = monitor.config["MONITOR_CACHE_SCAN_BUDGET"] if budget_s is None else budget_s
    raw, start = monitor.store.raw, prefix(monitor.store)
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
    hits, misses = _totals(reads)
    names = sorted(set(keys) | set(reads),
                   key=lambda ns: (-(keys.get(ns, 0) + sum(reads.get(ns, (0, 0)))), ns))[:MAX_LISTED]
    info = monitor.store.info()  # the node holding the fleet, on a Redis Cluster
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
    """Return a valid namespace to clear (or None for all), or refuse, saying what is accepted."""
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 200 or SEPARATOR.search(value) \
            or not value.isprintable():
        raise Refused("namespace must be a string of 1 to 200 printable characters without ':' or '/'")
    return value


#: The body of a clear, from the API or the panel: one namespace, or everything asked for by name.
CLEAR_FIELDS = {"namespace": body.text(), "all": body.flag()}


def clear_target(fields):
    """Return the namespace a clear's body names, or None when it asks for all (``all: true``); else refuse.

    A body without either is refused rather than read as "everything": a form that lost its
    field, or a body read as empty, must not empty the app cache.
    """
    namespace, everything = fields.get("namespace"), fields.get("all", False)
    if everything and namespace is not None:
        raise Refused("send either namespace or all: true, not both")
    if not everything and namespace is None:
        raise Refused("name the namespace to clear, or send all: true to clear the whole app cache")
    return None if everything else check_namespace(namespace)


def clear(monitor, ns=None):
    """Delete the app cache's keys (of namespace ``ns``) by SCAN and batched UNLINK; return the count."""
    ns = check_namespace(ns)
    store, start = monitor.store, prefix(monitor.store)
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
