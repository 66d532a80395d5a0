"""The cluster registry, restart operations, API and panel, against real gunicorn masters."""
import json
import os
import signal
import threading
import time

import pytest
import requests
from bs4 import BeautifulSoup

from monitor.capabilities.cluster import operations, registry
from monitor.core import audit, process
from monitor.core.state import state
from support import bearer, wait_until

FAST = {"MONITOR_HEARTBEAT_INTERVAL": "0.5"}


def status(server, user):
    response = server.get("/api/admin/cluster/status", headers=bearer(user))
    assert response.status_code == 200, response.text
    return response.json()


def panel_rows(server, user):
    """Return ``{pid: status}`` of the workers table and the host names of the cluster panel."""
    response = server.get("/admin/panels/cluster", headers=bearer(user))
    assert response.status_code == 200
    soup = BeautifulSoup(response.text, "html.parser")
    workers = {int(row["data-pid"]): row["data-status"] for row in soup.select("table.cluster-workers tbody tr")}
    hosts = [row["data-host"] for row in soup.select("table.cluster-hosts tbody tr")]
    return workers, hosts, soup


def alive_pids(body, host=None):
    return sorted(w["pid"] for w in body["workers"] if w["status"] == "alive" and host in (None, w["host"]))


def restart(server, user, **body):
    return server.post("/api/admin/cluster/restart", json=body, headers=bearer(user))


def finish(server, user, operation_id, timeout=60):
    """Wait for an operation to end; return its record."""
    def ended():
        record = server.get(f"/api/admin/cluster/operations/{operation_id}", headers=bearer(user)).json()
        return record if record["status"] in operations.FINAL else None
    return wait_until(ended, timeout, interval=0.2, message=f"operation {operation_id}")


def registered(server, user, count, host=None):
    """Wait until the registry shows exactly gunicorn's workers of this server, all alive."""
    def same():
        body = status(server, user)
        pids = server.worker_pids()
        return body if len(pids) == count and alive_pids(body, host) == pids else None
    return wait_until(same, 15, interval=0.2, message=f"{count} registered workers")


# ---------------------------------------------------------------- without gunicorn


def test_heartbeat_shape_and_staleness(app, store, client, make_user):
    viewer = make_user("viewer")
    client.get("/health")  # starts this process's flusher
    monitor = state(app)
    found = wait_until(lambda: registry.workers(store), 5, message="a heartbeat")
    worker = found[0]
    assert (worker["host"], worker["pid"], worker["status"]) == ("testhost", os.getpid(), "alive")
    assert set(worker) >= {"id", "host", "pid", "status", "started_at", "uptime_s", "last_heartbeat_s",
                           "requests", "in_flight", "rss_mb", "cpu_percent"}
    assert worker["rss_mb"] > 1
    later = time.time() + registry.stale_after(monitor.config) + 1
    assert registry.workers(store, now=later)[0]["status"] == "stale"
    body = client.get("/api/admin/cluster/status", headers=bearer(viewer)).get_json()
    assert body["count"] == 1 and body["alive"] == 1 and body["workers"][0]["pid"] == os.getpid()
    # Not behind a gunicorn master: listed, but nothing may act on it.
    assert body["hosts"] == [dict(body["hosts"][0], host="testhost", managed=False, master_pid=None)]
    assert monitor.features["cluster"] is True
    registry.drop_entry(store, "w", f"testhost:{os.getpid()}")
    monitor.flusher.stop(flush=False)
    assert registry.workers(store) == []


