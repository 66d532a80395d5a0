"""JSON API: the continuous profile of an endpoint (or of all) over a window, as a tree or a download (admins)."""
import time

from flask import Response, request

from ...api.args import int_arg
from ...auth.decorators import role_required
from ...core.errors import Refused
from ...core.state import state
from . import layout, query, render

FORMATS = ("json", "speedscope", "collapsed")
#: The latest ``until`` a query may name (the year 2100): any time past now reads up to now.
MAX_UNTIL = 4102444800


def _download(body, mimetype, name):
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def register(bp):
    """Add the continuous profile route to the API blueprint."""

    @bp.get("/profiler/continuous")
    @role_required("admin")
    def profiler_continuous():
        monitor = state()
        now = time.time()
        window = int_arg("window", query.DEFAULT_WINDOW_S, 60, query.MAX_WINDOW_S)
        until = int_arg("until", int(now), 0, MAX_UNTIL)
        compare = int_arg("compare", None, 60, query.MAX_WINDOW_S)
        endpoint = request.args.get("endpoint") or None
        if endpoint is not None and len(endpoint) > query.MAX_ENDPOINT:
            raise Refused(f"endpoint is a rule label of at most {query.MAX_ENDPOINT} characters")
        fmt = request.args.get("format", "json")
        if fmt not in FORMATS:
            raise Refused(f"format is one of {', '.join(FORMATS)}")
        settle = layout.settle(monitor.config["MONITOR_FLUSH_INTERVAL"])
        found = query.profile(monitor.store, window, until, endpoint, now, settle)
        name = f"continuous-{int(found.lo)}-{int(found.hi)}"
        if fmt == "collapsed":
            return _download(render.collapsed(found.stacks), "text/plain", f"{name}.txt")
        if fmt == "speedscope":
            return _download(render.speedscope(found.stacks, f"{endpoint or render.ALL}, {name}"),
                             "application/json", f"{name}.speedscope.json")
        base = query.profile(monitor.store, window, until - compare, endpoint, now, settle) if compare else None
        root = render.tree(found.stacks, endpoint)
        return {
            "window_s": window, "from": found.lo, "until": found.hi, "resolution_s": found.resolution_s,
            "endpoint": endpoint, "samples": found.samples, "stacks": len(found.stacks),
            "hz": monitor.config["MONITOR_CONTINUOUS_HZ"],
            "endpoints": [{"endpoint": label, "samples": count}
                          for label, count in sorted(found.by_endpoint.items(), key=lambda item: -item[1])],
            "root": render.json_tree(root, render.tree(base.stacks, endpoint) if base else None),
            "baseline": {"from": base.lo, "until": base.hi, "samples": base.samples} if base else None,
        }
