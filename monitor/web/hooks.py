"""The monitor's request hooks: its only app-wide ``before_request`` and ``after_request``.

A request to the host app pays for these two and nothing else of the monitor (an exception
the app does not handle reaches a receiver of Flask's ``got_request_exception``). Each reads
the request context once (every access through Flask's ``request`` proxy costs about a
microsecond) and splits at once on the path: the monitor's own routes get the cross-site
check, JSON answers to routing errors under the API and the security headers
(``security.py``) and are never counted; a host-app request is timed and counted by
endpoint rule, method and status class (the metrics capability's ``Recorder``: one
``perf_counter_ns`` at each end, a tuple key and a histogram bucket increment, in process;
the flusher ships it). A capability that needs a look at some requests (on-demand
profiling) adds a *probe*: its ``begin(req)`` runs for every host-app request and returns a
token only for the requests it takes (else None), and ``end(token, response)`` runs for
those alone. What else the monitor needs per request is scoped to its own blueprints (the
login limiter, the monitor's own session and user) or done lazily (a log record's request id, the
CSP nonce).
"""
from time import perf_counter_ns

from flask import got_request_exception
from flask.globals import _cv_request

from .responses import routing_error
from .security import add_headers, refuse_cross_site

#: WSGI environ key holding the request's start time; absent for the monitor's own routes.
START = "monitor.start_ns"
#: WSGI environ key of the probes' tokens for a request one of them took.
PROBED = "monitor.probed"
#: Methods counted under their own name; any other method string counts as "OTHER".
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
#: Status class by ``status // 100`` (0..9); codes past 599 count as server errors.
STATUS_CLASS = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx", "5xx", "5xx", "5xx", "5xx")
UNMATCHED = "<unmatched>"


def init_app(app, monitor):
    """Register the request hooks on ``app``."""
    recorder = monitor.recorder
    record = recorder.record if recorder is not None else None
    probes = monitor.probes
    is_own_path = monitor.urls.is_own_path

    def start_timer():
        started = perf_counter_ns()
        if not monitor.started:  # the first request after a fork starts this worker's flusher
            monitor.start_worker()
        req = _cv_request.get().request
        if is_own_path(req.path):
            return refuse_cross_site(req) or routing_error(req)
        environ = req.environ
        environ[START] = started
        counters = monitor.counters
        counters.requests += 1
        counters.in_flight += 1
        if recorder is not None:
            recorder.own_ns += perf_counter_ns() - started
        if probes:
            tokens = [(probe, token) for probe in probes if (token := probe.begin(req)) is not None]
            if tokens:
                environ[PROBED] = tokens
        return None

    def _finish(req, started, code):
        ended = perf_counter_ns()
        monitor.counters.in_flight -= 1
        if record is None:
            return
        rule = req.url_rule
        method = req.method
        record((rule.rule if rule is not None else UNMATCHED, method if method in METHODS else "OTHER",
                STATUS_CLASS[code // 100 % 10]), ended - started)
        recorder.own_ns += perf_counter_ns() - ended
        recorder.own_n += 1

    def stop_timer(response):
        req = _cv_request.get().request
        environ = req.environ
        if PROBED in environ:
            for probe, token in environ.pop(PROBED):
                response = probe.end(token, response)
        started = environ.pop(START, None)
        if started is not None:
            _finish(req, started, response.status_code)
        elif is_own_path(req.path):
            add_headers(response, req)
        return response

    def unhandled(sender, exception, **extra):
        # Flask may re-raise it (PROPAGATE_EXCEPTIONS), and then no after_request hook runs:
        # count the server error now (a teardown hook would cost every request a call).
        req = _cv_request.get().request
        environ = req.environ
        if START in environ:
            _finish(req, environ.pop(START), 500)
        for probe, token in environ.pop(PROBED, ()):
            probe.end(token, None)

    # First before_request and last after_request, so the app's own hooks are timed too.
    app.before_request_funcs.setdefault(None, []).insert(0, start_timer)
    app.after_request_funcs.setdefault(None, []).insert(0, stop_timer)
    got_request_exception.connect(unhandled, app, weak=False)
