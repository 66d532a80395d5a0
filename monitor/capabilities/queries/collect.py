"""SQL through SQLAlchemy: each engine's statements timed at the DB-API call and tallied by text and endpoint.

``monitor.instrument_sqlalchemy(engine_or_db)`` instruments an Engine, or every engine a
Flask-SQLAlchemy db made: nothing is instrumented by itself. It wraps the three DB-API calls
of the engine's own dialect instance (``do_execute``, ``do_executemany``,
``do_execute_no_params``), the very calls that SQLAlchemy's ``before_cursor_execute`` and
``after_cursor_execute`` events bracket. The events would do the same job, but giving an
engine any cursor listener makes SQLAlchemy dispatch its engine events on every statement,
which costs more than the whole 3 µs budget (``bench/bench_sql.py``); the wrapper costs a
function call, and leaves every event of the host's own as it was.

The request hooks do no work for SQL: the wrapper finds the request from Flask's context,
and keeps the request's per-statement counts (for N+1) in its WSGI environ, made when the
request runs its first statement, so only requests that run SQL pay. Parameter values are
never looked at.
"""
import functools
from time import perf_counter_ns

from flask.globals import _cv_request

from .normalize import normalize
from .tally import NO_REQUEST, OVERFLOW, Tally, endpoint_of, in_context

#: WSGI environ key of a request's SQL scope: ``(collector, endpoint, {group id: executions})``,
#: or False on the monitor's own routes (their SQL is not counted, as their requests are not).
SCOPE = "monitor.sql"
#: Raw statements whose group id is remembered; past it the memo starts over (statements
#: with inline literals are all different, and must not grow it without bound).
MEMO = 4096

#: The collector of the app that last started the queries capability: SQL run outside any
#: app context (a thread of the host's own) is counted there, under NO_REQUEST.
default = None


class SqlCollector:
    """One app's SQL tally, the group-id memo and the N+1 threshold."""

    def __init__(self, max_statements, threshold):
        self.tally = Tally(max_statements, OVERFLOW)
        self.threshold = threshold
        self.memo = {}

    def group(self, statement):
        """Return the group id of a raw statement (normalised once, then remembered)."""
        gid = self.memo.get(statement)
        if gid is None:
            gid = self.tally.admit(normalize(statement))
            if len(self.memo) >= MEMO:
                self.memo.clear()
            self.memo[statement] = gid
        return gid


def _scope(ctx):
    """Return a request's SQL scope: (collector, endpoint, {group id: executions}), or False."""
    collector = getattr(ctx.app.extensions.get("monitor"), "sql", None)
    endpoint = collector and endpoint_of(ctx.request)
    if not endpoint:
        return False
    return collector, endpoint, {}


def _record(statement, ns, failed):
    ctx = _cv_request.get(None)
    if ctx is None:
        _, collector = in_context("sql", default)
        if collector is not None:
            collector.tally.record(collector.group(statement), ns, failed, NO_REQUEST, failed)
        return
    environ = ctx.request.environ
    scope = environ.get(SCOPE)
    if scope is None:
        scope = environ[SCOPE] = _scope(ctx)
    if scope is False:
        return
    collector, endpoint, counts = scope
    gid = collector.memo.get(statement) or collector.group(statement)
    executions = counts[gid] = counts.get(gid, 0) + 1
    collector.tally.record(gid, ns, failed, endpoint, failed)
    if executions == collector.threshold + 1:
        collector.tally.flag(gid, endpoint, counts)


def _timed(execute):
    """Wrap a dialect's DB-API call (``cursor, statement, ...``) so that each statement is timed
    and recorded, a failing one too."""
    @functools.wraps(execute)
    def timed(cursor, statement, *args, **kwargs):
        started = perf_counter_ns()
        try:
            answer = execute(cursor, statement, *args, **kwargs)
        except BaseException:
            _record(statement, perf_counter_ns() - started, 1)
            raise
        _record(statement, perf_counter_ns() - started, 0)
        return answer
    timed.monitor_timed = True
    return timed


#: The dialect's DB-API calls that run a statement.
CALLS = ("do_execute", "do_executemany", "do_execute_no_params")


def engines_of(target):
    """Return the engines of ``target``: an Engine, an AsyncEngine, or a Flask-SQLAlchemy 3 db."""
    from sqlalchemy.engine import Engine

    target = getattr(target, "sync_engine", target)  # an AsyncEngine runs on its sync engine
    if isinstance(target, Engine):
        return [target]
    # A Flask-SQLAlchemy 3 db: every engine it made, for every app it was initialised on
    # (its public ``db.engines`` needs an app context, which set-up code seldom has).
    per_app = getattr(target, "_app_engines", None)
    if per_app is not None:
        found = [engine for engines in per_app.values() for engine in engines.values()]
        if not found:
            raise RuntimeError("instrument_sqlalchemy(db) found no engine: call it after db.init_app(app)")
        return found
    raise TypeError(f"instrument_sqlalchemy takes a SQLAlchemy Engine or a Flask-SQLAlchemy db, "
                    f"not {type(target).__name__}")


def instrument(target):
    """Time every statement of ``target``'s engines (each dialect once); return the engines."""
    engines = engines_of(target)
    for engine in engines:
        dialect = engine.dialect
        for name in CALLS:
            if not getattr(vars(dialect).get(name), "monitor_timed", False):
                setattr(dialect, name, _timed(getattr(dialect, name)))
    return engines
