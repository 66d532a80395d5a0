"""SQL through SQLAlchemy: statement texts, per-endpoint counts, N+1, the slowest, a real fleet, no secrets."""
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from bs4 import BeautifulSoup
from flask_sqlalchemy import SQLAlchemy
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool

from monitor import Monitor, create_app
from monitor.capabilities.queries import normalize, query, tally
from monitor.core.state import state
from support import ROOT, bearer, wait_until
from support.upstream import Upstream

#: Items in the test database: /items runs 1 + ITEMS statements, ITEMS of them the same.
ITEMS = 24
BY_ID = "SELECT name FROM items WHERE id = ?"
ID_LIST = "SELECT id FROM items ORDER BY id"


# ---------------------------------------------------------------- statement texts


@pytest.mark.parametrize("raw, expected", [
    ("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (?)"),
    ("SELECT * FROM t WHERE id IN (4,5)", "SELECT * FROM t WHERE id IN (?)"),
    ("SELECT * FROM t WHERE id IN (?, ?, ?)", "SELECT * FROM t WHERE id IN (?)"),
    ("SELECT a FROM t1 WHERE x = :x AND y = %(y)s AND z = %s AND w = $1 AND c::int = 7",
     "SELECT a FROM t1 WHERE x = ? AND y = ? AND z = ? AND w = ? AND c::int = ?"),
    ("INSERT INTO t (a, b) VALUES ('it''s', 2), ('x', 3.5e3)", "INSERT INTO t (a, b) VALUES (?)"),
    ("SELECT *\n  FROM t -- by hunter2\n WHERE a = 'hunter2' /* note */ LIMIT 10 OFFSET 20",
     "SELECT * FROM t WHERE a = ? LIMIT ? OFFSET ?"),
    ("SELECT s1.t2.col3, .5, -5 FROM s1.t2", "SELECT s1.t2.col3, ?, -? FROM s1.t2"),
])
def test_statements_keep_their_shape_and_lose_every_value(raw, expected):
    assert normalize.normalize(raw) == expected


def test_a_very_long_statement_is_cut():
    cut = normalize.normalize("SELECT " + ", ".join(f"column_{i}" for i in range(500)) + " FROM t")
    assert len(cut) == normalize.MAX_CHARS and cut.endswith("…")


# ---------------------------------------------------------------- in process, SQLite through SQLAlchemy


@pytest.fixture
def engine():
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(text("INSERT INTO items (name) VALUES (:name)"), [{"name": f"item {i}"} for i in range(ITEMS)])
    yield engine
    engine.dispose()


def add_routes(app, engine):
    """Mount /items (an N+1: 25 statements), /few (3 of one statement) and /broken (a failing one)."""

    @app.get("/items")
    def items():
        with engine.connect() as conn:
            ids = conn.execute(text(ID_LIST)).scalars().all()
            names = [conn.execute(text("SELECT name FROM items WHERE id = :id"), {"id": i}).scalar_one()
                     for i in ids]
        return {"count": len(names)}

    @app.get("/few")
    def few():
        with engine.connect() as conn:
            return {"names": [conn.execute(text("SELECT name FROM items WHERE id = :id"), {"id": i}).scalar_one()
                              for i in (1, 2, 3)]}

    @app.get("/broken")
    def broken():
        with engine.connect() as conn:
            try:
                conn.execute(text("SELECT nothing FROM missing WHERE id = 7"))
            except OperationalError:
                return {"failed": True}
        return {"failed": False}

    Monitor().instrument_sqlalchemy(engine)
    return app


@pytest.fixture
def sql_app(app, engine):
    return add_routes(app, engine)


def flushed(app, now=None):
    monitor = state(app)
    monitor.flusher.stop(flush=False)
    monitor.flusher.tick(now)
    return monitor


def report(app, window=3600):
    return query.report(state(app).store, window, state(app).config["MONITOR_NPLUSONE_THRESHOLD"])


def by_sql(body):
    return {row["sql"]: row for row in body["statements"]}


