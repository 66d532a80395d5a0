"""Continuous profiling: what a sample costs a worker, and Redis bytes per endpoint per day.

**A sample's CPU.** In process: an app whose requests wait in a view 25 frames deep (1 and
4 of them at once, as a sync and a gthread worker run them); the sampler thread's CPU time
(``time.thread_time``) per ``sample()``, and what that makes at 19 and 100 samples a second,
as a share of one core (a busy worker's whole CPU). The throughput bench
(``bench_throughput.py --continuous-hz 0,19,100``) measures the same end to end, noisily.

**Redis bytes.** Starts ``gunicorn wsgi:app`` (3 sync workers, ``MONITOR_CONTINUOUS_HZ`` at its default) on a
``redis-server`` of its own, drives ``wrk -t2 -c6`` over five demo routes in turn (hello, the
50-row table, a cached read, a 20 ms sleep, 20 ms of CPU) for ``--minutes`` whole minutes and
stops the server (each worker ships its current minute). Then it rolls every minute list up
as the fleet does, and the hour lists after them, and prints per endpoint: samples and
distinct stacks per whole minute, Redis bytes of a merged minute (``MEMORY USAGE``, key and
TTL included), of the merged hour record so far, and what a day of such traffic writes and
holds: the minute tier keeps 1,440 minutes (a day), the hour tier 168 hours (7 days).

The hour record holds the union of its minutes' stacks: measured over a few minutes of steady
traffic it is close to what a whole hour holds, since new stacks grow rarer minute by minute.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from monitor import create_app  # noqa: E402
from monitor.capabilities.continuous import codec, layout  # noqa: E402
from monitor.capabilities.continuous.ship import Shipper  # noqa: E402
from monitor.core.state import state  # noqa: E402
from support import free_port, need_program  # noqa: E402
from support.gunicorn import Gunicorn  # noqa: E402
from support.redis_servers import SystemRedis  # noqa: E402

WORKERS = 3
MINUTES = 3
ROUTES = ("/demo/hello", "/demo/table", "/demo/cached/a", "/demo/sleep?ms=20", "/demo/cpu?ms=20")
#: wrk's script: the routes in turn.
ROTATE = "paths = {%s}\ni = 0\nrequest = function()\n  i = i %% #paths + 1\n  return wrk.format('GET', paths[i])\nend\n"


def sample_cost(redis_url, tmp, running, samples=2000):
    """Return the sampler's CPU µs per sample while ``running`` requests wait in a view 25 frames deep."""
    app = create_app({"MONITOR_REDIS_URL": redis_url, "MONITOR_KEY_PREFIX": "b" + uuid.uuid4().hex[:8],
                      "MONITOR_INSTANCE_PATH": os.path.join(tmp, f"cost{running}")})
    release, entered = threading.Event(), threading.Semaphore(0)

    def nested(depth):
        if depth:
            return nested(depth - 1)
        entered.release()
        release.wait(60)
        return "ok"

    app.add_url_rule("/wait", "wait", lambda: nested(20))
    monitor = state(app)
    client = app.test_client()
    client.get("/demo/hello")  # the worker starts: the sampler knows the timing point
    monitor.flusher.stop(flush=False)  # and its thread stops: this one samples
    waiting = [threading.Thread(target=client.get, args=("/wait",)) for _ in range(running)]
    for thread in waiting:
        thread.start()
    for _ in waiting:
        entered.acquire()
    sampler = monitor.sampler
    started = time.thread_time()
    for _ in range(samples):
        sampler.sample(time.time())
    spent = time.thread_time() - started
    release.set()
    for thread in waiting:
        thread.join()
    depth = max(len(stack) for _, stack in sampler.counts)
    return spent / samples * 1e6, depth


def report_cost(costs):
    print("The sampler's CPU per sample (in process, time.thread_time of 2,000 samples), and at a rate, the share "
          "of one core it takes (a busy worker uses one).")
    print(f"\n{'requests running':>16} {'stack depth':>11} {'µs/sample':>9} {'at 19 Hz':>9} {'at 100 Hz':>9}")
    for running, (micros, depth) in costs.items():
        print(f"{running:>16} {depth:>11} {micros:>9.1f} {19 * micros / 1e4:>8.3f}% {100 * micros / 1e4:>8.3f}%")


