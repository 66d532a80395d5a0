"""Alert rules as data: the rule object, its validation, the default set, and their storage.

A rule object (what GET answers and PUT takes back)::

    {"id", "name", "metric", "params", "scope", "op", "threshold", "window_s", "for_s",
     "resolve": {"threshold", "for_s"}, "severity", "labels", "channels", "reminder_s",
     "min_requests", "enabled"}

``scope`` is ``fleet``, ``host:<name>`` or ``endpoint:<rule>`` (``endpoint:GET <rule>`` for
one method). ``resolve`` is the hysteresis: a firing rule is judged against the resolve
threshold, and resolves only after staying clear of it for ``resolve.for_s``. A resolve
threshold left null follows the threshold (80% of it for ``>``, the threshold itself for
``<``: ``clears_at``), so a PUT that changes the threshold moves it too.

Rules live in one Redis hash (``alerts:rules``, no TTL: they persist). The first read of a
fleet that has never had rules creates the default set from the ``MONITOR_ALERT_*`` settings
(``defaults``), once (a marker key, set in the same script). The evaluator reads the hash each
round, so an edit counts everywhere within one evaluation interval.
"""
import json
import operator
import secrets

from ...core.errors import Refused
from . import fields
from .channels import SETTINGS_CHANNEL
from .metrics import METRICS, fmt

FIELDS = ("id", "name", "metric", "params", "scope", "op", "threshold", "window_s", "for_s", "resolve",
          "severity", "labels", "channels", "reminder_s", "min_requests", "enabled")
OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
SEVERITIES = ("info", "warning", "critical")
#: The default resolve threshold of a ``>`` rule, as a share of its threshold.
RESOLVE_RATIO = 0.8
#: Rules a fleet may hold (the evaluation benchmark measures up to this many).
MAX_RULES = 1000
MAX_CHANNELS = 10
MAX_WINDOW_S = 86400
MAX_FOR_S = 86400.0
#: Longest reminder interval; 0 is no reminder.
MAX_REMINDER_S = 7 * 86400
MIN_REMINDER_S = 60
#: KEYS: the seeded marker, the rules hash; ARGV: id, rule JSON, ... Creates the defaults once per fleet.
SEED = """
if redis.call('SET', KEYS[1], '1', 'NX') then
  for i = 1, #ARGV, 2 do redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) end
  return 1
end
return 0
"""


def clears_at(op, threshold):
    """Return the default resolve threshold of a rule: 80% of a ``>`` limit; a ``<`` limit itself.

    A ``<`` rule watches counts such as workers alive, where a band above the limit could ask
    for more workers than the fleet has, so it resolves at the limit (after its quiet period).
    """
    return round(threshold * RESOLVE_RATIO, 6) if op in (">", ">=") else threshold


def defaults(config):
    """Return the rules a fleet starts with, from the ``MONITOR_ALERT_*`` settings: six, and two on its
    exception groups when the exceptions capability runs."""
    def rule(rule_id, name, metric, threshold, severity, min_requests=0):
        return {"id": rule_id, "name": name, "metric": metric, "params": {}, "scope": "fleet", "op": ">",
                "threshold": float(threshold), "window_s": config["MONITOR_ALERT_WINDOW"],
                "for_s": float(config["MONITOR_ALERT_PENDING_S"]),
                "resolve": {"threshold": None, "for_s": float(config["MONITOR_ALERT_RESOLVE_S"])},
                "severity": severity, "labels": {}, "channels": [SETTINGS_CHANNEL], "reminder_s": 0,
                "min_requests": min_requests, "enabled": True}
    least = config["MONITOR_ALERT_MIN_REQUESTS"]
    return [
        rule("error_rate", "5xx rate", "error_rate", config["MONITOR_ALERT_ERROR_RATE"], "critical", least),
        rule("latency_p95", "p95 latency", "latency_p95", config["MONITOR_ALERT_P95_MS"], "warning", least),
        rule("worker_rss", "worker RSS", "worker_rss", config["MONITOR_ALERT_RSS_MB"], "warning"),
        rule("rss_growth", "RSS growth (leak)", "rss_growth", config["MONITOR_ALERT_RSS_GROWTH_MB_H"], "warning"),
        rule("heartbeat", "missing heartbeats", "stale_heartbeats", 0, "critical"),
        rule("redis", "Redis unreachable", "redis_unreachable", 0, "critical"),
    ] + ([
        rule("exception_new", "new exception group", "exception_groups_new", 0, "warning"),
        rule("exception_regression", "exception regression", "exception_regressions", 0, "critical"),
    ] if "monitor.capabilities.exceptions" in config["MONITOR_CAPABILITIES"] else [])


# ---------------------------------------------------------------- validation


