"""Where alerts go: channels and their formats, grouping, retries, reminders, silences, secrets.

Real Redis, a local webhook receiver and a local SMTP server (aiosmtpd); the evaluator is
driven round by round (``evaluate(now)``) over requests the app recorded and shipped.
"""
import json
import logging
import re
import time

import pytest
from bs4 import BeautifulSoup

from monitor import create_app
from monitor.capabilities.alerts.notify import Notifier, message
from monitor.core import audit
from monitor.core.state import state
from support import Auth, bearer, drive, free_port, wait_until
from support.receivers import Hook, Mailbox


@pytest.fixture
def hook():
    receiver = Hook()
    yield receiver
    receiver.close()


@pytest.fixture
def mailbox():
    server = Mailbox()
    yield server
    server.close()


@pytest.fixture
def app(app_config, mailbox):
    """The app with an SMTP server to send to, its evaluator driven by the test."""
    made = create_app({**app_config, **mailbox.settings(), "MONITOR_ALERT_WEBHOOK_TIMEOUT": 2,
                       "MONITOR_ALERT_WEBHOOK_RETRIES": 0, "MONITOR_PUBLIC_URL": "https://ops.example.com"})
    monitor = state(made)
    monitor.alerts.interval = float("inf")
    yield made
    monitor.flusher.stop(flush=False)


@pytest.fixture
def admin(make_user):
    return bearer(make_user("admin"))


def add_channel(client, admin, **body):
    answer = client.post("/api/admin/alerts/channels", headers=admin, json=body)
    assert answer.status_code == 201, answer.json
    return answer.json


def add_rule(client, admin, **body):
    answer = client.post("/api/admin/alerts/rules", headers=admin, json={
        "op": ">", "for_s": 0, "resolve": {"for_s": 0}, **body})
    assert answer.status_code == 201, answer.json
    return answer.json


def evaluate(app, now=None):
    monitor = state(app)
    monitor.flusher.stop(flush=False)
    monitor.alerts.evaluate(time.time() if now is None else now)


def alert_of(store, rule):
    raw = store.redis.hget(store.key("alerts", "state"), rule["id"])
    return json.loads(raw) if raw else None


# ---------------------------------------------------------------- grouping, once per change


def test_one_message_per_channel_per_round_and_one_per_change(app, client, admin, hook, mailbox, store):
    web = add_channel(client, admin, name="ops hook", kind="webhook", url=hook.url)
    mail = add_channel(client, admin, name="ops mail", kind="email", to=["ops@example.com", "dev@example.com"])
    rules = [add_rule(client, admin, name=f"busy {n}", metric="request_rate", threshold=0.01 * n, window_s=60,
                      channels=[web["id"], mail["id"]]) for n in (1, 2)]
    drive(app, client, *["/demo/hello"] * 6)
    now = time.time()
    evaluate(app, now)
    wait_until(lambda: hook.received and len(mailbox.messages) == 1, message="the firing round's message")
    assert len(hook.received) == 1
    body = hook.received[0]
    assert [(a["rule"], a["event"]) for a in body["alerts"]] == [(rules[0]["id"], "firing"), (rules[1]["id"], "firing")]
    assert body["text"].startswith("[monitor] 2 firing\n• [FIRING] busy 1: request rate")
    assert body["event"] == "firing" and body["alert"]["rule"] == rules[0]["id"]
    assert body["url"] == "https://ops.example.com/admin/" and body["test"] is False
    mail_ = mailbox.messages[0]
    assert mail_["Subject"] == "[monitor] 2 firing" and mail_["To"] == "ops@example.com, dev@example.com"
    assert mail_["From"] == "monitor@example.com" and "[FIRING] busy 2: request rate" in mail_.get_content()
    evaluate(app, now + 1)
    evaluate(app, now + 2)
    time.sleep(0.3)
    assert len(hook.received) == 1 and len(mailbox.messages) == 1  # a state is told once
    for found in rules:
        client.put(f"/api/admin/alerts/rules/{found['id']}", headers=admin,
                   json={**found, "threshold": 1000, "resolve": {"for_s": 0}})
    evaluate(app, now + 3)
    wait_until(lambda: len(hook.received) == 2 and len(mailbox.messages) == 2, message="the resolved round's message")
    assert [a["event"] for a in hook.received[1]["alerts"]] == ["resolved", "resolved"]
    assert mailbox.subjects()[1] == "[monitor] 2 resolved"
    deliveries = {c["id"]: c["last_delivery"] for c in client.get("/api/admin/alerts/channels", headers=admin).json["channels"]}
    assert deliveries[web["id"]]["ok"] and deliveries[web["id"]]["event"] == "resolved"
    assert deliveries[mail["id"]]["detail"] == "sent to 2 of 2 recipients"


