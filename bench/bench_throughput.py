"""(b) Throughput of GET /demo/hello: monitored app against bare Flask, same gunicorn settings, wrk.

Every server runs from the repository root, so gunicorn loads the same gunicorn.conf.py for
all of them (2 sync workers, same logging), on 127.0.0.1. Rounds alternate between the apps
so that noise from the shared machine falls on all of them; the table shows the median
requests/s and the ratio to bare Flask. prometheus_flask_exporter in multiprocess mode is a
peer row when it is installed. Target: monitored / bare ≥ 0.97.
"""
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKERS = 2
ROUNDS = 3
SECONDS = 5
WRK = ("-t2", "-c16")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(app, tmp, extra_env=None):
    port = free_port()
    instance = tempfile.mkdtemp(dir=tmp)
    env = {**os.environ, "MONITOR_INSTANCE_PATH": instance, "WEB_CONCURRENCY": str(WORKERS),
           "PYTHONPATH": ROOT, **(extra_env or {})}
    env.pop("REDIS_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/demo/hello", timeout=1).status_code == 200:
                return process, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{app} did not start")


def stop(process):
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def wrk(url, seconds):
    out = subprocess.run(["wrk", *WRK, f"-d{seconds}s", url + "/demo/hello"], capture_output=True, text=True,
                         check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package wrk)")
    apps = [("bare Flask", "bench.throughput_apps:bare()", {}),
            ("monitor", "wsgi:app", {})]
    try:
        import prometheus_flask_exporter  # noqa: F401
        peer = True
    except ImportError:
        peer = False
    with tempfile.TemporaryDirectory() as tmp:
        if peer:
            multiproc = tempfile.mkdtemp(dir=tmp)
            apps.append(("prometheus_flask_exporter (multiprocess)", "bench.throughput_apps:prometheus_exporter()",
                         {"PROMETHEUS_MULTIPROC_DIR": multiproc}))
        servers = {name: start(app, tmp, env) for name, app, env in apps}
        try:
            for _, url in servers.values():
                wrk(url, 1)  # warm-up
            results = {name: [] for name in servers}
            for _ in range(ROUNDS):
                for name, (_, url) in servers.items():
                    results[name].append(wrk(url, SECONDS))
        finally:
            for process, _ in servers.values():
                stop(process)
    base = statistics.median(results["bare Flask"])
    print(f"GET /demo/hello, gunicorn {WORKERS} sync workers, wrk {' '.join(WRK)} {SECONDS}s × {ROUNDS} rounds")
    print(f"{'app':<44} {'req/s (median)':>15} {'runs':>26} {'ratio':>7}")
    for name, runs in results.items():
        median = statistics.median(runs)
        target = "   target ≥ 0.97" if name == "monitor" else ""
        print(f"{name:<44} {median:>15.0f} {' '.join(f'{r:.0f}' for r in runs):>26} {median / base:>7.3f}{target}")


if __name__ == "__main__":
    main()
