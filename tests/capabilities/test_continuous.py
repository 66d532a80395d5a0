"""Continuous profiling: the sampler, folded stacks and their cap, minutes rolled up into hours,
the API's three formats, the flame graph in the profiling panel, and a real fleet's hot frame."""
import json
import random
import re
import subprocess
import sys
import threading
import time
from functools import partial

import psutil
import pytest
import redis
from bs4 import BeautifulSoup
from flask import jsonify

from monitor import create_app
from monitor.api.openapi import spec
from monitor.capabilities.continuous import codec, layout, query, render
from monitor.capabilities.continuous.sampler import MAX_DEPTH, Sampler
from monitor.capabilities.continuous.ship import Shipper
from monitor.core.config import DEFAULT_CAPABILITIES
from monitor.core.state import state
from support import bearer, need_program, wait_until

API = "/api/admin/profiler/continuous"
#: A worker's Redis bytes for one minute of one endpoint at the cap of distinct stacks (5,000
#: stacks 24 frames deep, as ``synthetic`` makes them): the budget docs/profiling.md states.
MINUTE_AT_CAP_BYTES = 160 * 1024


def shipper_of(monitor):
    return next(found for found in monitor.flusher.shippers if isinstance(found, Shipper))


def manual(app):
    """Return the app's monitor with its flusher (and sampler thread) stopped: the test ticks and samples."""
    monitor = state(app)
    monitor.flusher.stop(flush=False)
    return monitor


def blocked_request(client, path, headers=None, into=None):
    """Start ``client.get(path)`` in a thread; return it (its view waits for ``release``; the body goes to ``into``)."""
    def get():
        body = client.get(path, headers=headers).get_data(as_text=True)
        if into is not None:
            into.append(body)
    thread = threading.Thread(target=get)
    thread.start()
    return thread


def sample_once(monitor, client, path, entered, release, headers=None, into=None):
    """Sample once while a request to ``path`` waits in its view (``entered``, ``release``: its events, reset after)."""
    request = blocked_request(client, path, headers, into)
    entered.wait(5)
    monitor.sampler.sample(time.time())
    release.set()
    request.join(5)
    entered.clear(), release.clear()


@pytest.fixture
def blocking(app):
    """A host route that waits for ``release`` while the test samples it; returns ``(entered, release)``."""
    entered, release = threading.Event(), threading.Event()

    @app.get("/blocking")
    def blocking_view():
        entered.set()
        release.wait(10)
        return jsonify(ok=True)
    return entered, release


# ---------------------------------------------------------------- on and off


def closure(timed):
    """Return the timing point's cells, by name, as values."""
    return {name: cell.cell_contents for name, cell in zip(timed.__code__.co_freevars, timed.__closure__)}


def test_off_means_no_thread_and_no_per_request_work(app_config):
    """Off: no sampler thread, no shipper. At any rate the timing point is the same code holding
    the same things: the sampler reads the map of requests in flight, it adds no request work."""
    apps = {hz: create_app({**app_config, "MONITOR_CONTINUOUS_HZ": hz}) for hz in (0, 19)}
    off = state(apps[0])
    try:
        before = {t for t in threading.enumerate() if t.name == "monitor-sampler"}
        assert apps[0].test_client().get("/demo/hello").status_code == 200 and off.started
        assert off.sampler is None and off.requests.total == 1
        assert not any(isinstance(found, Shipper) for found in off.flusher.shippers)
        assert {t for t in threading.enumerate() if t.name == "monitor-sampler"} == before
        timed = {hz: app.full_dispatch_request for hz, app in apps.items()}
        assert timed[0].__code__ is timed[19].__code__
        cells = {hz: closure(found) for hz, found in timed.items()}
        assert cells[0]["running"] is off.requests.running and cells[19]["running"] is state(apps[19]).requests.running
        assert {name: type(value) for name, value in cells[0].items()} == \
               {name: type(value) for name, value in cells[19].items()}
        assert off.features["continuous"] is True  # stored profiles can still be read
    finally:
        for app in apps.values():
            state(app).flusher.stop(flush=False)


