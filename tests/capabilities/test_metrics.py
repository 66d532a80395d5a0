"""Fleet metrics: the histogram, the Redis layout, the query, the API, /metrics, the panel, traffic."""
import importlib.util
import json
import math
import os
import random
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from bs4 import BeautifulSoup
from prometheus_client.parser import text_string_to_metric_families

from monitor.capabilities.metrics import codec, histogram, query, ship
from monitor.core.state import state
from monitor.web import hooks
from support import bearer, wait_until

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- histogram


def exact_percentile(values, q):
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def dense(values_ns):
    hist = [0] * histogram.NBUCKETS
    for ns in values_ns:
        hist[histogram.bucket_index(ns)] += 1
    return [hist]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_percentile_is_within_two_percent(seed):
    rnd = random.Random(seed)
    values = [rnd.lognormvariate(math.log(5e6), 1.5) for _ in range(5000)]  # ns, ~5 ms median
    got = histogram.percentile_rows(np.array(dense(values), dtype=float), [q / 100 for q in range(1, 100)])[0]
    for q, estimate_ms in zip(range(1, 100), got):
        truth_ms = exact_percentile(values, q / 100) / 1e6
        assert abs(estimate_ms - truth_ms) / truth_ms <= 0.02, (q, estimate_ms, truth_ms)


def test_histograms_merge_by_adding_counts():
    rnd = random.Random(7)
    a = [rnd.uniform(1e5, 1e8) for _ in range(1000)]
    b = [rnd.uniform(1e6, 1e9) for _ in range(3000)]
    merged = np.array(dense(a), dtype=float) + np.array(dense(b), dtype=float)
    whole = np.array(dense(a + b), dtype=float)
    assert (merged == whole).all()
    p99 = histogram.percentile_rows(merged, [0.99])[0][0]
    assert abs(p99 - exact_percentile(a + b, 0.99) / 1e6) / p99 <= 0.02


def test_detail_blobs_round_trip():
    acc = {("/a", "GET", "2xx"): [3, 3_000_000, {200: 2, 210: 1}], ("/b", "POST", "5xx"): [1, 5000, {30: 1}]}
    names, sums, triples = codec.decode_detail(codec.encode_detail(acc))
    assert names == [["/a", "GET", "2xx"], ["/b", "POST", "5xx"]]
    assert sums.tolist() == [[3, 3000], [1, 5]]
    assert triples.tolist() == [[0, 200, 2], [0, 210, 1], [1, 30, 1]]


def test_rss_slope_is_megabytes_per_minute():
    assert ship.rss_slope([(t, 100 + t / 60 * 2) for t in range(0, 300, 5)]) == pytest.approx(2.0)
    assert ship.rss_slope([(0, 100), (5, 100)]) == 0.0


def test_tiers_keep_windows_coarse_enough_to_read_fast():
    assert (query.detail_tier(10), query.series_tier(10)) == (10, 1)
    assert (query.detail_tier(60), query.series_tier(60)) == (10, 1)
    assert (query.detail_tier(3600), query.series_tier(3600)) == (600, 60)
    assert (query.detail_tier(86400), query.series_tier(86400)) == (3600, 600)


# ---------------------------------------------------------------- shipping and query, in process


def flushed(app, now=None):
    monitor = state(app)
    monitor.flusher.stop(flush=False)
    monitor.flusher.tick(now)
    return monitor


