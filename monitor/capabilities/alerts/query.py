"""The alerts' read side and acknowledgement: active alerts, their history, the rules."""
import json
import time

from .rules import ACTIVE, rules


def overview(store, config, evaluator=None, limit=50):
    """Return the body of ``GET alerts``: active alerts, history newest first, rules."""
    states = [json.loads(raw) for raw in store.redis.hgetall(store.key("alerts", "state")).values()]
    active = sorted((a for a in states if a["state"] in ACTIVE), key=lambda a: (a["state"] != "firing", -a["since"]))
    if evaluator is not None and evaluator.redis_down:
        active.insert(0, evaluator.redis_down)
    history = [json.loads(raw) for raw in store.redis.lrange(store.key("alerts", "history"), 0, limit - 1)]
    return {"active": active, "history": history, "rules": rules(config)}


def firing(store, evaluator=None):
    """Return the firing alerts, newest first: what the dashboard's header badge counts."""
    states = [json.loads(raw) for raw in store.redis.hvals(store.key("alerts", "state"))]
    found = sorted((a for a in states if a["state"] == "firing"), key=lambda a: -a.get("fired_at", a["since"]))
    if evaluator is not None and evaluator.redis_down and evaluator.redis_down["state"] == "firing":
        found.insert(0, evaluator.redis_down)
    return found


def acknowledge(store, alert_id, user, now=None):
    """Mark the active alert ``alert_id`` acknowledged by ``user``; return it, or None if none matches."""
    key = store.key("alerts", "state")
    for name, raw in store.redis.hgetall(key).items():
        alert = json.loads(raw)
        if alert.get("id") == alert_id and alert["state"] in ACTIVE:
            alert.update(acked_by=user, acked_at=time.time() if now is None else now)
            store.redis.hset(key, name, json.dumps(alert))
            return alert
    return None
