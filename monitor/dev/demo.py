"""The demo routes that ``wsgi.py`` mounts (``MONITOR_DEMO``): traffic for every panel."""
import logging
import time

from flask import Blueprint, abort, current_app, jsonify, request

from ..core.state import state

bp = Blueprint("demo", __name__, url_prefix="/demo")
log = logging.getLogger("monitor.demo")
#: Longest sleep /demo/sleep accepts, in ms.
MAX_SLEEP_MS = 5000
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@bp.get("/hello")
def hello():
    return jsonify(message="hello")


@bp.get("/sleep")
def sleep():
    try:
        ms = int(request.args.get("ms", "100"))
    except ValueError:
        abort(400, "ms must be a whole number")
    if not 0 <= ms <= MAX_SLEEP_MS:
        abort(400, f"ms must be between 0 and {MAX_SLEEP_MS}")
    time.sleep(ms / 1000)
    return jsonify(slept_ms=ms)


@bp.get("/error")
def error():
    raise RuntimeError("demo error")


@bp.get("/cached/<key>")
def cached(key):
    return jsonify(key=key, value=current_app.extensions["monitor_demo_cached"](key))


def _expensive(key):
    time.sleep(0.02)
    return f"{key}:{time.time():.6f}"


@bp.get("/log")
def log_line():
    level = request.args.get("level", "INFO").upper()
    if level not in LEVELS:
        abort(400, f"level must be one of {', '.join(LEVELS)}")
    message = request.args.get("msg", "demo log line")[:2000]
    log.log(getattr(logging, level), "%s", message)
    return jsonify(logged=level, message=message)


def init_app(app):
    """Mount the demo routes, memoising /demo/cached in the ``demo`` namespace."""
    cache = state(app).cache
    app.extensions["monitor_demo_cached"] = cache.memoize(timeout=300, make_name=lambda name: "demo")(_expensive)
    app.register_blueprint(bp)
