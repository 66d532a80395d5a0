"""The releases capability: which release each worker runs, the fleet's deploys, and their markers.

The release itself is the process's (``core/process.py``, ``MONITOR_RELEASE``); ``report``
is each worker's report and the deploy markers it writes, ``query`` the read side, ``api``
and ``spec`` its surface. The metrics panel draws the markers on its charts and compares the
newest deploy's release with the one before (the figures are the metrics capability's).
"""
from ...core.capability import Capability
from . import api, query, spec
from .report import Reporter


class Releases(Capability):
    name = "releases"

    def init_app(self, app, monitor):
        monitor.flusher.add_task(Reporter(monitor))

    def register_api(self, bp):
        api.register(bp, self)

    def spec(self, config):
        return spec.paths(config), spec.SCHEMAS

    def markers(self, monitor, since, until):
        """Return the deploy markers ``{t, release, previous}`` between ``since`` and ``until``, oldest first."""
        return query.markers(monitor.store, since, until)

    def last_deploy(self, monitor):
        """Return the newest deploy marker ``{t, release, previous}``, or None."""
        return query.last_deploy(monitor.store)

    def comparison(self, monitor):
        """Return the metrics of the newest deploy's release against the one before, or None (no deploy yet,
        or no metrics capability)."""
        deploy = self.last_deploy(monitor)
        metrics = monitor.capabilities.get("metrics")
        if deploy is None or metrics is None:
            return None
        return metrics.compare_releases(monitor, deploy["release"], deploy["previous"], deploy["t"])


capability = Releases()
