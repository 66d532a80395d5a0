"""Error answers shaped by the kind of request: JSON for the API, a page for browsers.

:func:`register_handlers` gives a blueprint the monitor's error handling once: ``Refused``
answers its status and code, a Redis outage 503 with ``Retry-After``, an ``HTTPException``
its own status, and anything else (a bug) a logged 500 that names the request id.
"""
import logging
from urllib.parse import urlsplit, urlunsplit

import redis
from flask import jsonify, redirect, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from ..core.errors import CODES, Refused
from ..core.state import state
from .request_id import request_id

log = logging.getLogger(__name__)


def wants_json():
    """Tell whether this request expects a JSON answer."""
    return state().urls.wants_json(request.path) or request.accept_mimetypes.best == "application/json"


def json_error(status, code, detail, headers=None):
    """Return the contract's JSON error ``{"error", "detail"}`` with ``status``."""
    response = jsonify({"error": code, "detail": detail})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def error_response(status, code, detail, headers=None):
    """Return a JSON error for API requests, else an HTML error page (a fragment for HTMX).

    A request that matched none of the monitor's routes gets JSON too: the page needs the
    template context that the monitor gives its own blueprints only.
    """
    if wants_json() or request.blueprint is None:
        return json_error(status, code, detail, headers)
    template = "monitor/_error.html" if request.headers.get("HX-Request") else "monitor/error.html"
    return render_template(template, status=status, code=code, detail=detail), status, headers or {}


def refused(exc):
    """Answer a ``Refused`` with its status, code and message."""
    return error_response(exc.status, exc.code, exc.detail, exc.headers)


def store_unavailable(exc):
    """Answer 503 with Retry-After while the shared store is down."""
    return error_response(503, "unavailable", "the shared store (Redis) is unreachable; try again shortly",
                          {"Retry-After": "5"})


def http_error(exc):
    """Answer an HTTPException (404, 405, 413, ...) in the monitor's error shape."""
    return error_response(exc.code, CODES.get(exc.code, "error"), exc.description,
                          {name: value for name, value in exc.get_headers() if name == "Allow"})


def internal_error(exc):
    """Log a bug and answer 500 with the request id to find its traceback by."""
    rid = request_id()
    log.exception("unexpected error in %s %s (request %s)", request.method, request.path, rid)
    return error_response(500, CODES[500], f"an unexpected error; request id {rid}")


def register_handlers(blueprint):
    """Give ``blueprint`` the monitor's error answers (never a bare 500 page)."""
    blueprint.register_error_handler(Refused, refused)
    blueprint.register_error_handler(redis.RedisError, store_unavailable)
    blueprint.register_error_handler(HTTPException, http_error)
    blueprint.register_error_handler(Exception, internal_error)


def routing_error(req):
    """Answer a 404/405 that routing raised under the API as JSON (with ``Allow`` on 405), and
    routing's redirects (``/admin`` → ``/admin/``) with a path alone, never the request's Host.

    Flask raises routing errors outside any blueprint, so the handlers above never see
    them: the monitor's request hook calls this for its own paths; the host app's own 404s
    are left alone.
    """
    exc = req.routing_exception
    if isinstance(exc, RequestRedirect):
        target = urlsplit(exc.new_url)
        return redirect(urlunsplit(("", "", target.path, target.query, "")), exc.code)
    if exc is None or getattr(exc, "code", 0) < 400:
        return None
    if not state().urls.is_json_route(req.path):
        return None
    allow = {name: value for name, value in exc.get_headers() if name == "Allow"}
    return json_error(exc.code, CODES.get(exc.code, "error"), exc.description, allow)
