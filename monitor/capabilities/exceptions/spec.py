"""The OpenAPI description of the exceptions capability's routes (``api/openapi.py`` assembles it)."""
from ...api.schema import BOOL, INT, LIMIT, NUM, NUMBER_OR_NULL, STR, arr, null, obj, op, path, query, ref
from ...core.buckets import MAX_WINDOW_S
from .api import DEFAULT_WINDOW_S

WINDOW = query("window", {"type": "integer", "minimum": 10, "maximum": MAX_WINDOW_S, "default": DEFAULT_WINDOW_S},
               "seconds (read in whole minutes up to 6 h, in whole hours beyond)")
GROUP = path("group_id", STR, "a group's id, from GET exceptions")
STATUS = {"type": "string", "enum": ["open", "resolved", "regression"]}
FRAME = obj("all", file=STR, function=STR, line=INT, app=BOOL, code=STR)

SCHEMAS = {
    "ExceptionGroup": obj(
        ("id", "type", "message", "count", "first_seen", "last_seen", "endpoints", "releases", "status"),
        id=STR, type=STR, message=STR, culprit=STR, count=INT, total=INT, first_seen=NUMBER_OR_NULL,
        last_seen=NUMBER_OR_NULL, endpoints=arr(STR), endpoint_counts={"type": "object", "additionalProperties": INT},
        releases=arr(STR), hosts=arr(STR), workers=arr(obj("all", host=STR, pid=INT, count=INT)), status=STATUS,
        resolved_at=NUMBER_OR_NULL, resolved_by=null(STR), series=arr(INT)),
    "ExceptionSample": obj(
        ("time", "traceback", "method", "path", "request_id"),
        time=NUM, type=STR, message=STR, traceback=STR, frames=arr(FRAME), frames_left_out=INT,
        causes=arr(obj("all", type=STR, message=STR)), method=STR, path=STR, query=arr(STR), endpoint=STR,
        request_id=null(STR), user=null(STR), duration_ms=NUM, logger=STR, log_message=STR, host=STR, pid=INT,
        release=STR),
}
SCHEMAS["ExceptionGroupDetail"] = {"allOf": [ref("ExceptionGroup"), obj(
    ("samples",), samples=arr(ref("ExceptionSample")), window_s=INT, series_step_s=NUM, generated_at=NUM)]}


def paths(config):
    """Return the operations of this capability's routes for an app with ``config``."""
    return {
        "/api/admin/exceptions": {"get": op(
            "The fleet's exception groups seen over a window, most frequent first", "viewer",
            obj(("groups",), groups=arr(ref("ExceptionGroup")), groups_total=INT, occurrences=INT, window_s=INT,
                series_step_s=NUM, generated_at=NUM),
            params=[WINDOW, LIMIT])},
        "/api/admin/exceptions/{group_id}": {"get": op(
            "One exception group with its latest samples (tracebacks without values, query names only)", "viewer",
            ref("ExceptionGroupDetail"), errors=(404,), params=[GROUP, WINDOW])},
        "/api/admin/exceptions/{group_id}/resolve": {"post": op(
            "Mark a group resolved: its next occurrence in a release it was not seen in is a regression", "operator",
            ref("ExceptionGroupDetail"), errors=(404,), params=[GROUP],
            body={"type": "object", "additionalProperties": False, "properties": {}})},
    }
