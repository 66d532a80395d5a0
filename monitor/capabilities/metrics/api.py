"""JSON API: GET /api/admin/metrics, the fleet's merged request metrics."""
from flask import jsonify, request

from ...api.args import int_arg
from ...auth.decorators import role_required
from ...core.errors import Refused
from ...core.state import state
from . import layout, query


def register(bp):
    """Add the metrics route to the API blueprint."""

    @bp.get("/metrics")
    @role_required("viewer")
    def get_metrics():
        """Merged metrics of all workers (or one host / one pid) over ``window`` seconds."""
        window = int_arg("window", 60, 10, query.MAX_WINDOW_S)
        pid = int_arg("pid", None, 1, 2**31)
        host = request.args.get("host") or None
        if host is not None and len(host) > 255:
            raise Refused("host must be at most 255 characters")
        monitor = state()
        lag = layout.lag(monitor.config["MONITOR_FLUSH_INTERVAL"])
        return jsonify(query.query(monitor.store, window, host=host, pid=pid, lag_s=lag))
