"""The demo routes: cheap enough to be public, and off in the Procfile deployment.

Issue 13, finding 12: four anonymous ``/demo/sleep?ms=5000`` held both workers of a 2-worker
server (``/health`` took 9.5 s), and the Procfile deployment served the demo routes to anyone.
"""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from support import ROOT, free_port, wait_until


@pytest.mark.parametrize("ms, slept", [("0", 0), ("250", 250), ("1000", 1000), ("5000", 1000), ("999999999", 1000)])
def test_demo_sleep_sleeps_at_most_a_second(client, ms, slept):
    response = client.get(f"/demo/sleep?ms={ms}")
    assert response.status_code == 200 and response.json == {"slept_ms": slept}


@pytest.mark.parametrize("ms", ["-1", "x", "²", "1e3", "", "9" * 5000])
def test_demo_sleep_refuses_what_is_not_a_number_of_milliseconds(client, ms):
    assert client.get(f"/demo/sleep?ms={ms}").status_code == 400


@pytest.mark.parametrize("ms, spent", [("0", 0), ("20", 20), ("5000", 200)])
def test_demo_cpu_spins_at_most_200_ms(client, ms, spent):
    started = time.thread_time()
    response = client.get(f"/demo/cpu?ms={ms}")
    assert response.status_code == 200 and response.json == {"cpu_ms": spent}
    assert time.thread_time() - started >= spent / 1000 * 0.99
    assert client.get("/demo/cpu?ms=x").status_code == 400


def _web_command():
    with open(os.path.join(ROOT, "Procfile")) as handle:
        return re.search(r"^web:\s*(.+)$", handle.read(), re.M).group(1)


def test_the_procfile_deployment_serves_no_demo_route(tmp_path, redis_url, prefix):
    """Started as a PaaS starts it (the Procfile's command in a shell, PORT set): the monitor answers,
    the demo routes do not exist."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "REDIS_URL": redis_url, "MONITOR_KEY_PREFIX": prefix,
           "MONITOR_INSTANCE_PATH": str(tmp_path / "instance"), "WEB_CONCURRENCY": "1",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}  # the venv's gunicorn
    env.pop("MONITOR_DEMO", None)
    server = subprocess.Popen(["sh", "-c", _web_command()], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy():
            try:
                return requests.get(base + "/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        wait_until(healthy, 30, message="the Procfile's gunicorn")
        for path in ("/demo/hello", "/demo/sleep?ms=1000", "/demo/log?msg=x", "/demo/error"):
            assert requests.get(base + path, timeout=10).status_code == 404, path
        assert requests.get(base + "/login", timeout=10).status_code == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)


def test_make_run_keeps_the_demo_routes_for_monitor_traffic():
    """``make run`` starts gunicorn as it is, so the demo routes (and ``monitor traffic``) work there."""
    with open(os.path.join(ROOT, "Makefile")) as handle:
        run = re.search(r"^run:.*\n\t(.+)$", handle.read(), re.M).group(1)
    assert run.endswith("gunicorn wsgi:app") and "MONITOR_DEMO" not in run
