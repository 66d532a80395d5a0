"""The read side: the releases the fleet has run, the workers running each now, and the deploy markers."""
import json
import time

from .report import keys

#: Deploy markers the API lists (the newest).
MARKERS = 50


def _markers(store, since, until, newest=MARKERS):
    raw = store.redis.zrevrangebyscore(keys(store)[5], until, since, start=0, num=newest)
    return [json.loads(member) for member in raw]


def releases(store, live_s, now=None):
    """Return the GET /api/admin/releases body: releases newest first, the current one, the deploy markers."""
    now = time.time() if now is None else now
    names_key, first_key, last_key, workers_key, current_key, _ = keys(store)
    pipe = store.redis.pipeline(transaction=False)
    pipe.hgetall(names_key)
    pipe.zrange(first_key, 0, -1, withscores=True)
    pipe.zrange(last_key, 0, -1, withscores=True)
    pipe.zrangebyscore(workers_key, now - live_s, "+inf")
    pipe.get(current_key)
    names, first, last, live, current = pipe.execute()
    first, last = dict(first), dict(last)
    running = {}
    for member in live:
        rid, host, _ = member.split("|", 2)
        running.setdefault(rid, []).append(host)
    rows = [{"release": name, "first_seen": first.get(rid), "last_seen": last.get(rid),
             "workers": len(running.get(rid, ())), "hosts": sorted(set(running.get(rid, ()))),
             "current": rid == current}
            for rid, name in names.items()]
    rows.sort(key=lambda row: -(row["first_seen"] or 0))
    return {"releases": rows, "current": names.get(current), "markers": _markers(store, "-inf", "+inf"),
            "generated_at": round(now, 3)}


def markers(store, since, until):
    """Return the deploy markers between ``since`` and ``until``, oldest first."""
    return _markers(store, since, until)[::-1]


def last_deploy(store):
    """Return the newest deploy marker ``{t, release, previous}``, or None."""
    found = _markers(store, "-inf", "+inf", newest=1)
    return found[0] if found else None
