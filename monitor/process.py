"""Who this process is: host, pid, worker id, start time, and whether it runs in a fleet."""
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
        self._proc = psutil.Process(self.pid)

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
        return self._proc.memory_info().rss / 2**20

    def cpu_percent(self):
        """CPU % since the previous call (psutil keeps the last reading)."""
        return self._proc.cpu_percent(None)
