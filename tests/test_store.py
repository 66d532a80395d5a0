"""The shared store: one hash tag per fleet, the URL forms (single, Cluster, Sentinel, TLS),
the keys of the old form, and everything that talks to Redis on a real 3-master Redis Cluster."""
import uuid

import pytest
import redis
from redis.crc import key_slot

from monitor import create_app
from monitor.auth.users import Users
from monitor.capabilities.logs import query as logs
from monitor.capabilities.metrics import query as metrics
from monitor.core import config
from monitor.core import store as store_module
from monitor.core.state import state
from monitor.core.store import Store, limiter_storage
from support import UserFactory, bearer, csrf_from, wait_until


def test_every_key_of_a_fleet_shares_one_hash_tag(store):
    keys = [store.key("m", "d", 10, 1), store.key("users"), store.key("cache") + ":view//x", store.key("flush", "ab")]
    assert all(k.startswith(f"{{{store.prefix}}}:") for k in keys)
    assert len({key_slot(k.encode()) for k in keys}) == 1


@pytest.mark.parametrize("url, parsed", [
    ("redis+sentinel://10.0.0.1:26379/mymaster", ([("10.0.0.1", 26379)], "mymaster", 0, None, None)),
    ("redis+sentinel://:s3cret@a:1,b:2,[::1]:3/svc/2", ([("a", 1), ("b", 2), ("::1", 3)], "svc", 2, None, "s3cret")),
    ("redis+sentinel://user:pw@a:1/svc", ([("a", 1)], "svc", 0, "user", "pw")),
])
def test_sentinel_urls_are_parsed(url, parsed):
    assert store_module.parse_sentinel(url) == parsed
    assert config.validate(next(s for s in config.SETTINGS if s.name == "MONITOR_REDIS_URL"), url) == url


@pytest.mark.parametrize("url", ["redis+sentinel://a:1", "redis+sentinel://a/svc", "redis+sentinel://a:1/svc/db",
                                 "redis+sentinel://a:99999/svc", "redis+sentinel://a:1/svc/0/x", "http://a:1/"])
def test_bad_redis_urls_stop_the_start_with_one_line(url):
    with pytest.raises(config.ConfigError, match="REDIS_URL="):
        config.load({}, {"REDIS_URL": url})


def test_a_prefix_with_braces_is_refused():
    with pytest.raises(config.ConfigError, match="MONITOR_KEY_PREFIX"):
        config.load({}, {"MONITOR_KEY_PREFIX": "a{b}"})


def test_the_login_limiter_gets_the_store_in_its_own_url_form():
    assert limiter_storage("unix:///tmp/r.sock", "single", 0.5)[0] == "redis+unix:///tmp/r.sock"
    assert limiter_storage("rediss://:pw@h:6380/1", "single", 0.5)[0] == "rediss://:pw@h:6380/1"
    uri, options = limiter_storage("redis+sentinel://:pw@a:1,b:2/svc/3", "sentinel", 0.5)
    assert uri == "redis+sentinel://:pw@a:1,b:2/svc" and options["db"] == 3  # limits reads no /DB
    assert options["sentinel_kwargs"] == {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}


def test_keys_of_the_old_form_are_adopted_except_cache_and_metrics(store):
    old = f"{store.prefix}:"
    store.redis.set(old + "users", "old-users")
    store.redis.set(old + "user:ann", "ann", ex=500)
    store.redis.set(old + "cache:view//x", "cached")
    store.redis.set(old + "m:d:10:0", "blob")
    store.redis.set(store.key("audit"), "new")
    store.redis.set(old + "audit", "old")
    assert store.adopt_legacy_keys() == 2
    assert store.redis.get(store.key("users")) == "old-users"
    assert store.redis.get(store.key("user", "ann")) == "ann" and 0 < store.redis.ttl(store.key("user", "ann")) <= 500
    assert store.redis.get(store.key("audit")) == "new"  # the new form wins
    assert store.redis.get(old + "cache:view//x") == "cached" and store.redis.get(old + "m:d:10:0") == "blob"
    for name in (old + "audit", old + "cache:view//x", old + "m:d:10:0"):
        store.redis.delete(name)


def test_a_sentinel_set_is_served_through_its_sentinel(sentinel_set, prefix):
    store = Store(sentinel_set.url, prefix)
    assert store.kind == "sentinel" and store.ok()
    store.redis.set(store.key("x"), "1")
    replica = redis.Redis(port=sentinel_set.replica.port, decode_responses=True)
    wait_until(lambda: replica.get(store.key("x")) == "1", 5, message="the write to reach the replica")


# ---------------------------------------------------------------- a real Redis Cluster


