"""``GET /api/openapi.json``: in step with ``app.url_map``, a valid OpenAPI document, and the
live API conforms to it (schemathesis against a real gunicorn with 2 workers)."""
import re
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance

from monitor import create_app
from monitor.api.openapi import spec
from monitor.auth.users import Users
from monitor.core.state import state
from support import PASSWORD, bearer, free_port
from support.gunicorn import Gunicorn

METHODS = ("get", "put", "post", "delete", "patch")


def _openapi_path(rule):
    """``/x/<name>`` and ``/x/<int:name>`` → ``/x/{name}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _json_routes(app):
    """{(openapi path, method): endpoint} of every route under /api/ or /health, plus /metrics."""
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/", "/health", "/metrics")):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes[(_openapi_path(rule.rule), method.lower())] = rule.endpoint
    return routes


def _spec_operations(document):
    return {(path, method): operation for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS}


def test_spec_is_a_valid_openapi_document():
    document = spec()
    validate(document)  # openapi-spec-validator: raises on any error
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearer"] == {
        **document["components"]["securitySchemes"]["bearer"], "type": "http", "scheme": "bearer"}


def test_every_json_route_is_described_and_nothing_else(app):
    routes = _json_routes(app)
    described = _spec_operations(spec())
    missing = sorted(set(routes) - set(described))
    stale = sorted(set(described) - set(routes))
    assert not missing, f"routes missing from monitor/api/openapi.py: {missing}"
    assert not stale, f"operations in monitor/api/openapi.py with no route: {stale}"
    assert len(routes) >= 22 and ("/api/admin/cluster/operations/{operation_id}", "get") in routes


def test_documented_role_is_the_views_role(app):
    routes = _json_routes(app)
    for key, operation in _spec_operations(spec()).items():
        view = app.view_functions[routes[key]]
        if key == ("/health", "get"):
            assert operation["security"] == [] and not hasattr(view, "required_role")
            continue
        assert operation["x-required-role"] == view.required_role, key
        responses = operation["responses"]
        assert {"401", "503"} <= set(responses), key
        assert ("403" in responses) == (view.required_role != "viewer"), key


def test_documented_error_shape_matches_a_real_error(client, make_user):
    viewer = make_user("viewer")
    response = client.get("/api/admin/metrics?window=5", headers=bearer(viewer))
    error_schema = spec()["components"]["schemas"]["Error"]
    assert response.status_code == 400 and set(response.json) == set(error_schema["required"])
    assert response.json["error"] in error_schema["properties"]["error"]["enum"]


def test_openapi_json_needs_a_login_and_serves_the_spec(client, make_user):
    stranger = client.get("/api/openapi.json")
    assert stranger.status_code == 401 and stranger.json["error"] == "unauthorized"
    viewer = make_user("viewer")
    response = client.get("/api/openapi.json", headers=bearer(viewer))
    assert response.status_code == 200 and response.json == spec()
    assert response.headers["Cache-Control"] == "no-store"


def test_routing_errors_under_the_api_are_json(client, make_user):
    """404 and 405 that routing raises (before any API view) keep the contract's JSON shape."""
    admin = make_user("admin")
    wrong_method = client.put("/api/admin/metrics", headers=bearer(admin))
    assert wrong_method.status_code == 405 and wrong_method.json["error"] == "method_not_allowed"
    assert "GET" in wrong_method.headers["Allow"]
    unknown = client.get("/api/admin/nothing-here", headers=bearer(admin))
    assert unknown.status_code == 404 and unknown.json["error"] == "not_found"
    host_page = client.get("/no-such-host-page")  # the host app's own 404 stays its own
    assert host_page.status_code == 404 and not host_page.is_json


# ---------------------------------------------------------------- schemathesis on a live server

# Invalid input is refused with a documented 4xx; 414 is gunicorn refusing an over-long URL
# (a generated `q` of 200+ multi-byte characters) before the app sees it.
SCHEMA = schemathesis.openapi.from_dict(spec(), config=SchemathesisConfig.from_dict({"checks": {
    "negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "405", "409", "413", "414",
                                                       "415"]}}}))
NO_SUCH_HOST = "no-such-host"


