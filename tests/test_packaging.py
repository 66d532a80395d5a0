"""Installed from a wheel, as a new user installs it: a fresh venv outside the checkout, a
ten-line app in a folder of its own, ``gunicorn -c python:monitor.gunicorn_conf``."""
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
import requests

from support import PASSWORD, ROOT, csrf_from, free_port, wait_until

APP = '''\
from flask import Flask

from monitor import Monitor

app = Flask(__name__)
Monitor(app)


@app.get("/")
def hello():
    return "hello"
'''


def _package_files(folder):
    base = os.path.join(ROOT, "monitor", folder)
    return {os.path.relpath(os.path.join(path, name), ROOT).replace(os.sep, "/")
            for path, _, names in os.walk(base) for name in names}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Build the wheel from a copy of the checkout (the build leaves its own files beside the sources)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source)
    shutil.copytree(os.path.join(ROOT, "monitor"), source / "monitor",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("monitor-*.whl")
    return path


@pytest.mark.slow
def test_the_wheel_holds_every_template_static_file_and_vendored_script(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _package_files("templates") | _package_files("static")
    assert any(name.startswith("monitor/static/monitor/htmx-") for name in expected)
    assert expected - names == set()
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[flask.commands]\nmonitor = monitor.cli:group" in entry_points
    assert "[console_scripts]\nmonitor = monitor.dev.app:cli" in entry_points
    assert not [name for name in names if name.startswith(("tests/", "examples/", "bench/"))]


@pytest.mark.slow
def test_a_ten_line_app_from_the_wheel_under_gunicorn(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]
    site = tmp_path / "site"  # an unrelated folder: nothing of the checkout in reach
    site.mkdir()
    (site / "app.py").write_text(APP)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "WEB_CONCURRENCY": "2",
           "PYTHONUNBUFFERED": "1"}
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import monitor; print(monitor.__file__)"],
                           cwd=site, env=env, capture_output=True, text=True, timeout=60)
    assert found.stdout.startswith(str(venv)), "the monitor comes from the installed wheel"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "gunicorn.log", "w+")
    server = subprocess.Popen([str(venv / "bin" / "gunicorn"), "-c", "python:monitor.gunicorn_conf", "app:app",
                               "--bind", f"127.0.0.1:{port}"], cwd=site, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def health():
            try:
                return requests.get(url + "/health", timeout=2).json()
            except (requests.RequestException, ValueError):
                return None
        body = wait_until(health, timeout=60, message="the installed app to answer /health")
        assert body["monitoring"]["gunicorn_hooks"] is True and body["redis"] == {"ok": True}
        assert (site / "instance" / "redis" / "redis.sock").exists(), "the data lives in the app's instance folder"
        assert requests.get(url + "/", timeout=5).text == "hello"
        # The first admin through the setup link the server logged, who is logged in by it.
        link = wait_until(lambda: re.search(r"(http://\S+/setup\?token=\S+)", open(log.name).read()),
                          message="the setup link").group(1)
        browser = requests.Session()
        form = browser.get(link, timeout=10).text
        created = browser.post(link, data={"username": "ada", "password": PASSWORD, "confirm": PASSWORD,
                                           "csrf_token": csrf_from(form)}, allow_redirects=False, timeout=10)
        assert created.status_code == 302 and created.headers["Location"] == "/admin/"  # logged in by setup
        page = browser.get(url + "/admin/", timeout=10)
        assert page.status_code == 200 and 'id="panel-metrics"' in page.text
        assets = re.findall(r'(?:href|src)="(/static/monitor/[^"?]+)', page.text)
        assert {os.path.basename(a).split("-")[0] for a in assets} >= {"htmx", "monitor.css", "monitor.js"}
        for asset in assets:  # served from the installed package, byte for byte the checkout's file
            answer = browser.get(url + asset, timeout=10)
            with open(os.path.join(ROOT, "monitor", "static", "monitor", os.path.basename(asset)), "rb") as handle:
                assert answer.status_code == 200 and answer.content == handle.read(), asset
        # `flask monitor ...` from the entry point, against the running server's data.
        listed = subprocess.run([str(venv / "bin" / "flask"), "--app", "app", "monitor", "list-users"], cwd=site,
                                env=env, capture_output=True, text=True, timeout=60)
        assert listed.stdout.strip() == "ada\tadmin", listed.stderr
        checked = subprocess.run([str(venv / "bin" / "flask"), "--app", "app", "monitor", "check"], cwd=site,
                                 env=env, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "gunicorn: the config python:monitor.gunicorn_conf (no gunicorn.conf.py here)" in checked.stdout
    finally:
        server.terminate()
        server.wait(30)
        log.close()
