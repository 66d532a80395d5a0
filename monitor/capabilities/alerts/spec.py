"""The OpenAPI description of the alerts capability's routes (``api/openapi.py`` assembles it).

The request bodies spell every check a schema can (types, ranges, patterns, no unknown
fields); the checks across fields (a metric's scopes and parameters, the resolve threshold on
the safe side, ids of rules and channels that exist) answer 400 with a message naming them.
"""
from ...api.schema import ANY, BOOL, INT, NUM, STR, arr, null, obj, op, path, query, ref
from .channels import KINDS
from .fields import ID_RE
from .metrics import LOG_LEVELS, MAX_THRESHOLD, METRICS
from .rules import MAX_FOR_S, MAX_REMINDER_S, MAX_WINDOW_S, OPS, SEVERITIES

ID = {"type": "string", "pattern": ID_RE.pattern}
SCOPE = {"type": "string", "maxLength": 300, "pattern": "^(fleet|host:.+|endpoint:.+)$",
         "description": "fleet, host:<name> or endpoint:<rule> (endpoint:GET <rule> for one method)"}
LABELS = {"type": "object", "maxProperties": 16, "propertyNames": {"pattern": "^[a-z][a-z0-9_]{0,39}$"},
          "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 100}}
SECONDS = {"type": "number", "minimum": 0, "maximum": MAX_FOR_S}
THRESHOLD = {"type": "number", "minimum": 0, "maximum": MAX_THRESHOLD}
RULE_PROPERTIES = {
    "id": ID, "name": {"type": "string", "minLength": 1, "maxLength": 100},
    "metric": {"type": "string", "enum": list(METRICS)},
    "params": {"type": "object", "additionalProperties": False, "description": "log_lines only: level and text",
               "properties": {"level": {"type": "string", "enum": list(LOG_LEVELS)},
                              "text": {"type": "string", "maxLength": 200}}},
    "scope": SCOPE, "op": {"type": "string", "enum": list(OPS)}, "threshold": THRESHOLD,
    "window_s": {"type": "integer", "minimum": 10, "maximum": MAX_WINDOW_S}, "for_s": SECONDS,
    "resolve": {"type": "object", "additionalProperties": False,
                "properties": {"threshold": null(THRESHOLD), "for_s": SECONDS},
                "description": "hysteresis: a firing rule resolves once clear of `threshold` for `for_s`; a null "
                               "threshold follows the rule's (80% of it for > and >=, itself for < and <=)"},
    "severity": {"type": "string", "enum": list(SEVERITIES)}, "labels": LABELS,
    "channels": {"type": "array", "maxItems": 10, "uniqueItems": True, "items": ID},
    "reminder_s": {"type": "integer", "minimum": 0, "maximum": MAX_REMINDER_S,
                   "description": "0: no reminder; else at least 60"},
    "min_requests": {"type": "integer", "minimum": 0, "maximum": 10_000_000}, "enabled": BOOL,
}


def optional(schema):
    """``schema`` or null: a body field sent as null counts as left out (its default)."""
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    found = {**schema, "type": [*types, "null"] if "null" not in types else types}
    if "enum" in schema:
        found["enum"] = [*schema["enum"], None]
    if schema["type"] == "object" and "properties" in schema:
        found["properties"] = {name: optional(item) for name, item in schema["properties"].items()}
    return found


def body(required, **properties):
    """A request body: ``required`` fields as they are, every other one optional, nothing else."""
    return {**obj(required, **{name: item if name in required else optional(item)
                               for name, item in properties.items()}), "additionalProperties": False}


RULE_BODY = body(("name", "metric", "op", "threshold"), **RULE_PROPERTIES)
SILENCE_BODY = body(("comment",), rule=ID, labels=LABELS, scope=SCOPE,
                    starts_at={"type": ["number", "string"], "description": "epoch seconds or ISO-8601"},
                    duration_s={"type": "integer", "minimum": 1, "maximum": 90 * 86400},
                    until={"type": ["number", "string"], "description": "epoch seconds or ISO-8601"},
                    comment={"type": "string", "minLength": 1, "maxLength": 500})
CHANNEL_BODY = body(("name", "kind"), id=ID, name={"type": "string", "minLength": 1, "maxLength": 100},
                    kind={"type": "string", "enum": list(KINDS)},
                    url={"type": "string", "maxLength": 2000,
                         "description": "webhook, slack, teams: the URL (a secret: never answered)"},
                    to={"type": "array", "minItems": 1, "maxItems": 20, "items": {"type": "string", "maxLength": 400},
                        "description": "email: the recipients"})
DELIVERY = null({"type": "object", "required": ["at", "ok", "event", "attempts", "detail"],
                 "properties": {"at": NUM, "ok": BOOL, "event": STR, "attempts": INT, "detail": STR}})

SCHEMAS = {
    "Alert": obj(("id", "rule", "state"), id=STR, rule=STR, title=STR, severity=STR,
                 state={"type": "string", "enum": ["pending", "firing", "resolved", "inactive"]},
                 since=NUM, value=ANY, detail=null(STR), acked_by=STR, acked_at=NUM, fired_at=NUM,
                 clear_since=NUM, resolved_at=NUM, no_data=STR, notified=STR, notified_at=NUM,
                 silenced=arr(STR), event=STR, at=NUM),
    "Rule": obj(list(RULE_PROPERTIES), **RULE_PROPERTIES),
    "Silence": obj("all", id=STR, rule=null(STR), labels={"type": "object"}, scope=null(STR), starts_at=NUM,
                   ends_at=NUM, comment=STR, created_by=STR, created_at=NUM),
    "Channel": obj(("id", "kind", "name", "target", "last_delivery", "source"), id=STR,
                   kind={"type": "string", "enum": list(KINDS)}, name=STR, target=STR, last_delivery=DELIVERY,
                   source={"type": "string", "enum": ["api", "settings"]}, to=arr(STR)),
}
RULE_ID = path("rule_id", {"type": "string"}, "the rule's id, such as error_rate")
CHANNEL_ID = path("channel_id", {"type": "string"}, "the channel's id, such as c_0123abcd")


def paths(config):
    """Return the operations of this capability's routes for an app with ``config``."""
    listed_rule = {**ref("Rule"), "description": "a rule object, with `summary` (its condition in words), "
                                                 "`clears_at` (its resolve threshold) and `state`"}
    return {
        "/api/admin/alerts": {"get": op(
            "Active alerts, their history, the rules and the silences", "viewer",
            obj(("active", "history", "rules"), active=arr(ref("Alert")), history=arr(ref("Alert")),
                rules=arr(listed_rule), silences=arr(ref("Silence")),
                evaluation=null({"type": "object", "description": "the last round: at, ms, rules, sources, host"})))},
        "/api/admin/alerts/{alert_id}/ack": {"post": op(
            "Acknowledge an active alert", "operator", ref("Alert"), errors=(400, 404), params=[
                path("alert_id", {"type": "string", "pattern": r"^[a-z0-9_]{1,40}-\d{1,12}$"},
                     "such as error_rate-1700000000")])},
        "/api/admin/alerts/rules": {
            "get": op("Every rule", "viewer", obj("all", rules=arr(ref("Rule")))),
            "post": op("Create a rule", "admin", ref("Rule"), status=201, body=RULE_BODY, body_required=True,
                       errors=(409,))},
        "/api/admin/alerts/rules/preview": {"post": op(
            "How a rule would have fared over the last 24 h (nothing stored)", "admin",
            obj(("supported", "fired", "text", "span_s", "points", "with_data", "events", "current"),
                supported=BOOL, fired=null(INT), text=STR, span_s=INT, points=INT, with_data=INT,
                firing_at_end=null(BOOL), resolution=null(arr({"type": "object"})),
                events=arr(obj("all", at=NUM, event=STR, value=ANY)),
                current=obj("all", value=ANY, breached=null(BOOL), detail=STR)),
            body=RULE_BODY, body_required=True)},
        "/api/admin/alerts/rules/{rule_id}": {
            "get": op("One rule", "viewer", ref("Rule"), errors=(404,), params=[RULE_ID]),
            "put": op("Replace a rule (send back the rule object GET answers, changed)", "admin", ref("Rule"),
                      body=RULE_BODY, body_required=True, errors=(404,), params=[RULE_ID]),
            "delete": op("Delete a rule and its alert", "admin", obj("all", deleted=STR), errors=(404,),
                         params=[RULE_ID])},
        "/api/admin/alerts/silences": {
            "get": op("The silences in force or to come", "viewer", obj("all", silences=arr(ref("Silence")))),
            "post": op("Silence notifications by rule, labels or scope, for a while", "operator", ref("Silence"),
                       status=201, body=SILENCE_BODY, body_required=True, errors=(409,)),
            "delete": op("End a silence now", "operator", obj("all", deleted=STR), errors=(404,), params=[
                {**query("id", ID, "the silence's id"), "required": True}])},
        "/api/admin/alerts/channels": {
            "get": op("Every channel and its last delivery (never a secret)", "admin",
                      obj("all", channels=arr(ref("Channel")))),
            "post": op("Add a channel", "admin", ref("Channel"), status=201, body=CHANNEL_BODY, body_required=True,
                       errors=(409,))},
        "/api/admin/alerts/channels/{channel_id}": {"delete": op(
            "Delete a channel no rule routes to", "admin", obj("all", deleted=STR), errors=(404, 409),
            params=[CHANNEL_ID])},
        "/api/admin/alerts/channels/{channel_id}/test": {"post": op(
            "Send a test message now (one attempt) and answer the result", "admin",
            {**ref("Channel"), "description": "the channel, its last_delivery the test's, and `delivered`"},
            errors=(404,), params=[CHANNEL_ID])},
    }
