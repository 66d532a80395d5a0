"""The evaluator: rules over metrics and heartbeats, evaluated by one process of the fleet.

Every process runs the evaluator as a flusher task, but only the holder of a Redis lock
(redis-py's Lock, renewed each round) evaluates, so each state change happens, and is
notified, once. A rule is ``inactive`` → ``pending`` (breached) → ``firing`` (breached for
``MONITOR_ALERT_PENDING_S``) → ``resolved`` (clear, below the lower limit of ``rules``, for
``MONITOR_ALERT_RESOLVE_S``; the alert carries ``clear_since`` meanwhile, and a new breach
drops it). Firing and resolved are notified by a log line
and, when ``MONITOR_ALERT_WEBHOOK_URL`` is set, a webhook POST from a notifier thread with
a timeout and retries. A rule whose source is missing reports "no data" and keeps its
state. "Redis unreachable" is judged by the process that held the lock last, in memory.
"""
import json
import os
import uuid

import redis

from ...core.store import renew
from .notify import Notifier
from .rules import RULES, TTL_S, Context, NoData

#: Transitions kept in the history list.
HISTORY_CAP = 200


class Evaluator:
    """The flusher task that evaluates the rules when this process holds the fleet's lock."""

    def __init__(self, store, config):
        self.store, self.config = store, config
        self.interval = config["MONITOR_ALERT_INTERVAL"]
        self.token = uuid.uuid4().hex
        os.register_at_fork(after_in_child=self._forked)
        self.last = 0.0
        self.leader = False
        self.redis_down = None
        self.notifier = Notifier(config["MONITOR_ALERT_WEBHOOK_URL"], config["MONITOR_ALERT_WEBHOOK_TIMEOUT"],
                                 config["MONITOR_ALERT_WEBHOOK_RETRIES"])

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

    def _redis_lost(self, now, exc):
        if not self.leader:
            return
        if self.redis_down is None:
            self.redis_down = {"rule": "redis", "title": RULES["redis"][0], "state": "pending", "since": now,
                               "value": None, "detail": f"no answer: {exc}", "id": f"redis-{int(now)}"}
        elif self.redis_down["state"] == "pending" and now - self.redis_down["since"] >= self.config["MONITOR_ALERT_PENDING_S"]:
            self.redis_down.update(state="firing", fired_at=now)
            self.notifier.send(self.redis_down, "firing")
        self.redis_down.pop("clear_since", None)

    def _redis_back(self, now):
        down = self.redis_down
        if down is None:
            return
        if down["state"] == "firing":
            clear_since = down.setdefault("clear_since", now)
            if now - clear_since < self.config["MONITOR_ALERT_RESOLVE_S"]:
                return
            del down["clear_since"]
            down.update(state="resolved", resolved_at=now, detail="Redis answers again")
            self._history(down, "resolved", now)
            self.notifier.send(down, "resolved")
        self.redis_down = None

    def evaluate(self, now):
        """Check every rule once, store the states, notify each change."""
        ctx = Context(self.store, self.config, now)
        key = self.store.key("alerts", "state")
        states = {name: json.loads(raw) for name, raw in self.store.redis.hgetall(key).items()}
        changed = {}
        for name, (title, check) in RULES.items():
            if check is None:
                continue
            alert = states.get(name)
            try:
                breached, value, detail = check(ctx, (alert or {}).get("state") == "firing")
            except NoData as exc:
                breached, value, detail = None, None, str(exc)
            alert = self._step(alert, name, title, breached, value, detail, now)
            if alert is not None:
                changed[name] = alert
        if changed:
            pipe = self.store.redis.pipeline(transaction=False)
            pipe.hset(key, mapping={name: json.dumps(alert) for name, alert in changed.items()})
            pipe.expire(key, TTL_S)
            pipe.execute()

    def _step(self, alert, name, title, breached, value, detail, now):
        """Advance one rule's state; return the alert to store when it changed, else None."""
        if breached is None:
            if alert is None or alert.get("no_data") == detail:
                return None
            alert["no_data"] = detail
            return alert
        state = (alert or {}).get("state", "inactive")
        if breached:
            if state in ("inactive", "resolved"):
                alert = {"id": f"{name}-{int(now)}", "rule": name, "title": title, "state": "pending",
                         "since": now, "value": value, "detail": detail}
                if self.config["MONITOR_ALERT_PENDING_S"] > 0:
                    return alert
            alert.update(value=value, detail=detail)
            alert.pop("no_data", None)
            alert.pop("clear_since", None)
            if alert["state"] == "pending" and now - alert["since"] >= self.config["MONITOR_ALERT_PENDING_S"]:
                alert.update(state="firing", fired_at=now)
                self._history(alert, "firing", now)
                self.notifier.send(alert, "firing")
            return alert
        if state == "pending":
            return {**alert, "state": "inactive", "value": value, "detail": detail}
        if state == "firing":
            alert.update(value=value, detail=detail)
            alert.pop("no_data", None)
            clear_since = alert.setdefault("clear_since", now)
            if now - clear_since < self.config["MONITOR_ALERT_RESOLVE_S"]:
                return alert
            alert.update(state="resolved", resolved_at=now)
            alert.pop("clear_since")
            self._history(alert, "resolved", now)
            self.notifier.send(alert, "resolved")
            return alert
        return None

    def _history(self, alert, event, now):
        key = self.store.key("alerts", "history")
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.lpush(key, json.dumps({**alert, "event": event, "at": now}))
        pipe.ltrim(key, 0, HISTORY_CAP - 1)
        pipe.expire(key, TTL_S)
        pipe.execute()
