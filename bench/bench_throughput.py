"""(b) The monitored app under real gunicorn against bare Flask under gunicorn's own defaults.

Primary figure: the server's CPU time per request, over its whole process tree (the master,
its workers and any Redis it runs), read with psutil before and after each wrk run of fixed
length; other jobs on the machine disturb it far less than requests/s, which is shown beside.

- **bare Flask**: an app module written into an empty temporary folder (no gunicorn config
  file there, so gunicorn runs on its own defaults), with the same two routes as the demo
  host: ``/demo/hello`` (``jsonify``) and ``/demo/table`` (a 50-row Jinja table and 5 reads of
  Flask-Caching's Redis backend, on a ``redis-server`` the bench starts for it on a Unix
  socket and counts in its tree). No secret key, no session work.
- **monitor**: ``gunicorn wsgi:app`` from the repository root, so with its
  ``gunicorn.conf.py``, ``WEB_CONCURRENCY=2`` and the embedded Redis its master runs
  (``/demo/table`` reads ``monitor.cache`` on it).

Both get the only command-line flags they share: ``-w 2 -b 127.0.0.1:PORT``. A second server
of each kind is the A/A control: its ratio to the first shows the noise floor (1.000 on a
quiet machine). Every server is first loaded for ``WARMUP`` s per route, then rounds alternate
the servers (in a rotated order); the table shows medians over the rounds. Ratios: "CPU ratio"
is bare's CPU per request divided by the server's (≥ 0.97 is the target for the monitor: it
then costs at most 3% more CPU per request than bare Flask), "req/s ratio" is the server's
requests/s over bare's. The load goes to 127.0.0.1 only: ``wrk -t1 -c8`` for ``--seconds`` (2)
per run, ``--rounds`` (15) rounds. Short rounds keep the runs of one round close in time, so
the other jobs of a shared machine weigh on them alike; "paired", the median of the rounds'
own ratios, gains most from that and is the verdict.

``--continuous-hz 0,19,100`` measures the continuous profiler's cost instead: one monitored
server per rate (``MONITOR_CONTINUOUS_HZ`` on its side; 0 is the sampler off) against the bare
pair, and for each rate the CPU ratio points it loses against the sampler off ("pts lost":
the sampler-off server's CPU ratio times the median, over the rounds, of the CPU per request
it adds to that server's, so each round pairs the two monitored servers; at most 1 point is
the target at the default rate).
Under ``wrk`` both workers always serve, so the sampler samples at its full rate.
``--routes /demo/table`` measures that route alone: more rounds in the same time.
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import psutil
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from support import free_port  # noqa: E402

WORKERS = 2
ROUNDS = 15
SECONDS = 2
#: Seconds of load per server and route before measuring: past first-request work and, above
#: all, past each worker's first full garbage collection after start-up (its cost grows with
#: the heap the imports left, 0.1–0.2 s for the monitored app), which would otherwise land in
#: one round or another.
WARMUP = 10
WRK = ("-t1", "-c8")
ROUTES = ("/demo/hello", "/demo/table")
TARGET = 0.97

#: The bare app: the demo host's two routes, the same view code and page, without the monitor.
BARE_APP = '''
import os

from flask import Blueprint, Flask, jsonify, render_template
from flask_caching import Cache

TABLE_ROWS = [{"id": i, "name": f"item number {i}", "price": 1.25 * i, "stock": (7 * i) % 13} for i in range(50)]
TABLE_KEYS = ("demo:visits", "demo:orders", "demo:revenue", "demo:returns", "demo:rating")

app = Flask(__name__)
cache = Cache(app, config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": os.environ["BENCH_REDIS_URL"]})
bp = Blueprint("demo", __name__, url_prefix="/demo")


@bp.get("/hello")
def hello():
    return jsonify(message="hello")


@bp.get("/table")
def table():
    figures = {}
    for key in TABLE_KEYS:
        value = cache.get(key)
        if value is None:
            value = len(key) * 11
            cache.set(key, value, timeout=300)
        figures[key.partition(":")[2]] = value
    return render_template("monitor/demo/table.html", rows=TABLE_ROWS, figures=figures)


app.register_blueprint(bp)
'''
#: The page of /demo/table, copied into the bare app's folder (a template, not the monitor's code).
TABLE_HTML = os.path.join(ROOT, "monitor", "templates", "monitor", "demo", "table.html")


class Server:
    """One gunicorn master (and a redis-server of its own for the bare app) on 127.0.0.1."""

    def __init__(self, name, bare, tmp, extra_env=None):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder = tempfile.mkdtemp(dir=tmp)
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("MONITOR_", "GUNICORN_", "REDIS_", "PYTHON", "WEB_CONCURRENCY"))}
        self.redis = None
        if bare:
            # An empty folder holding the app module and its template only: gunicorn's defaults.
            os.makedirs(os.path.join(folder, "templates", "monitor", "demo"))
            with open(os.path.join(folder, "app.py"), "w") as handle:
                handle.write(BARE_APP)
            shutil.copy(TABLE_HTML, os.path.join(folder, "templates", "monitor", "demo", "table.html"))
            # On a Unix socket, as the monitor's embedded Redis: the same transport on both sides.
            socket_path = os.path.join(folder, "redis.sock")
            self.redis = subprocess.Popen(
                ["redis-server", "--port", "0", "--unixsocket", socket_path, "--save", "", "--appendonly", "no",
                 "--dir", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            env["BENCH_REDIS_URL"] = f"unix://{socket_path}"
            app, cwd = "app:app", folder
        else:
            env.update(MONITOR_INSTANCE_PATH=os.path.join(folder, "instance"), WEB_CONCURRENCY=str(WORKERS))
            app, cwd = "wsgi:app", ROOT
        env.update(extra_env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(WORKERS), "-b", f"127.0.0.1:{self.port}", app],
            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def wait(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if all(requests.get(self.url + route, timeout=2).status_code == 200 for route in ROUTES):
                    return self
            except requests.RequestException:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not start")

    def cpu_seconds(self):
        """Return the CPU seconds (user + system) the server's process tree has used so far."""
        processes = []
        try:
            master = psutil.Process(self.process.pid)
            processes = [master, *master.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
        if self.redis is not None:
            processes.append(psutil.Process(self.redis.pid))
        total = 0.0
        for proc in processes:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def run(self, route, seconds):
        """Return (requests/s, CPU µs per request) of one wrk run on ``route``."""
        before = self.cpu_seconds()
        out = subprocess.run(["wrk", *WRK, f"-d{seconds}s", self.url + route], capture_output=True, text=True,
                             check=True, timeout=seconds + 30).stdout
        spent = self.cpu_seconds() - before
        served = int(re.search(r"(\d+) requests in", out).group(1))
        if re.search(r"Non-2xx or 3xx responses", out):
            raise RuntimeError(f"{self.name} answered errors on {route}:\n{out}")
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), spent / served * 1e6

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(10)


