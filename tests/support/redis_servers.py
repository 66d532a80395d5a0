"""redis-server processes a test may kill, freeze or restart (Debian's package)."""
import os
import signal
import subprocess

import redis

from . import free_port, wait_until


class SystemRedis:
    """A redis-server from the system on a free port, which a test may kill, freeze or restart.

    ``persist=True`` keeps an append-only file fsynced at every write, so a restart
    (``start()`` again, same port and folder) finds every acknowledged write.
    """

    def __init__(self, directory, persist=False):
        os.makedirs(directory, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                     "--dir", str(directory)]
        self.args += ["--appendonly", "yes", "--appendfsync", "always"] if persist else ["--appendonly", "no"]
        self.start()

    def start(self):
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, 10, message="redis-server to answer")
        return self

    def ping(self):
        try:
            return redis.Redis.from_url(self.url, socket_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def kill(self):
        self.process.kill()
        self.process.wait()

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)
