"""JSON API: app-cache statistics and scoped clearing."""
from flask import jsonify

from ...api.args import int_arg
from ...auth.decorators import role_required
from ...core.state import state
from ...web import body
from . import query
from .ship import BUCKET_S, MAX_WINDOW_S


def register(bp):
    """Add the cache routes to the API blueprint."""

    @bp.get("/cache/stats")
    @role_required("viewer")
    def cache_stats():
        """Keys, hit rate over ``window`` seconds, memory and Redis figures of the app cache."""
        window = int_arg("window", query.DEFAULT_WINDOW_S, BUCKET_S, MAX_WINDOW_S)
        return jsonify(query.stats(state(), window))

    @bp.post("/cache/clear")
    @role_required("operator")
    def cache_clear():
        """Delete one namespace's keys (``namespace``) or the whole app cache's (``all: true``); answer the count."""
        namespace = query.clear_target(body.fields(**query.CLEAR_FIELDS))
        return jsonify({"cleared": query.clear(state(), namespace), "namespace": namespace})
