"""Login, logout, setup, the role gate on every route, CSRF, brute-force limits, Redis down."""
import re

import pytest
import requests
from bs4 import BeautifulSoup

from monitor import create_app
from monitor.auth.users import RANK, SETUP_TTL_S, Users
from monitor.core import audit
from monitor.core.state import state
from support import PASSWORD, Auth, bearer, csrf_from, wait_until

#: Routes that answer without a login (contract §4), plus the demo host app's own.
PUBLIC_ENDPOINTS = {"monitor_health.health", "monitor_auth.login", "monitor_auth.setup", "monitor_auth.logout"}
ROLES = ("viewer", "operator", "admin")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def _is_public(rule):
    return (rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.endswith("static")
            or rule.rule == "/" or rule.rule.startswith("/demo/"))


def _url(app, rule, method):
    """Build a URL for ``rule`` with placeholder arguments that match nothing real."""
    adapter = app.url_map.bind("localhost")
    return adapter.build(rule.endpoint, {arg: "0" for arg in rule.arguments}, method=method)


def _routes(app, prefix=""):
    """Yield (rule, method, url) for every route and method of the app under ``prefix``."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(prefix):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method, _url(app, rule, method)


def _send(client, method, url, headers=None):
    """Send a harmless request: unsafe methods carry a JSON body no view accepts (an array)."""
    if method in UNSAFE:
        return client.open(url, method=method, data="[]", content_type="application/json", headers=headers)
    return client.open(url, method=method, headers=headers)


# ---------------------------------------------------------------- the gate on every route


def test_no_route_outside_the_public_list_answers_a_stranger(app, client):
    checked = []
    for rule, method, url in _routes(app):
        if _is_public(rule):
            continue
        response = _send(client, method, url)
        checked.append(url)
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/login?next="), (method, url)
        else:
            assert response.status_code == 401, (method, url, response.status_code)
    assert any(url.startswith("/api/admin/") for url in checked) and "/admin/users" in checked


def test_every_admin_view_declares_its_role(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/admin", "/api/admin")):
            view = app.view_functions[rule.endpoint]
            assert getattr(view, "required_role", None) in RANK, f"{rule.rule} lacks @role_required"


@pytest.mark.parametrize("kind", ["cookie", "bearer"])
def test_role_matrix_on_every_api_route(app, make_user, kind):
    """Every /api/admin route × anonymous, viewer, operator, admin: 401, 403 or past the gate."""
    users = {role: make_user(role) for role in ROLES}
    clients = {}
    for role, user in users.items():
        clients[role] = app.test_client()
        if kind == "cookie":
            Auth(clients[role]).login(user)
    stranger = app.test_client()
    seen = 0
    for rule, method, url in _routes(app, "/api/admin/"):
        needed = app.view_functions[rule.endpoint].required_role
        anonymous = _send(stranger, method, url)
        assert anonymous.status_code == 401 and anonymous.json["error"] == "unauthorized", (method, url)
        for role in ROLES:
            client = clients[role]
            if kind == "cookie":
                headers = {"X-CSRFToken": csrf_from(client.get("/admin/account").get_data(as_text=True))}
            else:
                headers = bearer(users[role])
            response = _send(client, method, url, headers)
            assert response.is_json, (role, method, url)
            if RANK[role] < RANK[needed]:
                assert response.status_code == 403 and response.json["error"] == "forbidden", (role, method, url)
            else:
                assert response.status_code < 500 and response.status_code not in (401, 403), \
                    (role, method, url, response.status_code, response.json)
            assert response.headers["Cache-Control"] == "no-store"
        seen += 1
    assert seen >= 1  # /api/admin/audit at least; other capabilities add theirs


def test_bad_bearer_tokens_are_strangers(client, make_user):
    user = make_user("admin")
    token_id = user["token"].split("_")[1]
    for header in (f"Bearer {user['token']}x", f"Bearer mon_{token_id}_wrong", "Bearer x", f"Basic {user['token']}"):
        response = client.get("/api/admin/audit", headers={"Authorization": header})
        assert response.status_code == 401 and response.json == {
            "error": "unauthorized", "detail": "log in or send Authorization: Bearer <token>"}
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="monitor"'
    assert client.get("/api/admin/audit", headers=bearer(user)).status_code == 200


# ---------------------------------------------------------------- unauthorized answers by kind


def test_unauthorized_answers_by_kind_of_request(client):
    browser = client.get("/admin/panels/metrics?x=1")
    assert browser.status_code == 302 and browser.headers["Location"] == "/login?next=/admin/panels/metrics?x%3D1"
    htmx = client.get("/admin/panels/metrics", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/login"
    api = client.get("/api/admin/audit")
    assert api.status_code == 401 and api.json["error"] == "unauthorized"
    wants_json = client.get("/admin/", headers={"Accept": "application/json"})
    assert wants_json.status_code == 401 and wants_json.json["error"] == "unauthorized"


def test_role_too_low_is_403_and_audited(client, auth, make_user, store):
    viewer = make_user("viewer")
    auth.login(viewer)
    page = client.get("/admin/users")
    assert page.status_code == 403 and "this needs the admin role" in page.get_data(as_text=True)
    assert client.get("/api/admin/audit").json == {"error": "forbidden", "detail": "this needs the admin role"}
    denied = [fields for _, fields in store.redis.xrange(store.key("audit"))
              if fields["action"] == "access" and fields["result"] == "forbidden"]
    assert len(denied) == 2 and {d["user"] for d in denied} == {viewer["name"]}


# ---------------------------------------------------------------- login, logout, sessions


def test_login_starts_a_fresh_session_and_logout_kills_the_cookie(client, auth, make_user, store):
    user = make_user("viewer")
    anonymous_csrf = csrf_from(client.get("/login").get_data(as_text=True))
    auth.login(user)
    assert auth.csrf and auth.csrf != anonymous_csrf  # nothing of the anonymous session survives
    cookie = client.get_cookie("monitor_session").value
    assert client.get("/admin/").status_code == 200
    sessions = list(store.scan_prefix("session"))
    assert len(sessions) == 1
    assert auth.logout().headers["Location"] == "/login"
    assert list(store.scan_prefix("session")) == []
    client.set_cookie("monitor_session", cookie)  # replay the old cookie
    replay = client.get("/admin/panels/metrics", headers={"Accept": "application/json"})
    assert replay.status_code == 401 and replay.json["error"] == "unauthorized"
    actions = [(f["action"], f["result"], f["user"]) for _, f in store.redis.xrange(store.key("audit"))]
    assert ("login", "ok", user["name"]) in actions and ("logout", "ok", user["name"]) in actions


@pytest.mark.parametrize("change", ["password", "role", "delete"])
def test_a_replayed_cookie_dies_with_a_password_role_change_or_deletion(app, make_user, change):
    user = make_user("operator")
    make_user("admin")  # so the operator is never the last admin
    victim, other = app.test_client(), app.test_client()
    Auth(victim).login(user)
    Auth(other).login(user)  # a second session of the same user
    cookie = victim.get_cookie("monitor_session").value
    users = Users(state(app).store)
    if change == "password":
        users.set_password(user["name"], "another-long-password")
    elif change == "role":
        users.set_role(user["name"], "viewer")
    else:
        users.delete(user["name"])
    for client in (victim, other):  # each replays the cookie it holds
        response = client.get("/admin/", headers={"Accept": "application/json"})
        assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert victim.get_cookie("monitor_session").value == cookie


def test_wrong_password_is_401_and_counted_without_the_password(client, make_user, store):
    """A stranger's failed login and 401 are counted per address and minute, outside the security stream."""
    user = make_user("viewer")
    csrf = csrf_from(client.get("/login").get_data(as_text=True))
    for _ in range(2):
        response = client.post("/login", data={"username": user["name"], "password": "wrong-password!",
                                               "csrf_token": csrf})
        assert response.status_code == 401 and "Wrong name or password." in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302
    assert store.redis.xlen(store.key("audit")) == 0
    counts = {}
    for r in audit.strangers(store):  # two rows each if the minute turned meanwhile
        key = (r["ip"], r["action"], r["result"], r["account"])
        counts[key] = counts.get(key, 0) + r["count"]
    assert counts == {("127.0.0.1", "access", "unauthorized", ""): 1,
                      ("127.0.0.1", "login", "failed", user["name"]): 2}
    stored = [store.redis.hgetall(key) for key in store.scan_prefix("audit", "strangers")]
    assert "wrong-password!" not in str(stored)


