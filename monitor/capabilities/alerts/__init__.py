"""The alerts capability: rules as data, evaluated once for the fleet, silenced, routed to channels.

``metrics`` is what a rule can watch (the registry), ``rules`` the rule object, its validation,
its default set and storage, ``evaluator`` the fleet's one evaluator and its states,
``silences`` and ``channels`` their objects, ``notify`` the deliveries, ``preview`` the replay
of a rule over the last 24 h, ``changes`` every audited change, ``query`` the read side;
``api``, ``pages`` (the Alert rules page) and ``spec`` are its surfaces, and the logs panel
shows its alerts and silences.
"""
from flask import url_for

from ...core import audit
from ...core.capability import Capability
from ...core.config import Setting, choice, http_url, number, optional_text
from ...core.errors import Refused
from ...web import body
from . import api, changes, pages, query, silences, spec
from .evaluator import Evaluator


class Alerts(Capability):
    name = "alerts"
    settings = (
        Setting("MONITOR_ALERT_INTERVAL", 5.0, number(0.5, 300), "seconds, 0.5 to 300",
                "How often the fleet's one alert evaluator (whoever holds the lock) judges every rule; an "
                "edited rule counts from the next round."),
        Setting("MONITOR_ALERT_PENDING_S", 30.0, number(0, 3600), "seconds, 0 to 3600",
                "The default rules' `for_s` (and a new rule's default): how long a rule must stay breached "
                "(pending) before it fires."),
        Setting("MONITOR_ALERT_RESOLVE_S", 60.0, number(0, 3600), "seconds, 0 to 3600",
                "The default rules' `resolve.for_s` (and a new rule's default): how long a firing rule must "
                "stay clear of its resolve threshold (80% of its limit by default) before it resolves, so a "
                "value hovering at the limit does not flap."),
        Setting("MONITOR_ALERT_WINDOW", 300, number(10, 86400, int), "seconds, 10 to 86400",
                "Window of the default 5xx-rate and p95-latency rules (and a new rule's default)."),
        Setting("MONITOR_ALERT_ERROR_RATE", 0.05, number(0.0, 1.0), "a fraction, 0 to 1",
                "Threshold of the default 5xx-rate rule, created on the fleet's first start."),
        Setting("MONITOR_ALERT_MIN_REQUESTS", 20, number(1, 10_000_000, int), "a whole number, 1 to 10000000",
                "Requests a window needs before the default error-rate and latency rules judge at all (and "
                "a new 5xx-rate or latency rule's default `min_requests`)."),
        Setting("MONITOR_ALERT_P95_MS", 2000.0, number(1, 600_000), "milliseconds, 1 to 600000",
                "Threshold of the default p95-latency rule, created on the fleet's first start."),
        Setting("MONITOR_ALERT_RSS_MB", 1024.0, number(1, 1_000_000), "MB, 1 to 1000000",
                "Threshold of the default worker-RSS rule, created on the fleet's first start."),
        Setting("MONITOR_ALERT_RSS_GROWTH_MB_H", 200.0, number(1, 1_000_000), "MB per hour, 1 to 1000000",
                "Threshold of the default leak rule (RSS growth of a worker over 15 to 60 min)."),
        Setting("MONITOR_ALERT_WEBHOOK_URL", "", http_url, "empty, or an http(s) URL",
                "A webhook channel (`settings_webhook`) that the default rules route to: POSTed JSON with a "
                "Slack-compatible `text` field (empty: none)."),
        Setting("MONITOR_ALERT_WEBHOOK_TIMEOUT", 5.0, number(0.1, 60), "seconds, 0.1 to 60",
                "Timeout of one delivery attempt to any channel (webhook POST or SMTP session)."),
        Setting("MONITOR_ALERT_WEBHOOK_RETRIES", 3, number(0, 10, int), "a whole number, 0 to 10",
                "Retries of a failed delivery to any channel (back-off 1, 2, 4... s), off the request path."),
        Setting("MONITOR_ALERT_SMTP_HOST", "", optional_text, "empty, or a host name",
                "SMTP server of the email channels (empty: no email channels)."),
        Setting("MONITOR_ALERT_SMTP_PORT", 587, number(1, 65535, int), "a port, 1 to 65535",
                "Port of the SMTP server."),
        Setting("MONITOR_ALERT_SMTP_TLS", "STARTTLS", choice("STARTTLS", "SSL", "NONE"), "STARTTLS, SSL or NONE",
                "How the SMTP session is encrypted: STARTTLS on a plain connection, SSL from the start "
                "(port 465), or NONE (a local relay only)."),
        Setting("MONITOR_ALERT_SMTP_USER", "", optional_text, "empty, or a user name",
                "SMTP login (empty: no login)."),
        Setting("MONITOR_ALERT_SMTP_PASSWORD", "", optional_text, "empty, or the password",
                "SMTP password; never shown, answered or logged."),
        Setting("MONITOR_ALERT_SMTP_FROM", "", optional_text, "empty, or an address",
                "Sender of alert mail (empty: monitor@MONITOR_HOST_NAME)."),
    )

    def init_app(self, app, monitor):
        """Run the evaluator as a flusher task of this process."""
        monitor.alerts = Evaluator(monitor)
        monitor.flusher.add_task(monitor.alerts)

    def register_api(self, bp):
        api.register(bp, self)

    def blueprints(self):
        return (pages.bp,)

    def spec(self, config):
        return spec.paths(config), spec.SCHEMAS

    def links(self, user):
        return [{"title": "Alert rules", "url": url_for("monitor_alerts.page")}]

    def overview(self, monitor, limit=50):
        """Return the active alerts, their history (newest first), the rules and the silences."""
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

    def silence(self, monitor, user):
        """Create a silence from the request's form (the panel's; an ``until`` given wins over its duration);
        return it."""
        form = body.formdata(*silences.FIELDS)
        fields = {name: form[name] for name in silences.FIELDS if form.get(name)}
        if "until" in fields:
            fields.pop("duration_s", None)
        return changes.create_silence(monitor, fields, user, form=True)

    def end_silence(self, monitor, silence_id):
        """End a silence now; return it."""
        return changes.end_silence(monitor, silence_id)


capability = Alerts()
