"""Notification channels: where a rule's notifications go, and the last delivery to each.

A channel is a generic JSON ``webhook``, a ``slack`` or ``teams`` incoming webhook (their
message formats), or ``email`` (recipients; the SMTP server and its credentials come from
the ``MONITOR_ALERT_SMTP_*`` settings, never from the API). A webhook's URL is its secret
(Slack's and Teams' carry the token in the path): it is stored, used by the notifier, and
never answered, shown or logged: the public view (``public``) names its scheme and host
only. ``MONITOR_ALERT_WEBHOOK_URL``, when set, is the channel ``settings_webhook`` (the
default rules route to it), listed but neither stored nor deletable.

Redis: ``alerts:channels`` hash id → channel JSON (persists); ``alerts:deliveries`` hash id →
the last delivery ``{at, ok, event, attempts, detail}`` (kept 30 days after the last one).
"""
import json
import re
import secrets
import time
from urllib.parse import urlsplit

from ...core.errors import Refused
from . import fields

#: The channel of MONITOR_ALERT_WEBHOOK_URL.
SETTINGS_CHANNEL = "settings_webhook"
KINDS = ("webhook", "slack", "teams", "email")
FIELDS = ("id", "name", "kind", "url", "to")
MAX_CHANNELS = 100
MAX_RECIPIENTS = 20
DELIVERY_TTL_S = 30 * 86400
_EMAIL = re.compile(r"^[^@\s,;<>\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


def validate(body, config, form=False):
    """Return the channel ``body`` describes (its secret URL included), or refuse naming the field.

    A refusal never repeats the URL.
    """
    fields.check_fields(body, FIELDS)
    given = body.get("id")
    if form and given == "":
        given = None
    channel_id = fields.an_id(given, "id") if given is not None else f"c_{secrets.token_hex(4)}"
    if channel_id == SETTINGS_CHANNEL:
        raise Refused(f"{SETTINGS_CHANNEL} is MONITOR_ALERT_WEBHOOK_URL's channel")
    channel = {"id": channel_id, "name": fields.text(body, "name", 100, required=True, form=form),
               "kind": fields.choice(body, "kind", KINDS, required=True, form=form)}
    if channel["kind"] == "email":
        if body.get("url") not in (None, ""):
            raise Refused("an email channel takes `to`, not a url")
        if not config["MONITOR_ALERT_SMTP_HOST"]:
            raise Refused("email needs an SMTP server: set MONITOR_ALERT_SMTP_HOST (and its other settings)")
        channel["to"] = _recipients(body.get("to"), form)
        return channel
    if body.get("to") not in (None, ""):
        raise Refused(f"a {channel['kind']} channel takes `url`, not `to`")
    url = body.get("url")
    if not isinstance(url, str) or len(url) > 2000 or not _is_http_url(url.strip()):
        raise Refused("url must be an http:// or https:// URL with a host, up to 2000 characters")
    channel["url"] = url.strip()
    return channel


def _is_http_url(url):
    if re.search(r"[\s\x00-\x1f\x7f]", url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises ValueError)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _recipients(value, form):
    if form and isinstance(value, str):
        value = [part for part in re.split(r"[,\s]+", value) if part]
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise Refused("to must be a list of e-mail addresses")
    if len(value) > MAX_RECIPIENTS:
        raise Refused(f"to lists at most {MAX_RECIPIENTS} addresses")
    for address in value:
        if not _EMAIL.match(address):
            raise Refused("to must hold e-mail addresses such as ops@example.com")
    return value


def target(channel):
    """Return where a channel sends, without its secret: ``https://hooks.slack.com/…`` or the recipients."""
    if channel["kind"] == "email":
        return ", ".join(channel["to"])
    parts = urlsplit(channel["url"])
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"


def public(channel, delivery):
    """Return a channel as the API answers it: never its URL."""
    found = {"id": channel["id"], "kind": channel["kind"], "name": channel["name"], "target": target(channel),
             "last_delivery": delivery, "source": "settings" if channel["id"] == SETTINGS_CHANNEL else "api"}
    if channel["kind"] == "email":
        found["to"] = list(channel["to"])
    return found


def settings_channel(config):
    """Return MONITOR_ALERT_WEBHOOK_URL's channel, or None when it is unset."""
    url = config["MONITOR_ALERT_WEBHOOK_URL"]
    if not url:
        return None
    return {"id": SETTINGS_CHANNEL, "name": "MONITOR_ALERT_WEBHOOK_URL", "kind": "webhook", "url": url}


def secrets_of(channel, config):
    """Return the texts a delivery to ``channel`` must never log or record: its URL and path, SMTP credentials."""
    found = [config["MONITOR_ALERT_SMTP_PASSWORD"]]
    if channel.get("url"):
        parts = urlsplit(channel["url"])
        token = parts.path.rstrip("/").rsplit("/", 1)[-1]  # a token-like last segment, quoted alone
        found += [channel["url"], parts.path + (f"?{parts.query}" if parts.query else ""), parts.password or "",
                  parts.query, token if len(token) >= 12 else ""]
    return [text for text in found if text and len(text) >= 4]


# ---------------------------------------------------------------- storage


def channels_key(store):
    return store.key("alerts", "channels")


def deliveries_key(store):
    return store.key("alerts", "deliveries")


def decode(stored, config):
    """Return ``{id: channel}`` from the stored hash, with MONITOR_ALERT_WEBHOOK_URL's channel."""
    found = {channel_id: json.loads(raw) for channel_id, raw in stored.items()}
    settings = settings_channel(config)
    if settings:
        found[SETTINGS_CHANNEL] = settings
    return found


def load(store, config):
    """Return every channel ``{id: channel}``, secrets included (for the notifier and the checks)."""
    return decode(store.redis.hgetall(channels_key(store)), config)


def listing(store, config):
    """Return the body of ``GET alerts/channels``: each channel's public view, by name."""
    pipe = store.redis.pipeline(transaction=False)
    pipe.hgetall(channels_key(store))
    pipe.hgetall(deliveries_key(store))
    stored, deliveries = pipe.execute()
    found = [public(channel, json.loads(deliveries[channel_id]) if channel_id in deliveries else None)
             for channel_id, channel in decode(stored, config).items()]
    return {"channels": sorted(found, key=lambda c: (c["name"].lower(), c["id"]))}


def get(store, config, channel_id):
    """Return the channel ``channel_id`` (secrets included), or refuse with 404."""
    found = load(store, config).get(channel_id)
    if found is None:
        raise Refused("no channel with this id", 404)
    return found


def create(store, channel):
    """Store a new channel; refuse a taken id (409) or one too many."""
    if store.redis.hlen(channels_key(store)) >= MAX_CHANNELS:
        raise Refused(f"a fleet holds at most {MAX_CHANNELS} channels; delete one first", 409)
    if not store.redis.hsetnx(channels_key(store), channel["id"], json.dumps(channel)):
        raise Refused("a channel with this id exists", 409)


def remove(store, config, channel_id, rules):
    """Delete a channel no rule routes to; refuse with 404 (none), 409 (in use or from the settings)."""
    get(store, config, channel_id)
    if channel_id == SETTINGS_CHANNEL:
        raise Refused("this channel is MONITOR_ALERT_WEBHOOK_URL: unset that setting to remove it", 409)
    users = sorted(rule["id"] for rule in rules.values() if channel_id in rule["channels"])
    if users:
        raise Refused(f"rules route to this channel: {', '.join(users[:10])}; take it out of them first", 409)
    pipe = store.redis.pipeline(transaction=False)
    pipe.hdel(channels_key(store), channel_id)
    pipe.hdel(deliveries_key(store), channel_id)
    pipe.execute()


def record_delivery(store, channel_id, ok, event, attempts, detail, now=None):
    """Store a channel's last delivery result (the caller scrubbed ``detail`` of secrets); return it."""
    delivery = {"at": round(time.time() if now is None else now, 3), "ok": ok, "event": event,
                "attempts": attempts, "detail": detail}
    pipe = store.redis.pipeline(transaction=False)
    pipe.hset(deliveries_key(store), channel_id, json.dumps(delivery))
    pipe.expire(deliveries_key(store), DELIVERY_TTL_S)
    pipe.execute()
    return delivery
