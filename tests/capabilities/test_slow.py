"""Slow requests: thresholds per endpoint, the slowest kept per minute in bounded lists, exact counts, the user
hook, the API, the panel, the alert metric, and a known mix on a real fleet."""
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from bs4 import BeautifulSoup
from flask import request

from monitor import create_app
from monitor.capabilities.alerts.metrics import METRICS, Context
from monitor.capabilities.slow import layout
from monitor.capabilities.slow.collect import KEEP
from monitor.core import buckets
from monitor.core.config import ConfigError
from monitor.core.state import state
from support import bearer, wait_until


@pytest.fixture
def slow_app(app_config):
    """An app whose requests over 5 ms are slow, /fast/* over 1 s, with /wait/<ms> and /fail/<ms> (sleeps, then raises)."""
    app = create_app({**app_config, "MONITOR_SLOW_MS": 5, "MONITOR_SLOW_ENDPOINTS": "/fast/<int:ms>=1000"})
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/wait/<int:ms>")
    def wait(ms):
        time.sleep(ms / 1000)
        return {"slept": ms}

    @app.get("/fast/<int:ms>")
    def fast(ms):
        time.sleep(ms / 1000)
        return {"slept": ms}

    @app.get("/fail/<int:ms>")
    def fail(ms):
        time.sleep(ms / 1000)
        raise RuntimeError("slow and failing")

    yield app
    state(app).flusher.stop(flush=False)


def report(client, user, query=""):
    response = client.get(f"/api/admin/requests/slow{query}", headers=bearer(user))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def test_thresholds_are_settings_per_endpoint(app_config):
    app = create_app({**app_config, "MONITOR_SLOW_MS": 700, "MONITOR_SLOW_ENDPOINTS": {"/a": 50, "/b/<int:x>": 2000}})
    try:
        monitor = state(app)
        assert monitor.slow == (50_000_000, monitor.slow_requests.sink)
        assert monitor.slow_requests.threshold_ns("/b/<int:x>") == 2_000_000_000
        assert monitor.slow_requests.threshold_ns("/other") == 700_000_000
    finally:
        state(app).flusher.stop(flush=False)
    for bad in ("/a", "a=5", "/a=-1", "/a=700001", "/a=x"):
        with pytest.raises(ConfigError, match="MONITOR_SLOW_ENDPOINTS"):
            create_app({**app_config, "MONITOR_SLOW_ENDPOINTS": bad})


def test_the_slowest_are_listed_slowest_first_with_exact_counts(slow_app, make_user):
    client = slow_app.test_client()
    durations = [1, 2, 3, 12, 30, 8, 25, 16, 40, 20]
    for ms in durations:
        client.get(f"/wait/{ms}")
    client.get("/fast/30")  # under its endpoint's own threshold
    state(slow_app).flusher.tick()
    body = report(client, make_user("viewer"))
    waits = [round(r["duration_ms"]) for r in body["requests"]]
    assert [r["endpoint"] for r in body["requests"]] == ["/wait/<int:ms>"] * 7
    assert all(abs(got - want) < 5 for got, want in zip(waits, [40, 30, 25, 20, 16, 12, 8])) and waits == sorted(
        waits, reverse=True)
    assert body["count"] == 7 and body["endpoints"] == [
        {"endpoint": "/wait/<int:ms>", "method": "GET", "count": 7, "threshold_ms": 5.0}]
    first = body["requests"][0]
    assert first["status"] == 200 and first["host"] == "testhost" and first["pid"] > 0
    assert first["request_id"] and first["user"] is None and first["release"] == slow_app.config["MONITOR_RELEASE"]


def test_a_failing_slow_request_is_listed_as_a_500(slow_app, make_user):
    client = slow_app.test_client()
    assert client.get("/fail/10").status_code == 500
    state(slow_app).flusher.tick()
    assert [(r["endpoint"], r["status"]) for r in report(client, make_user("viewer"))["requests"]] == [
        ("/fail/<int:ms>", 500)]


def test_memory_and_redis_stay_bounded_and_the_count_exact(slow_app, make_user, store):
    monitor = state(slow_app)
    slow = monitor.slow_requests
    order = list(range(10, 70))
    random.Random(7).shuffle(order)
    with slow_app.test_request_context("/wait/1"):
        for i in order:  # 60 slow requests, as the timing point hands them over
            slow.sink(request, "/wait/<int:ms>", 200, i * 1_000_000)
    assert [len(top) for top in slow.tops.values()] == [KEEP]
    monitor.flusher.tick()
    body = report(slow_app.test_client(), make_user("viewer"))
    assert body["count"] == 60 and [r["duration_ms"] for r in body["requests"]] == list(range(69, 69 - KEEP, -1))
    minute = buckets.start(time.time(), 60)
    for key in (layout.top(store, 60, minute), layout.top(store, 60, minute, "/wait/<int:ms>")):
        assert store.redis.zcard(key) == KEEP and 0 < store.redis.ttl(key) <= buckets.expires(60, minute) - minute
    keys = list(store.scan_prefix("slow"))
    assert len(keys) == 6 and all(store.redis.ttl(key) > 0 for key in keys)