def test_statements_endpoints_n_plus_one_and_slowest(sql_app, client):
    for _ in range(10):
        assert client.get("/items").json == {"count": ITEMS}
    for _ in range(5):
        client.get("/few")
    flushed(sql_app)
    body = report(sql_app)
    statements = by_sql(body)
    assert set(statements) == {BY_ID, ID_LIST}
    assert statements[BY_ID]["count"] == 10 * ITEMS + 5 * 3 and statements[ID_LIST]["count"] == 10
    row = statements[BY_ID]
    assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] and row["total_ms"] > 0 and row["errors"] == 0
    endpoints = {(e["endpoint"], e["method"]): e for e in body["endpoints"]}
    assert endpoints[("/items", "GET")]["queries"] == 10 * (ITEMS + 1)
    assert endpoints[("/few", "GET")]["queries"] == 15
    assert body["n_plus_one"] == [{"endpoint": "/items", "method": "GET", "sql": BY_ID, "count": 10,
                                   "executions": ITEMS, "example_request_id": body["n_plus_one"][0]["example_request_id"]}]
    assert re.fullmatch(f"{os.getpid():x}-[0-9a-f]+", body["n_plus_one"][0]["example_request_id"])
    slowest = body["slowest"]
    assert len(slowest) == tally.SLOWEST
    assert [e["duration_ms"] for e in slowest] == sorted((e["duration_ms"] for e in slowest), reverse=True)
    assert all(e["request_id"] and e["endpoint"] in ("/items", "/few") and e["sql"] in statements for e in slowest)
    assert slowest[0]["worker"] == f"testhost|{os.getpid()}"


def test_the_threshold_is_a_setting(app_config, engine):
    app = add_routes(create_app({**app_config, "MONITOR_NPLUSONE_THRESHOLD": "2"}), engine)
    try:
        app.test_client().get("/few")  # 3 executions of one statement: more than 2
        flushed(app)
        assert [(f["endpoint"], f["executions"]) for f in report(app)["n_plus_one"]] == [("/few", 3)]
    finally:
        state(app).flusher.stop(flush=False)


def test_a_failing_statement_counts_once_as_an_error(sql_app, client):
    assert client.get("/broken").json == {"failed": True}
    flushed(sql_app)
    body = report(sql_app)
    assert by_sql(body)["SELECT nothing FROM missing WHERE id = ?"] | {"count": 1, "errors": 1} == \
        by_sql(body)["SELECT nothing FROM missing WHERE id = ?"]
    assert [(e["endpoint"], e["queries"], e["errors"]) for e in body["endpoints"]] == [("/broken", 1, 1)]
    assert body["slowest"][0]["error"] is True


def test_sql_outside_a_request_counts_under_no_request(sql_app, engine):
    with engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM items")).scalar()
    with sql_app.app_context(), engine.begin() as conn:
        conn.execute(text("SELECT count(*) FROM items")).scalar()
        conn.execute(text("INSERT INTO items (name) VALUES (:name)"), [{"name": "a"}, {"name": "b"}])
    flushed(sql_app)
    body = report(sql_app)
    assert by_sql(body)["SELECT count(*) FROM items"]["count"] == 2
    assert by_sql(body)["INSERT INTO items (name) VALUES (?)"]["count"] == 1  # one executemany
    assert [(e["endpoint"], e["method"], e["queries"]) for e in body["endpoints"]] == [("<no request>", "", 3)]
    assert [e["request_id"] for e in body["slowest"]] == [None, None, None]


def test_statements_past_the_cap_count_under_overflow(app_config, engine):
    app = add_routes(create_app({**app_config, "MONITOR_QUERIES_MAX_STATEMENTS": "10"}), engine)
    try:
        with app.app_context(), engine.connect() as conn:
            for i in range(15):
                conn.execute(text(f"SELECT name AS column_{i} FROM items WHERE id = 1")).scalar()
        flushed(app)
        statements = by_sql(report(app))
        assert len(statements) == 11 and statements[tally.OVERFLOW]["count"] == 5
        assert sum(row["count"] for row in statements.values()) == 15
    finally:
        state(app).flusher.stop(flush=False)


