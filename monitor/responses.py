"""Error answers shaped by the kind of request: JSON for the API, a page for browsers."""
import redis
from flask import current_app, g, jsonify, render_template, request

JSON_PREFIXES = ("/api/", "/metrics")


def wants_json():
    """Tell whether this request expects a JSON answer."""
    return request.path.startswith(JSON_PREFIXES) or request.accept_mimetypes.best == "application/json"


def json_error(status, code, detail, headers=None):
    """Return the contract's JSON error ``{"error", "detail"}`` with ``status``."""
    response = jsonify({"error": code, "detail": detail})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def error_response(status, code, detail, headers=None):
    """Return a JSON error for API requests, else an HTML error page (a fragment for HTMX)."""
    if wants_json():
        return json_error(status, code, detail, headers)
    template = "monitor/_error.html" if request.headers.get("HX-Request") else "monitor/error.html"
    return render_template(template, status=status, code=code, detail=detail), status, headers or {}


def store_unavailable(exc):
    """Answer 503 with Retry-After when the shared store is down (an error handler)."""
    if "_login_user" not in g:  # the user could not be loaded: render the page for nobody
        g._login_user = current_app.login_manager.anonymous_user()
    return error_response(503, "unavailable", "the shared store (Redis) is unreachable; try again shortly",
                          {"Retry-After": "5"})


def register_store_handler(blueprint):
    """Make ``blueprint`` answer 503, not 500, while Redis is unreachable."""
    blueprint.register_error_handler(redis.RedisError, store_unavailable)