def test_login_without_csrf_token_is_refused(client, make_user):
    user = make_user("viewer")
    response = client.post("/login", data={"username": user["name"], "password": PASSWORD})
    assert response.status_code == 400 and "The form expired" in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("target,expected", [
    ("/admin/panels/cache", "/admin/panels/cache"),
    ("/admin/?x=1", "/admin/?x=1"),
    ("https://evil.example/", "/admin/"),
    ("//evil.example/", "/admin/"),
    ("/\\evil.example", "/admin/"),
    ("/\t/evil.example", "/admin/"),
    ("javascript:alert(1)", "/admin/"),
    ("admin", "/admin/"),
])
def test_next_goes_only_to_local_paths(client, make_user, target, expected):
    user = make_user("viewer")
    csrf = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", query_string={"next": target},
                           data={"username": user["name"], "password": PASSWORD, "csrf_token": csrf})
    assert response.status_code == 302 and response.headers["Location"] == expected


def test_session_cookie_flags(client, make_user):
    user = make_user("viewer")
    csrf = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": user["name"], "password": PASSWORD, "csrf_token": csrf})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain HTTP here


# ---------------------------------------------------------------- CSRF


def test_cookie_post_without_csrf_changes_nothing(client, auth, make_user, store):
    admin = make_user("admin")
    auth.login(admin)
    users = Users(store)
    before = users.list()
    form = {"username": "mallory", "role": "admin", "password": "mallory-password"}
    refused = client.post("/admin/users", data=form)
    assert refused.status_code == 403 and "CSRF check failed" in refused.get_data(as_text=True)
    wrong = client.post("/admin/users", data={**form, "csrf_token": "forged"})
    assert wrong.status_code == 403
    deleted = client.post(f"/admin/users/{admin['name']}/delete")
    assert deleted.status_code == 403
    assert users.list() == before and users.get("mallory") is None
    refusals = [f for _, f in store.redis.xrange(store.key("audit")) if f["action"] == "csrf"]
    assert len(refusals) >= 3
    # the same request with the token goes through
    assert client.post("/admin/users", data={**form, "csrf_token": auth.csrf}).status_code == 303
    assert users.get("mallory")["role"] == "admin"


