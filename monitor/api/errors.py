"""The API's JSON error handlers and its request-parsing helpers.

Bad input answers 400 ``bad_request`` and changes nothing; a store the action needs
being down answers 503 ``unavailable`` with ``Retry-After``. Never a 500 for either.
"""
import re

from flask import request
from werkzeug.exceptions import HTTPException

from ..responses import json_error, register_store_handler
from . import bp

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 429: "rate_limited", 503: "unavailable"}


register_store_handler(bp)


class BadRequest(ValueError):
    """Input the API refuses; the message says what it accepts."""


@bp.errorhandler(BadRequest)
def bad_request(exc):
    return json_error(400, "bad_request", str(exc))


@bp.errorhandler(HTTPException)
def http_error(exc):
    return json_error(exc.code, _CODES.get(exc.code, "error"), exc.description)


#: The monitor's JSON paths outside any view: routing's own 404/405 there answer JSON too.
JSON_ROUTES = ("/api/openapi.json", "/metrics", "/health")


def routing_error(req):
    """Answer a 404/405 that routing raised under the API as JSON (with ``Allow`` on 405).

    Flask raises routing errors after the before-request hooks and outside any blueprint, so
    the handlers above never see them: the monitor's request hook calls this for its own
    paths; the host app's own 404s are left alone.
    """
    exc = req.routing_exception
    if exc is None or getattr(exc, "code", 0) < 400:
        return None
    if not (req.path.startswith(bp.url_prefix + "/") or req.path in JSON_ROUTES):
        return None
    allow = {name: value for name, value in exc.get_headers() if name == "Allow"}
    return json_error(exc.code, _CODES.get(exc.code, "error"), exc.description, allow)


@bp.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


_WHOLE = re.compile(r"-?[0-9]{1,18}")


def int_arg(name, default, lo, hi):
    """Return query argument ``name`` as an int within [lo, hi] (absent: ``default``), or raise BadRequest."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _WHOLE.fullmatch(raw):  # int() would also take "", " 7", "1_0", "٧"
        raise BadRequest(f"{name} must be a whole number")
    value = int(raw)
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return value


def json_int(body, name):
    """Return field ``name`` of a JSON body when it is a whole number, or None when absent or null.

    The JSON API takes numbers as numbers (``30`` or ``30.0``): ``"30"`` or ``30.5`` is 400 (the
    panels' forms parse strings).
    """
    value = body.get(name)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise BadRequest(f"{name} must be a whole number")
    return value


def json_body():
    """Return the request's JSON object (empty body: ``{}``), or raise BadRequest."""
    if not request.get_data(cache=True):
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data
