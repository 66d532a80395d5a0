"""Exceptions: fingerprints, exact counts, redacted samples, logged exceptions, resolving and regressions,
the API, the panel, Prometheus, and a real fleet of three workers."""
import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from bs4 import BeautifulSoup
from flask import request
from prometheus_client.parser import text_string_to_metric_families

from monitor import create_app
from monitor.capabilities.alerts.metrics import METRICS, Context
from monitor.capabilities.exceptions import fingerprint, layout
from monitor.capabilities.exceptions.collect import SAMPLES
from monitor.core import audit
from monitor.core.state import state
from support import bearer, wait_until

SECRET_QUERY, SECRET_HEADER, SECRET_COOKIE = "q-secret-4711", "h-secret-0815", "c-secret-1234"


def failing(app):
    """Mount /boom (a RuntimeError), /boom/other (a KeyError raised in a helper), /echo/<text> (the text in
    the message) and /user (a query value and a header in the message); failing requests answer 500 instead
    of raising into the test client."""
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom happened")

    def helper(key):
        return {}[key]

    @app.get("/boom/other")
    def other():
        return helper("missing")

    @app.get("/echo/<path:text>")
    def echo(text):
        raise ValueError(f"cannot handle {text}")

    @app.get("/user")
    def user():
        raise LookupError(f"no user {request.args.get('email')} with key {request.headers.get('X-Token')}")

    return app


@pytest.fixture
def exc_app(app):
    return failing(app)


def ship(app):
    state(app).flusher.tick()


def api(client, user, path):
    response = client.get(path, headers=bearer(user))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


# ---------------------------------------------------------------- fingerprints


def _raise_at(line):
    """Raise a RuntimeError from one of two lines of the same function."""
    if line == 1:
        raise RuntimeError("first line")
    raise RuntimeError("second line")


def _raise_elsewhere():
    raise RuntimeError("elsewhere")


def _through_a_library():
    json.loads("{not json")


def _stack(call, *args):
    try:
        call(*args)
    except Exception as exc:
        return fingerprint.Stacks().of(exc)


def test_a_group_is_the_type_and_the_apps_own_frames_not_lines_nor_libraries():
    first, second, elsewhere = _stack(_raise_at, 1), _stack(_raise_at, 2), _stack(_raise_elsewhere)
    assert first.gid == second.gid != elsewhere.gid
    assert first.culprit == "capabilities/test_exceptions.py in _raise_at" or first.culprit.endswith(
        "test_exceptions.py in _raise_at")
    library = _stack(_through_a_library)
    apps = [frame for frame in library.frames if frame[3]]
    assert [frame[1] for frame in apps] == ["_stack", "_through_a_library"]
    assert any(frame[0].startswith("json/") and not frame[3] for frame in library.frames)
    assert library.type == "json.decoder.JSONDecodeError" and first.type == "RuntimeError"


def test_the_stack_of_a_code_location_is_worked_out_once():
    stacks = fingerprint.Stacks()
    found = []
    for _ in range(3):
        try:
            _raise_at(1)
        except RuntimeError as exc:
            found.append(stacks.of(exc))
    assert found[0] is found[1] is found[2] and len(stacks.memo) == 1


def test_a_recursion_is_one_frame_however_deep():
    def recurse(n):
        if n == 0:
            raise RuntimeError("bottom")
        recurse(n - 1)
    shallow, deep = _stack(recurse, 3), _stack(recurse, 80)
    assert shallow.gid == deep.gid and deep.dropped > 0 and len(deep.frames) == fingerprint.MAX_FRAMES


# ---------------------------------------------------------------- counts, samples, redaction


