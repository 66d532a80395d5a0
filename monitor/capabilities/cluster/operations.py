"""Restart operations: records in the store, one at a time in the fleet, carried out by host agents.

Operations (restart a worker, rolling restart, reload, add, remove) are records under
``cluster:op:<id>``; one runs at a time (``cluster:lock``, redis-py's Lock whose token is
the operation id), carried out by the agent of the host concerned, which it reaches through
the command queue of that host.
"""
import json
import re
import secrets
import time

from ...core import audit
from ...core.commands import host_target
from ...core.errors import Refused
from ...core.store import release, renew
from ...web import body
from .registry import hosts, workers

#: Modes of ``POST cluster/restart``.
MODES = ("rolling", "worker", "reload", "add", "remove")
#: How long an operation record is kept.
OPERATION_TTL_S = 86400
#: Operation records listed in the panel and indexed.
RECENT_OPERATIONS = 20
#: How long the one-operation lock lives without its agent refreshing it.
LOCK_TTL_S = 60
FINAL = ("done", "failed")
_OPERATION_ID = re.compile(r"^[0-9a-f]{16}$")


def _lock(store, operation_id=None):
    return store.lock("cluster", "lock", timeout=LOCK_TTL_S, token=operation_id)


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
    store.redis.set(store.key("cluster", "op", record["id"]), json.dumps(record), ex=OPERATION_TTL_S)
    if record["status"] not in FINAL:
        renew(_lock(store, record["id"]))


def release_lock(store, operation_id):
    """Free the one-operation lock if this operation still holds it."""
    release(_lock(store, operation_id))


def _targets(store, mode, host, pid):
    """Return the hosts that carry out the operation, in order; raise Refused for bad input."""
    worker_list = workers(store)
    managed = {h["host"]: h for h in hosts(store, worker_list=worker_list) if h["managed"]}
    if host is not None and host not in managed:
        known = {w["host"] for w in worker_list}
        raise Refused(f"host {host!r} has no gunicorn master agent" if host in known else f"unknown host {host!r}",
                      409 if host in known else 404)
    if mode == "worker":
        matches = [w for w in worker_list if w["pid"] == pid and host in (None, w["host"])]
        if not matches:
            raise Refused(f"no worker with pid {pid}" + (f" on {host!r}" if host else ""), 404)
        if len(matches) > 1:
            raise Refused(f"pid {pid} runs on several hosts; give host")
        if matches[0]["host"] not in managed:
            raise Refused(f"host {matches[0]['host']!r} has no gunicorn master agent", 409)
        return [matches[0]["host"]]
    if not managed:
        raise Refused("no gunicorn master is registered", 409)
    if host is None and mode == "rolling":
        return sorted(managed)
    if host is None:
        if len(managed) > 1:
            raise Refused(f"host is required for {mode} when the fleet has several hosts")
        host = next(iter(managed))
    if mode == "remove" and (managed[host]["workers_target"] or 0) <= 1:
        raise Refused(f"refusing to remove the last worker of {host!r}", 409)
    return [host]


#: The body of a restart request, from the API or the panel (``monitor.web.body.fields``).
RESTART_FIELDS = {"mode": body.text(), "host": body.text(255), "pid": body.whole(1, 2**31 - 1)}


def parse_request(fields):
    """Return ``(mode, host, pid)`` from a restart request's fields (``RESTART_FIELDS``), or refuse it."""
    mode, host, pid = fields.get("mode"), fields.get("host"), fields.get("pid")
    if mode not in MODES:
        raise Refused(f"mode must be one of {', '.join(MODES)}")
    if host is not None and not host.strip():
        raise Refused("host must be a non-empty host name")
    if mode == "worker" and pid is None:
        raise Refused("mode worker needs pid, a positive whole number")
    if mode != "worker" and pid is not None:
        raise Refused(f"pid is only accepted with mode worker, not {mode}")
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
    if not _lock(store).acquire(blocking=False, token=operation_id):
        running = store.redis.get(store.key("cluster", "lock"))
        audit.record(store, "cluster.restart", "refused", user=user, mode=mode, host=host, pid=pid,
                     reason=f"operation {running} is running")
        raise Refused(f"operation {running} is still running; one operation at a time", 409)
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
