"""JSON API: GET /api/admin/requests/slow, the fleet's slowest requests over a window."""
from flask import jsonify, request

from ...api.args import int_arg
from ...auth.decorators import role_required
from ...core import buckets
from ...core.errors import Refused
from ...core.state import state
from . import query

DEFAULT_WINDOW_S = 3600
#: Longest endpoint rule the filter takes.
MAX_RULE = 300


def endpoint_arg():
    """Return the ``endpoint`` query argument (an endpoint rule such as ``/demo/sleep``), or None."""
    rule = request.args.get("endpoint") or None
    if rule is not None and (len(rule) > MAX_RULE or not rule.startswith(("/", "<"))):
        raise Refused(f"endpoint is a URL rule such as /demo/sleep (at most {MAX_RULE} characters)")
    return rule


def register(bp):
    """Add the slow-requests route to the API blueprint."""

    @bp.get("/requests/slow")
    @role_required("viewer")
    def slow_requests():
        """The slowest requests over ``window`` seconds (of one endpoint rule), slowest first."""
        window = int_arg("window", DEFAULT_WINDOW_S, 10, buckets.MAX_WINDOW_S)
        monitor = state()
        return jsonify(query.report(monitor.store, monitor.slow_requests, window, endpoint_arg()))
