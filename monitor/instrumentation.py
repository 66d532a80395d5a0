"""The monitor's request hooks: its only app-wide ``before_request`` and ``after_request``.

A request to the host app pays for these two and nothing else of the monitor (an exception
the app does not handle reaches a receiver of Flask's ``got_request_exception``). Each reads
the request context once (every access through Flask's ``request`` proxy costs about a
microsecond) and splits at once on the path: the monitor's own routes get the cross-site
check, JSON answers to routing errors under the API and the security headers
(``security.py``) and are never counted; a host-app request is timed and counted by
endpoint rule, method and status class (``metrics.Recorder``: one ``perf_counter_ns`` at
each end, a tuple key and a histogram bucket increment, in process; the flusher ships
it), and profiled only while a CPU session targets this worker or an admin asks
``?_profile=1``. What else the monitor needs per request is scoped to its own
blueprints (the login limiter, Flask-Login's cookie hook) or done lazily (a log record's
request id, the CSP nonce).
"""
from time import perf_counter_ns

from flask import got_request_exception
from flask.globals import _cv_request

from . import metrics, profiling, prometheus
from .api.errors import routing_error
from .security import add_headers, is_own_path, refuse_cross_site

#: WSGI environ key holding the request's start time; absent for the monitor's own routes.
START = "monitor.start_ns"
#: Methods counted under their own name; any other method string counts as "OTHER".
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def init_app(app, monitor):
    """Register the request hooks and the metrics shipper on ``app``."""
    recorder = metrics.Recorder(app.config["MONITOR_METRICS_MAX_SERIES"])
    metrics.init_app(app, monitor, recorder)
    status_class = metrics.STATUS_CLASS
    unmatched = metrics.UNMATCHED
    record = recorder.record
    profile_query = profiling.PROFILE_QUERY
    profiled = profiling.PROFILE

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
        recorder.own_ns += perf_counter_ns() - started
        cpu = monitor.cpu_profiler  # profiling is set up after this module: look it up here
        query = req.query_string
        if cpu.active is not None or (query and profile_query in query):
            profiling.request_start(cpu, req)
        return None

    def _finish(req, started, code):
        ended = perf_counter_ns()
        rule = req.url_rule
        method = req.method
        record((rule.rule if rule is not None else unmatched, method if method in METHODS else "OTHER",
                status_class[code // 100 % 10]), ended - started)
        monitor.counters.in_flight -= 1
        recorder.own_ns += perf_counter_ns() - ended
        recorder.own_n += 1

    def stop_timer(response):
        req = _cv_request.get().request
        environ = req.environ
        if profiled in environ:
            response = profiling.request_end(monitor.cpu_profiler, environ, response)
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
        if profiled in environ:
            profiling.request_end(monitor.cpu_profiler, environ)

    # First before_request and last after_request, so the app's own hooks are timed too.
    app.before_request_funcs.setdefault(None, []).insert(0, start_timer)
    app.after_request_funcs.setdefault(None, []).insert(0, stop_timer)
    got_request_exception.connect(unhandled, app, weak=False)
    app.register_blueprint(prometheus.bp)
    monitor.features["metrics"] = True
