"""The Alert rules page (``/admin/alerts``): the rules with their states, and for admins, editing and channels.

Plain HTML forms that post and redirect back with a message, like the users page; the rules
and channels tables poll themselves and are morphed in place. A rule form is turned into the
API's rule object (``_rule_body``) and checked by the same ``rules.validate``; "Preview" posts
the same form and shows how the rule would have fared over the last 24 h, without saving. A
channel's URL is a field to write, never shown again (nor put back into a refused form).
"""
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from ...auth.decorators import role_required
from ...auth.guard import require_login
from ...auth.session import monitor_user
from ...core.errors import Refused
from ...core.state import state
from ...dashboard import transfer
from ...dashboard.routes import firing_alerts, nav_links
from ...web.body import as_object
from ...web.responses import register_handlers
from . import changes, channels, query, rules
from .metrics import METRICS
from .rules import OPS, SEVERITIES

bp = Blueprint("monitor_alerts", __name__, url_prefix="/admin/alerts")
bp.before_request(require_login)
bp.after_request(transfer.finish)
register_handlers(bp)
RULES_POLL, CHANNELS_POLL = "5s", "10s"
#: A rule form's fields that are the rule object's own (the rest: params, resolve, channels, enabled).
PLAIN = ("name", "metric", "scope", "op", "threshold", "window_s", "for_s", "severity", "labels", "reminder_s",
         "min_requests")


@bp.context_processor
def _page_context():
    # The monitor's own user: an error answered before the blueprint's hooks renders for nobody.
    user = monitor_user()
    return {"firing_alerts": firing_alerts, "links": nav_links(user) if user.is_authenticated else []}


def _listing(monitor):
    names = {cid: channel["name"] for cid, channel in channels.load(monitor.store, monitor.config).items()}
    return {**query.rule_listing(monitor.store, monitor.config), "channel_names": names, "rules_poll": RULES_POLL,
            "can_edit": current_user.can("admin"), "interval": monitor.config["MONITOR_ALERT_INTERVAL"]}


def _channels(monitor):
    return {"channels": channels.listing(monitor.store, monitor.config)["channels"], "channels_poll": CHANNELS_POLL}


def _page(form=None, status=200):
    monitor = state()
    context = _listing(monitor)
    if context["can_edit"]:
        context.update(_channels(monitor), kinds=channels.KINDS, channel_form=form or {},
                       smtp=bool(monitor.config["MONITOR_ALERT_SMTP_HOST"]))
    return render_template("monitor/alerts/rules.html", **context), status


@bp.get("/")
@role_required("viewer")
def page():
    """The rules (every role); channels and editing (admins)."""
    return _page()


@bp.get("/part/rules")
@role_required("viewer")
def rules_part():
    """The rules table alone: its poll."""
    return render_template("monitor/alerts/_rules_table.html", **_listing(state()))


@bp.get("/part/channels")
@role_required("admin")
def channels_part():
    """The channels table alone: its poll."""
    return render_template("monitor/alerts/_channels_table.html", **_channels(state()))


# ---------------------------------------------------------------- rules


def _plain(value):
    """A whole float as an int (``100`` in a form field, not ``100.0``)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _form_values(rule):
    """Return a rule object as the rule form's field values."""
    values = {name: _plain(rule[name]) for name in PLAIN}
    values["labels"] = ", ".join(f"{key}={value}" for key, value in rule["labels"].items())
    values.update({f"param_{name}": value for name, value in rule["params"].items()})
    values.update(resolve_threshold=_plain(rule["resolve"]["threshold"]), resolve_for_s=_plain(rule["resolve"]["for_s"]),
                  enabled=rule["enabled"], **{f"channel_{cid}": True for cid in rule["channels"]})
    return values


def _rule_body(form, channel_ids):
    """Return the rule object a rule form describes (its values still text: ``rules.validate`` parses them)."""
    body = {name: form.get(name, "") for name in PLAIN}
    found = METRICS.get(body["metric"])
    body["params"] = {name: form[f"param_{name}"] for name in (found.params if found else ())
                      if form.get(f"param_{name}")}
    body["resolve"] = {"threshold": form.get("resolve_threshold", ""), "for_s": form.get("resolve_for_s", "")}
    body["channels"] = [cid for cid in channel_ids if form.get(f"channel_{cid}")]
    body["enabled"] = "on" if form.get("enabled") else "off"
    return body


