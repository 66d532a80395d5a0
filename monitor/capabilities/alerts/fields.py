"""Typed fields of the alerts' objects (rule, silence, channel), from a JSON body or a form.

Each object has one ``validate`` function (``rules.validate``, ``silences.validate``,
``channels.validate``) that takes the body as a dict and answers the stored object or raises
``Refused`` naming the field. A JSON value is typed (``30``, ``true``, ``{"a": "b"}``); with
``form=True`` a value is the text a form field sends (``"30"``, ``"on"``) and is parsed here.
Messages never repeat the value they refuse (a refused channel URL is a secret).
"""
import math
import re

from ...core.errors import Refused
from ...web import body as request_body

#: An id of a rule, silence or channel: it goes into alert ids (``<rule>-<epoch>``) and URLs.
ID_RE = re.compile(r"^[a-z0-9_]{1,40}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_fields(body, accepted):
    """Refuse a body that is not an object or names a field outside ``accepted``."""
    if not isinstance(body, dict):
        raise Refused("the body must be a JSON object")
    unknown = sorted(set(body) - set(accepted))
    if unknown:
        raise Refused(f"unknown field(s) {', '.join(str(name)[:40] for name in unknown[:5])}; "
                      f"accepted: {', '.join(accepted)}")


def text(body, name, max_length, default=None, required=False, form=False):
    """Return a one-line string field (stripped), ``default`` when absent or empty."""
    value = body.get(name)
    if value is None or (form and value == ""):
        if required:
            raise Refused(f"{name} is required")
        return default
    if not isinstance(value, str):
        raise Refused(f"{name} must be a string")
    value = value.strip()
    if not value:  # an empty form field is left out; an empty JSON string is a mistake
        if required or not form:
            raise Refused(f"{name} must not be empty")
        return default
    if len(value) > max_length:
        raise Refused(f"{name} must be at most {max_length} characters")
    if _CONTROL.search(value):
        raise Refused(f"{name} must be one line of printable text")
    return value


def number(body, name, lo, hi, default=None, required=False, form=False):
    """Return a finite number field within [lo, hi]."""
    value = body.get(name)
    if value is None or (form and value == ""):
        if required:
            raise Refused(f"{name} is required")
        return default
    if form and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise Refused(f"{name} must be a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Refused(f"{name} must be a number")
    if not lo <= value <= hi:
        raise Refused(f"{name} must be between {lo:g} and {hi:g}")
    return float(value)


def whole(body, name, lo, hi, default=None, required=False, form=False):
    """Return a whole-number field within [lo, hi]."""
    value = body.get(name)
    if value is None or (form and value == ""):
        if required:
            raise Refused(f"{name} is required")
        return default
    return request_body.whole(lo, hi)(name, value.strip() if form and isinstance(value, str) else value, form)


def flag(body, name, default, form=False):
    """Return a boolean field: JSON true/false, or 1/0, on/off... in a form."""
    value = body.get(name)
    if value is None or (form and value == ""):
        return default
    return request_body.flag()(name, value, form)


def choice(body, name, options, default=None, required=False, form=False):
    """Return a field that must be one of ``options``."""
    value = text(body, name, 100, default=None, required=required, form=form)
    if value is None:
        return default
    if value not in options:
        raise Refused(f"{name} must be one of {', '.join(options)}")
    return value


def an_id(value, name):
    """Return ``value`` when it is an id (lower-case letters, digits, _; up to 40), or refuse."""
    if not isinstance(value, str) or not ID_RE.match(value):
        raise Refused(f"{name} must be lower-case letters, digits and _, up to 40 characters")
    return value


def labels(body, name, form=False, limit=16):
    """Return a ``{key: value}`` field: keys like ``team``, values one line of up to 100 characters.

    A form sends it as text, ``team=payments, tier=web``.
    """
    value = body.get(name)
    if value is None or (form and value == ""):
        return {}
    if form and isinstance(value, str):
        pairs = [part.partition("=") for part in value.split(",") if part.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise Refused(f"{name} are written key=value, separated by commas")
        value = {key.strip(): val.strip() for key, _, val in pairs}
    if not isinstance(value, dict):
        raise Refused(f"{name} must be an object of text values")
    if len(value) > limit:
        raise Refused(f"{name} may hold at most {limit} entries")
    found = {}
    for key, val in value.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", key):
            raise Refused(f"{name}: a key is a lower-case word (letters, digits, _), up to 40 characters")
        found[key] = text({f"{name}.{key}": val}, f"{name}.{key}", 100, required=True)
    return found
