"""The alerts-and-logs panel: the filtered log tail and, with the alerts capability, its alerts."""
from flask_login import current_user

from ...core.errors import Refused
from ...web import body
from ...web.panel import Panel
from . import query
from .handler import LEVELS

#: Log lines the panel shows.
TAIL = 100


class LogsPanel(Panel):
    name = "logs"
    title = "Alerts & logs"
    poll = "3s"
    params = ("level", "q", "host", "pid")
    actions = {"ack": ("operator", "ack")}

    def context(self, monitor, args):
        try:
            filters, error = query.parse_filters(args), None
        except Refused as exc:
            filters, error = query.parse_filters({}), exc.detail
        alerts = monitor.capabilities.get("alerts")
        return {"alerts": alerts.overview(monitor, limit=20) if alerts else None,
                "logs": query.query(monitor.store, limit=TAIL, **filters), "filters": filters,
                "levels": list(LEVELS), "filter_error": error, "stats": query.stats(monitor.store),
                "can_operate": current_user.can("operator")}

    def ack(self, monitor):
        """Acknowledge the alert the form names."""
        alert_id = body.fields(id=body.text(80)).get("id", "")
        alerts = monitor.capabilities.get("alerts")
        if alerts is None:
            raise Refused("alerts are not enabled", 404)
        alert = alerts.acknowledge(monitor, alert_id, current_user.name)
        return f"acknowledged {alert['title']}"