def test_every_key_has_a_ttl_and_a_failed_send_is_shipped_once(sql_app, client):
    monitor = state(sql_app)
    monitor.started = True  # no flusher thread: the test drives the shipper
    client.get("/few")
    shipper = next(s for s in monitor.flusher.shippers if getattr(s, "kind", None) == "q")
    now = time.time()
    lost = monitor.store.redis.pipeline(transaction=False)
    shipper(lost, now)()  # as the flusher does when the send fails: ``lost`` is never sent
    client.get("/few")
    pipe = monitor.store.redis.pipeline(transaction=False)
    shipper(pipe, now)
    pipe.execute()
    assert by_sql(report(sql_app))[BY_ID]["count"] == 6
    assert tally.totals(monitor.store, "q")[("queries", "/few", "GET")] == 6
    names = list(monitor.store.scan_prefix("q"))
    assert {name.split(":")[2] for name in names} == {*map(str, tally.TIERS), "total"}
    for name in names:
        assert monitor.store.redis.ttl(name) > 0, name


def test_a_flask_sqlalchemy_db_is_instrumented_once(app_config):
    db = SQLAlchemy()
    monitor = Monitor()
    with pytest.raises(RuntimeError, match="after db.init_app"):
        monitor.instrument_sqlalchemy(db)
    with pytest.raises(TypeError, match="Engine or a Flask-SQLAlchemy db"):
        monitor.instrument_sqlalchemy(object())
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": "sqlite://",
                      "SQLALCHEMY_BINDS": {"other": "sqlite://"}})
    try:
        db.init_app(app)
        engines = monitor.instrument_sqlalchemy(db)
        assert len(engines) == 2 and monitor.instrument_sqlalchemy(db) == engines  # a second call adds nothing
        with app.test_request_context("/report"):
            db.session.execute(text("SELECT 1")).scalar()
            with db.engines["other"].connect() as conn:
                conn.execute(text("SELECT 2")).scalar()
        flushed(app)
        assert by_sql(report(app))["SELECT ?"]["count"] == 2
    finally:
        state(app).flusher.stop(flush=False)


# ---------------------------------------------------------------- surfaces


def test_api_answers_the_contract_body(sql_app, client, make_user):
    client.get("/items")
    flushed(sql_app)
    response = client.get("/api/admin/queries?window=300", headers=bearer(make_user("viewer")))
    body = response.get_json()
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert {"statements", "slowest", "n_plus_one"} <= set(body) and body["window_s"] == 300
    assert {"sql", "count", "total_ms", "p95_ms"} <= set(body["statements"][0])
    assert set(body["n_plus_one"][0]) >= {"endpoint", "sql", "count", "example_request_id"}
    assert sum(row["count"] for row in body["statements"]) == ITEMS + 1


@pytest.mark.parametrize("args", ["window=9", "window=86401", "window=", "window=1h"])
def test_api_refuses_a_bad_window(client, make_user, args):
    response = client.get(f"/api/admin/queries?{args}", headers=bearer(make_user("viewer")))
    assert response.status_code == 400 and response.get_json()["error"] == "bad_request"


def test_strangers_get_nothing(client):
    for path in ("/api/admin/queries", "/admin/panels/queries"):
        assert client.get(path).status_code in (302, 401)
    assert client.get("/api/admin/queries").get_json()["error"] == "unauthorized"


def test_panels_show_statements_n_plus_one_and_sql_per_request(sql_app, client, auth, make_user):
    for _ in range(4):
        client.get("/items")
    client.get("/demo/hello")
    flushed(sql_app)
    auth.login(make_user("viewer"))
    soup = BeautifulSoup(client.get("/admin/panels/queries?window=900").get_data(as_text=True), "html.parser")
    assert soup.select_one("#panel-queries") and soup.select_one("#queries-total").text == str(4 * (ITEMS + 1))
    rows = [[td.text for td in tr.select("td")] for tr in soup.select("table.queries-statements tbody tr")]
    assert rows[0][:2] == [BY_ID, str(4 * ITEMS)]
    assert [[td.text for td in tr.select("td")][:4] for tr in soup.select("table.queries-nplusone tbody tr")] == [
        ["GET /items", BY_ID, "4", str(ITEMS)]]
    assert soup.select_one("#queries-window option[selected]")["value"] == "900"
    metrics = BeautifulSoup(client.get("/admin/panels/metrics?window=300").get_data(as_text=True), "html.parser")
    heads = [th.text for th in metrics.select("table.metrics-endpoints thead th")]
    assert heads[-2:] == ["SQL ms per request", "queries per request"]
    cells = {tr.select("td")[0].text: [td.text for td in tr.select("td")] for tr in
             metrics.select("table.metrics-endpoints tbody tr")}
    assert cells["GET /items"][-1] == "25" and float(cells["GET /items"][-2]) > 0
    assert cells["GET /demo/hello"][-2:] == ["0", "0"]
    page = BeautifulSoup(client.get("/admin/").get_data(as_text=True), "html.parser")
    ids = [s["id"] for s in page.select("section.panel")]
    assert ids[ids.index("panel-queries"):][:2] == ["panel-queries", "panel-outgoing"]


