"""Reliability under Redis faults (issue 9): real gunicorn masters on a real redis-server that
the tests kill, restart and freeze, while a bounded client loop drives the demo routes.

The figures docs/reliability.md quotes are printed by these tests (``-s``).
"""
import os
import signal
import threading
import time
import uuid

import pytest
import requests
from test_cluster import FAST, finish, registered, restart

from monitor import create_app
from monitor.auth.users import Users
from monitor.capabilities.metrics import query as metrics_query
from monitor.core import audit
from monitor.core.state import state
from monitor.core.store import Store
from support import UserFactory, bearer, wait_until

#: Endpoint rules the client loop hits, as the metrics API names them.
RULES = ("/demo/hello", "/demo/cached/<key>", "/demo/log")
#: How long the tests keep Redis dead or frozen: several flush intervals (0.5 s in these servers).
OUTAGE_S = 4
DOWN = {"error": "unavailable", "detail": "the shared store (Redis) is unreachable; try again shortly"}


class Load:
    """A bounded client loop on 127.0.0.1: threads cycle through the demo routes until stopped
    (or ``seconds`` pass) and keep ``(rule, status, started, elapsed)`` of every request."""

    def __init__(self, url, threads=3, seconds=45):
        self.url = url
        self.tag = uuid.uuid4().hex[:8]
        self.deadline = time.monotonic() + seconds
        self.stopping = threading.Event()
        self.results = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(15)

    def _run(self, worker):
        n = 0
        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            n += 1
            rule = RULES[n % len(RULES)]
            self.get(rule, {"/demo/hello": "/demo/hello", "/demo/cached/<key>": f"/demo/cached/k{n % 5}",
                            "/demo/log": f"/demo/log?level=INFO&msg={self.tag}-{worker}-{n}"}[rule])

    def get(self, rule, path):
        """Make one request and keep its outcome; return the response (None if it failed)."""
        started = time.monotonic()
        response = None
        try:
            response = requests.get(self.url + path, timeout=20)
            status = response.status_code
        except requests.RequestException as exc:
            status = repr(exc)
        self.results.append((rule, status, started, time.monotonic() - started))
        return response

    def counts(self, since=0.0, until=float("inf")):
        """Return ``{rule: requests}`` of the requests started in [since, until)."""
        found = dict.fromkeys(RULES, 0)
        for rule, _, started, _ in list(self.results):
            if since <= started < until:
                found[rule] += 1
        return found

    def failures(self):
        return [(rule, status) for rule, status, _, _ in self.results if status != 200]


def users_on(url, prefix):
    """The conftest user factory, on this Redis."""
    return UserFactory(Users(Store(url, prefix)))


def fleet_counts(server, headers):
    """Return ``{rule: count}`` of the demo routes from the fleet's merged metrics."""
    body = server.get("/api/admin/metrics?window=300", headers=headers).json()
    found = dict.fromkeys(RULES, 0)
    for row in body["endpoints"]:
        if row["endpoint"] in found and row["method"] == "GET":
            found[row["endpoint"]] += row["count"]
    return found


def lifetime(url, prefix):
    """Return ``{rule: count}`` of the demo routes from the fleet's lifetime (Prometheus) counters."""
    found = dict.fromkeys(RULES, 0)
    for (endpoint, method, _), count in metrics_query.totals(Store(url, prefix)).items():
        if endpoint in found and method == "GET":
            found[endpoint] += count
    return found


def logged(server, headers, tag):
    """Return how many log lines of the fleet's stream carry ``tag``."""
    count, cursor = 0, None
    while True:
        query = f"/api/admin/logs?q={tag}&limit=1000" + (f"&before={cursor}" if cursor else "")
        body = server.get(query, headers=headers).json()
        count += sum(tag in entry["message"] for entry in body["entries"])
        cursor = body["next"]
        if not cursor:
            return count


def all_health(server, status, pids):
    """Tell whether /health says ``status`` on every worker in ``pids`` (and on no other)."""
    seen = set()
    for _ in range(12 * len(pids)):
        body = server.health()
        if body is None or body["status"] != status:
            return False
        seen.add(body["worker"]["pid"])
        if seen == set(pids):
            return True
    return False


def cache_hits(load, tries=4):
    """Tell whether the app cache serves hits again: each of ``tries`` new keys, read twice, reads
    back the value its first read stored (whichever workers answer)."""
    for _ in range(tries):
        path = f"/demo/cached/probe{uuid.uuid4().hex[:6]}"
        if load.get(RULES[1], path).json() != load.get(RULES[1], path).json():
            return False
    return True


