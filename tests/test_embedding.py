"""The monitor as a guest in other apps: what the host owns stays the host's, role_loader,
MONITOR_URL_PREFIX, route collisions, ``flask monitor check``, and Flask's tutorial app
passing its own tests. The examples under real gunicorn: ``test_examples.py``."""
import logging
import os
import subprocess
import sys

import pytest
from bs4 import BeautifulSoup
from flask import Flask, jsonify, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user
from flask_wtf.csrf import CSRFProtect, generate_csrf

from monitor import Monitor, create_app
from monitor.cli import gunicorn_config_location
from monitor.core import server
from monitor.core.state import state
from monitor.web.urls import sample_path
from support import EXAMPLES, ROOT, Auth, bearer, csrf_from

FLASKR = os.path.join(ROOT, "tests", "hosts", "flaskr")


class HostSessions(SecureCookieSessionInterface):
    """The host's own session interface, which must stay in place."""


class HostUser(UserMixin):
    def __init__(self, user_id):
        self.id = user_id
        self.is_admin = user_id.startswith("admin")


def admins_only():
    """The role_loader of the issue: the host's admins are the monitor's admins."""
    if current_user.is_authenticated and current_user.is_admin:
        return current_user.id, "admin"
    return None


def host_app(app_config, monitor_first=None, role_loader=admins_only, **config):
    """A host with its own Flask-Login users, CSRFProtect, session interface and cookie settings.

    ``monitor_first``: None builds it without the monitor; True or False says which comes first.
    """
    app = Flask("host")
    app.config.update({"SECRET_KEY": "host-secret", "SESSION_COOKIE_NAME": "host_session", "WTF_CSRF_TIME_LIMIT": 600,
                       "SESSION_COOKIE_SAMESITE": None, "SESSION_COOKIE_HTTPONLY": False,
                       **{k: v for k, v in app_config.items() if k != "TESTING"}, **config})
    app.session_interface = HostSessions()
    monitor = Monitor()
    if monitor_first:
        monitor.init_app(app)
    manager = LoginManager(app)
    manager.login_view = "host_login_page"
    manager.user_loader(HostUser)
    CSRFProtect(app)

    @app.get("/host/login")
    def host_login_page():
        return "the host's login page"

    @app.get("/host/login/<name>")  # a GET, so the tests need no form for it
    def host_login(name):
        login_user(HostUser(name))
        return "in"

    @app.get("/host/private")
    @login_required
    def private():
        session["seen"] = session.get("seen", 0) + 1
        return jsonify(user=current_user.id, seen=session["seen"], csrf=generate_csrf())

    @app.post("/host/form")
    def form():
        return "posted"

    if role_loader:
        monitor.role_loader(role_loader)
    if monitor_first is False:
        monitor.init_app(app)
    return app


def _qualnames(funcs):
    return sorted(getattr(f, "__qualname__", repr(f)) for f in funcs)


def host_owned(app):
    """What the host owns, in a form that two apps can be compared by."""
    return {
        "config": {k: v for k, v in app.config.items() if not k.startswith("MONITOR_")},
        "session_interface": type(app.session_interface),
        "login_manager": (type(app.login_manager), app.login_manager._user_callback),
        # (config is app.config, compared above; request, session and g are proxies)
        "jinja_globals": {name: getattr(value, "__qualname__", value) for name, value in app.jinja_env.globals.items()
                          if name not in ("config", "request", "session", "g")},
        "context_processors": _qualnames(app.template_context_processors[None]),
        "before_request": _qualnames(app.before_request_funcs.get(None, [])),
        "after_request": _qualnames(app.after_request_funcs.get(None, [])),
        "teardown": _qualnames(app.teardown_request_funcs.get(None, [])),
        "host_rules": sorted((r.rule, r.endpoint) for r in app.url_map.iter_rules()
                             if not r.endpoint.startswith("monitor_")),
        "root_logging": (list(logging.getLogger().handlers), logging.getLogger().level),
        "app_logger": [type(h) for h in app.logger.handlers],
        "wsgi_app": app.wsgi_app.__qualname__,
    }