def test_a_single_change_reads_as_before_groups(app, client, admin, hook):
    web = add_channel(client, admin, name="hook", kind="webhook", url=hook.url)
    rule = add_rule(client, admin, name="errors", metric="error_rate", threshold=0.5, window_s=60, min_requests=5,
                    channels=[web["id"]])
    app.config["PROPAGATE_EXCEPTIONS"] = False
    drive(app, client, *["/demo/error"] * 6)
    evaluate(app)
    wait_until(lambda: hook.received, message="the firing message")
    assert hook.received[0]["text"] == "[FIRING] errors: 5xx rate 100.0% over 6 requests (limit > 50.0%)"
    assert hook.received[0]["alert"]["rule"] == rule["id"] and hook.received[0]["alert"]["severity"] == "warning"


# ---------------------------------------------------------------- formats, the test button, retries


def test_the_test_button_delivers_in_every_format(app, client, admin, hook, mailbox, store):
    found = {kind: add_channel(client, admin, name=f"{kind} channel", kind=kind, url=f"{hook.url}/{kind}")
             for kind in ("webhook", "slack", "teams")}
    found["email"] = add_channel(client, admin, name="mail", kind="email", to=["ops@example.com"])
    for kind, channel in found.items():
        answer = client.post(f"/api/admin/alerts/channels/{channel['id']}/test", headers=admin)
        assert answer.status_code == 200 and answer.json["delivered"], answer.json
        assert answer.json["last_delivery"]["event"] == "test" and answer.json["last_delivery"]["attempts"] == 1
    assert hook.paths == ["/hook/webhook", "/hook/slack", "/hook/teams"]
    webhook, slack, teams = hook.received
    assert webhook["test"] is True and webhook["event"] == "test" and webhook["text"].startswith(
        "[TEST] Test notification: a test of the channel webhook channel, sent by admin-")
    assert set(slack) == {"text"} and slack["text"].endswith("\n<https://ops.example.com/admin/|Open the dashboard>")
    card = teams["attachments"][0]
    assert teams["type"] == "message" and card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard" and card["content"]["body"][0]["text"].startswith("[TEST]")
    assert card["content"]["actions"][0]["url"] == "https://ops.example.com/admin/"
    assert mailbox.subjects() == ["[monitor] [TEST] Test notification: a test of the channel mail, sent by "
                                  + mailbox.messages[0]["Subject"].split("sent by ")[1]]
    entries = [e for e in audit.entries(store, 10) if e["action"] == "alert.channel.test"]
    assert len(entries) == 4 and {e["result"] for e in entries} == {"ok"}
    assert client.post("/api/admin/alerts/channels/c_nothing/test", headers=admin).status_code == 404


