"""The flusher shipper that keeps this worker's registry entry fresh."""
from .registry import stale_after, write_entry


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
        sample = process.sample()
        requests = self.monitor.requests
        record = {
            "id": process.id, "host": process.host, "pid": process.pid,
            "master_pid": process.master_pid or None, "started_at": round(process.started_at, 3),
            "requests": requests.total, "in_flight": requests.in_flight,
            "rss_mb": sample["rss_mb"], "cpu_percent": sample["cpu_percent"],
            "ts": now, "stale_after": self.stale_after,
        }
        write_entry(pipe, self.monitor.store, "w", f"{process.host}:{process.pid}", record, now, self.grace)

        def undo():
            self.last = (None, 0.0)
        return undo