def test_query_merges_what_the_shipper_wrote(app, client, monkeypatch):
    monkeypatch.setattr(hooks, "SAMPLE", 0)  # every request times the timing point itself
    app.config["PROPAGATE_EXCEPTIONS"] = False
    for _ in range(4):
        client.get("/demo/hello")
    client.get("/demo/error")
    client.get("/missing")
    monitor = flushed(app)
    monitor.flusher.tick()  # its sample carries the CPU of the ticks before
    body = query.query(monitor.store, 60)
    assert body["requests"]["total"] == 6 and body["requests"]["errors"] == 1
    assert body["requests"]["by_status"] == {"2xx": 4, "3xx": 0, "4xx": 1, "5xx": 1}
    assert body["requests"]["error_rate"] == pytest.approx(1 / 6, abs=1e-4)
    rows = {(r["endpoint"], r["method"]): r for r in body["endpoints"]}
    assert rows[("/demo/hello", "GET")]["count"] == 4 and rows[("/demo/error", "GET")]["errors"] == 1
    assert rows[("<unmatched>", "GET")]["count"] == 1
    assert [(w["host"], w["pid"], w["requests"]) for w in body["workers"]] == [("testhost", os.getpid(), 6)]
    assert body["workers"][0]["rss_mb"] > 0
    assert sum(p["requests"] for p in body["series"]) == 6 and len(body["series"]) in (60, 61)
    assert body["latency_ms"]["p50"] <= body["latency_ms"]["p95"] <= body["latency_ms"]["max"]
    assert body["system"]["memory_percent"] > 0 and len(body["system"]["load_avg"]) == 3
    cost = body["overhead"]
    assert cost["path_us_per_request"] > 0 and cost["flusher_us_per_request"] > 0
    assert cost["cpu_us_per_request"] == pytest.approx(cost["path_us_per_request"] + cost["flusher_us_per_request"],
                                                       abs=0.002)
    assert cost["flush_ms"] > 0 and "flusher_ms_per_s" in cost  # None until a worker is 0.05 s old
    assert query.query(monitor.store, 60, host="elsewhere")["requests"]["total"] == 0
    assert query.query(monitor.store, 60, pid=os.getpid())["requests"]["total"] == 6


def test_every_metrics_key_has_a_ttl(app, client):
    client.get("/demo/hello")
    monitor = flushed(app)
    names = list(monitor.store.scan_prefix("m"))
    assert len(names) >= 10
    for name in names:
        assert monitor.store.redis.ttl(name) > 0, name


def test_an_old_window_no_longer_sees_the_requests(app, client):
    client.get("/demo/hello")
    monitor = flushed(app)
    later = time.time() + 300
    assert query.query(monitor.store, 60, now=later)["requests"]["total"] == 0
    assert query.query(monitor.store, 600, now=later)["requests"]["total"] == 1


def test_a_failed_send_is_put_back_and_shipped_next_time(app, client):
    monitor = state(app)
    monitor.flusher.stop(flush=False)
    shipper = monitor.flusher.shippers[0]
    for _ in range(3):
        client.get("/demo/hello")
    now = time.time()
    lost = monitor.store.redis.pipeline(transaction=False)
    undo = shipper(lost, now - 2)  # two seconds ago: its 1 s bucket is closed by now
    undo()  # as the flusher does when the pipeline fails; ``lost`` is never sent
    client.get("/demo/hello")
    pipe = monitor.store.redis.pipeline(transaction=False)
    shipper(pipe, now)
    pipe.execute()
    body = query.query(monitor.store, 60, now=now)
    assert body["requests"]["total"] == 4
    assert sum(p["requests"] for p in body["series"]) == 4
    assert query.totals(monitor.store) == {("/demo/hello", "GET", "2xx"): 4}


# ---------------------------------------------------------------- API, /metrics, panel


def test_api_answers_the_contract_body(app, client, make_user):
    client.get("/demo/hello")
    flushed(app)
    body = client.get("/api/admin/metrics?window=60", headers=bearer(make_user("viewer"))).get_json()
    assert set(body) >= {"requests", "latency_ms", "endpoints", "workers", "system", "series",
                         "window_s", "generated_at"}
    assert set(body["requests"]) == {"total", "rate_per_s", "errors", "error_rate", "by_status"}
    assert set(body["latency_ms"]) == {"p50", "p90", "p95", "p99", "max", "mean"}
    assert set(body["endpoints"][0]) >= {"endpoint", "method", "count", "errors", "p50_ms", "p95_ms", "p99_ms"}
    assert set(body["workers"][0]) >= {"host", "pid", "requests", "rss_mb", "cpu_percent"}
    assert set(body["system"]) >= {"cpu_percent", "memory_percent", "load_avg"}
    assert set(body["series"][0]) == {"t", "requests", "errors", "p95_ms"}
    assert body["window_s"] == 60 and body["requests"]["total"] == 1


