"""``GET /api/openapi.json``: the OpenAPI 3.1 description of the monitor's JSON routes.

Assembled from the core's operations below and each running capability's ``spec.py``,
written next to the views they describe: ``tests/test_openapi.py`` fails when a route of
``app.url_map`` under ``/api/``, ``/health`` or ``/metrics`` is not described (or a
described one does not exist), when an operation's ``x-required-role`` differs from its
view's ``@role_required``, and schemathesis checks every answer of a live server against it.
"""
import copy

from flask import Blueprint, current_app, jsonify

from ..auth.decorators import role_required
from ..auth.guard import require_login
from ..auth.session import COOKIE_NAME
from ..core import audit, capability
from ..core import config as settings
from ..core.errors import CODES
from ..web.responses import register_handlers
from . import no_store
from .schema import BOOL, CURSOR, INT, LIMIT, NUM, STR, arr, null, obj, op, query, ref

bp = Blueprint("monitor_openapi", __name__)
bp.before_request(require_login)
bp.after_request(no_store)
register_handlers(bp)

SCHEMAS = {
    "Error": obj("all", error={"type": "string", "enum": list(CODES.values())}, detail=STR),
    "Health": obj(
        "all", status={"type": "string", "enum": ["healthy", "degraded"]},
        timestamp={"type": "string", "format": "date-time"},
        worker=obj("all", id=STR, pid=INT, host=STR, clustered=BOOL, uptime=NUM,
                   memory=obj("all", rss=NUM)),
        redis=obj("all", ok=BOOL),
        monitoring={"type": "object", "additionalProperties": BOOL}),
}

PATHS = {
    "/health": {"get": {
        "summary": "Liveness of the answering worker and of the shared store", "security": [],
        "description": "Public. Reveals no secret and no setting.",
        "responses": {"200": {"description": "OK (also while Redis is down: status degraded)",
                              "content": {"application/json": {"schema": ref("Health")}}}}}},
    "/api/openapi.json": {"get": op("This description", "viewer", {"type": "object"})},
    "/api/admin/audit": {"get": op(
        "The audit log, newest first", "admin",
        obj("all", entries=arr(obj("all", id=STR, ts=NUM, time=STR, user=STR, action=STR, result=STR,
                                   ip=STR, detail={"type": "object"})),
            next=null(STR), cap=INT),
        params=[LIMIT, {"name": "before", "in": "query", "required": False, "schema": CURSOR,
                        "description": "cursor: the `next` of the previous page"}])},
    "/api/admin/audit/strangers": {"get": op(
        "Anonymous requests (401s, failed and rate-limited logins) per minute, source address and kind",
        "admin",
        obj("all", rows=arr(obj("all", minute=STR, ts=INT, ip=STR, action=STR, result=STR, account=STR, count=INT)),
            window_s=INT, retention_s=INT, rows_per_minute=INT),
        params=[query("window", {"type": "integer", "minimum": 60, "maximum": audit.STRANGER_TTL_S, "default": 3600},
                      "seconds back from now")])},
}


def spec(config=None):
    """Return the OpenAPI document (a fresh dict) of an app with ``config`` (default: the defaults)."""
    config = settings.load({}, environ={}) if config is None else config
    paths, schemas = dict(PATHS), dict(SCHEMAS)
    for found in capability.load(config["MONITOR_CAPABILITIES"]):
        more_paths, more_schemas = found.spec(config)
        paths.update(more_paths)
        schemas.update(more_schemas)
    prefix = config.get("MONITOR_URL_PREFIX", "")
    return copy.deepcopy({
        "openapi": "3.1.0",
        **({"servers": [{"url": prefix, "description": "the paths below are under MONITOR_URL_PREFIX"}]}
           if prefix else {}),
        "info": {"title": "monitor", "version": "1",
                 "description": "The monitor's JSON API. Send `Authorization: Bearer <token>`, or the "
                                "session cookie plus `X-CSRFToken` on unsafe methods. Errors are "
                                '`{"error": code, "detail": text}`.'},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "an API token `mon_<id>_<secret>` (users page or `monitor create-token`)"},
                "session": {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME,
                            "description": "the login session; unsafe methods also need the X-CSRFToken header"}},
        },
        "security": [{"bearer": []}, {"session": []}],
    })


@bp.get("/api/openapi.json")
@role_required("viewer")
def openapi_json():
    """Serve the description to any logged-in user."""
    return jsonify(spec(current_app.config))
