"""A real gunicorn master with its workers, started the way users start it."""
import os
import signal
import subprocess
import sys

import psutil
import pytest
import requests

from . import ROOT, wait_until


class Gunicorn:
    """A real gunicorn master with its workers, on a free port, with its own instance folder."""

    def __init__(self, instance, env, workers, port, app="wsgi:app", cwd=ROOT, args=(), health="/health"):
        self.instance = str(instance)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = os.path.join(self.instance, "gunicorn.log")
        os.makedirs(self.instance, exist_ok=True)
        self.env = {**os.environ, "MONITOR_INSTANCE_PATH": self.instance, "WEB_CONCURRENCY": str(workers),
                    "PYTHONUNBUFFERED": "1", **env}
        self.env.pop("PORT", None)
        if cwd != ROOT:  # a host app elsewhere imports the monitor of this checkout
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, self.env.get("PYTHONPATH")]))
        self.command = [sys.executable, "-m", "gunicorn", *args, app, "--bind", f"127.0.0.1:{port}"]
        self.cwd = cwd
        self.health_path = health
        self.process = None

    def start(self, wait=True):
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_healthy()
        return self

    @property
    def master_pid(self):
        return self.process.pid

    def log(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def get(self, path, **kwargs):
        kwargs.setdefault("timeout", 10)
        return requests.get(self.url + path, **kwargs)

    def post(self, path, **kwargs):
        kwargs.setdefault("timeout", 10)
        return requests.post(self.url + path, **kwargs)

    def put(self, path, **kwargs):
        kwargs.setdefault("timeout", 10)
        return requests.put(self.url + path, **kwargs)

    def health(self):
        try:
            response = requests.get(self.url + self.health_path, timeout=2)
        except requests.RequestException:
            return None
        return response.json() if response.status_code == 200 else None

    def wait_healthy(self, timeout=30):
        def ready():
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            return self.health()
        return wait_until(ready, timeout, message=f"gunicorn on {self.url} to answer /health")

    def worker_pids(self):
        try:
            return sorted(child.pid for child in psutil.Process(self.master_pid).children()
                          if "redis" not in child.name())
        except psutil.NoSuchProcess:
            return []

    def wait_workers(self, count, timeout=20):
        return wait_until(lambda: len(self.worker_pids()) == count and self.worker_pids(), timeout,
                          message=f"{count} workers")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()
        finally:
            self._log.close()
