"""The timing point: what is counted, under which labels, and what is left alone."""
import threading

import pytest
from flask import got_request_exception

from monitor import create_app
from monitor.capabilities.metrics.collect import OVERFLOW
from monitor.capabilities.metrics.query import totals
from monitor.core.config import DEFAULT_CAPABILITIES
from monitor.core.state import state
from monitor.web import hooks
from monitor.web.hooks import UNMATCHED


def series(app):
    """Stop the flusher, ship once more, and return the lifetime counts by (endpoint, method, class)."""
    monitor = state(app)
    monitor.flusher.stop(flush=False)
    monitor.flusher.tick()
    return totals(monitor.store)


def test_counts_by_rule_method_and_status_class(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    for _ in range(3):
        assert client.get("/demo/hello").status_code == 200
    assert client.get("/demo/cached/a").status_code == 200
    assert client.get("/demo/cached/b").status_code == 200
    assert client.get("/demo/sleep?ms=x").status_code == 400
    assert client.get("/demo/error").status_code == 500
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/another/missing").status_code == 404
    assert client.post("/demo/hello").status_code == 405
    assert client.open("/demo/hello", method="BREW").status_code == 405
    assert series(app) == {
        ("/demo/hello", "GET", "2xx"): 3,
        ("/demo/cached/<key>", "GET", "2xx"): 2,
        ("/demo/sleep", "GET", "4xx"): 1,
        ("/demo/error", "GET", "5xx"): 1,
        (UNMATCHED, "GET", "4xx"): 2,
        (UNMATCHED, "POST", "4xx"): 1,
        (UNMATCHED, "OTHER", "4xx"): 1,
    }


def test_own_routes_are_not_counted(app, client, auth, make_user):
    auth.login(make_user("viewer"))
    for path in ("/health", "/admin/", "/admin/panels/metrics", "/api/admin/metrics", "/metrics",
                 "/static/monitor/monitor.css", "/login"):
        client.get(path)
    client.get("/demo/hello")
    assert series(app) == {("/demo/hello", "GET", "2xx"): 1}


def test_an_exception_escaping_the_app_counts_as_a_server_error(app, client):
    with pytest.raises(RuntimeError):
        client.get("/demo/error")
    monitor = state(app)
    assert monitor.requests.in_flight == 0 and monitor.requests.total == 1
    assert series(app) == {("/demo/error", "GET", "5xx"): 1}


def test_totals_follow_requests_and_in_flight_returns_to_zero(app, client, monkeypatch):
    monkeypatch.setattr(hooks, "SAMPLE", 0)  # every request times the timing point itself
    monitor = state(app)
    seen = []

    @app.get("/probe")
    def probe():
        seen.append((monitor.requests.total, dict(monitor.requests.running)))
        return "ok"

    client.get("/probe")
    client.get("/probe")
    client.get("/health")
    here = threading.get_ident()
    assert seen == [(0, {here: "/probe"}), (1, {here: "/probe"})]  # ended before it: none, then one
    assert (monitor.requests.total, monitor.requests.in_flight) == (2, 0)
    assert monitor.requests.own_n == 2 and monitor.requests.own_ns > 0
    monitor.recorder.take()
    assert (monitor.requests.total, monitor.requests.taken, len(monitor.requests.ended)) == (2, 2, 0)


def test_without_the_metrics_capability_the_core_counts_and_drains_the_requests(app_config):
    """No recorder aggregates them: each flush still takes the ended requests, so the totals
    that heartbeats report stay exact and nothing piles up."""
    app = create_app({**app_config, "MONITOR_CAPABILITIES": [c for c in DEFAULT_CAPABILITIES
                                                             if not c.endswith(".metrics")]})
    monitor = state(app)
    try:
        assert monitor.recorder is None
        client = app.test_client()
        for _ in range(3):
            assert client.get("/demo/hello").json == {"message": "hello"}
        assert (monitor.requests.total, len(monitor.requests.ended)) == (3, 3)
        monitor.flusher.stop(flush=False)
        monitor.flusher.tick()
        assert (monitor.requests.total, monitor.requests.taken, len(monitor.requests.ended)) == (3, 3, 0)
    finally:
        monitor.flusher.stop(flush=False)


def test_distinct_series_past_the_cap_count_under_the_overflow_label(app_config):
    app = create_app({**app_config, "MONITOR_METRICS_MAX_SERIES": 10})
    for i in range(15):
        app.add_url_rule(f"/r{i}", f"r{i}", lambda: "ok")
    client = app.test_client()
    for i in range(15):
        client.get(f"/r{i}")
        client.get(f"/r{i}")
    counts = series(app)
    assert len(counts) == 11
    assert counts[(OVERFLOW, "GET", "2xx")] == 10
    assert sum(counts.values()) == 30
    assert all(counts[(f"/r{i}", "GET", "2xx")] == 2 for i in range(10))


def test_the_metrics_feature_is_reported_by_health(client):
    assert client.get("/health").get_json()["monitoring"]["metrics"] is True


def test_the_timing_point_does_not_rewrite_the_app_view_functions(app):
    from monitor.dev import demo

    assert app.view_functions["demo.hello"] is demo.hello


def test_nothing_else_is_app_wide(app):
    """One instance attribute shadows Flask's full_dispatch_request; no app-wide hook, no signal."""
    assert "full_dispatch_request" in vars(app)
    for funcs in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs,
                  app.url_value_preprocessors):
        assert not funcs.get(None)
    assert not got_request_exception.has_receivers_for(app)


