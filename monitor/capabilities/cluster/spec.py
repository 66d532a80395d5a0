"""The OpenAPI description of the cluster capability's routes (``api/openapi.py`` assembles it)."""
from ...api.schema import (
    BOOL,
    INT,
    NUM,
    NUMBER_OR_NULL,
    STR,
    arr,
    null,
    obj,
    op,
    path,
    ref,
)

SCHEMAS = {
    "Operation": obj(
        ("id", "mode", "status", "hosts", "progress"),
        id=STR, mode={"type": "string", "enum": ["rolling", "worker", "reload", "add", "remove"]},
        host=null(STR), pid=null(INT), hosts=arr(STR), user=null(STR), status=STR,
        created_at=NUM, started_at=NUMBER_OR_NULL, finished_at=NUMBER_OR_NULL,
        progress=obj(("done", "total"), done=INT, total=null(INT)), steps=arr({"type": "object"}),
        message=null(STR), error=null(STR)),
    "ClusterStatus": obj(
        ("hosts", "workers", "count", "alive"),
        hosts=arr(obj(("host", "master_pid", "workers_target"), host=STR, master_pid=null(INT),
                      workers_target=null(INT), status=STR, managed=BOOL, workers=INT, workers_alive=INT)),
        workers=arr(obj(("id", "host", "pid", "status", "started_at", "uptime_s", "last_heartbeat_s",
                         "requests", "in_flight", "rss_mb", "cpu_percent"),
                        id=STR, host=STR, pid=INT, master_pid=null(INT),
                        status={"type": "string", "enum": ["alive", "stale"]}, started_at=NUM, uptime_s=NUM,
                        last_heartbeat_s=NUM, requests=INT, in_flight=INT, rss_mb=NUMBER_OR_NULL,
                        cpu_percent=NUMBER_OR_NULL)),
        count=INT, alive=INT, operation={"oneOf": [ref("Operation"), {"type": "null"}]}, generated_at=NUM),
}

RESTART_HOST = {"type": ["string", "null"], "minLength": 1, "maxLength": 255, "pattern": r"\S",
                "description": "the host to act on (default: every host for rolling, else the only one)"}


def paths(config):
    """Return the operations of this capability's routes for an app with ``config``."""
    return {
        "/api/admin/cluster/status": {"get": op(
            "Every host and worker of the fleet, and the running operation", "viewer", ref("ClusterStatus"))},
        "/api/admin/cluster/restart": {"post": op(
            "Start a restart operation (one at a time in the fleet)", "operator",
            obj("all", operation_id=STR, status=STR, hosts=arr(STR)), status=202, errors=(404, 409),
            headers={"Location": {"schema": STR, "description": "the operation's URL"}}, body_required=True,
            body={"oneOf": [
                {"type": "object", "required": ["mode", "pid"], "additionalProperties": False, "properties": {
                    "mode": {"const": "worker"}, "pid": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                    "host": RESTART_HOST}},
                {"type": "object", "required": ["mode"], "additionalProperties": False, "properties": {
                    "mode": {"type": "string", "enum": ["rolling", "reload", "add", "remove"]},
                    "pid": {"type": "null", "description": "only with mode worker"}, "host": RESTART_HOST}}]})},
        "/api/admin/cluster/operations/{operation_id}": {"get": op(
            "A restart operation's record and progress", "viewer", ref("Operation"), errors=(404,),
            params=[path("operation_id", STR, "from POST cluster/restart")])},
    }
