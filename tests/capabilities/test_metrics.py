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

from monitor.auth.users import Users
from monitor.capabilities.metrics import codec, compact, histogram, layout, query, ship
from monitor.core.state import state
from monitor.core.store import Store
from monitor.web import hooks
from support import Auth, UserFactory, bearer, need_program, wait_until

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


def test_records_round_trip_and_merge_exactly():
    acc = {("/a", "GET", "2xx"): [3, 3_000_000, {200: 2, 210: 1}], ("/b", "POST", "5xx"): [1, 5000, {30: 1}]}
    record = codec.decode(codec.encode(acc))
    assert record.names == [("/a", "GET", "2xx"), ("/b", "POST", "5xx")]
    assert record.counts.tolist() == [3, 1] and record.sums.tolist() == [3000, 5]
    assert list(zip(record.rows.tolist(), record.buckets.tolist(), record.hits.tolist())) == [
        (0, 200, 2), (0, 210, 1), (1, 30, 1)]
    other = {("/a", "GET", "2xx"): [2, 1_000_000, {200: 1, 400: 2**33}]}  # a count past 32 bits
    merged = codec.merge([record, codec.decode(codec.encode(other))])
    again = codec.decode(codec.pack(merged, compress=True))  # as the long tiers store it
    cells = {(again.names[r], b): h for r, b, h in zip(again.rows, again.buckets, again.hits)}
    assert cells == {(("/a", "GET", "2xx"), 200): 3, (("/a", "GET", "2xx"), 210): 1,
                     (("/a", "GET", "2xx"), 400): 2**33, (("/b", "POST", "5xx"), 30): 1}
    assert dict(zip(again.names, again.counts.tolist())) == {("/a", "GET", "2xx"): 5, ("/b", "POST", "5xx"): 1}


@pytest.mark.parametrize("seed", [4, 5])
def test_percentiles_stay_within_two_percent_after_merging_many_workers_records(seed):
    """Latencies spread over 64 workers' records, merged in random groups (as compactions and
    queries do): every percentile of every endpoint is within 2% of the truth at its rank."""
    rnd = random.Random(seed)
    truth = {e: [] for e in range(3)}
    records = []
    for _ in range(64):
        acc = {}
        for e in truth:
            for _ in range(rnd.randint(0, 40)):
                ns = rnd.lognormvariate(math.log(2e6 * (e + 1)), 1.0)
                truth[e].append(ns)
                row = acc.setdefault((f"/e{e}", "GET", "2xx"), [0, 0, {}])
                row[0] += 1
                row[1] += int(ns)
                idx = histogram.bucket_index(ns)
                row[2][idx] = row[2].get(idx, 0) + 1
        records.append(codec.decode(codec.encode(acc)))
    rnd.shuffle(records)
    partial = [codec.decode(codec.pack(codec.merge(records[i:i + 7]), i % 2 == 0)) for i in range(0, 64, 7)]
    merged = codec.merge(partial)
    rows = np.array([list(merged.names).index((f"/e{e}", "GET", "2xx")) for e in truth])
    hist = codec.dense(merged, np.arange(len(merged.names)), len(merged.names))[rows]
    qs = [q / 100 for q in range(1, 100)]
    for e, values in truth.items():
        assert int(merged.counts[rows[e]]) == len(values)
        for q, got in zip(qs, histogram.percentile_rows(hist[e:e + 1], qs)[0]):
            expected = exact_percentile(values, q) / 1e6
            assert abs(got - expected) / expected <= 0.02, (e, q, got, expected)


def test_rss_slope_is_megabytes_per_minute():
    assert ship.rss_slope([(t, 100 + t / 60 * 2) for t in range(0, 300, 5)]) == pytest.approx(2.0)
    assert ship.rss_slope([(0, 100), (5, 100)]) == 0.0


@pytest.mark.parametrize("window, edge, most", [
    (60, 10, 8), (300, 10, 12), (3600, 60, 16), (86400, 3600, 12), (7 * 86400, 21600, 12), (30 * 86400, 86400, 12)])
def test_a_window_is_covered_by_few_buckets_back_to_its_start(window, edge, most):
    now = 1_765_000_123.4
    for kind in ("d", "h", "w"):
        buckets = query.plan(kind, window, now)
        assert buckets[0][1] <= now - window < buckets[0][1] + buckets[0][0]  # reaches back to the start
        assert all(a + t == b for (t, a), (_, b) in zip(buckets, buckets[1:]))  # no gap, no overlap
        assert buckets[-1][1] <= now < buckets[-1][1] + buckets[-1][0]  # up to now
        assert all(query.kept(kind, t, s, now) for t, s in buckets[1:])
        assert len(buckets) <= 40
    assert query.plan("d", window, now)[0][0] == edge and len(query.plan("d", window, now)) <= most