def test_a_failing_request_is_one_group_with_a_redacted_sample(exc_app, client, make_user):
    client.set_cookie("session_id", SECRET_COOKIE)
    for _ in range(3):
        response = client.get(f"/boom?token={SECRET_QUERY}&page=2", headers={"X-Api-Key": SECRET_HEADER})
        assert response.status_code == 500
    ship(exc_app)
    viewer = make_user("viewer")
    body = api(client, viewer, "/api/admin/exceptions")
    assert len(body["groups"]) == 1 and body["occurrences"] == 3
    group = body["groups"][0]
    assert {key: group[key] for key in ("type", "message", "count", "total", "endpoints", "status")} == {
        "type": "RuntimeError", "message": "boom happened", "count": 3, "total": 3, "endpoints": ["GET /boom"],
        "status": "open"}
    assert group["releases"] == [exc_app.config["MONITOR_RELEASE"]] and group["hosts"] == ["testhost"]
    assert group["first_seen"] <= group["last_seen"] and sum(group["series"]) == 3
    assert group["culprit"].endswith("test_exceptions.py in failing.<locals>.boom")
    detail = client.get(f"/api/admin/exceptions/{group['id']}", headers=bearer(viewer))
    text = detail.get_data(as_text=True)
    for secret in (SECRET_QUERY, SECRET_HEADER, SECRET_COOKIE, "X-Api-Key", "session_id"):
        assert secret not in text
    samples = detail.json["samples"]
    assert len(samples) == 3 and samples[0]["time"] >= samples[-1]["time"]
    sample = samples[0]
    assert sample["method"] == "GET" and sample["path"] == "/boom" and sample["query"] == ["page", "token"]
    assert re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", sample["request_id"]) and sample["pid"] > 0
    assert sample["traceback"].startswith("Traceback (most recent call last):")
    assert 'raise RuntimeError("boom happened")' in sample["traceback"]
    assert sample["traceback"].endswith("RuntimeError: boom happened")
    assert sample["frames"][-1]["code"] == 'raise RuntimeError("boom happened")' and sample["frames"][-1]["app"]
    assert "flask/app.py" in [frame["file"] for frame in sample["frames"]]
    # the request's own log lines: Flask logged the exception under the same request id
    lines = api(client, viewer, f"/api/admin/logs?request_id={sample['request_id']}")["entries"]
    assert [line["message"] for line in lines] == ["Exception on /boom [GET]"]


def test_a_message_repeating_a_query_or_header_value_is_redacted(exc_app, client, make_user):
    for _ in range(2):
        response = client.get(f"/user?email={SECRET_QUERY}&n=1", headers={"X-Token": SECRET_HEADER})
        assert response.status_code == 500
    ship(exc_app)
    viewer = make_user("viewer")
    groups = api(client, viewer, "/api/admin/exceptions")["groups"]
    assert len(groups) == 1 and groups[0]["count"] == 2
    assert groups[0]["message"] == "no user [redacted] with key [redacted]"
    detail = client.get(f"/api/admin/exceptions/{groups[0]['id']}", headers=bearer(viewer)).get_data(as_text=True)
    assert SECRET_QUERY not in detail and SECRET_HEADER not in detail
    assert "LookupError: no user [redacted] with key [redacted]" in detail


def test_answers_escape_markup_inside_json(exc_app, client, make_user):
    client.get("/echo/<script>alert(1)</script>")
    ship(exc_app)
    response = client.get("/api/admin/exceptions", headers=bearer(make_user("viewer")))
    assert b"<script>" not in response.data and b"\\u003cscript\\u003e" in response.data
    assert response.json["groups"][0]["message"] == "cannot handle <script>alert(1)</script>"


def test_two_code_paths_are_two_groups_and_each_count_is_exact(exc_app, client, make_user):
    for _ in range(40):
        client.get("/boom")
    for i in range(25):
        client.get("/boom/other")
        if i % 10 == 0:
            ship(exc_app)  # counts add up across flushes
    ship(exc_app)
    groups = {g["type"]: g for g in api(client, make_user("viewer"), "/api/admin/exceptions")["groups"]}
    assert set(groups) == {"RuntimeError", "KeyError"}
    assert groups["RuntimeError"]["count"] == 40 and groups["KeyError"]["count"] == 25
    assert groups["KeyError"]["culprit"].endswith("in failing.<locals>.helper")
    assert groups["KeyError"]["message"] == "'missing'"


def test_a_burst_keeps_few_samples_and_an_exact_count(exc_app, client, make_user, store):
    for _ in range(300):
        client.get("/boom")
    collector = state(exc_app).exceptions
    taken = collector.groups
    assert len(taken) == 1 and len(next(iter(taken.values())).samples) == SAMPLES
    ship(exc_app)
    for _ in range(7):
        client.get("/boom")
    ship(exc_app)
    group = api(client, make_user("viewer"), "/api/admin/exceptions")["groups"][0]
    assert group["count"] == 307
    assert store.redis.llen(layout.group(store, group["id"], "s")) == SAMPLES


