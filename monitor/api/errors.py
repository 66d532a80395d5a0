"""The API's JSON error handlers and its request-parsing helpers.

Bad input answers 400 ``bad_request`` and changes nothing; a store the action needs
being down answers 503 ``unavailable`` with ``Retry-After``. Never a 500 for either.
"""
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


@bp.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


def int_arg(name, default, lo, hi):
    """Return query argument ``name`` as an int within [lo, hi], or raise BadRequest."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return value


def json_body():
    """Return the request's JSON object (empty body: ``{}``), or raise BadRequest."""
    if not request.get_data(cache=True):
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data
