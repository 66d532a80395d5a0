"""The read side of the log stream: newest first, filtered, a page at a time with a cursor."""
import re

import redis

from ...core.audit import CURSOR_RE
from ...core.errors import Refused
from .handler import LEVELS, stream_key

#: Stream entries one read scans at most; past it the answer's ``next`` continues the scan.
SCAN_LIMIT = 20000
#: A request id (``web/request_id.py``): the process id and a counter, in hex.
REQUEST_ID_RE = re.compile(r"[0-9a-f]{1,8}-[0-9a-f]{1,16}")


def _level(args):
    level = (args.get("level") or "DEBUG").upper()
    if level not in LEVELS:
        raise Refused(f"level must be one of {', '.join(LEVELS)}")
    return level


def _q(args):
    q = args.get("q") or ""
    if len(q) > 200:
        raise Refused("q must be at most 200 characters")
    return q.strip()


def _host(args):
    return (args.get("host") or "").strip() or None


def _pid(args):
    pid = args.get("pid") or None
    if pid is not None and not re.fullmatch(r"[0-9]{1,10}", pid):
        raise Refused("pid must be a whole number")
    return None if pid is None else int(pid)


def _request_id(args):
    rid = (args.get("request_id") or "").strip() or None
    if rid is not None and not REQUEST_ID_RE.fullmatch(rid):
        raise Refused("request_id is a request id, such as 1f3a-2c")
    return rid


def _before(args):
    before = args.get("before") or None
    if before and not CURSOR_RE.fullmatch(before):
        raise Refused("before is the id of an entry, such as 1700000000000-0")
    return before


FILTERS = {"level": _level, "q": _q, "host": _host, "pid": _pid, "request_id": _request_id, "before": _before}


def parse_filters(args, errors=None):
    """Return the read filters from query ``args``, or refuse, naming what is accepted.

    With ``errors`` (a dict), a bad field is not refused: it is left at its default and its
    message put in ``errors`` under its name, so the other filters still apply.
    """
    filters = {}
    for name, parse in FILTERS.items():
        try:
            filters[name] = parse(args)
        except Refused as exc:
            if errors is None:
                raise
            errors[name] = exc.detail
            filters[name] = parse({})
    return filters


def _matches(fields, min_level, needle, host, pid, rid=None):
    if LEVELS.get(fields.get("level"), 0) < min_level:
        return False
    if rid is not None and fields.get("request_id") != rid:
        return False
    if host is not None and fields.get("host") != host:
        return False
    if pid is not None and fields.get("pid") != str(pid):
        return False
    if needle and needle not in fields.get("message", "").lower() and needle not in fields.get("logger", "").lower() \
            and needle not in fields.get("exc_text", "").lower():
        return False
    return True


def query(store, level="DEBUG", q="", host=None, pid=None, request_id=None, limit=100, before=None, after=None):
    """Return ``{"entries": [...], "next": cursor|None}``, newest first, older than ``before``
    (and, for a tail, newer than ``after``); ``request_id``: the lines one request logged."""
    min_level, needle = LEVELS[level], q.lower()
    key = stream_key(store)
    entries, cursor, scanned = [], before, 0
    batch = min(1000, max(limit * 2, 100))
    exhausted = False
    while len(entries) < limit and scanned < SCAN_LIMIT:
        raw = store.redis.xrevrange(key, max=f"({cursor}" if cursor else "+", min=f"({after}" if after else "-",
                                    count=batch)
        if not raw:
            exhausted = True
            break
        for entry_id, fields in raw:
            cursor = entry_id
            scanned += 1
            if _matches(fields, min_level, needle, host, pid, request_id):
                entries.append(_entry(entry_id, fields))
                if len(entries) == limit:
                    break
        if len(raw) < batch and len(entries) < limit:
            exhausted = True
            break
    return {"entries": entries, "next": None if exhausted else cursor}


def _entry(entry_id, fields):
    entry = {"id": entry_id, "ts": float(fields.get("ts", 0)), "level": fields.get("level", ""),
             "logger": fields.get("logger", ""), "message": fields.get("message", ""),
             "host": fields.get("host", ""), "pid": int(fields.get("pid") or 0)}
    for optional in ("exc_text", "request_id"):
        if optional in fields:
            entry[optional] = fields[optional]
    return entry


def lines(store, since, until, limit=SCAN_LIMIT):
    """Return the stream's records logged between ``since`` and ``until`` (epoch s), newest first.

    At most ``limit`` are read: the answer's ``since`` is then the time of the oldest one read,
    so a caller turning them into a rate divides by the span they cover. A record is shipped
    up to a flush after it was logged, so entries are found by id with slack and kept by time.
    """
    raw = store.redis.xrevrange(stream_key(store), max=str(int((until + 5) * 1000)),
                                min=str(int(max(since - 5, 0) * 1000)), count=limit)
    found = [fields for _, fields in raw if since <= float(fields.get("ts", 0)) <= until]
    covered = since if len(raw) < limit or not found else float(found[-1]["ts"])
    return {"lines": found, "since": covered}


def count(found, level="DEBUG", q="", host=None):
    """Return how many of ``found`` (records from ``lines``) are at ``level`` or above, contain ``q``, are from ``host``."""
    min_level, needle = LEVELS[level], q.lower()
    return sum(1 for fields in found if _matches(fields, min_level, needle, host, None))


def last_id(store):
    """Return the id of the stream's newest entry (the tail's cursor), or None when it is empty."""
    newest = store.redis.xrevrange(stream_key(store), count=1)
    return newest[0][0] if newest else None


def stats(store):
    """Return the stream's length and the drops counted per process."""
    try:
        pipe = store.redis.pipeline(transaction=False)
        pipe.xlen(stream_key(store))
        pipe.hgetall(store.key("logs", "dropped"))
        length, dropped = pipe.execute()
    except redis.RedisError:
        return {"length": None, "dropped": None}
    return {"length": length, "dropped": sum(int(v) for v in dropped.values())}
