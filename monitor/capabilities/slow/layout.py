"""The Redis layout of slow requests: every key under ``key("slow", ...)``, every one with a TTL.

Per time bucket of each tier (``core/buckets.py``: minutes kept 6 h, hours 8 days), merged as
each worker's exactly-once flush writes it (ZADD, then a trim to the ``KEEP`` slowest; HINCRBY):

- ``slow:<tier>:<start>:top`` zset: the bucket's slowest requests of all endpoints, each a
  JSON member scored by its duration in µs;
- ``slow:<tier>:<start>:e:<rule id>`` zset: the same for one endpoint rule;
- ``slow:<tier>:<start>:n`` hash ``METHOD rule`` → slow requests in the bucket.

A bucket's top list holds its ``KEEP`` slowest of the whole fleet, whatever the number of
workers, so the window's ``KEEP`` slowest are exactly the ``KEEP`` slowest of its buckets'.
"""
import hashlib


def rule_id(rule):
    """Return the short id of an endpoint rule, for keys."""
    return hashlib.blake2b(rule.encode(), digest_size=8).hexdigest()


def top(store, size, start, rule=None):
    """Return the key of a bucket's slowest requests (of one endpoint rule, or of all)."""
    return store.key("slow", size, start, "e", rule_id(rule)) if rule is not None else \
        store.key("slow", size, start, "top")


def counts(store, size, start):
    """Return the key of a bucket's counts per endpoint."""
    return store.key("slow", size, start, "n")
