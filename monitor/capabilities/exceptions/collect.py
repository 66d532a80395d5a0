"""Each process's exceptions since its last flush, grouped, with a few samples: work done only on failure.

Two ways in, neither on a normal request's path:

- ``request_failed(exc, req, label, ns)``, the timing point's exception sink: an exception
  that escaped a host-app request (already counted as a 500);
- ``logged(record)``, a watcher of log records (``core.records``): a record carrying an
  exception (``logger.exception(...)``) made outside any request. Inside a request it is
  left alone: an unhandled exception reaches the sink (and Flask logs it too), a handled one
  is the app's business.

Per group, until the flusher takes them: the count, the first and last time, counts per
minute and per endpoint, the latest message, and up to ``SAMPLES`` samples, each made from
the request while it is still there. A burst of identical exceptions costs each one a walk
of its traceback, a lookup of its stack (``fingerprint.Stacks``) and a few counts; only the
samples take more, and there are at most ``SAMPLES`` a group a flush.

Nothing of the request's headers or cookies is kept, and of its query only the names. Any
value of its query, its cookies or its headers (but the few harmless ones, such as Accept)
that an exception's message repeats is replaced by ``[redacted]``.
"""
import logging
import threading
import time

from flask.globals import _cv_request

from ...web.request_id import request_id
from .fingerprint import Stacks, group_id, type_name

log = logging.getLogger(__name__)

#: Samples kept per group (in Redis, the newest), and made per group and flush at most.
SAMPLES = 5
MAX_MESSAGE = 1000
REDACTED = "[redacted]"
#: Values shorter than this are not looked for in a message (a one-digit page number would eat every digit).
MIN_QUERY_VALUE = 4
MIN_HEADER_VALUE = 8
#: Headers whose values say nothing about who asked: left in messages.
HARMLESS = frozenset(("host", "accept", "accept-encoding", "accept-language", "content-type", "content-length",
                      "connection", "user-agent", "cache-control", "pragma", "te", "upgrade-insecure-requests"))
#: The group of a process's exceptions past MONITOR_EXCEPTIONS_MAX_GROUPS distinct groups.
OVERFLOW_ID = "overflow"
OVERFLOW_TYPE = "<overflow>"
#: The endpoint of exceptions logged outside any request.
NO_REQUEST = "<no request>"
#: Chained exceptions (``raise ... from``, or raised while handling another) a sample names.
MAX_CAUSES = 3


class Group:
    """One group's occurrences in this process since the last flush."""

    __slots__ = ("type", "culprit", "message", "count", "first", "last", "minutes", "endpoints", "samples")

    def __init__(self, type_, culprit):
        self.type, self.culprit, self.message = type_, culprit, ""
        self.count, self.first, self.last = 0, float("inf"), 0.0
        self.minutes, self.endpoints, self.samples = {}, {}, []

    def add(self, other):
        """Add ``other``'s occurrences (an earlier delta put back), keeping the newest message and samples."""
        self.count += other.count
        self.first, self.last = min(self.first, other.first), max(self.last, other.last)
        self.message = self.message or other.message
        for into, more in ((self.minutes, other.minutes), (self.endpoints, other.endpoints)):
            for key, n in more.items():
                into[key] = into.get(key, 0) + n
        self.samples = (other.samples + self.samples)[-SAMPLES:]


def _message(exc):
    try:
        text = str(exc)
    except Exception:  # a broken __str__ of the app's exception must not hide it
        text = f"<{type(exc).__name__} with an unprintable message>"
    return text[:MAX_MESSAGE]


def request_values(req):
    """Return the values of a request's query, cookies and headers that a message must not show."""
    values = [v for _, v in req.args.items(multi=True) if len(v) >= MIN_QUERY_VALUE]
    values += [v for _, v in req.cookies.items(multi=True) if len(v) >= MIN_QUERY_VALUE]
    values += [v for name, v in req.headers.items()
               if len(v) >= MIN_HEADER_VALUE and name.lower() not in HARMLESS and not name.lower().startswith("sec-")]
    return sorted(set(values), key=len, reverse=True)


