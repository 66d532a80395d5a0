"""Time from launching ``gunicorn wsgi:app`` (4 workers, embedded Redis) to the first healthy /health.

Prints each run and the median of 5 against a baseline: the same gunicorn command serving a
bare Flask app (no monitor), so the table shows what the monitor adds to start-up.
"""
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from support import free_port  # noqa: E402

RUNS = 5
BARE_APP = "from flask import Flask\napp = Flask(__name__)\n@app.get('/health')\ndef health():\n    return {'status': 'healthy'}\n"


def launch(app_module, cwd, instance, extra_args=()):
    port = free_port()
    env = {**os.environ, "MONITOR_INSTANCE_PATH": instance, "WEB_CONCURRENCY": "4"}
    env.pop("REDIS_URL", None)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", app_module, "--bind", f"127.0.0.1:{port}",
                                *extra_args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while time.perf_counter() - started < 60:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
                if response.status_code == 200 and response.json()["status"] == "healthy":
                    return time.perf_counter() - started
            except requests.RequestException:
                pass
            time.sleep(0.01)
        raise RuntimeError("no healthy /health within 60 s")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "bare.py"), "w") as handle:
            handle.write(BARE_APP)
        monitor_runs, bare_runs = [], []
        for run in range(RUNS):
            # A fresh instance folder each time: the first start of a new machine.
            monitor_runs.append(launch("wsgi:app", ROOT, os.path.join(tmp, f"instance{run}")))
            bare_runs.append(launch("bare:app", tmp, os.path.join(tmp, f"bare{run}"),
                                    ("--workers", "4", "--no-control-socket")))
    print("start-up: launch → first healthy /health, 4 workers (seconds)")
    print(f"{'run':>5} {'monitor':>10} {'bare flask':>11}")
    for run, (mon, bare) in enumerate(zip(monitor_runs, bare_runs), 1):
        print(f"{run:>5} {mon:>10.3f} {bare:>11.3f}")
    median_mon, median_bare = statistics.median(monitor_runs), statistics.median(bare_runs)
    print(f"{'median':>6} {median_mon:>9.3f} {median_bare:>11.3f}   ratio {median_mon / median_bare:.2f}x"
          f"   target < 3 s: {'met' if median_mon < 3 else 'MISSED'}")


if __name__ == "__main__":
    main()