def test_bearer_requests_need_no_csrf(client, make_user, store):
    admin, other = make_user("admin"), make_user("viewer")
    response = client.post(f"/admin/users/{other['name']}/role", headers=bearer(admin), data={"role": "operator"})
    assert response.status_code == 303 and Users(store).get(other["name"])["role"] == "operator"


def test_logout_needs_csrf(client, auth, make_user):
    auth.login(make_user("viewer"))
    assert client.post("/logout").status_code == 403
    assert client.get("/admin/").status_code == 200  # still logged in
    assert auth.logout().status_code == 302
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
])
def test_cross_site_unsafe_requests_are_refused(client, auth, make_user, store, headers):
    auth.login(make_user("admin"))
    response = client.post("/admin/users", headers={**auth.headers(), **headers},
                           data={"username": "crosser", "role": "viewer", "password": "long-enough-pw",
                                 "csrf_token": auth.csrf})
    assert response.status_code == 403 and "cross-site" in response.get_data(as_text=True)
    assert Users(store).get("crosser") is None
    same = client.post("/admin/users", headers={**auth.headers(), "Origin": "http://localhost",
                                                "Sec-Fetch-Site": "same-origin"},
                       data={"username": "crosser", "role": "viewer", "password": "long-enough-pw",
                             "csrf_token": auth.csrf})
    assert same.status_code == 303 and Users(store).get("crosser")["role"] == "viewer"


# ---------------------------------------------------------------- first-run setup


