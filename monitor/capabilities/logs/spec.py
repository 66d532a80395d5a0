"""The OpenAPI description of the logs capability's routes (``api/openapi.py`` assembles it)."""
from ...api.schema import CURSOR, INT, LIMIT, NUM, STR, arr, null, obj, op, query, ref

SCHEMAS = {
    "LogEntry": obj(("id", "ts", "level", "logger", "message", "host", "pid"),
                    id=STR, ts=NUM, level=STR, logger=STR, message=STR, host=STR, pid=INT,
                    exc_text=STR, request_id=STR),
}

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def paths(config):
    """Return the operations of this capability's routes for an app with ``config``."""
    return {
        "/api/admin/logs": {"get": op(
            "The fleet's log lines, newest first", "viewer",
            obj("all", entries=arr(ref("LogEntry")), next=null(STR)), params=[
                query("level", {"type": "string", "enum": ["", *LEVELS, *(level.lower() for level in LEVELS)]},
                      "lowest level (default DEBUG)"),
                query("q", {"type": "string", "maxLength": 200}, "text in message, logger or exception"),
                query("host", STR, "only this host"),
                query("pid", {"type": "string", "pattern": "^([0-9]{1,10})?$"}, "only this process id"),
                query("request_id", {"type": "string", "pattern": "^([0-9a-f]{1,8}-[0-9a-f]{1,16})?$"},
                      "only the lines of this request (an exception sample's or a slow request's request_id)"),
                LIMIT, query("before", CURSOR, "cursor: the `next` of the previous page")])},
    }