def test_a_flush_whose_answer_was_lost_is_applied_once(system_redis, app_config):
    """A batch sent to a frozen Redis sits in its socket buffer and runs when it resumes; the
    flusher, having seen a timeout, sends it again: the ack key makes the second one a no-op."""
    redis_server = system_redis()
    app = create_app({**app_config, "MONITOR_REDIS_URL": redis_server.url})
    monitor, client = state(app), app.test_client()
    client.get("/health")  # starts this process's flusher; stopped so that the test drives it
    monitor.flusher.stop(flush=False)
    hello = ("/demo/hello", "GET", "2xx")

    def requests_(n):
        for _ in range(n):
            assert client.get("/demo/hello").status_code == 200

    requests_(2)
    monitor.flusher.tick()  # lands, and loads the script
    requests_(5)
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        monitor.flusher.tick()  # times out: the batch (and redis-py's retry of it) wait in Redis
        assert monitor.flusher.unsent is not None and monitor.flusher.failures == 1
        requests_(1)
        monitor.flusher.tick()  # still frozen: the resend waits too, this tick's request is put back
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    # the timed-out batch ran by itself once Redis resumed: its answer was lost, not its effect
    wait_until(lambda: metrics_query.totals(monitor.store).get(hello) == 7, 5, message="the buffered batch to run")
    requests_(1)
    monitor.flusher.tick()  # sends the kept batch again (a no-op now), then the 2 newer requests
    assert monitor.flusher.unsent is None and monitor.flusher.failures == 2
    assert metrics_query.totals(monitor.store) == {hello: 9}
    assert metrics_query.query(monitor.store, 60)["requests"]["total"] == 9
    assert int(monitor.store.redis.get(monitor.flusher.ack_key)) == monitor.flusher.seq == 3


def test_redis_killed_under_load_fails_no_request_and_recovers_in_place(gunicorn, system_redis, prefix):
    redis_server = system_redis(persist=True)  # AOF fsynced at every write: users survive the restart
    operator = users_on(redis_server.url, prefix)("operator")
    headers = bearer(operator)
    server = gunicorn(workers=2, env={"REDIS_URL": redis_server.url})
    pids = server.wait_workers(2)

    with Load(server.url) as load:
        wait_until(lambda: sum(load.counts().values()) >= 30, 15, message="load to flow")
        killed = time.monotonic()
        redis_server.kill()
        wait_until(lambda: all_health(server, "degraded", pids), 5, interval=0.02, message="/health to say degraded")
        to_degraded = time.monotonic() - killed
        body = server.health()
        assert body["redis"] == {"ok": False} and body["monitoring"]["flusher"] is True

        # every admin action that needs the store: 503 JSON with Retry-After, never a 500
        for method, path in (("get", "/api/admin/metrics"), ("post", "/api/admin/cache/clear"),
                             ("get", "/api/admin/cluster/status")):
            answer = getattr(server, method)(path, headers=headers)
            assert (answer.status_code, answer.json(), answer.headers["Retry-After"]) == (503, DOWN, "5"), path
            assert answer.headers["Cache-Control"] == "no-store"
        prometheus = server.get("/metrics", headers=headers)
        assert (prometheus.status_code, prometheus.json()["error"]) == (503, "unavailable")

        wait_until(lambda: time.monotonic() - killed > OUTAGE_S and sum(load.counts(since=killed + 1).values()) >= 30,
                   20, message="requests during the outage")
        restarted = time.monotonic()
        redis_server.start()  # same port, same append-only file

        def recovered():
            metrics = server.get("/api/admin/metrics", headers=headers)
            return metrics.status_code == 200 and all_health(server, "healthy", pids) and cache_hits(load)
        wait_until(recovered, 10, interval=0.05, message="full recovery")
        to_recovery = time.monotonic() - restarted
        during = load.counts(since=killed, until=restarted)
        wait_until(lambda: sum(load.counts(since=restarted + to_recovery).values()) >= 15, 15,
                   message="requests after recovery")

    made = load.counts()
    assert load.failures() == []  # no host-app request failed, before, during or after
    assert sum(during.values()) >= 30 and all(during.values())
    assert server.worker_pids() == pids  # recovered in place: no worker was restarted

    # every request, those held in the workers through the outage included, is in the totals
    wait_until(lambda: sum(fleet_counts(server, headers).values()) >= sum(made.values()), 10, interval=0.2,
               message=f"the fleet's totals to reach {made}")
    assert fleet_counts(server, headers) == made
    assert lifetime(redis_server.url, prefix) == made
    assert logged(server, headers, load.tag) == made["/demo/log"]

    cleared = server.post("/api/admin/cache/clear", json={"namespace": "demo"}, headers=headers)
    assert cleared.status_code == 200 and cleared.json()["cleared"] >= 2
    log = server.log()
    assert "WORKER TIMEOUT" not in log and "Traceback" not in log
    slowest = max(elapsed for _, _, started, elapsed in load.results if killed <= started < restarted)
    print(f"\nredis killed: degraded after {to_degraded:.2f} s, recovered {to_recovery:.2f} s after restart; "
          f"{sum(made.values())} requests, {sum(during.values())} during the outage (slowest {slowest:.3f} s), "
          f"0 failed, all counted")


