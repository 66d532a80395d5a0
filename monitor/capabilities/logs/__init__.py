"""The logs capability: every process's log lines in one shared, searchable stream.

``handler`` is the logging handler and its shipper (in workers and in the gunicorn
master), ``query`` the read side; ``api``, ``panel`` and ``spec`` are its surfaces.
"""
from ...core.capability import Capability
from ...core.config import Setting, choice, number
from . import api, query, spec
from .handler import LEVELS, install, install_master
from .panel import LogsPanel


class Logs(Capability):
    name = "logs"
    settings = (
        Setting("MONITOR_LOG_LEVEL", "INFO", choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
                "DEBUG, INFO, WARNING, ERROR or CRITICAL",
                "Lowest level of the log records shipped to the shared log stream (the loggers' own "
                "levels still apply: gunicorn.conf.py sets the root to INFO)."),
        Setting("MONITOR_LOG_MAXLEN", 100_000, number(1000, 10_000_000, int), "a whole number, 1000 to 10000000",
                "Cap of the shared log stream (approximate: Redis trims whole nodes, so up to ~100 more)."),
        Setting("MONITOR_LOG_BUFFER", 10_000, number(100, 1_000_000, int), "a whole number, 100 to 1000000",
                "Records each process holds between flushes; past it new records are dropped and counted."),
    )
    panels = (LogsPanel,)

    def init_app(self, app, monitor):
        """Install the handler and its shipper."""
        config = app.config
        monitor.log_handler = install(config["MONITOR_HOST_NAME"], config["MONITOR_LOG_BUFFER"],
                                      config["MONITOR_LOG_MAXLEN"], LEVELS[config["MONITOR_LOG_LEVEL"]])
        monitor.flusher.add_shipper(monitor.log_handler.ship(monitor.store))

    def register_api(self, bp):
        api.register(bp)

    def spec(self, config):
        return spec.paths(config), spec.SCHEMAS

    def master_started(self, server, settings, store):
        return install_master(store, settings, settings["MONITOR_HOST_NAME"])

    def lines(self, monitor, since, until):
        """Return the records logged between ``since`` and ``until``: ``{"lines", "since"}`` (see ``query.lines``)."""
        return query.lines(monitor.store, since, until)

    def count(self, found, level="DEBUG", q="", host=None):
        """Return how many of the records ``found`` match a level (and up), a text and a host."""
        return query.count(found, level, q, host)


capability = Logs()
