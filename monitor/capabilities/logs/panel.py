"""The alerts-and-logs panel: the filtered log tail and, with the alerts capability, its alerts.

The panel's root does not poll as a whole: its two live parts do, each on its own. The
alerts (``GET /admin/panels/logs/alerts``) are re-rendered and morphed in place (a 304 when
unchanged); the log tail (``GET /admin/panels/logs/tail?after=ID``) fetches only the lines
newer than the newest one shown, and they are put on top of the table. A filter change
reloads the whole panel.
"""
from flask_login import current_user

from ...core.audit import CURSOR_RE
from ...core.errors import Refused
from ...web import body, format
from ...web.panel import Panel
from . import query
from .handler import LEVELS

#: Log lines the panel shows on load (and the tail brings at most per poll).
TAIL = 100
#: The level the panel shows when the URL names none (the API's default stays DEBUG).
DEFAULT_LEVEL = "INFO"
TAIL_POLL, ALERTS_POLL = "3s", "5s"


def _newest(*ids):
    """Return the newest of stream ids (``ms-seq``), None ones left out."""
    return max((i for i in ids if i), key=lambda i: tuple(map(int, i.split("-"))), default=None)


class LogsPanel(Panel):
    name = "logs"
    title = "Alerts & logs"
    poll = ""
    params = ("level", "q", "host", "pid", "request_id")
    actions = {"ack": ("operator", "ack"), "silence": ("operator", "silence"), "unsilence": ("operator", "unsilence")}
    parts = {"alerts": "alerts_part", "tail": "tail"}

    def filters(self, args):
        """Return the filters ``args`` name (the level INFO unless named), and the message of each bad one."""
        errors = {}
        filters = query.parse_filters({"level": DEFAULT_LEVEL, **self.kept(args)}, errors)
        del filters["before"]
        return filters, errors

    def _alerts(self, monitor):
        alerts = monitor.capabilities.get("alerts")
        return alerts.overview(monitor, limit=20) if alerts else None

    def context(self, monitor, args):
        filters, errors = self.filters(args)
        head = query.last_id(monitor.store)
        logs = query.query(monitor.store, limit=TAIL, **filters)
        newest = logs["entries"][0]["id"] if logs["entries"] else None
        return {"alerts": self._alerts(monitor), "logs": logs, "filters": filters, "errors": errors,
                "levels": list(LEVELS), "stats": query.stats(monitor.store), "cursor": _newest(head, newest),
                "can_operate": current_user.can("operator"), "can_edit_rules": current_user.can("admin"),
                "tail_poll": TAIL_POLL, "alerts_poll": ALERTS_POLL,
                "tail": TAIL}

    def alerts_part(self, monitor, args):
        """Render the alerts part alone (its poll), or None without the alerts capability."""
        alerts = self._alerts(monitor)
        if alerts is None:
            return None
        return self.render_part("monitor/panels/_logs_alerts.html", args, alerts=alerts, alerts_poll=ALERTS_POLL,
                                can_operate=current_user.can("operator"), can_edit_rules=current_user.can("admin"))

    def tail(self, monitor, args):
        """Render the log lines newer than ``after`` with the next poller; None (204) when none came."""
        after = args.get("after", "")
        if not CURSOR_RE.fullmatch(after):
            raise Refused("after is the id of an entry, such as 1700000000000-0")
        head = query.last_id(monitor.store)
        if _newest(head, after) == after:
            return None
        filters, _ = self.filters(args)
        entries = query.query(monitor.store, limit=TAIL, after=after, **filters)["entries"]
        newest = entries[0]["id"] if entries else None
        return self.render_part("monitor/panels/_logs_tail.html", args, entries=entries, tail_poll=TAIL_POLL,
                                cursor=_newest(head, newest, after), stats=query.stats(monitor.store))

    def _alerts_capability(self, monitor):
        alerts = monitor.capabilities.get("alerts")
        if alerts is None:
            raise Refused("alerts are not enabled", 404)
        return alerts

    def ack(self, monitor):
        """Acknowledge the alert the form names."""
        alert_id = body.fields(id=body.text(80)).get("id", "")
        alert = self._alerts_capability(monitor).acknowledge(monitor, alert_id, current_user.name)
        return f"acknowledged {alert['title']}"

    def silence(self, monitor):
        """Silence notifications as the form says (rule, labels, scope; duration or until; comment)."""
        silence = self._alerts_capability(monitor).silence(monitor, current_user.name)
        return f"silence {silence['id']} holds notifications until {format.fmt_time(silence['ends_at']).striptags()}"

    def unsilence(self, monitor):
        """End the silence the form names."""
        silence = self._alerts_capability(monitor).end_silence(monitor, body.fields(id=body.text(80)).get("id", ""))
        return f"ended silence {silence['id']}"