def test_a_failed_delivery_is_retried_with_back_off_off_the_request_path(app, store, caplog):
    receiver = Hook(fail=2)
    try:
        notifier = Notifier(store, {**app.config, "MONITOR_ALERT_WEBHOOK_RETRIES": 2})
        channel = {"id": "c_retry", "name": "retry", "kind": "webhook", "url": receiver.url}
        alert = {"id": "r-1", "rule": "r", "title": "t", "state": "firing", "detail": "d", "severity": "info"}
        started = time.monotonic()
        notifier.submit(channel, message([(alert, "firing")], "fleet"))
        assert time.monotonic() - started < 0.5  # queued: the caller never waits for the receiver
        wait_until(lambda: receiver.received, timeout=10, message="the third attempt")
        wait_until(lambda: store.redis.hget(store.key("alerts", "deliveries"), "c_retry"), message="the result")
        delivery = json.loads(store.redis.hget(store.key("alerts", "deliveries"), "c_retry"))
        assert receiver.attempts == 3 and delivery["ok"] and delivery["attempts"] == 3
        assert [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()] == [
            "alert channel c_retry (webhook): attempt 1 of 3 failed: HTTP 500",
            "alert channel c_retry (webhook): attempt 2 of 3 failed: HTTP 500"]
        gone = {**channel, "id": "c_gone", "url": f"http://127.0.0.1:{free_port()}/hook"}
        result = Notifier(store, {**app.config, "MONITOR_ALERT_WEBHOOK_RETRIES": 0}).send_now(
            gone, message([(alert, "firing")], "fleet"))
        assert result["ok"] is False and "Connection refused" in result["detail"]
    finally:
        receiver.close()


def test_reminders_while_firing_until_acknowledged(app, client, admin, hook, make_user, store):
    web = add_channel(client, admin, name="hook", kind="webhook", url=hook.url)
    rule = add_rule(client, admin, name="cold cache", metric="cache_hit_rate", op="<", threshold=0.9,
                    window_s=3600, reminder_s=60, channels=[web["id"]])
    drive(app, client, "/demo/cached/reminder")  # one miss: 0% hits
    now = time.time()
    evaluate(app, now)
    evaluate(app, now + 30)
    evaluate(app, now + 61)
    wait_until(lambda: len(hook.received) == 2, message="the reminder")
    assert [body["event"] for body in hook.received] == ["firing", "reminder"]
    assert hook.received[1]["text"].startswith("[REMINDER] cold cache: cache hit rate 0.0%")
    alert_id = alert_of(store, rule)["id"]
    acked = client.post(f"/api/admin/alerts/{alert_id}/ack", headers=bearer(make_user("operator")))
    assert acked.status_code == 200, acked.json
    evaluate(app, now + 130)
    time.sleep(0.3)
    assert len(hook.received) == 2  # acknowledged: no more reminders


# ---------------------------------------------------------------- silences


def test_a_silence_holds_notifications_and_they_go_out_when_it_ends(app, client, admin, hook, make_user, store, caplog):
    caplog.set_level(logging.INFO, "monitor.capabilities.alerts")
    operator = bearer(make_user("operator"))
    web = add_channel(client, admin, name="hook", kind="webhook", url=hook.url)
    held_on = {"metric": "request_rate", "threshold": 0.001, "window_s": 600, "resolve": {"for_s": 3600},
               "channels": [web["id"]]}
    rule = add_rule(client, admin, name="busy", labels={"team": "web"}, **held_on)
    other = add_rule(client, admin, name="other", labels={"team": "db"}, **held_on)
    answer = client.post("/api/admin/alerts/silences", headers=operator, json={
        "labels": {"team": "web"}, "duration_s": 60, "comment": "deploying the web tier"})
    assert answer.status_code == 201
    silence = answer.json
    assert silence["created_by"].startswith("operator-") and silence["ends_at"] - silence["starts_at"] == 60
    drive(app, client, *["/demo/hello"] * 5)
    now = time.time()
    evaluate(app, now)
    wait_until(lambda: hook.received, message="the unsilenced rule's message")
    time.sleep(0.3)
    assert [(a["rule"], a["event"]) for body in hook.received for a in body["alerts"]] == [(other["id"], "firing")]
    held = alert_of(store, rule)
    assert held["state"] == "firing" and held["silenced"] == [silence["id"]] and "notified" not in held
    history = [json.loads(h) for h in store.redis.lrange(store.key("alerts", "history"), 0, -1)]
    assert {(h["rule"], h["event"]) for h in history} == {(rule["id"], "firing"), (other["id"], "firing")}
    assert any(r.getMessage() == f"alert [FIRING] busy: {held['detail']} (silenced)" and r.levelname == "INFO"
               for r in caplog.records)
    evaluate(app, now + 30)
    time.sleep(0.3)
    assert len(hook.received) == 1  # still held
    evaluate(app, now + 61)  # the silence has ended by itself
    wait_until(lambda: len(hook.received) == 2, message="the held notification")
    assert [(a["rule"], a["event"]) for a in hook.received[1]["alerts"]] == [(rule["id"], "firing")]
    assert "silenced" not in alert_of(store, rule)
    assert client.get("/api/admin/alerts/silences", headers=operator).json["silences"] == [silence]  # ends in 60 s
    evaluate(app, now + 60 + 3600 + 1)
    assert store.redis.hget(store.key("alerts", "silences"), silence["id"]) is None  # expired ones are deleted