def test_logger_exception_outside_a_request_is_grouped_and_inside_is_not(exc_app, client, make_user):
    log = logging.getLogger("host.jobs")

    @exc_app.get("/handled")
    def handled():
        try:
            {}["inside"]
        except KeyError:
            log.exception("handled inside a request")
        return "fine"

    assert client.get("/handled").status_code == 200
    try:
        int("not a number")
    except ValueError:
        log.exception("nightly job failed")
    try:
        int("not a number")
    except ValueError:
        log.exception("nightly job failed again")
    log.error("no exception here", exc_info=False)
    ship(exc_app)
    viewer = make_user("viewer")
    groups = api(client, viewer, "/api/admin/exceptions")["groups"]
    assert [(g["type"], g["count"], g["endpoints"]) for g in groups] == [("ValueError", 2, ["<no request>"])]
    sample = api(client, viewer, f"/api/admin/exceptions/{groups[0]['id']}")["samples"][0]
    assert sample["logger"] == "host.jobs" and sample["log_message"] == "nightly job failed again"
    assert "path" not in sample and "int(\"not a number\")" in sample["traceback"]


def test_groups_past_the_cap_count_as_overflow_and_prometheus_lists_the_cap(app_config, make_user):
    app = failing(create_app({**app_config, "MONITOR_EXCEPTIONS_MAX_GROUPS": 10}))
    try:
        monitor = state(app)
        monitor.extension.exception_fingerprint(lambda exc: str(exc))

        @app.get("/many/<int:n>")
        def many(n):
            raise RuntimeError(f"kind {n}")

        client = app.test_client()
        for n in range(14):
            client.get(f"/many/{n}")
        monitor.flusher.tick()
        groups = api(client, make_user("viewer"), "/api/admin/exceptions")["groups"]
        assert len(groups) == 11 and sum(g["count"] for g in groups) == 14
        overflow = [g for g in groups if g["id"] == "overflow"]
        assert overflow and overflow[0]["type"] == "<overflow>" and overflow[0]["count"] == 4
        text = client.get("/metrics", headers=bearer(make_user("viewer"))).get_data(as_text=True)
        family = next(f for f in text_string_to_metric_families(text) if f.name == "monitor_exceptions")
        exposed = [s for s in family.samples if s.name == "monitor_exceptions_total"]
        assert len(exposed) == 10  # of 11 groups: the cap holds for the exposition too (the 10 seen last)
    finally:
        state(app).flusher.stop(flush=False)


def test_the_host_can_fingerprint_its_own_way(exc_app, client, make_user):
    state(exc_app).extension.exception_fingerprint(lambda exc: "all-the-same" if "cannot" in str(exc) else None)
    client.get("/echo/a")
    client.get("/boom")
    client.get("/echo/b/c")
    ship(exc_app)
    groups = {g["type"]: g["count"] for g in api(client, make_user("viewer"), "/api/admin/exceptions")["groups"]}
    assert groups == {"ValueError": 2, "RuntimeError": 1}


def test_every_key_has_a_ttl_and_a_failed_send_is_shipped_once(exc_app, client, store, make_user):
    client.get("/boom")
    monitor = state(exc_app)
    real = monitor.flusher.apply_once
    calls = []

    def failing_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            real(**kwargs)  # lands, but its answer is lost
            raise __import__("redis").TimeoutError("answer lost")
        return real(**kwargs)

    monitor.flusher.apply_once = failing_once
    ship(exc_app)
    client.get("/boom")
    ship(exc_app)
    monitor.flusher.apply_once = real
    group = api(client, make_user("viewer"), "/api/admin/exceptions")["groups"][0]
    assert group["count"] == 2
    keys = list(store.scan_prefix("exc"))
    assert keys and all(store.redis.ttl(key) > 0 for key in keys), [k for k in keys if store.redis.ttl(k) <= 0]


# ---------------------------------------------------------------- resolving, regressions, alerts


