"""The app cache: per-namespace hit/miss counts, stats, and clearing only its own keys."""
import importlib.util
import itertools
import json
import time
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from monitor.capabilities.cache import query as cache_query
from monitor.core.cache import prefix as cache_prefix
from monitor.core.state import state
from support import bearer, wait_until

ROOT = Path(__file__).resolve().parents[2]


def flush(app):
    state(app).flusher.tick()


def reads(app):
    """Return {namespace: (hits, misses)} as GET cache/stats would count them."""
    return {ns: tuple(pair) for ns, pair in cache_query._reads(state(app), 600, time.time()).items()}


def test_get_set_counted_per_first_segment(app):
    cache = state(app).cache
    with app.app_context():
        cache.set("user:1", "a")
        cache.set("report/2026", "b")
        cache.set("plain", "c")
        assert cache.get("user:1") == "a"
        assert cache.get("user:2") is None
        assert cache.get("report/2026") == "b"
        assert cache.get_many("plain", "nothing", "user:1") == ["c", None, "a"]
    flush(app)
    assert reads(app) == {"user": (2, 1), "report": (1, 0), "plain": (1, 0), "nothing": (0, 1)}


def test_demo_table_renders_fifty_rows_from_five_cache_reads(app, client):
    """/demo/table, the realistic page of bench_throughput.py: misses once, then hits."""
    first = client.get("/demo/table")
    soup = BeautifulSoup(first.get_data(as_text=True), "html.parser")
    assert first.status_code == 200 and len(soup.select("tbody tr")) == 50
    assert soup.select_one("tbody tr td:nth-of-type(2)").text == "Item Number 0"
    assert client.get("/demo/table").get_data() == first.get_data()
    flush(app)
    assert reads(app) == {"demo": (5, 5)}


def test_memoize_and_cached_namespaces(app):
    cache = state(app).cache
    calls = []

    @cache.memoize(make_name=lambda name: "prices")
    def price(item):
        calls.append(item)
        return len(item)

    @cache.memoize()
    def plain(x):
        return x * 2

    @app.get("/view-cached")
    @cache.cached()
    def view():
        calls.append("view")
        return "v"

    with app.app_context():
        assert [price("ab"), price("ab"), price("abc")] == [2, 2, 3]
        assert [plain(1), plain(1)] == [2, 2]
    client = app.test_client()
    assert [client.get("/view-cached").data for _ in range(3)] == [b"v"] * 3
    assert calls == ["ab", "abc", "view"]
    flush(app)
    fname = f"{__name__}.test_memoize_and_cached_namespaces.locals.plain"  # Flask-Caching drops "<>"
    assert reads(app) == {"prices": (1, 2), fname: (1, 1), "view": (2, 1)}
    raw, prefix = state(app).store.raw, cache_prefix(state(app).store)
    names = sorted(k.decode()[len(prefix):].split(":")[0].split("/")[0]
                   for k in raw.scan_iter(match=prefix + "*"))
    # prices: 2 values + version key; plain: 1 value + version key; view: 1 page.
    assert names == sorted(["prices"] * 3 + [fname] * 2 + ["view"])


def test_memoize_version_key_in_namespace_and_delete_memoized(app):
    cache = state(app).cache

    calls = itertools.count()

    @cache.memoize(make_name=lambda name: "tax")
    def tax(x):
        return next(calls)  # a new value on each real call

    with app.app_context():
        first = tax(1)
        assert tax(1) == first
        cache.delete_memoized(tax)
        assert tax(1) != first
    store = state(app).store
    keys = {k.decode() for k in store.raw.scan_iter(match=cache_prefix(state(app).store) + "tax:*")}
    assert len(keys) == 3 and sum(k.endswith("_memver") for k in keys) == 1


def seed(store, cache, app):
    """Fill the app cache and the monitor's own families; return keys that must survive a `demo` clear."""
    with app.app_context():
        for i in range(30):
            cache.set(f"demo:{i}", i)
        for i in range(5):
            cache.set(f"other:{i}", i)
        cache.set("demo", "bare")
        cache.set("demox:1", "near miss")
    survivors = {store.key("m", "total"), store.key("cluster", "workers"), store.key("cachestats", 0),
                 "outside:demo:1", store.key("cache") + "demo:x"}
    for key in survivors:
        store.redis.set(key, "keep")
    return survivors


def every_key(store):
    """Return ``{key: milliseconds to live}`` (-1: no TTL) of every key in the shared Redis."""
    keys = list(store.redis.scan_iter(match="*"))
    pipe = store.redis.pipeline(transaction=False)
    for key in keys:
        pipe.pttl(key)
    return dict(zip(keys, pipe.execute()))


