"""What a rule can watch: the metric registry (name → a reader) and the built-in metrics.

A metric reads one number for a rule at a moment, through the capability that owns the
data, found by name (``ctx.capability("metrics")``: ``monitor.capabilities.get``); it never
imports another capability's modules. A missing capability is "no data" (:class:`NoData`),
which keeps the rule's state. Sources are read once per evaluation round and shared by the
rules that need them (``ctx.read``), so 200 rules over four windows cost four metric queries.

Adding a metric, e.g. from a new capability, is one registration here::

    @metric("exception_groups_new", "new exception groups", "count", source="exceptions")
    def exception_groups_new(ctx, rule):
        groups = ctx.capability("exceptions").new_groups(ctx.monitor, since=ctx.now - rule.window_s)
        return Reading(len(groups))

``scopes`` lists the scopes it understands (``fleet``, ``host``, ``endpoint``); ``params``
maps each parameter it takes to a parser ``(value, form) -> value``; ``past=False`` marks a
metric the store does not keep over time (the preview cannot replay it).
"""
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

#: The leak metric measures RSS growth over at least this span, and restarts its baseline after an hour.
GROWTH_MIN_S, GROWTH_MAX_S = 900, 3600
#: Log levels a log-lines rule counts from.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Alert keys (states, history, the leak baseline) expire this long after the last write.
TTL_S = 30 * 86400
#: The highest threshold any metric takes.
MAX_THRESHOLD = 1e12


class NoData(Exception):
    """A metric's source is missing or failed: the rule keeps its state."""


class Reading(NamedTuple):
    """One value of a metric; ``count`` the requests behind it (for ``min_requests``), ``where`` what it is of."""

    value: float | None
    count: int | None = None
    where: str = ""


@dataclass(frozen=True)
class Metric:
    name: str
    title: str
    #: How its values read: ratio (shown as %), ms, MB, MB/h, /s, /min, count.
    unit: str
    #: The capability whose data it reads.
    source: str
    read: Callable
    scopes: tuple = ("fleet",)
    params: dict = field(default_factory=dict)
    #: Whether a rule on it needs ``min_requests`` requests in its window by default (noisy ratios).
    needs_requests: bool = False
    #: Whether the store keeps it over time (the preview replays the last 24 h).
    past: bool = True
    #: The largest threshold that makes sense (1 for a ratio).
    most: float = MAX_THRESHOLD


#: Every metric a rule may name, by name.
METRICS = {}


def metric(name, title, unit, source, scopes=("fleet",), params=None, needs_requests=False, past=True):
    """Register the decorated ``read(ctx, rule) -> Reading`` as metric ``name``."""
    def register(read):
        METRICS[name] = Metric(name, title, unit, source, read, tuple(scopes), dict(params or {}), needs_requests,
                               past, 1.0 if unit == "ratio" else MAX_THRESHOLD)
        return read
    return register


def fmt(unit, value):
    """Return ``value`` as the text of its unit: ``5.2%``, ``250 ms``, ``1,024 MB``, ``3.5/min``."""
    if value is None:
        return "–"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "count":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    text = f"{value:,.{digits}f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}{' ' if unit[0].isalpha() else ''}{unit}"


class Context:
    """What one evaluation round (or one preview point, at a past ``now``) reads; each source once."""

    def __init__(self, monitor, now):
        self.monitor, self.store, self.config, self.now = monitor, monitor.store, monitor.config, now
        self._memo = {}
        #: Sources read from the store this round (what a round's cost grows with).
        self.reads = 0

    def capability(self, name):
        """Return the running capability ``name``, or raise NoData."""
        found = self.monitor.capabilities.get(name)
        if found is None:
            raise NoData(f"the {name} capability is not running")
        return found

    def memo(self, key, compute):
        """Return ``compute()``, computed once per round for ``key``."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def read(self, key, compute):
        """Return ``compute()``, a read of the store, made once per round for ``key`` (and counted)."""
        if key not in self._memo:
            self.reads += 1
        return self.memo(key, compute)


# ---------------------------------------------------------------- request metrics (the metrics capability)


def _endpoint(scope_value):
    """Split an endpoint scope, ``/path`` or ``GET /path``, into (method or None, rule)."""
    method, _, path = scope_value.partition(" ")
    return (method, path) if path else (None, method)


def _requests(ctx, rule):
    """Return the rule's scope over its window: {total, errors, rate, p50, p95, p99} (shared per round)."""
    host = rule.scope_value if rule.scope_kind == "host" else None
    body = ctx.read(("metrics", rule.window_s, host), lambda: ctx.capability("metrics").window(
        ctx.monitor, rule.window_s, host=host, now=ctx.now))
    if rule.scope_kind != "endpoint":
        requests, latency = body["requests"], body["latency_ms"]
        return {"total": requests["total"], "errors": requests["errors"], "rate": requests["rate_per_s"],
                "p50": latency["p50"], "p95": latency["p95"], "p99": latency["p99"]}
    return ctx.memo(("endpoint", rule.window_s, rule.scope_value), lambda: _endpoint_stats(body, rule))