@pytest.mark.parametrize("query", ["window=5", "window=86401", "window=abc", "pid=x", "pid=0"])
def test_api_refuses_bad_input_with_400(client, make_user, query):
    response = client.get(f"/api/admin/metrics?{query}", headers=bearer(make_user("viewer")))
    assert response.status_code == 400 and response.get_json()["error"] == "bad_request"


def test_strangers_get_neither_the_api_nor_the_exposition(client):
    for path in ("/api/admin/metrics", "/metrics"):
        response = client.get(path)
        assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def prometheus_agrees_with_json(text, body):
    """Assert the exposition carries the same numbers as the JSON body."""
    found = families(text)
    window_counts = {(s.labels["endpoint"], s.labels["method"]): s.value
                     for s in found["monitor_endpoint_window_requests"].samples}
    assert window_counts == {(r["endpoint"], r["method"]): r["count"] for r in body["endpoints"]}
    p50 = {(s.labels["endpoint"], s.labels["method"]): s.value
           for s in found["monitor_endpoint_window_latency_seconds"].samples if s.labels["quantile"] == "0.5"}
    assert p50 == {(r["endpoint"], r["method"]): pytest.approx(r["p50_ms"] / 1000) for r in body["endpoints"]}
    lifetime = {}
    for s in found["monitor_http_requests"].samples:
        if s.name.endswith("_total"):
            key = (s.labels["endpoint"], s.labels["method"])
            lifetime[key] = lifetime.get(key, 0) + s.value
    assert lifetime == window_counts
    assert found["monitor_window_requests"].samples[0].value == body["requests"]["total"]
    workers = {(s.labels["host"], int(s.labels["pid"])): s.value for s in found["monitor_worker_window_requests"].samples}
    assert workers == {(w["host"], w["pid"]): w["requests"] for w in body["workers"]}


def test_prometheus_exposition_agrees_with_the_json(app, client, auth, make_user):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    for path in ("/demo/hello", "/demo/hello", "/demo/error", "/demo/cached/x"):
        client.get(path)
    flushed(app)
    viewer = make_user("viewer")
    body = client.get("/api/admin/metrics", headers=bearer(viewer)).get_json()
    response = client.get("/metrics", headers=bearer(viewer))
    assert response.status_code == 200 and response.mimetype == "text/plain"
    prometheus_agrees_with_json(response.get_data(as_text=True), body)
    auth.login(viewer)
    assert client.get("/metrics").status_code == 200  # a viewer session works too
    assert client.get("/metrics?window=3").status_code == 400


