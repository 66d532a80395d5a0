"""(b) Throughput of GET /demo/hello: monitored app against bare Flask, same gunicorn settings, wrk.

Every server runs from the repository root, so gunicorn loads the same gunicorn.conf.py for
all of them (2 sync workers, same logging), on 127.0.0.1; the bare app mounts the very
/demo/hello blueprint of ``wsgi:app``. Rounds alternate between the apps (each round in a
rotated order) so that noise from the shared machine falls on all of them. The table shows
the median requests/s, the ratio of medians to bare Flask, and the median of the per-round
ratios (each app against bare Flask in the same round). A second bare Flask server, the
control row, shows the noise floor: its ratio would be 1.000 on a quiet machine. The CPU
columns count the CPU time the whole server (master, workers, embedded Redis) spent per
request served, which other jobs on the machine disturb far less than requests/s; the CPU
ratio (bare's CPU per request / the app's) is the throughput ratio a machine of its own
would show.
prometheus_flask_exporter in multiprocess mode is a peer row when it is installed.
Target: monitored / bare ≥ 0.97. ``--rounds N`` (default 5).
"""
import argparse
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

import psutil
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKERS = 2
ROUNDS = 5
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


def server_cpu(process):
    """Return the CPU seconds (user + system) a server's process tree has used so far."""
    root = psutil.Process(process.pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def wrk(url, seconds, process=None):
    """Return (requests/s, server CPU µs per request) of one wrk run."""
    cpu = server_cpu(process) if process else 0.0
    out = subprocess.run(["wrk", *WRK, f"-d{seconds}s", url + "/demo/hello"], capture_output=True, text=True,
                         check=True).stdout
    cpu = server_cpu(process) - cpu if process else 0.0
    served = int(re.search(r"(\d+) requests in", out).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), cpu / served * 1e6


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package wrk)")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    rounds = parser.parse_args().rounds
    apps = [("bare Flask", "bench.throughput_apps:bare()", {}),
            ("bare Flask (control)", "bench.throughput_apps:bare()", {}),
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
            names = list(servers)
            for round_ in range(rounds):
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    process, url = servers[name]
                    results[name].append(wrk(url, SECONDS, process))
        finally:
            for process, _ in servers.values():
                stop(process)
    bare = [rate for rate, _ in results["bare Flask"]]
    base = statistics.median(bare)
    base_cpu = statistics.median(cpu for _, cpu in results["bare Flask"])
    print(f"GET /demo/hello, gunicorn {WORKERS} sync workers, wrk {' '.join(WRK)} {SECONDS}s × {rounds} rounds")
    print(f"{'app':<42} {'req/s':>6} {'ratio':>6} {'per-round':>10} {'CPU µs/req':>11} {'CPU ratio':>10}"
          "   req/s of each round")
    for name, runs in results.items():
        rates = [rate for rate, _ in runs]
        median = statistics.median(rates)
        paired = statistics.median(rate / b for rate, b in zip(rates, bare))
        cpu = statistics.median(c for _, c in runs)
        target = "   target ≥ 0.97" if name == "monitor" else ""
        print(f"{name:<42} {median:>6.0f} {median / base:>6.3f} {paired:>10.3f} {cpu:>11.0f} {base_cpu / cpu:>10.3f}"
              f"   {' '.join(f'{r:.0f}' for r in rates)}{target}")


if __name__ == "__main__":
    main()