def removed_keys(store, before):
    """Return the keys of ``before`` gone now, leaving out those that may have expired meanwhile:
    other tests' apps share this Redis under their own prefixes, and short-lived keys (locks)
    come and go under this one."""
    after = set(store.redis.scan_iter(match="*"))
    return {key for key, ttl in before.items() if key not in after
            and key.startswith((store.key(""), "outside:")) and not 0 <= ttl < 5000}


def test_clear_namespace_then_all_leaves_everything_else(app, client, auth, make_user, store):
    cache = state(app).cache
    survivors = seed(store, cache, app)
    before = every_key(store)
    auth.login(make_user("operator"))
    response = auth.post("/api/admin/cache/clear", json={"namespace": "demo"})
    assert response.status_code == 200 and response.get_json() == {"cleared": 31, "namespace": "demo"}
    after = set(store.redis.scan_iter(match="*"))
    removed = removed_keys(store, before)
    prefix = cache_prefix(state(app).store)
    assert removed == {prefix + "demo"} | {f"{prefix}demo:{i}" for i in range(30)}
    assert survivors <= after
    response = auth.post("/api/admin/cache/clear", json={"all": True})
    assert response.get_json() == {"cleared": 6, "namespace": None}
    assert not list(store.redis.scan_iter(match=prefix + "*"))
    assert survivors <= set(store.redis.scan_iter(match="*"))
    users = [json.loads(e["detail"]) for _, e in store.redis.xrange(store.key("audit"))
             if e["action"] == "cache.clear"]
    assert users == [{"namespace": "demo", "cleared": 31}, {"namespace": "*", "cleared": 6}]


@pytest.mark.parametrize("body", [
    {"namespace": ""}, {"namespace": 5}, {"namespace": "a:b"}, {"namespace": "a/b"},
    {"namespace": "x" * 201}, {"namespace": "bad\n"}, {"scope": "demo"}, [1], "text",
    {}, {"namespace": None}, {"all": False}, {"all": "yes"}, {"all": 1}, {"all": True, "namespace": "demo"}])