def test_a_rule_that_resolves_while_silenced_is_not_told_at_all(app, client, admin, hook, make_user, store):
    web = add_channel(client, admin, name="hook", kind="webhook", url=hook.url)
    rule = add_rule(client, admin, name="busy", metric="request_rate", threshold=0.001, window_s=600,
                    channels=[web["id"]])
    silence = client.post("/api/admin/alerts/silences", headers=bearer(make_user("operator")), json={
        "rule": rule["id"], "until": time.time() + 3600, "comment": "known"}).json
    drive(app, client, *["/demo/hello"] * 5)
    evaluate(app)
    client.put(f"/api/admin/alerts/rules/{rule['id']}", headers=admin,
               json={**rule, "threshold": 1000, "resolve": {"for_s": 0}})
    evaluate(app)
    assert alert_of(store, rule)["state"] == "resolved"
    assert client.delete(f"/api/admin/alerts/silences?id={silence['id']}", headers=admin).json == {"deleted": silence["id"]}
    evaluate(app)
    time.sleep(0.3)
    assert hook.received == [] and alert_of(store, rule)["notified"] == "resolved"


def test_silences_api_validation_and_roles(app, client, admin, make_user):
    viewer, operator = bearer(make_user("viewer")), bearer(make_user("operator"))
    good = {"rule": "error_rate", "duration_s": 600, "comment": "maintenance"}
    assert client.post("/api/admin/alerts/silences", headers=viewer, json=good).status_code == 403
    for body, detail in (({**good, "comment": ""}, "comment must not be empty"),
                         ({"duration_s": 60, "comment": "x"}, "a silence names a rule, labels or a scope"),
                         ({**good, "rule": "r_nothing"}, "no rule with the id given"),
                         ({**good, "until": "2020-01-01T00:00:00Z", "duration_s": None}, "would end before it starts"),
                         ({**good, "until": "tomorrow", "duration_s": None}, "until must be epoch seconds"),
                         ({**good, "until": time.time() + 60}, "give either duration_s or until"),
                         ({**good, "duration_s": 91 * 86400}, "duration_s must be between"),
                         ({**good, "scope": "rack:1"}, "scope is fleet"),
                         ({**good, "why": "x"}, "unknown field(s) why")):
        answer = client.post("/api/admin/alerts/silences", headers=operator, json=body)
        assert answer.status_code == 400 and detail in answer.json["detail"], (body, answer.json)
    made = client.post("/api/admin/alerts/silences", headers=operator, json={
        **good, "duration_s": None, "starts_at": "2100-01-01T00:00:00Z", "until": "2100-01-01T02:00:00"}).json
    assert made["starts_at"] == 4102444800 and made["ends_at"] == 4102444800 + 7200  # no zone: UTC
    assert client.get("/api/admin/alerts/silences", headers=viewer).json["silences"] == [made]
    assert client.delete(f"/api/admin/alerts/silences?id={made['id']}", headers=viewer).status_code == 403
    assert client.delete("/api/admin/alerts/silences?id=s_nothing", headers=operator).status_code == 404
    assert client.delete("/api/admin/alerts/silences", headers=operator).status_code == 400
    assert client.delete(f"/api/admin/alerts/silences?id={made['id']}", headers=operator).status_code == 200
    assert client.get("/api/admin/alerts/silences", headers=viewer).json["silences"] == []


