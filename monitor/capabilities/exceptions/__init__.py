"""The exceptions capability: unhandled exceptions grouped by fingerprint, fleet-wide, with samples.

``fingerprint`` says what makes two exceptions one group, ``collect`` counts them in each
process (only when something failed: the timing point's exception sink, and a watcher of
log records for ``logger.exception`` outside a request), ``layout`` is the Redis keys,
``ship`` the flusher's writes and ``query`` the read side (with resolving and regressions);
``api``, ``panel`` and ``spec`` are its surfaces, and the alert rules read ``new_groups``
and ``regressions``.
"""
from flask import current_app

from ...core import records
from ...core.capability import Capability
from ...core.config import Setting, number
from . import api, query, spec
from .collect import Collector
from .panel import ExceptionsPanel
from .ship import Shipper


class Exceptions(Capability):
    name = "exceptions"
    settings = (
        Setting("MONITOR_EXCEPTIONS_MAX_GROUPS", 200, number(10, 100000, int), "a whole number, 10 to 100000",
                "Distinct exception groups each worker records; exceptions past the cap count in the group "
                "`overflow` (type `<overflow>`). Also the most groups `GET /metrics` lists."),
    )
    panels = (ExceptionsPanel,)

    def init_app(self, app, monitor):
        monitor.exceptions = Collector(app.config["MONITOR_EXCEPTIONS_MAX_GROUPS"], monitor.extension)
        monitor.exception_sinks.append(monitor.exceptions.request_failed)
        records.watch("exceptions", monitor.exceptions.logged)
        monitor.flusher.add_shipper(Shipper(monitor, monitor.exceptions))

    def register_api(self, bp):
        api.register(bp)

    def spec(self, config):
        return spec.paths(config), spec.SCHEMAS

    def prometheus(self, store, window_s):
        return query.metric_families(store, current_app.config["MONITOR_EXCEPTIONS_MAX_GROUPS"])

    def new_groups(self, monitor, since, until):
        """Return ``[{id, type}]`` of the groups first seen between ``since`` and ``until`` (for alert rules)."""
        return query.new_groups(monitor.store, since, until)

    def regressions(self, monitor):
        """Return ``[{id, type}]`` of the resolved groups back in a release they had not been seen in."""
        return query.regressions(monitor.store)


capability = Exceptions()
