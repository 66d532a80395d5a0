"""The alerts capability: rules over metrics and heartbeats, evaluated by one process of the fleet.

Every process runs the evaluator as a flusher task, but only the holder of a Redis lock
(SET NX with a TTL, renewed each round) evaluates, so each state change happens, and is
notified, once. A rule is ``inactive`` → ``pending`` (breached) → ``firing`` (breached for
``MONITOR_ALERT_PENDING_S``) → ``resolved``; firing and resolved are notified by a log line
and, when ``MONITOR_ALERT_WEBHOOK_URL`` is set, a webhook POST from a notifier thread with
a timeout and retries. A rule whose source is missing or fails reports "no data" and keeps
its state. "Redis unreachable" is judged by the process that held the lock last, in memory.
"""
import json
import logging
import os
import queue
import threading
import time
import urllib.request
import uuid

import redis

log = logging.getLogger(__name__)

#: Transitions kept in the history list.
HISTORY_CAP = 200
#: Alert keys expire this long after the last write.
TTL_S = 30 * 86400
#: The leak rule measures RSS growth over at least this span, and restarts its baseline after an hour.
GROWTH_MIN_S, GROWTH_MAX_S = 900, 3600
ACTIVE = ("pending", "firing")


class NoData(Exception):
    """A rule's source is missing or failed."""


def _metrics(store, window, now):
    try:
        from . import metrics
        return metrics.query(store, window, now=now)
    except (ImportError, AttributeError) as exc:
        raise NoData(f"metrics unavailable: {exc}") from None


def _cluster():
    try:
        from . import cluster
        return cluster
    except ImportError as exc:
        raise NoData(f"cluster unavailable: {exc}") from None


def error_rate(ctx):
    """5xx share of requests over the window."""
    body = ctx.metrics()
    total, errors = body["requests"]["total"], body["requests"]["errors"]
    rate = body["requests"]["error_rate"]
    if total < ctx.config["MONITOR_ALERT_MIN_REQUESTS"]:
        return False, rate, f"{total} requests in {ctx.window} s (fewer than the minimum)"
    limit = ctx.config["MONITOR_ALERT_ERROR_RATE"]
    return rate > limit, rate, f"{errors} of {total} requests failed ({rate:.1%}; limit {limit:.1%})"


def latency(ctx):
    """p95 latency over the window."""
    body = ctx.metrics()
    total, p95 = body["requests"]["total"], body["latency_ms"]["p95"]
    if total < ctx.config["MONITOR_ALERT_MIN_REQUESTS"]:
        return False, p95, f"{total} requests in {ctx.window} s (fewer than the minimum)"
    limit = ctx.config["MONITOR_ALERT_P95_MS"]
    return p95 > limit, p95, f"p95 {p95:.0f} ms (limit {limit:.0f} ms)"


def worker_rss(ctx):
    """The largest worker RSS."""
    workers = [w for w in ctx.cluster_workers() if w["status"] == "alive" and w.get("rss_mb") is not None]
    if not workers:
        return False, 0.0, "no live workers"
    top = max(workers, key=lambda w: w["rss_mb"])
    limit = ctx.config["MONITOR_ALERT_RSS_MB"]
    return top["rss_mb"] > limit, top["rss_mb"], f"{top['host']} pid {top['pid']}: {top['rss_mb']:.0f} MB (limit {limit:.0f} MB)"


def rss_growth(ctx):
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
    limit = ctx.config["MONITOR_ALERT_RSS_GROWTH_MB_H"]
    return worst > limit, round(worst, 1), f"{detail} (limit {limit:.0f} MB/h)"


