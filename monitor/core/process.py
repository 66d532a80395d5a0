"""Who this process is (host, pid, worker id, start time, fleet membership, release) and its readings."""
import functools
import gc
import hashlib
import os
import subprocess
import time

import psutil

#: Set by the gunicorn master for its workers, so a worker knows it serves in a cluster.
MASTER_ENV = "MONITOR_MASTER_PID"
#: CPU % is measured over at least this span; readers in between share the last measure.
CPU_SPAN_S = 1.0
#: Where a release is named when MONITOR_RELEASE is not set, in order: the build's commit on
#: Heroku-like platforms and CI systems.
RELEASE_ENV = ("SOURCE_VERSION", "HEROKU_SLUG_COMMIT", "GIT_COMMIT")
UNKNOWN_RELEASE = "unknown"
#: Longest release name kept (a longer one is cut).
MAX_RELEASE = 100


def release(configured, folder, environ=os.environ):
    """Return the release this process runs: ``configured`` (MONITOR_RELEASE), else the first of
    ``RELEASE_ENV`` set, else ``git rev-parse --short HEAD`` in ``folder`` (the app's), else "unknown"."""
    for value in (configured, *(environ.get(name) for name in RELEASE_ENV)):
        if value and value.strip():
            return value.strip()[:MAX_RELEASE]
    return _git_head(folder)


@functools.lru_cache(maxsize=16)
def _git_head(folder):
    try:
        found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True,
                               text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):  # no git, no such folder, a hung repository
        return UNKNOWN_RELEASE
    head = found.stdout.strip()
    return head[:MAX_RELEASE] if found.returncode == 0 and head else UNKNOWN_RELEASE


def release_id(name):
    """Return the short id of a release name, for Redis keys (a name may hold any character)."""
    return hashlib.blake2b(name.encode(), digest_size=8).hexdigest()


class ProcessInfo:
    """Identity of the current process; recomputed after a fork."""

    def __init__(self, host, release=UNKNOWN_RELEASE):
        self.host = host
        #: The release this process runs (``release()``; the same in every process of an app).
        self.release = release
        self.refresh()

    def refresh(self):
        self.pid = os.getpid()
        self.started_at = time.time()
        self.master_pid = int(os.environ.get(MASTER_ENV, "0") or 0)
        self.proc = psutil.Process(self.pid)
        self._cpu = (time.monotonic(), self._cpu_seconds(), 0.0)

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

    def _cpu_seconds(self):
        times = self.proc.cpu_times()
        return times.user + times.system

    def cpu_percent(self):
        """Return this process's CPU % (100 = one core busy) over the last span of at least ``CPU_SPAN_S``.

        Measured here once per span for every reader (the heartbeat and the metrics sample
        both read it on each flusher tick): psutil's ``cpu_percent(None)`` would measure since
        whichever of them called last, giving 0 or thousands of percent.
        """
        at, used, percent = self._cpu
        now = time.monotonic()
        if now - at >= CPU_SPAN_S:
            seconds = self._cpu_seconds()
            percent = round(max(0.0, seconds - used) / (now - at) * 100, 1)
            self._cpu = (now, seconds, percent)
        return percent

    def sample(self):
        """Return this process's resource readings: RSS, CPU %, threads, files, GC, uptime."""
        proc = self.proc
        with proc.oneshot():
            memory = proc.memory_info()
            sample = {
                "rss_mb": round(memory.rss / 2**20, 2),
                "cpu_percent": self.cpu_percent(),
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
