"""The test harness: helpers, real servers (gunicorn, redis-server) and the browser's launch.

Tests import from here (``from support import bearer, wait_until``); the fixtures that use
it live in ``tests/conftest.py``. The benchmarks in ``bench/`` use the same harness.
"""
import os
import re
import shutil
import socket
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
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


class UserFactory:
    """Create users of each role, each with a password and an API token."""

    def __init__(self, users):
        self.users = users

    def __call__(self, role, name=None):
        name = name or f"{role}-{uuid.uuid4().hex[:6]}"
        self.users.create(name, role, PASSWORD)
        return {"name": name, "role": role, "password": PASSWORD, "token": self.users.create_token(name)}


def csrf_from(html):
    """Return the CSRF token a page carries (form field or the body's hx-headers)."""
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
        re.search(r'"X-CSRFToken": "([^"]+)"', html)
    return found.group(1) if found else None


class Auth:
    """Log a test client in and out, and keep the CSRF token for unsafe requests.

    ``prefix`` is the app's MONITOR_URL_PREFIX.
    """

    def __init__(self, client, prefix=""):
        self.client = client
        self.prefix = prefix
        self.csrf = None

    def login(self, user):
        page = self.client.get(self.prefix + "/login").get_data(as_text=True)
        response = self.client.post(self.prefix + "/login", data={
            "username": user["name"], "password": user["password"], "csrf_token": csrf_from(page)})
        assert response.status_code == 302, response.get_data(as_text=True)
        self.csrf = csrf_from(self.client.get(self.prefix + "/admin/").get_data(as_text=True))
        return response

    def headers(self):
        return {"X-CSRFToken": self.csrf}

    def post(self, path, **kwargs):
        return self.client.post(path, headers=self.headers(), **kwargs)

    def logout(self):
        return self.client.post(self.prefix + "/logout", data={"csrf_token": self.csrf})


def bearer(user):
    return {"Authorization": f"Bearer {user['token']}"}


def drive(app, client, *paths, rounds=1):
    """Request ``paths`` through an in-process app, then ship what its flusher recorded."""
    from monitor.core.state import state

    for path in paths:
        client.get(path)
    for _ in range(rounds):
        state(app).flusher.tick()