def test_on_a_thread_samples_only_while_a_request_runs(app, client, blocking):
    monitor = state(app)
    running = monitor.requests.running
    assert running == {} and monitor.sampler is not None and not monitor.sampler.running
    assert closure(app.full_dispatch_request)["running"] is running is monitor.sampler.threads
    assert client.get("/demo/hello").status_code == 200
    assert monitor.sampler.running and monitor.sampler.thread.name == "monitor-sampler"
    assert monitor.sampler.thread.daemon and running == {}
    idle = monitor.sampler.samples
    time.sleep(0.3)
    assert monitor.sampler.samples == idle  # nothing runs: no sample
    entered, release = blocking
    request = blocked_request(client, "/blocking")
    entered.wait(5)
    assert list(running.values()) == ["/blocking"]
    wait_until(lambda: monitor.sampler.samples >= idle + 3, 5, message="samples of the running request")
    release.set()
    request.join(5)
    assert running == {}
    monitor.flusher.stop(flush=False)
    monitor.sampler.thread.join(2)
    assert not monitor.sampler.running  # it stops with the flusher


def test_off_means_off_in_a_real_worker(gunicorn, prefix, redis_url):
    """Under gunicorn, a worker with MONITOR_CONTINUOUS_HZ=0 runs one thread fewer than one sampling at 19 Hz
    after the same requests, and its fleet writes no continuous profile; the sampling one's does."""
    servers = {hz: gunicorn(workers=1, name=f"hz{hz}", env={"MONITOR_CONTINUOUS_HZ": str(hz),
                                                              "MONITOR_KEY_PREFIX": f"{prefix}hz{hz}"})
               for hz in (0, 19)}
    for server in servers.values():
        server.wait_workers(1)
        for _ in range(5):
            assert server.get("/demo/sleep?ms=100").json() == {"slept_ms": 100}
    threads = {hz: psutil.Process(server.worker_pids()[0]).num_threads() for hz, server in servers.items()}
    assert threads[19] == threads[0] + 1, threads  # the sampler is the only difference
    for server in servers.values():
        server.stop()  # the last flush ships the current minute
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    written = {hz: sorted(raw.scan_iter(match=f"{{{prefix}hz{hz}}}:c:*", count=1000)) for hz in servers}
    assert written[0] == []
    assert raw.zrange(f"{{{prefix}hz19}}:c:endpoints", 0, -1) == ["/demo/sleep"]
    assert any(":c:" in name and name.count(":") == 4 for name in written[19])  # a minute list


# ---------------------------------------------------------------- folding


def test_a_stack_is_folded_root_first_below_the_timing_point(app, client, blocking):
    entered, release = blocking
    client.get("/demo/hello")  # the worker starts: the sampler knows the timing point's frame
    monitor = manual(app)
    sampler = monitor.sampler
    assert sampler.root is app.full_dispatch_request.__code__
    sample_once(monitor, client, "/blocking", entered, release)
    ((label, stack), count), = [item for item in sampler.counts.items() if item[0][0] == "/blocking"]
    assert count == 1 and stack[:2] == ("flask/app.py:Flask.full_dispatch_request", "flask/app.py:Flask.dispatch_request")
    view = stack.index("test_continuous.py:blocking.<locals>.blocking_view")  # its sys.path entry: tests/capabilities
    assert stack[view + 1:] == ("threading.py:Event.wait", "threading.py:Condition.wait")  # native waits: their caller
    assert not any("monitor/" in frame for frame in stack)


def test_line_numbers_are_kept_when_asked(app_config):
    app = create_app({**app_config, "MONITOR_CONTINUOUS_LINES": True})
    entered, release = threading.Event(), threading.Event()

    @app.get("/waits")
    def waits():
        entered.set()
        release.wait(10)
        return "ok"
    client = app.test_client()
    client.get("/demo/hello")
    monitor = manual(app)
    sample_once(monitor, client, "/waits", entered, release)
    stack = next(stack for label, stack in monitor.sampler.counts if label == "/waits")
    assert re.fullmatch(r"flask/app\.py:Flask\.full_dispatch_request:\d+", stack[0])
    assert any(re.fullmatch(r"test_continuous\.py:.*waits:\d+", frame) for frame in stack)


