"""The logs capability: every process's log records, shipped to one capped Redis stream.

A :class:`StreamHandler` on the root logger, ``gunicorn.error`` and ``werkzeug`` turns each
record into a small dict and appends it to a bounded in-process deque; it never does I/O,
never blocks, and counts what it drops when the deque is full. The flusher's shipper XADDs
the buffered records to one stream capped by ``MONITOR_LOG_MAXLEN`` (approximate MAXLEN).
The read side walks the stream newest first with a cursor.
"""
import collections
import itertools
import logging
import os
import re
import threading

import redis
from flask.globals import _cv_request

from .audit import CURSOR_RE

#: Level names the read side filters by, lowest first.
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
#: Loggers the handler sits on; the root catches everything that propagates.
LOGGERS = ("", "gunicorn.error", "werkzeug")
#: Records of these loggers are not shipped: they may be about the shipping itself.
SKIP = ("redis", "urllib3", "monitor.logs", "monitor.flusher")
#: Longest message and exception text kept, in characters.
MAX_MESSAGE = 8000
MAX_EXC = 16000
#: Records XADDed per flusher tick at most; the rest waits for the next tick.
SHIP_BATCH = 5000
#: Stream entries one read scans at most; past it the answer's ``next`` continues the scan.
SCAN_LIMIT = 20000
#: Stream retention: the key expires this long after the last record shipped.
TTL_S = 30 * 86400

#: WSGI environ key of the request id, drawn when the request first logs a line.
REQUEST_ID = "monitor.request_id"
_request_ids = itertools.count(1)
_busy = threading.local()
_formatter = logging.Formatter()


def stream_key(store):
    return store.key("logs", "stream")


class StreamHandler(logging.Handler):
    """Buffer records for the flusher; drop (and count) rather than block when full."""

    def __init__(self, host, capacity, maxlen, level=logging.INFO):
        super().__init__(level)
        self.host = host
        self.capacity = capacity
        self.maxlen = maxlen
        self.buffer = collections.deque()
        self.dropped = 0
        self.shipped_dropped = 0

    def emit(self, record):
        # A record logged while this thread is already inside emit (or by the Redis client)
        # would loop back here; drop it instead.
        if getattr(_busy, "active", False) or record.name.startswith(SKIP):
            return
        _busy.active = True
        try:
            if len(self.buffer) >= self.capacity:
                self.dropped += 1
                return
            self.buffer.append(self.entry(record))
        except Exception:
            self.dropped += 1
        finally:
            _busy.active = False

    def entry(self, record):
        """Return the stream fields of one record."""
        fields = {"ts": f"{record.created:.3f}", "level": record.levelname, "logger": record.name or "root",
                  "message": record.getMessage()[:MAX_MESSAGE], "host": self.host, "pid": str(record.process)}
        rid = request_id()
        if rid:
            fields["request_id"] = rid
        if record.exc_info:
            fields["exc_text"] = _formatter.formatException(record.exc_info)[:MAX_EXC]
        elif record.exc_text:
            fields["exc_text"] = record.exc_text[:MAX_EXC]
        return fields

    def ship(self, store):
        """Return the flusher shipper that XADDs the buffered records."""
        key = stream_key(store)

        def shipper(pipe, now):
            batch = []
            while self.buffer and len(batch) < SHIP_BATCH:
                batch.append(self.buffer.popleft())
            dropped = self.dropped - self.shipped_dropped
            if not batch and not dropped:
                return None
            for fields in batch:
                pipe.xadd(key, fields, maxlen=self.maxlen, approximate=True)
            pipe.expire(key, TTL_S)
            if dropped:
                drops = store.key("logs", "dropped")
                pipe.hincrby(drops, f"{self.host}|{os.getpid()}", dropped)
                pipe.expire(drops, TTL_S)
                self.shipped_dropped += dropped

            def undo():
                self.shipped_dropped -= dropped
                room = self.capacity - len(self.buffer)
                self.dropped += max(0, len(batch) - room)
                self.buffer.extendleft(reversed(batch[:max(0, room)]))
            return undo
        return shipper