def heartbeats(ctx):
    """Hosts and workers whose heartbeats stopped."""
    cluster = _cluster()
    workers = ctx.cluster_workers()
    stale = [f"worker {w['host']}:{w['pid']}" for w in workers if w["status"] == "stale"]
    stale += [f"host {h['host']}" for h in cluster.hosts(ctx.store, ctx.now, workers) if h.get("status") == "stale"]
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

    def metrics(self):
        if self._metrics is None:
            self._metrics = _metrics(self.store, self.window, self.now)
        return self._metrics

    def cluster_workers(self):
        if self._workers is None:
            self._workers = _cluster().workers(self.store, self.now)
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


class Notifier:
    """Log each notification and POST it to the webhook from a thread of its own."""

    def __init__(self, url, timeout, retries):
        self.url, self.timeout, self.retries = url, timeout, retries
        self.queue = queue.Queue(maxsize=1000)
        self.thread = None

    def send(self, alert, event):
        text = f"[{event.upper()}] {alert['title']}: {alert['detail']}"
        (log.warning if event == "firing" else log.info)("alert %s", text)
        if not self.url:
            return
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._run, name="monitor-alerts", daemon=True)
            self.thread.start()
        payload = {"text": text, "event": event, "alert": alert}
        try:
            self.queue.put_nowait(payload)
        except queue.Full:
            log.error("alert notification dropped (queue full): %s", text)

    def _run(self):
        while True:
            self.deliver(self.queue.get())

    def deliver(self, payload):
        """POST one payload, retrying with back-off; return whether it was accepted."""
        body = json.dumps(payload, default=str).encode()
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(2 ** (attempt - 1), 30))
            try:
                request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    if response.status < 300:
                        return True
            except OSError as exc:
                log.warning("alert webhook attempt %d failed: %s", attempt + 1, exc)
        log.error("alert webhook gave up after %d attempts", self.retries + 1)
        return False


