"""The continuous profiler's view in the profiling panel (admins): a flame graph of any endpoint over a window.

The profiling panel (``capabilities/profiling/panel.py``) shows it when this capability runs:
its query arguments are ``PARAMS`` (kept in the panel's and the page's URL) and its context is
``view``'s. The flame graph is drawn on the server as SVG (no script; the page's CSP stands):
a frame is a link that zooms into it (``flame_focus``), its share is in its label and its
title, and a comparison marks the frames whose share grew or shrank.

The panel's own poll does not read the profile again: it renders a placeholder, which
``monitor.js`` leaves in place of the graph shown (``data-placeholder``). The graph is read
when the page loads and when the view changes (the form, a zoom).
"""
import time
from urllib.parse import urlencode

from flask import url_for

from . import layout, query, render

PARAMS = ("flame_window", "flame_ago", "flame_endpoint", "flame_compare", "flame_focus")
#: Windows the view offers, in seconds, with their labels.
WINDOWS = {300: "5 min", 900: "15 min", 3600: "1 h", 6 * 3600: "6 h", 86400: "24 h", 7 * 86400: "7 d"}
#: Where a window may end: seconds before now.
AGO = {0: "now", 3600: "1 h ago", 3 * 3600: "3 h ago", 6 * 3600: "6 h ago", 12 * 3600: "12 h ago",
       86400: "1 d ago", 2 * 86400: "2 d ago", 3 * 86400: "3 d ago", 6 * 86400: "6 d ago"}
#: The baselines a window may be compared with: how much earlier ("prev": the window just before).
COMPARE = {"": "nothing", "prev": "the window before", "3600": "1 h earlier", "86400": "1 day earlier"}
API = "monitor_api.profiler_continuous"
#: The height of a row of the flame graph, in px.
ROW_PX = 18


def _int_choice(args, name, allowed, default):
    raw = args.get(name, "")
    return int(raw) if raw.isdigit() and int(raw) in allowed else default


def view(monitor, args, placeholder=False):
    """Return the view's template context for the panel's query ``args``."""
    window = _int_choice(args, "flame_window", WINDOWS, query.DEFAULT_WINDOW_S)
    ago = _int_choice(args, "flame_ago", AGO, 0)
    endpoint = args.get("flame_endpoint", "")[:query.MAX_ENDPOINT] or None
    compare = args.get("flame_compare", "")
    compare = compare if compare in COMPARE else ""
    focus = args.get("flame_focus", "")[:32]
    chosen = {"flame_window": window, "flame_ago": ago, "flame_endpoint": endpoint or "", "flame_compare": compare}
    context = {"placeholder": placeholder, "query": chosen, "windows": WINDOWS, "agos": AGO, "compares": COMPARE}
    if placeholder:
        return context
    store, now = monitor.store, time.time()
    until = int(now) - ago
    settle = layout.settle(monitor.config["MONITOR_FLUSH_INTERVAL"])
    found = query.profile(store, window, until, endpoint, now, settle)
    root = render.tree(found.stacks, endpoint)
    base = base_root = None
    if compare:
        base = query.profile(store, window, until - (window if compare == "prev" else int(compare)), endpoint, now,
                             settle)
        base_root = render.tree(base.stacks, endpoint)
    frames, depth = render.flame(root, focus, base_root) if found.samples else ([], 0)
    # url_for's own first argument is named endpoint: the query argument of that name is added after
    only = "&" + urlencode({"endpoint": endpoint}) if endpoint else ""
    return {
        **context, "profile": found, "baseline": base, "frames": frames, "height": depth * ROW_PX, "row": ROW_PX,
        "zoomed": any(frame["focus"] for frame in frames),
        "endpoints": sorted(set(query.endpoints(store, found.lo)) | ({endpoint} if endpoint else set())),
        "hz": monitor.config["MONITOR_CONTINUOUS_HZ"], "sampling": monitor.sampler is not None,
        "mark": render.MARK_POINTS,
        "speedscope_url": url_for(API, window=window, until=until, format="speedscope") + only,
        "collapsed_url": url_for(API, window=window, until=until, format="collapsed") + only,
    }
