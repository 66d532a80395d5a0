"""CPU profiling sessions across workers: the session lifecycle and its protocol in the store.

An admin starts a session; every targeted worker learns of it on its flusher tick and
profiles the requests it serves (``collect.py``). At stop, or when the duration ends, each
worker ships its stacks; whichever worker sees all participants shipped (or gone) merges
them into one pyinstrument session, kept compressed, size-capped and with a TTL.

Keys, all under ``key("prof", "cpu", ...)``:
``lock`` the running session's id (redis-py's Lock with the session id as its token: one
session at a time, none left behind by a dead fleet); ``s:<id>`` the session hash;
``w:<id>`` worker → heartbeat JSON; ``p:<id>`` worker → shipped stacks (zlib JSON);
``r:<id>`` the merged session (zlib JSON); ``index`` the kept session ids by start time.
"""
import json
import secrets
import sys
import time
import zlib

from pyinstrument.session import Session

from ...core import audit
from ...core.errors import Refused
from ...core.store import release
from ...web import body

#: Accepted session durations, in seconds.
DURATION_MIN, DURATION_MAX, DURATION_DEFAULT = 1, 300, 30
#: How long the lock outlives a session's duration, so a stop can still collect.
LOCK_GRACE_S = 60
FINAL = ("done", "lost")
#: The bodies of a session's start and stop, from the API or the panel (``monitor.web.body.fields``).
START_FIELDS = {"duration_s": body.whole(-2**31, 2**31), "target": body.text()}
STOP_FIELDS = {"session_id": body.text()}
_TRANSITION = """
if redis.call('hget', KEYS[1], 'status') ~= ARGV[1] then return 0 end
redis.call('hset', KEYS[1], unpack(ARGV, 2))
return 1
"""


def parse_seconds(value, name, lo, hi, default):
    """Return whole seconds ``value`` (a body's ``whole`` field) within [lo, hi], ``default`` when absent, or refuse."""
    if value is None:
        return default
    if not lo <= value <= hi:
        raise Refused(f"{name} must be a whole number from {lo} to {hi}")
    return value


def parse_duration(raw):
    """Return a session duration in seconds, or refuse."""
    return parse_seconds(raw, "duration_s", DURATION_MIN, DURATION_MAX, DURATION_DEFAULT)


def parse_target(raw):
    """Return ``all``, ``host:H`` or ``pid:P``, or refuse."""
    text = (raw or "all").strip() if isinstance(raw, str) or raw is None else None
    if text == "all":
        return text
    kind, _, value = (text or "").partition(":")
    if kind == "host" and value.strip():
        return f"host:{value.strip()}"
    if kind == "pid" and value.strip().isdigit() and int(value) > 0:
        return f"pid:{int(value)}"
    raise Refused('target must be "all", "host:NAME" or "pid:NUMBER"')


def targets(target, process):
    """Tell whether ``target`` covers this process."""
    if target == "all":
        return True
    kind, value = target.split(":", 1)
    return process.host == value if kind == "host" else process.pid == int(value)



