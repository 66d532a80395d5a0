"""The demo routes that ``wsgi.py`` mounts (``MONITOR_DEMO``): traffic for every panel.

They are public, so each one is cheap: ``/demo/sleep`` sleeps at most a second, ``/demo/cpu``
spins at most 200 ms, and the Procfile (a public deployment) turns them off (docs/deployment.md).
"""
import logging
import re
import time

from flask import Blueprint, abort, current_app, jsonify, render_template, request

from ..core.state import state

bp = Blueprint("demo", __name__, url_prefix="/demo")
log = logging.getLogger("monitor.demo")
#: Longest sleep of /demo/sleep, in ms: a longer ``ms`` sleeps this long (four strangers asking for
#: 5 s each held every worker of a 2-worker server).
MAX_SLEEP_MS = 1000
#: Longest CPU time of /demo/cpu, in ms.
MAX_CPU_MS = 200
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: The rows of /demo/table, the realistic page of bench/bench_throughput.py.
TABLE_ROWS = [{"id": i, "name": f"item number {i}", "price": 1.25 * i, "stock": (7 * i) % 13} for i in range(50)]
#: The five app-cache keys /demo/table reads (namespace ``demo``).
TABLE_KEYS = ("demo:visits", "demo:orders", "demo:revenue", "demo:returns", "demo:rating")


@bp.get("/hello")
def hello():
    return jsonify(message="hello")


def _ms(default, most):
    """Return the ``ms`` query argument, at most ``most``, or refuse it."""
    raw = request.args.get("ms", str(default))
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        abort(400, "ms must be a whole number of milliseconds")
    return min(int(raw), most)


@bp.get("/sleep")
def sleep():
    ms = _ms(100, MAX_SLEEP_MS)
    time.sleep(ms / 1000)
    return jsonify(slept_ms=ms)


def spin(seconds):
    """Spend ``seconds`` of this thread's CPU time in a loop: /demo/cpu's hot frame."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def stir(seconds):
    """Spend ``seconds`` of this thread's CPU time adding numbers: /demo/cpu's other frame."""
    end, total = time.thread_time() + seconds, 0
    while time.thread_time() < end:
        total += sum(range(100))
    return total


@bp.get("/cpu")
def cpu():
    """Spend ``ms`` of CPU time, four fifths of it in ``spin`` (the frame a continuous profile must find)."""
    ms = _ms(50, MAX_CPU_MS)
    spin(ms * 0.8 / 1000)
    stir(ms * 0.2 / 1000)
    return jsonify(cpu_ms=ms)


@bp.get("/error")
def error():
    """Fail: a RuntimeError, or with ``?kind=lookup`` a KeyError from another function (another exception group)."""
    if request.args.get("kind") == "lookup":
        return jsonify(price=_price("unknown item"))
    raise RuntimeError("demo error")


def _price(item):
    return {"apple": 1.25}[item]


@bp.get("/cached/<key>")
def cached(key):
    return jsonify(key=key, value=current_app.extensions["monitor_demo_cached"](key))


def _expensive(key):
    time.sleep(0.02)
    return f"{key}:{time.time():.6f}"


@bp.get("/table")
def table():
    """Render a 50-row table and read 5 cache keys, as a typical page of the host app would."""
    cache = state().cache
    figures = {}
    for key in TABLE_KEYS:
        value = cache.get(key)
        if value is None:
            value = len(key) * 11
            cache.set(key, value, timeout=300)
        figures[key.partition(":")[2]] = value
    return render_template("monitor/demo/table.html", rows=TABLE_ROWS, figures=figures)


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
