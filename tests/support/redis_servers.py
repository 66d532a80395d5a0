"""redis-server processes a test may kill, freeze or restart (Debian's package), a 3-master
Redis Cluster and a Sentinel set (a primary, a replica and a sentinel)."""
import os
import random
import signal
import socket
import subprocess
import time

import redis

from . import free_port, wait_until


class SystemRedis:
    """A redis-server from the system on a free port, which a test may kill, freeze or restart.

    ``persist=True`` keeps an append-only file fsynced at every write, so a restart
    (``start()`` again, same port and folder) finds every acknowledged write. ``args`` adds
    redis-server options (``["--replicaof", "127.0.0.1", "6379"]``, say).
    """

    def __init__(self, directory, persist=False, port=None, args=()):
        os.makedirs(directory, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                     "--dir", str(directory), *args]
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


def cluster_port():
    """Return a free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        port = random.randint(20000, 55000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for a cluster node")


class RedisClusterSet:
    """Three redis-server masters with ``--cluster-enabled yes``, joined by ``redis-cli --cluster create``.

    ``url`` names one node, as a user's REDIS_URL would.
    """

    def __init__(self, directory):
        self.nodes = []
        for i in range(3):
            port = cluster_port()
            folder = os.path.join(directory, f"node{i}")
            self.nodes.append(SystemRedis(folder, port=port, args=[
                "--cluster-enabled", "yes", "--cluster-config-file", os.path.join(folder, "nodes.conf"),
                "--cluster-node-timeout", "2000"]))
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes],
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        wait_until(self.ready, 30, interval=0.2, message="the cluster to cover every slot")
        self.url = self.nodes[0].url

    def ready(self):
        try:
            return all(redis.Redis(port=node.port, socket_timeout=1).cluster("info").get("cluster_state") == "ok"
                       for node in self.nodes)
        except redis.RedisError:
            return False

    def stop(self):
        for node in self.nodes:
            node.stop()


class SentinelSet:
    """A primary, a replica of it and one sentinel (quorum 1) that fails over within about a
    second of the primary going down. ``url`` is the ``redis+sentinel://`` URL of the set."""

    SERVICE = "mymaster"

    def __init__(self, directory):
        self.primary = SystemRedis(os.path.join(directory, "primary"))
        self.replica = SystemRedis(os.path.join(directory, "replica"),
                                   args=["--replicaof", "127.0.0.1", str(self.primary.port)])
        self.port = free_port()
        folder = os.path.join(directory, "sentinel")
        os.makedirs(folder, exist_ok=True)
        config = os.path.join(folder, "sentinel.conf")
        with open(config, "w") as handle:  # the sentinel rewrites this file as it learns
            handle.write(f"port {self.port}\nbind 127.0.0.1\ndir {folder}\n"
                         f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 1\n"
                         f"sentinel down-after-milliseconds {self.SERVICE} 500\n"
                         f"sentinel failover-timeout {self.SERVICE} 5000\n"
                         f"sentinel parallel-syncs {self.SERVICE} 1\n")
        self.process = subprocess.Popen(["redis-sentinel", config], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self.url = f"redis+sentinel://127.0.0.1:{self.port}/{self.SERVICE}/0"
        wait_until(self.replica_known, 30, interval=0.1, message="the sentinel to see the replica in sync")

    def sentinel(self):
        return redis.Redis(port=self.port, socket_timeout=1, decode_responses=True)

    def master_port(self):
        """Return the port of the primary the sentinel names now."""
        try:
            return int(self.sentinel().sentinel_get_master_addr_by_name(self.SERVICE)[1])
        except (redis.RedisError, TypeError):
            return None

    def replica_known(self):
        try:
            replicas = self.sentinel().sentinel_slaves(self.SERVICE)
            info = redis.Redis(port=self.replica.port, socket_timeout=1).info("replication")
        except redis.RedisError:
            return False
        return (any(r["port"] == self.replica.port and not r.get("is_odown") and not r.get("is_sdown")
                    for r in replicas) and info.get("master_link_status") == "up")

    def fail_primary(self, timeout=20):
        """SIGKILL the primary and wait for the sentinel to promote the replica; return the seconds it took."""
        started = time.monotonic()
        self.primary.kill()
        wait_until(lambda: self.master_port() == self.replica.port, timeout, interval=0.05,
                   message="the sentinel to promote the replica")
        return time.monotonic() - started

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.replica.stop()
        self.primary.stop()