# ---------------------------------------------------------------- channels: the API, secrets


def test_channels_api_validation_roles_and_the_settings_channel(app_config, make_user, store, hook):
    app = create_app({**app_config, "MONITOR_ALERT_WEBHOOK_URL": hook.url})
    client, admin = app.test_client(), bearer(make_user("admin"))
    assert client.get("/api/admin/alerts/channels", headers=bearer(make_user("operator"))).status_code == 403
    listed = client.get("/api/admin/alerts/channels", headers=admin).json["channels"]
    port = hook.server.server_port
    assert listed == [{"id": "settings_webhook", "kind": "webhook", "name": "MONITOR_ALERT_WEBHOOK_URL",
                       "target": f"http://127.0.0.1:{port}/…", "last_delivery": None, "source": "settings"}]
    for body, detail in (({"name": "x", "kind": "pager", "url": hook.url}, "kind must be one of"),
                         ({"name": "x", "kind": "slack", "url": "ftp://files.example.com/x"}, "url must be an http"),
                         ({"name": "x", "kind": "slack", "url": "https://a b/"}, "url must be an http"),
                         ({"name": "x", "kind": "email", "to": ["ops@example.com"]}, "set MONITOR_ALERT_SMTP_HOST"),
                         ({"name": "x", "kind": "slack", "to": ["ops@example.com"]}, "takes `url`, not `to`"),
                         ({"name": "x", "kind": "webhook", "url": hook.url, "id": "settings_webhook"}, "is MONITOR_")):
        answer = client.post("/api/admin/alerts/channels", headers=admin, json=body)
        assert answer.status_code == 400 and detail in answer.json["detail"], answer.json
        assert "files.example.com" not in answer.json["detail"]
    assert client.delete("/api/admin/alerts/channels/settings_webhook", headers=admin).status_code == 409
    channel = add_channel(client, admin, name="hook", kind="slack", url=hook.url + "/T0/B0/XYZ")
    assert "url" not in channel and channel["target"] == f"http://127.0.0.1:{port}/…"
    rule = add_rule(client, admin, name="r", metric="request_rate", threshold=1, channels=[channel["id"]])
    in_use = client.delete(f"/api/admin/alerts/channels/{channel['id']}", headers=admin)
    assert in_use.status_code == 409 and rule["id"] in in_use.json["detail"]
    client.delete(f"/api/admin/alerts/rules/{rule['id']}", headers=admin)
    assert client.delete(f"/api/admin/alerts/channels/{channel['id']}", headers=admin).json == {"deleted": channel["id"]}
    assert client.delete(f"/api/admin/alerts/channels/{channel['id']}", headers=admin).status_code == 404
    state(app).flusher.stop(flush=False)


