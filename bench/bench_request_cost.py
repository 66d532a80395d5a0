"""(a) The monitor's added CPU per host-app request, the whole app in process. Target: ≤ 3 µs.

Each app runs in a process of its own (so the monitor's imports and threads count against it
alone) and serves ``GET /demo/hello`` (a ``jsonify`` route) through ``app(environ,
start_response)``, reading the body as a WSGI server does:

- **bare Flask**: the host routes of ``wsgi:app`` (the demo blueprint's rules and ``/``, same
  hello view), nothing else;
- **monitor**: ``monitor.create_app()``, the app of ``wsgi:app``, its flusher running (1 s).

Both have the same ``SECRET_KEY`` and Flask's own session interface (the monitored app's
cheaper one is swapped out, so that it cannot make up for the monitor's cost). Nothing else is
stubbed: routing over the monitor's extra rules, its timing point, its flusher and sampler
threads all run. Each round reports the CPU per request of the process (all threads: the
request's own work and the flusher's aggregation of it) and of the request thread alone.

Between two processes of the very same code the figure moves by up to about 1 µs (hash seed,
memory layout), as much as the cost measured; so the apps run in ``--pairs`` groups of three
processes (bare, the A/A control, the monitored app), each group under its own
``PYTHONHASHSEED``, rounds alternating over every process. The added µs is the median over
the groups of the monitored process's median round minus bare's in its group (the fastest
column: fastest round minus fastest round); the A/A row times the control against bare the
same way: its added µs is the noise floor. ``--pairs N``, ``--rounds N`` (per process),
``--requests N`` (per round).
"""
import argparse
import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from io import BytesIO

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUESTS = 20_000
ROUNDS = 6
PAIRS = 4
PATH = "/demo/hello"
SECRET_KEY = "bench-request-cost-secret-key-0123456789"


def bare_app():
    """Return bare Flask with the host routes of ``wsgi:app`` (same rules, same hello view)."""
    from flask import Blueprint, Flask, jsonify

    app = Flask("bare")
    app.secret_key = SECRET_KEY
    demo = Blueprint("demo", "bare", url_prefix="/demo")

    @demo.get("/hello")
    def hello():
        return jsonify(message="hello")

    for rule in ("/sleep", "/error", "/cached/<key>", "/table", "/log"):
        demo.add_url_rule(rule, rule.strip("/").split("/")[0], lambda **kwargs: "")

    @app.get("/")
    def index():
        return jsonify(app="bare")

    app.register_blueprint(demo)
    return app


def monitored_app(instance):
    """Return ``monitor.create_app()`` (Flask's own session interface: the monitor leaves it) with the bare app's key."""
    sys.path.insert(0, ROOT)  # the repository's monitor package
    from monitor import create_app

    return create_app({"MONITOR_INSTANCE_PATH": instance, "MONITOR_KEY_PREFIX": "benchcost",
                       "SECRET_KEY": SECRET_KEY})