def run(redis_server, tmp, minutes):
    """Serve ``minutes`` whole minutes of traffic; return (an app reading that fleet, [whole minute starts])."""
    prefix = "b" + uuid.uuid4().hex[:8]
    env = {"REDIS_URL": redis_server.url, "MONITOR_KEY_PREFIX": prefix}
    server = Gunicorn(os.path.join(tmp, "server"), env, WORKERS, free_port()).start()
    script = os.path.join(tmp, "rotate.lua")
    with open(script, "w") as handle:
        handle.write(ROTATE % ", ".join(f'"{route}"' for route in ROUTES))
    first = (int(time.time()) // 60 + 1) * 60
    seconds = first + 60 * minutes - time.time() + 2
    subprocess.run(["wrk", "-t2", "-c6", f"-d{int(seconds)}s", "-s", script, server.url], check=True,
                   capture_output=True, timeout=seconds + 60)
    server.stop()
    app = create_app({"MONITOR_REDIS_URL": redis_server.url, "MONITOR_KEY_PREFIX": prefix,
                      "MONITOR_INSTANCE_PATH": os.path.join(tmp, "reader")})
    return app, [first + 60 * i for i in range(minutes)]


def roll_up(monitor, labels, starts):
    """Roll every minute list up (into its hour), then the hour lists, as the fleet's compactors do."""
    compactor = next(found for found in monitor.flusher.shippers if isinstance(found, Shipper)).compactor
    store = monitor.store
    minutes = [layout.name(store, layout.endpoint_id(label), 60, start - 60 * back)
               for label in labels for start in starts for back in (0, 1, -1)]
    compactor.compact(dict.fromkeys(minutes, True), time.time())
    hours = {layout.name(store, layout.endpoint_id(label), 3600, start // 3600 * 3600)
             for label in labels for start in starts}
    compactor.compact(dict.fromkeys(hours, True), time.time())


def measure(monitor, starts):
    """Return rows per endpoint: samples/min, stacks/min, bytes/min, hour bytes, bytes/day written and held."""
    store = monitor.store
    labels = store.redis.zrange(layout.index(store), 0, -1)
    roll_up(monitor, labels, starts)
    rows = []
    for label in sorted(labels):
        eid = layout.endpoint_id(label)
        samples, stacks, sizes = [], [], []
        for start in starts:
            name = layout.name(store, eid, 60, start)
            record = codec.merge([codec.decode(blob) for blob in store.raw.lrange(name, 0, -1)])
            samples.append(sum(record.values()))
            stacks.append(len(record))
            sizes.append(store.raw.memory_usage(name) or 0)
        hour = sum(store.raw.memory_usage(layout.name(store, eid, 3600, h)) or 0
                   for h in {start // 3600 * 3600 for start in starts})
        minute = statistics.mean(sizes)
        rows.append((label, statistics.mean(samples), statistics.mean(stacks), minute, hour,
                     1440 * minute + 24 * hour, 1440 * minute + 168 * hour))
    return rows


def report(rows, minutes):
    print(f"\ngunicorn -w {WORKERS} (sync), MONITOR_CONTINUOUS_HZ=19, wrk -t2 -c6 over {len(ROUTES)} demo routes in "
          f"turn, {minutes} whole minutes; Redis bytes are MEMORY USAGE of the merged lists.")
    print(f"\n{'endpoint':<20} {'samples/min':>11} {'stacks/min':>10} {'bytes/min':>9} {'hour rec.':>9} "
          f"{'written/day':>11} {'held (1 d + 7 d)':>16}")
    for label, samples, stacks, minute, hour, day, held in rows:
        print(f"{label:<20} {samples:>11.0f} {stacks:>10.1f} {minute:>9.0f} {hour:>9.0f} {day / 1024:>9.0f} KiB "
              f"{held / 1024:>12.0f} KiB")
    total = [sum(row[i] for row in rows) for i in (5, 6)]
    print(f"{'all ' + str(len(rows)) + ' endpoints':<20} {'':>11} {'':>10} {'':>9} {'':>9} {total[0] / 1024:>9.0f} KiB "
          f"{total[1] / 1024:>12.0f} KiB")


def main(argv=None):
    need_program("wrk", "the load of this bench")
    need_program("redis-server", "the Redis this bench measures")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=MINUTES, help="whole minutes of traffic (0: no bytes)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = SystemRedis(os.path.join(tmp, "redis"))
        try:
            costs = {running: sample_cost(redis_server.url, tmp, running) for running in (1, 4)}
            report_cost(costs)
            if args.minutes:
                app, starts = run(redis_server, tmp, args.minutes)
                try:
                    report(measure(state(app), starts), args.minutes)
                finally:
                    state(app).flusher.stop(flush=False)
        finally:
            redis_server.stop()


if __name__ == "__main__":
    main()