def test_the_endpoint_filter_and_the_user_hook(slow_app, make_user):
    names = iter(["ada", RuntimeError("no user here")])

    @state(slow_app).extension.request_user
    def who():
        found = next(names)
        if isinstance(found, Exception):
            raise found
        return found

    client = slow_app.test_client()
    client.get("/wait/10")
    assert client.get("/fail/10").status_code == 500  # the hook raising does not change the answer
    state(slow_app).flusher.tick()
    viewer = make_user("viewer")
    assert [r["user"] for r in report(client, viewer, "?endpoint=/wait/<int:ms>")["requests"]] == ["ada"]
    only = report(client, viewer, "?endpoint=/fail/<int:ms>")
    assert [r["user"] for r in only["requests"]] == [None] and only["count"] == 1
    assert [e["endpoint"] for e in only["endpoints"]] == ["/fail/<int:ms>"]


@pytest.mark.parametrize("query", ["?window=9", "?window=604801", "?endpoint=nope", "?endpoint=/" + "x" * 300])
def test_bad_input_is_refused(client, make_user, query):
    response = client.get(f"/api/admin/requests/slow{query}", headers=bearer(make_user("viewer")))
    assert response.status_code == 400 and response.json["error"] == "bad_request"


def test_strangers_get_nothing(client):
    assert client.get("/api/admin/requests/slow").status_code == 401


def test_the_panel_lists_the_slowest_and_filters_by_endpoint(slow_app, auth, make_user):
    client = slow_app.test_client()
    auth.client = client
    for ms in (10, 20):
        client.get(f"/wait/{ms}")
    client.get("/fail/6")
    state(slow_app).flusher.tick()
    auth.login(make_user("viewer"))
    soup = BeautifulSoup(client.get("/admin/panels/slow").get_data(as_text=True), "html.parser")
    rows = soup.select("table.slow-requests tbody tr")
    assert len(rows) == 3 and soup.select_one("#slow-total").text == "3"
    assert [o["value"] for o in soup.select("#slow-endpoint option")] == ["", "/fail/<int:ms>", "/wait/<int:ms>"]
    assert rows[0].select_one('a[href*="request_id="]')["href"].endswith("#panel-logs")
    one = BeautifulSoup(client.get("/admin/panels/slow?slow_endpoint=/fail/<int:ms>").get_data(as_text=True),
                        "html.parser")
    assert len(one.select("table.slow-requests tbody tr")) == 1
    assert "slow_endpoint=" in one.select_one("#panel-slow")["hx-get"]


def test_the_alert_metric_counts_slow_requests(slow_app):
    client = slow_app.test_client()
    for ms in (6, 7, 8):
        client.get(f"/wait/{ms}")
    client.get("/fail/6")
    state(slow_app).flusher.tick()
    ctx = Context(state(slow_app), time.time())

    def rule(scope):
        kind, _, value = scope.partition(":")
        return type("Rule", (), {"window_s": 300, "scope_kind": kind, "scope_value": value, "params": {}})()
    read = METRICS["slow_requests"].read
    assert read(ctx, rule("fleet")).value == 4
    assert read(ctx, rule("endpoint:/wait/<int:ms>")).value == 3
    assert read(ctx, rule("endpoint:POST /wait/<int:ms>")).value == 0


# ---------------------------------------------------------------- a real fleet, a known mix


@pytest.mark.slow
def test_a_known_mix_of_200_requests_lists_the_10_slowest(gunicorn, make_user):
    """80 quick sleeps (under the threshold), 110 of 120..229 ms and 10 of 400..760 ms, shuffled, on 3 workers."""
    server = gunicorn(workers=3, env={"MONITOR_SLOW_ENDPOINTS": "/demo/sleep=100"})
    server.wait_workers(3)
    slowest = [400 + 40 * i for i in range(10)]
    mix = list(range(80)) + [120 + i for i in range(110)] + slowest
    random.Random(19).shuffle(mix)

    def hit(ms):
        return requests.get(f"{server.url}/demo/sleep?ms={ms}", timeout=10).status_code

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(hit, mix)) == {200}
    viewer = make_user("viewer")

    def listed():
        body = server.get("/api/admin/requests/slow?endpoint=/demo/sleep", headers=bearer(viewer)).json()
        return body["count"] == 120 and body
    body = wait_until(listed, 20, message="120 slow requests")
    top = body["requests"][:10]
    assert all(ms <= r["duration_ms"] < ms + 40 for r, ms in zip(top, sorted(slowest, reverse=True)))
    assert body["requests"][10]["duration_ms"] < 400 and len(body["requests"]) == KEEP
    assert {r["pid"] for r in body["requests"]} <= set(server.worker_pids())
    assert body["endpoints"] == [{"endpoint": "/demo/sleep", "method": "GET", "count": 120, "threshold_ms": 100.0}]
