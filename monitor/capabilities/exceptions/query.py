"""The read side: the fleet's exception groups over a window, one group with its samples, resolving.

A group's status is worked out when it is read, from what its occurrences left:

- ``open``: never resolved, or it happened again after it was resolved in a release it had
  been seen in before (it was not fixed);
- ``resolved``: nothing since it was marked resolved;
- ``regression``: it happened again, after it was resolved, in a release it had never been
  seen in: a release that came after the fix brought it back.
"""
import json
import time

from prometheus_client.core import CounterMetricFamily

from ...core import audit, buckets
from ...core.errors import Refused
from . import layout
from .collect import SAMPLES

#: Points of a group's sparkline over any window.
SPARK_POINTS = 24


def window_counts(store, window_s, now):
    """Return ``{group id: [occurrences per sparkline point]}`` of the groups seen in the window, and the
    seconds a point covers."""
    size = buckets.tier(window_s)
    starts = list(buckets.starts(window_s, size, now))
    pipe = store.redis.pipeline(transaction=False)
    for begin in starts:
        pipe.hgetall(layout.bucket(store, size, begin))
    points = min(SPARK_POINTS, len(starts))
    found = {}
    for i, counts in enumerate(pipe.execute()):
        for gid, n in counts.items():
            series = found.get(gid)
            if series is None:
                series = found[gid] = [0] * points
            series[i * points // len(starts)] += int(n)
    return found, len(starts) * size / points


def status(fields, releases):
    """Return a group's status from its hash ``fields`` and ``{release: latest occurrence}``."""
    resolved_at = float(fields.get("resolved_at") or 0)
    if not resolved_at:
        return "open"
    since = [release for release, last in releases.items() if last > resolved_at]
    if not since:
        return "resolved"
    known = set(json.loads(fields.get("resolved_releases") or "[]"))
    return "regression" if any(release not in known for release in since) else "open"


def _read(store, gids):
    """Return ``{group id: (hash, first, last, endpoints, workers, releases)}`` of the groups still kept."""
    pipe = store.redis.pipeline(transaction=False)
    for gid in gids:
        pipe.hgetall(layout.group(store, gid))
        pipe.zscore(layout.index(store, "first"), gid)
        pipe.zscore(layout.index(store, "last"), gid)
        pipe.hgetall(layout.group(store, gid, "e"))
        pipe.hgetall(layout.group(store, gid, "w"))
        pipe.zrange(layout.group(store, gid, "r"), 0, -1, withscores=True)
    replies = pipe.execute()
    found = {}
    for i, gid in enumerate(gids):
        fields, first, last, endpoints, workers, releases = replies[6 * i:6 * i + 6]
        if fields:
            found[gid] = (fields, first, last, endpoints, workers, dict(releases))
    return found


def _group(gid, read, count, series):
    fields, first, last, endpoints, workers, releases = read
    hosts = sorted({worker.rpartition("|")[0] for worker in workers})
    resolved_at = float(fields["resolved_at"]) if fields.get("resolved_at") else None
    return {
        "id": gid, "type": fields.get("type", ""), "message": fields.get("message", ""),
        "culprit": fields.get("culprit", ""), "count": count, "total": int(fields.get("count", 0)),
        "first_seen": first, "last_seen": last,
        "endpoints": [name for name, _ in sorted(endpoints.items(), key=lambda item: (-int(item[1]), item[0]))],
        "endpoint_counts": {name: int(n) for name, n in endpoints.items()},
        "releases": [name for name, _ in sorted(releases.items(), key=lambda item: -item[1])],
        "hosts": hosts,
        "workers": sorted(({"host": worker.rpartition("|")[0], "pid": int(worker.rpartition("|")[2]),
                            "count": int(n)} for worker, n in workers.items()),
                          key=lambda w: (-w["count"], w["host"], w["pid"])),
        "status": status(fields, releases), "resolved_at": resolved_at,
        "resolved_by": fields.get("resolved_by"), "series": series}


def groups(store, window_s, now=None, limit=100):
    """Return the GET /api/admin/exceptions body: the groups seen in the window, most frequent first."""
    now = time.time() if now is None else now
    counts, step = window_counts(store, window_s, now)
    ranked = sorted(counts, key=lambda gid: -sum(counts[gid]))[:limit]
    found = _read(store, ranked)
    rows = [_group(gid, found[gid], sum(counts[gid]), counts[gid]) for gid in ranked if gid in found]
    rows.sort(key=lambda row: (-row["count"], -(row["last_seen"] or 0)))
    return {"groups": rows, "groups_total": len(counts), "occurrences": sum(map(sum, counts.values())),
            "window_s": window_s, "series_step_s": step, "generated_at": round(now, 3)}


def group(store, gid, window_s, now=None):
    """Return one group (its count over the window) with its samples, newest first; refuse an unknown one."""
    now = time.time() if now is None else now
    found = _read(store, [gid]).get(gid)
    if found is None:
        raise Refused("no exception group with this id", 404)
    counts, step = window_counts(store, window_s, now)
    series = counts.get(gid, [0] * min(SPARK_POINTS, len(buckets.starts(window_s, buckets.tier(window_s), now))))
    body = _group(gid, found, sum(series), series)
    body["samples"] = [json.loads(raw) for raw in store.redis.lrange(layout.group(store, gid, "s"), 0, SAMPLES - 1)]
    body.update(window_s=window_s, series_step_s=step, generated_at=round(now, 3))
    return body


def resolve(store, gid, user, now=None):
    """Mark a group resolved (the releases it was seen in are remembered), audited; refuse an unknown one."""
    now = time.time() if now is None else now
    key = layout.group(store, gid)
    if not store.redis.exists(key):
        audit.record(store, "exception.resolve", "not_found", group=gid)
        raise Refused("no exception group with this id", 404)
    releases = store.redis.zrange(layout.group(store, gid, "r"), 0, -1)
    pipe = store.redis.pipeline(transaction=False)
    pipe.hset(key, mapping={"resolved_at": repr(now), "resolved_by": user, "resolved_releases": json.dumps(releases)})
    pipe.sadd(layout.index(store, "resolved"), gid)
    pipe.expire(layout.index(store, "resolved"), layout.RETENTION_S)
    pipe.execute()
    audit.record(store, "exception.resolve", "ok", group=gid)


def new_groups(store, since, until):
    """Return ``[{id, type}]`` of the groups first seen between ``since`` and ``until``."""
    gids = store.redis.zrangebyscore(layout.index(store, "first"), since, until)
    if not gids:
        return []
    pipe = store.redis.pipeline(transaction=False)
    for gid in gids:
        pipe.hget(layout.group(store, gid), "type")
    return [{"id": gid, "type": kind} for gid, kind in zip(gids, pipe.execute()) if kind is not None]


def regressions(store):
    """Return ``[{id, type}]`` of the resolved groups that came back in a release they had not been seen in."""
    gids = sorted(store.redis.smembers(layout.index(store, "resolved")))
    if not gids:
        return []
    pipe = store.redis.pipeline(transaction=False)
    for gid in gids:
        pipe.hgetall(layout.group(store, gid))
        pipe.zrange(layout.group(store, gid, "r"), 0, -1, withscores=True)
    replies = pipe.execute()
    return [{"id": gid, "type": fields.get("type", "")}
            for gid, fields, releases in zip(gids, replies[::2], replies[1::2])
            if fields and status(fields, dict(releases)) == "regression"]


def metric_families(store, most):
    """Yield ``monitor_exceptions_total{group,type}``: the ``most`` groups seen last, and how often each happened."""
    gids = store.redis.zrevrange(layout.index(store, "last"), 0, most - 1)
    total = CounterMetricFamily("monitor_exceptions", "Exceptions by group since the group was first seen "
                                "(the groups seen last, at most MONITOR_EXCEPTIONS_MAX_GROUPS).",
                                labels=["group", "type"])
    if gids:
        pipe = store.redis.pipeline(transaction=False)
        for gid in gids:
            pipe.hmget(layout.group(store, gid), "type", "count")
        for gid, (kind, count) in sorted(zip(gids, pipe.execute())):
            if kind is not None:
                total.add_metric([gid, kind], int(count or 0))
    yield total