def test_an_on_demand_session_leaves_the_stacks_as_they_are(app, client, blocking, make_user):
    """The probe's wrapper is left out: a request profiled by pyinstrument folds to the same stack
    (under pyinstrument's own frames, if it was sampling then), and its report is still made."""
    entered, release = blocking
    admin = make_user("admin")
    client.get("/demo/hello")
    monitor = manual(app)
    sample_once(monitor, client, "/blocking", entered, release)
    plain = next(stack for label, stack in monitor.sampler.counts if label == "/blocking")
    report = []
    sample_once(monitor, client, "/blocking?_profile=1", entered, release, bearer(admin), report)
    stacks = [stack for label, stack in monitor.sampler.counts if label == "/blocking"]
    assert len(stacks) == 2 or stacks == [plain]
    for stack in stacks:
        assert not any("profiling/collect.py" in frame for frame in stack), stack
        assert stack[:len(plain) - 1] == plain[:-1]  # the same path down to the view's wait
    assert "pyinstrument" in report[0] and "blocking_view" in report[0]


def synthetic(count, depth=24, seed=22):
    """Return ``(root function, calls)``: ``root(call)`` runs ``call()`` under one of ``count``
    distinct stacks ``depth`` frames deep: a framework's common prefix, then a view, a service
    and a model function (each one of 100, in 10 files), drawn at random, then ``call``'s own frame."""
    framework = {}
    top = depth - 5
    source = "".join(f"def frame_{i}(call):\n    return frame_{i + 1}(call)\n" for i in range(top))
    exec(compile(source + f"def frame_{top}(call):\n    return call()\n", "framework/dispatch.py", "exec"), framework)
    layers = []
    for layer in ("views", "services", "models"):
        functions = []
        for module in ("orders", "users", "cart", "payments", "search", "catalog", "reviews", "shipping", "tax", "auth"):
            namespace = {}
            exec(compile("".join(f"def {module}_{layer}_{i}(call):\n    return call()\n" for i in range(10)),
                         f"shop/{layer}/{module}.py", "exec"), namespace)
            functions += [namespace[f"{module}_{layer}_{i}"] for i in range(10)]
        layers.append(functions)

    def root(call):
        return framework["frame_0"](call)
    rnd = random.Random(seed)
    picks = rnd.sample(range(100 ** 3), count)
    calls = [(layers[0][n % 100], layers[1][n // 100 % 100], layers[2][n // 10000]) for n in picks]
    return root, calls


def test_ten_thousand_distinct_stacks_a_minute_stay_within_the_cap_and_the_byte_budget(app):
    monitor = manual(app)
    sampler = monitor.sampler
    root, calls = synthetic(10_000)
    sampler.root = root.__code__
    minute = int(time.time() // 60) * 60 - 120
    monitor.requests.running[threading.get_ident()] = "/orders"
    try:
        for view, service, model in calls:
            root(partial(view, partial(service, partial(model, partial(sampler.sample, minute + 1)))))
    finally:
        del monitor.requests.running[threading.get_ident()]
    counts = sampler.counts
    assert sampler.samples == 10_000 and sum(counts.values()) == 10_000
    assert len(counts) == app.config["MONITOR_CONTINUOUS_MAX_STACKS"] + 1 == 5001
    assert counts[("/orders", ("(other)",))] == 5000
    stack = next(iter(counts))[1]
    assert len(stack) == 24 and stack[0] == "framework/dispatch.py:frame_0"
    assert [frame.split("/")[1] for frame in stack[-4:-1]] == ["views", "services", "models"]
    assert stack[-1] == "monitor/capabilities/continuous/sampler.py:Sampler.sample"

    shipper_of(monitor)(pipe := monitor.store.raw.pipeline(), minute + 120)
    pipe.execute()
    name = layout.name(monitor.store, layout.endpoint_id("/orders"), 60, minute)
    blob, = monitor.store.raw.lrange(name, 0, -1)
    stored = monitor.store.raw.memory_usage(name)
    print(f"a minute at the cap: {len(blob)} bytes of record, {stored} bytes in Redis")
    assert stored <= MINUTE_AT_CAP_BYTES
    assert sum(codec.decode(blob).values()) == 10_000 and len(codec.decode(blob)) == 5001
    assert 0 < monitor.store.raw.ttl(name) <= layout.DAY + 60


def test_deep_stacks_are_cut_and_frame_names_are_safe():
    sampler = Sampler({}, 19, False, 100)

    def recurse(n):
        return recurse(n - 1) if n else sys._getframe()
    stack = sampler.fold(recurse(MAX_DEPTH + 20))
    assert len(stack) == MAX_DEPTH and stack[-1] == "(deeper)"
    assert render.split_frame("shop/a:b.py:View.get:12") == ("View.get", "shop/a:b.py", 12)
    assert render.split_frame("(other)") == ("(other)", None, None)


# ---------------------------------------------------------------- records, tiers and roll-ups


def test_records_round_trip_merge_exactly_and_cap_into_other():
    a = {"/x;f.py:a;f.py:b": 3, "/x;f.py:a": 1, "/x": 2}
    b = {"/x;f.py:a;f.py:b": 4, "/x;g.py:c d": 5}
    assert codec.decode(codec.encode(a)) == a and codec.rolled(codec.encode(a, rolled=True))
    merged = codec.merge([codec.decode(codec.encode(a)), b])
    assert merged == {"/x;f.py:a;f.py:b": 7, "/x;f.py:a": 1, "/x": 2, "/x;g.py:c d": 5}
    many = {f"s{i}": i + 1 for i in range(codec.MAX_STACKS + 500)}
    capped = codec.merge([many])
    assert len(capped) == codec.MAX_STACKS and sum(capped.values()) == sum(many.values())
    assert "s0" not in capped and capped[f"s{codec.MAX_STACKS + 499}"] == codec.MAX_STACKS + 500


def test_a_query_reads_each_hour_from_one_tier_only():
    now = 10 * 86400 + 7 * 3600 + 1234
    lo, hi = query.span(3 * 3600, now)
    assert (lo, hi) == ((now - 3 * 3600) // 60 * 60, (now // 60 + 1) * 60)
    buckets = query.plan(lo, hi, now, settle_s=150)
    hours = [start for tier, start in buckets if tier == 3600]
    minutes = [start for tier, start in buckets if tier == 60]
    hour = now // 3600 * 3600
    assert hours == [hour - 2 * 3600, hour - 3600]  # the whole hours that have settled
    assert len(minutes) == len(set(minutes)) and not any(h <= m < h + 3600 for h in hours for m in minutes)
    assert min(minutes) == lo and max(minutes) == hi - 60
    # two days back the minutes are gone: whole hours cover the window's ends
    old = query.plan(*query.span(3600, now - 2 * 86400), now, settle_s=150)
    assert {tier for tier, _ in old} == {3600} and len(old) == 2


def write_minute(monitor, minute, stacks_by_label, now):
    """Ship one worker's closed minute, as its flusher does after the minute ended."""
    sampler = monitor.sampler
    with sampler.lock:
        sampler.closed.append((minute, {(label, tuple(stack.split(";"))): n
                                        for label, stacks in stacks_by_label.items() for stack, n in stacks.items()}))
    monitor.flusher.tick(now)


def test_minutes_roll_up_into_hours_and_every_sample_is_counted_once(app):
    monitor = manual(app)
    store = monitor.store
    hour = int(time.time()) // 3600 * 3600 - 3 * 3600
    for i in range(60):  # two workers' minutes of a past hour
        for worker in range(2):
            write_minute(monitor, hour + 60 * i, {"/a": {"a.py:view;a.py:work": 2, "a.py:view": 1},
                                                  "/b": {"b.py:view": worker + 1}}, hour + 60 * i + 61)
    compactor = shipper_of(monitor).compactor
    assert compactor.closing and all(at <= hour + 3600 + 120 for at in compactor.closing.values())
    compactor(hour + 3 * 3600)  # the minutes roll up; their hours become due
    compactor(hour + 4 * 3600)  # the hours roll up
    eid = layout.endpoint_id("/a")
    minute_list = store.raw.lrange(layout.name(store, eid, 60, hour), 0, -1)
    assert len(minute_list) == 1 and codec.rolled(minute_list[0])
    hour_list = store.raw.lrange(layout.name(store, eid, 3600, hour), 0, -1)
    assert len(hour_list) == 1 and codec.decode(hour_list[0]) == {"a.py:view;a.py:work": 240, "a.py:view": 120}
    now = time.time()
    whole = query.profile(store, 3600, hour + 3600, None, now, 150)
    assert whole.resolution_s == 3600 and whole.by_endpoint == {"/a": 360, "/b": 180}
    half = query.profile(store, 1800, hour + 1800, "/a", now, 150)
    assert half.resolution_s == 60 and half.samples == 180 and half.stacks == {"/a;a.py:view;a.py:work": 120,
                                                                                "/a;a.py:view": 60}


def test_the_sweep_rolls_up_a_list_its_writers_left(app):
    monitor = manual(app)
    store = monitor.store
    minute = int(time.time()) // 60 * 60 - 180
    write_minute(monitor, minute, {"/left": {"x.py:f": 5}}, minute + 61)
    name = layout.name(store, layout.endpoint_id("/left"), 60, minute)
    shipper = shipper_of(monitor)
    shipper.compactor.closing.clear()  # the writer stopped before its roll-up
    store.raw.rpush(name, codec.encode({"x.py:f": 2}))  # and another's last flush landed late
    shipper.sweep(time.time())
    shipper.compactor(time.time())
    blob, = store.raw.lrange(name, 0, -1)
    assert codec.rolled(blob) and codec.decode(blob) == {"x.py:f": 7}
    hour_list = store.raw.lrange(layout.name(store, layout.endpoint_id("/left"), 3600, minute // 3600 * 3600), 0, -1)
    assert sum(sum(codec.decode(b).values()) for b in hour_list) == 7
    again = Shipper.__new__(Shipper)  # another worker, the same minute: the sweep is taken already
    again.monitor, again.swept, again.compactor = monitor, None, shipper.compactor
    shipper.compactor.closing.clear()
    again.sweep(time.time())
    assert shipper.compactor.closing == {}


def test_unsent_minutes_are_kept_while_redis_is_down(app):
    monitor = manual(app)
    shipper = shipper_of(monitor)
    minute = int(time.time()) // 60 * 60 - 60
    with monitor.sampler.lock:
        monitor.sampler.closed.append((minute, {("/a", ("a.py:f",)): 3}))
    pipe = monitor.store.raw.pipeline()
    undo = shipper(pipe, time.time())
    assert shipper.held == [] and pipe.command_stack
    undo()  # the send failed
    assert shipper.held == [(minute, {"/a": {"a.py:f": 3}})]
    monitor.flusher.tick()
    assert shipper.held == [] and query.profile(monitor.store, 600, time.time(), "/a", time.time(), 150).samples == 3


# ---------------------------------------------------------------- the API


def seed(monitor, now=None):
    """Write two past minutes of two endpoints, and a baseline an hour earlier where ``spin`` was smaller."""
    now = now or time.time()
    minute = int(now) // 60 * 60 - 120
    cpu = {"flask/app.py:Flask.full_dispatch_request;monitor/dev/demo.py:cpu;monitor/dev/demo.py:spin": 80,
           "flask/app.py:Flask.full_dispatch_request;monitor/dev/demo.py:cpu;monitor/dev/demo.py:stir": 20}
    sleep = {"flask/app.py:Flask.full_dispatch_request;monitor/dev/demo.py:sleep": 50}
    write_minute(monitor, minute, {"/demo/cpu": cpu, "/demo/sleep": sleep}, minute + 61)
    write_minute(monitor, minute + 60, {"/demo/cpu": cpu}, minute + 121)
    before = {"flask/app.py:Flask.full_dispatch_request;monitor/dev/demo.py:cpu;monitor/dev/demo.py:spin": 30,
              "flask/app.py:Flask.full_dispatch_request;monitor/dev/demo.py:cpu;monitor/dev/demo.py:stir": 70}
    write_minute(monitor, minute - 3600, {"/demo/cpu": before}, minute - 3600 + 61)
    return minute


def node(tree, *names):
    for name in names:
        tree = next(child for child in tree["children"] if child["name"] == name)
    return tree


def test_the_api_answers_a_tree_speedscope_and_collapsed_stacks(app, client, make_user):
    monitor = manual(app)
    seed(monitor)
    admin = bearer(make_user("admin"))
    body = client.get(f"{API}?window=600", headers=admin).json
    assert body["samples"] == 250 and body["endpoint"] is None and body["resolution_s"] == 60
    assert body["endpoints"] == [{"endpoint": "/demo/cpu", "samples": 200}, {"endpoint": "/demo/sleep", "samples": 50}]
    assert body["root"]["name"] == "all endpoints" and body["root"]["value"] == 250 and body["baseline"] is None
    spin = node(body["root"], "/demo/cpu", "flask/app.py:Flask.full_dispatch_request", "monitor/dev/demo.py:cpu",
                "monitor/dev/demo.py:spin")
    assert spin == {"name": "monitor/dev/demo.py:spin", "value": 160, "self": 160}

    one = client.get(f"{API}?window=600&endpoint=/demo/cpu&compare=3600", headers=admin).json
    assert one["root"]["name"] == "/demo/cpu" and one["samples"] == 200 and one["baseline"]["samples"] == 100
    grown = node(one["root"], "flask/app.py:Flask.full_dispatch_request", "monitor/dev/demo.py:cpu",
                 "monitor/dev/demo.py:spin")
    assert grown["baseline"] == 30 and grown["delta"] == 50.0  # 80% now, 30% an hour before

    text = client.get(f"{API}?window=600&format=collapsed", headers=admin)
    assert text.mimetype == "text/plain" and "attachment" in text.headers["Content-Disposition"]
    lines = text.get_data(as_text=True).splitlines()
    assert ("/demo/cpu;flask/app.py:Flask.full_dispatch_request;monitor/dev/demo.py:cpu;"
            "monitor/dev/demo.py:spin 160") in lines
    assert sum(int(line.rpartition(" ")[2]) for line in lines) == 250 and lines == sorted(lines)

    scope = client.get(f"{API}?window=600&endpoint=/demo/sleep&format=speedscope", headers=admin)
    assert scope.mimetype == "application/json" and "attachment" in scope.headers["Content-Disposition"]
    document = json.loads(scope.get_data())
    profile, = document["profiles"]
    frames = document["shared"]["frames"]
    assert profile["type"] == "sampled" and profile["weights"] == [50] and profile["endValue"] == 50
    assert [frames[i] for i in profile["samples"][0]] == [
        {"name": "/demo/sleep"}, {"name": "Flask.full_dispatch_request", "file": "flask/app.py"},
        {"name": "sleep", "file": "monitor/dev/demo.py"}]


def test_the_route_is_in_the_openapi_document():
    operation = spec()["paths"]["/api/admin/profiler/continuous"]["get"]
    params = {param["name"]: param["schema"] for param in operation["parameters"]}
    assert params["format"]["enum"] == ["json", "speedscope", "collapsed"]
    assert params["window"]["maximum"] == 7 * 86400 and {"until", "endpoint", "compare"} <= set(params)
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/plain"}


@pytest.mark.parametrize("query_string, detail", [
    ("window=30", "window"), ("window=700000", "window"), ("format=svg", "format"), ("until=-1", "until"),
    ("compare=10", "compare"), ("endpoint=" + "x" * 1001, "endpoint")])
def test_the_api_refuses_bad_arguments(client, make_user, query_string, detail):
    answer = client.get(f"{API}?{query_string}", headers=bearer(make_user("admin")))
    assert answer.status_code == 400 and answer.json["error"] == "bad_request" and detail in answer.json["detail"]


def test_the_api_is_for_admins(client, make_user):
    for role in ("viewer", "operator"):
        answer = client.get(API, headers=bearer(make_user(role)))
        assert answer.status_code == 403 and answer.json["error"] == "forbidden"
    assert client.get(API).status_code == 401


def test_an_empty_window_is_an_empty_profile(client, make_user):
    body = client.get(f"{API}?endpoint=/nothing&window=60", headers=bearer(make_user("admin"))).json
    assert body["samples"] == 0 and body["root"] == {"name": "/nothing", "value": 0, "self": 0}
    assert body["endpoints"] == []


# ---------------------------------------------------------------- the flame graph in the profiling panel


def flame(html):
    page = BeautifulSoup(html, "html.parser")
    return page, page.select("#continuous svg.flame a")


def test_the_panel_draws_the_flame_graph_zooms_and_compares(app, client, make_user):
    monitor = manual(app)
    seed(monitor)
    admin = bearer(make_user("admin"))
    page, frames = flame(client.get("/admin/panels/profiling?flame_window=900", headers=admin).get_data(as_text=True))
    labels = [frame["aria-label"] for frame in frames]
    assert labels[0].startswith("all endpoints: 100.0% of samples")
    assert "monitor/dev/demo.py:spin: 64.0% of samples" in labels
    assert page.select_one("#flame-window option[selected]")["value"] == "900"
    assert [o["value"] for o in page.select("#flame-endpoint option")] == ["", "/demo/cpu", "/demo/sleep"]
    assert "250 samples" in page.select_one("#flame-summary").text
    spin = next(frame for frame in frames if frame["aria-label"].startswith("monitor/dev/demo.py:spin"))
    width = float(spin.parent["width"].rstrip("%"))
    assert width == pytest.approx(64.0) and "64.0%" in spin.select_one("text").text
    assert "flame_focus=" in spin["hx-get"] and spin["href"].startswith("/admin/?")
    downloads = {a.text: a["href"] for a in page.select("#flame-summary a")}
    assert downloads["collapsed stacks"].startswith("/api/admin/profiler/continuous?") and \
        "format=collapsed" in downloads["collapsed stacks"]

    zoomed, frames = flame(client.get(spin["hx-get"], headers=admin).get_data(as_text=True))
    widths = {frame["aria-label"]: frame.parent["width"] for frame in frames}
    assert set(widths.values()) == {"100.0000%"}  # the zoomed frame and its callers span the width
    assert "monitor/dev/demo.py:spin: 64.0% of samples, zoomed" in widths and len(widths) == 5
    assert zoomed.select_one(".flame-reset a")

    compared, frames = flame(client.get("/admin/panels/profiling?flame_window=900&flame_endpoint=/demo/cpu"
                                        "&flame_compare=3600", headers=admin).get_data(as_text=True))
    grew = [frame for frame in frames if "fg-grew" in frame.parent["class"]]
    shrank = [frame for frame in frames if "fg-shrank" in frame.parent["class"]]
    assert [f["aria-label"] for f in grew] == ["monitor/dev/demo.py:spin: 80.0% of samples (+50.0 points)"]
    assert [f["aria-label"] for f in shrank] == ["monitor/dev/demo.py:stir: 20.0% of samples (-50.0 points)"]
    assert grew[0].select_one("text").text.startswith("▲ spin")
    assert compared.select_one("svg.flame-diff")


def test_the_panels_own_poll_does_not_read_the_profile_again(app, client, make_user, monkeypatch):
    monitor = manual(app)
    seed(monitor)
    admin = bearer(make_user("admin"))
    reads = []
    monkeypatch.setattr(query, "read", lambda *args: reads.append(args))
    polled = client.get("/admin/panels/profiling?flame_window=900", headers={**admin, "HX-Request": "true",
                                                                             "HX-Trigger": "panel-profiling"})
    section = BeautifulSoup(polled.get_data(as_text=True), "html.parser").select_one("#continuous")
    assert section.has_attr("data-placeholder") and not section.select("svg") and reads == []
    assert "flame_window=900" in BeautifulSoup(polled.get_data(as_text=True), "html.parser").select_one(
        "#panel-profiling")["hx-get"]


def test_viewers_do_not_see_the_view(client, make_user):
    html = client.get("/admin/", headers=bearer(make_user("viewer"))).get_data(as_text=True)
    assert 'id="continuous"' not in html and "available to admins" in html


def test_without_the_capability_the_panel_has_no_view(app_config, make_user):
    app = create_app({**app_config, "MONITOR_CAPABILITIES": [p for p in DEFAULT_CAPABILITIES
                                                             if not p.endswith("continuous")]})
    try:
        assert "continuous" not in state(app).capabilities and state(app).sampler is None
        html = app.test_client().get("/admin/panels/profiling?flame_window=900",
                                     headers=bearer(make_user("admin"))).get_data(as_text=True)
        assert 'id="continuous"' not in html and "prof-duration" in html
        assert app.test_client().get(API, headers=bearer(make_user("admin"))).status_code == 404
    finally:
        state(app).flusher.stop(flush=False)


# ---------------------------------------------------------------- a real fleet


def share(lines, frame):
    """Return the share (percent) of the samples whose stack holds ``frame``."""
    total = sum(int(line.rpartition(" ")[2]) for line in lines)
    hits = sum(int(line.rpartition(" ")[2]) for line in lines if frame in line.rpartition(" ")[0].split(";"))
    return 100 * hits / total if total else 0


@pytest.mark.slow
def test_a_fleet_finds_the_hot_frame_and_the_sleep_frame(gunicorn, make_user):
    """/demo/cpu spends four fifths of its time in ``spin``: hit for 20 s over 3 workers, its merged
    flame graph gives ``spin`` a share of 70% or more; /demo/sleep's shows its sleeping frame."""
    need_program("wrk", "load for the continuous profiler's fleet test")
    server = gunicorn(workers=3)
    server.wait_workers(3)
    admin = bearer(make_user("admin"))
    started = time.time()
    subprocess.run(["wrk", "-t2", "-c4", "-d20s", server.url + "/demo/cpu?ms=40"], check=True, capture_output=True,
                   timeout=60)
    subprocess.run(["wrk", "-t1", "-c3", "-d5s", server.url + "/demo/sleep?ms=30"], check=True, capture_output=True,
                   timeout=60)
    server.stop()  # each worker's last flush ships its current minute
    window = int(time.time() - started) + 120
    app = create_app({"TESTING": True, "MONITOR_REDIS_URL": server.env["REDIS_URL"],
                      "MONITOR_KEY_PREFIX": server.env["MONITOR_KEY_PREFIX"],
                      "MONITOR_INSTANCE_PATH": server.instance + "-reader"})
    client = app.test_client()
    try:
        cpu = client.get(f"{API}?window={window}&endpoint=/demo/cpu&format=collapsed", headers=admin)
        lines = cpu.get_data(as_text=True).splitlines()
        spin_share = share(lines, "monitor/dev/demo.py:spin")
        samples = sum(int(line.rpartition(" ")[2]) for line in lines)
        print(f"/demo/cpu: {samples} samples, spin {spin_share:.1f}%, stir {share(lines, 'monitor/dev/demo.py:stir'):.1f}%")
        assert samples >= 0.5 * 20 * 19 * 3 and spin_share >= 70
        body = client.get(f"{API}?window={window}&endpoint=/demo/cpu", headers=admin).json
        assert body["samples"] == samples and body["resolution_s"] == 60
        sleep = client.get(f"{API}?window={window}&endpoint=/demo/sleep&format=collapsed", headers=admin)
        lines = sleep.get_data(as_text=True).splitlines()
        print(f"/demo/sleep: sleep frame {share(lines, 'monitor/dev/demo.py:sleep'):.1f}%")
        assert share(lines, "monitor/dev/demo.py:sleep") >= 90
        assert all(line.startswith("/demo/sleep;flask/app.py:Flask.full_dispatch_request;") for line in lines)
    finally:
        state(app).flusher.stop(flush=False)

