"""(exceptions) What issue 19 adds to a request: nothing for one that succeeds; a bounded cost for a burst of
10,000 identical exceptions.

Each app runs in a process of its own with its embedded Redis (``bench_request_cost``'s WSGI
caller, no server), the processes alternating rounds:

- **before**: ``monitor.create_app()`` with the capabilities the monitor had before the
  exceptions, slow-requests and releases ones (``MONITOR_CAPABILITIES`` without them);
- **after**: ``monitor.create_app()`` as it is (every default capability); **after (A/A)**, a
  second such process: its difference from **after** is the noise floor.

Part (a): ``GET /demo/hello`` (200): CPU µs per request, request thread and whole process.
Part (b): bursts of 10,000 ``GET /demo/error`` (the same RuntimeError each time; Flask logs
each one to stderr, here /dev/null, in both apps): CPU µs per failing request (request thread:
the exception sink and fingerprinting; process: with the flusher's shipping, measured until two
flushes after the burst), the exceptions shipper's flushes, the Redis commands it queued (in
the flusher's one batch per tick) and its CPU per burst, the group's count and samples in
Redis after all bursts (exact: 10,000 × bursts, at most 5 samples) and the Redis memory its
keys take. ``--rounds N``, ``--requests N``, ``--bursts N``.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "bench")]

from bench_request_cost import SECRET_KEY, caller  # noqa: E402

ROUNDS = 7
REQUESTS = 20_000
BURST = 10_000
BURSTS = 3
NEW = ("exceptions", "slow", "releases")
KINDS = {"before": "before", "after": "after", "after (A/A)": "after"}


def make_app(kind, instance):
    """Return the demo app of ``kind``: ``before`` (without this issue's capabilities) or ``after``."""
    from monitor import create_app
    from monitor.core.config import DEFAULT_CAPABILITIES

    config = {"MONITOR_INSTANCE_PATH": instance, "MONITOR_KEY_PREFIX": "benchexc", "SECRET_KEY": SECRET_KEY,
              "MONITOR_FLUSH_INTERVAL": 1.0}
    if kind == "before":
        config["MONITOR_CAPABILITIES"] = [name for name in DEFAULT_CAPABILITIES if name.rsplit(".", 1)[1] not in NEW]
    return create_app(config)


def child(kind):
    """Serve the parent's rounds (``hello N``, ``error N``, ``stats``) on stdin, one answer line each."""
    from monitor.core.state import state

    instance = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, instance, True)
    app = make_app(kind, instance)
    monitor = state(app)
    shipped = count_shipping(monitor)
    hello, error = caller(app, "/demo/hello"), caller(app, "/demo/error", "500 INTERNAL SERVER ERROR")
    hello(1000)  # warm-up: first-request work, caches, the flusher's start
    error(10)
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, n = line.strip().partition(" ")
        if command == "stats":
            print(stats(monitor), flush=True)
            continue
        shipped[:] = [0, 0, 0]
        process, thread = time.process_time_ns(), time.thread_time_ns()
        n = int(n)
        (hello if command == "hello" else error)(n)
        thread = time.thread_time_ns() - thread
        if command == "error":  # the flusher ships the burst: two ticks
            time.sleep(2.5 * monitor.flusher.interval)
        process = time.process_time_ns() - process
        print(process / n / 1000, thread / n / 1000, *shipped, flush=True)


def count_shipping(monitor):
    """Wrap the exceptions capability's flusher shipper: return ``[flushes, commands queued, CPU µs]`` it adds to."""
    from monitor.capabilities.exceptions.ship import Shipper

    counts = [0, 0, 0]
    for i, shipper in enumerate(monitor.flusher.shippers):
        if isinstance(shipper, Shipper):
            def counted(pipe, now, ship=shipper):
                first, cpu = len(pipe.command_stack), time.thread_time_ns()
                undo = ship(pipe, now)
                counts[0] += len(pipe.command_stack) > first
                counts[1] += len(pipe.command_stack) - first
                counts[2] += (time.thread_time_ns() - cpu) / 1000
                return undo
            monitor.flusher.shippers[i] = counted
    return counts


