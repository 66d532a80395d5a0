"""The write side: each worker's flusher shipper of its exception groups (the layout is in ``layout``).

The samples' tracebacks are rendered here, in the flusher's thread: source lines are read
(``linecache``) off the request's path.
"""
import json
import linecache

from ...core import buckets
from . import layout
from .collect import SAMPLES


def frames(stack):
    """Return a stack's frames as the API shows them, innermost last, each with its source line."""
    return [{"file": file, "function": function, "line": line, "app": app,
             "code": linecache.getline(path, line).strip()}
            for file, function, line, app, path in stack.frames]


def traceback_text(sample, shown):
    """Return a sample's traceback as Python prints it (source lines, no values)."""
    lines = ["Traceback (most recent call last):"]
    if sample["stack"].dropped:
        lines.append(f"  [{sample['stack'].dropped} outer frames left out]")
    for frame in shown:
        lines.append(f'  File "{frame["file"]}", line {frame["line"]}, in {frame["function"]}')
        if frame["code"]:
            lines.append(f"    {frame['code']}")
    lines.append(f"{sample['type']}: {sample['message']}" if sample["message"] else sample["type"])
    for cause in sample.get("causes", ()):
        lines.append(f"  caused by {cause['type']}: {cause['message']}")
    return "\n".join(lines)


def render(sample, process):
    """Return the JSON of a sample as stored: its traceback rendered, where it ran."""
    stack = sample["stack"]
    shown = frames(stack)
    body = {key: value for key, value in sample.items() if key != "stack"}
    body.update(frames=shown, frames_left_out=stack.dropped, traceback=traceback_text(sample, shown),
                host=process.host, pid=process.pid, release=process.release)
    return json.dumps(body, separators=(",", ":"))


class Shipper:
    """Each tick, add the groups counted since the last one to the fleet's."""

    def __init__(self, monitor, collector):
        self.monitor = monitor
        self.collector = collector

    def __call__(self, pipe, now):
        taken = self.collector.take()
        if not taken:
            return None
        store, process = self.monitor.store, self.monitor.process
        worker = f"{process.host}|{process.pid}"
        keep = layout.RETENTION_S
        for gid, group in taken.items():
            key = layout.group(store, gid)
            pipe.hset(key, mapping={"type": group.type, "culprit": group.culprit, "message": group.message})
            pipe.hincrby(key, "count", group.count)
            for part, mapping in (("e", group.endpoints), ("w", {worker: group.count})):
                for field, n in mapping.items():
                    pipe.hincrby(layout.group(store, gid, part), field, n)
            pipe.zadd(layout.group(store, gid, "r"), {process.release: group.last}, gt=True)
            if group.samples:
                samples = layout.group(store, gid, "s")
                pipe.lpush(samples, *(render(sample, process) for sample in group.samples))
                pipe.ltrim(samples, 0, SAMPLES - 1)
            for part in (None, "e", "w", "r", "s"):
                pipe.expire(layout.group(store, gid, part), keep)
            pipe.zadd(layout.index(store, "last"), {gid: group.last}, gt=True)
            pipe.zadd(layout.index(store, "first"), {gid: group.first}, lt=True)
            for size in buckets.TIERS:
                for minute, n in group.minutes.items():
                    pipe.hincrby(layout.bucket(store, size, buckets.start(minute, size)), gid, n)
        for size in buckets.TIERS:
            for begin in {buckets.start(minute, size) for group in taken.values() for minute in group.minutes}:
                pipe.expireat(layout.bucket(store, size, begin), buckets.expires(size, begin))
        for name in ("last", "first"):
            pipe.zremrangebyscore(layout.index(store, name), "-inf", now - keep)
            pipe.expire(layout.index(store, name), keep)

        def undo():
            self.collector.put_back(taken)
        return undo
