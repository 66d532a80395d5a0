"""JSON API: the fleet's exception groups, one group with its samples, and resolving one.

Messages, paths and tracebacks are the app's text: the answers escape ``<``, ``>`` and ``&``
inside JSON strings (``\\u003c``...), so no HTML parser that is handed one by mistake sees
markup (the same JSON once parsed).
"""
import json
import re

from flask import current_app
from flask_login import current_user

from ...api.args import int_arg
from ...auth.decorators import role_required
from ...core import buckets
from ...core.errors import Refused
from ...core.state import state
from ...web import body
from . import query
from .collect import OVERFLOW_ID

DEFAULT_WINDOW_S = 3600
GROUP_ID = re.compile(rf"[0-9a-f]{{16}}|{OVERFLOW_ID}")
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def escaped_json(data):
    """Return a JSON response of ``data`` with ``<``, ``>`` and ``&`` escaped in its strings."""
    text = re.sub(r"[<>&]", lambda m: _ESCAPES[m.group()], json.dumps(data, separators=(",", ":")))
    return current_app.response_class(text + "\n", mimetype="application/json")


def checked_id(value):
    """Return ``value`` if it can name a group, or refuse with 404."""
    if not GROUP_ID.fullmatch(value):
        raise Refused("no exception group with this id", 404)
    return value


def register(bp):
    """Add the exceptions routes to the API blueprint."""

    @bp.get("/exceptions")
    @role_required("viewer")
    def exceptions_list():
        """The exception groups seen over ``window`` seconds, most frequent first."""
        window = int_arg("window", DEFAULT_WINDOW_S, 10, buckets.MAX_WINDOW_S)
        limit = int_arg("limit", 100, 1, 1000)
        return escaped_json(query.groups(state().store, window, limit=limit))

    @bp.get("/exceptions/<group_id>")
    @role_required("viewer")
    def exceptions_group(group_id):
        """One group (its count over ``window`` seconds) with its latest samples."""
        window = int_arg("window", DEFAULT_WINDOW_S, 10, buckets.MAX_WINDOW_S)
        return escaped_json(query.group(state().store, checked_id(group_id), window))

    @bp.post("/exceptions/<group_id>/resolve")
    @role_required("operator")
    def exceptions_resolve(group_id):
        """Mark a group resolved; its next occurrence in a release it was not seen in is a regression."""
        body.fields()
        store = state().store
        gid = checked_id(group_id)
        query.resolve(store, gid, current_user.name)
        return escaped_json(query.group(store, gid, DEFAULT_WINDOW_S))
