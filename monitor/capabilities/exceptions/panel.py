"""The "Exceptions" panel: the window's groups at a glance, and one group's samples when picked."""
from flask_login import current_user

from ...core.errors import Refused
from ...web import body
from ...web.panel import Panel
from . import query
from .api import GROUP_ID

#: Windows the panel offers, in seconds, with their labels.
WINDOWS = {3600: "1 h", 21600: "6 h", 86400: "24 h", 7 * 86400: "7 d"}
DEFAULT_WINDOW_S = 3600
#: Groups the panel lists (the most frequent of the window).
LISTED = 10


def runs(frames):
    """Return a traceback's frames as runs ``[("app" | "library", [frame, ...])]``: the library ones folded."""
    found = []
    for frame in frames:
        kind = "app" if frame["app"] else "library"
        if found and found[-1][0] == kind:
            found[-1][1].append(frame)
        else:
            found.append((kind, [frame]))
    return found


class ExceptionsPanel(Panel):
    name = "exceptions"
    title = "Exceptions"
    poll = "10s"
    params = ("exc_window", "exc_group")
    actions = {"resolve": ("operator", "resolve")}

    def context(self, monitor, args):
        raw = args.get("exc_window", "")
        window = int(raw) if raw in {str(w) for w in WINDOWS} else DEFAULT_WINDOW_S
        data = query.groups(monitor.store, window, limit=LISTED)
        picked = args.get("exc_group", "")
        try:
            detail = query.group(monitor.store, picked, window) if GROUP_ID.fullmatch(picked) else None
        except Refused:  # the group expired, or a stale link
            detail = None
        for sample in detail["samples"] if detail else ():
            sample["runs"] = runs(sample["frames"])
        return {"data": data, "window": window, "windows": WINDOWS, "detail": detail,
                "total": sum(row["count"] for row in data["groups"]),
                "regressions": sum(row["status"] == "regression" for row in data["groups"]),
                "can_operate": current_user.can("operator"), "logs": "logs" in monitor.panels,
                "query": {"exc_window": window if window != DEFAULT_WINDOW_S else None, "exc_group": picked or None}}

    def resolve(self, monitor):
        """Mark the group the form names resolved."""
        gid = body.fields(id=body.text(40)).get("id", "")
        if not GROUP_ID.fullmatch(gid):
            raise Refused("no exception group with this id", 404)
        query.resolve(monitor.store, gid, current_user.name)
        return "marked resolved: its next occurrence in a new release shows as a regression"
