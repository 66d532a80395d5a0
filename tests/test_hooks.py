"""Request hooks: what is counted, under which labels, and what is left alone."""
import pytest

from monitor import create_app
from monitor.capabilities.metrics.collect import OVERFLOW
from monitor.capabilities.metrics.query import totals
from monitor.core.state import state
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
    assert monitor.counters.in_flight == 0 and monitor.counters.requests == 1
    assert series(app) == {("/demo/error", "GET", "5xx"): 1}


def test_counters_follow_requests_and_in_flight_returns_to_zero(app, client):
    monitor = state(app)
    seen = []

    @app.get("/probe")
    def probe():
        seen.append((monitor.counters.requests, monitor.counters.in_flight))
        return "ok"

    client.get("/probe")
    client.get("/probe")
    client.get("/health")
    assert seen == [(1, 1), (2, 1)]
    assert (monitor.counters.requests, monitor.counters.in_flight) == (2, 0)
    assert monitor.recorder.own_n == 2 and monitor.recorder.own_ns > 0


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


def test_hooks_do_not_rewrite_the_app_view_functions(app):
    from monitor.dev import demo

    assert app.view_functions["demo.hello"] is demo.hello