def validate(body, config, channel_ids, rule_id=None, form=False):
    """Return the rule object ``body`` describes, defaults filled in, or refuse naming the field.

    ``rule_id`` is the rule a PUT replaces (the body may repeat its id); ``channel_ids`` the
    channels that exist. With ``form``, values are a form's text (see ``fields``).
    """
    fields.check_fields(body, FIELDS)
    given = body.get("id")
    if form and given == "":
        given = None
    if rule_id is not None and given is not None and given != rule_id:
        raise Refused("id must be the id in the URL, or left out")
    rule_id = rule_id or (fields.an_id(given, "id") if given is not None else f"r_{secrets.token_hex(4)}")
    if rule_id == "preview":
        raise Refused("preview is not a rule id (POST alerts/rules/preview previews a rule)")
    name = fields.text(body, "name", 100, required=True, form=form)
    found = METRICS[fields.choice(body, "metric", tuple(METRICS), required=True, form=form)]
    if found.name == "redis_unreachable" and rule_id != "redis":
        raise Refused("redis_unreachable is judged by the evaluator itself: edit the built-in rule redis")
    op = fields.choice(body, "op", tuple(OPS), required=True, form=form)
    threshold = fields.number(body, "threshold", 0, found.most, required=True, form=form)
    reminder_s = fields.whole(body, "reminder_s", 0, MAX_REMINDER_S, default=0, form=form)
    if 0 < reminder_s < MIN_REMINDER_S:
        raise Refused(f"reminder_s is 0 (no reminder) or at least {MIN_REMINDER_S}")
    return {
        "id": rule_id, "name": name, "metric": found.name, "params": _params(body, found, form),
        "scope": _scope(body, found, form), "op": op, "threshold": threshold,
        "window_s": fields.whole(body, "window_s", 10, MAX_WINDOW_S, default=config["MONITOR_ALERT_WINDOW"], form=form),
        "for_s": fields.number(body, "for_s", 0, MAX_FOR_S, default=float(config["MONITOR_ALERT_PENDING_S"]), form=form),
        "resolve": _resolve(body, op, threshold, found, config, form),
        "severity": fields.choice(body, "severity", SEVERITIES, default="warning", form=form),
        "labels": fields.labels(body, "labels", form=form),
        "channels": _channels(body, channel_ids),
        "reminder_s": reminder_s,
        "min_requests": fields.whole(body, "min_requests", 0, 10_000_000, form=form,
                                     default=config["MONITOR_ALERT_MIN_REQUESTS"] if found.needs_requests else 0),
        "enabled": fields.flag(body, "enabled", True, form=form),
    }


def _params(body, found, form):
    value = body.get("params")
    if value is None or (form and value == ""):
        return {}
    if not isinstance(value, dict):
        raise Refused("params must be an object")
    unknown = sorted(set(value) - set(found.params))
    if unknown:
        takes = ", ".join(found.params) or "none"
        raise Refused(f"params of {found.name} are {takes}; not {', '.join(str(name)[:40] for name in unknown[:5])}")
    parsed = {}
    for name, parse in found.params.items():
        if value.get(name) is not None:
            try:
                parsed[name] = parse(value[name], form)
            except ValueError as exc:
                raise Refused(f"params.{exc}") from None
    return parsed


def _scope(body, found, form):
    scope = fields.text(body, "scope", 300, default="fleet", form=form)
    kind, sep, value = scope.partition(":")
    if kind not in ("fleet", "host", "endpoint") or bool(sep) == (kind == "fleet") or (sep and not value.strip()):
        raise Refused("scope is fleet, host:<name> or endpoint:<rule> (such as endpoint:/demo/sleep)")
    if kind not in found.scopes:
        raise Refused(f"{found.name} takes the scope {' or '.join(found.scopes)}")
    if kind == "endpoint" and not value.strip().split(" ")[-1].startswith("/"):
        raise Refused("an endpoint scope names a URL rule, such as endpoint:/demo/sleep or endpoint:GET /demo/sleep")
    return f"{kind}:{value.strip()}" if sep else kind


def _resolve(body, op, threshold, found, config, form):
    value = body.get("resolve")
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise Refused("resolve must be an object: {\"threshold\": number, \"for_s\": seconds}")
    fields.check_fields(value, ("threshold", "for_s"))
    limit = fields.number(value, "threshold", 0, found.most, default=None, form=form)
    if limit is not None and ((op in (">", ">=") and limit > threshold) or (op in ("<", "<=") and limit < threshold)):
        side = "at most" if op in (">", ">=") else "at least"
        raise Refused(f"resolve.threshold must be {side} the threshold: a firing rule clears on the safe side of it")
    return {"threshold": limit, "for_s": fields.number(value, "for_s", 0, MAX_FOR_S, form=form,
                                                       default=float(config["MONITOR_ALERT_RESOLVE_S"]))}


def _channels(body, channel_ids):
    value = body.get("channels")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Refused("channels must be a list of channel ids")
    if len(value) > MAX_CHANNELS or len(set(value)) != len(value):
        raise Refused(f"channels lists at most {MAX_CHANNELS} distinct channel ids")
    unknown = [item for item in value if item not in channel_ids and item != SETTINGS_CHANNEL]
    if unknown:
        raise Refused(f"no channel with the id {unknown[0][:40]!r} (GET alerts/channels lists them)")
    return value