@pytest.mark.parametrize("monitor_first", [False, True], ids=["host-first", "monitor-first"])
def test_monitor_changes_nothing_the_host_owns(app_config, monitor_first):
    """Its login manager, session interface and cookie, CSRF and other settings, jinja globals,
    app-wide hooks (none: the timing point is one wrapped method), routes and logging are as without the monitor."""
    without = host_app(app_config)
    app = host_app(app_config, monitor_first)
    try:
        assert host_owned(app) == host_owned(without)
        assert app.config["WTF_CSRF_CHECK_DEFAULT"] is True and app.config["SESSION_COOKIE_HTTPONLY"] is False
        assert "full_dispatch_request" in vars(app) and "full_dispatch_request" not in vars(without)
    finally:
        state(app).flusher.stop(flush=False)


@pytest.fixture(params=[False, True], ids=["host-first", "monitor-first"])
def host(request, app_config):
    app = host_app(app_config, request.param)
    yield app
    state(app).flusher.stop(flush=False)


def test_the_host_login_and_login_required_work(host):
    client = host.test_client()
    assert client.get("/host/private").headers["Location"] == "/host/login?next=%2Fhost%2Fprivate"
    assert client.get("/host/login/bob").get_data(as_text=True) == "in"
    assert [client.get("/host/private").json["seen"] for _ in range(2)] == [1, 2]
    assert client.get("/host/private").json["user"] == "bob"
    assert client.get_cookie("host_session") is not None and client.get_cookie("monitor_session") is None


def test_a_host_user_without_a_monitor_role_gets_no_monitor_data(host):
    client = host.test_client()
    client.get("/host/login/bob")
    page = client.get("/admin/")
    assert page.status_code == 302 and page.headers["Location"] == "/login?next=/admin/"
    for path in ("/api/admin/metrics", "/api/admin/logs", "/metrics", "/api/openapi.json"):
        answer = client.get(path, headers={"Accept": "application/json"})
        assert answer.status_code == 401 and answer.json == {
            "error": "unauthorized", "detail": "log in or send Authorization: Bearer <token>"}
    assert client.get("/host/private").json["user"] == "bob"  # the host's login goes on


def test_a_host_admin_mapped_by_role_loader_gets_the_dashboard_and_the_api(host, store):
    client = host.test_client()
    client.get("/host/login/admin-ada")
    assert client.get("/host/private").json["seen"] == 1
    host_cookie = client.get_cookie("host_session").value
    page = client.get("/admin/")
    assert page.status_code == 200
    soup = BeautifulSoup(page.get_data(as_text=True), "html.parser")
    assert soup.select_one("#panel-metrics") is not None and "host:admin-ada" in soup.select_one(".who").text
    assert not [a for a in soup.select("a") if a.text == "Account"] and soup.select_one("form.logout") is None
    metrics = client.get("/api/admin/metrics?window=60")
    assert metrics.status_code == 200 and metrics.json["window_s"] == 60
    assert client.get("/admin/users").status_code == 200  # an admin: the users page too
    assert client.get("/admin/account").status_code == 403  # their password is the host's
    # CSRF still applies to them: the monitor's own token, from the page
    refused = client.post("/api/admin/cache/clear", json={"all": True})
    assert refused.status_code == 403 and "CSRF" in refused.json["detail"]
    cleared = client.post("/api/admin/cache/clear", json={"all": True}, headers={"X-CSRFToken": csrf_from(page.get_data(
        as_text=True))})
    assert cleared.status_code == 200 and cleared.json["cleared"] >= 0
    audit = [fields for _, fields in store.redis.xrange(store.key("audit"))]
    assert {"user": "host:admin-ada", "action": "cache.clear", "result": "ok"}.items() <= audit[-1].items()
    # The host's session went through the monitor's requests untouched, its counter goes on.
    assert client.get_cookie("host_session").value == host_cookie
    assert client.get("/host/private").json["seen"] == 2
    assert client.get("/login").headers["Location"] == "/admin/"  # logged in already


def test_monitor_users_and_tokens_work_beside_host_users(host, make_user):
    operator = make_user("operator")
    tokened = host.test_client()
    assert tokened.get("/api/admin/metrics", headers=bearer(operator)).status_code == 200
    # A bearer call needs no CSRF token: neither the monitor's nor the host's CSRFProtect refuses it.
    cleared = tokened.post("/api/admin/cache/clear", json={"all": True}, headers=bearer(operator))
    assert cleared.status_code == 200 and "cleared" in cleared.json
    client = host.test_client()
    auth = Auth(client)
    auth.login(operator)
    who = BeautifulSoup(client.get("/admin/").get_data(as_text=True), "html.parser").select_one(".who").text
    assert who.split() == [operator["name"], "(operator)"]
    assert auth.post("/api/admin/cache/clear", json={"all": True}).status_code == 200
    # A monitor login is not a login to the host app.
    assert client.get("/host/private").status_code == 302
    assert auth.logout().headers["Location"] == "/login"


