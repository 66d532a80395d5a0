"""``monitor traffic``: drive a mix of demo routes so every panel has something to show."""
import itertools
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

#: (weight, path maker): fast, slow, failing, cached and logging routes.
MIX = (
    (40, lambda rnd: "/demo/hello"),
    (20, lambda rnd: f"/demo/sleep?ms={rnd.choice((5, 20, 50, 120, 300))}"),
    (5, lambda rnd: "/demo/error"),
    (25, lambda rnd: f"/demo/cached/k{rnd.randrange(20)}"),
    (10, lambda rnd: "/demo/log?level={}&msg=traffic+{}".format(
        rnd.choice(("INFO", "INFO", "WARNING", "ERROR")), rnd.randrange(1000))),
)


def pick(rnd):
    """Return one demo path, drawn by the mix's weights."""
    paths = [maker for weight, maker in MIX for _ in range(weight)]
    return rnd.choice(paths)(rnd)


def label(path):
    """Return the route a demo path belongs to (query and cache key dropped)."""
    path = path.split("?")[0]
    return "/demo/cached/<key>" if path.startswith("/demo/cached/") else path


def run(url, seconds, rate, concurrency=8, seed=None):
    """Send about ``rate`` requests/s for ``seconds`` s; return counts by route and status."""
    rnd = random.Random(seed)
    lock = threading.Lock()
    schedule = itertools.count()
    started = time.monotonic()
    deadline = started + seconds
    stats = Counter()
    latencies = []
    local = threading.local()

    def client():
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        while True:
            with lock:
                due = started + next(schedule) / rate
                path = pick(rnd)
            if due >= deadline:
                return
            time.sleep(max(0.0, due - time.monotonic()))
            begun = time.monotonic()
            try:
                code = session.get(url.rstrip("/") + path, timeout=max(1.0, deadline - begun + 1)).status_code
            except requests.RequestException:
                code = "failed"
            with lock:
                stats[(label(path), code)] += 1
                latencies.append(time.monotonic() - begun)

    with ThreadPoolExecutor(concurrency) as pool:
        for _ in range(concurrency):
            pool.submit(client)
    return stats, latencies, time.monotonic() - started
