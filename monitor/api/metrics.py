"""JSON API: GET /api/admin/metrics, the fleet's merged request metrics."""
from flask import jsonify, request

from .. import metrics
from ..auth.decorators import role_required
from ..extension import state
from . import bp
from .errors import BadRequest, int_arg


@bp.get("/metrics")
@role_required("viewer")
def get_metrics():
    """Merged metrics of all workers (or one host / one pid) over ``window`` seconds."""
    window = int_arg("window", 60, 10, 86400)
    pid = int_arg("pid", None, 1, 2**31)
    host = request.args.get("host") or None
    if host is not None and len(host) > 255:
        raise BadRequest("host must be at most 255 characters")
    return jsonify(metrics.query(state().store, window, host=host, pid=pid))