def test_the_host_csrf_protect_still_refuses_a_token_less_post(host):
    client = host.test_client()
    client.get("/host/login/bob")
    refused = client.post("/host/form")
    assert refused.status_code == 400 and "The CSRF token is missing." in refused.get_data(as_text=True)
    token = client.get("/host/private").json["csrf"]
    assert client.post("/host/form", data={"csrf_token": token}).get_data(as_text=True) == "posted"
    # The monitor's CSRF token is no token of the host's.
    client.get("/host/login/admin-ada")
    monitor_token = csrf_from(client.get("/admin/").get_data(as_text=True))
    assert client.post("/host/form", headers={"X-CSRFToken": monitor_token}).status_code == 400


def test_the_monitors_csrf_holds_when_the_host_switches_its_own_off(app_config, make_user):
    app = host_app(app_config, False, WTF_CSRF_ENABLED=False, WTF_CSRF_TIME_LIMIT=1)
    client = app.test_client()
    user = make_user("operator")
    login = client.post("/login", data={"username": user["name"], "password": user["password"]})
    assert login.status_code == 400  # no CSRF field: refused
    auth = Auth(client)
    auth.login(user)
    assert client.post("/api/admin/cache/clear", json={"all": True}).status_code == 403
    assert auth.post("/api/admin/cache/clear", json={"all": True}).status_code == 200
    assert app.test_client().post("/host/form").status_code == 200  # the host's choice, for the host
    state(app).flusher.stop(flush=False)


@pytest.mark.parametrize("answer, error", [
    ("ada", "role_loader must return (name, role) or None, not 'ada'"),
    (("ada", "root"), "role_loader returned the role 'root'; a role is one of viewer, operator, admin"),
])
def test_a_wrong_role_loader_answer_is_a_clear_error(app_config, caplog, answer, error):
    app = host_app(app_config, False, role_loader=lambda: answer)
    client = app.test_client()
    client.get("/host/login/someone")
    response = client.get("/api/admin/metrics")
    assert response.status_code == 500 and "request id" in response.json["detail"]
    assert error in caplog.text
    page = client.get("/admin/")  # the error page renders for nobody
    assert page.status_code == 500 and "someone" not in page.get_data(as_text=True)
    state(app).flusher.stop(flush=False)


def test_a_viewer_let_in_by_role_loader_may_not_operate(app_config):
    app = host_app(app_config, False, role_loader=lambda: ("watcher", "viewer"))
    client = app.test_client()
    csrf = csrf_from(client.get("/admin/").get_data(as_text=True))
    assert client.get("/api/admin/metrics").status_code == 200
    denied = client.post("/api/admin/cache/clear", json={"all": True}, headers={"X-CSRFToken": csrf})
    assert denied.status_code == 403 and denied.json["detail"] == "this needs the operator role"
    state(app).flusher.stop(flush=False)


# ---------------------------------------------------------------- MONITOR_URL_PREFIX


@pytest.fixture
def prefixed(app_config):
    """The standalone app under /_monitor, with a host's own /login, /health and /metrics."""
    app = create_app({**app_config, "MONITOR_URL_PREFIX": "/_monitor"})
    app.add_url_rule("/login", "host_login", lambda: "the host's login")
    app.add_url_rule("/health", "host_health", lambda: {"host": "healthy"})
    app.add_url_rule("/metrics", "host_metrics", lambda: "host_up 1\n")
    yield app
    state(app).flusher.stop(flush=False)