def test_setup_link_works_once_and_expires(client, store):
    users = Users(store)
    token = users.new_setup_token()
    ttl = store.redis.ttl(store.key("setup_token"))
    assert SETUP_TTL_S - 60 < ttl <= SETUP_TTL_S == 24 * 3600
    assert token not in store.redis.get(store.key("setup_token"))  # stored hashed
    assert client.get("/setup?token=wrong").status_code == 404
    page = client.get(f"/setup?token={token}")
    assert page.status_code == 200 and "At least 8 characters." in page.get_data(as_text=True)
    csrf = csrf_from(page.get_data(as_text=True))
    form = {"username": "root", "password": "first-admin-pw", "confirm": "first-admin-pw", "csrf_token": csrf}
    created = client.post(f"/setup?token={token}", data=form)
    assert created.status_code == 302 and created.headers["Location"] == "/admin/"
    assert users.get("root")["role"] == "admin" and users.password_hash("root").startswith("scrypt:")
    dashboard = client.get("/admin/").get_data(as_text=True)  # the first admin is logged in
    assert "Welcome, root" in dashboard and 'class="who">root' in dashboard
    assert store.redis.exists(store.key("setup_token")) == 0
    again = client.post(f"/setup?token={token}", data={**form, "username": "second"})
    assert again.status_code == 410 and users.get("second") is None
    assert "Setup is closed" in client.get(f"/setup?token={token}").get_data(as_text=True)
    assert users.new_setup_token() is None  # never again once a user exists


def test_no_default_account(client, store):
    assert Users(store).count() == 0
    csrf = csrf_from(client.get("/login").get_data(as_text=True))
    for name, password in (("admin", "admin"), ("admin", "password"), ("root", "root")):
        response = client.post("/login", data={"username": name, "password": password, "csrf_token": csrf})
        assert response.status_code == 401


def test_master_logs_a_setup_link_that_works_once(gunicorn, store):
    server = gunicorn(workers=1)
    found = re.search(r"(http://\S+/setup\?token=(\S+))", server.log())
    assert found and found.group(1).startswith(server.url)
    # Issue 13, finding 13: the terminal shows the link, the shared log stream (which viewers read) never
    # does, while the master's other lines around it are shipped
    shipped = wait_until(lambda: [f["message"] for _, f in store.redis.xrange(store.key("logs", "stream"))
                                  if f["pid"] == str(server.master_pid)], 10, message="the master's lines in the stream")
    assert shipped and not any(found.group(2) in str(f) for _, f in store.redis.xrange(store.key("logs", "stream")))
    session = requests.Session()
    page = session.get(found.group(1), timeout=10)
    assert page.status_code == 200
    form = {"username": "first", "password": "first-admin-pw", "confirm": "first-admin-pw",
            "csrf_token": csrf_from(page.text)}
    assert session.post(found.group(1), data=form, allow_redirects=False, timeout=10).status_code == 302
    assert Users(store).get("first")["role"] == "admin"
    assert requests.get(found.group(1), timeout=10).status_code == 410


# ---------------------------------------------------------------- brute force


def _try_login(session, base, name, password):
    csrf = csrf_from(session.get(base + "/login", timeout=10).text)
    return session.post(base + "/login", data={"username": name, "password": password, "csrf_token": csrf},
                        allow_redirects=False, timeout=10)


def test_sixth_wrong_password_in_a_minute_is_429_whichever_worker_answers(gunicorn, make_user, store):
    server = gunicorn(workers=3)
    user = make_user("admin")
    session = requests.Session()
    answers = [_try_login(session, server.url, user["name"], "wrong-password").status_code for _ in range(5)]
    assert answers == [401] * 5
    # the count lives in the shared Redis, not in one worker's memory
    keys = [k for k in store.redis.scan_iter(match=store.key("limiter") + "*") if "account" in k]
    assert len(keys) == 1 and store.redis.llen(keys[0]) == 5 and store.redis.ttl(keys[0]) > 0
    for _ in range(6):  # sync workers close each connection, so any of the 3 workers answers
        response = _try_login(session, server.url, user["name"], "wrong-password")
        assert response.status_code == 429 and "Too many failed logins" in response.text
    # even the right password waits out the minute
    assert _try_login(session, server.url, user["name"], user["password"]).status_code == 429
    limited = [r for r in audit.strangers(store) if r["result"] == "rate_limited"]
    assert {r["account"] for r in limited} == {user["name"]} and sum(r["count"] for r in limited) == 7


