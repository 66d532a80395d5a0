"""Alert rules as data: states and hysteresis, validation, the default set, the API, the metrics they read, the preview.

Real Redis (the session's); the evaluator is driven round by round (``evaluate(now)``) after
real requests were recorded and shipped by the app's own flusher.
"""
import json
import time

import pytest

from monitor import create_app
from monitor.capabilities.alerts import rules as rules_module
from monitor.capabilities.alerts.evaluator import advance
from monitor.capabilities.alerts.metrics import METRICS, Reading
from monitor.capabilities.alerts.rules import Rule
from monitor.core import audit
from monitor.core.state import state
from support import bearer, drive

SLEEP_RULE = {"name": "slow sleep", "metric": "latency_p95", "scope": "endpoint:/demo/sleep", "op": ">",
              "threshold": 100, "window_s": 10, "for_s": 10}


def rule(**fields):
    """A compiled rule: the defaults of a fleet, changed by ``fields``."""
    base = {"id": "r_test", "name": "test", "metric": "error_rate", "params": {}, "scope": "fleet", "op": ">",
            "threshold": 0.05, "window_s": 300, "for_s": 30.0, "resolve": {"threshold": 0.04, "for_s": 60.0},
            "severity": "warning", "labels": {}, "channels": [], "reminder_s": 0, "min_requests": 20, "enabled": True}
    for name, value in fields.items():
        if name.startswith("resolve_"):
            base["resolve"] = {**base["resolve"], name[len("resolve_"):]: value}
        else:
            base[name] = value
    return Rule(base)


def run(target, readings, start=1000.0, step=5.0):
    """Feed ``target`` one reading per round; return (the states entered, the last alert)."""
    alert, events = None, []
    for i, reading in enumerate(readings):
        holding = bool(alert) and alert["state"] == "firing"
        new, event = advance(alert, target, target.judge(reading, holding), start + step * i)
        alert = new or alert
        if event:
            events.append(event)
    return events, alert


@pytest.fixture
def admin(make_user):
    return bearer(make_user("admin"))


@pytest.fixture
def quiet(app):
    """The app with its flusher stopped and its evaluator off the flusher's ticks: the test drives it."""
    monitor = state(app)
    monitor.flusher.stop(flush=False)
    monitor.alerts.interval = float("inf")
    return monitor


# ---------------------------------------------------------------- states and hysteresis


def test_states_pending_firing_resolved_and_no_data():
    target = rule(metric="worker_rss", threshold=1000, resolve_threshold=800, for_s=10, resolve_for_s=0)
    big, small = Reading(1200.0, where="h pid 1"), Reading(100.0, where="h pid 1")
    alert, event = advance(None, target, target.judge(big, False), 100.0)
    assert (alert["state"], event, alert["id"]) == ("pending", "pending", "r_test-100")
    assert advance(alert, target, target.judge(big, False), 105.0)[0]["state"] == "pending"
    assert advance(alert, target, target.judge(small, False), 105.0) == ({**alert, "state": "inactive", "value": 100.0,
                                                                          "detail": alert["detail"].replace("1,200", "100")},
                                                                         "inactive")
    firing, event = advance(alert, target, target.judge(big, False), 110.0)
    assert (firing["state"], event, firing["fired_at"]) == ("firing", "firing", 110.0)
    assert "worker RSS 1,200 MB, h pid 1 (limit > 1,000 MB)" == firing["detail"]
    no_data, event = advance(firing, target, (None, None, "the cluster capability is not running"), 115.0)
    assert no_data["state"] == "firing" and no_data["no_data"] and event is None
    resolved, event = advance(no_data, target, target.judge(small, True), 120.0)
    assert (resolved["state"], event, resolved["resolved_at"]) == ("resolved", "resolved", 120.0)
    assert "no_data" not in resolved


def test_a_value_hovering_at_the_threshold_fires_once_and_does_not_flap():
    # The demo's 5% errors against a 5% limit: over the window the rate wanders between 4.4% and 5.6%
    # a minute at a time, for ten minutes (a round each 5 s); without hysteresis it would resolve and
    # fire again every minute.
    target = rule()
    readings = [Reading(0.05 + 0.006 * (1 if i % 24 < 12 else -1), 1000) for i in range(120)]
    events, alert = run(target, readings)
    assert events == ["pending", "firing"] and alert["state"] == "firing"
    assert alert["detail"] == "5xx rate 4.4% over 1,000 requests (clears below 4.0%)"
    without_hysteresis = rule(resolve_threshold=0.05, resolve_for_s=0)
    flapping, _ = run(without_hysteresis, readings)
    assert flapping.count("firing") > 2 and flapping.count("resolved") > 2