@pytest.mark.slow
def test_hung_redis_never_holds_a_request_past_the_timeout_budget(gunicorn, system_redis, prefix):
    timeout, retries = 0.25, 1
    budget = timeout * (retries + 1)  # what one Redis call may cost (docs/reliability.md)
    bound = 2 * budget + 1.5  # a connect and a read may each time out, plus slack for a loaded 2-core VM
    redis_server = system_redis()
    operator = users_on(redis_server.url, prefix)("operator")
    headers = bearer(operator)
    server = gunicorn(workers=2, env={"REDIS_URL": redis_server.url, "MONITOR_REDIS_TIMEOUT": str(timeout),
                                      "MONITOR_REDIS_RETRIES": str(retries)})
    pids = server.wait_workers(2)
    health_times, admin = [], []
    try:
        with Load(server.url) as load:
            wait_until(lambda: sum(load.counts().values()) >= 30, 15, message="load to flow")
            frozen = time.monotonic()
            os.kill(redis_server.process.pid, signal.SIGSTOP)

            def degraded():
                started = time.monotonic()
                body = server.health()
                health_times.append(time.monotonic() - started)
                return body is not None and body["status"] == "degraded" and body["redis"] == {"ok": False}
            wait_until(degraded, 5, interval=0.02, message="/health to say degraded")
            to_degraded = time.monotonic() - frozen
            wait_until(lambda: all_health(server, "degraded", pids), 5, interval=0.02, message="every worker degraded")
            for method, path in (("get", "/api/admin/metrics"), ("post", "/api/admin/cache/clear")):
                started = time.monotonic()
                answer = getattr(server, method)(path, headers=headers)
                admin.append(time.monotonic() - started)
                assert (answer.status_code, answer.json(), answer.headers["Retry-After"]) == (503, DOWN, "5"), path
            while time.monotonic() - frozen < OUTAGE_S:
                degraded()
                time.sleep(0.1)
            resumed = time.monotonic()
            during = load.counts(since=frozen, until=resumed)
            os.kill(redis_server.process.pid, signal.SIGCONT)
            wait_until(lambda: all_health(server, "healthy", pids) and cache_hits(load), 10, interval=0.05,
                       message="recovery after SIGCONT")
            to_recovery = time.monotonic() - resumed
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)

    slow = [(rule, round(elapsed, 3)) for rule, _, started, elapsed in load.results
            if frozen <= started < resumed and elapsed >= bound]
    assert load.failures() == [] and slow == []
    assert sum(during.values()) >= 30 and all(during.values())
    assert max(health_times) < bound and max(admin) < bound
    assert "WORKER TIMEOUT" not in server.log() and "Traceback" not in server.log()
    assert server.worker_pids() == pids
    made = load.counts()
    wait_until(lambda: sum(fleet_counts(server, headers).values()) >= sum(made.values()), 10, interval=0.2,
               message=f"the fleet's totals to reach {made}")
    # Exactly once, though flushes that timed out against the frozen Redis ran when it resumed
    # and were sent again (monitor/flusher.py).
    assert fleet_counts(server, headers) == made
    counters = lifetime(redis_server.url, prefix)
    assert counters == made
    assert logged(server, headers, load.tag) == made["/demo/log"]
    worst = {rule: round(max([e for r, _, s, e in load.results if r == rule and frozen <= s < resumed]), 3)
             for rule in RULES}
    print(f"\nredis frozen: degraded after {to_degraded:.2f} s, recovered {to_recovery:.2f} s after SIGCONT; "
          f"{sum(during.values())} requests while frozen, slowest {worst} s (bound {bound} s); "
          f"lifetime counters {sum(counters.values())} for {sum(made.values())} requests; "
          f"/health slowest {max(health_times):.3f} s, admin 503 slowest {max(admin):.3f} s")


