"""The cluster registry: worker heartbeats, host records, and restart operations in the store.

Each worker's flusher ships a heartbeat (at most every ``MONITOR_HEARTBEAT_INTERVAL`` s)
to ``cluster:w:<host>:<pid>`` with a TTL of ``MONITOR_WORKER_GRACE``; a sorted set indexes
them by time. Each gunicorn master's agent (monitor/agent.py) keeps ``cluster:h:<host>``
the same way. An entry is ``alive`` while its heartbeat is fresh, ``stale`` once it is
three intervals old, and gone when its TTL ends, or at once when its master saw it exit.

Operations (restart a worker, rolling restart, reload, add, remove) are records under
``cluster:op:<id>``; one runs at a time (``cluster:lock``), carried out by the agent of the
host concerned, which it reaches through the command queue of that host.
"""
import json
import re
import secrets
import time

from . import audit, system
from .commands import host_target

#: Modes of ``POST cluster/restart``.
MODES = ("rolling", "worker", "reload", "add", "remove")
#: How long an operation record is kept.
OPERATION_TTL_S = 86400
#: Operation records listed in the panel and indexed.
RECENT_OPERATIONS = 20
#: How long the one-operation lock lives without its agent refreshing it.
LOCK_TTL_S = 60
#: An entry is stale after this many heartbeat intervals without one.
STALE_AFTER_BEATS = 3
FINAL = ("done", "failed")

_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_OPERATION_ID = re.compile(r"^[0-9a-f]{16}$")


class Refused(Exception):
    """An operation that cannot start; ``status`` is the HTTP answer (400, 404, 409)."""

    def __init__(self, status, detail):
        super().__init__(detail)
        self.status = status


def stale_after(config):
    """Return how old a heartbeat may be before its entry shows as stale."""
    return STALE_AFTER_BEATS * max(config["MONITOR_HEARTBEAT_INTERVAL"], config["MONITOR_FLUSH_INTERVAL"])


def write_entry(pipe, store, kind, member, record, now, ttl):
    """Add the writes that store one registry entry and refresh its index."""
    index = store.key("cluster", kind + "s")
    pipe.set(store.key("cluster", kind, member), json.dumps(record), ex=int(ttl) + 1)
    pipe.zadd(index, {member: now})
    pipe.zremrangebyscore(index, "-inf", now - ttl)
    pipe.expire(index, int(ttl) + 1)


def drop_entry(store, kind, member):
    """Remove one registry entry now (a worker its master saw exit, a host that stopped)."""
    pipe = store.redis.pipeline(transaction=False)
    pipe.delete(store.key("cluster", kind, member))
    pipe.zrem(store.key("cluster", kind + "s"), member)
    pipe.execute()


def _entries(store, kind, now):
    members = store.redis.zrange(store.key("cluster", kind + "s"), 0, -1)
    if not members:
        return []
    raw = store.redis.mget([store.key("cluster", kind, member) for member in members])
    found = []
    for value in raw:
        if value:
            record = json.loads(value)
            age = max(0.0, now - record["ts"])
            record["last_heartbeat_s"] = round(age, 2)
            record["status"] = "alive" if age <= record["stale_after"] else "stale"
            found.append(record)
    return found


class Heartbeat:
    """The flusher shipper that keeps this worker's registry entry fresh."""

    def __init__(self, monitor):
        self.monitor = monitor
        self.interval = monitor.config["MONITOR_HEARTBEAT_INTERVAL"]
        self.grace = monitor.config["MONITOR_WORKER_GRACE"]
        self.stale_after = stale_after(monitor.config)
        self.last = (None, 0.0)

    def __call__(self, pipe, now):
        process = self.monitor.process
        pid, last = self.last
        if pid == process.pid and now - last < self.interval:
            return None
        self.last = (process.pid, now)
        sample = system.worker_sample(process)
        counters = self.monitor.counters
        record = {
            "id": process.id, "host": process.host, "pid": process.pid,
            "master_pid": process.master_pid or None, "started_at": round(process.started_at, 3),
            "requests": counters.requests, "in_flight": counters.in_flight,
            "rss_mb": sample["rss_mb"], "cpu_percent": sample["cpu_percent"],
            "ts": now, "stale_after": self.stale_after,
        }
        write_entry(pipe, self.monitor.store, "w", f"{process.host}:{process.pid}", record, now, self.grace)

        def undo():
            self.last = (None, 0.0)
        return undo


