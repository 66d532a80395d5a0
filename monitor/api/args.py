"""Request parsing for the JSON API: query arguments and JSON bodies, refused with a clear 400.

Bad input answers 400 ``bad_request`` and changes nothing; never a 500.
"""
import re

from flask import request

from ..core.errors import Refused

_WHOLE = re.compile(r"-?[0-9]{1,18}")


def int_arg(name, default, lo, hi):
    """Return query argument ``name`` as an int within [lo, hi] (absent: ``default``), or refuse."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _WHOLE.fullmatch(raw):  # int() would also take "", " 7", "1_0", "٧"
        raise Refused(f"{name} must be a whole number")
    value = int(raw)
    if not lo <= value <= hi:
        raise Refused(f"{name} must be between {lo} and {hi}")
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
        raise Refused(f"{name} must be a whole number")
    return value


def json_body():
    """Return the request's JSON object (empty body: ``{}``), or refuse."""
    if not request.get_data(cache=True):
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Refused("the body must be a JSON object")
    return data