def test_worker_killed_during_a_rolling_restart_is_replaced_and_leaves_no_lock(gunicorn, make_user, store):
    server = gunicorn(workers=3, env=FAST)
    viewer, operator = make_user("viewer"), make_user("operator")
    registered(server, viewer, 3)
    old = server.worker_pids()
    response = restart(server, operator, mode="rolling")
    assert response.status_code == 202, response.text
    operation_id = response.json()["operation_id"]

    def first_step_done():
        record = server.get(f"/api/admin/cluster/operations/{operation_id}", headers=bearer(operator)).json()
        return record["status"] == "running" and record["progress"]["done"] >= 1
    wait_until(first_step_done, 45, interval=0.1, message="the first worker to be replaced")
    victim = old[-1]  # the youngest is replaced last: it is still running
    os.kill(victim, signal.SIGKILL)
    record = finish(server, operator, operation_id, timeout=50)

    # decided: the operation completes; gunicorn's replacement of the killed worker is its step
    assert record["status"] == "done" and record["error"] is None, record
    assert record["progress"] == {"done": 3, "total": 3}
    assert sorted(step["old_pid"] for step in record["steps"]) == old
    assert [step["old_pid"] for step in record["steps"] if step["action"] == "crashed"] == [victim]
    new = server.worker_pids()
    assert len(new) == 3 and not set(new) & set(old)
    assert sorted(step["new_pid"] for step in record["steps"]) == new
    assert store.redis.get(store.key("cluster", "lock")) is None
    body = registered(server, viewer, 3)
    assert (body["hosts"][0]["workers_target"], body["hosts"][0]["crashes"]) == (3, 1)
    assert ("cluster.restart", "done", operation_id) in [
        (e["action"], e["result"], e["detail"].get("operation")) for e in audit.entries(store, 20)]

    again = restart(server, operator, mode="worker", pid=new[0])  # no lock left behind: the next one runs
    assert again.status_code == 202, again.text
    assert finish(server, operator, again.json()["operation_id"])["status"] == "done"
    assert store.redis.get(store.key("cluster", "lock")) is None


@pytest.mark.slow
def test_a_sentinel_failover_fails_no_request_and_loses_at_most_one_flush_interval(gunicorn, sentinel_set, prefix):
    """REDIS_URL=redis+sentinel://...: the primary is SIGKILLed under load and the sentinel
    promotes the replica. No host-app request fails, the workers follow the new primary by
    themselves, and the metrics lose at most what the workers sent in one flush interval
    before the kill (written to the old primary, not yet replicated)."""
    interval = 0.5
    headers = bearer(users_on(sentinel_set.url, prefix)("operator"))
    server = gunicorn(workers=2, env={"REDIS_URL": sentinel_set.url, "MONITOR_FLUSH_INTERVAL": str(interval)})
    pids = server.wait_workers(2)
    with Load(server.url) as load:
        wait_until(lambda: sum(load.counts().values()) >= 30, 15, message="load to flow")
        killed = time.monotonic()
        took = sentinel_set.fail_primary()
        wait_until(lambda: server.get("/api/admin/metrics", headers=headers).status_code == 200
                   and all_health(server, "healthy", pids), 15, interval=0.1, message="the workers to follow")
        recovered = time.monotonic() - killed
        wait_until(lambda: sum(load.counts(since=killed + recovered).values()) >= 30, 15,
                   message="requests after the failover")
    made = load.counts()
    assert load.failures() == []  # no host-app request failed
    assert server.worker_pids() == pids and "Traceback" not in server.log()
    bound = sum(load.counts(since=killed - interval - 0.1, until=killed).values())
    wait_until(lambda: sum(fleet_counts(server, headers).values()) >= sum(made.values()) - bound, 10, interval=0.2,
               message=f"the fleet's totals to reach {made} less {bound}")
    time.sleep(3 * interval)
    counted = fleet_counts(server, headers)
    lost = {rule: made[rule] - counted[rule] for rule in RULES}
    assert all(n >= 0 for n in lost.values()), (made, counted)  # nothing counted twice
    assert sum(lost.values()) <= bound, (made, counted, bound)
    print(f"\nsentinel failover: replica promoted {took:.2f} s after the kill, the app's admin API answered "
          f"again after {recovered:.2f} s; {sum(made.values())} requests, 0 failed; metrics lost "
          f"{sum(lost.values())} (bound: {bound}, the requests of the flush interval before the kill)")
