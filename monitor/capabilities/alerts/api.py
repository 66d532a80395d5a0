"""JSON API: the fleet's alerts and acknowledging one; rules, their preview, silences, channels."""
import re
import time

from flask import jsonify, request
from flask_login import current_user

from ...auth.decorators import role_required
from ...core.errors import Refused
from ...core.state import state
from ...web.body import as_object, fields
from . import changes, channels, rules, silences
from .fields import ID_RE

ALERT_ID_RE = re.compile(r"^[a-z0-9_]{1,40}-\d{1,12}$")


def _id(value, what):
    if not ID_RE.match(value):
        raise Refused(f"no {what} with this id", 404)
    return value


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
        fields()
        if not ALERT_ID_RE.match(alert_id):
            raise Refused("an alert id looks like error_rate-1700000000")
        return jsonify(capability.acknowledge(state(), alert_id, current_user.name))

    @bp.get("/alerts/rules")
    @role_required("viewer")
    def alert_rules():
        """Every rule."""
        monitor = state()
        found = rules.load(monitor.store, monitor.config).values()
        return jsonify({"rules": sorted(found, key=lambda r: (r["name"].lower(), r["id"]))})

    @bp.post("/alerts/rules")
    @role_required("admin")
    def alert_rule_create():
        """Create a rule."""
        return jsonify(changes.create_rule(state(), as_object())), 201

    @bp.post("/alerts/rules/preview")
    @role_required("admin")
    def alert_rule_preview():
        """How a rule would have fared over the last 24 h; nothing is stored."""
        return jsonify(changes.preview_rule(state(), as_object()))

    @bp.get("/alerts/rules/<rule_id>")
    @role_required("viewer")
    def alert_rule(rule_id):
        """One rule."""
        monitor = state()
        return jsonify(rules.get(monitor.store, monitor.config, _id(rule_id, "rule")))

    @bp.put("/alerts/rules/<rule_id>")
    @role_required("admin")
    def alert_rule_replace(rule_id):
        """Replace a rule (the body is a rule object, as GET answers it)."""
        return jsonify(changes.update_rule(state(), _id(rule_id, "rule"), as_object()))

    @bp.delete("/alerts/rules/<rule_id>")
    @role_required("admin")
    def alert_rule_delete(rule_id):
        """Delete a rule and its alert."""
        fields()
        changes.delete_rule(state(), _id(rule_id, "rule"))
        return jsonify({"deleted": rule_id})

    @bp.get("/alerts/silences")
    @role_required("viewer")
    def alert_silences():
        """The silences in force or to come."""
        return jsonify(silences.listing(state().store, time.time()))

    @bp.post("/alerts/silences")
    @role_required("operator")
    def alert_silence_create():
        """Silence the notifications of rules (by id, labels or scope) for a while."""
        return jsonify(changes.create_silence(state(), as_object(), current_user.name)), 201

    @bp.delete("/alerts/silences")
    @role_required("operator")
    def alert_silence_delete():
        """End a silence now (its id in the query: ``?id=s_...``)."""
        fields()
        silence_id = request.args.get("id", "")
        if not ID_RE.match(silence_id):
            raise Refused("id (in the query) is the silence's id, such as s_0123abcd")
        return jsonify({"deleted": changes.end_silence(state(), silence_id)["id"]})

    @bp.get("/alerts/channels")
    @role_required("admin")
    def alert_channels():
        """Every channel with its last delivery; never a secret."""
        monitor = state()
        return jsonify(channels.listing(monitor.store, monitor.config))

    @bp.post("/alerts/channels")
    @role_required("admin")
    def alert_channel_create():
        """Add a channel (a webhook's URL is written here and never read back)."""
        return jsonify(changes.create_channel(state(), as_object())), 201

    @bp.delete("/alerts/channels/<channel_id>")
    @role_required("admin")
    def alert_channel_delete(channel_id):
        """Delete a channel no rule routes to."""
        fields()
        changes.delete_channel(state(), _id(channel_id, "channel"))
        return jsonify({"deleted": channel_id})

    @bp.post("/alerts/channels/<channel_id>/test")
    @role_required("admin")
    def alert_channel_test(channel_id):
        """Send a test message to a channel now (one attempt) and answer the result."""
        fields()
        return jsonify(changes.test_channel(state(), _id(channel_id, "channel"), current_user.name))