def test_a_firing_rule_resolves_only_after_staying_clear_for_the_quiet_period():
    target = rule(for_s=0)
    bad, clear, between = Reading(0.2, 1000), Reading(0.01, 1000), Reading(0.045, 1000)
    assert target.judge(between, True)[0] is True and target.judge(between, False)[0] is False
    alert, _ = advance(None, target, target.judge(bad, False), 100.0)
    assert alert["state"] == "firing"
    alert, _ = advance(alert, target, target.judge(clear, True), 110.0)
    assert alert["state"] == "firing" and alert["clear_since"] == 110.0
    alert, _ = advance(alert, target, target.judge(bad, True), 150.0)
    assert alert["state"] == "firing" and "clear_since" not in alert  # a breach restarts the quiet period
    alert, _ = advance(alert, target, target.judge(clear, True), 160.0)
    assert advance(alert, target, target.judge(clear, True), 219.0)[0]["state"] == "firing"
    resolved, event = advance(alert, target, target.judge(clear, True), 220.0)
    assert (resolved["state"], event, resolved["resolved_at"]) == ("resolved", "resolved", 220.0)


def test_too_few_requests_never_breach():
    target = rule(for_s=0)
    breached, value, detail = target.judge(Reading(1.0, 5), False)
    assert (breached, value, detail) == (False, 1.0, "5 requests in 300 s (fewer than 20)")


# ---------------------------------------------------------------- the default set, validation


def test_the_default_rules_are_created_once_from_the_settings(app_config, store):
    app = create_app({**app_config, "MONITOR_ALERT_ERROR_RATE": 0.1, "MONITOR_ALERT_WINDOW": 120,
                      "MONITOR_ALERT_PENDING_S": 15})
    found = rules_module.load(store, app.config)
    assert sorted(found) == ["error_rate", "heartbeat", "latency_p95", "redis", "rss_growth", "worker_rss"]
    assert found["error_rate"] == {
        "id": "error_rate", "name": "5xx rate", "metric": "error_rate", "params": {}, "scope": "fleet", "op": ">",
        "threshold": 0.1, "window_s": 120, "for_s": 15.0, "resolve": {"threshold": 0.08, "for_s": 60.0},
        "severity": "critical", "labels": {}, "channels": ["settings_webhook"], "reminder_s": 0, "min_requests": 20,
        "enabled": True}
    assert store.redis.ttl(rules_module.rules_key(store)) == -1  # rules persist
    rules_module.remove(store, app.config, "worker_rss")
    again = create_app({**app_config, "MONITOR_ALERT_ERROR_RATE": 0.3})
    found = rules_module.load(store, again.config)
    assert "worker_rss" not in found and found["error_rate"]["threshold"] == 0.1  # created once, not again
    for made in (app, again):
        state(made).flusher.stop(flush=False)