def test_bad_bodies_400_and_nothing_deleted(app, client, auth, make_user, store, body):
    survivors = seed(store, state(app).cache, app)
    auth.login(make_user("operator"))
    before = every_key(store)
    response = auth.post("/api/admin/cache/clear", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"] == "bad_request"
    assert removed_keys(store, before) == set() and survivors <= set(before)


@pytest.mark.parametrize("form, status, cleared", [
    ({"namespace": "nonexistent"}, 200, 0),   # the field is read: only that (empty) namespace goes
    ({"namespace": "demo"}, 200, 31),
    ({"all": "1"}, 200, 37),
    ({}, 400, None),                          # nothing named is not "everything"
    ({"namespace": "bad:ns", "extra": "x"}, 400, None),
    ({"namespace": "demo", "extra": "x"}, 400, None),
])
def test_a_form_body_is_read_like_json(app, client, auth, make_user, store, form, status, cleared):
    """Issue 13, finding 4: a form body (as the README allows) was read as an empty JSON body, so
    ``namespace=nonexistent`` cleared the whole app cache and an unknown field passed."""
    seed(store, state(app).cache, app)
    auth.login(make_user("operator"))
    before = every_key(store)
    response = client.post("/api/admin/cache/clear", data={"csrf_token": auth.csrf, **form})
    assert response.status_code == status, response.get_json()
    if cleared is None:
        assert response.get_json()["error"] == "bad_request" and removed_keys(store, before) == set()
    else:
        assert response.get_json()["cleared"] == cleared == len(removed_keys(store, before))


def test_glob_characters_in_namespace_match_literally(app, store):
    cache = state(app).cache
    with app.app_context():
        cache.set("a*:1", 1)
        cache.set("ab:1", 1)
        cache.set("a?:1", 1)
    assert cache_query.clear(state(app), "a*") == 1
    prefix = cache_prefix(state(app).store)
    assert sorted(k.decode() for k in store.raw.scan_iter(match=prefix + "*")) == [prefix + "a?:1", prefix + "ab:1"]


def test_viewer_cannot_clear(app, client, make_user, store):
    seed(store, state(app).cache, app)
    viewer = make_user("viewer")
    before = every_key(store)
    response = client.post("/api/admin/cache/clear", json={}, headers=bearer(viewer))
    assert response.status_code == 403 and response.get_json()["error"] == "forbidden"
    assert removed_keys(store, before) == set()
    stats = client.get("/api/admin/cache/stats", headers=bearer(viewer)).get_json()
    assert stats["keys"] == 37 and stats["approximate"] is False
    assert {"name": "demo", "keys": 31, "hits": 0, "misses": 0} in stats["namespaces"]


def test_stats_shape_and_memory(app, client, make_user):
    cache = state(app).cache
    with app.app_context():
        for i in range(50):
            cache.set(f"blob:{i}", "x" * 1000)
        cache.get("blob:1")
        cache.get("blob:nope")
    flush(app)
    stats = client.get("/api/admin/cache/stats?window=300", headers=bearer(make_user("viewer"))).get_json()
    assert stats["backend"] == "redis" and stats["prefix"].endswith(":cache:")
    assert (stats["keys"], stats["hits"], stats["misses"], stats["hit_rate"]) == (50, 1, 1, 0.5)
    assert 50 * 1000 <= stats["memory_bytes"] <= 50 * 2000
    assert stats["namespaces"] == [{"name": "blob", "keys": 50, "hits": 1, "misses": 1}]
    assert set(stats["redis"]) == {"version", "used_memory", "evicted_keys", "connected_clients",
                                   "ops_per_sec", "keyspace_hits", "keyspace_misses"}
    assert stats["redis"]["used_memory"] > 0
    assert client.get("/health").get_json()["monitoring"]["cache"] is True
    assert client.get("/api/admin/cache/stats?window=5", headers=bearer(make_user("viewer"))).status_code == 400


def test_scan_budget_flags_approximate(app, store):
    pipe = store.raw.pipeline(transaction=False)
    for i in range(5000):
        pipe.set(f"{cache_prefix(state(app).store)}bulk:{i}", b"1")
    pipe.execute()
    stats = cache_query.stats(state(app), budget_s=0)
    assert stats["approximate"] is True and 0 < stats["keys"] < 5000
    assert cache_query.stats(state(app))["keys"] == 5000


def test_panel_shows_namespaces_escaped_and_buttons_for_operators(app, client, auth, make_user, store):
    with app.app_context():
        state(app).cache.set("<b>x:1", 1)
    auth.login(make_user("viewer"))
    html = client.get("/admin/panels/cache").get_data(as_text=True)
    assert "<code>&lt;b&gt;x</code>" in html and "<b>x" not in html
    assert "Clear all" not in html
    auth.logout()
    auth.login(make_user("operator"))
    html = client.get("/admin/panels/cache").get_data(as_text=True)
    assert html.count('data-confirm="') == 2 and "Clear all" in html
    response = auth.post("/admin/panels/cache/clear", data={"namespace": "<b>x"})
    assert response.status_code == 200 and "Cleared 1 key of namespace &lt;b&gt;x." in response.get_data(as_text=True)
    assert auth.post("/admin/panels/cache/clear", data={"namespace": "a:b"}).status_code == 400


def test_gunicorn_hits_across_workers_and_clear(gunicorn, make_user, store):
    server = gunicorn(workers=3, env={"MONITOR_FLUSH_INTERVAL": "0.2"})
    server.wait_workers(3)
    values = set()
    for _ in range(10):
        body = server.get("/demo/cached/k").json()
        values.add(body["value"])
    assert len(values) == 1
    viewer, operator = make_user("viewer"), make_user("operator")

    def settled():
        stats = server.get("/api/admin/cache/stats?window=600", headers=bearer(viewer)).json()
        return stats if stats["hits"] + stats["misses"] == 10 else None
    stats = wait_until(settled, 10, message="10 reads shipped")
    assert (stats["hits"], stats["misses"]) == (9, 1)
    assert stats["namespaces"] == [{"name": "demo", "keys": 2, "hits": 9, "misses": 1}]
    prefix = stats["prefix"]
    demo_keys = {k for k in store.redis.scan_iter(match=prefix + "demo:*")}
    assert len(demo_keys) == 2
    store.redis.set("outside:key", "1")
    before = every_key(store)
    assert server.post("/api/admin/cache/clear", json={"namespace": "demo"},
                       headers=bearer(viewer)).status_code == 403
    response = server.post("/api/admin/cache/clear", json={"namespace": "demo"}, headers=bearer(operator))
    assert response.json() == {"cleared": 2, "namespace": "demo"}
    after = set(store.redis.scan_iter(match="*"))
    assert removed_keys(store, before) == demo_keys
    assert "outside:key" in after and any(k.startswith(store.key("user")) for k in after)


def test_bench_clear_20k_counts_exactly(redis_url, prefix, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_cache_clear", ROOT / "bench" / "bench_cache_clear.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.BASELINE_S = 0.2
    rows, survived = bench.run(redis_url, 20_000, prefix=prefix, instance=str(tmp_path))
    assert [(name, expected, cleared) for name, expected, cleared, _, _ in rows[1:]] == [
        ("clear namespace bulk", 20_000, 20_000), ("clear all", 20_000 + bench.OTHER, 20_000 + bench.OTHER)]
    assert survived and all(pings for *_, pings in rows)
