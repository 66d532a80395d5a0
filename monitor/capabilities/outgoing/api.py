"""JSON API: GET /api/admin/outgoing, the fleet's outgoing HTTP calls over a window."""
from flask import jsonify

from ...api.args import int_arg
from ...auth.decorators import role_required
from ...core.state import state
from ..queries.tally import DEFAULT_WINDOW_S, MAX_WINDOW_S
from . import query


def register(bp):
    """Add the outgoing route to the API blueprint."""

    @bp.get("/outgoing")
    @role_required("viewer")
    def get_outgoing():
        """Calls by host, method and path template, the slowest calls and per-endpoint time over ``window`` s."""
        window = int_arg("window", DEFAULT_WINDOW_S, 10, MAX_WINDOW_S)
        return jsonify(query.report(state().store, window))
