"""CPU sessions across real gunicorn workers, heap summaries, tracemalloc, roles and audit."""
import inspect
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from bs4 import BeautifulSoup
from flask import jsonify

from monitor.capabilities.cluster import registry
from monitor.core import audit
from monitor.core.state import state
from support import bearer, wait_until

API = "/api/admin/profiler"
#: A fine interval, so that even /demo/hello (well under a millisecond) leaves samples.
FINE = {"MONITOR_PROFILE_INTERVAL": "0.0001"}
HOARD = []


def _hoard():
    HOARD.append([f"item-{i}" * 4 for i in range(2000)])  # the allocating line
    return jsonify(kept=len(HOARD))


ALLOC_LINE = inspect.getsourcelines(_hoard)[1] + 1


def actions(store):
    return [(entry["action"], entry["result"], entry["detail"]) for entry in audit.entries(store, limit=200)]


def session(server, headers, sid):
    return server.get(f"{API}/sessions/{sid}", headers=headers).json()


def test_session_across_two_workers_merges_both(gunicorn, make_user, store):
    server = gunicorn(workers=2, env=FINE)
    pids = server.wait_workers(2)
    admin = bearer(make_user("admin"))
    started = server.post(f"{API}/cpu/start", json={"duration_s": 120, "target": "all"}, headers=admin)
    assert started.status_code == 202 and started.json()["status"] == "running"
    sid = started.json()["session_id"]
    wait_until(lambda: len(session(server, admin, sid)["workers"]) == 2, 15, message="both workers to join")

    second = server.post(f"{API}/cpu/start", json={"duration_s": 5}, headers=admin)
    assert second.status_code == 409 and second.json()["error"] == "conflict"

    def drive(i):
        return server.get("/demo/sleep?ms=20" if i % 2 else "/demo/hello").status_code

    with ThreadPoolExecutor(8) as pool:
        def both_served():
            assert set(pool.map(drive, range(80))) == {200}
            workers = session(server, admin, sid)["workers"]
            return all(w["requests"] > 0 for w in workers) and workers
        wait_until(both_served, 30, interval=0.5, message="requests on both workers")

    stopped = server.post(f"{API}/cpu/stop", json={"session_id": sid}, headers=admin).json()
    assert stopped["status"] == "done" and stopped["session_id"] == sid
    assert stopped["requests"] >= 80 and stopped["samples"] > 0
    assert sorted(int(w["worker"].rsplit(":", 1)[1]) for w in stopped["workers"]) == pids
    assert all(w["requests"] > 0 and w["state"] == "shipped" for w in stopped["workers"])

    report = server.get(stopped["report_url"], headers=admin)
    assert report.status_code == 200 and report.headers["Content-Type"].startswith("text/html")
    assert report.headers["Content-Security-Policy"].startswith("sandbox allow-scripts;")
    assert "frame-ancestors 'none'" in report.headers["Content-Security-Policy"]  # issue 13, finding 15
    assert report.headers["X-Frame-Options"] == "DENY"
    assert '"identifier": "hello\\u0000' in report.text and '"identifier": "sleep\\u0000' in report.text
    assert "monitor/dev/demo.py" in report.text

    speedscope = server.get(stopped["speedscope_url"], headers=admin)
    assert "attachment" in speedscope.headers["Content-Disposition"]
    data = speedscope.json()
    assert data["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    names = {frame["name"] for frame in data["shared"]["frames"]}
    assert {"hello", "sleep"} <= names
    assert data["profiles"] and data["profiles"][0]["type"] == "evented"
    assert len(data["profiles"][0]["events"]) > 0

    listed = server.get(f"{API}/sessions", headers=admin).json()
    assert listed["running"] is None and listed["sessions"][0]["session_id"] == sid
    assert store.redis.get(store.key("prof", "cpu", "lock")) is None
    done = actions(store)
    assert ("profiler.cpu.start", "ok", {"session_id": sid, "target": "all", "duration_s": 120}) in done
    assert ("profiler.cpu.start", "conflict", {"running": sid}) in done
    assert ("profiler.cpu.stop", "ok", {"session_id": sid}) in done


@pytest.mark.slow
def test_session_ends_by_itself_and_a_killed_worker_marks_it_lost(gunicorn, make_user, store):
    server = gunicorn(workers=2, env=FINE)
    first, second = server.wait_workers(2)
    admin = bearer(make_user("admin"))

    sid = server.post(f"{API}/cpu/start", json={"duration_s": 2}, headers=admin).json()["session_id"]
    for _ in range(10):
        server.get("/demo/hello")
    ended = wait_until(lambda: (s := session(server, admin, sid))["status"] == "done" and s, 15,
                       message="the session to end at its duration")
    assert ended["stop_reason"] == "duration" and ended["stopped_at"] >= ended["ends_at"]
    assert ("profiler.cpu.stop", "done", {"session_id": sid, "reason": "duration"}) in actions(store)

    # a worker that exits gracefully mid-session hands in its part: the session stays whole
    sid = server.post(f"{API}/cpu/start", json={"duration_s": 120}, headers=admin).json()["session_id"]
    wait_until(lambda: len(session(server, admin, sid)["workers"]) == 2, 15, message="both workers to join")
    os.kill(second, signal.SIGTERM)
    wait_until(lambda: second not in server.worker_pids() and len(server.worker_pids()) == 2, 20,
               message="the worker to be replaced")
    stopped = server.post(f"{API}/cpu/stop", json={}, headers=admin).json()
    assert stopped["status"] == "done" and stopped["lost_workers"] == []
    assert {w["worker"].rsplit(":", 1)[1]: w["state"] for w in stopped["workers"]}[str(second)] == "shipped"

    started = server.post(f"{API}/cpu/start", json={"duration_s": 120, "target": f"pid:{first}"}, headers=admin)
    assert started.status_code == 202
    sid = started.json()["session_id"]
    wait_until(lambda: [w["worker"] for w in session(server, admin, sid)["workers"]], 15,
               message="the targeted worker to join")
    assert [w["worker"].endswith(f":{first}") for w in session(server, admin, sid)["workers"]] == [True]
    os.kill(first, signal.SIGKILL)
    lost = wait_until(lambda: (s := session(server, admin, sid))["status"] == "lost" and s, 20,
                      message="the session to be marked lost")
    assert [w.rsplit(":", 1)[1] for w in lost["lost_workers"]] == [str(first)]
    assert store.redis.get(store.key("prof", "cpu", "lock")) is None
    assert any(a == "profiler.cpu.stop" and r == "lost" and d["session_id"] == sid for a, r, d in actions(store))

    again = server.post(f"{API}/cpu/start", json={"duration_s": 30}, headers=admin)
    assert again.status_code == 202
    assert server.post(f"{API}/cpu/stop", json={}, headers=admin).json()["status"] in ("done", "lost")


def test_memory_tools_reach_another_worker(gunicorn, make_user, store):
    server = gunicorn(workers=2)
    pids = server.wait_workers(2)
    wait_until(lambda: sorted(w["pid"] for w in registry.workers(store) if w["status"] == "alive") == pids, 15,
               message="both workers in the cluster registry")
    admin = bearer(make_user("admin"))
    for pid in pids:  # whichever worker answers, the other one is reached through a command
        heap = server.post(f"{API}/memory/snapshot", json={"target": f"pid:{pid}"}, headers=admin, timeout=30)
        body = heap.json()
        assert heap.status_code == 200 and body["worker"].endswith(f":{pid}")
        assert len(body["by_type"]) >= 5 and body["objects"] > 1000 and body["total_bytes"] > 10**6
        assert {"str", "dict", "tuple"} <= {row["type"] for row in body["by_type"]}
        assert all(row["count"] > 0 and row["bytes"] > 0 for row in body["by_type"])

    started = server.post(f"{API}/memory/start", json={"target": f"pid:{pids[1]}"}, headers=admin, timeout=30)
    assert started.status_code == 202 and started.json()["worker"].endswith(f":{pids[1]}")
    for _ in range(10):
        server.get("/demo/hello")
    stopped = server.post(f"{API}/memory/stop", json={}, headers=admin, timeout=30).json()
    assert stopped["status"] == "done" and stopped["worker"].endswith(f":{pids[1]}")
    assert stopped["top"] and all(row["size_diff_bytes"] > 0 and row["line"] > 0 for row in stopped["top"])
    missing = server.post(f"{API}/memory/snapshot", json={"target": "pid:1"}, headers=admin, timeout=30)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_tracemalloc_diff_points_at_the_allocating_line(app, client, make_user, store):
    app.add_url_rule("/hoard", "hoard", _hoard)
    admin = bearer(make_user("admin"))
    started = client.post(f"{API}/memory/start", json={"max_duration_s": 60}, headers=admin)
    assert started.status_code == 202 and started.get_json()["status"] == "running"
    assert client.post(f"{API}/memory/start", json={}, headers=admin).status_code == 409
    for _ in range(5):
        client.get("/hoard")
    stopped = client.post(f"{API}/memory/stop", json={}, headers=admin).get_json()
    top = stopped["top"][0]
    assert (top["file"], top["line"]) == (__file__, ALLOC_LINE)
    assert top["size_diff_bytes"] > 5 * 2000 * 20 and top["count_diff"] >= 5 * 2000
    again = client.post(f"{API}/memory/stop", json={}, headers=admin)
    assert again.status_code == 409 and again.get_json()["error"] == "conflict"
    done = actions(store)
    assert any(a == "profiler.memory.start" and r == "ok" for a, r, _ in done)
    assert any(a == "profiler.memory.start" and r == "conflict" for a, r, _ in done)
    assert any(a == "profiler.memory.stop" and r == "done" for a, r, _ in done)


def test_tracemalloc_stops_by_itself(client, make_user, store, app):
    admin = bearer(make_user("admin"))
    assert client.post(f"{API}/memory/start", json={"max_duration_s": 1}, headers=admin).status_code == 202
    profiler = state(app).memory_profiler
    wait_until(lambda: profiler.running() is None, 10, message="tracemalloc to stop by itself")
    assert profiler.recent("traces")[0]["reason"] == "max duration"
    assert any(a == "profiler.memory.stop" and d.get("reason") == "max duration" for a, _, d in actions(store))


def test_heap_summary_of_this_worker(client, make_user):
    body = client.post(f"{API}/memory/snapshot", headers=bearer(make_user("admin"))).get_json()
    assert set(body) >= {"snapshot_id", "total_bytes", "objects", "by_type"}
    assert len(body["by_type"]) >= 5 and body["by_type"][0]["bytes"] >= body["by_type"][-1]["bytes"]


@pytest.mark.parametrize("body", [{"duration_s": 0}, {"duration_s": 301}, {"duration_s": "x"},
                                  {"duration_s": True}, {"target": "pid:x"}, {"target": "nowhere"}, {"target": 5}])
def test_bad_start_is_400_and_starts_nothing(client, make_user, store, body):
    response = client.post(f"{API}/cpu/start", json=body, headers=bearer(make_user("admin")))
    assert response.status_code == 400 and response.get_json()["error"] == "bad_request"
    assert store.redis.get(store.key("prof", "cpu", "lock")) is None


def test_stop_without_session_is_409_and_unknown_session_404(client, make_user):
    admin = bearer(make_user("admin"))
    assert client.post(f"{API}/cpu/stop", json={}, headers=admin).status_code == 409
    assert client.get(f"{API}/sessions/nope", headers=admin).status_code == 404
    assert client.get(f"{API}/sessions/nope/report.html", headers=admin).status_code == 404


ROUTES = [("post", f"{API}/cpu/start"), ("post", f"{API}/cpu/stop"), ("get", f"{API}/sessions"),
          ("get", f"{API}/sessions/abc"), ("get", f"{API}/sessions/abc/report.html"),
          ("get", f"{API}/sessions/abc/speedscope.json"), ("post", f"{API}/memory/snapshot"),
          ("post", f"{API}/memory/start"), ("post", f"{API}/memory/stop")]


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewer_and_operator_get_403_on_every_profiler_route(client, make_user, store, role):
    headers = bearer(make_user(role))
    for method, path in ROUTES:
        response = getattr(client, method)(path, json={}, headers=headers)
        assert response.status_code == 403, path
        assert response.get_json()["error"] == "forbidden"
    assert store.redis.get(store.key("prof", "cpu", "lock")) is None
    assert store.redis.get(store.key("prof", "mem", "lock")) is None
    forbidden = [d["path"] for a, r, d in actions(store) if a == "access" and r == "forbidden"]
    assert sorted(forbidden) == sorted(path for _, path in ROUTES)


def test_profile_query_gives_an_admin_that_requests_report(client, make_user):
    page = client.get("/demo/hello?_profile=1", headers=bearer(make_user("admin")))
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"].startswith("sandbox allow-scripts;")
    assert "pyinstrumentHTMLRenderer" in page.get_data(as_text=True)
    assert "monitor/dev/demo.py" in page.get_data(as_text=True)
    plain = client.get("/demo/hello?_profile=1", headers=bearer(make_user("operator")))
    assert plain.get_json() == {"message": "hello"}
    assert client.get("/demo/hello?_profile=1").get_json() == {"message": "hello"}


def test_a_one_request_report_cannot_be_framed(client, make_user):
    """Issue 13, finding 15: the ``?_profile=1`` report lacked frame-ancestors and X-Frame-Options."""
    page = client.get("/demo/hello?_profile=1", headers=bearer(make_user("admin")))
    policy = {part.split()[0]: part.split()[1:] for part in page.headers["Content-Security-Policy"].split(";")}
    assert policy["frame-ancestors"] == ["'none'"] and policy["sandbox"] == ["allow-scripts"]
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"


def test_a_profiled_request_that_raises_stops_its_profiler(app, client, make_user):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    page = client.get("/demo/error?_profile=1", headers=bearer(make_user("admin")))
    assert page.status_code == 500 and sys.getprofile() is None
    assert client.get("/demo/hello?_profile=1", headers=bearer(make_user("admin"))).mimetype == "text/html"


def test_panel_shows_results_to_admins_only(client, auth, make_user, app):
    auth.login(make_user("admin"))
    started = auth.post("/admin/panels/profiling/cpu_start", data={"duration_s": "30", "target": "all"})
    soup = BeautifulSoup(started.get_data(as_text=True), "html.parser")
    assert started.status_code == 200 and "started" in soup.select_one(".flash.ok").text
    assert soup.select_one(".prof-running") is not None
    assert soup.select_one(".prof-sessions tbody tr td code").text == state(app).cpu_profiler.running()["session_id"]
    refused = auth.post("/admin/panels/profiling/cpu_start", data={"duration_s": "30"})
    assert refused.status_code == 409 and "is running" in refused.get_data(as_text=True)
    stopped = auth.post("/admin/panels/profiling/cpu_stop", data={})
    assert stopped.status_code == 200 and "CPU session" in stopped.get_data(as_text=True)
    heap = auth.post("/admin/panels/profiling/heap", data={})
    assert len(BeautifulSoup(heap.get_data(as_text=True), "html.parser").select(".prof-heap tbody tr")) >= 5
    auth.logout()

    auth.login(make_user("viewer"))
    panel = BeautifulSoup(client.get("/admin/panels/profiling").get_data(as_text=True), "html.parser")
    assert panel.select_one("#panel-profiling") and "available to admins" in panel.text
    assert not panel.select("form") and not panel.select("table")
    assert auth.post("/admin/panels/profiling/heap", data={}).status_code == 403