def test_a_channels_secrets_never_leave(app_config, make_user, store, mailbox):
    token, password = "hook-SECRET-token-1234", "smtp-SECRET-password"
    url = f"http://127.0.0.1:{free_port()}/services/T0/B0/{token}"  # nothing listens: every delivery fails
    settings = {**mailbox.settings(), "MONITOR_ALERT_SMTP_PASSWORD": password}  # not the server's: refused
    app = create_app({**app_config, **settings, "MONITOR_ALERT_WEBHOOK_RETRIES": 1, "MONITOR_ALERT_WEBHOOK_TIMEOUT": 1})
    app.config["PROPAGATE_EXCEPTIONS"] = False
    state(app).alerts.interval = float("inf")
    client, admin_user = app.test_client(), make_user("admin")
    admin = bearer(admin_user)
    answers = []

    def call(method, path, **kwargs):
        answer = getattr(client, method)(path, headers=admin, **kwargs)
        answers.append(answer.get_data(as_text=True))
        return answer

    web = call("post", "/api/admin/alerts/channels", json={"name": "hook", "kind": "slack", "url": url}).json
    mail = call("post", "/api/admin/alerts/channels", json={"name": "mail", "kind": "email", "to": ["a@example.com"]}).json
    call("post", "/api/admin/alerts/channels", json={"name": "bad", "kind": "nope", "url": url})
    call("post", "/api/admin/alerts/channels", json={"name": "bad", "kind": "slack", "url": url + " x"})
    for channel in (web, mail):
        tested = call("post", f"/api/admin/alerts/channels/{channel['id']}/test").json
        assert tested["delivered"] is False
    rule = call("post", "/api/admin/alerts/rules", json={
        "name": "busy", "metric": "request_rate", "op": ">", "threshold": 0.01, "window_s": 60, "for_s": 0,
        "channels": [web["id"], mail["id"]]}).json
    drive(app, client, *["/demo/hello"] * 3)
    state(app).alerts.evaluate(time.time())
    wait_until(lambda: all(c["last_delivery"] and c["last_delivery"]["event"] == "firing"
                           for c in client.get("/api/admin/alerts/channels", headers=admin).json["channels"]),
               timeout=15, message="both deliveries to give up")
    for path in ("/api/admin/alerts/channels", "/api/admin/alerts", "/api/admin/alerts/rules",
                 f"/api/admin/alerts/rules/{rule['id']}", "/api/admin/logs?limit=1000", "/api/admin/audit?limit=1000"):
        call("get", path)
    auth = Auth(client)
    auth.login(admin_user)
    for path in ("/admin/", "/admin/alerts/", "/admin/alerts/part/channels", "/admin/panels/logs",
                 f"/admin/alerts/rules/{rule['id']}", "/admin/alerts/rules/new"):
        answers.append(client.get(path).get_data(as_text=True))
    answers.append(auth.post("/admin/alerts/channels", data={"name": "x", "kind": "nope", "url": url}).get_data(as_text=True))
    state(app).flusher.tick()  # ship the last log lines
    logs = [json.dumps(fields) for _, fields in store.redis.xrange(store.key("logs", "stream"))]
    audit_log = [json.dumps(fields) for _, fields in store.redis.xrange(store.key("audit"))]
    deliveries = client.get("/api/admin/alerts/channels", headers=admin).json["channels"]
    assert any("Connection refused" in c["last_delivery"]["detail"] for c in deliveries)
    assert any("SMTPAuthenticationError" in c["last_delivery"]["detail"] for c in deliveries)
    assert any("attempt 1 of 2 failed" in line for line in logs) and any("alert.channel.test" in e for e in audit_log)
    for secret in (token, password, url):
        for where, texts in (("answers and pages", answers), ("log stream", logs), ("audit log", audit_log)):
            leaked = [text[:200] for text in texts if secret in text]
            assert not leaked, f"{secret} in the {where}: {leaked}"
    state(app).flusher.stop(flush=False)


# ---------------------------------------------------------------- the panel and the page


