"""The alerts-and-logs panel: active alerts with acknowledge, history, and the filtered log tail."""
from flask_login import current_user

from .. import alerts, audit, logs
from .base import Panel, register

#: Log lines the panel shows.
TAIL = 100


@register
class LogsPanel(Panel):
    name = "logs"
    title = "Alerts & logs"
    poll = "3s"
    actions = {"ack": ("operator", "ack")}

    def context(self, monitor, args):
        try:
            filters = logs.parse_filters(args)
            error = None
        except ValueError as exc:
            filters, error = logs.parse_filters({}), str(exc)
        return {"alerts": alerts.overview(monitor.store, monitor.config, monitor.alerts, limit=20),
                "logs": logs.query(monitor.store, limit=TAIL, **filters), "filters": filters,
                "levels": list(logs.LEVELS), "filter_error": error, "stats": logs.stats(monitor.store),
                "can_operate": current_user.can("operator")}

    def ack(self, monitor, form):
        """Acknowledge the alert the form names."""
        alert_id = form.get("id", "")
        alert = alerts.acknowledge(monitor.store, alert_id, current_user.name)
        if alert is None:
            raise ValueError("no active alert with this id")
        audit.record(monitor.store, "alert.ack", "ok", alert=alert_id)
        return f"acknowledged {alert['title']}"
