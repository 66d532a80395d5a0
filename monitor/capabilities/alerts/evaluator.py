"""The evaluator: every rule, each interval, judged by one process of the fleet.

Every process runs the evaluator as a flusher task, but only the holder of a Redis lock
(redis-py's Lock, renewed each round) evaluates, so each state change happens, and is
notified, once. A round reads the rules, states, silences and channels in one round trip
(an edit counts from the next round, whichever host made it), reads each metric source once
(``metrics.Context``), advances each rule's state, writes what changed, and hands each channel
one message for the round's notifications.

A rule is ``inactive`` → ``pending`` (breached) → ``firing`` (breached for its ``for_s``) →
``resolved`` (clear of its resolve threshold for ``resolve.for_s``; the alert carries
``clear_since`` meanwhile, and a new breach drops it). A pending rule that recovers goes back
silently. A rule whose source is missing reports "no data" and keeps its state.

Notifications follow the state (``_notice``): an alert's state is told once (``notified``);
while a silence matches it is held (``silenced`` names the silences) and goes out when none
does; a firing rule with ``reminder_s`` is told again at that interval unless acknowledged.
"Redis unreachable" is judged in memory by the process that held the lock last, with the
rule, channels and silences it read last.
"""
import json
import logging
import os
import time
import uuid

import redis

from ...core.store import renew
from . import channels as channels_
from . import rules as rules_
from . import silences as silences_
from .metrics import METRICS, TTL_S, Context, NoData
from .notify import Notifier, message
from .rules import SEVERITIES

log = logging.getLogger(__name__)

#: Transitions kept in the history list.
HISTORY_CAP = 200
ACTIVE = ("pending", "firing")
#: KEYS[1]: the state hash; ARGV: its TTL, then rule id and alert JSON pairs. Writes each alert, keeping
#: an acknowledgement that landed after the round read the states (the same alert, acknowledged meanwhile).
WRITE_STATES = """
for i = 2, #ARGV, 2 do
  local alert = ARGV[i + 1]
  local stored = redis.call('HGET', KEYS[1], ARGV[i])
  if stored then
    local before, after = cjson.decode(stored), cjson.decode(alert)
    if before.acked_by and not after.acked_by and before.id == after.id then
      after.acked_by, after.acked_at = before.acked_by, before.acked_at
      alert = cjson.encode(after)
    end
  end
  redis.call('HSET', KEYS[1], ARGV[i], alert)
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
"""


def advance(alert, rule, judged, now):
    """Return (alert, event) after judging ``rule`` once at ``now``: alert None when unchanged.

    ``judged`` is ``(breached, value, detail)``, ``breached`` None for no data. ``event`` is
    the state entered (``pending``, ``firing``, ``inactive``, ``resolved``) or None.
    """
    breached, value, detail = judged
    if breached is None:
        if alert is None or alert.get("no_data") == detail:
            return None, None
        return {**alert, "no_data": detail}, None
    state = alert["state"] if alert else "inactive"
    if breached:
        event = None
        if state in ("inactive", "resolved"):
            alert, event = {"id": f"{rule.id}-{int(now)}", "rule": rule.id, "state": "pending", "since": now}, "pending"
        else:
            alert = dict(alert)
        alert.update(title=rule.name, severity=rule.severity, value=value, detail=detail)
        alert.pop("no_data", None)
        alert.pop("clear_since", None)
        if alert["state"] == "pending" and now - alert["since"] >= rule.for_s:
            alert.update(state="firing", fired_at=now)
            event = "firing"
        return alert, event
    if state == "pending":
        return {**alert, "state": "inactive", "value": value, "detail": detail}, "inactive"
    if state == "firing":
        alert = {**alert, "value": value, "detail": detail}
        alert.pop("no_data", None)
        clear_since = alert.setdefault("clear_since", now)
        if now - clear_since < rule.resolve_for_s:
            return alert, None
        del alert["clear_since"]
        alert.update(state="resolved", resolved_at=now)
        return alert, "resolved"
    return None, None