def test_an_escaping_exception_reaches_the_exception_sinks_with_its_request(app, client):
    seen = []
    state(app).exception_sinks.append(
        lambda exc, request, label, duration: seen.append((exc, request.path, label, duration)))
    with pytest.raises(RuntimeError):
        client.get("/demo/error")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert client.get("/demo/error").status_code == 500
    assert client.get("/demo/hello").status_code == 200
    assert [(type(exc), path, label) for exc, path, label, _ in seen] == [(RuntimeError, "/demo/error",
                                                                          "/demo/error")] * 2
    assert all(duration > 0 for *_, duration in seen)
    assert series(app) == {("/demo/error", "GET", "5xx"): 2, ("/demo/hello", "GET", "2xx"): 1}


def test_slow_requests_and_running_threads_reach_their_sinks(app_config):
    app = create_app(app_config)
    monitor = state(app)
    slow, running = [], {}

    @app.get("/peek")
    def peek():
        running.update(monitor.requests.running)
        return "ok"

    monitor.slow = (50_000_000, lambda request, label, status, ns: slow.append((request.path, label, status, ns)))
    hooks.init_app(app, monitor)  # the timing point reads them when it is made
    client = app.test_client()
    try:
        assert client.get("/demo/sleep?ms=80").status_code == client.get("/demo/hello").status_code == 200
        client.get("/peek")
        assert [(path, label, status) for path, label, status, _ in slow] == [("/demo/sleep", "/demo/sleep", 200)]
        assert slow[0][3] >= 80_000_000
        assert running == {threading.get_ident(): "/peek"} and monitor.requests.running == {}
    finally:
        monitor.flusher.stop(flush=False)


def test_a_host_route_under_an_own_prefix_is_the_host_apps(app_config):
    """Own means a rule of the monitor's blueprints, not a path that looks like one."""
    app = create_app(app_config)
    app.add_url_rule("/healthz", "healthz", lambda: "ok")
    app.add_url_rule("/admin-tools", "admin_tools", lambda: "ok")
    client = app.test_client()
    assert client.get("/healthz").status_code == client.get("/admin-tools").status_code == 200
    assert "Content-Security-Policy" not in client.get("/healthz").headers
    assert series(app) == {("/healthz", "GET", "2xx"): 2, ("/admin-tools", "GET", "2xx"): 1}


def test_routing_errors_under_own_paths_get_the_monitors_answer_and_headers(app, client):
    api = client.get("/api/admin/no-such-thing")
    assert api.status_code == 404 and api.json["error"] == "not_found"
    assert api.headers["Cache-Control"] == "no-store" and "Content-Security-Policy" in api.headers
    wrong_method = client.delete("/health")
    assert wrong_method.status_code == 405 and wrong_method.json["error"] == "method_not_allowed"
    assert "GET" in wrong_method.headers["Allow"]
    page = client.get("/admin/no-such-page")
    assert page.status_code == 404 and page.headers["X-Frame-Options"] == "DENY"
    refused = client.post("/api/admin/no-such-thing", headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403
    assert series(app) == {}


def test_exact_counts_under_threads_while_the_flusher_drains(app_config):
    """The request path only appends; concurrent requests and flusher ticks lose nothing."""
    app = create_app({**app_config, "MONITOR_FLUSH_INTERVAL": 0.1})
    try:
        def hammer():
            client = app.test_client()
            for _ in range(500):
                assert client.get("/demo/hello").status_code == 200

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        monitor = state(app)
        assert monitor.requests.total == 2000 and monitor.requests.in_flight == 0
        assert series(app) == {("/demo/hello", "GET", "2xx"): 2000}
    finally:
        state(app).flusher.stop(flush=False)
