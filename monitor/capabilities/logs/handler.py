"""Every process's log records, buffered in process and shipped to one capped Redis stream.

A :class:`StreamHandler` turns each record into a small dict and appends it to a bounded
in-process deque; it never does I/O, never blocks, and counts what it drops when the deque
is full. The flusher's shipper XADDs the buffered records to one stream capped by
``MONITOR_LOG_MAXLEN`` (approximate MAXLEN).

The handler sits on no logger: it sees each record as logging makes it (a watcher of
``core.records``, the one record-factory wrapper), so every record that a logger's level
lets through reaches it, and the host app's logging is as the app set it up.
"""
import collections
import logging
import os
import threading

from ...core import records
from ...core.flusher import Flusher
from ...core.secrets import PRIVATE
from ...web.request_id import request_id

#: Level numbers by name, lowest first.
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
#: Records of these loggers are not shipped: they may be about the shipping itself, or (the access
#: log, one line a request, which the metrics count) would flood the stream.
SKIP = ("redis", "urllib3", "monitor.capabilities.logs", "monitor.core.flusher", "gunicorn.access")
#: Longest message and exception text kept, in characters.
MAX_MESSAGE = 8000
MAX_EXC = 16000
#: Records XADDed per flusher tick at most; the rest waits for the next tick.
SHIP_BATCH = 5000
#: Stream retention: the key expires this long after the last record shipped.
TTL_S = 30 * 86400

#: The attribute of a record that carries a secret (``core.secrets.PRIVATE``): never shipped.
PRIVATE_MARK = next(iter(PRIVATE))

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
            # The record rides along: its ``extra`` (the private mark) is set after the factory
            # that hands it here, so the shipper looks at it then.
            self.buffer.append((record, self.entry(record)))
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
            for record, fields in batch:
                if not hasattr(record, PRIVATE_MARK):
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
    """Make the process's handler and have it see every record made from now on (it replaces the
    one before, e.g. inherited through a fork)."""
    handler = StreamHandler(host, capacity, maxlen, level)

    def capture(record):
        if record.levelno >= handler.level:
            handler.handle(record)
    records.watch("logs", capture)
    return handler


def install_master(store, settings, host):
    """Ship the gunicorn master's own records with a flusher of its own; return the flusher."""
    handler = install(host, settings["MONITOR_LOG_BUFFER"], settings["MONITOR_LOG_MAXLEN"],
                      LEVELS[settings["MONITOR_LOG_LEVEL"]])
    flusher = Flusher(store, settings["MONITOR_FLUSH_INTERVAL"])
    flusher.add_shipper(handler.ship(store))
    flusher.start()
    return flusher