def _notice(alert, rule, in_force, now):
    """Return (alert, event to notify) for an alert after its round: alert None when unchanged."""
    told = {"firing": "firing", "resolved": "resolved"}.get(alert["state"]) if alert else None
    if told is None:
        return None, None
    if alert.get("notified") != told:
        due = told
    elif told == "firing" and rule.reminder_s and not alert.get("acked_by") \
            and now - alert.get("notified_at", now) >= rule.reminder_s:
        due = "reminder"
    else:
        return None, None
    held = [s["id"] for s in in_force if silences_.matches(s, rule)]
    if held:
        return ({**alert, "silenced": held}, None) if alert.get("silenced") != held else (None, None)
    alert = {key: value for key, value in alert.items() if key != "silenced"}
    if due == "resolved" and alert.get("notified") is None:  # its firing was held, so its end is not news
        return {**alert, "notified": "resolved"}, None
    alert.update(notified=told, notified_at=now)
    return alert, due


def _log(alert, event, silenced):
    line = f"alert [{event.upper()}] {alert['title']}: {alert['detail']}"
    if silenced:
        log.info("%s (silenced)", line)
    else:
        (log.warning if event == "firing" else log.info)("%s", line)


class Evaluator:
    """The flusher task that evaluates the rules when this process holds the fleet's lock."""

    def __init__(self, monitor):
        self.monitor, self.store, self.config = monitor, monitor.store, monitor.config
        self.interval = self.config["MONITOR_ALERT_INTERVAL"]
        self.token = uuid.uuid4().hex
        os.register_at_fork(after_in_child=self._forked)
        self.last = 0.0
        self.leader = False
        self.redis_down = None
        self.notifier = Notifier(self.store, self.config)
        self.write_states = self.store.redis.register_script(WRITE_STATES)
        #: Compiled rules by their stored JSON, so an unchanged rule is not compiled again.
        self.compiled = {}
        #: The rules, channels and silences in force read last: what judges "Redis unreachable".
        self.known = ({}, {}, [])
        #: The last round: {"at", "ms", "rules", "sources"}.
        self.cost = None

    def _forked(self):
        # A preloaded app forks one evaluator into every worker: each needs its own lock token.
        self.token = uuid.uuid4().hex
        self.leader, self.redis_down = False, None

    def __call__(self, now):
        if now - self.last < self.interval:
            return
        self.last = now
        try:
            if not self._lock():
                self.leader = False
                return
            self.leader = True
            self._redis_back(now)
            self.evaluate(now)
        except redis.RedisError as exc:
            self._redis_lost(now, exc)

    def _lock(self):
        lock = self.store.lock("alerts", "lock", timeout=max(int(self.interval * 3), 5), token=self.token)
        return lock.acquire(blocking=False, token=self.token) or renew(lock)

    @property
    def dashboard_url(self):
        base = self.config["MONITOR_PUBLIC_URL"]
        return f"{base.rstrip('/')}{self.monitor.urls.prefix}/admin/" if base else None

    def _compile(self, stored):
        compiled = {raw: self.compiled.get(raw) or rules_.Rule(json.loads(raw)) for raw in stored.values()}
        self.compiled = compiled
        return {rule.id: rule for rule in compiled.values()}

    def evaluate(self, now):
        """Judge every rule once, store the states, hand the notifications to the notifier."""
        started = time.perf_counter()
        store = self.store
        state_key, silences_key = store.key("alerts", "state"), silences_.silences_key(store)
        pipe = store.redis.pipeline(transaction=False)
        pipe.hgetall(rules_.rules_key(store))
        pipe.exists(store.key("alerts", "seeded"))
        pipe.hgetall(state_key)
        pipe.hgetall(silences_key)
        pipe.hgetall(channels_.channels_key(store))
        stored, seeded, states, silences, channels = pipe.execute()
        rules = self._compile(stored if seeded else rules_.seed(store, self.config))
        silences = silences_.decode(silences)
        in_force = silences_.active(silences, now)
        channels = channels_.decode(channels, self.config)
        self.known = (rules, channels, in_force)
        states = {rule_id: json.loads(raw) for rule_id, raw in states.items()}

        ctx = Context(self.monitor, now)
        changed, history, outbox = {}, [], []
        # Longest windows first: a source read for a long window can serve the shorter ones (log lines).
        for rule in sorted(rules.values(), key=lambda r: -r.window_s):
            if not rule.enabled or rule.metric == "redis_unreachable":
                continue
            alert = states.get(rule.id)
            try:
                found = METRICS.get(rule.metric)
                if found is None:
                    raise NoData(f"no metric {rule.metric} here (is its capability running?)")
                judged = rule.judge(found.read(ctx, rule), alert is not None and alert["state"] == "firing")
            except NoData as exc:
                judged = (None, None, str(exc))
            new, event = advance(alert, rule, judged, now)
            if new is not None:
                alert = changed[rule.id] = new
            told, due = _notice(alert, rule, in_force, now)
            if told is not None:
                alert = changed[rule.id] = told
            if event in ("firing", "resolved"):
                history.append(json.dumps({**alert, "event": event, "at": now}))
                _log(alert, event, alert.get("silenced"))
            if due:
                outbox.append((rule, alert, due))

        gone = [rule_id for rule_id in states if rule_id not in rules or not rules[rule_id].enabled]
        ended = [s["id"] for s in silences.values() if s["ends_at"] + silences_.GRACE_S < now]
        self.cost = {"at": round(now, 3), "ms": round((time.perf_counter() - started) * 1000, 2),
                     "rules": len(rules), "sources": ctx.reads, "host": self.monitor.process.host}
        pipe = store.redis.pipeline(transaction=False)
        if changed:
            self.write_states(keys=[state_key], client=pipe, args=[TTL_S, *(
                item for rule_id, alert in changed.items() for item in (rule_id, json.dumps(alert)))])
        if history:
            self._history(pipe, history)
        if gone:
            pipe.hdel(state_key, *gone)
        if ended:
            pipe.hdel(silences_key, *ended)
        pipe.set(store.key("alerts", "evaluation"), json.dumps(self.cost), ex=TTL_S)
        pipe.execute()
        self._send(outbox, channels)

    def _history(self, pipe, entries):
        key = self.store.key("alerts", "history")
        pipe.lpush(key, *entries)
        pipe.ltrim(key, 0, HISTORY_CAP - 1)
        pipe.expire(key, TTL_S)

    def _send(self, outbox, channels):
        """Give each channel one message with every notification of the round routed to it."""
        grouped = {}
        # The most severe first, then by name: a message reads the same whatever order Redis answered in.
        for rule, alert, event in sorted(outbox, key=lambda item: (-SEVERITIES.index(item[0].severity), item[0].name)):
            if event == "reminder":
                log.info("alert [REMINDER] %s: %s", alert["title"], alert["detail"])
            for channel_id in rule.channels:
                if channel_id in channels:
                    grouped.setdefault(channel_id, []).append((alert, event))
        for channel_id, changes in grouped.items():
            self.notifier.submit(channels[channel_id], message(changes, self.config["MONITOR_FLEET_NAME"],
                                                               self.dashboard_url))

    # ------------------------------------------------------------ Redis unreachable, judged in memory

    def _redis_rule(self):
        rules = self.known[0]
        if not rules:  # never read the rules: the default one stands
            return rules_.Rule(next(r for r in rules_.defaults(self.config) if r["id"] == "redis"))
        found = rules.get("redis")
        return found if found is not None and found.enabled else None

    def _redis_lost(self, now, exc):
        rule = self._redis_rule() if self.leader else None
        if rule is not None:
            self._judge_redis(rule, (True, 1, f"no answer: {exc}"), now)

    def _redis_back(self, now):
        if self.redis_down is None:
            return
        rule = self._redis_rule()
        if rule is None:
            self.redis_down = None
            return
        self._judge_redis(rule, (False, 0, "Redis answers again"), now)

    def _judge_redis(self, rule, judged, now):
        alert, event = advance(self.redis_down, rule, judged, now)
        alert = alert or self.redis_down
        told, due = _notice(alert, rule, self.known[2], now)
        self.redis_down = alert = told or alert
        if event in ("firing", "resolved"):
            _log(alert, event, alert.get("silenced"))
        if event == "resolved":  # Redis answers again: the history can be written
            pipe = self.store.redis.pipeline(transaction=False)
            self._history(pipe, [json.dumps({**alert, "event": "firing", "at": alert["fired_at"]}),
                                 json.dumps({**alert, "event": "resolved", "at": now})])
            pipe.execute()
        if due:
            self._send([(rule, alert, due)], self.known[1])
        if alert["state"] in ("inactive", "resolved"):
            self.redis_down = None
