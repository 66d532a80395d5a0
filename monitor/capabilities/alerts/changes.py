"""Every change to rules, silences and channels: validated, stored and audited (the API, the pages, the panel).

Each takes the request's body as a dict (``form=True``: a form's text values) and checks it
with its object's one ``validate``. Every attempt is audited, refused ones with the reason;
an audit entry names a channel by id, name and kind, never by its URL.
"""
import time

from ...core import audit
from ...core.errors import Refused
from . import channels, preview, rules, silences
from .notify import message


def _change(monitor, action, run, describe, **detail):
    """Run ``run()`` and audit it: ``describe(result)`` adds to the entry of a change that was made."""
    try:
        result = run()
    except Refused as exc:
        audit.record(monitor.store, action, "refused", reason=exc.detail, **detail)
        raise
    audit.record(monitor.store, action, "ok", **{**detail, **describe(result)})
    return result


def _rule_entry(rule):
    return {"rule": rule["id"], "name": rule["name"], "condition": rules.summary(rule), "enabled": rule["enabled"],
            "channels": rule["channels"]}


def _valid_rule(monitor, body, rule_id=None, form=False):
    return rules.validate(body, monitor.config, channels.load(monitor.store, monitor.config), rule_id, form)


def create_rule(monitor, body, form=False):
    """Create a rule from ``body``; return it."""
    def run():
        rule = _valid_rule(monitor, body, form=form)
        rules.create(monitor.store, monitor.config, rule)
        return rule
    return _change(monitor, "alert.rule.create", run, _rule_entry)


def update_rule(monitor, rule_id, body, form=False):
    """Replace rule ``rule_id`` with ``body``; return it."""
    def run():
        rules.get(monitor.store, monitor.config, rule_id)
        rule = _valid_rule(monitor, body, rule_id, form)
        rules.replace(monitor.store, monitor.config, rule)
        return rule
    return _change(monitor, "alert.rule.update", run, _rule_entry, rule=rule_id)


def delete_rule(monitor, rule_id):
    """Delete rule ``rule_id`` and its alert state."""
    return _change(monitor, "alert.rule.delete", lambda: rules.remove(monitor.store, monitor.config, rule_id),
                   lambda _: {}, rule=rule_id)


def preview_rule(monitor, body, form=False):
    """Return how the rule ``body`` describes would have fared over the last 24 h (nothing stored)."""
    return preview.preview(monitor, _valid_rule(monitor, body, form=form))


def create_silence(monitor, body, user, form=False):
    """Create a silence from ``body``, by ``user``; return it."""
    def run():
        now = time.time()
        silence = silences.validate(body, rules.load(monitor.store, monitor.config), now, form)
        silence.update(created_by=user, created_at=round(now, 3))
        silences.create(monitor.store, silence, now)
        return silence
    return _change(monitor, "alert.silence.create", run, lambda s: {
        "silence": s["id"], "rule": s["rule"], "labels": s["labels"], "scope": s["scope"],
        "ends_at": s["ends_at"], "comment": s["comment"]})


def end_silence(monitor, silence_id):
    """End silence ``silence_id`` now; return it."""
    return _change(monitor, "alert.silence.delete", lambda: silences.remove(monitor.store, silence_id, time.time()),
                   lambda _: {}, silence=silence_id)


def _channel_entry(channel):
    return {"channel": channel["id"], "name": channel["name"], "kind": channel["kind"]}


def create_channel(monitor, body, form=False):
    """Create a channel from ``body``; return its public view (no URL)."""
    def run():
        channel = channels.validate(body, monitor.config, form)
        channels.create(monitor.store, channel)
        return channel
    return channels.public(_change(monitor, "alert.channel.create", run, _channel_entry), None)


def delete_channel(monitor, channel_id):
    """Delete channel ``channel_id`` (refused while a rule routes to it)."""
    return _change(monitor, "alert.channel.delete", lambda: channels.remove(
        monitor.store, monitor.config, channel_id, rules.load(monitor.store, monitor.config)),
        lambda _: {}, channel=channel_id)


def test_channel(monitor, channel_id, user):
    """Send a test message to channel ``channel_id`` now, once; return its public view with the result."""
    channel = channels.get(monitor.store, monitor.config, channel_id)
    now = time.time()
    alert = {"id": f"test-{int(now)}", "rule": "test", "title": "Test notification", "state": "test",
             "severity": "info", "since": now,
             "detail": f"a test of the channel {channel['name']}, sent by {user} from {monitor.process.host}"}
    msg = message([(alert, "test")], monitor.config["MONITOR_FLEET_NAME"], monitor.alerts.dashboard_url, test=True)
    delivery = monitor.alerts.notifier.send_now(channel, msg)
    audit.record(monitor.store, "alert.channel.test", "ok" if delivery["ok"] else "failed",
                 **_channel_entry(channel), detail=delivery["detail"])
    return {**channels.public(channel, delivery), "delivered": delivery["ok"]}
