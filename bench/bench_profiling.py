"""What profiling costs: /demo/hello throughput while a CPU session runs against none, and heap summary time.

Starts ``gunicorn wsgi:app`` (2 workers, embedded Redis, 127.0.0.1), makes an admin token,
then alternates wrk runs (2 threads, 8 connections, 5 s) without and with a CPU session on
all workers, 3 rounds each, and prints both side by side with their ratio. Then it times
guppy3 heap summaries of a worker through the API (command round trip) and as the worker
measured them.
"""
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from monitor.auth.users import Users  # noqa: E402
from monitor.core import embedded  # noqa: E402
from monitor.core.store import Store  # noqa: E402
from support import free_port  # noqa: E402

WRK = "/usr/bin/wrk"
ROUNDS = 3
SECONDS = 5
HEAPS = 5


def wrk(url):
    out = subprocess.run([WRK, "-t2", "-c8", f"-d{SECONDS}s", url], capture_output=True, text=True,
                         check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        instance = os.path.join(tmp, "instance")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "MONITOR_INSTANCE_PATH": instance, "WEB_CONCURRENCY": "2"}
        env.pop("REDIS_URL", None)
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(base + "/health", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not answer /health within 60 s")
                time.sleep(0.1)
            users = Users(Store(embedded.url(instance), "monitor", timeout=2))
            users.create("bench", "admin", "bench-password")
            headers = {"Authorization": f"Bearer {users.create_token('bench')}"}
            api = base + "/api/admin/profiler"
            wrk(base + "/demo/hello")  # warm-up
            idle, profiled, requests_seen = [], [], []
            for _ in range(ROUNDS):
                idle.append(wrk(base + "/demo/hello"))
                sid = requests.post(api + "/cpu/start", json={"duration_s": 120}, headers=headers,
                                    timeout=10).json()["session_id"]
                while len(requests.get(f"{api}/sessions/{sid}", headers=headers, timeout=10).json()["workers"]) < 2:
                    time.sleep(0.1)
                profiled.append(wrk(base + "/demo/hello"))
                stopped = requests.post(api + "/cpu/stop", json={}, headers=headers, timeout=30).json()
                requests_seen.append(stopped["requests"])
            round_trip, in_worker, types = [], [], 0
            for _ in range(HEAPS):
                started = time.perf_counter()
                heap = requests.post(api + "/memory/snapshot", json={}, headers=headers, timeout=60).json()
                round_trip.append((time.perf_counter() - started) * 1000)
                in_worker.append(heap["took_ms"])
                types = len(heap["by_type"])
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)

    print(f"/demo/hello throughput, gunicorn 2 sync workers, wrk -t2 -c8 -d{SECONDS}s (requests/s)")
    print(f"{'round':>5} {'no session':>11} {'CPU session':>12} {'ratio':>7} {'profiled reqs':>14}")
    for n, (a, b, seen) in enumerate(zip(idle, profiled, requests_seen), 1):
        print(f"{n:>5} {a:>11.0f} {b:>12.0f} {b / a:>7.2f} {seen:>14}")
    median_idle, median_prof = statistics.median(idle), statistics.median(profiled)
    print(f"{'median':>6} {median_idle:>10.0f} {median_prof:>12.0f} {median_prof / median_idle:>7.2f}")
    print()
    print(f"guppy3 heap summary of the answering worker ({HEAPS} runs, {types} types shown), ms")
    print(f"{'':>12} {'median':>8} {'max':>8}")
    print(f"{'in worker':>12} {statistics.median(in_worker):>8.0f} {max(in_worker):>8.0f}")
    print(f"{'API call':>12} {statistics.median(round_trip):>8.0f} {max(round_trip):>8.0f}")


if __name__ == "__main__":
    main()