def environ_for(path):
    """Return a GET environ as gunicorn's sync worker builds it (the fields Flask reads)."""
    return {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "RAW_URI": path, "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000", "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "wrk", "HTTP_ACCEPT": "*/*", "wsgi.url_scheme": "http",
        "wsgi.input": BytesIO(), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }


def caller(app, path=PATH, expected="200 OK"):
    """Return ``run(n)``: n requests through ``app``; each answer must be ``expected`` and is read whole."""
    template = environ_for(path)
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def run(n):
        for _ in range(n):
            body = app(dict(template), start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        if len(statuses) != n or set(statuses) != {expected}:
            raise RuntimeError(f"{path} answered {set(statuses)}")
        statuses.clear()
    return run


def child(kind):
    """Serve rounds for the parent: read ``n`` on stdin, answer process and thread CPU µs per request."""
    instance = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, instance, True)  # after the embedded Redis stopped (atexit runs LIFO)
    run = caller(bare_app() if kind == "bare" else monitored_app(instance))
    run(1000)  # warm-up: first-request work, caches, the flusher's start
    print("ready", flush=True)
    for line in sys.stdin:
        n = int(line)
        process, thread = time.process_time_ns(), time.thread_time_ns()
        run(n)
        print((time.process_time_ns() - process) / n / 1000, (time.thread_time_ns() - thread) / n / 1000,
              flush=True)


class Child:
    """One app in a process of its own, under hash seed ``seed``."""

    def __init__(self, kind, seed):
        # The monitored app gets an embedded Redis of its own in its temporary instance folder.
        env = {name: value for name, value in os.environ.items()
               if name != "REDIS_URL" and not name.startswith("MONITOR_")}
        env["PYTHONHASHSEED"] = str(seed)
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", kind],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {kind} app did not start")

    def round(self, n):
        """Return (process, thread) CPU µs per request over ``n`` requests."""
        self.process.stdin.write(f"{n}\n")
        self.process.stdin.flush()
        process, thread = map(float, self.process.stdout.readline().split())
        return process, thread

    def close(self):
        self.process.stdin.close()
        self.process.wait(30)


KINDS = {"bare Flask": "bare", "bare Flask (A/A control)": "bare", "monitor (create_app)": "monitor"}


def measure(pairs, rounds, n):
    """Return {name: [[(process µs, thread µs) of each round] of each group]}, every process alternating."""
    children = {}
    try:
        for group in range(pairs):
            for name, kind in KINDS.items():
                children[name, group] = Child(kind, seed=group + 1)
        results = {name: [[] for _ in range(pairs)] for name in KINDS}
        order = list(children)
        for round_ in range(rounds):
            shift = round_ % len(order)
            for name, group in order[shift:] + order[:shift]:
                results[name][group].append(children[name, group].round(n))
    finally:
        for process in children.values():
            process.close()
    return results


def added_per_group(results, name, base, column):
    """Return, per group, ``name``'s median round minus ``base``'s, in ``column`` (0 process, 1 thread)."""
    return [statistics.median(v[column] for v in ours) - statistics.median(v[column] for v in theirs)
            for ours, theirs in zip(results[name], results[base])]


def report(results, pairs, rounds, n):
    print(f"GET {PATH}, app(environ, start_response), one process per app, {pairs} groups (hash seeds) × "
          f"{rounds} alternating rounds × {n} requests; CPU µs per request")
    print(f"{'':<34} {'process (all threads)':>23} {'request thread':>23}")
    print(f"{'':<34} {'fastest':>11} {'median':>11} {'fastest':>11} {'median':>11}")
    for name, groups in results.items():
        cells = []
        for column in (0, 1):
            series = [v[column] for group in groups for v in group]
            cells += [min(series), statistics.median(series)]
        print(f"{name:<34} {cells[0]:>11.2f} {cells[1]:>11.2f} {cells[2]:>11.2f} {cells[3]:>11.2f}")
    for label, name, base, note in (("added by the monitor", "monitor (create_app)", "bare Flask", "target ≤ 3"),
                                    ("A/A: control minus bare (noise)", "bare Flask (A/A control)", "bare Flask",
                                     "")):
        cells = []
        for column in (0, 1):
            fastest = (min(v[column] for group in results[name] for v in group)
                       - min(v[column] for group in results[base] for v in group))
            cells += [fastest, statistics.median(added_per_group(results, name, base, column))]
        print(f"{label:<34} {cells[0]:>11.2f} {cells[1]:>11.2f} {cells[2]:>11.2f} {cells[3]:>11.2f}   {note}")
    per_group = added_per_group(results, "monitor (create_app)", "bare Flask", 0)
    print("added by the monitor in each group (process, median round): " + ", ".join(f"{x:.2f}" for x in per_group))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=PAIRS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--child", choices=("bare", "monitor"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child)
    results = measure(args.pairs, args.rounds, args.requests)
    report(results, args.pairs, args.rounds, args.requests)
    return results


if __name__ == "__main__":
    main()