def test_prometheus_counts_sql_per_endpoint(sql_app, client, make_user):
    for _ in range(3):
        client.get("/items")
    client.get("/few")
    flushed(sql_app)
    exposition = client.get("/metrics", headers=bearer(make_user("viewer"))).get_data(as_text=True)
    samples = {(s.name, s.labels.get("endpoint")): s.value for family in text_string_to_metric_families(exposition)
               for s in family.samples if s.name.startswith("monitor_sql_")}
    assert samples[("monitor_sql_queries_total", "/items")] == 3 * (ITEMS + 1)
    assert samples[("monitor_sql_queries_total", "/few")] == 3
    assert samples[("monitor_sql_nplusone_requests_total", "/items")] == 3
    assert samples[("monitor_sql_seconds_total", "/items")] > 0


# ---------------------------------------------------------------- never captured


SECRETS = {"sql_parameter": "s3cret-param-7f1c", "sql_literal": "s3cret-literal-9a2e",
           "query_value": "s3cret-query-4b8d", "header": "s3cret-header-1d5f", "path_token": "a9f3e1c27b5d4f60a8e2"}


def test_no_secret_reaches_redis(sql_app, client, engine, prefix):
    """Secrets planted in SQL parameters and literals, outgoing query values, headers and an id-like
    path segment appear nowhere in Redis: every key under the test's prefix, every field and value."""
    upstream = Upstream().start()
    try:
        @sql_app.get("/leaky")
        def leaky():
            with engine.connect() as conn:
                conn.execute(text("SELECT id FROM items WHERE name = :name"), {"name": SECRETS["sql_parameter"]})
                conn.execute(text(f"SELECT id FROM items WHERE name = '{SECRETS['sql_literal']}'"))
            requests.get(f"{upstream.url}/reset/{SECRETS['path_token']}", params={"token": SECRETS["query_value"]},
                         headers={"Authorization": f"Bearer {SECRETS['header']}"}, timeout=5)
            return {"ok": True}

        for _ in range(3):
            assert client.get("/leaky").json == {"ok": True}
        assert len(upstream.received) == 3 and SECRETS["header"] in str(upstream.received[0])
        monitor = flushed(sql_app)
        assert report(sql_app)["statements"] and state(sql_app).outgoing.tally.names
    finally:
        upstream.stop()
    raw = monitor.store.raw
    dump = []
    for name in raw.scan_iter(match=f"{{{prefix}}}:*".encode()):
        kind = raw.type(name)
        dump.append(name)
        if kind == b"string":
            dump.append(raw.get(name))
        elif kind == b"hash":
            dump += [x for pair in raw.hgetall(name).items() for x in pair]
        elif kind == b"list":
            dump += raw.lrange(name, 0, -1)
        elif kind == b"set":
            dump += raw.smembers(name)
        elif kind == b"zset":
            dump += [member for member, _ in raw.zrange(name, 0, -1, withscores=True)]
        elif kind == b"stream":
            dump += [json.dumps({k.decode(): v.decode("latin-1") for k, v in fields.items()}).encode()
                     for _, fields in raw.xrange(name)]
    everything = b"\n".join(dump)
    assert b"/reset/{id}" in everything and b"SELECT id FROM items WHERE name = ?" in everything
    for where, secret in SECRETS.items():
        assert secret.encode() not in everything, where


# ---------------------------------------------------------------- a host without the libraries


