"""The examples under real gunicorn with a real Redis: the factory app (Flask-Login users, its own
/login, /health and /metrics, role_loader) in both registration orders, its route collisions
without a prefix, and the smallest app with the monitor's gunicorn config and without it."""
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests
from bs4 import BeautifulSoup

from monitor.auth.users import Users
from monitor.core import embedded
from monitor.core.store import Store
from support import EXAMPLES, PASSWORD, ROOT, bearer, csrf_from, wait_until

FACTORY = os.path.join(EXAMPLES, "factory")
MINIMAL = os.path.join(EXAMPLES, "minimal")


def flask(cwd, app, *args, env, stdin=None):
    """Run ``flask --app APP ARGS`` in an example's folder, as its user would."""
    return subprocess.run([sys.executable, "-m", "flask", "--app", app, *args], cwd=cwd, input=stdin,
                          env={**env, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=60)


@pytest.fixture
def notes(gunicorn, tmp_path, redis_url, prefix):
    """Start the factory example under gunicorn (its gunicorn.conf.py wires the hooks), with two users."""
    env = {"FLASK_SECRET_KEY": "a-test-secret", "FLASK_USERS_FILE": str(tmp_path / "users.json")}
    cli_env = {**os.environ, **env, "REDIS_URL": redis_url, "MONITOR_KEY_PREFIX": prefix,
               "MONITOR_INSTANCE_PATH": str(tmp_path / "cli")}
    for email, flags in (("ada@example.com", ["--admin"]), ("bob@example.com", [])):
        added = flask(FACTORY, "notes", "add-user", email, *flags, "--password", PASSWORD, env=cli_env)
        assert added.returncode == 0, added.stderr

    def start(app="notes:create_app()", health="/_monitor/health"):
        return gunicorn(workers=2, env=env, app=app, cwd=FACTORY, health=health)
    start.cli_env = cli_env
    return start


def host_login(server, email):
    """Log in to the example app itself, with its own form; return the requests session."""
    browser = requests.Session()
    form = browser.get(server.url + "/login", timeout=10).text
    answer = browser.post(server.url + "/login", data={"email": email, "password": PASSWORD,
                                                       "csrf_token": csrf_from(form)}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"] == "/notes"
    return browser


@pytest.mark.parametrize("monitor_first", [False, True], ids=["host-first", "monitor-first"])
def test_a_flask_login_host_under_gunicorn(notes, store, make_user, monitor_first):
    server = notes(app=f"notes:create_app(monitor_first={monitor_first})")
    health = server.get("/_monitor/health").json()
    assert health["monitoring"]["gunicorn_hooks"] is True and health["redis"] == {"ok": True}
    assert server.get("/health").json() == {"status": "ok", "app": "notes"}  # the app's own
    assert server.get("/metrics").text == "notes_up 1\n"
    # No monitor user yet: the first worker logged the setup link, under the prefix.
    assert len(re.findall(re.escape(server.url) + r"/_monitor/setup\?token=", server.log())) == 1
    stranger = server.get("/notes", allow_redirects=False)
    assert stranger.status_code == 302 and stranger.headers["Location"] == "/login?next=%2Fnotes"

    # A user of the app without a monitor role: the app's login works, the monitor stays shut.
    bob = host_login(server, "bob@example.com")
    assert "bob@example.com" in bob.get(server.url + "/notes", timeout=10).text
    assert bob.get(server.url + "/_monitor/admin/", allow_redirects=False, timeout=10).headers["Location"] == \
        "/_monitor/login?next=/_monitor/admin/"
    denied = bob.get(server.url + "/_monitor/api/admin/metrics", timeout=10)
    assert denied.status_code == 401 and denied.json()["error"] == "unauthorized" and "requests" not in denied.json()

    # The app's admin, let in by role_loader: the dashboard and the JSON API, no second login.
    ada = host_login(server, "ada@example.com")
    page = ada.get(server.url + "/_monitor/admin/", timeout=10)
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.select_one(".who").text.split() == ["host:ada@example.com", "(admin)"]
    assert all(soup.select_one(f"#panel-{name}") for name in ("metrics", "profiling", "cache", "cluster", "logs"))
    metrics = ada.get(server.url + "/_monitor/api/admin/metrics", timeout=10).json()
    assert metrics["window_s"] == 60 and isinstance(metrics["requests"]["total"], int)
    refused = ada.post(server.url + "/_monitor/api/admin/cache/clear", json={"all": True}, timeout=10)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    cleared = ada.post(server.url + "/_monitor/api/admin/cache/clear", json={"all": True},
                       headers={"X-CSRFToken": csrf_from(page.text)}, timeout=10)
    assert cleared.status_code == 200 and cleared.json()["cleared"] >= 0
    entries = [fields for _, fields in store.redis.xrange(store.key("audit"))]
    assert any(e["user"] == "host:ada@example.com" and e["action"] == "cache.clear" for e in entries)

    # The app's CSRFProtect still refuses a token-less post to its form; its session keeps the notes.
    assert ada.post(server.url + "/notes", data={"text": "no token"}, timeout=10).status_code == 400
    form = ada.get(server.url + "/notes", timeout=10).text
    added = ada.post(server.url + "/notes", data={"text": "first note", "csrf_token": csrf_from(form)},
                     allow_redirects=False, timeout=10)
    assert added.status_code == 303 and "<li>first note</li>" in ada.get(server.url + "/notes", timeout=10).text

    # A monitor token works beside them, and no CSRFProtect refuses its unsafe calls.
    operator = make_user("operator")
    assert server.get("/_monitor/api/admin/metrics", headers=bearer(operator)).status_code == 200
    assert server.post("/_monitor/api/admin/cache/clear", json={"all": True}, headers=bearer(operator)).status_code == 200


def test_without_a_prefix_the_collisions_are_logged_and_checked(notes):
    server = notes(app='notes:create_app({"MONITOR_URL_PREFIX": ""})', health="/health")
    assert server.get("/health").json() == {"status": "ok", "app": "notes"}  # the app's, first registered

    def logged():
        return [line for line in server.log().splitlines() if "route collision" in line]
    lines = wait_until(lambda: len(logged()) == 4 and logged(), message="four collision lines")
    claims = sorted(re.search(r"both claim (\S+ \S+),", line).group(1) for line in lines)
    assert claims == ["GET /health", "GET /login", "GET /metrics", "POST /logout"]
    assert all("and the monitor's never answers" in line and "MONITOR_URL_PREFIX" in line for line in lines)
    assert any("the monitor's /health (monitor_health.health) and the host app's /health (pages.health) both "
               "claim GET /health" in line for line in lines)
    check = flask(FACTORY, 'notes:create_app({"MONITOR_URL_PREFIX": ""})', "monitor", "check", env={
        **notes.cli_env, "MONITOR_INSTANCE_PATH": server.instance})
    assert check.returncode == 1
    failed = [line for line in check.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 4 and all("route collision" in line for line in failed), check.stdout
    assert "ok    gunicorn: the config" in check.stdout and "./gunicorn.conf.py runs the monitor's server hooks" in check.stdout


def test_the_smallest_app_with_the_monitors_gunicorn_config(gunicorn):
    server = gunicorn(workers=2, embedded=True, app="app:app", cwd=MINIMAL, args=("-c", "python:monitor.gunicorn_conf"))
    health = server.health()
    assert health["monitoring"]["gunicorn_hooks"] is True and health["worker"]["clustered"] is True
    assert server.get("/").text == "Hello from an app with a monitor at /admin/"
    links = [line for line in server.log().splitlines() if "/setup?token=" in line]
    assert len(links) == 1
    link = re.search(r"(http://\S+/setup\?token=\S+)", links[0]).group(1)
    assert link.startswith(server.url) and requests.get(link, timeout=10).status_code == 200
    redis_servers = [p for p in psutil.Process(server.master_pid).children() if "redis" in p.name()]
    assert len(redis_servers) == 1, "the master owns the one embedded Redis"


def _embedded_servers(instance):
    socket = embedded.socket_path(instance)
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if socket in " ".join(proc.info["cmdline"] or []) and "redis" in proc.name():
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


def test_without_the_hooks_one_embedded_redis_serves_every_worker(gunicorn, prefix):
    """No monitor hooks: no master owns the Redis; one worker does, and another restarts it when it goes."""
    server = gunicorn(workers=3, embedded=True, app="app:app", cwd=MINIMAL, args=("--no-control-socket",))
    server.wait_workers(3)
    health = server.health()
    assert health["monitoring"]["gunicorn_hooks"] is False and health["redis"] == {"ok": True}
    owners = wait_until(lambda: len(_embedded_servers(server.instance)) == 1 and _embedded_servers(server.instance),
                        message="one embedded Redis")
    owner = owners[0].parent()
    assert owner.pid in server.worker_pids(), "a worker started it"
    users = Users(Store(embedded.url(server.instance), prefix))
    time.sleep(0.2)
    users.create("ada", "admin", PASSWORD)
    time.sleep(1.2)  # past the append-only file's fsync (every second)
    os.kill(owner.pid, signal.SIGKILL)

    def restarted():
        found = _embedded_servers(server.instance)
        return len(found) == 1 and found[0].pid != owners[0].pid and found[0]
    replacement = wait_until(restarted, timeout=15, message="another worker to start the embedded Redis again")
    assert replacement.parent().pid != owner.pid
    assert wait_until(lambda: all((server.health() or {}).get("redis", {}).get("ok") for _ in range(6)),
                      message="every worker on the restarted Redis")
    assert users.get("ada")["role"] == "admin", "the data came back from the append-only file"
    assert len(_embedded_servers(server.instance)) == 1


def test_a_shared_setting_only_the_app_sees_is_logged_by_the_first_worker(notes, prefix):
    """The master reads the environment, the workers the app's config: a key prefix set only in
    app.config would put the cluster agent and the master's log lines in another key space."""
    server = notes(app='notes:create_app({"MONITOR_KEY_PREFIX": "elsewhere"})')

    def logged():
        return [line for line in server.log().splitlines() if "the gunicorn master reads" in line]
    (line,) = wait_until(logged, message="the disagreement line")
    assert (f"the gunicorn master reads MONITOR_KEY_PREFIX='{prefix}' from the environment but the app has "
            f"'elsewhere'; set it in the environment") in line