def _endpoint_stats(body, rule):
    method, path = _endpoint(rule.scope_value)
    rows = [row for row in body["endpoints"] if row["endpoint"] == path and method in (None, row["method"])]
    total = sum(row["count"] for row in rows)
    requests = body["requests"]
    # The window's span is the fleet's total over its rate (buckets are aligned, so a little over window_s).
    span = requests["total"] / requests["rate_per_s"] if requests["rate_per_s"] else rule.window_s
    # Percentiles of two methods do not merge: the slowest method's stands for the endpoint.
    return {"total": total, "errors": sum(row["errors"] for row in rows), "rate": total / span,
            **{p: max((row[f"{p}_ms"] for row in rows), default=0.0) for p in ("p50", "p95", "p99")}}


def _scope_name(rule):
    return "" if rule.scope_kind == "fleet" else rule.scope_value


REQUEST_SCOPES = ("fleet", "host", "endpoint")


@metric("request_rate", "request rate", "/s", "metrics", REQUEST_SCOPES)
def request_rate(ctx, rule):
    stats = _requests(ctx, rule)
    return Reading(round(stats["rate"], 3), stats["total"], _scope_name(rule))


@metric("error_rate", "5xx rate", "ratio", "metrics", REQUEST_SCOPES, needs_requests=True)
def error_rate(ctx, rule):
    stats = _requests(ctx, rule)
    total = stats["total"]
    return Reading(round(stats["errors"] / total, 4) if total else 0.0, total, _scope_name(rule))


def _latency(percentile):
    def read(ctx, rule):
        stats = _requests(ctx, rule)
        return Reading(stats[percentile], stats["total"], _scope_name(rule))
    return read


for _p in ("p50", "p95", "p99"):
    metric(f"latency_{_p}", f"{_p} latency", "ms", "metrics", REQUEST_SCOPES, needs_requests=True)(_latency(_p))


# ---------------------------------------------------------------- workers (the cluster capability)


def _workers(ctx):
    return ctx.read("workers", lambda: ctx.capability("cluster").workers(ctx.monitor, ctx.now))


def _alive(ctx, rule):
    return [w for w in _workers(ctx) if w["status"] == "alive"
            and (rule.scope_kind != "host" or w["host"] == rule.scope_value)]


@metric("worker_rss", "worker RSS", "MB", "cluster", ("fleet", "host"), past=False)
def worker_rss(ctx, rule):
    """The largest RSS of a live worker."""
    workers = [w for w in _alive(ctx, rule) if w.get("rss_mb") is not None]
    if not workers:
        return Reading(None, where="no live workers")
    top = max(workers, key=lambda w: w["rss_mb"])
    return Reading(top["rss_mb"], where=f"{top['host']} pid {top['pid']}")


def _growth(ctx):
    """Return {(host, pid): MB per hour} of the workers measured long enough, against baselines in Redis."""
    key = ctx.store.key("alerts", "rss_base")
    bases = ctx.store.redis.hgetall(key)
    rates, seen = {}, {}
    for w in _workers(ctx):
        if w["status"] != "alive" or w.get("rss_mb") is None:
            continue
        name = f"{w['host']}|{w['pid']}"
        t0, rss0 = map(float, bases.get(name, f"{ctx.now}:{w['rss_mb']}").split(":"))
        if ctx.now - t0 > GROWTH_MAX_S:
            t0, rss0 = ctx.now, w["rss_mb"]
        seen[name] = f"{t0}:{rss0}"
        if ctx.now - t0 >= GROWTH_MIN_S:
            rates[(w["host"], w["pid"])] = (w["rss_mb"] - rss0) / (ctx.now - t0) * 3600
    pipe = ctx.store.redis.pipeline(transaction=False)
    pipe.delete(key)
    if seen:
        pipe.hset(key, mapping=seen)
        pipe.expire(key, TTL_S)
    pipe.execute()
    return rates


@metric("rss_growth", "RSS growth (leak)", "MB/h", "cluster", ("fleet", "host"), past=False)
def rss_growth(ctx, rule):
    """The fastest RSS growth of a worker, measured over 15 to 60 minutes."""
    rates = {w: rate for w, rate in ctx.read("growth", lambda: _growth(ctx)).items()
             if rule.scope_kind != "host" or w[0] == rule.scope_value}
    if not rates:
        return Reading(0.0, where="no worker measured long enough")
    (host, pid), rate = max(rates.items(), key=lambda item: item[1])
    return Reading(round(rate, 1), where=f"{host} pid {pid}")