def stats(monitor):
    """Return ``count samples keys bytes`` of the burst's group in Redis (zeros without the capability)."""
    if "exceptions" not in monitor.capabilities:
        return "0 0 0 0"
    from monitor.capabilities.exceptions import layout, query

    store = monitor.store
    groups = query.groups(store, 3600)["groups"]
    group = next(g for g in groups if g["type"] == "RuntimeError")
    samples = store.redis.llen(layout.group(store, group["id"], "s"))
    names = list(store.scan_prefix("exc"))
    size = sum(store.redis.memory_usage(name) or 0 for name in names)
    return f"{group['total']} {samples} {len(names)} {size}"


class Child:
    """One app in a process of its own (its embedded Redis in its temporary instance folder)."""

    def __init__(self, kind):
        env = {name: value for name, value in os.environ.items()
               if name != "REDIS_URL" and not name.startswith("MONITOR_")}
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", kind],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, env=env)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {kind} app did not start")

    def ask(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return [float(word) for word in self.process.stdout.readline().split()]

    def close(self):
        self.process.stdin.close()
        self.process.wait(30)


def alternate(children, rounds, line):
    """Return {name: [answer of each round]}, the processes taking turns."""
    results = {name: [] for name in children}
    names = list(children)
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(children[name].ask(line))
    return results


def table(title, results, columns):
    """Print fastest and median of each column per app, then after − before and the A/A noise (medians of pairs)."""
    print(title)
    print(f"{'':<30}" + "".join(f"{label:>26}" for label, _ in columns))
    print(f"{'':<30}" + "".join(f"{'fastest':>13}{'median':>13}" for _ in columns))
    for name, rows in results.items():
        cells = []
        for _, i in columns:
            series = [row[i] for row in rows]
            cells += [f"{min(series):>13.2f}", f"{statistics.median(series):>13.2f}"]
        print(f"{name:<30}" + "".join(cells))
    for label, ours, theirs in (("added: after − before", "after", "before"),
                                ("A/A: after (A/A) − after", "after (A/A)", "after")):
        cells = []
        for _, i in columns:
            a, b = [row[i] for row in results[ours]], [row[i] for row in results[theirs]]
            cells += [f"{min(a) - min(b):>13.2f}", f"{statistics.median(x - y for x, y in zip(a, b)):>13.2f}"]
        print(f"{label:<30}" + "".join(cells))
    print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--bursts", type=int, default=BURSTS)
    parser.add_argument("--child", choices=("before", "after"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child)
    children = {}
    try:
        for name, kind in KINDS.items():
            children[name] = Child(kind)
        hello = alternate(children, args.rounds, f"hello {args.requests}")
        table(f"(a) GET /demo/hello (200), {args.rounds} rounds × {args.requests:,} requests: CPU µs per request",
              hello, (("request thread", 1), ("process", 0)))
        burst = alternate(children, args.bursts, f"error {BURST}")
        table(f"(b) bursts of {BURST:,} identical exceptions (GET /demo/error, 500), {args.bursts} bursts: CPU µs per "
              "failing request; the exceptions shipper's flushes, Redis commands and CPU µs per burst", burst,
              (("request thread", 1), ("process, with flushes", 0), ("flushes", 2), ("commands", 3),
               ("shipper CPU µs", 4)))
        count, samples, keys, size = children["after"].ask("stats")
        expected = BURST * args.bursts + 10  # and the warm-up's 10
        print(f"after {args.bursts} bursts: the group's count {int(count):,} (sent {expected:,}: "
              f"{'exact' if count == expected else 'NOT EXACT'}), {int(samples)} samples kept, "
              f"{int(keys)} exceptions keys, {size / 1024:.1f} KiB of Redis")
        burst_cpu = statistics.median(row[0] for row in burst["after"]) * BURST / 1000
        base_cpu = statistics.median(row[0] for row in burst["before"]) * BURST / 1000
        print(f"one burst of {BURST:,}: {burst_cpu:,.0f} ms of process CPU with the capability, {base_cpu:,.0f} ms "
              f"without it (Flask's own error handling and logging, the metrics and logs capabilities)")
    finally:
        for process in children.values():
            process.close()


if __name__ == "__main__":
    main()
