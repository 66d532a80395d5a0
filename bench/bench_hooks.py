"""(a) The request hooks' own cost per request, in process. Target: ≤ 3 µs.

Calls the two app-wide hooks the monitor registers (before_request, after_request), its
only ones, inside one pushed request context, so only the hooks run: the own-path split,
the timer, the profiling check, the series key, the histogram bucket and the counters.
Compared side by side with two empty hooks (the floor of calling two functions), with
every app-wide hook of the monitored app called the way Flask calls them (through
``ensure_sync``, which costs about 0.4 µs a hook), and with a whole request through Flask's
test client, with and without the monitor (the same /demo/hello blueprint on bare Flask).
"""
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.throughput_apps import bare as bare_app  # noqa: E402
from monitor import create_app  # noqa: E402
from monitor.core.state import state  # noqa: E402

CALLS = 100_000
REQUESTS = 5_000
ROUNDS = 9


def per_call_us(fn, n):
    """Return ``(fastest, median)`` µs per call over ROUNDS rounds of ``n`` calls.

    The fastest round is the figure, as ``timeit`` advises: on a shared machine other jobs
    only ever add time, so the minimum is the cost itself; the median shows the noise.
    """
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter_ns()
        fn(n)
        rounds.append((time.perf_counter_ns() - started) / n / 1000)
    return min(rounds), statistics.median(rounds)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"MONITOR_INSTANCE_PATH": tmp, "MONITOR_KEY_PREFIX": "benchhooks"})
        monitor = state(app)
        monitor.flusher.stop(flush=False)
        monitor.started = True  # the worker's background work stays off: only the hooks run

        def hook(funcs, name):
            return next(f for f in funcs[None] if f.__name__ == name)
        before = hook(app.before_request_funcs, "start_timer")
        after = hook(app.after_request_funcs, "stop_timer")
        response = app.response_class("hello")

        def hooks(n):
            for _ in range(n):
                before()
                after(response)

        def empty_hooks(n):
            def noop():
                return None

            def noop_after(r):
                return r
            for _ in range(n):
                noop()
                noop_after(response)

        befores, afters = app.before_request_funcs[None], app.after_request_funcs[None][::-1]

        def app_wide_hooks(n):
            ensure_sync = app.ensure_sync
            for _ in range(n):
                for func in befores:
                    ensure_sync(func)()
                for func in afters:
                    ensure_sync(func)(response)

        with app.test_request_context("/demo/hello"):
            hooks_us = per_call_us(hooks, CALLS)
            floor_us = per_call_us(empty_hooks, CALLS)
            app_wide_us = per_call_us(app_wide_hooks, CALLS)
        recorded = sum(s[0] for s in monitor.recorder.take().values())
        assert recorded == 2 * CALLS * ROUNDS, recorded

        monitored_client, bare_client = app.test_client(), bare_app().test_client()

        def through(client):
            def run(n):
                for _ in range(n):
                    client.get("/demo/hello")
            return run

        full_monitored = per_call_us(through(monitored_client), REQUESTS)
        full_bare = per_call_us(through(bare_client), REQUESTS)
        own = monitor.recorder
        names = ", ".join(f.__name__ for f in befores + afters)
        rows = [("monitor hooks (before, after)", hooks_us, "target ≤ 3"),
                ("two empty hooks (function-call floor)", floor_us, ""),
                ("hooks net of the floor", (hooks_us[0] - floor_us[0], hooks_us[1] - floor_us[1]), ""),
                ("every app-wide hook, as Flask calls them", app_wide_us, f"({names})"),
                ("whole request, test client, monitored app", full_monitored, ""),
                ("whole request, test client, bare Flask", full_bare, "")]
        print(f"{'measure, µs per request':<44} {'fastest':>8} {'median':>8}")
        for name, (fastest, median), note in rows:
            print(f"{name:<44} {fastest:>8.2f} {median:>8.2f}   {note}")
        print(f"{'hooks as they time themselves (panel figure)':<44} {own.own_ns / own.own_n / 1000:>8.2f}")
        print(f"{'ratio bare / monitored, whole request':<44} {full_bare[0] / full_monitored[0]:>8.3f} "
              f"{full_bare[1] / full_monitored[1]:>8.3f}")
        for name in monitor.store.scan_prefix(""):
            monitor.store.redis.delete(name)


if __name__ == "__main__":
    main()