@pytest.mark.parametrize("body, detail", [
    ({"metric": "error_rate", "op": ">", "threshold": 0.1}, "name is required"),
    ({"name": "x", "metric": "cpu", "op": ">", "threshold": 1}, "metric must be one of"),
    ({"name": "x", "metric": "error_rate", "op": "=", "threshold": 0.1}, "op must be one of"),
    ({"name": "x", "metric": "error_rate", "op": ">", "threshold": 5}, "threshold must be between 0 and 1"),
    ({"name": "x", "metric": "error_rate", "op": ">", "threshold": "0.1"}, "threshold must be a number"),
    ({"name": "x", "metric": "error_rate", "op": ">", "threshold": 0.1, "window_s": 5}, "window_s must be between"),
    ({"name": "x", "metric": "error_rate", "op": ">", "threshold": 0.1, "window_s": 30.5}, "window_s must be a whole"),
    ({"name": "x", "metric": "error_rate", "op": ">", "threshold": 0.1, "resolve": {"threshold": 0.2}},
     "resolve.threshold must be at most the threshold"),
    ({"name": "x", "metric": "workers_alive", "op": "<", "threshold": 2, "resolve": {"threshold": 1}},
     "resolve.threshold must be at least the threshold"),
    ({"name": "x", "metric": "worker_rss", "op": ">", "threshold": 9, "scope": "endpoint:/a"}, "takes the scope"),
    ({"name": "x", "metric": "error_rate", "op": ">", "threshold": 0.1, "scope": "endpoint:nope"}, "names a URL rule"),
    ({"name": "x", "metric": "error_rate", "op": ">", "threshold": 0.1, "scope": "rack:3"}, "scope is fleet"),
    ({"name": "x", "metric": "error_rate", "op": ">", "threshold": 0.1, "params": {"level": "ERROR"}},
     "params of error_rate are none"),
    ({"name": "x", "metric": "log_lines", "op": ">", "threshold": 1, "params": {"level": "LOUD"}},
     "params.level must be one of"),
    ({"name": "x", "metric": "error_rate", "op": ">", "threshold": 0.1, "channels": ["c_nope"]}, "no channel with"),
    ({"name": "x", "metric": "error_rate", "op": ">", "threshold": 0.1, "labels": {"Team": "a"}}, "labels: a key"),
    ({"name": "x", "metric": "error_rate", "op": ">", "threshold": 0.1, "reminder_s": 30}, "reminder_s is 0"),
    ({"name": "x", "metric": "redis_unreachable", "op": ">", "threshold": 0}, "edit the built-in rule redis"),
    ({"name": "x", "metric": "error_rate", "op": ">", "threshold": 0.1, "colour": "red"}, "unknown field(s) colour"),
    ({"name": "x" * 101, "metric": "error_rate", "op": ">", "threshold": 0.1}, "name must be at most 100"),
    ({"name": "x", "metric": "error_rate", "op": ">", "threshold": 0.1, "id": "Bad Id"}, "id must be lower-case"),
])
def test_a_bad_rule_is_refused_with_a_clear_400_and_audited(client, admin, store, body, detail):
    before = client.get("/api/admin/alerts/rules", headers=admin).json["rules"]
    answer = client.post("/api/admin/alerts/rules", headers=admin, json=body)
    assert answer.status_code == 400 and answer.json["error"] == "bad_request"
    assert detail in answer.json["detail"], answer.json["detail"]
    assert client.get("/api/admin/alerts/rules", headers=admin).json["rules"] == before
    entry = audit.entries(store, 1)[0]
    assert (entry["action"], entry["result"], entry["detail"]["reason"]) == ("alert.rule.create", "refused",
                                                                            answer.json["detail"])


# ---------------------------------------------------------------- the API


def test_rules_api_roles_round_trip_and_audit(client, make_user, admin, store):
    viewer, operator = bearer(make_user("viewer")), bearer(make_user("operator"))
    assert client.post("/api/admin/alerts/rules", headers=operator, json=SLEEP_RULE).status_code == 403
    created = client.post("/api/admin/alerts/rules", headers=admin, json=SLEEP_RULE)
    assert created.status_code == 201
    rule_ = created.json
    assert rule_ == {**SLEEP_RULE, "id": rule_["id"], "params": {}, "threshold": 100.0, "for_s": 10.0,
                     "resolve": {"threshold": 80.0, "for_s": 60.0}, "severity": "warning", "labels": {},
                     "channels": [], "reminder_s": 0, "min_requests": 20, "enabled": True}
    path = f"/api/admin/alerts/rules/{rule_['id']}"
    assert client.get(path, headers=viewer).json == rule_
    assert rule_ in client.get("/api/admin/alerts/rules", headers=viewer).json["rules"]
    # A rule object is what PUT takes back.
    assert client.put(path, headers=admin, json=rule_).json == rule_
    changed = client.put(path, headers=admin, json={**rule_, "threshold": 250, "labels": {"team": "web"}})
    assert changed.status_code == 200 and changed.json["threshold"] == 250.0, changed.json
    assert client.get(path, headers=viewer).json["labels"] == {"team": "web"}
    assert client.put(path, headers=admin, json={**rule_, "id": "other"}).status_code == 400
    assert client.put(path, headers=viewer, json=rule_).status_code == 403
    assert client.put("/api/admin/alerts/rules/r_none", headers=admin, json=rule_).status_code == 404
    assert client.post("/api/admin/alerts/rules", headers=admin, json={**SLEEP_RULE, "id": rule_["id"]}).status_code == 409
    assert client.delete(path, headers=viewer).status_code == 403
    assert client.delete(path, headers=admin).json == {"deleted": rule_["id"]}
    assert client.get(path, headers=viewer).status_code == 404
    assert client.get("/api/admin/alerts/rules/..%2F", headers=viewer).status_code == 404
    actions = [(e["action"], e["result"], e["detail"].get("rule")) for e in audit.entries(store, 10)
               if e["action"].startswith("alert.rule")]
    assert actions[:6] == [("alert.rule.delete", "ok", rule_["id"]), ("alert.rule.create", "refused", None),
                           ("alert.rule.update", "refused", "r_none"), ("alert.rule.update", "refused", rule_["id"]),
                           ("alert.rule.update", "ok", rule_["id"]), ("alert.rule.update", "ok", rule_["id"])]


