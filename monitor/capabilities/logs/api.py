"""JSON API: the fleet's log lines."""
from flask import jsonify, request

from ...api.args import int_arg
from ...auth.decorators import role_required
from ...core.state import state
from . import query


def register(bp):
    """Add the logs route to the API blueprint."""

    @bp.get("/logs")
    @role_required("viewer")
    def logs_list():
        """Log lines newest first, filtered by level, text, host and pid, older than ``before``."""
        filters = query.parse_filters(request.args)
        limit = int_arg("limit", 100, 1, 1000)
        return jsonify(query.query(state().store, limit=limit, **filters))
