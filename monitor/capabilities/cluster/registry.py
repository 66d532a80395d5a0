"""The cluster registry: every worker's and host's entry in the store, and the fleet they make.

Each worker's flusher ships a heartbeat (``heartbeat.py``) to ``cluster:w:<host>:<pid>``
with a TTL of ``MONITOR_WORKER_GRACE``; a sorted set indexes them by time. Each gunicorn
master's agent (``agent.py``) keeps ``cluster:h:<host>`` the same way. An entry is
``alive`` while its heartbeat is fresh, ``stale`` once it is three intervals old, and gone
when its TTL ends, or at once when its master saw it exit.
"""
import json
import time

#: An entry is stale after this many heartbeat intervals without one.
STALE_AFTER_BEATS = 3


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
        "generated_at": round(now, 3),
    }