def test_login_limit_per_ip_counts_across_accounts(app_config):
    app = create_app({**app_config, "MONITOR_LOGIN_LIMIT_IP": "3/minute"})
    try:
        client = app.test_client()
        csrf = csrf_from(client.get("/login").get_data(as_text=True))
        codes = [client.post("/login", data={"username": f"nobody{i}", "password": "x", "csrf_token": csrf}).status_code
                 for i in range(4)]
        assert codes == [401, 401, 401, 429]
    finally:
        state(app).flusher.stop(flush=False)


def _attempt(client, csrf, name, password, kind):
    body = {"username": name, "password": password, "csrf_token": csrf}
    return client.post("/login", json=body) if kind == "json" else client.post("/login", data=body)


@pytest.mark.parametrize("failing, right", [("form", "json"), ("json", "form"), ("json", "json")])
def test_the_account_limit_holds_however_the_name_is_sent(app, make_user, failing, right):
    """Issue 13, finding 6: the limiter read the account from the form only, so every JSON login shared
    one bucket and the right password sent as JSON got in after 5 failed form logins."""
    user, other = make_user("viewer"), make_user("viewer")
    client = app.test_client()
    csrf = csrf_from(client.get("/login").get_data(as_text=True))
    assert [_attempt(client, csrf, user["name"], "wrong-password", failing).status_code for _ in range(5)] == [401] * 5
    assert _attempt(client, csrf, f" {user['name'].upper()} ", PASSWORD, right).status_code == 429
    fresh = app.test_client()  # another account's bucket is its own, whichever way both were sent
    fresh_csrf = csrf_from(fresh.get("/login").get_data(as_text=True))
    assert _attempt(fresh, fresh_csrf, other["name"], PASSWORD, right).status_code == 302


@pytest.mark.parametrize("kind", ["cookie", "bearer"])
def test_the_account_page_password_check_is_limited_like_login(app, make_user, store, kind):
    """Issue 13, finding 9: 40 wrong current passwords on /admin/account were all 400, never 429.
    Its guesses and the login form's spend one bucket, so a stolen session adds none."""
    user = make_user("viewer")
    client = app.test_client()
    headers = bearer(user) if kind == "bearer" else {}
    if kind == "cookie":
        Auth(client).login(user)
    csrf = csrf_from(client.get("/admin/account", headers=headers).get_data(as_text=True))
    stranger = app.test_client()
    stranger_csrf = csrf_from(stranger.get("/login").get_data(as_text=True))
    for _ in range(2):  # two guesses through the login form
        assert _attempt(stranger, stranger_csrf, user["name"], "guess-1", "form").status_code == 401
    answers = [client.post("/admin/account", headers=headers, data={
        "csrf_token": csrf, "current": f"guess-{i}", "password": "new-password-1", "confirm": "new-password-1"}
    ).status_code for i in range(5)]
    assert answers == [400, 400, 400, 429, 429]
    # the right password waits out the window too, on the page and at the login form
    assert client.post("/admin/account", headers=headers, data={
        "csrf_token": csrf, "current": PASSWORD, "password": "new-password-1", "confirm": "new-password-1"}
    ).status_code == 429
    assert _attempt(stranger, stranger_csrf, user["name"], PASSWORD, "form").status_code == 429
    assert Users(store).authenticate(user["name"], PASSWORD)
    limited = [e for e in audit.entries(store, 20) if e["action"] == "user.password"]
    assert [e["result"] for e in limited] == ["rate_limited"] * 3 + ["refused"] * 3


def test_successful_logins_do_not_count(client, make_user):
    user = make_user("viewer")
    for _ in range(7):
        auth = Auth(client)
        auth.login(user)
        auth.logout()


