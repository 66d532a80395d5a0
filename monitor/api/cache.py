"""JSON API: app-cache statistics and scoped clearing."""
from flask import jsonify

from .. import cache
from ..auth.decorators import role_required
from ..extension import state
from . import bp
from .errors import BadRequest, int_arg, json_body


@bp.get("/cache/stats")
@role_required("viewer")
def cache_stats():
    """Keys, hit rate over ``window`` seconds, memory and Redis figures of the app cache."""
    window = int_arg("window", cache.DEFAULT_WINDOW_S, cache.BUCKET_S, cache.MAX_WINDOW_S)
    return jsonify(cache.stats(state(), window))


@bp.post("/cache/clear")
@role_required("operator")
def cache_clear():
    """Delete the app cache's keys, or one namespace's; answer the count."""
    body = json_body()
    unknown = set(body) - {"namespace"}
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(sorted(unknown))}; accepted: namespace")
    try:
        namespace = cache.check_namespace(body.get("namespace"))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return jsonify({"cleared": cache.clear(state(), namespace), "namespace": namespace})