# ---------------------------------------------------------------- a rule, ready to judge


class Rule:
    """A stored rule, compiled once: judges a metric's reading, below its resolve threshold while firing."""

    __slots__ = ("data", "id", "name", "metric", "params", "scope_kind", "scope_value", "op", "compare",
                 "threshold", "window_s", "for_s", "resolve_threshold", "resolve_for_s", "severity", "labels",
                 "channels", "reminder_s", "min_requests", "enabled", "scope")

    def __init__(self, data):
        self.data = data
        for name in ("id", "name", "metric", "params", "scope", "op", "threshold", "window_s", "for_s", "severity",
                     "labels", "channels", "reminder_s", "min_requests", "enabled"):
            setattr(self, name, data[name])
        kind, _, value = data["scope"].partition(":")
        self.scope_kind, self.scope_value = kind, value
        self.compare = OPS[data["op"]]
        limit = data["resolve"]["threshold"]
        self.resolve_threshold = clears_at(self.op, self.threshold) if limit is None else limit
        self.resolve_for_s = data["resolve"]["for_s"]

    def judge(self, reading, holding):
        """Return (breached, value, detail) of a reading; ``holding`` (firing): against the resolve threshold."""
        metric = METRICS[self.metric]
        value = reading.value
        if value is None:
            return False, None, f"{metric.title}: {reading.where or 'nothing to judge'}"
        text = f"{metric.title} {fmt(metric.unit, value)}"
        if reading.count is not None:
            if reading.count < self.min_requests:
                return False, value, f"{reading.count:,} requests in {self.window_s} s (fewer than {self.min_requests:,})"
            text += f" over {reading.count:,} requests"
        if reading.where:
            text += f", {reading.where}"
        if holding:
            limit = self.resolve_threshold
            named = f"clears {'below' if self.op in ('>', '>=') else 'above'} {fmt(metric.unit, limit)}"
        else:
            limit = self.threshold
            named = f"limit {self.op} {fmt(metric.unit, limit)}"
        return self.compare(value, limit), value, f"{text} ({named})"


def summary(rule):
    """Return a rule's condition in words: ``p95 latency of endpoint:/demo/sleep > 100 ms over 10 s, for 10 s``."""
    metric = METRICS.get(rule["metric"])
    unit, title = (metric.unit, metric.title) if metric else ("count", rule["metric"])
    scope = "" if rule["scope"] == "fleet" else f" of {rule['scope']}"
    what = f" ({', '.join(f'{k} {v}' for k, v in rule['params'].items())})" if rule["params"] else ""
    text = f"{title}{what}{scope} {rule['op']} {fmt(unit, rule['threshold'])}"
    if metric is None or metric.past:  # a windowed metric
        text += f" over {rule['window_s']} s"
    return text + (f", for {rule['for_s']:g} s" if rule["for_s"] else "")


# ---------------------------------------------------------------- storage


def rules_key(store):
    return store.key("alerts", "rules")


def seed(store, config):
    """Create the default rules unless this fleet was seeded before; return the rules hash."""
    defaults_ = [item for rule in defaults(config) for item in (rule["id"], json.dumps(rule))]
    store.redis.register_script(SEED)(keys=[store.key("alerts", "seeded"), rules_key(store)], args=defaults_)
    return store.redis.hgetall(rules_key(store))


def load(store, config):
    """Return the stored rules ``{id: rule}`` (the defaults created on a fleet's first read)."""
    pipe = store.redis.pipeline(transaction=False)
    pipe.hgetall(rules_key(store))
    pipe.exists(store.key("alerts", "seeded"))
    stored, seeded = pipe.execute()
    if not seeded:
        stored = seed(store, config)
    return {rule_id: json.loads(raw) for rule_id, raw in stored.items()}


def get(store, config, rule_id):
    """Return the rule ``rule_id``, or refuse with 404."""
    found = load(store, config).get(rule_id)
    if found is None:
        raise Refused("no rule with this id", 404)
    return found


def create(store, config, rule):
    """Store a new rule; refuse a taken id (409) or one rule too many."""
    if len(load(store, config)) >= MAX_RULES:
        raise Refused(f"a fleet holds at most {MAX_RULES} rules; delete one first", 409)
    if not store.redis.hsetnx(rules_key(store), rule["id"], json.dumps(rule)):
        raise Refused("a rule with this id exists", 409)


def replace(store, config, rule):
    """Store a rule over the one with its id; refuse with 404 when there is none."""
    get(store, config, rule["id"])
    store.redis.hset(rules_key(store), rule["id"], json.dumps(rule))


def remove(store, config, rule_id):
    """Delete a rule and its alert state; refuse with 404 when there is none."""
    get(store, config, rule_id)
    pipe = store.redis.pipeline(transaction=False)
    pipe.hdel(rules_key(store), rule_id)
    pipe.hdel(store.key("alerts", "state"), rule_id)
    pipe.execute()
