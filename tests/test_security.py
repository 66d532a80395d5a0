"""Security headers, the CSP nonce, proxy trust and Secure cookies, stored-XSS escaping, the Host header."""
import re

import pytest
from bs4 import BeautifulSoup

from monitor import create_app
from monitor.auth.users import Users
from monitor.core import audit, config
from monitor.core.state import state
from monitor.web.urls import OWN_PATHS, Urls
from support import PASSWORD, bearer, csrf_from


def _csp(response):
    """Parse the Content-Security-Policy header into {directive: [sources]}."""
    policy = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        policy[name] = sources
    return policy


@pytest.mark.parametrize("path", ["/login", "/health", "/admin/", "/admin/users", "/api/admin/audit",
                                  "/static/monitor/monitor.css"])
def test_every_own_response_carries_the_headers(client, auth, make_user, path):
    if path != "/login":
        auth.login(make_user("admin"))
    response = client.get(path)
    assert response.status_code == 200
    policy = _csp(response)
    assert policy["script-src"][0] == "'self'" and policy["script-src"][1].startswith("'nonce-")
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["style-src"] == ["'self'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    if path.startswith("/static/"):
        assert response.headers.get("Cache-Control") != "no-store"
    else:
        assert response.headers["Cache-Control"] == "no-store"


def test_nonce_differs_per_request_and_matches_the_scripts(client):
    nonces = []
    for _ in range(3):
        response = client.get("/login")
        nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
        scripts = BeautifulSoup(response.get_data(as_text=True), "html.parser").select("script")
        assert scripts and all(script["nonce"] == nonce and script.get("src") and not script.string
                               for script in scripts)  # no inline script at all
        nonces.append(nonce)
    assert len(set(nonces)) == 3 and all(len(n) >= 20 for n in nonces)


def test_pages_carry_no_inline_style_or_handler(client, auth, make_user):
    admin = make_user("admin")
    auth.login(admin)
    for path in ("/login", "/admin/", "/admin/users", "/admin/audit", "/admin/account"):
        soup = BeautifulSoup(client.get(path).get_data(as_text=True), "html.parser")
        for element in soup.find_all(True):
            attributes = set(element.attrs)
            assert "style" not in attributes, (path, element.name)
            assert not any(a.startswith("on") or a.startswith("hx-on") for a in attributes), (path, element.name)


def test_htmx_config_is_locked_down(client):
    soup = BeautifulSoup(client.get("/login").get_data(as_text=True), "html.parser")
    content = soup.select_one('meta[name="htmx-config"]')["content"]
    for setting in ('"allowEval": false', '"allowScriptTags": false', '"selfRequestsOnly": true',
                    '"historyCacheSize": 0'):
        assert setting in content


def test_host_app_routes_keep_their_own_headers(client):
    response = client.get("/demo/hello")
    assert response.status_code == 200 and "Content-Security-Policy" not in response.headers
    # The monitor's session and login stay out of them: no cookie, no "Vary: Cookie" for caches.
    assert "Set-Cookie" not in response.headers and "Vary" not in response.headers


@pytest.mark.parametrize("prefix, path, own", [
    *[("", path, True) for path in OWN_PATHS], ("", "/admin/x", True), ("", "/api/admin/nope", True),
    ("", "/", False), ("", "/a", False), ("", "/ad", False), ("", "/demo/hello", False), ("", "/api/other", False),
    ("", "/static/app.css", False), ("", "/healthz", False), ("", "/log", False), ("", "/adminx", False),
    ("/_monitor", "/_monitor", True), ("/_monitor", "/_monitor/admin/", True), ("/_monitor", "/admin/", False),
    ("/_monitor", "/health", False), ("/_monitor", "/_monitorx", False), ("/m", "/m/health", True), ("/m", "/ma", False)])
def test_own_paths_by_prefix(prefix, path, own):
    """The hot path's quick head test never changes the answer of the full test."""
    paths = (prefix,) if prefix else OWN_PATHS
    assert Urls(prefix).is_own_path(path) is own is any(path == p or path.startswith(p + "/") for p in paths)


def test_monitored_data_is_escaped(client, auth, make_user, store):
    """Stored XSS through the audit log (a user name or path an attacker chose) stays text."""
    admin = make_user("admin")
    audit.record(store, "login", "failed", user="<script>alert(1)</script>", path="/<img src=x onerror=alert(1)>")
    auth.login(admin)
    html = client.get("/admin/audit").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_over_https_behind_a_trusted_proxy_the_cookie_is_secure(app_config, store):
    app = create_app({**app_config, "MONITOR_TRUST_PROXY": 1})
    try:
        Users(state(app).store).create("ada", "viewer", PASSWORD)
        client = app.test_client()
        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        csrf = csrf_from(client.get("/login", headers=proxied).get_data(as_text=True))
        response = client.post("/login", base_url="http://localhost", headers={
            **proxied, "Origin": "https://localhost"},
            data={"username": "ada", "password": PASSWORD, "csrf_token": csrf})
        assert response.status_code == 302
        assert "Secure" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
        entry = audit.entries(state(app).store, 1)[0]
        assert entry["action"] == "login" and entry["ip"] == "203.0.113.9"  # the client, not the proxy
    finally:
        state(app).flusher.stop(flush=False)


def test_without_proxy_trust_forwarded_headers_are_ignored(client, make_user, store):
    user = make_user("viewer")
    spoofed = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    csrf = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", headers=spoofed,
                           data={"username": user["name"], "password": PASSWORD, "csrf_token": csrf})
    assert response.status_code == 302 and "Secure" not in response.headers["Set-Cookie"]
    assert audit.entries(store, 1)[0]["ip"] == "127.0.0.1"