#: The continuous profiler's default rate, the row its target applies to.
DEFAULT_HZ = 19
#: A rate's loss against the sampler off, in CPU ratio points, at the default rate.
HZ_TARGET_POINTS = 1.0


def hz_name(hz):
    return f"monitor (HZ={hz})"


def measure(rounds, seconds, rates=None, routes=ROUTES):
    """Return {route: {server name: [(req/s, CPU µs per request) of each round]}}.

    ``rates``: MONITOR_CONTINUOUS_HZ values, one monitored server each, instead of the monitor pair;
    ``routes``: the routes measured (each server still answers both before it is measured).
    """
    kinds = [("bare Flask", True, None), ("bare Flask (A/A control)", True, None)]
    if rates:
        kinds += [(hz_name(hz), False, {"MONITOR_CONTINUOUS_HZ": str(hz)}) for hz in rates]
    else:
        kinds += [("monitor (wsgi:app)", False, None), ("monitor (A/A control)", False, None)]
    with tempfile.TemporaryDirectory() as tmp:
        servers = [Server(name, bare, tmp, env) for name, bare, env in kinds]
        try:
            for server in servers:
                server.wait()
            for server in servers:
                for route in routes:
                    server.run(route, WARMUP)
            results = {route: {server.name: [] for server in servers} for route in routes}
            for round_ in range(rounds):
                shift = round_ % len(servers)
                for server in servers[shift:] + servers[:shift]:
                    for route in routes:
                        results[route][server.name].append(server.run(route, seconds))
        finally:
            for server in servers:
                server.stop()
    return results