@pytest.fixture
def cluster_app(redis_cluster, prefix, tmp_path):
    app = create_app({"TESTING": True, "MONITOR_REDIS_URL": redis_cluster.url, "MONITOR_KEY_PREFIX": prefix,
                      "MONITOR_INSTANCE_PATH": str(tmp_path / "instance"), "MONITOR_HOST_NAME": "testhost",
                      "MONITOR_LOGIN_LIMIT_IP": "3/minute"})
    yield app
    state(app).flusher.stop(flush=False)


def test_everything_that_talks_to_redis_works_on_a_cluster(cluster_app, redis_cluster):
    monitor = state(cluster_app)
    store = monitor.store
    assert store.kind == "cluster" and store.ok()
    node = store.redis.get_node_from_key(store.key("x"))
    assert store.info("server")["tcp_port"] == node.port  # INFO of the node that holds the fleet
    client = cluster_app.test_client()
    client.get("/health")
    monitor.flusher.stop(flush=False)
    viewer = UserFactory(Users(store))("viewer")  # users: MULTI/EXEC on one slot
    for _ in range(3):
        assert client.get("/demo/hello").status_code == 200
    assert client.get("/demo/cached/k1").get_json() == client.get("/demo/cached/k1").get_json()
    marker = uuid.uuid4().hex
    client.get(f"/demo/log?level=WARNING&msg={marker}")
    monitor.flusher.tick()  # the exactly-once script, with keys it does not declare, in the tag's slot
    monitor.flusher.tick()
    assert monitor.flusher.failures == 0 and monitor.flusher.unsent is None
    assert metrics.totals(store)[("/demo/hello", "GET", "2xx")] == 3
    body = client.get("/api/admin/metrics", headers=bearer(viewer)).get_json()
    assert {r["endpoint"]: r["count"] for r in body["endpoints"]}["/demo/hello"] == 3
    assert [e["message"] for e in logs.query(store, q=marker)["entries"]] == [marker]
    stats = client.get("/api/admin/cache/stats", headers=bearer(viewer)).get_json()
    assert stats["keys"] >= 1 and stats["redis"]["version"]
    with cluster_app.app_context():
        monitor.cache.set_many({"user:1": "a", "user:2": "b"})
        assert monitor.cache.get_many("user:1", "user:2") == ["a", "b"]
        monitor.cache.delete_many("user:1", "user:2")
        assert monitor.cache.get("user:1") is None
    lock = store.lock("test", "lock", timeout=5, token="t1")
    assert lock.acquire(blocking=False, token="t1") and lock.reacquire() and lock.release() is None
    csrf = csrf_from(client.get("/login").get_data(as_text=True))
    codes = [client.post("/login", data={"username": f"nobody{i}", "password": "x", "csrf_token": csrf}).status_code
             for i in range(4)]
    assert codes == [401, 401, 401, 429]
    assert any(store.redis.scan_iter(match=store.key("limiter") + "*"))  # the limits live in the cluster
    names = list(store.redis.scan_iter(match=f"{{{store.prefix}}}:*"))  # on every node
    assert len(names) > 20 and {key_slot(k.encode()) for k in names} == {key_slot(store.key("x").encode())}


def test_cache_and_logs_work_under_gunicorn_on_a_cluster(gunicorn, redis_cluster, prefix):
    operator = UserFactory(Users(Store(redis_cluster.url, prefix)))("operator")
    server = gunicorn(workers=2, env={"REDIS_URL": redis_cluster.url})
    server.wait_workers(2)
    assert server.health()["status"] == "healthy"
    first = server.get("/demo/cached/alpha").json()
    assert all(server.get("/demo/cached/alpha").json() == first for _ in range(4))  # whichever worker answers
    marker = uuid.uuid4().hex
    assert server.get(f"/demo/log?level=ERROR&msg={marker}").status_code == 200

    def found():
        body = server.get(f"/api/admin/logs?q={marker}", headers=bearer(operator)).json()
        return [e["message"] for e in body["entries"]] == [marker]
    wait_until(found, 5, interval=0.1, message="the log line to be shipped")

    def counted():
        stats = server.get("/api/admin/cache/stats", headers=bearer(operator)).json()
        demo = next((n for n in stats["namespaces"] if n["name"] == "demo"), None)
        return demo and demo["keys"] >= 1 and demo["hits"] >= 4 and demo
    wait_until(counted, 5, interval=0.1, message="the cache hits to be counted")
    cleared = server.post("/api/admin/cache/clear", json={"namespace": "demo"}, headers=bearer(operator))
    assert cleared.status_code == 200 and cleared.json()["cleared"] >= 1
    status = server.get("/api/admin/cluster/status", headers=bearer(operator)).json()
    assert status["alive"] == 2
    assert "Traceback" not in server.log()
