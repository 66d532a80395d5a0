"""JSON API: the fleet's log lines and alerts."""
import re

from flask import abort, jsonify, request
from flask_login import current_user

from .. import alerts, audit, logs
from ..auth.decorators import role_required
from ..extension import state
from . import bp
from .errors import BadRequest, int_arg

ALERT_ID_RE = re.compile(r"^[a-z0-9_]{1,40}-\d{1,12}$")


@bp.get("/logs")
@role_required("viewer")
def logs_list():
    """Log lines newest first, filtered by level, text, host and pid, older than ``before``."""
    try:
        filters = logs.parse_filters(request.args)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    limit = int_arg("limit", 100, 1, 1000)
    return jsonify(logs.query(state().store, limit=limit, **filters))


@bp.get("/alerts")
@role_required("viewer")
def alerts_overview():
    """Active alerts, their history and the rules."""
    monitor = state()
    return jsonify(alerts.overview(monitor.store, monitor.config, monitor.alerts))


@bp.post("/alerts/<alert_id>/ack")
@role_required("operator")
def alerts_ack(alert_id):
    """Acknowledge an active alert."""
    if not ALERT_ID_RE.match(alert_id):
        raise BadRequest("an alert id looks like error_rate-1700000000")
    store = state().store
    alert = alerts.acknowledge(store, alert_id, current_user.name)
    if alert is None:
        audit.record(store, "alert.ack", "not_found", alert=alert_id)
        abort(404, "no active alert with this id")
    audit.record(store, "alert.ack", "ok", alert=alert_id)
    return jsonify(alert)
