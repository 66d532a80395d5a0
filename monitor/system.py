"""Process and host readings through psutil: what every heartbeat and metrics sample carries."""
import gc
import os

import psutil


def worker_sample(process):
    """Return this worker's resource readings (``process`` is a ProcessInfo)."""
    proc = process._proc
    with proc.oneshot():
        memory = proc.memory_info()
        sample = {
            "rss_mb": round(memory.rss / 2**20, 2),
            "cpu_percent": round(proc.cpu_percent(None), 1),
            "threads": proc.num_threads(),
            "open_files": proc.num_fds(),
        }
    sample["gc"] = [entry["collections"] for entry in gc.get_stats()]
    sample["uptime_s"] = round(process.uptime, 1)
    return sample


def host_sample():
    """Return this host's CPU %, memory % and load averages."""
    return {
        "cpu_percent": psutil.cpu_percent(None),
        "memory_percent": psutil.virtual_memory().percent,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
