"""The cluster capability: every worker of every host, with restart operations.

``heartbeat`` is each worker's registry entry, ``registry`` the fleet read from them,
``operations`` the restart records and their lock, ``agent`` the part that runs in each
gunicorn master and carries operations out; ``api``, ``panel`` and ``spec`` are its surfaces.
"""
from ...core.capability import Capability
from ...core.config import Setting, number
from . import api, registry, spec
from .agent import Agent
from .heartbeat import Heartbeat
from .panel import ClusterPanel


class Cluster(Capability):
    name = "cluster"
    settings = (
        Setting("MONITOR_HEARTBEAT_INTERVAL", 2.0, number(0.1, 2), "seconds, 0.1 to 2",
                "How often each worker refreshes its cluster registry entry (on a flusher tick, so "
                "never more often than MONITOR_FLUSH_INTERVAL); an entry shows as stale after three "
                "missed beats."),
        Setting("MONITOR_WORKER_GRACE", 30, number(5, 3600, int), "whole seconds, 5 to 3600",
                "How long a worker or host that stopped heartbeating stays listed as stale before it "
                "drops off; a worker its master saw exit drops off at once."),
    )
    panels = (ClusterPanel,)

    def init_app(self, app, monitor):
        monitor.flusher.add_shipper(Heartbeat(monitor))

    def register_api(self, bp):
        api.register(bp)

    def spec(self, config):
        return spec.paths(config), spec.SCHEMAS

    def master_started(self, server, settings, store):
        return Agent(server, settings, store).start()

    def workers(self, monitor, now=None):
        """Return every registered worker of the fleet (the cluster/status ``workers`` rows)."""
        return registry.workers(monitor.store, now)

    def hosts(self, monitor, now=None, workers=None):
        """Return every host of the fleet, each with its ``status``."""
        return registry.hosts(monitor.store, now, workers)


capability = Cluster()
