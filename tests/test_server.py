"""The server as `make run` starts it: gunicorn, its hooks, the embedded Redis."""
import concurrent.futures
import os
import re
import signal
import stat
import subprocess
import sys

import psutil
import pytest
import requests

from monitor.core import embedded
from support import ROOT, wait_until


def _processes_under(instance):
    """Every live gunicorn or redis-server process that belongs to this instance folder."""
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            env = proc.info["environ"] or {}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if str(instance) in cmdline or env.get("MONITOR_INSTANCE_PATH") == str(instance) or \
                embedded.socket_path(instance) in cmdline:
            found.append(proc)
    return found


def test_embedded_redis_is_shared_by_every_worker(gunicorn):
    server = gunicorn(workers=3, embedded=True)
    health = server.health()
    assert health["status"] == "healthy" and health["redis"] == {"ok": True}
    assert health["worker"]["clustered"] is True
    assert health["worker"]["pid"] in server.worker_pids()
    redis_procs = [p for p in psutil.Process(server.master_pid).children() if "redis" in p.name()]
    assert len(redis_procs) == 1, "the master owns exactly one embedded Redis"

    def fetch(_):
        return requests.get(server.url + "/demo/cached/shared", timeout=10).json() | {
            "pid": requests.get(server.url + "/health", timeout=10).json()["worker"]["pid"]}

    first = fetch(0)  # concurrent first misses would each compute and store a value
    answers = []
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        for _ in range(5):  # which worker accepts is the kernel's choice: a few rounds until two have
            answers += pool.map(fetch, range(30))
            if len({a["pid"] for a in answers}) >= 2:
                break
    assert len({a["pid"] for a in answers}) >= 2, "concurrent requests reach several workers"
    assert {a["value"] for a in answers} == {first["value"]}, "every worker reads the one cached value"
    assert os.path.exists(os.path.join(server.instance, "redis", "appendonly.aof"))
    control = embedded.socket_path(server.instance, "gunicorn.ctl")
    wait_until(lambda: os.path.exists(control), 10, message="gunicorn's control socket in the instance folder")
    assert f"Control socket listening at {control}" in server.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_master_leaves_nothing_behind_and_a_restart_keeps_data(gunicorn, tmp_path, sig):
    server = gunicorn(workers=2, embedded=True, name="app")
    value = server.get("/demo/cached/persist").json()["value"]
    key_file = os.path.join(server.instance, "secret_key")
    key = open(key_file).read()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert server.stop(sig) == 0
    wait_until(lambda: not _processes_under(server.instance), 10, message="no process left")

    server.start()
    assert server.get("/demo/cached/persist").json()["value"] == value
    assert open(key_file).read() == key


def test_master_killed_hard_takes_its_redis_along(gunicorn):
    server = gunicorn(workers=1, embedded=True)
    redis_pid = [p.pid for p in psutil.Process(server.master_pid).children() if "redis" in p.name()][0]
    server.stop(signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(redis_pid) or psutil.Process(redis_pid).status() == "zombie",
               10, message="embedded Redis to exit with its master")


def _start_failing(tmp_path, env):
    full_env = {**os.environ, "MONITOR_INSTANCE_PATH": str(tmp_path / "instance"), **env}
    return subprocess.run([sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", "127.0.0.1:0"],
                          cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("env, expected", [
    ({"MONITOR_FLUSH_INTERVAL": "soon"}, "monitor: MONITOR_FLUSH_INTERVAL='soon' is not accepted: expected seconds"),
    ({"REDIS_URL": "redis://127.0.0.1:9/0"}, "monitor: cannot reach Redis at redis://127.0.0.1:9/0 (REDIS_URL)"),
    ({"REDIS_URL": "redis://user:hunter2@127.0.0.1:9/0"}, "cannot reach Redis at redis://***@127.0.0.1:9/0"),
])
def test_a_bad_start_gives_one_clear_line(tmp_path, env, expected):
    result = _start_failing(tmp_path, env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in output
    assert "hunter2" not in output


def test_setup_link_is_logged_once_while_no_user_exists(gunicorn, make_user):
    server = gunicorn(workers=1)
    lines = [line for line in server.log().splitlines() if "/setup?token=" in line]
    assert len(lines) == 1 and f"http://127.0.0.1:{server.port}/setup?token=" in lines[0]
    server.stop()
    make_user("admin")
    server.start()
    assert len([line for line in server.log().splitlines() if "/setup?token=" in line]) == 1


def test_cli_works_without_a_server_on_the_same_embedded_data(gunicorn, tmp_path, prefix):
    instance = tmp_path / "cli-instance"
    env = {**os.environ, "MONITOR_INSTANCE_PATH": str(instance), "MONITOR_KEY_PREFIX": prefix}
    env.pop("REDIS_URL", None)
    created = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "monitor", "create-user", "ada", "--role", "admin",
         "--password-stdin"], input="a-long-password\n", cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60)
    assert created.returncode == 0, created.stderr
    assert "created ada (admin)" in created.stdout
    assert not embedded.is_running(instance), "the CLI stops the Redis it started"
    server = gunicorn(workers=1, embedded=True, name="cli-instance")
    listed = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "monitor", "list-users"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert listed.stdout.strip() == "ada\tadmin"
    assert "/setup?token=" not in server.log()
    assert embedded.is_running(instance), "the CLI leaves the server's Redis running"


#: An app that counts, in its worker, the calls of gunicorn's Logger.atoms (the access-log
#: fields gunicorn builds for each request when it believes an access log is enabled).
ATOMS_APP = '''
import json
import logging

from gunicorn import glogging

calls = 0
_atoms = glogging.Logger.atoms


def _counted(self, *args):
    global calls
    calls += 1
    return _atoms(self, *args)


glogging.Logger.atoms = _counted
logging.getLogger("atoms_app").info("counting atoms")


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"atoms": calls}).encode()]
'''


@pytest.mark.parametrize("args, per_request", [((), 0), (("--access-logfile", "-"), 1)])
def test_access_log_atoms_are_built_only_with_an_access_log(gunicorn, tmp_path, args, per_request):
    """The shipped gunicorn config keeps gunicorn's access log off unless --access-logfile asks for it."""
    (tmp_path / "atoms_app.py").write_text(ATOMS_APP)
    server = gunicorn(workers=1, app="atoms_app:app", args=args, env={"PYTHONPATH": str(tmp_path)}, health="/")
    before = server.get("/").json()["atoms"]
    for _ in range(5):
        server.get("/")
    assert server.get("/").json()["atoms"] - before == 6 * per_request
    log = server.log()
    # One line format for gunicorn's records and the app's, as the shipped config always had.
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[\d+\] \[INFO\] "
    assert re.search(stamp + r"gunicorn\.error: Starting gunicorn", log)
    assert re.search(stamp + r"atoms_app: counting atoms", log)
    assert ('"GET / HTTP/1.1" 200' in log) is bool(per_request)