def redact(text, values):
    """Return ``text`` with each of ``values`` replaced by ``[redacted]``."""
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def causes(exc, values):
    """Return ``[{type, message}]`` of the exceptions chained below ``exc`` (its cause, or the one it interrupted)."""
    found = []
    inner = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    while inner is not None and len(found) < MAX_CAUSES:
        found.append({"type": type_name(type(inner)), "message": redact(_message(inner), values)})
        inner = inner.__cause__ or (None if inner.__suppress_context__ else inner.__context__)
    return found


class Collector:
    """One app's exception groups since the last flush (a lock: requests and the flusher share them)."""

    def __init__(self, max_groups, extension):
        self.max_groups = max_groups
        self.extension = extension  # the Monitor: the host's fingerprint and user callbacks
        self.stacks = Stacks()
        self.lock = threading.Lock()
        self.groups = {}
        #: Group ids this process has counted (the cap applies to them).
        self.admitted = set()

    def _host_callback(self, name, *args):
        callback = getattr(self.extension, name)
        if callback is None:
            return None
        try:
            return callback(*args)
        except Exception:  # the host's callback failing must not cost the exception its count
            log.debug("monitor: %s failed", name, exc_info=True)
            return None

    def _gid(self, exc, stack):
        custom = self._host_callback("fingerprint_callback", exc)
        return group_id(f"custom\n{custom}") if custom else stack.gid

    def request_failed(self, exc, req, label, ns):
        """Count an exception that escaped a host-app request (the timing point's sink)."""
        values = request_values(req)
        self.add(exc, f"{req.method} {label}", redact(_message(exc), values), lambda: {
            "method": req.method, "path": req.path, "query": sorted(set(req.args)), "endpoint": f"{req.method} {label}",
            "request_id": request_id(), "user": self._host_callback("request_user_callback"),
            "duration_ms": round(ns / 1e6, 3), "causes": causes(exc, values)})

    def logged(self, record):
        """Count an exception logged (``logger.exception``) outside any request (a ``core.records`` watcher)."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or _cv_request.get(None) is not None:
            return
        self.add(exc, NO_REQUEST, _message(exc), lambda: {
            "logger": record.name, "log_message": record.getMessage()[:MAX_MESSAGE], "endpoint": NO_REQUEST,
            "causes": causes(exc, ())})

    def add(self, exc, endpoint, message, sample):
        """Count one occurrence; ``sample()`` makes its sample, called only while the group wants more."""
        stack = self.stacks.of(exc)
        gid = self._gid(exc, stack)
        now = time.time()
        with self.lock:
            group = self.groups.get(gid)
            if group is None:
                if gid not in self.admitted and len(self.admitted) >= self.max_groups:
                    gid, stack = OVERFLOW_ID, None
                    group = self.groups.get(gid)
                if group is None:
                    group = self.groups[gid] = Group(OVERFLOW_TYPE, "") if stack is None else \
                        Group(stack.type, stack.culprit)
                self.admitted.add(gid)
            group.count += 1
            group.first = min(group.first, now)
            group.last = now
            minute = int(now // 60) * 60
            group.minutes[minute] = group.minutes.get(minute, 0) + 1
            group.endpoints[endpoint] = group.endpoints.get(endpoint, 0) + 1
            group.message = message
            wanted = stack is not None and len(group.samples) < SAMPLES
        if wanted:  # made outside the lock: the request's values are read here
            made = {"time": round(now, 3), "type": stack.type, "message": message, "stack": stack, **sample()}
            with self.lock:
                group = self.groups.get(gid)  # the flusher may have taken the one above meanwhile
                if group is not None and len(group.samples) < SAMPLES:
                    group.samples.append(made)

    def take(self):
        """Swap out the groups counted since the last call: ``{group id: Group}``."""
        with self.lock:
            taken, self.groups = self.groups, {}
        return taken

    def put_back(self, taken):
        """Count again what ``take`` returned (its flush was not sent)."""
        with self.lock:
            for gid, earlier in taken.items():
                group = self.groups.get(gid)
                if group is None:
                    self.groups[gid] = earlier
                else:
                    group.add(earlier)
