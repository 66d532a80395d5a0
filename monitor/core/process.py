"""Who this process is (host, pid, worker id, start time, fleet membership) and its readings."""
import gc
import os
import time

import psutil

#: Set by the gunicorn master for its workers, so a worker knows it serves in a cluster.
MASTER_ENV = "MONITOR_MASTER_PID"


class ProcessInfo:
    """Identity of the current process; recomputed after a fork."""

    def __init__(self, host):
        self.host = host
        self.refresh()

    def refresh(self):
        self.pid = os.getpid()
        self.started_at = time.time()
        self.master_pid = int(os.environ.get(MASTER_ENV, "0") or 0)
        self.proc = psutil.Process(self.pid)

    @property
    def id(self):
        return f"{self.host}:{self.pid}"

    @property
    def clustered(self):
        """True in a gunicorn worker, whose numbers merge with its siblings' in Redis."""
        return self.master_pid not in (0, self.pid) and os.getppid() == self.master_pid

    @property
    def uptime(self):
        return time.time() - self.started_at

    def rss_mb(self):
        return self.proc.memory_info().rss / 2**20

    def sample(self):
        """Return this process's resource readings: RSS, CPU %, threads, files, GC, uptime."""
        proc = self.proc
        with proc.oneshot():
            memory = proc.memory_info()
            sample = {
                "rss_mb": round(memory.rss / 2**20, 2),
                "cpu_percent": round(proc.cpu_percent(None), 1),
                "threads": proc.num_threads(),
                "open_files": proc.num_fds(),
            }
        sample["gc"] = [entry["collections"] for entry in gc.get_stats()]
        sample["uptime_s"] = round(self.uptime, 1)
        return sample


def host_sample():
    """Return this host's CPU %, memory % and load averages."""
    return {
        "cpu_percent": psutil.cpu_percent(None),
        "memory_percent": psutil.virtual_memory().percent,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
