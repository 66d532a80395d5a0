"""Releases: what each worker runs, one deploy marker per change of the fleet's release, per-release metrics
compared in the metrics panel and the API, and a rolling restart (or a reload) onto a new MONITOR_RELEASE on a real fleet."""
import json
import subprocess
import time

import pytest
from bs4 import BeautifulSoup

from monitor import create_app
from monitor.capabilities.metrics import releases as metric_releases
from monitor.capabilities.releases import report
from monitor.core import process
from monitor.core.state import state
from support import ROOT, bearer, drive, wait_until

# ---------------------------------------------------------------- the release of a process


def test_the_release_is_the_setting_then_the_platforms_then_git(tmp_path):
    assert process.release("v7 ", str(tmp_path), {"SOURCE_VERSION": "abc"}) == "v7"
    assert process.release("", str(tmp_path), {"HEROKU_SLUG_COMMIT": "h1", "GIT_COMMIT": "g1"}) == "h1"
    assert process.release("", str(tmp_path), {"SOURCE_VERSION": "s1", "HEROKU_SLUG_COMMIT": "h1"}) == "s1"
    assert process.release("", str(tmp_path), {"GIT_COMMIT": "g1"}) == "g1"
    assert process.release("", str(tmp_path / "nowhere"), {}) == "unknown"
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert process.release("", str(repo), {}) == head
    assert process.release("", str(tmp_path), {}) == "unknown"  # not a repository


def test_the_app_reports_its_release(app_config, monkeypatch):
    monkeypatch.setenv("MONITOR_RELEASE", "2026.12.1")
    app = create_app(app_config)
    try:
        assert app.config["MONITOR_RELEASE"] == "2026.12.1" == state(app).process.release
    finally:
        state(app).flusher.stop(flush=False)
    git_app = create_app({**app_config, "MONITOR_RELEASE": ""})  # wsgi's app folder: this checkout
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        assert git_app.config["MONITOR_RELEASE"] in (head.stdout.strip(), "unknown")
    finally:
        state(git_app).flusher.stop(flush=False)


# ---------------------------------------------------------------- deploy markers


def reporter(store):
    """Return ``report(release, host, pid, at)``: one worker's report, as its flusher task sends it."""
    script = store.script(report.REPORT)

    def send(release, host, pid, at):
        rid = process.release_id(release)
        return script(keys=report.keys(store), args=[rid, release, f"{rid}|{host}|{pid}", repr(at), 10,
                                                     report.RETENTION_S, report.WORKER_TTL_S])
    return send


def markers(store):
    return [json.loads(m) for m in store.redis.zrange(report.keys(store)[5], 0, -1)]


def test_a_deploy_writes_one_marker_however_many_workers_and_hosts(store):
    send = reporter(store)
    t = 1_800_000_000.0
    for pid in (1, 2, 3):
        assert send("v1", "a", pid, t) == 0  # the fleet's first release: no marker
    assert send("v1", "b", 9, t + 1) == 0
    # host a rolls onto v2 while b still runs v1; b's worker restarts on v1 meanwhile
    assert send("v2", "a", 11, t + 30) == 1
    assert [send("v2", "a", pid, t + 31) for pid in (12, 13)] == [0, 0]
    assert send("v1", "b", 10, t + 32) == 0 and send("v1", "a", 2, t + 33) == 0
    assert send("v2", "b", 21, t + 60) == 0
    assert markers(store) == [{"t": t + 30, "release": "v2", "previous": "v1"}]
    assert store.redis.get(report.keys(store)[4]) == process.release_id("v2")
    # a roll-back to v1: once no live worker runs v2 any more
    assert send("v1", "a", 31, t + 65) == 0
    assert send("v1", "a", 31, t + 75) == 1
    assert markers(store)[-1] == {"t": t + 75, "release": "v1", "previous": "v2"}
    assert all(0 < store.redis.ttl(key) <= report.RETENTION_S for key in report.keys(store))


def test_the_api_lists_releases_workers_and_markers(app, client, make_user):
    monitor = state(app)
    monitor.flusher.tick()
    body = client.get("/api/admin/releases", headers=bearer(make_user("viewer"))).json
    mine = app.config["MONITOR_RELEASE"]
    assert body["current"] == mine and body["markers"] == [] and body["comparison"] is None
    [row] = body["releases"]
    assert row["release"] == mine and row["workers"] == 1 and row["hosts"] == ["testhost"] and row["current"]
    assert row["first_seen"] <= row["last_seen"]
    assert client.get("/api/admin/releases").status_code == 401


# ---------------------------------------------------------------- per-release figures


def release_app(app_config, release):
    app = create_app({**app_config, "MONITOR_RELEASE": release})

    @app.get("/work/<int:ms>")
    def work(ms):
        time.sleep(ms / 1000)
        return "done"
    return app


