"""The queries capability: SQL through SQLAlchemy, per statement and per endpoint, fleet-wide.

``collect`` holds the engine listeners (the host opts in with
``monitor.instrument_sqlalchemy(engine_or_db)``) and ``normalize`` the statement texts;
``tally`` is the per-window storage this capability shares with ``outgoing``; ``ship`` and
``query`` are its write and read sides; ``api``, ``panel`` and ``spec`` its surfaces. The
metrics table's "SQL ms per request" and "queries per request" come from ``endpoint_columns``.
"""
from ...core.capability import Capability
from ...core.config import Setting, number
from . import api, collect, query, spec
from .panel import QueriesPanel
from .ship import shipper


class Queries(Capability):
    name = "queries"
    settings = (
        Setting("MONITOR_NPLUSONE_THRESHOLD", 10, number(1, 100000, int), "a whole number, 1 to 100000",
                "A request that runs one statement more than this many times counts as an N+1 of its "
                "endpoint."),
        Setting("MONITOR_QUERIES_MAX_STATEMENTS", 200, number(10, 10000, int), "a whole number, 10 to 10000",
                "Distinct statements each worker records; statements past the cap count under `<overflow>`."),
    )
    panels = (QueriesPanel,)

    def init_app(self, app, monitor):
        monitor.sql = collect.SqlCollector(app.config["MONITOR_QUERIES_MAX_STATEMENTS"],
                                           app.config["MONITOR_NPLUSONE_THRESHOLD"])
        collect.default = monitor.sql
        monitor.flusher.add_shipper(shipper(monitor, monitor.sql))

    def register_api(self, bp):
        api.register(bp)

    def spec(self, config):
        return spec.paths(config), spec.SCHEMAS

    def prometheus(self, store, window_s):
        return query.metric_families(store)

    def endpoint_columns(self, store, window_s, host=None, pid=None):
        return query.endpoint_columns(store, window_s, host, pid)


capability = Queries()