def workers(store, now=None):
    """Return every registered worker of the fleet in the ``cluster/status`` shape."""
    now = time.time() if now is None else now
    found = []
    for record in _entries(store, "w", now):
        found.append({
            "id": record["id"], "host": record["host"], "pid": record["pid"],
            "master_pid": record["master_pid"], "status": record["status"],
            "started_at": record["started_at"], "uptime_s": round(max(0.0, now - record["started_at"]), 1),
            "last_heartbeat_s": record["last_heartbeat_s"], "requests": record["requests"],
            "in_flight": record["in_flight"], "rss_mb": record["rss_mb"],
            "cpu_percent": record["cpu_percent"],
        })
    return sorted(found, key=lambda w: (w["host"], w["started_at"], w["pid"]))


def hosts(store, now=None, worker_list=None):
    """Return every host: registered gunicorn masters, and hosts seen only through workers."""
    now = time.time() if now is None else now
    worker_list = workers(store, now) if worker_list is None else worker_list
    found = {}
    for record in _entries(store, "h", now):
        found[record["host"]] = {
            "host": record["host"], "master_pid": record["master_pid"],
            "workers_target": record["workers_target"], "status": record["status"], "managed": True,
            "gunicorn": record["gunicorn"], "started_at": record["started_at"],
            "uptime_s": round(max(0.0, now - record["started_at"]), 1),
            "last_heartbeat_s": record["last_heartbeat_s"], "crashes": record["crashes"],
        }
    for worker in worker_list:
        found.setdefault(worker["host"], {
            "host": worker["host"], "master_pid": None, "workers_target": None, "status": "unmanaged",
            "managed": False, "gunicorn": None, "started_at": None, "uptime_s": None,
            "last_heartbeat_s": None, "crashes": None})
    for entry in found.values():
        mine = [w for w in worker_list if w["host"] == entry["host"]]
        entry["workers"] = len(mine)
        entry["workers_alive"] = sum(w["status"] == "alive" for w in mine)
    return sorted(found.values(), key=lambda h: h["host"])


def status(store, now=None):
    """Return the body of ``GET cluster/status``."""
    now = time.time() if now is None else now
    worker_list = workers(store, now)
    return {
        "hosts": hosts(store, now, worker_list), "workers": worker_list, "count": len(worker_list),
        "alive": sum(w["status"] == "alive" for w in worker_list),
        "operation": current_operation(store), "generated_at": round(now, 3),
    }


# ---------------------------------------------------------------- operations


def operation(store, operation_id):
    """Return the record of an operation, or None."""
    if not isinstance(operation_id, str) or not _OPERATION_ID.match(operation_id):
        return None
    raw = store.redis.get(store.key("cluster", "op", operation_id))
    if not raw:
        return None
    record = json.loads(raw)
    if record["status"] not in FINAL and store.redis.get(store.key("cluster", "lock")) != operation_id:
        # The lock outlives every step by LOCK_TTL_S; without it no agent is carrying this on.
        record.update(status="failed", error="no host agent carried the operation on")
    return record


def current_operation(store):
    """Return the operation that holds the lock, or None."""
    operation_id = store.redis.get(store.key("cluster", "lock"))
    return operation(store, operation_id) if operation_id else None


def recent_operations(store, limit=5):
    """Return the latest operations, newest first."""
    ids = store.redis.zrevrange(store.key("cluster", "ops"), 0, limit - 1)
    return [found for found in (operation(store, i) for i in ids) if found]


def save_operation(store, record):
    """Store an operation record and keep the lock of a running one alive."""
    pipe = store.redis.pipeline(transaction=False)
    pipe.set(store.key("cluster", "op", record["id"]), json.dumps(record), ex=OPERATION_TTL_S)
    if record["status"] not in FINAL:
        pipe.eval(_EXTEND, 1, store.key("cluster", "lock"), record["id"], LOCK_TTL_S)
    pipe.execute()


def release_lock(store, operation_id):
    """Free the one-operation lock if this operation still holds it."""
    store.redis.eval(_RELEASE, 1, store.key("cluster", "lock"), operation_id)


