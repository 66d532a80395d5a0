"""The queries listener's cost per SQL statement (target: ≤ 3 µs) and the outgoing wrapper's per HTTP call.

SQL: one statement (``SELECT name FROM items WHERE id = ?``) run through SQLAlchemy 2 Core on
one connection to SQLite in memory, on an engine the monitor does not watch and on one it
instruments, inside a request of a monitored app (the path every host request takes: the
endpoint, the request's N+1 counts, the statement's group, histogram bucket and slowest heap)
and outside any request. Also the monitor's wrapper alone around a stub DB-API call, and, for
comparison, an engine with two no-op ``before_cursor_execute``/``after_cursor_execute``
listeners: SQLAlchemy's own price of cursor events, which is why the monitor wraps the
dialect's DB-API calls instead.

HTTP: GET to a local HTTP server through urllib3's pool with and without the monitor's
wrapper (so the figure is the wrapper's share of a real call on the loopback), and the
wrapper alone around a stub that answers at once.

Times are the benchmark thread's CPU time (``time.thread_time_ns``), so that the time other
jobs of a shared machine hold the CPU is left out (the loopback server runs on threads of its
own, so the HTTP rows count the client's side only). Each figure is the fastest of ROUNDS
rounds, with the median beside it to show the noise.
"""
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.pool import StaticPool  # noqa: E402
from urllib3 import HTTPConnectionPool  # noqa: E402

from monitor import Monitor, create_app  # noqa: E402
from monitor.capabilities.outgoing import collect as outgoing  # noqa: E402
from monitor.capabilities.queries import collect as queries  # noqa: E402
from monitor.core.state import state  # noqa: E402
from support.upstream import Upstream  # noqa: E402

STATEMENTS = 2_000
CALLS = 200
ROUNDS = 40
STATEMENT = text("SELECT name FROM items WHERE id = :id")


def interleaved(modes, n):
    """Return ``{name: (fastest, median)}`` µs per call of each mode over ROUNDS rounds of ``n`` calls.

    Each round runs every mode once, in turn, so that what disturbs a round disturbs all
    modes alike; the fastest round is the figure (disturbances only ever add time).
    """
    rounds = {name: [] for name in modes}
    for _ in range(ROUNDS):
        for name, fn in modes.items():
            started = time.thread_time_ns()
            fn(n)
            rounds[name].append((time.thread_time_ns() - started) / n / 1000)
    return {name: (min(times), statistics.median(times)) for name, times in rounds.items()}


def in_request(app, fn):
    """Run ``fn`` inside a request to the app's /items/7, as a view would."""
    def run(n):
        with app.test_request_context("/items/7"):
            fn(n)
    return run


def sqlite_engine():
    engine = create_engine("sqlite://", poolclass=StaticPool)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(text("INSERT INTO items (name) VALUES (:name)"), [{"name": f"item {i}"} for i in range(100)])
    return engine


def statements(engine):
    def run(n):
        with engine.connect() as conn:
            execute = conn.execute
            for i in range(n):
                execute(STATEMENT, {"id": i % 100 + 1})
    return run


def wrapper_alone(n):
    timed, sql = queries._timed(lambda cursor, statement, parameters, context: None), \
        "SELECT name FROM items WHERE id = ?"
    for _ in range(n):
        timed(None, sql, (1,), None)


def no_op(*args):
    pass


class Answer:
    status = 200


def table(title, figures, notes):
    print(f"\n{title:<52} {'fastest':>8} {'median':>8}")
    for name, (fastest, median) in figures.items():
        print(f"{name:<52} {fastest:>8.2f} {median:>8.2f}   {notes.get(name, '')}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"MONITOR_INSTANCE_PATH": tmp, "MONITOR_KEY_PREFIX": "benchsql"})
        monitor = state(app)
        monitor.flusher.stop(flush=False)
        monitor.started = True  # the worker's background work stays off: only the collection runs

        @app.get("/items/<int:n>")
        def items(n):
            return "ok"

        bare, watched, evented = sqlite_engine(), sqlite_engine(), sqlite_engine()
        Monitor().instrument_sqlalchemy(watched)
        for name in ("before_cursor_execute", "after_cursor_execute"):
            event.listen(evented, name, no_op)
        sql = interleaved({
            "not watched": statements(bare),
            "watched, in a request": in_request(app, statements(watched)),
            "watched, outside a request": statements(watched),
            "the wrapper alone, around a stub call": in_request(app, wrapper_alone),
            "two no-op cursor event listeners (comparison)": statements(evented),
        }, STATEMENTS)
        counted = sum(group[0] for group in monitor.sql.tally.take()[0].values())
        assert counted == 3 * STATEMENTS * ROUNDS, counted
        bare_us, watched_us, evented_us = sql["not watched"], sql["watched, in a request"], \
            sql["two no-op cursor event listeners (comparison)"]
        sql["cost in a request (difference)"] = (watched_us[0] - bare_us[0], watched_us[1] - bare_us[1])
        sql["cost of no-op cursor events (difference)"] = (evented_us[0] - bare_us[0], evented_us[1] - bare_us[1])
        table("SQLite in memory, µs per statement", sql, {"cost in a request (difference)": "target ≤ 3"})
        print(f"{'ratio not watched / watched in a request':<52} {bare_us[0] / watched_us[0]:>8.3f} "
              f"{bare_us[1] / watched_us[1]:>8.3f}")

        upstream = Upstream().start()
        try:
            pool = HTTPConnectionPool("127.0.0.1", upstream.port, maxsize=1)
            wrapped, original = HTTPConnectionPool.urlopen, HTTPConnectionPool.urlopen.__wrapped__

            def calls(urlopen):
                def run(n):
                    for i in range(n):
                        urlopen(pool, "GET", f"/users/{i}/orders").data
                return run

            def stub_calls(urlopen):
                def run(n):
                    for i in range(n):
                        urlopen(pool, "GET", "/users/7/orders")
                return run

            stub = outgoing._timed(lambda pool, method, url: Answer, outgoing._urllib3_target,
                                   lambda answer: answer.status)
            http = interleaved({
                "urlopen, no wrapper": in_request(app, calls(original)),
                "urlopen, monitor's wrapper": in_request(app, calls(wrapped)),
            }, CALLS)
            http.update(interleaved({
                "stub call, no wrapper": in_request(app, stub_calls(lambda pool, method, url: Answer)),
                "stub call, monitor's wrapper": in_request(app, stub_calls(stub)),
            }, STATEMENTS))
            counted = sum(group[0] for group in monitor.outgoing.tally.take()[0].values())
            assert counted == (CALLS + STATEMENTS) * ROUNDS, counted
        finally:
            upstream.stop()
        bare_us, wrapped_us = http["stub call, no wrapper"], http["stub call, monitor's wrapper"]
        http["wrapper cost (stub difference)"] = (wrapped_us[0] - bare_us[0], wrapped_us[1] - bare_us[1])
        table("HTTP GET on the loopback (urllib3), µs per call", http, {})
        real_bare, real_wrapped = http["urlopen, no wrapper"], http["urlopen, monitor's wrapper"]
        print(f"{'ratio no wrapper / wrapper, real call':<52} {real_bare[0] / real_wrapped[0]:>8.3f} "
              f"{real_bare[1] / real_wrapped[1]:>8.3f}")
        for name in monitor.store.scan_prefix(""):
            monitor.store.redis.delete(name)


if __name__ == "__main__":
    main()