class CpuSessions:
    """The session lifecycle in the store, and this worker's side of it (a flusher task)."""

    def __init__(self, monitor, collector):
        self.store = monitor.store
        self.process = monitor.process
        self.flusher = monitor.flusher
        self.collector = collector
        self.interval = monitor.config["MONITOR_PROFILE_INTERVAL"]
        self.keep = monitor.config["MONITOR_PROFILE_KEEP"]
        self.ttl = monitor.config["MONITOR_PROFILE_TTL"]
        self.max_bytes = monitor.config["MONITOR_PROFILE_MAX_BYTES"]
        flush = monitor.config["MONITOR_FLUSH_INTERVAL"]
        #: A participant silent this long is gone (killed, hung): the session is lost.
        self.lost_after = max(5 * flush, 3.0)
        self.flush_interval = flush
        self._transition = self.store.redis.register_script(_TRANSITION)

    def key(self, *parts):
        return self.store.key("prof", "cpu", *parts)

    def _lock(self, sid=None, duration_s=0):
        return self.store.lock("prof", "cpu", "lock", timeout=duration_s + LOCK_GRACE_S, token=sid)

    # The flusher task: join, heartbeat, ship, detect loss, collect

    def tick(self, now):
        """Follow the store's session: join it, heartbeat, ship at its end, and collect."""
        collector = self.collector
        sid = self.store.redis.get(self.key("lock"))
        if collector.active and collector.active != sid:
            collector.leave()
        if sid is None:
            return
        meta = self.store.redis.hgetall(self.key("s", sid))
        if not meta:
            return
        ending = meta["status"] != "running" or now >= float(meta["ends_at"])
        if collector.active == sid and self.flusher.stopping.is_set():
            self._ship(sid, now)  # a worker exiting gracefully hands in its part rather than going silent
            return
        if not ending and collector.active is None and targets(meta["target"], self.process):
            collector.join(sid)
        if collector.active == sid and ending:
            self._ship(sid, now)
        elif collector.active == sid:
            self._beat(sid, now)
        if ending:
            self.collect(sid, now)
        else:
            self._check_lost(sid, now)

    def _heartbeat(self, state, now, requests, samples):
        return json.dumps({"ts": now, "state": state, "requests": requests, "samples": samples})

    def _beat(self, sid, now):
        collector = self.collector
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.hset(self.key("w", sid), self.process.id,
                  self._heartbeat("running", now, collector.requests, collector.samples))
        pipe.expire(self.key("w", sid), self.ttl)
        pipe.execute()

    def _ship(self, sid, now):
        part = self.collector.take()
        pipe = self.store.raw.pipeline(transaction=False)
        pipe.hset(self.key("p", sid), self.process.id, zlib.compress(json.dumps(part).encode()))
        pipe.expire(self.key("p", sid), self.ttl)
        pipe.hset(self.key("w", sid), self.process.id,
                  self._heartbeat("shipped", now, part["requests"], part["samples"]))
        pipe.execute()

    def workers(self, sid):
        """Return worker id → heartbeat of a session's participants."""
        return {worker: json.loads(beat) for worker, beat in self.store.redis.hgetall(self.key("w", sid)).items()}

    def _stale(self, workers, now):
        return sorted(worker for worker, beat in workers.items()
                      if beat["state"] == "running" and now - beat["ts"] > self.lost_after)

    def _check_lost(self, sid, now):
        lost = self._stale(self.workers(sid), now)
        if lost and self._transition(keys=[self.key("s", sid)], args=[
                "running", "status", "stopping", "lost_workers", json.dumps(lost), "stop_reason", "worker lost"]):
            audit.record(self.store, "profiler.cpu.stop", "lost", user="system", session_id=sid, lost_workers=lost)

    def collect(self, sid, now):
        """Merge the session once every participant shipped or went silent; True once final."""
        r = self.store.redis
        meta = r.hgetall(self.key("s", sid))
        if not meta or meta["status"] in FINAL:
            return True
        if meta["status"] == "running" and now < float(meta["ends_at"]):
            return False
        workers = self.workers(sid)
        stale = self._stale(workers, now)
        if any(beat["state"] == "running" and worker not in stale for worker, beat in workers.items()):
            return False
        merging = self.store.lock("prof", "cpu", "collect", sid, timeout=30)
        if not merging.acquire(blocking=False, token=self.process.id):
            return False
        try:
            if r.hget(self.key("s", sid), "status") in FINAL:
                return True
            self._finish(sid, meta, stale, now)
        finally:
            release(merging)
        return True

    def _finish(self, sid, meta, stale, now):
        parts = {worker.decode(): json.loads(zlib.decompress(blob))
                 for worker, blob in self.store.raw.hgetall(self.key("p", sid)).items()}
        lost = sorted(set(stale) | set(json.loads(meta.get("lost_workers") or "[]")))
        blob, truncated = self._merge(sid, meta, parts, now)
        status = "lost" if lost else "done"
        pipe = self.store.redis.pipeline(transaction=False)
        if blob:
            self.store.raw.set(self.key("r", sid), blob, ex=self.ttl)
        pipe.hset(self.key("s", sid), mapping={
            "status": status, "stopped_at": now, "lost_workers": json.dumps(lost),
            "requests": sum(part["requests"] for part in parts.values()),
            "samples": sum(part["samples"] for part in parts.values()),
            "has_result": int(bool(blob)), "truncated": int(truncated),
            "stop_reason": meta.get("stop_reason") or ("duration" if meta["status"] == "running" else "stopped")})
        pipe.delete(self.key("p", sid))
        pipe.execute()
        release(self._lock(sid))
        if meta["status"] == "running":
            audit.record(self.store, "profiler.cpu.stop", status, user="system", session_id=sid, reason="duration")

    def _merge(self, sid, meta, parts, now):
        """Return the merged session as zlib JSON under the size cap (or None), and whether it was cut."""
        stacks = {}
        truncated = any(part["truncated"] for part in parts.values())
        for part in parts.values():
            for stack, seconds in part["stacks"]:
                key = tuple(stack)
                stacks[key] = stacks.get(key, 0.0) + seconds
        start_stacks = [part["start_call_stack"] for part in parts.values() if part["start_call_stack"]]
        if not stacks or not start_stacks:
            return None, truncated
        records = sorted(([list(stack), seconds] for stack, seconds in stacks.items()), key=lambda r: -r[1])
        requests = sum(part["requests"] for part in parts.values())
        while True:
            session = Session(
                frame_records=records, start_time=float(meta["started_at"]),
                duration=max(0.0, min(now, float(meta["ends_at"])) - float(meta["started_at"])),
                min_interval=self.interval, max_interval=self.interval,
                sample_count=sum(part["samples"] for part in parts.values()),
                start_call_stack=start_stacks[0],
                target_description=f"monitor session {sid}: {requests} requests on {len(parts)} workers",
                cpu_time=sum(part["cpu_time"] for part in parts.values()),
                sys_path=sys.path, sys_prefixes=Session.current_sys_prefixes())
            blob = zlib.compress(json.dumps(session.to_json()).encode())
            if len(blob) <= self.max_bytes or len(records) <= 1:
                return blob, truncated
            records = records[:len(records) // 2]
            truncated = True

    # The lifecycle, for the API and the panel

    def start(self, duration_s, target, user):
        """Start a session (refused while one runs); return its id."""
        r = self.store.redis
        sid = secrets.token_hex(6)
        now = time.time()
        if not self._lock(duration_s=duration_s).acquire(blocking=False, token=sid):
            running = r.get(self.key("lock"))
            audit.record(self.store, "profiler.cpu.start", "conflict", running=running)
            raise Refused(f"session {running} is running; stop it first", 409)
        pipe = r.pipeline(transaction=False)
        pipe.hset(self.key("s", sid), mapping={
            "id": sid, "status": "running", "target": target, "duration_s": duration_s,
            "started_at": now, "ends_at": now + duration_s, "started_by": user})
        pipe.expire(self.key("s", sid), self.ttl)
        pipe.zadd(self.key("index"), {sid: now})
        pipe.expire(self.key("index"), self.ttl)
        pipe.execute()
        self._trim()
        audit.record(self.store, "profiler.cpu.start", "ok", session_id=sid, target=target, duration_s=duration_s)
        return sid

    def _trim(self):
        r = self.store.redis
        old = r.zrange(self.key("index"), 0, -self.keep - 1)
        if old:
            r.delete(*(self.key(kind, sid) for sid in old for kind in ("s", "w", "p", "r")))
            r.zrem(self.key("index"), *old)

    def stop(self, session_id=None):
        """Stop a session (default: the running one) and wait briefly for its merge."""
        sid = session_id or self.store.redis.get(self.key("lock"))
        if not sid:
            audit.record(self.store, "profiler.cpu.stop", "conflict")
            raise Refused("no CPU profiling session is running", 409)
        if not self.store.redis.exists(self.key("s", sid)):
            raise Refused(f"no session {sid}", 404)
        if self._transition(keys=[self.key("s", sid)], args=[
                "running", "status", "stopping", "stop_reason", "stopped"]):
            audit.record(self.store, "profiler.cpu.stop", "ok", session_id=sid)
        deadline = time.monotonic() + self.lost_after + 3 * self.flush_interval + 1
        while not self.collect(sid, time.time()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.get(sid)

    def running(self):
        """Return the running session's summary, or None."""
        sid = self.store.redis.get(self.key("lock"))
        found = self.get(sid) if sid else None
        return found if found and found["status"] in ("running", "stopping") else None

    def get(self, sid):
        """Return a session's summary, or None when it is unknown or expired."""
        r = self.store.redis
        meta = r.hgetall(self.key("s", sid))
        if not meta:
            return None
        status = meta["status"]
        if status not in FINAL and r.get(self.key("lock")) != sid:
            status = "lost"  # its lock expired before anyone merged it: every participant is gone
        workers = self.workers(sid)
        now = time.time()
        live = status in ("running", "stopping")
        return {
            "session_id": sid, "status": status, "target": meta["target"],
            "duration_s": int(meta["duration_s"]), "started_at": float(meta["started_at"]),
            "ends_at": float(meta["ends_at"]), "started_by": meta.get("started_by") or "-",
            "stopped_at": float(meta["stopped_at"]) if meta.get("stopped_at") else None,
            "stop_reason": meta.get("stop_reason"),
            "remaining_s": max(0, round(float(meta["ends_at"]) - now)) if live else 0,
            "requests": sum(b["requests"] for b in workers.values()) if live else int(meta.get("requests", 0)),
            "samples": sum(b["samples"] for b in workers.values()) if live else int(meta.get("samples", 0)),
            "workers": [{"worker": worker, "requests": beat["requests"], "samples": beat["samples"],
                         "state": beat["state"]} for worker, beat in sorted(workers.items())],
            "lost_workers": json.loads(meta.get("lost_workers") or "[]"),
            "has_result": meta.get("has_result") == "1", "truncated": meta.get("truncated") == "1",
        }

    def sessions(self):
        """Return the kept sessions' summaries, newest first."""
        ids = self.store.redis.zrevrange(self.key("index"), 0, -1)
        found = [self.get(sid) for sid in ids]
        gone = [sid for sid, summary in zip(ids, found) if summary is None]
        if gone:
            self.store.redis.zrem(self.key("index"), *gone)
        return [summary for summary in found if summary]

    def result(self, sid):
        """Return the merged pyinstrument Session, or None."""
        blob = self.store.raw.get(self.key("r", sid))
        return Session.from_json(json.loads(zlib.decompress(blob))) if blob else None