def test_every_route_answers_under_the_prefix(prefixed, make_user):
    rules = [rule.rule for rule in prefixed.url_map.iter_rules() if rule.endpoint.startswith("monitor_")]
    assert rules and all(rule.startswith("/_monitor/") for rule in rules)
    client = prefixed.test_client()
    stranger = client.get("/_monitor/admin/")
    assert stranger.headers["Location"] == "/_monitor/login?next=/_monitor/admin/"
    assert client.get("/_monitor/admin/", headers={"HX-Request": "true"}).headers["HX-Redirect"] == "/_monitor/login"
    assert client.get("/_monitor/health").json["status"] == "healthy"
    admin = make_user("admin")
    auth = Auth(client, prefix="/_monitor")
    auth.login(admin)
    assert client.get_cookie("monitor_session").path == "/"  # ?_profile=1 on the host's pages needs it
    page = client.get("/_monitor/admin/").get_data(as_text=True)
    soup = BeautifulSoup(page, "html.parser")
    for name in ("metrics", "profiling", "cache", "cluster", "logs"):
        assert soup.select_one(f"#panel-{name}")["hx-get"].startswith(f"/_monitor/admin/panels/{name}")
        assert client.get(f"/_monitor/admin/panels/{name}").status_code == 200
    assets = [tag.get("href") or tag.get("src") for tag in soup.select("link[rel=stylesheet], script[src]")]
    assert assets and all(asset.startswith("/_monitor/static/monitor/") for asset in assets)
    assert all(client.get(asset).status_code == 200 for asset in assets)
    assert client.get("/_monitor/api/admin/metrics").json["window_s"] == 60
    assert client.get("/_monitor/api/admin/cluster/status").status_code == 200
    assert "monitor_window_requests" in client.get("/_monitor/metrics").get_data(as_text=True)
    spec = client.get("/_monitor/api/openapi.json").json
    assert spec["servers"] == [{"url": "/_monitor", "description": "the paths below are under MONITOR_URL_PREFIX"}]
    missing = client.get("/_monitor/api/admin/nope")
    assert missing.status_code == 404 and missing.json["error"] == "not_found"
    assert auth.post("/_monitor/api/admin/cache/clear", json={"all": True}).status_code == 200
    assert client.get("/").json["dashboard"] == "/_monitor/admin/"
    assert client.get("/admin/").status_code == 404 and client.get("/api/admin/metrics").status_code == 404
    # The host's own routes answer as the host wrote them.
    assert client.get("/login").get_data(as_text=True) == "the host's login"
    assert client.get("/health").json == {"host": "healthy"}
    assert client.get("/metrics").get_data(as_text=True) == "host_up 1\n"
    assert auth.logout().headers["Location"] == "/_monitor/login"
    assert state(prefixed).urls.collisions(prefixed) == []


def test_a_prefixed_monitor_does_not_count_itself_and_counts_the_host(prefixed, make_user):
    client = prefixed.test_client()
    monitor = state(prefixed)
    before = monitor.requests.total
    client.get("/_monitor/health"), client.get("/_monitor/login")
    assert monitor.requests.total == before
    client.get("/health"), client.get("/login")
    assert monitor.requests.total == before + 2


@pytest.mark.parametrize("prefix, bad", [("_monitor", True), ("/a b", True), ("/_monitor/", False), ("/", False)])
def test_the_prefix_setting_is_checked(app_config, prefix, bad):
    from monitor.core.config import ConfigError

    if bad:
        with pytest.raises(ConfigError, match="MONITOR_URL_PREFIX=.*empty, or a path such as /_monitor"):
            create_app({**app_config, "MONITOR_URL_PREFIX": prefix})
    else:
        app = create_app({**app_config, "MONITOR_URL_PREFIX": prefix})
        assert app.config["MONITOR_URL_PREFIX"] == prefix.rstrip("/")
        state(app).flusher.stop(flush=False)


# ---------------------------------------------------------------- collisions and `flask monitor check`


def test_sample_paths_fill_each_converter():
    assert sample_path("/a/<int:n>/<name>/<path:rest>") == "/a/1/x/x"
    assert sample_path("/<uuid:id>/<float:f>/<any(one, two):pick>") == \
        "/00000000-0000-0000-0000-000000000000/1.5/one"


def _host_routes(app):
    app.add_url_rule("/health", "health", lambda: "the host's health")
    app.add_url_rule("/login", "login", lambda: "the host's login", methods=["POST"])
    app.add_url_rule("/admin/<page>", "admin_page", lambda page: page)  # no collision: /admin/users wins
    return app


def test_collisions_name_both_rules_in_one_line_whichever_comes_first(app_config):
    monitor_first = _host_routes(create_app(app_config))  # the monitor registered first: the host loses
    host_first = _host_routes(Flask("host"))
    host_first.config.update(app_config)
    Monitor(host_first)
    try:
        lines = state(monitor_first).urls.collisions(monitor_first)
        assert sorted(lines) == [
            "monitor: route collision: the monitor's /health (monitor_health.health) and the host app's /health "
            "(health) both claim GET /health, and the host app's never answers; set MONITOR_URL_PREFIX "
            "(e.g. /_monitor) to move the monitor's routes",
            "monitor: route collision: the monitor's /login (monitor_auth.login) and the host app's /login (login) "
            "both claim POST /login, and the host app's never answers; set MONITOR_URL_PREFIX (e.g. /_monitor) "
            "to move the monitor's routes"]
        lines = state(host_first).urls.collisions(host_first)
        assert len(lines) == 2 and all("and the monitor's never answers" in line for line in lines)
        assert host_first.test_client().get("/health").get_data(as_text=True) == "the host's health"
    finally:
        state(monitor_first).flusher.stop(flush=False)
        state(host_first).flusher.stop(flush=False)