def test_cpu_percent_is_measured_once_per_span_and_shared_by_every_reader(monkeypatch):
    clock, used = [1000.0], [5.0]
    monkeypatch.setattr(process.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(process.ProcessInfo, "_cpu_seconds", lambda self: used[0])
    info = process.ProcessInfo("testhost")
    clock[0], used[0] = 1002.0, 5.5
    assert info.sample()["cpu_percent"] == 25.0  # the heartbeat reads a quarter of a core
    clock[0] = 1002.01
    assert info.sample()["cpu_percent"] == 25.0  # the metrics sample, right after, reads the same span
    clock[0], used[0] = 1002.5, 6.0
    assert info.cpu_percent() == 25.0  # a span shorter than CPU_SPAN_S is never measured on its own
    clock[0], used[0] = 1004.0, 7.5
    assert info.cpu_percent() == 100.0 and info.cpu_percent() == 100.0


def test_the_cluster_panel_says_an_operations_progress_once(client, auth, make_user, store):
    record = {"id": "0123456789abcdef", "mode": "rolling", "host": "vm", "pid": None, "status": "running",
              "message": "running on vm", "progress": {"done": 1, "total": 4}, "steps": []}
    store.redis.set(store.key("cluster", "op", record["id"]), json.dumps(record))
    store.redis.set(store.key("cluster", "lock"), record["id"])
    auth.login(make_user("viewer"))
    soup = BeautifulSoup(client.get("/admin/panels/cluster").get_data(as_text=True), "html.parser")
    line = " ".join(soup.select_one(".cluster-op p").text.split())
    assert line == "Rolling restart of vm (0123456789abcdef): running on vm"
    assert " ".join(soup.select_one(".cluster-op .muted").text.split()) == "1 of 4 steps"


@pytest.mark.parametrize("body, code, detail", [
    ({"mode": "restart-all"}, 400, "mode must be one of"),
    ({}, 400, "mode must be one of"),
    ({"mode": "worker"}, 400, "needs pid"),
    ({"mode": "worker", "pid": -3}, 400, "pid must be between 1 and"),
    ({"mode": "worker", "pid": True}, 400, "pid must be a whole number"),
    ({"mode": "worker", "pid": "²"}, 400, "pid must be a whole number"),
    ({"mode": "worker", "pid": "9" * 5000}, 400, "pid must be a whole number"),
    ({"mode": "worker", "pid": 2**31}, 400, "pid must be between 1 and"),
    ({"mode": "rolling", "pid": 12}, 400, "only accepted with mode worker"),
    ({"mode": "rolling", "host": ""}, 400, "host must be"),
    ({"mode": "rolling", "host": ["a"]}, 400, "host must be"),
    ({"mode": "worker", "pid": 999999}, 404, "no worker with pid 999999"),
    ({"mode": "rolling", "host": "nowhere"}, 404, "unknown host"),
    ({"mode": "rolling"}, 409, "no gunicorn master"),
])
def test_restart_refuses_bad_requests(client, store, make_user, body, code, detail):
    operator = make_user("operator")
    response = client.post("/api/admin/cluster/restart", json=body, headers=bearer(operator))
    assert response.status_code == code, response.get_data(as_text=True)
    assert detail in response.get_json()["detail"]
    assert store.redis.get(store.key("cluster", "lock")) is None


@pytest.mark.parametrize("raw", [b'{"mode": "worker", "pid": ' + b"9" * 5000 + b"}",
                                 b'{"mode": "worker", "pid": 1e999999}',
                                 b'{"mode": "worker", "pid": ' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_restart_refuses_numbers_python_cannot_hold_and_deep_nesting(client, store, make_user, raw):
    """Issue 13, finding 11: a 5,000-digit pid, an infinite one, or a deeply nested value: 400, never 500."""
    response = client.post("/api/admin/cluster/restart", data=raw, content_type="application/json",
                           headers=bearer(make_user("operator")))
    assert response.status_code == 400 and response.get_json()["error"] == "bad_request"
    assert store.redis.get(store.key("cluster", "lock")) is None


@pytest.mark.parametrize("pid", ["²", "9" * 5000, "٣", " 7", "1_0"])
def test_the_panel_form_refuses_a_pid_that_is_not_ascii_digits(client, auth, store, make_user, pid):
    """Issue 13, finding 11, through the panel's form: the same field check as the API's."""
    auth.login(make_user("operator"))
    response = auth.post("/admin/panels/cluster/restart", data={"mode": "worker", "pid": pid})
    assert response.status_code == 400 and "pid must be a whole number" in response.get_data(as_text=True)
    assert store.redis.get(store.key("cluster", "lock")) is None


def test_roles_and_unknown_operation(client, store, make_user):
    viewer = make_user("viewer")
    response = client.post("/api/admin/cluster/restart", json={"mode": "rolling"}, headers=bearer(viewer))
    assert response.status_code == 403
    assert client.get("/api/admin/cluster/status").status_code == 401
    for bad in ("0123456789abcdef", "not-an-id", "x" * 40):
        response = client.get(f"/api/admin/cluster/operations/{bad}", headers=bearer(viewer))
        assert response.status_code == 404 and response.get_json()["error"] == "not_found"
    # A viewer sees the panel without action buttons.
    html = client.get("/admin/panels/cluster", headers=bearer(viewer)).get_data(as_text=True)
    assert 'id="panel-cluster"' in html and "cluster/restart" not in html and "panels/cluster/restart" not in html


# ---------------------------------------------------------------- real gunicorn masters


def test_killed_worker_is_replaced_in_api_and_panel(gunicorn, make_user):
    server = gunicorn(workers=2, env=FAST)
    viewer, operator = make_user("viewer"), make_user("operator")
    before = registered(server, viewer, 2)
    host = before["hosts"][0]
    assert (host["master_pid"], host["workers_target"], host["crashes"]) == (server.master_pid, 2, 0)
    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    started = time.monotonic()

    def replaced():
        body = status(server, viewer)
        pids = alive_pids(body)
        workers, _, _ = panel_rows(server, viewer)
        ok = victim not in pids and victim not in workers and len(pids) == 2 and \
            sorted(p for p, s in workers.items() if s == "alive") == pids == server.worker_pids()
        return body if ok else None
    body = wait_until(replaced, 10, interval=0.2, message="the replacement in the API and the panel")
    assert time.monotonic() - started < 10
    assert body["hosts"][0]["crashes"] == 1
    _, _, soup = panel_rows(server, operator)
    assert soup.select('form[data-confirm] input[name="mode"][value="worker"]')  # operators get buttons


def test_rolling_restart_under_load_drops_no_request(gunicorn, make_user, store):
    server = gunicorn(workers=3, env=FAST)
    viewer, operator = make_user("viewer"), make_user("operator")
    registered(server, viewer, 3)
    old = server.worker_pids()
    results = {"ok": 0, "failed": []}
    stop = threading.Event()

    def load():
        deadline = time.monotonic() + 90
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                response = requests.get(server.url + "/demo/sleep?ms=20", timeout=10)
                if response.status_code == 200:
                    results["ok"] += 1
                else:
                    results["failed"].append(response.status_code)
            except requests.RequestException as exc:
                results["failed"].append(repr(exc))

    clients = [threading.Thread(target=load) for _ in range(2)]
    for thread in clients:
        thread.start()
    try:
        wait_until(lambda: results["ok"] >= 10, 10, message="load to flow")
        response = restart(server, operator, mode="rolling")
        assert response.status_code == 202, response.text
        operation_id = response.json()["operation_id"]
        second = restart(server, operator, mode="worker", pid=old[0])
        assert second.status_code == 409 and operation_id in second.json()["detail"]
        record = finish(server, operator, operation_id, timeout=90)
        served_during = results["ok"]
    finally:
        stop.set()
        for thread in clients:
            thread.join(15)
    assert record["status"] == "done", record
    assert record["progress"] == {"done": 3, "total": 3}
    assert sorted(step["old_pid"] for step in record["steps"]) == old
    new = server.worker_pids()
    assert len(new) == 3 and not set(new) & set(old)
    assert sorted(step["new_pid"] for step in record["steps"]) == new
    assert server.process.poll() is None
    body = registered(server, viewer, 3)
    assert body["hosts"][0]["master_pid"] == server.master_pid and body["hosts"][0]["crashes"] == 0
    assert results["failed"] == [] and served_during > 20
    actions = [(e["action"], e["result"], e["detail"].get("operation")) for e in audit.entries(store, 20)]
    assert ("cluster.restart", "accepted", operation_id) in actions
    assert ("cluster.restart", "done", operation_id) in actions
    assert ("cluster.restart", "refused", None) in actions


@pytest.mark.slow
def test_two_masters_form_one_fleet_and_take_each_others_commands(gunicorn, make_user):
    alpha = gunicorn(workers=2, env={**FAST, "MONITOR_HOST_NAME": "alpha"}, name="alpha")
    beta = gunicorn(workers=2, env={**FAST, "MONITOR_HOST_NAME": "beta"}, name="beta")
    viewer, operator = make_user("viewer"), make_user("operator")
    registered(alpha, viewer, 2, host="alpha")
    body = registered(beta, viewer, 2, host="beta")
    for server in (alpha, beta):
        seen = status(server, viewer)
        assert [h["host"] for h in seen["hosts"]] == ["alpha", "beta"]
        assert {h["host"]: h["master_pid"] for h in seen["hosts"]} == {"alpha": alpha.master_pid,
                                                                      "beta": beta.master_pid}
        assert seen["count"] == 4 and seen["alive"] == 4
    workers, hosts, _ = panel_rows(alpha, viewer)
    assert hosts == ["alpha", "beta"] and sorted(workers) == sorted(alpha.worker_pids() + beta.worker_pids())
    assert restart(alpha, operator, mode="reload").status_code == 400  # which host?

    target = beta.worker_pids()[0]
    alpha_before = alpha.worker_pids()
    response = restart(alpha, operator, mode="worker", pid=target, host="beta")
    assert response.status_code == 202, response.text
    record = finish(alpha, operator, response.json()["operation_id"])
    assert record["status"] == "done", record
    assert [(s["host"], s["old_pid"]) for s in record["steps"]] == [("beta", target)]
    assert target not in beta.worker_pids() and record["steps"][0]["new_pid"] in beta.worker_pids()
    assert alpha.worker_pids() == alpha_before
    seen = registered(beta, viewer, 2, host="beta")
    assert target not in [w["pid"] for w in seen["workers"]]
    assert body["hosts"][1]["crashes"] == 0 == seen["hosts"][1]["crashes"]

    # A fleet-wide rolling restart, asked of beta, goes host after host.
    old = {"alpha": alpha.worker_pids(), "beta": beta.worker_pids()}
    response = restart(beta, operator, mode="rolling")
    assert response.status_code == 202 and response.json()["hosts"] == ["alpha", "beta"]
    record = finish(beta, operator, response.json()["operation_id"])
    assert record["status"] == "done" and record["progress"] == {"done": 4, "total": 4}, record
    assert [s["host"] for s in record["steps"]] == ["alpha", "alpha", "beta", "beta"]
    for name, server in (("alpha", alpha), ("beta", beta)):
        assert sorted(s["old_pid"] for s in record["steps"] if s["host"] == name) == old[name]
        assert not set(server.worker_pids()) & set(old[name]) and len(server.worker_pids()) == 2


def test_add_and_remove_workers_never_below_one(gunicorn, make_user, store):
    server = gunicorn(workers=1, env=FAST)
    viewer, operator = make_user("viewer"), make_user("operator")
    registered(server, viewer, 1)
    started = time.monotonic()
    response = server.post("/admin/panels/cluster/restart", data={"mode": "add"}, headers=bearer(operator))
    assert response.status_code == 200 and "add started" in response.text
    operation_id = operations.recent_operations(store, 1)[0]["id"]
    assert finish(server, operator, operation_id, timeout=10)["status"] == "done"
    body = registered(server, viewer, 2)
    assert time.monotonic() - started < 10 and body["hosts"][0]["workers_target"] == 2
    response = restart(server, operator, mode="remove")
    assert response.status_code == 202
    record = finish(server, operator, response.json()["operation_id"], timeout=10)
    assert record["status"] == "done" and record["steps"][0]["action"] == "remove"
    body = registered(server, viewer, 1)
    assert time.monotonic() - started < 20 and body["hosts"][0]["workers_target"] == 1
    refused = restart(server, operator, mode="remove")
    assert refused.status_code == 409 and "last worker" in refused.json()["detail"]
    assert len(server.worker_pids()) == 1
    entry = audit.entries(store, 1)[0]
    assert (entry["action"], entry["result"], entry["detail"]["mode"]) == ("cluster.restart", "refused", "remove")