def test_per_release_figures_are_split_and_a_p95_change_is_marked(app_config, make_user, store):
    old, new = release_app(app_config, "v1"), release_app(app_config, "v2")
    try:
        for made in (old, new):
            state(made).flusher.tick()  # reports: v1 first
            time.sleep(0.01)
        old_client, new_client = old.test_client(), new.test_client()
        drive(old, old_client, *(["/work/1"] * 60 + ["/demo/hello"] * 10))
        drive(new, new_client, *(["/work/4"] * 55 + ["/demo/hello"] * 5))
        state(new).flusher.tick(time.time() + report.REPORT_S)
        body = new_client.get("/api/admin/releases", headers=bearer(make_user("viewer"))).json
        assert [m["release"] for m in body["markers"]] == ["v2"] and body["markers"][0]["previous"] == "v1"
        assert [r["release"] for r in body["releases"]] == ["v2", "v1"] and body["current"] == "v2"
        comparison = body["comparison"]
        assert comparison["release"] == "v2" and comparison["previous"] == "v1"
        rows = {row["endpoint"]: row for row in comparison["endpoints"]}
        work, hello = rows["/work/<int:ms>"], rows["/demo/hello"]
        assert (work["current"]["count"], work["previous"]["count"]) == (55, 60)
        assert work["p95_change"] > 1 and work["marked"] is True  # 4 ms against about 1 ms
        assert (hello["current"]["count"], hello["previous"]["count"]) == (5, 10) and hello["marked"] is False
        assert comparison["endpoints"][0] is not None and comparison["endpoints"][0]["endpoint"] == "/work/<int:ms>"
        assert store.redis.ttl(metric_releases.key(store, "v2")) > 0
    finally:
        for made in (old, new):
            state(made).flusher.stop(flush=False)


def test_the_metrics_panel_draws_markers_and_compares_releases(app_config, auth, make_user):
    old, new = release_app(app_config, "v1"), release_app(app_config, "v2")
    try:
        state(old).flusher.tick()
        time.sleep(0.01)
        drive(old, old.test_client(), *["/work/1"] * 5)
        client = new.test_client()
        drive(new, client, *["/work/1"] * 5)
        auth.client = client
        auth.login(make_user("viewer"))
        soup = BeautifulSoup(client.get("/admin/panels/metrics").get_data(as_text=True), "html.parser")
        island = json.loads(soup.select_one("#metrics-series").string)
        assert [m["label"] for m in island["markers"]] == ["v2"] and island["markers"][0]["t"] >= island["t"][0]
        assert "v2" in soup.select_one("#metrics-deploys").text
        summary = soup.select_one("#metrics-releases summary").text
        assert "Release v2 against v1" in summary
        assert soup.select("#metrics-releases tbody tr")
    finally:
        for made in (old, new):
            state(made).flusher.stop(flush=False)


# ---------------------------------------------------------------- a real fleet: a new release, rolled out

#: A host app (the demo's) that runs the release its deploy wrote to a file, read when a worker imports it: a
#: worker started by a rolling restart or a reload runs the new one, the others the old one.
HOST = """
import os

from monitor import create_app

os.environ["MONITOR_RELEASE"] = open({release!r}).read().strip()
app = create_app()
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["rolling", "reload"])
def test_a_new_release_rolled_out_writes_one_marker_and_splits_the_figures(gunicorn, make_user, tmp_path, mode):
    release_file = tmp_path / "release"
    release_file.write_text("v1")
    (tmp_path / "release_host.py").write_text(HOST.format(release=str(release_file)))
    server = gunicorn(workers=3, env={"MONITOR_HEARTBEAT_INTERVAL": "0.5"}, app="release_host:app",
                      cwd=str(tmp_path), args=("-c", "python:monitor.gunicorn_conf"))
    server.wait_workers(3)
    viewer, operator = make_user("viewer"), make_user("operator")

    def releases():
        return server.get("/api/admin/releases", headers=bearer(viewer)).json()
    wait_until(lambda: releases()["current"] == "v1" and releases()["releases"][0]["workers"] == 3, 20,
               message="three workers on v1")
    for _ in range(30):
        assert server.get("/demo/hello").status_code == 200
    release_file.write_text("v2")  # the deploy: MONITOR_RELEASE changes for the workers started from now on
    response = server.post("/api/admin/cluster/restart", json={"mode": mode}, headers=bearer(operator))
    assert response.status_code == 202, response.text
    operation = response.json()["operation_id"]
    wait_until(lambda: server.get(f"/api/admin/cluster/operations/{operation}",
                                  headers=bearer(viewer)).json()["status"] == "done", 90, message=f"the {mode}")
    for _ in range(20):
        assert server.get("/demo/hello").status_code == 200

    def split():
        body = releases()
        comparison = body["comparison"] or {"endpoints": []}
        hello = [row for row in comparison["endpoints"] if row["endpoint"] == "/demo/hello"]
        return hello and hello[0]["current"] and hello[0]["current"]["count"] == 20 and body
    body = wait_until(split, 20, message="20 requests of v2 beside 30 of v1")
    assert [(m["release"], m["previous"]) for m in body["markers"]] == [("v2", "v1")]
    rows = {r["release"]: r for r in body["releases"]}
    assert rows["v2"]["current"] and rows["v2"]["workers"] == 3 and set(rows) == {"v1", "v2"}
    hello = next(row for row in body["comparison"]["endpoints"] if row["endpoint"] == "/demo/hello")
    assert hello["previous"]["count"] == 30
    time.sleep(report.REPORT_S * 2)
    assert len(releases()["markers"]) == 1  # the old workers' last reports and the new ones' wrote no other