@pytest.mark.parametrize("window, tier", [
    (60, 1), (300, 10), (3600, 60), (21600, 600), (86400, 3600), (7 * 86400, 3600), (30 * 86400, 86400)])
def test_the_chart_has_at_least_24_points_from_a_tier_kept_that_long(window, tier):
    now = 1_765_000_123.4
    assert query.resolution("s", window, now) == tier
    assert query.kept("s", tier, int((now - window) // tier) * tier, now)


def test_the_hour_tier_is_kept_thirty_days():
    assert layout.TIERS["d"][3600] >= 30 * 86400 and query.MAX_WINDOW_S == 30 * 86400


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


def test_every_metrics_key_has_a_ttl_and_every_tier_gets_the_request(app, client):
    client.get("/demo/hello")
    monitor = flushed(app)
    later = time.time() + 2 * 86400
    for i in range(8):  # each roll-up is due a grace (1.4 s here) after the one below it
        monitor.flusher.tick(later + 2 * i)
    names = list(monitor.store.scan_prefix("m"))
    for kind, tiers in layout.TIERS.items():
        found = {layout.parse(n)[1] for n in names if n.split(":")[2] == kind}
        assert found == set(tiers), kind
        top = next(n for n in names if n.split(":")[2] == kind and layout.parse(n)[1] == max(tiers))
        assert codec.decode(monitor.store.raw.lindex(top, 0)).counts.sum() == 1
    assert not [n for n in names if ":lock:" in n]
    for name in names:
        assert monitor.store.redis.ttl(name) > 0, name


def test_an_old_window_no_longer_sees_the_requests(app, client):
    client.get("/demo/hello")
    monitor = flushed(app)
    later = time.time() + 300
    for at in (later - 200, later - 100):  # the flushes meanwhile roll the closed buckets up
        monitor.flusher.tick(at)
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


@pytest.mark.parametrize("query", ["window=5", "window=2592001", "window=abc", "pid=x", "pid=0"])
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
    assert set(series) == {"t", "requests", "errors", "p95_ms", "markers"} and \
        len(series["t"]) == len(series["requests"]) >= 30 and series["markers"] == []
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


@pytest.fixture(params=["redis-server", "redis-cluster"])
def shared_redis(request, system_redis):
    """The Redis two hosts share: one redis-server, or a 3-master Redis Cluster named by one node."""
    return system_redis().url if request.param == "redis-server" else request.getfixturevalue("redis_cluster").url


def test_two_hosts_merge_exact_totals_percentiles_workers_and_exposition(gunicorn, shared_redis, prefix):
    """Two gunicorn masters (hosts a and b, two workers each) on one shared Redis: the fleet's
    answer merges them exactly, and each host's and each worker's scope adds up to it."""
    viewer = UserFactory(Users(Store(shared_redis, prefix)))("viewer")
    hosts = {name: gunicorn(workers=2, env={"REDIS_URL": shared_redis, "MONITOR_HOST_NAME": name}, name=name)
             for name in ("host-a", "host-b")}
    pids = {name: server.wait_workers(2) for name, server in hosts.items()}
    a, b = hosts["host-a"], hosts["host-b"]
    sent = {"host-a": {"/demo/hello": 40, "/demo/cached/<key>": 24, "/demo/error": 9},
            "host-b": {"/demo/hello": 20, "/demo/sleep": 30}}
    for server, path, n in ((a, "/demo/hello", 40), (b, "/demo/hello", 20), (a, "/demo/error", 9)):
        for _ in range(n):
            server.get(path)
    for i in range(24):
        a.get(f"/demo/cached/k{i % 4}")
    client_ms = []
    for _ in range(30):
        started = time.perf_counter()
        b.get("/demo/sleep?ms=50")
        client_ms.append((time.perf_counter() - started) * 1000)
    expected = sum(sum(v.values()) for v in sent.values())
    body = wait_until(lambda: (x := api(a, viewer)) and x["requests"]["total"] == expected and x,
                      timeout=5, message="one flush interval")
    counts = {r["endpoint"]: r["count"] for r in body["endpoints"]}
    assert counts == {"/demo/hello": 60, "/demo/cached/<key>": 24, "/demo/error": 9, "/demo/sleep": 30}
    assert body["requests"]["errors"] == 9 and body["requests"]["by_status"]["5xx"] == 9
    sleep = next(r for r in body["endpoints"] if r["endpoint"] == "/demo/sleep")
    # The server's truth lies in [50 ms, client-measured]; the sketch adds at most 2 %.
    assert 50 * 0.98 <= sleep["p50_ms"] <= sorted(client_ms)[15] * 1.02 + 2
    assert api(b, viewer)["requests"]["by_status"] == body["requests"]["by_status"]  # whichever host answers
    listed = {(w["host"], w["pid"]): w for w in body["workers"]}
    ours = [(name, pid) for name, found in pids.items() for pid in found]
    assert set(ours) <= set(listed) and all(listed[w]["rss_mb"] > 0 for w in ours)
    assert sum(listed[w]["requests"] for w in ours) == expected
    for name, server in hosts.items():
        scoped = api(server, viewer, host=name)
        assert scoped["requests"]["total"] == sum(sent[name].values()) and scoped["endpoints"] == []
        assert sum(w["requests"] for w in scoped["workers"]) == sum(sent[name].values())
        assert {w["host"] for w in scoped["workers"]} == {name}
    slow = api(b, viewer, host="host-b")["latency_ms"]
    assert 50 * 0.98 <= slow["p95"] <= sorted(client_ms)[-1] * 1.02 + 2
    one = ours[0]
    worker = api(a, viewer, host=one[0], pid=one[1])
    assert worker["requests"]["total"] == listed[one]["requests"] and worker["latency_ms"]["p50"] is None
    prometheus_agrees_with_json(a.get("/metrics", headers=bearer(viewer)).text, api(a, viewer))


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
    """The benchmark of target (a), small: two groups of three app processes serve their rounds and it prints its table."""
    spec = importlib.util.spec_from_file_location("bench_request_cost", ROOT / "bench" / "bench_request_cost.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.main(["--pairs", "2", "--rounds", "2", "--requests", "300"])
    assert {name: [len(rounds) for rounds in groups] for name, groups in results.items()} == {
        "bare Flask": [2, 2], "bare Flask (A/A control)": [2, 2], "monitor (create_app)": [2, 2]}
    assert all(process > 0 and thread > 0 for groups in results.values() for rounds in groups
               for process, thread in rounds)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("added by the monitor in each group") and len(lines[-1].split(": ")[1].split(", ")) == 2
    rows = {line[:34].strip(): line[34:].split() for line in lines[3:-1]}
    assert set(rows) == {"bare Flask", "bare Flask (A/A control)", "monitor (create_app)", "added by the monitor",
                         "A/A: control minus bare (noise)"}
    assert rows["added by the monitor"][4:] == ["target", "≤", "3"]
    assert all(len(cells) >= 4 for cells in rows.values())


@pytest.mark.slow
def test_bench_fleet_runs_small_and_counts_every_request():
    """The fleet simulator at the suite's size: it checks itself that every request recorded
    through the real recorder and shipper is counted once, and prints its tables."""
    need_program("redis-server", "the fleet simulator")
    spec = importlib.util.spec_from_file_location("bench_fleet", ROOT / "bench" / "bench_fleet.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.main(["--workers", "2,6", "--endpoints", "20", "--rate", "60", "--live", "2", "--runs", "2",
                       "--busy", "2", "--busy-rate", "50"])
    assert [r["n"] for r in rows] == [2, 6] and all(r["failures"] == 0 for r in rows)
    assert all(0 < r["metrics_mib"] < 5 and set(r["latency"]) == set(bench.WINDOWS) for r in rows)


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
    assert len([t for t, _ in shipper.pending["s"] if t == 1]) == ship.MAX_PENDING + 1  # and the open one
    pipe = monitor.store.redis.pipeline(transaction=False)
    shipper(pipe, start + 130.5)
    pipe.execute()
    shipper.compactor(start + 135)  # the roll-ups of the next flushes
    shipper.compactor(start + 195)
    body = query.query(monitor.store, 200, now=start + 131)
    assert query.resolution("s", 200, start + 131) == 1 and query.plan("d", 200, start + 131)[0][0] == 10
    assert body["requests"]["total"] == 130
    assert [p["requests"] for p in body["series"] if p["requests"]] == [1] * ship.MAX_PENDING
    assert min(p["t"] for p in body["series"] if p["requests"]) == start + 130 - ship.MAX_PENDING


# ---------------------------------------------------------------- compaction, scopes, long windows


def write(store, name, *accs):
    """Append a record of each delta to the list ``name`` (as the flushes of workers do)."""
    store.raw.rpush(name, *[codec.encode(acc) for acc in accs])
    store.raw.expire(name, 600)


def hello(count, idx=250):
    return {("/hello", "GET", "2xx"): [count, count * 1_000_000, {idx: count}]}


def counts(store, name):
    return [int(codec.decode(blob).counts.sum()) for blob in store.raw.lrange(name, 0, -1)]


def test_a_roll_up_keeps_what_was_appended_meanwhile_and_counts_everything_once(store):
    compactor = compact.Compactor(store, grace=1)
    base = int(time.time()) // 60 * 60
    name, parent = layout.name(store, "d", 10, base), layout.name(store, "d", 60, base)
    lock = compact.lock_key(store, name)
    write(store, name, *[hello(1)] * 40)
    blobs = compactor.claim(keys=[name, lock], args=[1, compact.LOCK_MS, "me"])
    assert len(blobs) == 40 and compactor.claim(keys=[name, lock], args=[1, compact.LOCK_MS, "you"]) is None
    write(store, name, hello(5))  # a flush lands while the merge runs
    merged = codec.merge([codec.decode(b) for b in blobs])
    args = [len(blobs), "me", codec.pack(merged, False), layout.expires("d", 60, base),
            codec.pack(merged, False, rolled=True)]
    assert compactor.swap(keys=[name, lock, parent], args=[len(blobs), "you", *args[2:]]) == 0
    assert compactor.swap(keys=[name, lock, parent], args=args) == 1
    assert counts(store, name) == [40, 5] and 0 < store.raw.ttl(name) <= 600
    assert counts(store, parent) == [40] and store.raw.ttl(parent) > 2 * 3600 - 100
    # a retried swap (its answer lost) finds its lock gone and does nothing
    assert compactor.swap(keys=[name, lock, parent], args=args) == 0
    assert compactor.compact({name: True}, now=base + 100) == 1  # the late record rolls up too, alone
    assert counts(store, name) == [45] and codec.rolled(store.raw.lindex(name, 0))
    assert counts(store, parent) == [40, 5] and compactor.closing == {parent: base + 100 + 1}
    assert compactor.compact({name: True}, now=base + 100) == 0  # nothing left to roll up


def test_a_list_is_merged_at_every_thirty_second_record_and_rolled_up_after_it_closed(app, client):
    monitor = flushed(app)
    shipper = monitor.flusher.shippers[0]
    store = monitor.store
    base = int(time.time()) // 60 * 60
    name = layout.name(store, "d", 10, base)
    write(store, name, *[hello(1)] * compact.EVERY)
    shipper.landed([("RPUSH", name, b"")], [compact.EVERY])
    shipper.compactor(time.time())
    assert counts(store, name) == [compact.EVERY] and not codec.rolled(store.raw.lindex(name, 0))
    write(store, name, hello(2), hello(3))
    shipper.compactor.closing = {name: base + 15}
    shipper.compactor(base + 14)
    assert store.raw.llen(name) == 3  # not yet due
    shipper.compactor(base + 15)
    assert counts(store, name) == [compact.EVERY + 5] and codec.rolled(store.raw.lindex(name, 0))
    assert counts(store, layout.name(store, "d", 60, base)) == [compact.EVERY + 5]


def test_a_query_counts_every_request_once_before_during_and_after_roll_ups(app, client):
    """Flushes into closed and open buckets of the last half minute (within ``layout.LAG_S``),
    then roll-ups one tier at a time: every answer on the way is the same (a rolled record is
    never counted beside its parent's copy, nor lost)."""
    monitor = flushed(app)
    now = time.time()
    for i in range(7):
        client.get("/demo/hello")
        client.get("/demo/hello")
        monitor.flusher.tick(now - 28 + 4 * i)
    compactor = monitor.flusher.shippers[0].compactor
    answers = []
    for _ in range(8):
        answers.append([query.query(monitor.store, w, now=now) for w in (60, 300, 3600, 86400)])
        compactor.compact({n: True for kind in "dsw" for n in monitor.store.scan_prefix("m", kind)}, now)
    assert [a["requests"]["total"] for a in answers[0]] == [14] * 4
    for answer in answers:
        assert [a["requests"] for a in answer] == [a["requests"] for a in answers[0]]
        assert [a["endpoints"] for a in answer] == [a["endpoints"] for a in answers[0]]
        assert [a["series"] for a in answer] == [a["series"] for a in answers[0]]
        assert [a["workers"][0]["requests"] for a in answer] == [14] * 4


def test_host_and_worker_scopes_show_what_they_keep(app, client):
    monitor = state(app)
    client.get("/health")
    monitor.flusher.stop(flush=False)
    now = time.time()
    for host, pid, count, idx in (("a", 1, 30, 250), ("a", 2, 10, 300), ("b", 3, 5, 200)):
        monitor.process.host, monitor.process.pid = host, pid
        for _ in range(count):
            monitor.recorder.record("/x", "GET", 200, int(histogram.BUCKET_MS[idx] * 1e6))
        monitor.recorder.record("/x", "GET", 500, int(histogram.BUCKET_MS[idx] * 1e6))
        monitor.flusher.tick(now)
    fleet = query.query(monitor.store, 60, now=now)
    assert fleet["requests"]["total"] == 48 and fleet["scope"] == {"kind": "fleet", "endpoints": True,
                                                                    "percentiles": True}
    assert {(w["host"], w["pid"]): w["requests"] for w in fleet["workers"]} == {("a", 1): 31, ("a", 2): 11,
                                                                                ("b", 3): 6}
    host = query.query(monitor.store, 60, host="a", now=now)
    assert host["requests"]["total"] == 42 and host["requests"]["errors"] == 2 and host["endpoints"] == []
    assert host["latency_ms"]["p50"] == pytest.approx(histogram.BUCKET_MS[250], rel=1e-3)
    assert host["latency_ms"]["p99"] == pytest.approx(histogram.BUCKET_MS[300], rel=1e-3)
    assert [(w["host"], w["pid"]) for w in host["workers"]] == [("a", 1), ("a", 2)]
    assert sum(p["requests"] for p in host["series"]) == 42
    worker = query.query(monitor.store, 60, pid=2, now=now)
    assert worker["requests"]["by_status"] == {"2xx": 10, "3xx": 0, "4xx": 0, "5xx": 1}
    assert worker["latency_ms"]["p95"] is None and worker["latency_ms"]["mean"] == pytest.approx(
        histogram.BUCKET_MS[300], rel=0.01)
    assert worker["scope"] == {"kind": "worker", "endpoints": False, "percentiles": False}
    assert [p["p95_ms"] for p in worker["series"] if p["requests"]] == [None]
    assert query.query(monitor.store, 60, host="b", pid=2, now=now)["requests"]["total"] == 0


def test_seven_and_thirty_day_windows_read_the_hour_and_day_tiers(app, client, make_user):
    monitor = state(app)
    client.get("/health")
    monitor.flusher.stop(flush=False)
    now = time.time()
    for days_ago, count in ((20, 7), (3, 5), (0, 2)):
        for _ in range(count):
            monitor.recorder.record("/old", "GET", 200, 5_000_000)
        monitor.flusher.tick(now - days_ago * 86400)
    for i in range(1, 6):  # the next flushes roll the old buckets up, one tier each
        monitor.flusher.tick(now + 2 * i)
    viewer = make_user("viewer")
    week = client.get("/api/admin/metrics?window=604800", headers=bearer(viewer)).get_json()
    month = client.get("/api/admin/metrics?window=2592000", headers=bearer(viewer)).get_json()
    assert week["requests"]["total"] == 7 and month["requests"]["total"] == 14
    assert month["resolution_s"] == {"table": 86400, "series": 86400}
    assert sum(p["requests"] for p in month["series"]) == 14 and len(month["series"]) in (30, 31)
    assert week["endpoints"][0]["p50_ms"] == pytest.approx(5.0, rel=0.02)
    text = client.get("/metrics?window=2592000", headers=bearer(viewer)).get_data(as_text=True)
    assert families(text)["monitor_window_requests"].samples[0].value == 14
    auth_client = app.test_client()
    Auth(auth_client).login(viewer)
    soup = BeautifulSoup(auth_client.get("/admin/panels/metrics?window=2592000").get_data(as_text=True),
                         "html.parser")
    assert soup.select_one("#metrics-total").text == "14"
    assert [o["value"] for o in soup.select("#metrics-window option")][-2:] == ["604800", "2592000"]