class Evaluator:
    """The flusher task that evaluates the rules when this process holds the fleet's lock."""

    def __init__(self, store, config):
        self.store, self.config = store, config
        self.interval = config["MONITOR_ALERT_INTERVAL"]
        self.token = uuid.uuid4().hex
        os.register_at_fork(after_in_child=self._forked)
        self.last = 0.0
        self.leader = False
        self.redis_down = None
        self.notifier = Notifier(config["MONITOR_ALERT_WEBHOOK_URL"], config["MONITOR_ALERT_WEBHOOK_TIMEOUT"],
                                 config["MONITOR_ALERT_WEBHOOK_RETRIES"])

    def _forked(self):
        # A preloaded app forks one evaluator into every worker: each needs its own lock token.
        self.token = uuid.uuid4().hex
        self.leader, self.redis_down = False, None

    def __call__(self, now):
        if now - self.last < self.interval:
            return
        self.last = now
        try:
            if not self._lock():
                self.leader = False
                return
            self.leader = True
            self._redis_back(now)
            self.evaluate(now)
        except redis.RedisError as exc:
            self._redis_lost(now, exc)

    def _lock(self):
        key, ttl = self.store.key("alerts", "lock"), max(int(self.interval * 3), 5)
        if self.store.redis.set(key, self.token, nx=True, ex=ttl):
            return True
        if self.store.redis.get(key) == self.token:
            self.store.redis.expire(key, ttl)
            return True
        return False

    def _redis_lost(self, now, exc):
        if not self.leader:
            return
        if self.redis_down is None:
            self.redis_down = {"rule": "redis", "title": RULES["redis"][0], "state": "pending", "since": now,
                               "value": None, "detail": f"no answer: {exc}", "id": f"redis-{int(now)}"}
        elif self.redis_down["state"] == "pending" and now - self.redis_down["since"] >= self.config["MONITOR_ALERT_PENDING_S"]:
            self.redis_down.update(state="firing", fired_at=now)
            self.notifier.send(self.redis_down, "firing")

    def _redis_back(self, now):
        down, self.redis_down = self.redis_down, None
        if down and down["state"] == "firing":
            down.update(state="resolved", resolved_at=now, detail="Redis answers again")
            self._history(down, "resolved", now)
            self.notifier.send(down, "resolved")

    def evaluate(self, now):
        """Check every rule once, store the states, notify each change."""
        ctx = Context(self.store, self.config, now)
        key = self.store.key("alerts", "state")
        states = {name: json.loads(raw) for name, raw in self.store.redis.hgetall(key).items()}
        changed = {}
        for name, (title, check) in RULES.items():
            if check is None:
                continue
            try:
                breached, value, detail = check(ctx)
            except NoData as exc:
                breached, value, detail = None, None, str(exc)
            except (KeyError, TypeError, ValueError) as exc:
                breached, value, detail = None, None, f"no data: {exc!r}"
            alert = self._step(states.get(name), name, title, breached, value, detail, now)
            if alert is not None:
                changed[name] = alert
        if changed:
            pipe = self.store.redis.pipeline(transaction=False)
            pipe.hset(key, mapping={name: json.dumps(alert) for name, alert in changed.items()})
            pipe.expire(key, TTL_S)
            pipe.execute()

    def _step(self, alert, name, title, breached, value, detail, now):
        """Advance one rule's state; return the alert to store when it changed, else None."""
        if breached is None:
            if alert is None or alert.get("no_data") == detail:
                return None
            alert["no_data"] = detail
            return alert
        state = (alert or {}).get("state", "inactive")
        if breached:
            if state in ("inactive", "resolved"):
                alert = {"id": f"{name}-{int(now)}", "rule": name, "title": title, "state": "pending",
                         "since": now, "value": value, "detail": detail}
                if self.config["MONITOR_ALERT_PENDING_S"] > 0:
                    return alert
            alert.update(value=value, detail=detail)
            alert.pop("no_data", None)
            if alert["state"] == "pending" and now - alert["since"] >= self.config["MONITOR_ALERT_PENDING_S"]:
                alert.update(state="firing", fired_at=now)
                self._history(alert, "firing", now)
                self.notifier.send(alert, "firing")
            return alert
        if state == "pending":
            return {**alert, "state": "inactive", "value": value, "detail": detail}
        if state == "firing":
            alert.update(state="resolved", resolved_at=now, value=value, detail=detail)
            self._history(alert, "resolved", now)
            self.notifier.send(alert, "resolved")
            return alert
        return None

    def _history(self, alert, event, now):
        key = self.store.key("alerts", "history")
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.lpush(key, json.dumps({**alert, "event": event, "at": now}))
        pipe.ltrim(key, 0, HISTORY_CAP - 1)
        pipe.expire(key, TTL_S)
        pipe.execute()


def overview(store, config, evaluator=None, limit=50):
    """Return the body of ``GET alerts``: active alerts, history newest first, rules."""
    states = [json.loads(raw) for raw in store.redis.hgetall(store.key("alerts", "state")).values()]
    active = sorted((a for a in states if a["state"] in ACTIVE), key=lambda a: (a["state"] != "firing", -a["since"]))
    if evaluator is not None and evaluator.redis_down:
        active.insert(0, evaluator.redis_down)
    history = [json.loads(raw) for raw in store.redis.lrange(store.key("alerts", "history"), 0, limit - 1)]
    return {"active": active, "history": history, "rules": rules(config)}


def acknowledge(store, alert_id, user, now=None):
    """Mark the active alert ``alert_id`` acknowledged by ``user``; return it, or None if none matches."""
    key = store.key("alerts", "state")
    for name, raw in store.redis.hgetall(key).items():
        alert = json.loads(raw)
        if alert.get("id") == alert_id and alert["state"] in ACTIVE:
            alert.update(acked_by=user, acked_at=time.time() if now is None else now)
            store.redis.hset(key, name, json.dumps(alert))
            return alert
    return None


def init_app(app, monitor):
    """Run the evaluator as a flusher task of this process."""
    monitor.alerts = Evaluator(monitor.store, app.config)
    monitor.flusher.add_task(monitor.alerts)
    monitor.features["alerts"] = True
