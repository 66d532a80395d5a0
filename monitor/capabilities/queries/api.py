"""JSON API: GET /api/admin/queries, the fleet's SQL over a window."""
from flask import jsonify

from ...api.args import int_arg
from ...auth.decorators import role_required
from ...core.state import state
from . import query
from .tally import DEFAULT_WINDOW_S, MAX_WINDOW_S


def register(bp):
    """Add the queries route to the API blueprint."""

    @bp.get("/queries")
    @role_required("viewer")
    def get_queries():
        """Statements, slowest executions, N+1 findings and per-endpoint SQL over ``window`` seconds."""
        window = int_arg("window", DEFAULT_WINDOW_S, 10, MAX_WINDOW_S)
        monitor = state()
        return jsonify(query.report(monitor.store, window, monitor.config["MONITOR_NPLUSONE_THRESHOLD"]))