@pytest.fixture
def master_env(app_config, monkeypatch):
    """The environment a gunicorn master of ``app_config``'s app would read (it does not import the app)."""
    monkeypatch.setenv("REDIS_URL", app_config["MONITOR_REDIS_URL"])
    monkeypatch.setenv("MONITOR_KEY_PREFIX", app_config["MONITOR_KEY_PREFIX"])
    monkeypatch.setenv("MONITOR_HOST_NAME", app_config["MONITOR_HOST_NAME"])


def test_check_passes_the_standalone_app_and_fails_a_collision(app_config, master_env):
    app = create_app(app_config)
    result = app.test_cli_runner().invoke(args=["monitor", "check", "--gunicorn-config", "python:monitor.gunicorn_conf"])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()] == ["ok", "ok", "warn", "ok", "ok"]
    assert "warn  users: none yet and no role_loader; create one with `flask monitor create-user" in result.output
    assert "gunicorn: the config python:monitor.gunicorn_conf runs the monitor's server hooks" in result.output
    _host_routes(app)
    result = app.test_cli_runner().invoke(args=["monitor", "check", "--gunicorn-config", "python:monitor.gunicorn_conf"])
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 2 and all("route collision" in line for line in failed)
    assert "2 problem(s)" in result.output
    state(app).flusher.stop(flush=False)


def test_check_reads_the_gunicorn_config_gunicorn_would_load(app_config, master_env, tmp_path):
    assert gunicorn_config_location({"GUNICORN_CMD_ARGS": "--workers 2 -c python:a.b"}) == "python:a.b"
    assert gunicorn_config_location({"GUNICORN_CMD_ARGS": "--config=x.py"}) == "x.py"
    assert gunicorn_config_location({}, cwd=ROOT) == os.path.join(ROOT, "gunicorn.conf.py")
    assert gunicorn_config_location({}, cwd=str(tmp_path)) is None
    assert server.missing_hooks(server.load_config("python:monitor.gunicorn_conf")) == []
    assert server.missing_hooks(server.load_config(os.path.join(ROOT, "gunicorn.conf.py"))) == []
    assert server.missing_hooks(server.load_config(os.path.join(EXAMPLES, "factory", "gunicorn.conf.py"))) == []
    bare = tmp_path / "bare.conf.py"
    bare.write_text("workers = 2\n")
    assert [state for _, state in server.missing_hooks(server.load_config(str(bare)))] == ["missing"] * 6
    own = tmp_path / "own.conf.py"
    own.write_text("from monitor.gunicorn_conf import *\n\ndef post_worker_init(worker):\n"
                   "    server.post_worker_init(worker)\n")
    assert server.missing_hooks(server.load_config(f"file:{own}")) == [("post_worker_init", "other")]
    app = create_app(app_config)
    result = app.test_cli_runner().invoke(args=["monitor", "check", "--gunicorn-config", str(bare)])
    assert result.exit_code == 1 and result.output.count("FAIL  gunicorn: the config") == 6
    assert "sets no post_worker_init" in result.output and "from monitor.gunicorn_conf import *" in result.output
    result = app.test_cli_runner().invoke(args=["monitor", "check", "--gunicorn-config", str(own)])
    assert result.exit_code == 0 and "warn  gunicorn: the config" in result.output
    state(app).flusher.stop(flush=False)


def test_check_names_a_setting_the_master_would_read_otherwise(app_config, master_env, monkeypatch):
    monkeypatch.setenv("MONITOR_KEY_PREFIX", "elsewhere")
    app = create_app(app_config)  # app.config's prefix wins in the app; the master reads the environment
    result = app.test_cli_runner().invoke(args=["monitor", "check", "--gunicorn-config", "python:monitor.gunicorn_conf"])
    assert result.exit_code == 1
    assert (f"FAIL  settings: the gunicorn master reads MONITOR_KEY_PREFIX='elsewhere' from the environment but "
            f"the app has '{app_config['MONITOR_KEY_PREFIX']}'") in result.output
    state(app).flusher.stop(flush=False)