@metric("workers_alive", "workers alive", "count", "cluster", ("fleet", "host"), past=False)
def workers_alive(ctx, rule):
    return Reading(len(_alive(ctx, rule)), where=_scope_name(rule))


@metric("stale_heartbeats", "missing heartbeats", "count", "cluster", ("fleet", "host"), past=False)
def stale_heartbeats(ctx, rule):
    """Hosts and workers whose heartbeats stopped."""
    def stale():
        workers = _workers(ctx)
        found = [(w["host"], f"worker {w['host']}:{w['pid']}") for w in workers if w["status"] == "stale"]
        hosts = ctx.capability("cluster").hosts(ctx.monitor, ctx.now, workers)
        return found + [(h["host"], f"host {h['host']}") for h in hosts if h.get("status") == "stale"]
    found = [name for host, name in ctx.read("stale", stale)
             if rule.scope_kind != "host" or host == rule.scope_value]
    return Reading(len(found), where=", ".join(found) or "every heartbeat on time")


# ---------------------------------------------------------------- the app cache, the log stream


@metric("cache_hit_rate", "cache hit rate", "ratio", "cache")
def cache_hit_rate(ctx, rule):
    hits, misses = ctx.read(("cache", rule.window_s), lambda: ctx.capability("cache").hit_counts(
        ctx.monitor, rule.window_s, ctx.now))
    reads = hits + misses
    return Reading(round(hits / reads, 4) if reads else None, where=f"{reads:,} reads" if reads else "no reads")


def _level(value, form):
    level = str(value).strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}")
    return level


def _text(value, form):
    if not isinstance(value, str) or len(value) > 200:
        raise ValueError("text must be a string of at most 200 characters")
    return value.strip()


def _log_lines(ctx, logs, window):
    """Return the stream's lines over ``window``: one read a round, of the longest window asked for
    first (the evaluator judges long windows first), the shorter ones cut from it."""
    held = ctx.memo("log reads", dict)
    longer = [w for w in held if w >= window]
    if not longer:
        held[window] = ctx.read(("logs", window), lambda: logs.lines(ctx.monitor, ctx.now - window, ctx.now))
        return held[window]
    found, since = held[min(longer)], ctx.now - window
    return {"lines": [fields for fields in found["lines"] if float(fields["ts"]) >= since],
            "since": max(found["since"], since)}


@metric("log_lines", "log lines per minute", "/min", "logs", ("fleet", "host"), params={"level": _level, "text": _text})
def log_lines(ctx, rule):
    """Log lines at a level (and up) containing a text, per minute over the window."""
    logs = ctx.capability("logs")
    level, text = rule.params.get("level", "ERROR"), rule.params.get("text", "")
    host = rule.scope_value if rule.scope_kind == "host" else None
    found = ctx.memo(("log lines", rule.window_s), lambda: _log_lines(ctx, logs, rule.window_s))
    n = ctx.memo(("log count", rule.window_s, level, text, host), lambda: logs.count(found["lines"], level, text, host))
    minutes = max(ctx.now - found["since"], 1.0) / 60
    return Reading(round(n / minutes, 2), where=f"{n:,} {level}+ lines" + (f" with {text!r}" if text else ""))


@metric("redis_unreachable", "Redis unreachable", "count", "alerts", past=False)
def redis_unreachable(ctx, rule):
    """1 while Redis does not answer: judged in memory by the last evaluator (nobody reads rules then)."""
    return Reading(0, where="Redis answers")


# ---------------------------------------------------------------- exceptions, slow requests


def _groups_where(groups):
    names = sorted({group["type"] for group in groups})
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "") if names else "none"


@metric("exception_groups_new", "new exception groups", "count", "exceptions")
def exception_groups_new(ctx, rule):
    """Exception groups first seen within the window."""
    found = ctx.read(("exceptions new", rule.window_s), lambda: ctx.capability("exceptions").new_groups(
        ctx.monitor, since=ctx.now - rule.window_s, until=ctx.now))
    return Reading(len(found), where=_groups_where(found))


@metric("exception_regressions", "exception regressions", "count", "exceptions", past=False)
def exception_regressions(ctx, rule):
    """Resolved exception groups that came back in a release they had not been seen in (until resolved again)."""
    found = ctx.read("exceptions regressions", lambda: ctx.capability("exceptions").regressions(ctx.monitor))
    return Reading(len(found), where=_groups_where(found))


@metric("slow_requests", "slow requests", "count", "slow", ("fleet", "endpoint"))
def slow_requests(ctx, rule):
    """Requests over their endpoint's slow threshold within the window (of one endpoint)."""
    method, path = _endpoint(rule.scope_value) if rule.scope_kind == "endpoint" else (None, None)
    n = ctx.read(("slow", rule.window_s, method, path), lambda: ctx.capability("slow").count(
        ctx.monitor, rule.window_s, ctx.now, method, path))
    return Reading(n, where=_scope_name(rule))