def report(results, rounds, seconds, rates=None):
    """Print one table per route: medians, the ratios to each row's baseline, per-round figures."""
    baselines = {"bare Flask": "bare Flask", "bare Flask (A/A control)": "bare Flask",
                 "monitor (wsgi:app)": "bare Flask", "monitor (A/A control)": "monitor (wsgi:app)",
                 **{hz_name(hz): "bare Flask" for hz in rates or ()}}
    print(f"gunicorn -w {WORKERS} (sync workers), wrk {' '.join(WRK)}, {rounds} alternating rounds of {seconds} s "
          f"after {WARMUP} s of warm-up; medians over the rounds.\n"
          "CPU: the server's whole process tree (master, workers, Redis) per request served. CPU ratio = the "
          "baseline's CPU per request / the row's (median / median; 'paired': median of the rounds' ratios); "
          "≥ 0.97 means at most 3% more CPU per request than the baseline. req/s ratio = the row's / the baseline's.")
    for route, runs in results.items():
        print(f"\nGET {route}")
        print(f"{'server':<26} {'CPU µs/req':>10} {'against':<20} {'CPU ratio':>9} {'paired':>7} {'req/s':>7} "
              f"{'req/s ratio':>11}  CPU µs/req of each round")
        for name, values in runs.items():
            base = runs[baselines[name]]
            cpu = statistics.median(c for _, c in values)
            rate = statistics.median(r for r, _ in values)
            base_cpu = statistics.median(c for _, c in base)
            base_rate = statistics.median(r for r, _ in base)
            paired = statistics.median(b / c for (_, b), (_, c) in zip(base, values))
            against = "-" if name == baselines[name] else baselines[name]
            note = ""
            if name == "monitor (wsgi:app)" and route == "/demo/hello":
                note = "   target ≥ 0.97"
            elif "A/A" in name:
                note = "   A/A: 0.99–1.01 expected"
            elif rates and 0 in rates and name in {hz_name(hz) for hz in rates if hz}:
                off = runs[hz_name(0)]
                # the sampler-off server's ratio times the paired fraction of CPU this rate adds to it
                ratio_off = statistics.median(c for _, c in base) / statistics.median(c for _, c in off)
                lost = 100 * ratio_off * (1 - statistics.median(c0 / c for (_, c0), (_, c) in zip(off, values)))
                target = f" (target ≤ {HZ_TARGET_POINTS:g} at HZ={DEFAULT_HZ})" if name == hz_name(DEFAULT_HZ) else ""
                note = f"   pts lost against HZ=0: {lost:.2f}{target}"
            print(f"{name:<26} {cpu:>10.1f} {against:<20} {base_cpu / cpu:>9.3f} {paired:>7.3f} {rate:>7.0f} "
                  f"{rate / base_rate:>11.3f}  {' '.join(f'{c:.0f}' for _, c in values)}{note}")


def main(argv=None):
    if not shutil.which("wrk") or not shutil.which("redis-server"):
        sys.exit("wrk and redis-server are needed (Debian packages wrk, redis-server)")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seconds", type=int, default=SECONDS)
    parser.add_argument("--continuous-hz", type=lambda text: [int(hz) for hz in text.split(",")], default=None,
                        metavar="0,19,100", help="one monitored server per MONITOR_CONTINUOUS_HZ (0: the sampler off)")
    parser.add_argument("--routes", type=lambda text: text.split(","), default=list(ROUTES),
                        metavar=",".join(ROUTES), help="the routes to measure (fewer: more rounds in the same time)")
    args = parser.parse_args(argv)
    if set(args.routes) - set(ROUTES):
        parser.error(f"--routes: choose among {', '.join(ROUTES)}")
    results = measure(args.rounds, args.seconds, args.continuous_hz, args.routes)
    report(results, args.rounds, args.seconds, args.continuous_hz)
    return results


if __name__ == "__main__":
    main()
