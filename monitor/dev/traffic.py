"""``monitor traffic``: drive a mix of demo routes so every panel has something to show."""
import itertools
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, wait

import click

#: (weight, path maker): fast, slow, failing, cached and logging routes.
MIX = (
    (40, lambda rnd: "/demo/hello"),
    (20, lambda rnd: f"/demo/sleep?ms={rnd.choice((5, 20, 50, 120, 300))}"),
    (5, lambda rnd: rnd.choice(("/demo/error", "/demo/error", "/demo/error?kind=lookup"))),
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


def run(url, seconds, rate, concurrency=8, seed=None, progress=None):
    """Send about ``rate`` requests/s for ``seconds`` s; return counts by route and status.

    ``progress(stats, elapsed)``, if given, is called about once a second while it runs. Its
    threads are named ``monitor-traffic_N``: the monitor's own, so its calls are not counted as
    the app's outgoing calls.
    """
    import requests  # here, so that a host without requests can import the monitor

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

    with ThreadPoolExecutor(concurrency, thread_name_prefix="monitor-traffic") as pool:
        running = [pool.submit(client) for _ in range(concurrency)]
        while wait(running, timeout=1.0).not_done:
            if progress is not None:
                with lock:
                    seen = Counter(stats)
                progress(seen, time.monotonic() - started)
    return stats, latencies, time.monotonic() - started


def progress_line(stats, elapsed):
    """Return one line of progress: requests sent, their rate, and the server errors among them."""
    sent = sum(stats.values())
    errors = sum(n for (_, code), n in stats.items() if code == "failed" or code >= 500)
    share = f" ({errors / sent:.1%})" if sent else ""
    return f"{elapsed:5.0f} s  {sent:>7} sent  {sent / max(elapsed, 1e-9):6.1f}/s  {errors:>5} errors{share}"


@click.command("traffic")
@click.option("--url", required=True, help="Base URL of the running app, e.g. http://127.0.0.1:8000")
@click.option("--seconds", type=click.IntRange(1, 3600), default=60, show_default=True)
@click.option("--rate", type=click.FloatRange(0.5, 500), default=20.0, show_default=True,
              help="Requests per second (all routes together).")
def traffic(url, seconds, rate):
    """Drive a mix of demo routes (fast, slow, errors, cached, logs) for a while.

    Progress goes to stderr each second; the summary to stdout.
    """
    stats, latencies, elapsed = run(url, seconds, rate,
                                    progress=lambda seen, at: click.echo(progress_line(seen, at), err=True))
    total = sum(stats.values())
    click.echo(f"{total} requests in {elapsed:.1f} s ({total / max(elapsed, 1e-9):.1f}/s)")
    for (route, code), count in sorted(stats.items(), key=lambda item: str(item[0])):
        click.echo(f"  {route:<22} {code!s:>6} {count:>7}")
    if latencies:
        ordered = sorted(latencies)
        click.echo(f"latency ms: p50 {ordered[len(ordered) // 2] * 1000:.1f}, "
                   f"p95 {ordered[int(len(ordered) * 0.95)] * 1000:.1f}, max {ordered[-1] * 1000:.1f}")
