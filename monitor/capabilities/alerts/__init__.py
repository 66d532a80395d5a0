"""The alerts capability: rules over metrics and heartbeats, evaluated once for the fleet.

``rules`` holds what each rule reads and when it is breached, ``evaluator`` the fleet's
one evaluator and its states, ``notify`` the notifications, ``query`` the read side;
``api`` and ``spec`` are its surfaces, and the logs panel shows its alerts.
"""
from ...core import audit
from ...core.capability import Capability
from ...core.config import Setting, http_url, number
from ...core.errors import Refused
from . import api, query, spec
from .evaluator import Evaluator


class Alerts(Capability):
    name = "alerts"
    settings = (
        Setting("MONITOR_ALERT_INTERVAL", 5.0, number(0.5, 300), "seconds, 0.5 to 300",
                "How often the fleet's one alert evaluator (whoever holds the lock) checks the rules."),
        Setting("MONITOR_ALERT_PENDING_S", 30.0, number(0, 3600), "seconds, 0 to 3600",
                "How long a rule must stay breached (pending) before it fires."),
        Setting("MONITOR_ALERT_RESOLVE_S", 60.0, number(0, 3600), "seconds, 0 to 3600",
                "How long a firing rule must stay clear (below 80% of its limit) before it resolves, so a "
                "value hovering at the limit does not flap."),
        Setting("MONITOR_ALERT_WINDOW", 300, number(10, 86400, int), "seconds, 10 to 86400",
                "Window of the 5xx-rate and p95-latency rules."),
        Setting("MONITOR_ALERT_ERROR_RATE", 0.05, number(0.0, 1.0), "a fraction, 0 to 1",
                "5xx rate above which the error-rate rule is breached."),
        Setting("MONITOR_ALERT_MIN_REQUESTS", 20, number(1, 10_000_000, int), "a whole number, 1 to 10000000",
                "Requests the window needs before the error-rate and latency rules judge at all."),
        Setting("MONITOR_ALERT_P95_MS", 2000.0, number(1, 600_000), "milliseconds, 1 to 600000",
                "p95 latency above which the latency rule is breached."),
        Setting("MONITOR_ALERT_RSS_MB", 1024.0, number(1, 1_000_000), "MB, 1 to 1000000",
                "Resident memory of any one worker above which the RSS rule is breached."),
        Setting("MONITOR_ALERT_RSS_GROWTH_MB_H", 200.0, number(1, 1_000_000), "MB per hour, 1 to 1000000",
                "RSS growth of a worker (measured over 15 to 60 min) above which the leak rule is breached."),
        Setting("MONITOR_ALERT_WEBHOOK_URL", "", http_url, "empty, or an http(s) URL",
                "Where notifications are POSTed as JSON with a Slack-compatible `text` field (empty: log only)."),
        Setting("MONITOR_ALERT_WEBHOOK_TIMEOUT", 5.0, number(0.1, 60), "seconds, 0.1 to 60",
                "Timeout of one webhook attempt."),
        Setting("MONITOR_ALERT_WEBHOOK_RETRIES", 3, number(0, 10, int), "a whole number, 0 to 10",
                "Retries of a failed webhook delivery (back-off 1, 2, 4... s), off the request path."),
    )

    def init_app(self, app, monitor):
        """Run the evaluator as a flusher task of this process."""
        monitor.alerts = Evaluator(monitor.store, app.config)
        monitor.flusher.add_task(monitor.alerts)

    def register_api(self, bp):
        api.register(bp, self)

    def spec(self, config):
        return spec.paths(config), spec.SCHEMAS

    def overview(self, monitor, limit=50):
        """Return the active alerts, their history (newest first) and the rules."""
        return query.overview(monitor.store, monitor.config, monitor.alerts, limit)

    def firing(self, monitor):
        """Return the firing alerts (the header badge's count and titles)."""
        return query.firing(monitor.store, monitor.alerts)

    def acknowledge(self, monitor, alert_id, user):
        """Acknowledge an active alert and audit it; refuse one that is not active."""
        alert = query.acknowledge(monitor.store, alert_id, user)
        audit.record(monitor.store, "alert.ack", "ok" if alert else "not_found", alert=alert_id)
        if alert is None:
            raise Refused("no active alert with this id", 404)
        return alert


capability = Alerts()
