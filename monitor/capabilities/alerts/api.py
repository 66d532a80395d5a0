"""JSON API: the fleet's alerts, and acknowledging one."""
import re

from flask import jsonify
from flask_login import current_user

from ...auth.decorators import role_required
from ...core.errors import Refused
from ...core.state import state
from ...web import body

ALERT_ID_RE = re.compile(r"^[a-z0-9_]{1,40}-\d{1,12}$")


def register(bp, capability):
    """Add the alerts routes to the API blueprint."""

    @bp.get("/alerts")
    @role_required("viewer")
    def alerts_overview():
        """Active alerts, their history and the rules."""
        return jsonify(capability.overview(state()))

    @bp.post("/alerts/<alert_id>/ack")
    @role_required("operator")
    def alerts_ack(alert_id):
        """Acknowledge an active alert."""
        body.fields()
        if not ALERT_ID_RE.match(alert_id):
            raise Refused("an alert id looks like error_rate-1700000000")
        return jsonify(capability.acknowledge(state(), alert_id, current_user.name))
