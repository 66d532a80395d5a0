"""The OpenAPI description of the alerts capability's routes (``api/openapi.py`` assembles it)."""
from ...api.schema import ANY, NUM, STR, arr, null, obj, op, path, ref

SCHEMAS = {
    "Alert": obj(("id", "rule", "state"), id=STR, rule=STR, title=STR,
                 state={"type": "string", "enum": ["pending", "firing", "resolved", "inactive"]},
                 since=NUM, value=ANY, detail=null(STR), acked_by=STR, acked_at=NUM, fired_at=NUM,
                 clear_since=NUM, resolved_at=NUM),
}


def paths(config):
    """Return the operations of this capability's routes for an app with ``config``."""
    return {
        "/api/admin/alerts": {"get": op(
            "Active alerts, their history and the rules", "viewer",
            obj("all", active=arr(ref("Alert")), history=arr(ref("Alert")),
                rules=arr(obj("all", name=STR, title=STR, threshold=STR))))},
        "/api/admin/alerts/{alert_id}/ack": {"post": op(
            "Acknowledge an active alert", "operator", ref("Alert"), errors=(400, 404), params=[
                path("alert_id", {"type": "string", "pattern": r"^[a-z0-9_]{1,40}-\d{1,12}$"},
                     "such as error_rate-1700000000")])},
    }