def test_alerts_overview_keeps_its_shape(client, make_user):
    body = client.get("/api/admin/alerts", headers=bearer(make_user("viewer"))).json
    assert {"active", "history", "rules"} <= set(body) and body["active"] == [] and body["history"] == []
    first = next(r for r in body["rules"] if r["id"] == "error_rate")
    assert first["summary"] == "5xx rate > 5.0% over 300 s, for 30 s" and first["state"] == "inactive"


# ---------------------------------------------------------------- the evaluator over real requests


def test_an_edit_counts_from_the_next_round(app, client, admin, quiet, store):
    body = {"name": "busy", "metric": "request_rate", "op": ">", "threshold": 0.01, "window_s": 10, "for_s": 0,
            "resolve": {"for_s": 0}}
    created = client.post("/api/admin/alerts/rules", headers=admin, json=body).json
    drive(app, client, *["/demo/hello"] * 5)
    now = time.time()
    quiet.alerts.evaluate(now)
    alert = json.loads(store.redis.hget(store.key("alerts", "state"), created["id"]))
    assert alert["state"] == "firing" and alert["value"] > 0.01 and "over 5 requests" in alert["detail"]
    client.put(f"/api/admin/alerts/rules/{created['id']}", headers=admin,
               json={**created, "threshold": 1000, "resolve": {"for_s": 0}})
    quiet.alerts.evaluate(now + 1)
    alert = json.loads(store.redis.hget(store.key("alerts", "state"), created["id"]))
    assert alert["state"] == "resolved" and alert["detail"].endswith("(clears below 800/s)")
    client.delete(f"/api/admin/alerts/rules/{created['id']}", headers=admin)
    assert store.redis.hget(store.key("alerts", "state"), created["id"]) is None
    history = [json.loads(h) for h in store.redis.lrange(store.key("alerts", "history"), 0, -1)]
    assert [(h["rule"], h["event"]) for h in history] == [(created["id"], "resolved"), (created["id"], "firing")]
    assert quiet.alerts.cost["sources"] >= 1 and quiet.alerts.cost["rules"] == 7


def test_endpoint_scope_reads_that_endpoint_only(app, client, admin, quiet, store):
    created = client.post("/api/admin/alerts/rules", headers=admin, json={
        **SLEEP_RULE, "threshold": 30, "for_s": 0, "min_requests": 3, "window_s": 60}).json
    drive(app, client, *["/demo/sleep?ms=60"] * 3, *["/demo/hello"] * 30)
    quiet.alerts.evaluate(time.time())
    alert = json.loads(store.redis.hget(store.key("alerts", "state"), created["id"]))
    assert alert["state"] == "firing" and alert["value"] >= 55  # 60 ms, as the histogram's bucket reads it
    assert alert["detail"].startswith("p95 latency") and alert["detail"].endswith(
        " ms over 3 requests, /demo/sleep (limit > 30 ms)")
    fleet = METRICS["latency_p95"].read(_context(quiet), rule(metric="latency_p95", window_s=60))
    assert fleet.count == 33 and fleet.value < 60  # the fleet's p95 is the hello requests'


def _context(monitor):
    from monitor.capabilities.alerts.metrics import Context
    return Context(monitor, time.time())