def test_the_limiter_and_the_login_session_hooks_run_on_the_monitor_routes_only(app):
    app_wide = [*app.before_request_funcs[None], *app.after_request_funcs[None], *app.teardown_request_funcs[None]]
    owners = {getattr(getattr(f, "func", f), "__qualname__", "").split(".")[0] for f in app_wide}
    assert "Limiter" not in owners and not hasattr(app, "login_manager")
    # The monitor's whole app-wide cost is its timing point (see web/hooks.py), not a hook.
    assert app_wide == []
    on_auth = [getattr(getattr(f, "func", f), "__qualname__", "") for f in app.after_request_funcs["monitor_auth"]]
    assert "Limiter.__inject_headers" in on_auth
    # The guard (allowed hosts, body cap) and the cross-site check run first, then the login session
    # goes in; it comes out before the security headers go on, on every monitor blueprint but the
    # public ones, which get the guard, the check and the headers alone.
    for name in ("monitor_auth", "monitor_dashboard", "monitor_api", "monitor_openapi", "monitor_prometheus"):
        assert [f.__name__ for f in app.before_request_funcs[name][:3]] == ["guard", "_refuse_cross_site", "enter"]
        # after_request runs in reverse: the first in the list runs last
        assert [f.__name__ for f in app.after_request_funcs[name][:2]] == ["_add_headers", "leave"]
    assert [f.__name__ for f in app.before_request_funcs["monitor_health"]] == ["guard", "_refuse_cross_site"]


# ---------------------------------------------------------------- Redis down


def test_redis_down_login_is_503_never_500_never_open(system_redis, app_config, tmp_path):
    server = system_redis()
    app = create_app({**app_config, "MONITOR_REDIS_URL": server.url})
    try:
        users = Users(state(app).store)
        users.create("ada", "admin", PASSWORD)
        token = users.create_token("ada")
        logged_in = app.test_client()
        Auth(logged_in).login({"name": "ada", "password": PASSWORD})
        stranger = app.test_client()
        csrf = csrf_from(stranger.get("/login").get_data(as_text=True))
        server.kill()

        page = stranger.get("/login")
        assert page.status_code == 200  # the form itself needs no store
        for _ in range(7):  # more than the limit: failures are not even counted, nobody gets in
            attempt = stranger.post("/login", data={"username": "ada", "password": PASSWORD, "csrf_token": csrf})
            assert attempt.status_code == 503 and attempt.headers["Retry-After"] == "5"
            assert "unreachable" in attempt.get_data(as_text=True)
        dashboard = logged_in.get("/admin/")
        assert dashboard.status_code == 503 and "log out" not in dashboard.get_data(as_text=True).lower()
        api = logged_in.get("/api/admin/audit")
        assert api.status_code == 503 and api.json["error"] == "unavailable"
        token_call = stranger.get("/api/admin/audit", headers={"Authorization": f"Bearer {token}"})
        assert token_call.status_code == 503 and token_call.json["error"] == "unavailable"
        htmx = logged_in.get("/admin/panels/metrics", headers={"HX-Request": "true"})
        assert htmx.status_code == 503
        assert stranger.get("/health").json["redis"] == {"ok": False}
        assert app.extensions["monitor"].limiter._storage_dead  # limits went on in this process's memory
    finally:
        state(app).flusher.stop(flush=False)


def test_redis_back_logins_work_again(system_redis, app_config):
    server = system_redis()
    app = create_app({**app_config, "MONITOR_REDIS_URL": server.url})
    try:
        Users(state(app).store).create("ada", "admin", PASSWORD)
        client = app.test_client()
        server.process.send_signal(19)  # SIGSTOP: a hung Redis, answers time out
        csrf = csrf_from(client.get("/login").get_data(as_text=True))
        hung = client.post("/login", data={"username": "ada", "password": PASSWORD, "csrf_token": csrf})
        assert hung.status_code == 503
        server.process.send_signal(18)  # SIGCONT
        Auth(client).login({"name": "ada", "password": PASSWORD})
        soup = BeautifulSoup(client.get("/admin/").get_data(as_text=True), "html.parser")
        assert soup.select_one(".who").text.startswith("ada")
    finally:
        state(app).flusher.stop(flush=False)