def _targets(store, mode, host, pid):
    """Return the hosts that carry out the operation, in order; raise Refused for bad input."""
    worker_list = workers(store)
    managed = {h["host"]: h for h in hosts(store, worker_list=worker_list) if h["managed"]}
    if host is not None and host not in managed:
        known = {w["host"] for w in worker_list}
        raise Refused(409 if host in known else 404,
                      f"host {host!r} has no gunicorn master agent" if host in known else f"unknown host {host!r}")
    if mode == "worker":
        matches = [w for w in worker_list if w["pid"] == pid and host in (None, w["host"])]
        if not matches:
            raise Refused(404, f"no worker with pid {pid}" + (f" on {host!r}" if host else ""))
        if len(matches) > 1:
            raise Refused(400, f"pid {pid} runs on several hosts; give host")
        if matches[0]["host"] not in managed:
            raise Refused(409, f"host {matches[0]['host']!r} has no gunicorn master agent")
        return [matches[0]["host"]]
    if not managed:
        raise Refused(409, "no gunicorn master is registered")
    if host is None and mode == "rolling":
        return sorted(managed)
    if host is None:
        if len(managed) > 1:
            raise Refused(400, f"host is required for {mode} when the fleet has several hosts")
        host = next(iter(managed))
    if mode == "remove" and (managed[host]["workers_target"] or 0) <= 1:
        raise Refused(409, f"refusing to remove the last worker of {host!r}")
    return [host]


def parse_request(body):
    """Return ``(mode, host, pid)`` from a restart request body; raise Refused(400) if bad."""
    mode = body.get("mode")
    if mode not in MODES:
        raise Refused(400, f"mode must be one of {', '.join(MODES)}")
    host, pid = body.get("host"), body.get("pid")
    if host is not None and (not isinstance(host, str) or not host.strip() or len(host) > 255):
        raise Refused(400, "host must be a non-empty host name")
    if mode == "worker":
        if isinstance(pid, str) and pid.strip().isdigit():
            pid = int(pid)
        elif isinstance(pid, float) and pid.is_integer():  # JSON 454.0 is the whole number 454
            pid = int(pid)
        if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:
            raise Refused(400, "mode worker needs pid, a positive whole number")
    elif pid not in (None, ""):
        raise Refused(400, f"pid is only accepted with mode worker, not {mode}")
    else:
        pid = None
    return mode, host.strip() if host else None, pid


def start_operation(monitor, mode, host=None, pid=None, user=None):
    """Check, record and dispatch an operation; return its record, or raise Refused."""
    store = monitor.store
    try:
        targets = _targets(store, mode, host, pid)
    except Refused as exc:
        audit.record(store, "cluster.restart", "refused", user=user, mode=mode, host=host, pid=pid,
                     reason=str(exc))
        raise
    operation_id = secrets.token_hex(8)
    if not store.redis.set(store.key("cluster", "lock"), operation_id, nx=True, ex=LOCK_TTL_S):
        running = store.redis.get(store.key("cluster", "lock"))
        audit.record(store, "cluster.restart", "refused", user=user, mode=mode, host=host, pid=pid,
                     reason=f"operation {running} is running")
        raise Refused(409, f"operation {running} is still running; one operation at a time")
    now = time.time()
    record = {
        "id": operation_id, "mode": mode, "host": host, "pid": pid, "hosts": targets, "user": user,
        "status": "queued", "created_at": round(now, 3), "started_at": None, "finished_at": None,
        "progress": {"done": 0, "total": None}, "steps": [], "message": "waiting for the host agent",
        "error": None,
    }
    pipe = store.redis.pipeline(transaction=False)
    pipe.set(store.key("cluster", "op", operation_id), json.dumps(record), ex=OPERATION_TTL_S)
    pipe.zadd(store.key("cluster", "ops"), {operation_id: now})
    pipe.zremrangebyrank(store.key("cluster", "ops"), 0, -RECENT_OPERATIONS - 1)
    pipe.expire(store.key("cluster", "ops"), OPERATION_TTL_S)
    pipe.execute()
    monitor.commands.send(host_target(targets[0]), "cluster.operation", operation_id=operation_id)
    audit.record(store, "cluster.restart", "accepted", user=user, mode=mode, host=host, pid=pid,
                 operation=operation_id, hosts=targets)
    return record


def init_app(app, monitor):
    """Ship this worker's heartbeat with every flush."""
    monitor.flusher.add_shipper(Heartbeat(monitor))
    monitor.features["cluster"] = True
