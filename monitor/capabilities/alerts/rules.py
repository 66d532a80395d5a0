"""The alert rules: what each one reads, and when it is breached.

A check gets ``holding``: True while its rule fires, and then it judges against a lower
limit (``RESOLVE_RATIO`` of it), so a value hovering at the limit keeps the alert firing
rather than flapping (the evaluator also waits ``MONITOR_ALERT_RESOLVE_S`` before resolving).
A rule whose source capability is not running reports "no data" (:class:`NoData`) and
keeps its state; any other exception in a check is a bug, logged by the flusher, never
read as "no data".
"""
from ..cluster import registry
from ..metrics import query as metrics

#: The leak rule measures RSS growth over at least this span, and restarts its baseline after an hour.
GROWTH_MIN_S, GROWTH_MAX_S = 900, 3600
ACTIVE = ("pending", "firing")
#: A firing rule counts as clear only below this share of its limit.
RESOLVE_RATIO = 0.8
#: Alert keys expire this long after the last write.
TTL_S = 30 * 86400


class NoData(Exception):
    """A rule's source is missing or failed."""


def _limit(ctx, setting, holding):
    """Return the limit a rule judges against now, and how to name it: lower while the rule fires."""
    limit = ctx.config[setting]
    return (limit * RESOLVE_RATIO, "clears below") if holding else (limit, "limit")


def error_rate(ctx, holding):
    """5xx share of requests over the window."""
    body = ctx.metrics()
    total, errors = body["requests"]["total"], body["requests"]["errors"]
    rate = body["requests"]["error_rate"]
    if total < ctx.config["MONITOR_ALERT_MIN_REQUESTS"]:
        return False, rate, f"{total} requests in {ctx.window} s (fewer than the minimum)"
    limit, named = _limit(ctx, "MONITOR_ALERT_ERROR_RATE", holding)
    return rate > limit, rate, f"{errors} of {total} requests failed ({rate:.1%}; {named} {limit:.1%})"


def latency(ctx, holding):
    """p95 latency over the window."""
    body = ctx.metrics()
    total, p95 = body["requests"]["total"], body["latency_ms"]["p95"]
    if total < ctx.config["MONITOR_ALERT_MIN_REQUESTS"]:
        return False, p95, f"{total} requests in {ctx.window} s (fewer than the minimum)"
    limit, named = _limit(ctx, "MONITOR_ALERT_P95_MS", holding)
    return p95 > limit, p95, f"p95 {p95:.0f} ms ({named} {limit:.0f} ms)"


def worker_rss(ctx, holding):
    """The largest worker RSS."""
    workers = [w for w in ctx.cluster_workers() if w["status"] == "alive" and w.get("rss_mb") is not None]
    if not workers:
        return False, 0.0, "no live workers"
    top = max(workers, key=lambda w: w["rss_mb"])
    limit, named = _limit(ctx, "MONITOR_ALERT_RSS_MB", holding)
    return top["rss_mb"] > limit, top["rss_mb"], \
        f"{top['host']} pid {top['pid']}: {top['rss_mb']:.0f} MB ({named} {limit:.0f} MB)"


def rss_growth(ctx, holding):
    """The fastest RSS growth of a worker, MB per hour, against a baseline kept in Redis."""
    key = ctx.store.key("alerts", "rss_base")
    bases = ctx.store.redis.hgetall(key)
    worst, detail, seen = 0.0, "no worker measured long enough", {}
    for w in ctx.cluster_workers():
        if w["status"] != "alive" or w.get("rss_mb") is None:
            continue
        field = f"{w['host']}|{w['pid']}"
        t0, rss0 = map(float, bases.get(field, f"{ctx.now}:{w['rss_mb']}").split(":"))
        if ctx.now - t0 > GROWTH_MAX_S:
            t0, rss0 = ctx.now, w["rss_mb"]
        seen[field] = f"{t0}:{rss0}"
        if ctx.now - t0 >= GROWTH_MIN_S:
            rate = (w["rss_mb"] - rss0) / (ctx.now - t0) * 3600
            if rate > worst:
                worst, detail = rate, f"{w['host']} pid {w['pid']}: +{rate:.0f} MB/h"
    pipe = ctx.store.redis.pipeline(transaction=False)
    pipe.delete(key)
    if seen:
        pipe.hset(key, mapping=seen)
        pipe.expire(key, TTL_S)
    pipe.execute()
    limit, named = _limit(ctx, "MONITOR_ALERT_RSS_GROWTH_MB_H", holding)
    return worst > limit, round(worst, 1), f"{detail} ({named} {limit:.0f} MB/h)"


def heartbeats(ctx, holding):
    """Hosts and workers whose heartbeats stopped."""
    workers = ctx.cluster_workers()
    stale = [f"worker {w['host']}:{w['pid']}" for w in workers if w["status"] == "stale"]
    stale += [f"host {h['host']}" for h in registry.hosts(ctx.store, ctx.now, workers) if h.get("status") == "stale"]
    return bool(stale), len(stale), ", ".join(stale) or "every heartbeat on time"


#: The rules: name → (title, check). Redis reachability is judged outside this table.
RULES = {
    "error_rate": ("5xx rate", error_rate),
    "latency_p95": ("p95 latency", latency),
    "worker_rss": ("worker RSS", worker_rss),
    "rss_growth": ("RSS growth (leak)", rss_growth),
    "heartbeat": ("missing heartbeats", heartbeats),
    "redis": ("Redis unreachable", None),
}


class Context:
    """What one evaluation round reads, each source fetched once."""

    def __init__(self, store, config, now):
        self.store, self.config, self.now = store, config, now
        self.window = config["MONITOR_ALERT_WINDOW"]
        self._metrics = self._workers = None

    def _needs(self, name):
        if f"monitor.capabilities.{name}" not in self.config["MONITOR_CAPABILITIES"]:
            raise NoData(f"the {name} capability is not running")

    def metrics(self):
        self._needs("metrics")
        if self._metrics is None:
            self._metrics = metrics.query(self.store, self.window, now=self.now)
        return self._metrics

    def cluster_workers(self):
        self._needs("cluster")
        if self._workers is None:
            self._workers = registry.workers(self.store, self.now)
        return self._workers


def rules(config):
    """Return the rules with their thresholds, for the API and the panel."""
    window = config["MONITOR_ALERT_WINDOW"]
    return [
        {"name": "error_rate", "title": RULES["error_rate"][0],
         "threshold": f"> {config['MONITOR_ALERT_ERROR_RATE']:.1%} of ≥ {config['MONITOR_ALERT_MIN_REQUESTS']} requests over {window} s"},
        {"name": "latency_p95", "title": RULES["latency_p95"][0],
         "threshold": f"> {config['MONITOR_ALERT_P95_MS']:.0f} ms over {window} s"},
        {"name": "worker_rss", "title": RULES["worker_rss"][0], "threshold": f"> {config['MONITOR_ALERT_RSS_MB']:.0f} MB"},
        {"name": "rss_growth", "title": RULES["rss_growth"][0],
         "threshold": f"> {config['MONITOR_ALERT_RSS_GROWTH_MB_H']:.0f} MB/h"},
        {"name": "heartbeat", "title": RULES["heartbeat"][0], "threshold": "any host or worker stale"},
        {"name": "redis", "title": RULES["redis"][0], "threshold": "no answer"},
    ]
