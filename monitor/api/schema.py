"""Helpers that write OpenAPI schemas and operations tersely; each capability's ``spec.py`` uses them."""
from ..core.audit import CURSOR_RE

STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
ANY = {}


def null(schema):
    """``schema`` or null."""
    return {**schema, "type": [schema["type"], "null"]}


def arr(items):
    return {"type": "array", "items": items}


def obj(required=(), **properties):
    """An object with ``properties``; the names in ``required`` must be present (others may be)."""
    schema = {"type": "object", "properties": properties}
    if required == "all":
        required = list(properties)
    if required:
        schema["required"] = list(required)
    return schema


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


ERROR_TEXT = {400: "Bad input (nothing changed)", 401: "Not logged in: no session cookie or bearer token",
              403: "Role too low, or a cookie request without its CSRF token", 404: "Not found",
              409: "Conflicts with the current state",
              413: "A body over MONITOR_MAX_BODY bytes (refused before it is read)",
              415: "A body that is neither a JSON object nor a form",
              503: "The shared store (Redis) is unreachable"}


def _error(status):
    answer = {"description": ERROR_TEXT[status],
              "content": {"application/json": {"schema": ref("Error")}}}
    if status == 401:
        answer["headers"] = {"WWW-Authenticate": {"schema": STR}}
    if status == 503:
        answer["headers"] = {"Retry-After": {"schema": STR, "description": "seconds"}}
    return answer


def query(name, schema, description):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def path(name, schema, description):
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def op(summary, role, answer, *, status=200, params=(), body=None, body_required=False, errors=(),
       content="application/json", headers=None):
    """One operation: ``role`` is the least role that may call it, ``answer`` the success body schema.

    Every operation may answer 401 and 503; 403 where the role is above viewer; 400 where it
    takes query parameters or a body, 413 and 415 where it takes a body; ``errors`` adds the
    operation's own (400, 404, 409); 414 where it takes query parameters.
    """
    success = {"description": "OK", "content": {content: {"schema": answer}}}
    if headers:
        success["headers"] = headers
    takes_query = any(param["in"] == "query" for param in params)
    codes = {401, 503, *errors}
    if role != "viewer":
        codes.add(403)
    if takes_query or body:
        codes.add(400)
    if body:
        codes |= {413, 415}
    operation = {"summary": summary, "description": f"Role: {role} or above.", "x-required-role": role,
                 "responses": {str(status): success, **{str(code): _error(code) for code in sorted(codes)}}}
    if takes_query:
        operation["responses"]["414"] = {"description": "URL longer than gunicorn's request line limit "
                                                        "(4094 bytes); gunicorn answers it, as plain text"}
    if params:
        operation["parameters"] = list(params)
    if body:
        operation["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": body}}}
        if not body_required:
            operation["description"] += " An empty body counts as `{}`."
    return operation


# ---------------------------------------------------------------- component schemas


NUMBER_OR_NULL = null(NUM)
#: An audit or log entry id, the ``before`` cursor of a page; empty: the newest.
CURSOR = {"type": "string", "pattern": f"^({CURSOR_RE.pattern[1:-1]})?$"}
LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "entries per page")