def test_monitor_commands_refuse_an_app_without_the_monitor():
    app = Flask("plain")
    from monitor.cli import group

    app.cli.add_command(group)
    result = app.test_cli_runner().invoke(args=["monitor", "list-users"])
    assert result.exit_code == 1 and "the app 'plain' does not use the monitor (no Monitor(app))" in result.output


def test_the_master_finds_the_instance_folder_flask_gives_the_app(monkeypatch):
    assert server.app_instance_path("wsgi:app") == os.path.join(ROOT, "instance")  # ./instance, by the contract
    assert server.app_instance_path(None) == os.path.abspath("instance")
    monkeypatch.syspath_prepend(os.path.join(EXAMPLES, "factory"))
    assert server.app_instance_path("notes:create_app()") == os.path.join(EXAMPLES, "factory", "instance")
    assert server.app_instance_path("notes.pages:bp") == os.path.join(EXAMPLES, "factory", "instance")
    installed = server.app_instance_path("flask:Flask('x')")  # a package installed in the venv
    assert installed == os.path.join(os.path.abspath(sys.prefix), "var", "flask-instance")


def test_the_instance_folder_defaults_to_the_apps(app_config, tmp_path, monkeypatch):
    monkeypatch.delenv("MONITOR_INSTANCE_PATH", raising=False)
    app = Flask("host", instance_path=str(tmp_path / "host-instance"))
    app.config.update({k: v for k, v in app_config.items() if k != "MONITOR_INSTANCE_PATH"})
    Monitor(app)
    assert app.config["MONITOR_INSTANCE_PATH"] == str(tmp_path / "host-instance")
    assert (tmp_path / "host-instance" / "secret_key").exists() and app.secret_key is None
    state(app).flusher.stop(flush=False)


# ---------------------------------------------------------------- Flask's tutorial app


def test_flaskr_passes_its_own_tests_with_the_monitor(redis_url, prefix, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([FLASKR, ROOT]), "REDIS_URL": redis_url,
           "MONITOR_KEY_PREFIX": prefix, "MONITOR_INSTANCE_PATH": str(tmp_path / "instance")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
                            cwd=FLASKR, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "24 passed" in result.stdout
    with open(os.path.join(FLASKR, "flaskr", "__init__.py")) as handle:
        assert "    Monitor(app)\n" in handle.read()


def test_profile_query_on_a_host_page_for_a_host_admin_or_a_monitor_login(host, make_user):
    """``?_profile=1`` answers a profile to an admin of the monitor however they are logged in."""
    client = host.test_client()
    client.get("/host/login/admin-ada")
    page = client.get("/host/private?_profile=1")
    assert page.mimetype == "text/html" and "pyinstrumentHTMLRenderer" in page.get_data(as_text=True)
    client.get("/host/login/bob")
    assert client.get("/host/private?_profile=1").json["user"] == "bob"
    monitor_admin = host.test_client()
    Auth(monitor_admin).login(make_user("admin"))
    monitor_admin.get("/host/login/bob")  # a host login without a role, beside the monitor login
    assert "pyinstrumentHTMLRenderer" in monitor_admin.get("/host/private?_profile=1").get_data(as_text=True)


def test_the_monitor_console_command_serves_the_standalone_app_or_the_one_named(app_config, make_user, monkeypatch,
                                                                                tmp_path):
    from click.testing import CliRunner

    from monitor.dev.app import cli

    for name, env in (("MONITOR_REDIS_URL", "REDIS_URL"), ("MONITOR_KEY_PREFIX", "MONITOR_KEY_PREFIX"),
                      ("MONITOR_INSTANCE_PATH", "MONITOR_INSTANCE_PATH")):
        monkeypatch.setenv(env, app_config[name])
    monkeypatch.delenv("FLASK_APP", raising=False)
    admin = make_user("admin")
    listed = CliRunner().invoke(cli, ["list-users"])
    assert listed.exit_code == 0 and listed.output == f"{admin['name']}\tadmin\n"
    (tmp_path / "plainapp.py").write_text("from flask import Flask\n\napp = Flask('plain')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    refused = CliRunner().invoke(cli, ["--app", "plainapp", "list-users"])
    assert refused.exit_code == 1 and "the app 'plain' does not use the monitor (no Monitor(app))" in refused.output
    assert "/static/<path:filename>" in CliRunner().invoke(cli, ["--app", "plainapp", "routes"]).output