def install(host, capacity, maxlen, level):
    """Put one fresh handler on the logged loggers, replacing one inherited through a fork."""
    handler = StreamHandler(host, capacity, maxlen, level)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, StreamHandler)]:
            logger.removeHandler(old)
        # A logger that propagates reaches the root's handler already.
        if name == "" or not logger.propagate:
            logger.addHandler(handler)
    return handler


def install_master(store, settings, host):
    """Ship the gunicorn master's own records with a flusher of its own; return the flusher."""
    from .flusher import Flusher

    handler = install(host, settings["MONITOR_LOG_BUFFER"], settings["MONITOR_LOG_MAXLEN"],
                      LEVELS[settings["MONITOR_LOG_LEVEL"]])
    flusher = Flusher(store, settings["MONITOR_FLUSH_INTERVAL"])
    flusher.add_shipper(handler.ship(store))
    flusher.start()
    return flusher


def init_app(app, monitor):
    """Install the handler and the shipper."""
    config = app.config
    handler = install(config["MONITOR_HOST_NAME"], config["MONITOR_LOG_BUFFER"], config["MONITOR_LOG_MAXLEN"],
                      LEVELS[config["MONITOR_LOG_LEVEL"]])
    monitor.log_handler = handler
    monitor.flusher.add_shipper(handler.ship(monitor.store))
    monitor.features["logs"] = True


def request_id():
    """Return the id (``<pid hex>-<n hex>``) of the request being served, or None outside one."""
    # Drawn when the request logs its first record: one that logs nothing (most) costs nothing.
    ctx = _cv_request.get(None)
    if ctx is None:
        return None
    environ = ctx.request.environ
    rid = environ.get(REQUEST_ID)
    if rid is None:
        rid = environ[REQUEST_ID] = f"{os.getpid():x}-{next(_request_ids):x}"
    return rid


def parse_filters(args):
    """Return the read filters from query ``args``; raise ValueError naming what is accepted."""
    level = (args.get("level") or "DEBUG").upper()
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    q = args.get("q") or ""
    if len(q) > 200:
        raise ValueError("q must be at most 200 characters")
    q = q.strip()
    host = (args.get("host") or "").strip() or None
    pid = args.get("pid") or None
    if pid is not None:
        if not re.fullmatch(r"[0-9]{1,10}", pid):
            raise ValueError("pid must be a whole number")
        pid = int(pid)
    before = args.get("before") or None
    if before and not CURSOR_RE.fullmatch(before):
        raise ValueError("before is the id of an entry, such as 1700000000000-0")
    return {"level": level, "q": q, "host": host, "pid": pid, "before": before}


def _matches(fields, min_level, needle, host, pid):
    if LEVELS.get(fields.get("level"), 0) < min_level:
        return False
    if host is not None and fields.get("host") != host:
        return False
    if pid is not None and fields.get("pid") != str(pid):
        return False
    if needle and needle not in fields.get("message", "").lower() and needle not in fields.get("logger", "").lower() \
            and needle not in fields.get("exc_text", "").lower():
        return False
    return True


def query(store, level="DEBUG", q="", host=None, pid=None, limit=100, before=None):
    """Return ``{"entries": [...], "next": cursor|None}``, newest first, older than ``before``."""
    min_level, needle = LEVELS[level], q.lower()
    key = stream_key(store)
    entries, cursor, scanned = [], before, 0
    batch = min(1000, max(limit * 2, 100))
    exhausted = False
    while len(entries) < limit and scanned < SCAN_LIMIT:
        raw = store.redis.xrevrange(key, max=f"({cursor}" if cursor else "+", count=batch)
        if not raw:
            exhausted = True
            break
        for entry_id, fields in raw:
            cursor = entry_id
            scanned += 1
            if _matches(fields, min_level, needle, host, pid):
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
