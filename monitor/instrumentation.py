"""Request hooks: time every host-app request and count it by endpoint rule, method and status class.

The hot path stays in the process: one ``perf_counter_ns`` at each end, a tuple key and a
histogram bucket increment in :class:`monitor.metrics.Recorder`; the flusher ships it.
"""
from time import perf_counter_ns

from flask.globals import _cv_request

from . import metrics, prometheus
from .security import is_own_path

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

    # The request context is read straight from Flask's context variable: each access
    # through the ``request`` proxy costs about as much as all the rest of a hook.
    def start_timer():
        started = perf_counter_ns()
        req = _cv_request.get().request
        if is_own_path(req.path):
            return
        req.environ[START] = started
        counters = monitor.counters
        counters.requests += 1
        counters.in_flight += 1
        recorder.own_ns += perf_counter_ns() - started

    def _finish(code):
        ended = perf_counter_ns()
        req = _cv_request.get().request
        started = req.environ.pop(START, None)
        if started is None:
            return
        rule = req.url_rule
        method = req.method
        record((rule.rule if rule is not None else unmatched, method if method in METHODS else "OTHER",
                status_class[code // 100 % 10]), ended - started)
        monitor.counters.in_flight -= 1
        recorder.own_ns += perf_counter_ns() - ended
        recorder.own_n += 1

    def stop_timer(response):
        _finish(response.status_code)
        return response

    def unhandled(exc):
        # Runs after stop_timer, which already popped START, unless an exception escaped
        # the app (PROPAGATE_EXCEPTIONS): then the request counts as a server error.
        if START in _cv_request.get().request.environ:
            _finish(500)

    # First before_request and last after_request, so the app's own hooks are timed too.
    app.before_request_funcs.setdefault(None, []).insert(0, start_timer)
    app.after_request_funcs.setdefault(None, []).insert(0, stop_timer)
    app.teardown_request(unhandled)
    app.register_blueprint(prometheus.bp)
    monitor.features["metrics"] = True