def test_error_pages_are_json_for_the_api_and_html_for_browsers(client, auth, make_user):
    auth.login(make_user("viewer"))
    api = client.get("/api/admin/audit")
    assert api.status_code == 403 and api.json == {"error": "forbidden", "detail": "this needs the admin role"}
    page = client.get("/admin/users")
    soup = BeautifulSoup(page.get_data(as_text=True), "html.parser")
    assert page.status_code == 403 and soup.select_one(".error-card h1").text == "403 · forbidden"
    fragment = client.get("/admin/users", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.startswith('<div class="card narrow error-card"')


# ---------------------------------------------------------------- Host header


@pytest.mark.parametrize("path", ["/admin", "/admin/", "/login?next=/admin/", "/admin/panels/metrics", "/setup"])
def test_redirects_from_monitor_routes_never_reflect_the_host(client, path):
    """Issue 13, finding 14: ``/admin`` redirected to ``http://<Host header>/admin/``."""
    response = client.get(path, headers={"Host": "evil.example"})
    location = response.headers.get("Location", "")
    assert "evil.example" not in location and not location.startswith(("http:", "https:", "//"))
    if path == "/admin":
        assert response.status_code == 308 and location == "/admin/"


@pytest.fixture
def guarded(app_config):
    app = create_app({**app_config, "MONITOR_ALLOWED_HOSTS": "monitor.example, .corp.example"})
    yield app
    state(app).flusher.stop(flush=False)


@pytest.mark.parametrize("host, allowed", [("monitor.example", True), ("monitor.example:8000", True),
                                           ("a.corp.example", True), ("corp.example", True),
                                           ("evil.example", False), ("monitor.example.evil", False),
                                           ("localhost", False), ("127.0.0.1", False)])
def test_allowed_hosts_answer_400_to_other_hosts_on_monitor_routes(guarded, make_user, host, allowed):
    client = guarded.test_client()
    viewer = make_user("viewer")
    for path, headers in (("/health", {}), ("/login", {}), ("/api/admin/metrics", bearer(viewer)),
                          ("/static/monitor/monitor.css", {}), ("/metrics", bearer(viewer))):
        response = client.get(path, headers={"Host": host, **headers})
        if allowed:
            assert response.status_code == 200, (host, path)
        else:
            assert response.status_code == 400, (host, path)
            assert "MONITOR_ALLOWED_HOSTS" in response.get_data(as_text=True)
    assert client.get("/demo/hello", headers={"Host": host}).status_code == 200  # the host app's own routes


def test_allowed_hosts_are_checked_at_start():
    assert config.load({"MONITOR_ALLOWED_HOSTS": "a.example b.example,.c.example"}, environ={})[
        "MONITOR_ALLOWED_HOSTS"] == ("a.example", "b.example", ".c.example")
    assert config.load({}, environ={})["MONITOR_ALLOWED_HOSTS"] == ()
    for bad in ("http://a.example", "a.example/x", "*", "a b/c"):
        with pytest.raises(config.ConfigError, match="MONITOR_ALLOWED_HOSTS"):
            config.load({"MONITOR_ALLOWED_HOSTS": bad}, environ={})
