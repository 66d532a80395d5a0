"""(a) The request hooks' own cost per request, in process. Target: ≤ 3 µs.

Calls the three hooks the monitor registers (before_request, after_request, teardown) inside
one pushed request context, so only the hooks run: the timer, the own-path check, the
series key, the histogram bucket and the counters. Compared side by side with three
empty hooks (the floor of calling three functions) and with a whole request through
Flask's test client, with and without the monitor, for scale.
"""
import os
import statistics
import sys
import tempfile
import time

from flask import Flask, jsonify

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from monitor import create_app  # noqa: E402
from monitor.extension import state  # noqa: E402

CALLS = 200_000
REQUESTS = 5_000
ROUNDS = 5


def per_call_us(fn, n):
    best = []
    for _ in range(ROUNDS):
        started = time.perf_counter_ns()
        fn(n)
        best.append((time.perf_counter_ns() - started) / n / 1000)
    return statistics.median(best)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"MONITOR_INSTANCE_PATH": tmp, "MONITOR_KEY_PREFIX": "benchhooks"})
        monitor = state(app)
        monitor.flusher.stop(flush=False)
        before = app.before_request_funcs[None][0]
        after = app.after_request_funcs[None][0]
        teardown = next(f for f in app.teardown_request_funcs[None] if f.__name__ == "unhandled")
        response = app.response_class("hello")

        def hooks(n):
            for _ in range(n):
                before()
                after(response)
                teardown(None)

        def empty_hooks(n):
            def noop():
                return None

            def noop_after(r):
                return r
            for _ in range(n):
                noop()
                noop_after(response)
                noop()

        with app.test_request_context("/demo/hello"):
            hooks_us = per_call_us(hooks, CALLS)
            floor_us = per_call_us(empty_hooks, CALLS)
        recorded = sum(s[0] for s in monitor.metrics.take().values())
        assert recorded == CALLS * ROUNDS, recorded

        bare = Flask("bare")

        @bare.get("/demo/hello")
        def hello():
            return jsonify(message="hello")

        monitored_client, bare_client = app.test_client(), bare.test_client()

        def through(client):
            def run(n):
                for _ in range(n):
                    client.get("/demo/hello")
            return run

        full_monitored = per_call_us(through(monitored_client), REQUESTS)
        full_bare = per_call_us(through(bare_client), REQUESTS)
        own = monitor.metrics
        print(f"{'measure':<44} {'µs/request':>11}")
        print(f"{'monitor hooks (before, after, teardown)':<44} {hooks_us:>11.2f}   target ≤ 3")
        print(f"{'three empty hooks (function-call floor)':<44} {floor_us:>11.2f}")
        print(f"{'hooks net of the floor':<44} {hooks_us - floor_us:>11.2f}")
        print(f"{'hooks as they time themselves (panel figure)':<44} {own.own_ns / own.own_n / 1000:>11.2f}")
        print(f"{'whole request, test client, monitored app':<44} {full_monitored:>11.1f}")
        print(f"{'whole request, test client, bare Flask':<44} {full_bare:>11.1f}")
        print(f"{'ratio bare / monitored':<44} {full_bare / full_monitored:>11.3f}")
        for name in monitor.store.scan_prefix(""):
            monitor.store.redis.delete(name)


if __name__ == "__main__":
    main()
