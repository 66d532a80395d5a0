"""Request bodies of the monitor's routes: one parser, a form or JSON by Content-Type, bounded and typed.

Every monitor route that takes a body reads it here, once per request: :func:`fields` for the
JSON API and the panel actions, :func:`formdata` for the pages built on WTForms (login, setup,
account, users). A body is a JSON object (``application/json``) or a form
(``application/x-www-form-urlencoded`` or ``multipart/form-data`` without files); anything else
is refused before a view sees it:

- over ``MONITOR_MAX_BODY`` bytes: 413, answered before the body is read (``security.guard``);
- another content type: 415; JSON nested deeper than :data:`MAX_DEPTH`, not an object, not
  UTF-8, or with a number Python cannot hold (``1e999999``, 5,000 digits): 400;
- a file upload, a field given twice, a field the route does not take, or a value of the wrong
  type: 400.

A field's *kind* (:func:`text`, :func:`whole`, :func:`flag`) checks its type: JSON values are
typed (``30``, ``true``), form values are text (``"30"``, ``"1"``). A field left out, sent as
JSON ``null`` or as an empty form field is absent. ``csrf_token`` is every route's field: the
CSRF check reads it (:func:`csrf_token`).
"""
import json
import math
import re

from flask import g, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from ..core.errors import Refused

#: Deepest nesting of JSON arrays and objects accepted (the API's bodies are flat objects).
MAX_DEPTH = 16
#: The field every form carries for the CSRF check; any route accepts it.
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# A string, or an unterminated one up to the end (possessive, so the scan stays linear on any input).
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*+"?', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")
# Digits only: int() would also take " 7", "1_0", "٧" or "²".
_WHOLE = re.compile(r"-?[0-9]{1,18}")


def _too_deep(data):
    """Tell whether JSON text nests arrays and objects deeper than MAX_DEPTH (strings do not count)."""
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub(b"", data)):
        depth += 1 if bracket.group() in b"[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def _finite(text):
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _parse_json(data):
    if not data.strip():
        return {}
    if _too_deep(data):
        raise Refused(f"JSON nested deeper than {MAX_DEPTH} levels is refused")
    try:  # ValueError: not JSON, not UTF-8, or a number Python will not hold (5,000 digits)
        body = json.loads(data, parse_float=_finite, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise Refused(f"the body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise Refused("the body must be a JSON object")
    return body


def _parse_form():
    if request.files:
        raise Refused("file uploads are not accepted")
    form = request.form
    for name in form:
        if len(form.getlist(name)) > 1:
            raise Refused(f"field {name[:40]!r} is given more than once")
    return form.to_dict()


def _too_large():
    return Refused(f"the body is larger than {request.max_content_length - 1} bytes (MONITOR_MAX_BODY)", 413)


def _parse():
    # Read (and cache) the whole body first, so a form is parsed from what was read: the stream
    # stops one byte past the cap (``security.guard``), and that byte means too long.
    data = request.get_data(cache=True)
    if len(data) >= request.max_content_length:
        raise _too_large()
    if request.is_json:
        return _parse_json(data)
    if request.mimetype in FORM_TYPES:
        return _parse_form()
    if data:
        raise Refused("send a JSON object (application/json) or a form", 415)
    return {}


def _body():
    """Return the request's body as ``{name: value}`` (parsed once a request), or raise its refusal."""
    if "_monitor_body" not in g:
        try:
            g._monitor_body = _parse()
        except RequestEntityTooLarge:  # werkzeug's own limits (a multipart body of 1,000+ parts)
            g._monitor_body = _too_large()
        except Refused as exc:
            g._monitor_body = exc
    if isinstance(g._monitor_body, Refused):
        raise g._monitor_body
    return g._monitor_body


def csrf_token():
    """Return the body's CSRF token (None when absent or not text); refuse a body the monitor does not read."""
    value = _body().get(CSRF_FIELD)
    return value if isinstance(value, str) else None


def peek(name):
    """Return text field ``name`` of the body, or None (absent, not text, or a body refused).

    For the login limiter's account key, which must not refuse on its own (Flask-Limiter would
    take an exception for a store outage): the view's :func:`fields` refuses a bad body.
    """
    try:
        value = _body().get(name)
    except Refused:
        return None
    return value if isinstance(value, str) else None


def fields(**kinds):
    """Return the body's fields checked by their ``kinds``; refuse unknown fields and bad values.

    ``kinds`` maps each field the route takes to its kind; an absent field is left out.
    """
    body = _body()
    unknown = sorted(set(body) - set(kinds) - {CSRF_FIELD})
    if unknown:
        accepted = ", ".join(kinds) or "none"
        raise Refused(f"unknown field(s) {', '.join(name[:40] for name in unknown[:5])}; accepted: {accepted}")
    form = not request.is_json
    values = {}
    for name, kind in kinds.items():
        value = body.get(name)
        if value is None or (form and value == ""):
            continue
        values[name] = kind(name, value, form)
    return values


def as_object(kind="json"):
    """Return the whole body (the CSRF token left out) of a route that checks its fields itself.

    ``kind`` is the body it takes, the other refused: ``"json"`` for an object that nests (the
    alert rules API), ``"form"`` for a form whose field names vary (the alert rule page).
    """
    body = _body()
    if body and request.is_json != (kind == "json"):
        raise Refused("send the object as JSON (application/json)" if kind == "json" else "send a form", 415)
    return {name: value for name, value in body.items() if name != CSRF_FIELD}


def formdata(*names):
    """Return text fields ``names`` and the CSRF token as a MultiDict, for a WTForms form to validate."""
    values = fields(**{name: text() for name in names})
    token = csrf_token()
    return MultiDict({**values, **({CSRF_FIELD: token} if token is not None else {})})


# ---------------------------------------------------------------- kinds


def text(max_length=None):
    """A string (at most ``max_length`` characters)."""
    def check(name, value, form):
        if not isinstance(value, str):
            raise Refused(f"{name} must be a string")
        if max_length is not None and len(value) > max_length:
            raise Refused(f"{name} must be at most {max_length} characters")
        return value
    return check


def whole(lo, hi):
    """A whole number within [lo, hi]: a JSON number (``30`` or ``30.0``), or digits in a form."""
    def check(name, value, form):
        if form and isinstance(value, str) and _WHOLE.fullmatch(value):
            value = int(value)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Refused(f"{name} must be a whole number")
        if not lo <= value <= hi:
            raise Refused(f"{name} must be between {lo} and {hi}")
        return value
    return check


#: Form spellings of a flag.
_FLAGS = {"1": True, "true": True, "on": True, "yes": True, "0": False, "false": False, "off": False, "no": False}


def flag():
    """A boolean: JSON ``true``/``false``, or ``1``/``0`` (``true``, ``on``, ...) in a form."""
    def check(name, value, form):
        if form and isinstance(value, str) and value.strip().lower() in _FLAGS:
            return _FLAGS[value.strip().lower()]
        if not isinstance(value, bool):
            raise Refused(f"{name} must be true or false")
        return value
    return check