def test_the_panel_shows_silences_and_operators_add_and_end_them(app, client, auth, make_user, store):
    auth.login(make_user("viewer"))
    state(app).flusher.stop(flush=False)
    soup = BeautifulSoup(client.get("/admin/panels/logs").get_data(as_text=True), "html.parser")
    assert [h.get_text() for h in soup.select("#panel-logs h3")] == ["Active alerts", "Silences", "History", "Logs"]
    assert soup.select_one("#silence-form") is None and "No silence" in soup.select_one("#logs-alerts").get_text()
    auth.logout()
    auth.login(make_user("operator"))
    refused = auth.post("/admin/panels/logs/silence", data={"rule": "error_rate", "duration_s": "3600", "comment": ""})
    assert refused.status_code == 400 and "comment is required" in refused.get_data(as_text=True)
    answer = auth.post("/admin/panels/logs/silence", data={
        "rule": "error_rate", "labels": "", "scope": "", "duration_s": "3600", "until": "", "comment": "db failover"})
    assert answer.status_code == 200 and re.search(r"silence s_[0-9a-f]{8} holds notifications until",
                                                   answer.get_data(as_text=True))
    silence = client.get("/api/admin/alerts/silences").json["silences"][0]
    assert (silence["rule"], silence["comment"], silence["ends_at"] - silence["starts_at"]) == ("error_rate", "db failover", 3600)
    soup = BeautifulSoup(answer.get_data(as_text=True), "html.parser")
    row = soup.select_one(f'tr[data-silence="{silence["id"]}"]')
    assert "db failover" in row.get_text() and row.select_one("input[name=id]")["value"] == silence["id"]
    ended = auth.post("/admin/panels/logs/unsilence", data={"id": silence["id"]})
    assert ended.status_code == 200 and f"ended silence {silence['id']}" in ended.get_data(as_text=True)
    assert client.get("/api/admin/alerts/silences").json["silences"] == []
    assert auth.post("/admin/panels/logs/unsilence", data={"id": silence["id"]}).status_code == 404


def test_the_panel_lists_active_first_and_operators_acknowledge(app, client, auth, make_user, store):
    auth.login(make_user("viewer"))
    state(app).flusher.stop(flush=False)
    alert = {"id": "worker_rss-100", "rule": "worker_rss", "title": "worker RSS", "state": "firing", "since": 100.0,
             "fired_at": 100.0, "value": 2048, "detail": "host pid 1: 2048 MB"}
    store.redis.hset(store.key("alerts", "state"), "worker_rss", json.dumps(alert))
    soup = BeautifulSoup(client.get("/admin/panels/logs").get_data(as_text=True), "html.parser")
    row = soup.select_one('tr[data-alert="worker_rss-100"]')
    assert row is not None and "firing" in row.get_text() and row.select("form") == []
    assert "worker RSS: worker RSS > 1,024 MB" in soup.select_one("#alert-rules").get_text()
    auth.logout()
    auth.login(make_user("operator"))
    answer = auth.post("/admin/panels/logs/ack", data={"id": "worker_rss-100"})
    assert answer.status_code == 200 and "acknowledged worker RSS" in answer.get_data(as_text=True)
    assert json.loads(store.redis.hget(store.key("alerts", "state"), "worker_rss"))["acked_by"].startswith("operator-")
    assert auth.post("/admin/panels/logs/ack", data={"id": "nope-1"}).status_code == 404  # as the API answers


RULE_FORM = {"name": "slow sleep", "metric": "latency_p95", "scope": "endpoint:/demo/sleep", "op": ">",
             "threshold": "100", "window_s": "30", "for_s": "10", "resolve_threshold": "", "resolve_for_s": "5",
             "severity": "critical", "min_requests": "", "labels": "team=web, tier=front", "reminder_s": "0",
             "enabled": "on", "param_level": "", "param_text": ""}