def test_resolving_and_a_regression_in_a_new_release(app_config, make_user, store):
    first = failing(create_app({**app_config, "MONITOR_RELEASE": "v1"}))
    second = None
    try:
        client = first.test_client()
        operator, viewer = make_user("operator"), make_user("viewer")
        client.get("/boom")
        ship(first)
        gid = api(client, viewer, "/api/admin/exceptions")["groups"][0]["id"]
        refused = client.post(f"/api/admin/exceptions/{gid}/resolve", headers=bearer(viewer))
        assert refused.status_code == 403
        assert client.post("/api/admin/exceptions/0123456789abcdef/resolve", headers=bearer(operator)).status_code == 404
        assert client.post(f"/api/admin/exceptions/{gid}/resolve", json={"why": 1},
                           headers=bearer(operator)).status_code == 400
        resolved = client.post(f"/api/admin/exceptions/{gid}/resolve", headers=bearer(operator))
        assert resolved.status_code == 200 and resolved.json["status"] == "resolved"
        assert resolved.json["resolved_by"] == operator["name"]
        exceptions = state(first).capabilities["exceptions"]
        assert exceptions.regressions(state(first)) == []
        time.sleep(0.01)
        client.get("/boom")  # again in v1: it was not fixed
        ship(first)
        assert api(client, viewer, f"/api/admin/exceptions/{gid}")["status"] == "open"
        client.post(f"/api/admin/exceptions/{gid}/resolve", headers=bearer(operator))
        time.sleep(0.01)
        second = failing(create_app({**app_config, "MONITOR_RELEASE": "v2"}))
        second.test_client().get("/boom")
        ship(second)
        group = api(client, viewer, f"/api/admin/exceptions/{gid}")
        assert group["status"] == "regression" and group["releases"] == ["v2", "v1"]
        assert exceptions.regressions(state(first)) == [{"id": gid, "type": "RuntimeError"}]
        ctx = Context(state(first), time.time())
        rule = type("Rule", (), {"window_s": 300, "scope_kind": "fleet", "scope_value": "", "params": {}})()
        assert METRICS["exception_regressions"].read(ctx, rule).value == 1
        assert METRICS["exception_groups_new"].read(ctx, rule).value == 1
        resolves = [(e["user"], e["result"], e["detail"]["group"]) for e in audit.entries(store)
                    if e["action"] == "exception.resolve"]
        assert resolves == [(operator["name"], "ok", gid)] * 2 + [(operator["name"], "not_found", "0123456789abcdef")]
    finally:
        for made in (first, second):
            if made is not None:
                state(made).flusher.stop(flush=False)


def test_the_default_rules_watch_new_groups_and_regressions(app, store):
    from monitor.capabilities.alerts import rules

    found = rules.load(store, app.config)
    assert found["exception_new"]["metric"] == "exception_groups_new"
    assert found["exception_regression"]["metric"] == "exception_regressions"
    assert found["exception_regression"]["severity"] == "critical"


# ---------------------------------------------------------------- the API's refusals, the panel, Prometheus


@pytest.mark.parametrize("path, status", [
    ("/api/admin/exceptions?window=9", 400), ("/api/admin/exceptions?window=604801", 400),
    ("/api/admin/exceptions?limit=0", 400), ("/api/admin/exceptions/nope", 404),
    ("/api/admin/exceptions/0123456789abcdef", 404), ("/api/admin/exceptions/0123456789abcdef?window=x", 400)])
def test_bad_input_is_refused(client, make_user, path, status):
    response = client.get(path, headers=bearer(make_user("viewer")))
    assert response.status_code == status and response.json["error"] in ("bad_request", "not_found")


def test_strangers_get_nothing(client):
    assert client.get("/api/admin/exceptions").status_code == 401
    assert client.post("/api/admin/exceptions/overflow/resolve").status_code == 401


def test_the_panel_lists_groups_and_shows_one_with_its_samples(exc_app, client, auth, make_user):
    client.get("/boom?token=abc123")
    client.get("/boom/other")
    ship(exc_app)
    auth.login(make_user("operator"))
    soup = BeautifulSoup(client.get("/admin/panels/exceptions").get_data(as_text=True), "html.parser")
    rows = soup.select("table.exceptions-groups tbody tr")
    assert len(rows) == 2 and soup.select_one("#exceptions-total").text == "2"
    assert all(row.select_one("svg.spark[role=img]")["aria-label"] for row in rows)
    link = rows[0].select_one("a[hx-get]")
    gid = rows[0]["data-group"]
    assert f"exc_group={gid}" in link["hx-get"] and link["href"].endswith("#panel-exceptions")
    detail = BeautifulSoup(client.get(link["hx-get"]).get_data(as_text=True), "html.parser")
    sample = detail.select_one("details.exc-sample")
    assert sample is not None and sample.has_attr("open")
    logs = sample.select_one('a[href*="request_id="]')["href"]
    assert "level=DEBUG" in logs and logs.endswith("#panel-logs")
    assert detail.select("ol.exc-frames li.frame-app") and detail.select("ol.exc-frames details")
    resolve = detail.select_one('form[hx-post$="/resolve?exc_group=' + gid + '"]') or detail.select_one(
        'form[hx-post*="/admin/panels/exceptions/resolve"]')
    assert resolve is not None
    done = auth.post(resolve["hx-post"], data={"id": gid, "csrf_token": auth.csrf})
    assert done.status_code == 200 and "marked resolved" in done.get_data(as_text=True)
    again = BeautifulSoup(done.get_data(as_text=True), "html.parser")
    assert again.select_one(f'tr[data-group="{gid}"] .badge').text == "resolved"


