"""Silences: notifications held while one matches; states and history still recorded.

A silence matches a rule by its id, by labels (every one given must be on the rule) and by
scope (``host:web-1`` matches the rules scoped to that host); what it names must all match.
It lasts for ``duration_s`` or ``until`` a moment, from ``starts_at`` (default now), with a
comment saying why, and ends by itself: expired ones are not answered, and the evaluator
deletes them. A notification held by a silence goes out when the silence ends, if the alert
is still in that state (a firing alert that resolved meanwhile was never told, so neither is
its resolution).

Redis: ``alerts:silences`` hash id → silence JSON; its TTL follows the last silence's end.
"""
import json
import secrets
from datetime import datetime, timezone

from ...core.errors import Refused
from . import fields

FIELDS = ("rule", "labels", "scope", "starts_at", "duration_s", "until", "comment")
MAX_SILENCES = 1000
MAX_DURATION_S = 90 * 86400
#: An expired silence is kept this long for the evaluator to see it end.
GRACE_S = 3600


def moment(body, name, form=False):
    """Return a moment field as epoch seconds: a number, or ISO-8601 text (no zone: UTC)."""
    value = body.get(name)
    if value is None or (form and value == ""):
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Refused(f"{name} must be epoch seconds or an ISO-8601 time such as 2026-12-01T18:00:00Z") from None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    return fields.number(body, name, 0, 1e11)


def validate(body, rule_ids, now, form=False):
    """Return the silence ``body`` describes (without its author), or refuse naming the field."""
    fields.check_fields(body, FIELDS)
    rule = fields.text(body, "rule", 40, form=form)
    if rule is not None and rule not in rule_ids:
        raise Refused("no rule with the id given in rule (GET alerts/rules lists them)")
    labels = fields.labels(body, "labels", form=form)
    scope = fields.text(body, "scope", 300, form=form)
    if scope is not None and scope != "fleet" and not (scope.partition(":")[0] in ("host", "endpoint")
                                                          and scope.partition(":")[2].strip()):
        raise Refused("scope is fleet, host:<name> or endpoint:<rule>")
    if rule is None and not labels and scope is None:
        raise Refused("a silence names a rule, labels or a scope (or several)")
    starts_at = moment(body, "starts_at", form) or now
    duration = fields.whole(body, "duration_s", 1, MAX_DURATION_S, form=form)
    until = moment(body, "until", form)
    if (duration is None) == (until is None):
        raise Refused("give either duration_s or until")
    ends_at = starts_at + duration if duration is not None else until
    if ends_at <= max(now, starts_at):
        raise Refused("the silence would end before it starts (or in the past)")
    if ends_at - starts_at > MAX_DURATION_S:
        raise Refused(f"a silence lasts at most {MAX_DURATION_S // 86400} days")
    return {"id": f"s_{secrets.token_hex(4)}", "rule": rule, "labels": labels, "scope": scope,
            "starts_at": round(starts_at, 3), "ends_at": round(ends_at, 3),
            "comment": fields.text(body, "comment", 500, required=True, form=form)}


def matches(silence, rule):
    """Tell whether ``silence`` holds the notifications of ``rule`` (a compiled rule)."""
    return ((silence["rule"] is None or silence["rule"] == rule.id)
            and all(rule.labels.get(key) == value for key, value in silence["labels"].items())
            and (silence["scope"] is None or silence["scope"] == rule.scope))


def active(silences, now):
    """Return the silences in force at ``now``."""
    return [s for s in silences.values() if s["starts_at"] <= now < s["ends_at"]]


# ---------------------------------------------------------------- storage


def silences_key(store):
    return store.key("alerts", "silences")


def decode(stored):
    return {silence_id: json.loads(raw) for silence_id, raw in stored.items()}


def listing(store, now):
    """Return the body of ``GET alerts/silences``: those not ended, soonest end first."""
    found = [s for s in decode(store.redis.hgetall(silences_key(store))).values() if s["ends_at"] > now]
    return {"silences": sorted(found, key=lambda s: (s["ends_at"], s["id"]))}


def create(store, silence, now):
    """Store a silence; the hash lives until the last silence has ended."""
    key = silences_key(store)
    if store.redis.hlen(key) >= MAX_SILENCES:
        raise Refused(f"at most {MAX_SILENCES} silences; end some first", 409)
    keep = int(silence["ends_at"] - now) + GRACE_S
    pipe = store.redis.pipeline(transaction=False)
    pipe.hset(key, silence["id"], json.dumps(silence))
    pipe.ttl(key)
    ttl = pipe.execute()[1]
    store.redis.expire(key, max(keep, ttl))


def remove(store, silence_id, now):
    """End a silence now (delete it); return it, or refuse with 404 when none is in force or to come."""
    raw = store.redis.hget(silences_key(store), silence_id)
    if raw is None or json.loads(raw)["ends_at"] <= now:
        raise Refused("no silence with this id (ended already?)", 404)
    store.redis.hdel(silences_key(store), silence_id)
    return json.loads(raw)
