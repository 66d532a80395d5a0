"""The monitor's one timing point: ``app.full_dispatch_request``, wrapped; nothing else app-wide.

Flask's ``wsgi_app`` calls ``self.full_dispatch_request()``, which runs the before-request
hooks, the view, the error handlers and the after-request hooks. An instance attribute of
that name shadows the method, so the monitor's wrapper sees every request once, with the
request context pushed and routing done, at the price of one extra Python call: no
app-wide hook (each costs Flask an ``ensure_sync`` call on every request), no signal.

- A request to one of the monitor's own routes (a rule of a blueprint it registered) goes
  straight through: its blueprints carry their own hooks (``security.init_app``).
- A request that matched no rule takes the slow path: under an own path it is answered by
  the monitor (JSON routing errors under the API, security headers), else it is counted
  under ``<unmatched>``.
- A host-app request is timed (``perf_counter_ns`` at each end) and left in
  ``monitor.requests`` (``core/state.py``): its thread → rule label in ``running`` while it
  runs, one tuple appended to ``ended`` when it ends, aggregated by the flusher. An exception
  that escapes the app counts as a 500 and is handed to each of ``monitor.exception_sinks``
  (with the request, its rule label and its duration).

The capabilities that need a look at host-app requests plug in here, each at one place:
``monitor.probe`` (on-demand profiling: ``probe.active`` or ``probe.marker`` in the query
string decide whether ``probe.wrap`` runs the request), ``monitor.exception_sinks`` (called
only when a request raised) and ``monitor.slow`` (``(threshold_ns, sink)``: the sink sees the
requests that took at least the threshold, a raising one as a 500). Each absent one costs a
request nothing but the test that it is absent. The continuous profiler's sampler reads
``running`` and adds nothing per request.

Each piece is what measured cheapest in a whole app (``bench/bench_request_cost.py``): a
label by ``id(rule)`` in a dict, attributes read plainly (no property), no counter
incremented (in flight and ended totals are the lengths of ``running`` and ``ended``), two
clock reads. The wrapper's own time (everything but the inner call) is added up, over one
request in ``SAMPLE + 1``, in ``monitor.requests`` (``own_ns``, ``own_n``) for the metrics
panel's "monitor's own cost".
"""
from threading import get_ident
from time import perf_counter_ns

from flask.globals import _cv_request

from .responses import routing_error
from .security import add_headers, refuse_cross_site

#: One request in SAMPLE + 1 (by the low bits of its start time) adds the timing point's own
#: time (all but the call it wraps) to ``monitor.requests.own_ns``: the panel's request-path cost.
SAMPLE = 63
#: Methods counted under their own name; any other method string counts as "OTHER".
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
#: Status class by ``status // 100`` (0..9); codes past 599 count as server errors.
STATUS_CLASS = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx", "5xx", "5xx", "5xx", "5xx")
UNMATCHED = "<unmatched>"
#: The label of a rule of the monitor's own blueprints: such requests are not counted.
OWN = object()
#: A threshold no request reaches: no slow-request sink.
NEVER = 1 << 62


def init_app(app, monitor):
    """Wrap ``app.full_dispatch_request`` with the timing point (again: the original, not the wrapper)."""
    dispatch = getattr(app.full_dispatch_request, "monitor_wrapped", app.full_dispatch_request)
    app.full_dispatch_request = timing_point(app, dispatch, monitor)
    app.full_dispatch_request.monitor_wrapped = dispatch


def timing_point(app, dispatch, monitor):
    """Return the wrapper of ``dispatch`` (Flask's ``full_dispatch_request``, bound) that times and counts."""
    requests = monitor.requests
    running, record = requests.running, requests.ended.append
    probe = monitor.probe
    slow_ns, slow = monitor.slow or (NEVER, None)
    is_own_path = monitor.urls.is_own_path
    own_blueprints = monitor.urls.blueprints
    labels = {}  # id(rule) → the rule's series label, or OWN; the rules live as long as the app

    def label_of(req):
        """Return the label of a rule seen for the first time, UNMATCHED, or None for an own path with no rule."""
        rule = req.url_rule
        if rule is None:
            return None if is_own_path(req.path) else UNMATCHED
        own = rule.endpoint.partition(".")[0] in own_blueprints
        label = labels[id(rule)] = OWN if own else rule.rule
        return label

    def timed():
        if not monitor.started:  # the first request after a fork starts this worker's flusher
            monitor.start_worker()
        started = perf_counter_ns()
        req = _cv_request.get().request
        label = labels.get(id(req.url_rule))
        if label is None:
            label = label_of(req)
            if label is None:
                return own_routing_error(req)
        if label is OWN:
            return dispatch()
        inner = dispatch
        if probe is not None and (probe.active or (req.query_string and probe.marker in req.query_string)):
            inner = probe.wrap(req, dispatch)
        ident = get_ident()
        running[ident] = label
        sampled = not started & SAMPLE
        if sampled:
            entered = perf_counter_ns()
        try:
            response = inner()
        except BaseException as exc:
            ns = perf_counter_ns() - started
            running.pop(ident, None)
            record((label, req.method, 500, ns))
            if ns >= slow_ns:
                slow(req, label, 500, ns)
            for sink in monitor.exception_sinks:
                sink(exc, req, label, ns)
            raise
        ended = perf_counter_ns()
        del running[ident]
        ns = ended - started
        status = response.status_code
        record((label, req.method, status, ns))
        if ns >= slow_ns:
            slow(req, label, status, ns)
        if sampled:
            requests.own_ns += entered - started + perf_counter_ns() - ended
            requests.own_n += 1
        return response

    def own_routing_error(req):
        """Answer a request under an own path that matched no rule (no blueprint hook runs for it)."""
        answer = refuse_cross_site(req) or routing_error(req)
        response = app.finalize_request(answer) if answer is not None else dispatch()
        return add_headers(response, req)

    return timed