def test_panel_shows_totals_sortable_table_charts_and_own_cost(app, client, auth, make_user, monkeypatch):
    monkeypatch.setattr(hooks, "SAMPLE", 0)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    for path in ["/demo/hello"] * 3 + ["/demo/error"] + ["/demo/sleep?ms=30"] * 2:
        client.get(path)
    flushed(app)
    auth.login(make_user("viewer"))
    soup = BeautifulSoup(client.get("/admin/panels/metrics?sort=p50_ms&window=300").get_data(as_text=True),
                         "html.parser")
    assert soup.select_one("#metrics-total").text == "6"
    names = [row.select("td")[0].text for row in soup.select("table.metrics-endpoints tbody tr")]
    assert names[0] == "GET /demo/sleep"  # slowest first under ?sort=p50_ms
    assert soup.select_one('th[aria-sort] a').text == "p50"
    assert soup.select_one("table.metrics-endpoints tbody td.num:nth-of-type(4)").text.endswith(" ms")
    sort_link = soup.select_one("table.metrics-endpoints th a")
    assert "sort=endpoint" in sort_link["href"] and "window=300" in sort_link["hx-get"]
    series = json.loads(soup.select_one("script#metrics-series[type='application/json']").string)
    assert set(series) == {"t", "requests", "errors", "p95_ms"} and len(series["t"]) == len(series["requests"]) >= 30
    assert sum(series["requests"]) * 10 == pytest.approx(6, abs=0.01)  # per second, from 10 s buckets
    assert [c["data-chart"] for c in soup.select(".chart")] == ["traffic", "latency"]
    assert soup.select_one('#metrics-window option[selected]')["value"] == "300"
    assert f"testhost|{os.getpid()}" in [o["value"] for o in soup.select("#metrics-worker option")]
    cost = " ".join(soup.select_one(".metrics-cost").text.split())
    assert re.search(r"Monitor's own cost: [0-9.,]+ µs CPU per request \([0-9.,]+ µs in its timing point, timed on "
                     r"one request in 1; [0-9.,]+ µs in the workers' flusher threads, which use \S+ ms of CPU a "
                     r"second each\)", cost), cost
    assert "of Redis" in cost and "Not included: the CPU of Redis and of the gunicorn master" in cost
    by_count = BeautifulSoup(client.get("/admin/panels/metrics?sort=bogus").get_data(as_text=True), "html.parser")
    assert by_count.select("table.metrics-endpoints tbody tr td")[0].text == "GET /demo/hello"


# ---------------------------------------------------------------- a real fleet


def api(server, user, window=60, **params):
    args = "&".join(f"{k}={v}" for k, v in {"window": window, **params}.items())
    return server.get(f"/api/admin/metrics?{args}", headers=bearer(user)).json()


def test_fleet_totals_percentiles_workers_and_exposition(gunicorn, make_user):
    server = gunicorn(workers=3)
    workers = server.wait_workers(3)
    viewer = make_user("viewer")
    sent = {"/demo/hello": 60, "/demo/cached/<key>": 24, "/demo/error": 9}
    for _ in range(sent["/demo/hello"]):
        assert server.get("/demo/hello").status_code == 200
    for i in range(sent["/demo/cached/<key>"]):
        server.get(f"/demo/cached/k{i % 4}")
    for _ in range(sent["/demo/error"]):
        assert server.get("/demo/error").status_code == 500
    client_ms = []
    for _ in range(30):
        started = time.perf_counter()
        server.get("/demo/sleep?ms=50")
        client_ms.append((time.perf_counter() - started) * 1000)
    sent["/demo/sleep"] = 30
    expected = sum(sent.values())
    body = wait_until(lambda: (b := api(server, viewer)) and b["requests"]["total"] == expected and b,
                      timeout=5, message="one flush interval")
    counts = {r["endpoint"]: r["count"] for r in body["endpoints"]}
    assert counts == sent
    assert body["requests"]["errors"] == 9 and body["requests"]["by_status"]["5xx"] == 9
    sleep = next(r for r in body["endpoints"] if r["endpoint"] == "/demo/sleep")
    # The server's truth lies in [50 ms, client-measured]; the sketch adds at most 2 %.
    assert 50 * 0.98 <= sleep["p50_ms"] <= sorted(client_ms)[15] * 1.02 + 2
    listed = {w["pid"]: w for w in body["workers"]}
    assert set(workers) <= set(listed)
    assert sum(listed[pid]["requests"] for pid in workers) == expected
    assert all(listed[pid]["rss_mb"] > 0 for pid in workers)
    one = workers[0]
    assert api(server, viewer, pid=one)["requests"]["total"] == listed[one]["requests"]
    text = server.get("/metrics", headers=bearer(viewer)).text
    prometheus_agrees_with_json(text, api(server, viewer))