def test_log_lines_and_cache_hit_rate_are_read_through_their_capabilities(app, client, quiet):
    drive(app, client, *["/demo/log?level=ERROR&msg=payment+timeout"] * 4, "/demo/log?level=ERROR&msg=other",
          "/demo/log?level=WARNING&msg=payment+timeout", "/demo/cached/a", "/demo/cached/a", "/demo/cached/a")
    ctx = _context(quiet)
    lines = METRICS["log_lines"].read(ctx, rule(metric="log_lines", window_s=60,
                                               params={"level": "ERROR", "text": "payment"}))
    assert lines.value == pytest.approx(4.0) and lines.where == "4 ERROR+ lines with 'payment'"
    warnings = METRICS["log_lines"].read(ctx, rule(metric="log_lines", window_s=60, params={"level": "WARNING",
                                                                                         "text": "payment"}))
    assert warnings.value == pytest.approx(5.0)
    hits = METRICS["cache_hit_rate"].read(ctx, rule(metric="cache_hit_rate", window_s=60))
    assert hits.value == pytest.approx(2 / 3, abs=1e-3) and hits.where == "3 reads"


def test_a_capability_left_out_is_no_data_and_keeps_the_state(app_config, make_user, store):
    paths = "monitor.capabilities.metrics monitor.capabilities.cluster monitor.capabilities.logs monitor.capabilities.alerts"
    app = create_app({**app_config, "MONITOR_CAPABILITIES": paths})
    client, admin = app.test_client(), bearer(make_user("admin"))
    created = client.post("/api/admin/alerts/rules", headers=admin, json={
        "name": "hits", "metric": "cache_hit_rate", "op": "<", "threshold": 0.5, "for_s": 0}).json
    monitor = state(app)
    monitor.flusher.stop(flush=False)
    monitor.alerts.evaluate(time.time())
    assert store.redis.hget(store.key("alerts", "state"), created["id"]) is None  # no data: nothing to store
    firing = {"id": f"{created['id']}-1", "rule": created["id"], "title": "hits", "state": "firing", "since": 1.0}
    store.redis.hset(store.key("alerts", "state"), created["id"], json.dumps(firing))
    monitor.alerts.evaluate(time.time())
    kept = json.loads(store.redis.hget(store.key("alerts", "state"), created["id"]))
    assert kept["state"] == "firing" and kept["no_data"] == "the cache capability is not running"


# ---------------------------------------------------------------- the preview


def test_preview_replays_the_stored_metrics_without_saving(app, client, admin, quiet):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    drive(app, client, *["/demo/error"] * 30)
    before = client.get("/api/admin/alerts/rules", headers=admin).json["rules"]
    body = {"name": "errors", "metric": "error_rate", "op": ">", "threshold": 0.5, "window_s": 60, "for_s": 0}
    answer = client.post("/api/admin/alerts/rules/preview", headers=admin, json=body)
    assert answer.status_code == 200
    found = answer.json
    assert found["supported"] and found["fired"] == 1 and found["text"] == "would have fired once in the last 24 h"
    assert found["with_data"] >= 1 and found["events"][-1]["event"] == "firing" and found["firing_at_end"]
    assert found["current"]["breached"] and found["current"]["value"] == 1.0
    assert [r["seconds"] for r in found["resolution"]][0] <= 60  # the recent past at the finest resolution kept
    never = client.post("/api/admin/alerts/rules/preview", headers=admin, json={**body, "threshold": 1.0}).json
    assert never["fired"] == 0 and never["text"] == "would have fired 0 times in the last 24 h"
    sampled = client.post("/api/admin/alerts/rules/preview", headers=admin, json={
        **body, "metric": "latency_p99", "threshold": 0, "scope": "endpoint:/demo/error", "min_requests": 1}).json
    assert sampled["supported"] and sampled["points"] == 48 and sampled["fired"] == 1
    rss = client.post("/api/admin/alerts/rules/preview", headers=admin, json={
        "name": "rss", "metric": "worker_rss", "op": ">", "threshold": 10}).json
    assert rss["supported"] is False and rss["fired"] is None and "not kept over time" in rss["text"]
    assert client.post("/api/admin/alerts/rules/preview", headers=admin, json={**body, "op": "~"}).status_code == 400
    assert client.get("/api/admin/alerts/rules", headers=admin).json["rules"] == before
