"""The Flask extension: ``Monitor(app)`` or ``Monitor().init_app(app)``."""
import os

from flask import Blueprint
from flask.cli import AppGroup

from .api import health, make_blueprint, openapi
from .auth import init_app as init_auth
from .auth.cli import COMMANDS as USER_COMMANDS
from .core import cache as app_cache
from .core import capability
from .core import config as settings
from .core.secrets import secret_key
from .core.state import MonitorState
from .core.store import Store
from .dashboard import bp as dashboard_bp
from .dev.traffic import traffic
from .web import hooks, security

#: ``flask monitor ...``: the monitor's commands.
group = AppGroup("monitor", help="Manage the monitor's users and tokens, and drive demo traffic.")
for command in (*USER_COMMANDS, traffic):
    group.add_command(command)


class Monitor:
    """Embed the monitoring console in a Flask app."""

    def __init__(self, app=None):
        #: The Flask-Caching cache the host app uses (its hits and misses are counted).
        self.cache = app_cache.AppCache()
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        """Validate config, connect the shared store, register hooks, blueprints, CLI and capabilities."""
        settings.load(app.config)
        os.makedirs(app.config["MONITOR_INSTANCE_PATH"], mode=0o700, exist_ok=True)
        if not app.config.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY") or secret_key(
                app.config["MONITOR_INSTANCE_PATH"])
        capabilities = capability.load(app.config["MONITOR_CAPABILITIES"])
        monitor = MonitorState(app.config, Store.from_config(app.config), self.cache, capabilities)
        app.extensions["monitor"] = monitor
        app_cache.init_app(app, self.cache, monitor.store)

        security.init_app(app)
        init_auth(app)
        app.register_blueprint(Blueprint(
            "monitor_static", __name__, static_folder="static/monitor", static_url_path="/static/monitor",
            template_folder="templates"))
        app.register_blueprint(health.bp)
        app.register_blueprint(dashboard_bp)
        app.register_blueprint(make_blueprint(capabilities))
        app.register_blueprint(openapi.bp)
        app.cli.add_command(group)
        for found in capabilities:
            found.init_app(app, monitor)
            for blueprint in found.blueprints():
                app.register_blueprint(blueprint)
            for panel in found.panels:
                monitor.panels[panel.name] = panel()
            monitor.features[found.name] = True
        hooks.init_app(app, monitor)
        return monitor

    def instrument_sqlalchemy(self, engine_or_db):
        """Time every statement of a SQLAlchemy engine, or of every engine of a Flask-SQLAlchemy db.

        Needs the queries capability; see docs/queries.md. Returns the engines instrumented.
        """
        from .capabilities.queries.collect import instrument

        return instrument(engine_or_db)