def test_a_sigkilled_worker_loses_at_most_one_flush_interval(gunicorn, make_user):
    interval = 0.5
    server = gunicorn(workers=3, env={"MONITOR_FLUSH_INTERVAL": str(interval)})
    server.wait_workers(3)
    viewer = make_user("viewer")
    sent_at = []
    victim = server.worker_pids()[0]
    for _ in range(120):  # about 3 s of steady traffic over all three workers
        server.get("/demo/hello")
        sent_at.append(time.time())
        time.sleep(0.02)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.time()
    server.wait_workers(3)
    # Everything the victim answered before its last flush interval must have been shipped.
    settled = len([t for t in sent_at if t < killed_at - interval - 0.1])
    body = wait_until(lambda: (b := api(server, viewer)) and b["requests"]["total"] >= settled and b,
                      timeout=5, message="the survivors' flush")
    time.sleep(2 * interval)
    total = api(server, viewer)["requests"]["total"]
    assert settled <= total <= len(sent_at)
    victim_row = next(w for w in body["workers"] if w["pid"] == victim)
    assert victim_row["requests"] > 0


def test_traffic_command_drives_every_demo_route(gunicorn, make_user, runner):
    server = gunicorn(workers=2)
    viewer = make_user("viewer")
    result = runner.invoke(args=["monitor", "traffic", "--url", server.url, "--seconds", "2", "--rate", "40"])
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    sent = int(first.split()[0])
    assert 40 <= sent <= 81 and "/demo/hello" in result.stdout
    progress = result.stderr.splitlines()
    assert len(progress) >= 1 and all(" sent " in line and " errors" in line for line in progress), progress
    body = wait_until(lambda: (b := api(server, viewer)) and b["requests"]["total"] == sent and b,
                      timeout=10, message="the traffic to be counted")
    routes = {r["endpoint"] for r in body["endpoints"]}
    assert {"/demo/hello", "/demo/sleep", "/demo/cached/<key>"} <= routes


def test_bench_request_cost_runs_small_and_prints_its_table(capsys):
    """The benchmark of target (a), small: three app processes serve their rounds and it prints its table."""
    spec = importlib.util.spec_from_file_location("bench_request_cost", ROOT / "bench" / "bench_request_cost.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.main(["--rounds", "2", "--requests", "300"])
    assert {name: len(rounds) for name, rounds in results.items()} == {
        "bare Flask": 2, "bare Flask (A/A control)": 2, "monitor (create_app)": 2}
    assert all(process > 0 and thread > 0 for rounds in results.values() for process, thread in rounds)
    lines = capsys.readouterr().out.splitlines()
    rows = {line[:34].strip(): line[34:].split() for line in lines[3:]}
    assert set(rows) == {"bare Flask", "bare Flask (A/A control)", "monitor (create_app)", "added by the monitor",
                         "A/A: control minus bare (noise)"}
    assert rows["added by the monitor"][4:] == ["target", "≤", "3"]
    assert all(len(cells) >= 4 for cells in rows.values())


def test_unsent_buckets_are_capped_and_the_coarser_tiers_keep_the_count(app, client):
    """A 130 s outage with a request each second: the 1 s tier holds its last MAX_PENDING
    buckets, the 10 s tier (the per-endpoint table of this window) all 130 requests."""
    monitor = state(app)
    client.get("/health")  # starts this process's flusher; stopped so that the test drives it
    monitor.flusher.stop(flush=False)
    shipper = monitor.flusher.shippers[0]
    start = int(time.time()) - 200
    for second in range(130):
        client.get("/demo/hello")
        undo = shipper(monitor.store.redis.pipeline(transaction=False), start + second + 0.5)
        undo()  # never sent, as while Redis is down
    assert len(shipper.open[("s", 1)]) == ship.MAX_PENDING + 1  # and the open one
    pipe = monitor.store.redis.pipeline(transaction=False)
    shipper(pipe, start + 130.5)
    pipe.execute()
    body = query.query(monitor.store, 200, now=start + 131)
    assert query.series_tier(200) == 1 and query.detail_tier(200) == 10
    assert body["requests"]["total"] == 130
    assert [p["requests"] for p in body["series"] if p["requests"]] == [1] * ship.MAX_PENDING
    assert min(p["t"] for p in body["series"] if p["requests"]) == start + 130 - ship.MAX_PENDING
