"""Outgoing HTTP through urllib3 (so ``requests``) and ``httpx``: one patch each, once per process.

``HTTPConnectionPool.urlopen`` (every urllib3 request, HTTPS too) and the transports'
``handle_request`` / ``handle_async_request`` (httpx's own connection layer) are wrapped, when
the library is installed, so a call is timed from its start to its response's headers (the
body is read later, by the caller). A library that is not installed is not imported, and costs
nothing. Only the scheme, host, port, method and the path without its query are looked at,
never the query, headers or body; ids in the path collapse (``/users/123/orders`` →
``/users/{id}/orders``).

The monitor's own calls are not counted: calls made on its threads (named ``monitor-...``:
the flusher, alert webhooks, the traffic generator) or while serving its own routes.
"""
import contextvars
import functools
import operator
import re
import threading
from time import perf_counter_ns
from urllib.parse import urlsplit

from ..queries.tally import NO_REQUEST, OVERFLOW, Tally, endpoint_of, in_context

#: The libraries this process patched, in order ("urllib3", "httpx").
patched = []
_patching = threading.Lock()
#: True while a wrapped call runs: urllib3 retries by calling ``urlopen`` again, counted once.
_inside = contextvars.ContextVar("monitor_outgoing_inside", default=False)
#: Thread names of the monitor's own threads.
OWN_THREADS = "monitor-"
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Raw (scheme, host, port, method, path) targets whose group id is remembered (see queries' MEMO).
MEMO = 4096
#: Path segments kept in a template; the rest reads ``…``.
MAX_SEGMENTS = 12
_ID = re.compile(r"""
    \d+                                                 # 123
  | [0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}   # a UUID
  | [0-9a-fA-F]{16,}                                    # a hash, a hex id
  | (?=[^/]*\d)[\w.~%=+-]{20,}                          # a long token with a digit (base64 ids, keys)
  | [^/]*@[^/]*                                         # an e-mail address
  | [^/]*%[0-9a-fA-F]{2}[^/]*                           # anything percent-encoded
""", re.X)

#: The collector of the app that last started the outgoing capability: calls outside any app
#: context (a thread of the host's own) are counted there, under NO_REQUEST.
default = None


def template(path):
    """Return ``path`` without its query, ids collapsed: ``/users/123/orders?x=1`` → ``/users/{id}/orders``."""
    path = path.split("?", 1)[0].split("#", 1)[0] or "/"
    segments = path.split("/")
    if len(segments) > MAX_SEGMENTS + 1:
        segments = segments[:MAX_SEGMENTS + 1] + ["…"]
    return "/".join("{id}" if _ID.fullmatch(segment) else segment for segment in segments)


def host_label(scheme, host, port):
    """Return ``host``, or ``host:port`` when the port is not the scheme's own."""
    host = (host or "").lower()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6
    return host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"


class CallCollector:
    """One app's outgoing-call tally and its group-id memo."""

    def __init__(self, max_groups):
        self.tally = Tally(max_groups, [OVERFLOW, OVERFLOW, OVERFLOW])
        self.memo = {}

    def record(self, endpoint, scheme, host, port, method, path, ns, status):
        """Count one call that took ``ns`` and answered ``status`` (None: it raised)."""
        path = path.split("?", 1)[0]  # the query never goes further, not even into the memo
        if path.startswith(("http://", "https://")):  # through an HTTP proxy: the absolute URL
            url = urlsplit(path)
            scheme, host, port, path = url.scheme, url.hostname, url.port, url.path
        raw = (scheme, host, port, method, path)
        gid = self.memo.get(raw)
        if gid is None:
            gid = self.tally.admit([host_label(scheme, host, port), method.upper(), template(path)])
            if len(self.memo) >= MEMO:
                self.memo.clear()
            self.memo[raw] = gid
        self.tally.record(gid, ns, int(status is None or status >= 500), endpoint, status)


def _collector():
    """Return (collector, endpoint) for a call made now, or (None, None) when it is not counted."""
    if _inside.get():
        return None, None
    req, collector = in_context("outgoing", default)
    if collector is None:
        return None, None
    if req is None:
        if threading.current_thread().name.startswith(OWN_THREADS):
            return None, None
        return collector, NO_REQUEST
    endpoint = endpoint_of(req)
    return (collector, endpoint) if endpoint else (None, None)


def _urllib3_target(pool, method, url, *args, **kwargs):
    return pool.scheme, pool.host, pool.port, method, url


def _httpx_target(transport, request):
    url = request.url
    return url.scheme, url.host, url.port, request.method, url.path


class _Timing:
    """Time one outermost call and record it on exit: ``status`` as set, None when it raised."""

    __slots__ = ("target", "args", "kwargs", "collector", "endpoint", "token", "started", "status")

    def __init__(self, target, args, kwargs):
        self.target, self.args, self.kwargs, self.status = target, args, kwargs, None

    def __enter__(self):
        self.collector, self.endpoint = _collector()
        if self.collector is not None:
            self.token = _inside.set(True)
            self.started = perf_counter_ns()
        return self

    def __exit__(self, *exc_info):
        if self.collector is not None:
            ns = perf_counter_ns() - self.started
            _inside.reset(self.token)
            self.collector.record(self.endpoint, *self.target(*self.args, **self.kwargs), ns, self.status)


def _timed(call, target, status_of):
    """Wrap method ``call`` so that each outermost call is timed and recorded.

    ``target(self, *args, **kwargs)`` returns the call's (scheme, host, port, method, path),
    ``status_of(response)`` its status.
    """
    @functools.wraps(call)
    def timed(owner, *args, **kwargs):
        with _Timing(target, (owner, *args), kwargs) as timing:
            response = call(owner, *args, **kwargs)
            timing.status = status_of(response)
            return response
    return timed


def _timed_async(call, target, status_of):
    """``_timed`` for a coroutine method (httpx's async transport)."""
    @functools.wraps(call)
    async def timed(owner, *args, **kwargs):
        with _Timing(target, (owner, *args), kwargs) as timing:
            response = await call(owner, *args, **kwargs)
            timing.status = status_of(response)
            return response
    return timed


def install():
    """Patch urllib3 and httpx, those installed, once per process; return what is patched."""
    with _patching:
        if "urllib3" not in patched:
            try:
                from urllib3.connectionpool import HTTPConnectionPool
            except ImportError:
                pass
            else:
                HTTPConnectionPool.urlopen = _timed(HTTPConnectionPool.urlopen, _urllib3_target,
                                                    operator.attrgetter("status"))
                patched.append("urllib3")
        if "httpx" not in patched:
            try:
                import httpx
            except ImportError:
                pass
            else:
                status_code = operator.attrgetter("status_code")
                httpx.HTTPTransport.handle_request = _timed(
                    httpx.HTTPTransport.handle_request, _httpx_target, status_code)
                httpx.AsyncHTTPTransport.handle_async_request = _timed_async(
                    httpx.AsyncHTTPTransport.handle_async_request, _httpx_target, status_code)
                patched.append("httpx")
    return list(patched)