def test_a_viewer_sees_no_resolve_button(exc_app, client, auth, make_user):
    client.get("/boom")
    ship(exc_app)
    auth.login(make_user("viewer"))
    gid = api(client, make_user("viewer"), "/api/admin/exceptions")["groups"][0]["id"]
    soup = BeautifulSoup(client.get(f"/admin/panels/exceptions?exc_group={gid}").get_data(as_text=True),
                         "html.parser")
    assert soup.select_one("#exc-detail") is not None and not soup.select("form[hx-post]")


def test_prometheus_counts_exceptions_by_group(exc_app, client, make_user):
    for _ in range(3):
        client.get("/boom")
    client.get("/boom/other")
    ship(exc_app)
    text = client.get("/metrics", headers=bearer(make_user("viewer"))).get_data(as_text=True)
    family = next(f for f in text_string_to_metric_families(text) if f.name == "monitor_exceptions")
    found = {(s.labels["type"], s.value) for s in family.samples if s.name == "monitor_exceptions_total"}
    assert found == {("RuntimeError", 3.0), ("KeyError", 1.0)}


# ---------------------------------------------------------------- a real fleet


@pytest.mark.slow
def test_a_thousand_failures_over_three_workers_are_one_group_of_a_thousand(gunicorn, make_user):
    server = gunicorn(workers=3)
    server.wait_workers(3)
    viewer = make_user("viewer")

    def hit(path):
        with requests.Session() as session:
            return [session.get(server.url + path, timeout=10).status_code for _ in range(100)]

    with ThreadPoolExecutor(6) as pool:
        statuses = [s for batch in pool.map(hit, ["/demo/error"] * 10 + ["/demo/error?kind=lookup"] * 2)
                    for s in batch]
    assert statuses.count(500) == 1200

    def counted():
        body = server.get("/api/admin/exceptions", headers=bearer(viewer)).json()
        groups = {g["type"]: g for g in body["groups"]}
        done = {k: g["count"] for k, g in groups.items()} == {"RuntimeError": 1000, "KeyError": 200}
        return done and groups
    groups = wait_until(counted, 20, message="1,000 and 200 exceptions in two groups")
    runtime = groups["RuntimeError"]
    assert runtime["message"] == "demo error" and runtime["endpoints"] == ["GET /demo/error"]
    assert runtime["culprit"] == "monitor/dev/demo.py in error"
    assert groups["KeyError"]["culprit"] == "monitor/dev/demo.py in _price"
    assert sum(w["count"] for w in runtime["workers"]) == 1000 and len(runtime["workers"]) >= 2
    detail = server.get(f"/api/admin/exceptions/{runtime['id']}", headers=bearer(viewer)).json()
    assert len(detail["samples"]) == SAMPLES

    # redaction on the real server: query values, header values and cookies stay out of the samples
    secrets = ("4111111111111111", "cookie-secret-value", "header-secret-value", "Bearer abc.def.ghi")
    for _ in range(SAMPLES):
        assert requests.get(server.url + "/demo/error?kind=lookup&card=4111111111111111", timeout=10,
                            cookies={"session": "cookie-secret-value"},
                            headers={"X-Api-Key": "header-secret-value", "Authorization": "Bearer abc.def.ghi"},
                            ).status_code == 500
    lookup = groups["KeyError"]["id"]

    def sampled():
        body = server.get(f"/api/admin/exceptions/{lookup}", headers=bearer(viewer))
        return body.json()["total"] == 200 + SAMPLES and body
    answer = wait_until(sampled, 20, message="the requests with secrets")
    assert [s["query"] for s in answer.json()["samples"]] == [["card", "kind"]] * SAMPLES
    assert not [secret for secret in secrets if secret in answer.text]
