"""The Flask extension: ``Monitor(app)`` or ``Monitor().init_app(app)``."""
import os

from flask import Blueprint, current_app

from . import config as settings
from .cache import AppCache
from .commands import Commands, worker_target
from .flusher import Flusher
from .process import ProcessInfo
from .secrets_file import secret_key
from .store import Store

class Counters:
    """This worker's live request counters, kept by the request hooks, read by heartbeats."""

    __slots__ = ("requests", "in_flight")

    def __init__(self):
        self.requests = 0
        self.in_flight = 0


class MonitorState:
    """Everything the monitor keeps for one app, in ``app.extensions["monitor"]``."""

    def __init__(self, app, store):
        self.config = app.config
        self.store = store
        self.process = ProcessInfo(app.config["MONITOR_HOST_NAME"])
        self.flusher = Flusher(store, app.config["MONITOR_FLUSH_INTERVAL"])
        self.commands = Commands(store)
        self.features = {}
        self.counters = Counters()
        self.flusher.add_task(self._run_commands)
        os.register_at_fork(after_in_child=self._forked)
        self.started = False

    def _forked(self):
        self.started = False
        self.counters = Counters()

    def _run_commands(self, now):
        self.commands.run_pending(worker_target(self.process.host, self.process.pid))

    def start_worker(self):
        """Start this process's background work (after a fork, once)."""
        if self.started:
            return
        self.started = True
        self.process.refresh()
        self.flusher.start()


def state(app=None):
    """Return the monitor state of ``app`` (default: the current app)."""
    return (app or current_app).extensions["monitor"]


class Monitor:
    """Embed the monitoring console in a Flask app."""

    def __init__(self, app=None):
        self.cache = AppCache()
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        """Validate config, connect the shared store, register hooks, blueprints and CLI."""
        settings.load(app.config)
        os.makedirs(app.config["MONITOR_INSTANCE_PATH"], mode=0o700, exist_ok=True)
        if not app.config.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY") or secret_key(
                app.config["MONITOR_INSTANCE_PATH"])
        store = Store.from_config(app.config)
        app.extensions["monitor"] = monitor_state = MonitorState(app, store)
        monitor_state.cache = self.cache

        from . import cli, health, security
        from .api import bp as api_bp
        from .api.openapi import bp as openapi_bp
        from .auth import init_app as init_auth
        from .dashboard import bp as dashboard_bp

        security.init_app(app)
        init_auth(app)
        app.register_blueprint(Blueprint(
            "monitor_static", __name__, static_folder="static/monitor", static_url_path="/static/monitor",
            template_folder="templates"))
        app.register_blueprint(health.bp)
        app.register_blueprint(dashboard_bp)
        app.register_blueprint(api_bp)
        app.register_blueprint(openapi_bp)
        app.cli.add_command(cli.group)
        for capability in _capabilities():
            capability.init_app(app, monitor_state)
        return monitor_state


def _capabilities():
    """The capability modules, each with ``init_app(app, state)``."""
    from . import alerts, cache, cluster, instrumentation, logs, profiling

    return (instrumentation, cache, cluster, logs, alerts, profiling)