@pytest.fixture(scope="module")
def live(tmp_path_factory, redis_url):
    """One gunicorn (2 workers) for every generated case, with an admin and a viewer token."""
    prefix = "t" + uuid.uuid4().hex[:10]
    folder = tmp_path_factory.mktemp("openapi")
    app = create_app({"TESTING": True, "MONITOR_REDIS_URL": redis_url, "MONITOR_KEY_PREFIX": prefix,
                      "MONITOR_INSTANCE_PATH": str(folder / "cli")})
    users = Users(state(app).store)
    tokens = {}
    for role in ("admin", "viewer"):
        users.create(role, role, PASSWORD)
        tokens[role] = bearer({"token": users.create_token(role)})
    state(app).flusher.stop(flush=False)
    server = Gunicorn(folder / "server", {"REDIS_URL": redis_url, "MONITOR_KEY_PREFIX": prefix,
                                          "MONITOR_FLUSH_INTERVAL": "0.5"}, 2, free_port()).start()
    server.tokens = tokens
    for path in ("/demo/hello", "/demo/error", "/demo/cached/a", "/demo/log?level=ERROR&msg=seed"):
        server.get(path)  # something in the metrics, cache and log panels
    yield server
    server.stop()


def _harmless(case):
    """Keep a generated restart from restarting anything: a body without a host gets a host that
    does not exist, so a valid one answers 404 (an invalid one still 400) and no worker restarts."""
    if case.operation.path == "/api/admin/cluster/restart" and isinstance(case.body, dict) \
            and "host" not in case.body:
        case.body = {**case.body, "host": NO_SUCH_HOST}


#: Bodies with rules across fields, which a schema does not spell: a metric's scopes and parameters, a
#: resolve threshold on the safe side of the threshold, ids of rules and channels that exist, a silence
#: that ends after it starts. A schema-valid body may break one: a correct 400, not a refused valid input.
CROSS_FIELD = ("/api/admin/cache/clear", "/api/admin/alerts/rules", "/api/admin/alerts/rules/{rule_id}",
               "/api/admin/alerts/rules/preview", "/api/admin/alerts/silences", "/api/admin/alerts/channels")


def _excluded(case):
    """A cache namespace must be printable (``str.isprintable``), which no JSON Schema pattern can
    spell: the spec's pattern bars ':', '/' and control characters only, so a valid-looking
    namespace with, say, an unassigned code point is a correct 400, not a refused valid input.
    The alerts' bodies have rules across fields (``CROSS_FIELD``). ``/alerts/rules/preview`` is
    also matched by ``/alerts/rules/{rule_id}`` (a rule id, for GET, PUT and DELETE), so its
    OPTIONS answer lists those methods too (no rule may take the id ``preview``)."""
    excluded = [positive_data_acceptance] if case.operation.path in CROSS_FIELD else []
    if case.operation.path == "/api/admin/alerts/rules/preview":
        excluded.append(allow_header_conformance)
    return excluded


@pytest.mark.slow
@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_description(case, live):
    """Every operation, positive and negative data, as an admin: no 5xx, every answer documented
    (status, content type, headers, body schema), bad input refused with 4xx, valid input accepted.

    Kept in: cache clear, CPU profiling start/stop, heap snapshots, tracemalloc start/stop,
    alert acks, and alert rules, silences and channels (generated ones, under this test's own
    prefix; a channel test names a generated id, so it answers 404 or tries a generated URL once). Limited: cluster restart, whose
    bodies without a host get ``host: no-such-host`` (valid ones then answer 404, see
    ``_harmless``), so no worker is restarted mid-run: a rolling restart would drop in-flight
    cases and running profiles, and the real restart paths have their own tests in
    test_cluster.py. Users and tokens have no JSON API, so the calling admin cannot be deleted.
    """
    _harmless(case)
    case.call_and_validate(base_url=live.url, headers=live.tokens["admin"], timeout=60,
                           excluded_checks=_excluded(case))


@SCHEMA.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_for_a_viewer(case, live):
    """The same as a viewer: operator and admin operations answer the documented 403 and
    change nothing; the viewer's own operations conform as above."""
    _harmless(case)
    case.call_and_validate(base_url=live.url, headers=live.tokens["viewer"], timeout=60,
                           excluded_checks=_excluded(case))