def test_admins_write_rules_and_channels_on_the_alert_rules_page(app, client, auth, make_user, hook, store):
    auth.login(make_user("admin"))
    state(app).flusher.stop(flush=False)
    page = BeautifulSoup(client.get("/admin/").get_data(as_text=True), "html.parser")
    assert page.select_one('nav.panels-nav a[href="/admin/alerts/"]').get_text() == "Alert rules"
    added = auth.post("/admin/alerts/channels", data={"name": "ops", "kind": "webhook", "url": hook.url, "to": ""})
    assert added.status_code == 303
    channel = client.get("/api/admin/alerts/channels").json["channels"][0]
    refused = auth.post("/admin/alerts/rules", data={**RULE_FORM, "threshold": "lots"})
    assert refused.status_code == 400
    soup = BeautifulSoup(refused.get_data(as_text=True), "html.parser")
    assert soup.select_one("#rule-error").get_text() == "threshold must be a number"
    assert soup.select_one("#rule-name")["value"] == "slow sleep"  # what was typed stays
    preview = auth.post("/admin/alerts/preview", data=RULE_FORM)
    assert preview.status_code == 200 and "would have fired 0 times in the last 24 h" in preview.get_data(as_text=True)
    created = auth.post("/admin/alerts/rules", data={**RULE_FORM, f"channel_{channel['id']}": "on"})
    assert created.status_code == 303
    rule = next(r for r in client.get("/api/admin/alerts/rules").json["rules"] if r["name"] == "slow sleep")
    assert rule == {"id": rule["id"], "name": "slow sleep", "metric": "latency_p95", "params": {},
                    "scope": "endpoint:/demo/sleep", "op": ">", "threshold": 100.0, "window_s": 30, "for_s": 10.0,
                    "resolve": {"threshold": 80.0, "for_s": 5.0}, "severity": "critical",
                    "labels": {"team": "web", "tier": "front"}, "channels": [channel["id"]], "reminder_s": 0,
                    "min_requests": 20, "enabled": True}
    form = BeautifulSoup(client.get(f"/admin/alerts/rules/{rule['id']}").get_data(as_text=True), "html.parser")
    assert form.select_one("#rule-threshold")["value"] == "100.0"
    assert form.select_one(f'input[name="channel_{channel["id"]}"]').has_attr("checked")
    values = {**RULE_FORM, "threshold": "250", "enabled": ""}
    assert auth.post(f"/admin/alerts/rules/{rule['id']}", data=values).status_code == 303
    changed = client.get(f"/api/admin/alerts/rules/{rule['id']}").json
    assert changed["threshold"] == 250.0 and changed["enabled"] is False and changed["channels"] == []
    listing = BeautifulSoup(client.get("/admin/alerts/").get_data(as_text=True), "html.parser")
    row = listing.select_one(f'tr[data-rule="{rule["id"]}"]')
    assert "disabled" in row.get_text() and "p95 latency of endpoint:/demo/sleep > 250 ms over 30 s" in row.get_text()
    tested = auth.post(f"/admin/alerts/channels/{channel['id']}/test")
    assert tested.status_code == 303 and hook.received[0]["test"] is True
    assert "Test delivered to ops: HTTP 204" in client.get("/admin/alerts/").get_data(as_text=True)
    assert auth.post(f"/admin/alerts/rules/{rule['id']}/delete").status_code == 303
    assert client.get(f"/api/admin/alerts/rules/{rule['id']}").status_code == 404
    assert [e["action"] for e in audit.entries(store, 3)] == ["alert.rule.delete", "alert.channel.test",
                                                             "alert.rule.update"]


def test_viewers_read_the_rules_page_without_editing(app, client, auth, make_user):
    auth.login(make_user("viewer"))
    state(app).flusher.stop(flush=False)
    soup = BeautifulSoup(client.get("/admin/alerts/").get_data(as_text=True), "html.parser")
    assert len(soup.select("tr[data-rule]")) == 6 and soup.select("#channels") == []
    assert not soup.select('a[href^="/admin/alerts/rules/"]')
    assert client.get("/admin/alerts/rules/new").status_code == 403
    assert client.get("/admin/alerts/part/channels").status_code == 403
    part = client.get("/admin/alerts/part/rules", headers={"HX-Request": "true"})
    assert part.status_code == 200 and BeautifulSoup(part.get_data(as_text=True), "html.parser").select_one(
        "#alert-rules")["hx-get"] == "/admin/alerts/part/rules"
