"""The alerts' read side and acknowledgement: active alerts, their history, the rules, the silences."""
import json
import time

from . import rules as rules_
from . import silences as silences_
from .evaluator import ACTIVE


def overview(store, config, evaluator=None, limit=50, now=None):
    """Return the body of ``GET alerts``: active alerts, history newest first, rules, silences, the last round."""
    now = time.time() if now is None else now
    pipe = store.redis.pipeline(transaction=False)
    pipe.hgetall(store.key("alerts", "state"))
    pipe.lrange(store.key("alerts", "history"), 0, limit - 1)
    raw_states, raw_history = pipe.execute()
    states = {rule_id: json.loads(raw) for rule_id, raw in raw_states.items()}
    active = sorted((a for a in states.values() if a["state"] in ACTIVE),
                    key=lambda a: (a["state"] != "firing", -a["since"]))
    if evaluator is not None and evaluator.redis_down:
        active.insert(0, evaluator.redis_down)
    return {"active": active, "history": [json.loads(raw) for raw in raw_history],
            **rule_listing(store, config, states), "silences": silences_.listing(store, now)["silences"]}


def rule_listing(store, config, states=None):
    """Return ``{"rules", "evaluation"}``: every rule with its condition in words and its state, and the last round."""
    if states is None:
        states = {rule_id: json.loads(raw) for rule_id, raw in store.redis.hgetall(store.key("alerts", "state")).items()}
    evaluation = store.redis.get(store.key("alerts", "evaluation"))
    found = sorted(rules_.load(store, config).values(), key=lambda r: (r["name"].lower(), r["id"]))
    return {"rules": [{**rule, "summary": rules_.summary(rule), "clears_at": rules_.Rule(rule).resolve_threshold,
                       "state": states.get(rule["id"], {}).get("state", "inactive")} for rule in found],
            "evaluation": json.loads(evaluation) if evaluation else None}


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
