"""JSON API: GET /api/admin/releases, the releases the fleet has run and its deploy markers."""
from flask import jsonify

from ...auth.decorators import role_required
from ...core.state import state
from . import query
from .report import live_s


def register(bp, capability):
    """Add the releases route to the API blueprint."""

    @bp.get("/releases")
    @role_required("viewer")
    def releases():
        """Every release seen (newest first) with the workers running it now, the current one, the deploy markers,
        and the metrics of the current release against the previous one."""
        monitor = state()
        body = query.releases(monitor.store, live_s(monitor.flusher.interval))
        body["comparison"] = capability.comparison(monitor)
        return jsonify(body)