def _rule_form(values, rule_id=None, error=None, preview=None, status=200):
    monitor = state()
    return render_template(
        "monitor/alerts/rule_form.html", values=values, rule_id=rule_id, error=error, preview=preview,
        metrics=METRICS, ops=OPS, severities=SEVERITIES,
        channels=channels.listing(monitor.store, monitor.config)["channels"]), status


@bp.get("/rules/new")
@role_required("admin")
def new_rule():
    """An empty rule form, with the defaults filled in."""
    config = state().config
    return _rule_form({"metric": "latency_p95", "scope": "fleet", "op": ">", "window_s": config["MONITOR_ALERT_WINDOW"],
                       "for_s": _plain(config["MONITOR_ALERT_PENDING_S"]),
                       "resolve_for_s": _plain(config["MONITOR_ALERT_RESOLVE_S"]),
                       "severity": "warning", "reminder_s": 0, "enabled": True})


@bp.get("/rules/<rule_id>")
@role_required("admin")
def edit_rule(rule_id):
    """The form of one rule."""
    monitor = state()
    return _rule_form(_form_values(rules.get(monitor.store, monitor.config, rule_id)), rule_id)


def _save(rule_id=None):
    monitor = state()
    form = as_object("form")
    body = _rule_body(form, channels.load(monitor.store, monitor.config))
    try:
        if rule_id is None:
            rule = changes.create_rule(monitor, body, form=True)
        else:
            rule = changes.update_rule(monitor, rule_id, body, form=True)
    except Refused as exc:
        return _rule_form(form, rule_id, error=exc.detail, status=exc.status)
    flash(f"Saved the rule {rule['name']}: {rules.summary(rule)}.", "ok")
    return redirect(url_for("monitor_alerts.page"), 303)


@bp.post("/rules")
@role_required("admin")
def create_rule():
    """Create a rule from the form."""
    return _save()


@bp.post("/rules/<rule_id>")
@role_required("admin")
def update_rule(rule_id):
    """Save the form over a rule."""
    return _save(rule_id)


@bp.post("/rules/<rule_id>/delete")
@role_required("admin")
def delete_rule(rule_id):
    """Delete a rule."""
    changes.delete_rule(state(), rule_id)
    flash(f"Deleted the rule {rule_id}.", "ok")
    return redirect(url_for("monitor_alerts.page"), 303)


@bp.post("/preview")
@role_required("admin")
def preview():
    """Show the form again with how its rule would have fared over the last 24 h; nothing is saved."""
    monitor = state()
    form = as_object("form")
    rule_id = form.get("rule_id") or None
    try:
        found = changes.preview_rule(monitor, _rule_body(form, channels.load(monitor.store, monitor.config)), form=True)
    except Refused as exc:
        return _rule_form(form, rule_id, error=exc.detail, status=exc.status)
    return _rule_form(form, rule_id, preview=found)


# ---------------------------------------------------------------- channels


@bp.post("/channels")
@role_required("admin")
def create_channel():
    """Add a channel from the form."""
    form = as_object("form")
    body = {name: form[name] for name in ("name", "kind", "url", "to") if form.get(name)}
    try:
        channel = changes.create_channel(state(), body, form=True)
    except Refused as exc:
        flash(f"The channel was not added: {exc.detail}", "error")
        kept = {name: form.get(name, "") for name in ("name", "kind", "to")}  # never the URL
        return _page(form=kept, status=exc.status)
    flash(f"Added the channel {channel['name']} ({channel['kind']}, {channel['target']}).", "ok")
    return redirect(url_for("monitor_alerts.page", _anchor="channels"), 303)


@bp.post("/channels/<channel_id>/delete")
@role_required("admin")
def delete_channel(channel_id):
    """Delete a channel no rule routes to."""
    try:
        changes.delete_channel(state(), channel_id)
    except Refused as exc:
        flash(f"The channel was not deleted: {exc.detail}", "error")
        return _page(status=exc.status)
    flash(f"Deleted the channel {channel_id}.", "ok")
    return redirect(url_for("monitor_alerts.page", _anchor="channels"), 303)


@bp.post("/channels/<channel_id>/test")
@role_required("admin")
def test_channel(channel_id):
    """Send a test message now and come back with the result."""
    found = changes.test_channel(state(), channel_id, current_user.name)
    delivery = found["last_delivery"]
    if found["delivered"]:
        flash(f"Test delivered to {found['name']}: {delivery['detail']}.", "ok")
    else:
        flash(f"Test to {found['name']} failed: {delivery['detail']}.", "error")
    return redirect(url_for("monitor_alerts.page", _anchor="channels"), 303)