def test_a_host_without_sqlalchemy_or_requests_runs_at_no_cost(tmp_path, redis_url, prefix):
    """With sqlalchemy, flask_sqlalchemy, requests, urllib3 and httpx unimportable, the default
    capabilities start, serve and ship: nothing is patched, none of them is imported."""
    script = textwrap.dedent(f"""
        import importlib.abc, json, sys
        BLOCKED = ("sqlalchemy", "flask_sqlalchemy", "requests", "urllib3", "httpx")

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, Block())
        from monitor import create_app
        from monitor.capabilities.outgoing import collect
        app = create_app({{"MONITOR_INSTANCE_PATH": {str(tmp_path)!r}, "MONITOR_REDIS_URL": {redis_url!r},
                          "MONITOR_KEY_PREFIX": {prefix!r}}})
        monitor = app.extensions["monitor"]
        codes = [app.test_client().get(path).status_code for path in ("/demo/hello", "/demo/sleep?ms=1")]
        monitor.flusher.stop(flush=False)
        monitor.flusher.tick()
        print(json.dumps({{"codes": codes, "patched": collect.patched, "capabilities": list(monitor.capabilities),
                          "imported": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
                          "sql": len(monitor.sql.tally.names), "calls": len(monitor.outgoing.tally.names)}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["codes"] == [200, 200] and found["patched"] == [] and found["imported"] == []
    assert {"queries", "outgoing"} <= set(found["capabilities"]) and found["sql"] == found["calls"] == 0


# ---------------------------------------------------------------- a real fleet


@pytest.mark.slow
def test_a_fleet_of_three_workers_counts_every_statement(gunicorn, make_user):
    """100 requests of 25 statements (24 of them one SELECT ... WHERE id = ?) over 3 gunicorn
    workers: 2,500 statements merged exactly, the looped one as one group, an N+1 entry; and
    30 outgoing calls from the same workers merged as one group."""
    upstream = Upstream().start()
    try:
        server = gunicorn(workers=3, app="examples.sql_app:app", env={"UPSTREAM_URL": upstream.url})
        server.wait_workers(3)
        viewer = make_user("viewer")
        session = requests.Session()
        for _ in range(100):
            response = session.get(server.url + "/items", timeout=10, headers={"Connection": "close"})
            assert response.json() == {"count": ITEMS}
        for n in range(30):
            assert session.get(f"{server.url}/fetch/{n}?status={503 if n % 10 == 0 else 200}", timeout=10,
                               headers={"Connection": "close"}).json()["status"] in (200, 503)

        def merged():
            body = server.get("/api/admin/queries?window=600", headers=bearer(viewer)).json()
            endpoints = {(e["endpoint"], e["method"]): e["queries"] for e in body["endpoints"]}
            return body if endpoints.get(("/items", "GET")) == 2500 else None

        body = wait_until(merged, timeout=20, message="2,500 statements merged")
        statements = {row["sql"]: row for row in body["statements"]}
        assert statements["SELECT item.name FROM item WHERE item.id = ?"]["count"] == 100 * ITEMS
        assert statements["SELECT item.id FROM item ORDER BY item.id"]["count"] == 100
        assert [(f["endpoint"], f["count"], f["executions"]) for f in body["n_plus_one"]] == [("/items", 100, ITEMS)]
        outgoing = wait_until(lambda: [g for g in server.get("/api/admin/outgoing?window=600",
                                                             headers=bearer(viewer)).json()["groups"]
                                       if g["count"] == 30], timeout=20, message="30 calls merged")
        assert [(g["host"], g["method"], g["path"], g["errors"]) for g in outgoing] == [
            (f"127.0.0.1:{upstream.port}", "GET", "/users/{id}/orders", 3)]
    finally:
        upstream.stop()


# ---------------------------------------------------------------- benchmark


def test_bench_sql_runs_and_counts_every_statement(capsys, monkeypatch, redis_url):
    """bench/bench_sql.py, small: it asserts every statement it timed was recorded, and prints its tables."""
    spec = importlib.util.spec_from_file_location("bench_sql", Path(ROOT) / "bench" / "bench_sql.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.STATEMENTS, bench.CALLS, bench.ROUNDS = 500, 50, 3
    monkeypatch.setenv("REDIS_URL", redis_url)
    bench.main()
    out = capsys.readouterr().out
    assert "µs per statement" in out and "µs per call" in out
