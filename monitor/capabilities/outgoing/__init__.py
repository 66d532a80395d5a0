"""The outgoing capability: the app's outgoing HTTP calls (urllib3/requests, httpx) by host and path, fleet-wide.

``collect`` patches the HTTP libraries that are installed, once per process, and groups calls
by host, method and path template; its storage is the queries capability's ``tally``. ``ship``
and ``query`` are its write and read sides; ``api``, ``panel`` and ``spec`` its surfaces. The
metrics table's "HTTP ms per request" comes from ``endpoint_columns``.
"""
from ...core.capability import Capability
from ...core.config import Setting, number
from . import api, collect, query, spec
from .panel import OutgoingPanel
from .ship import shipper


class Outgoing(Capability):
    name = "outgoing"
    settings = (
        Setting("MONITOR_OUTGOING_MAX_GROUPS", 200, number(10, 10000, int), "a whole number, 10 to 10000",
                "Distinct (host, method, path template) groups of outgoing calls each worker records; calls "
                "past the cap count under `<overflow>`."),
    )
    panels = (OutgoingPanel,)

    def init_app(self, app, monitor):
        monitor.outgoing = collect.CallCollector(app.config["MONITOR_OUTGOING_MAX_GROUPS"])
        collect.default = monitor.outgoing
        collect.install()
        monitor.flusher.add_shipper(shipper(monitor, monitor.outgoing))

    def register_api(self, bp):
        api.register(bp)

    def spec(self, config):
        return spec.paths(config), spec.SCHEMAS

    def prometheus(self, store, window_s):
        return query.metric_families(store)

    def endpoint_columns(self, store, window_s, host=None, pid=None):
        return query.endpoint_columns(store, window_s, host, pid)


capability = Outgoing()
