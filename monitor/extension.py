"""The Flask extension: ``Monitor(app)`` or ``Monitor().init_app(app)``."""
import os

from flask import Blueprint

from .api import health, make_blueprint, openapi
from .auth import init_app as init_auth
from .auth import session
from .cli import group
from .core import cache as app_cache
from .core import capability, embedded
from .core import config as settings
from .core.process import MASTER_ENV, release
from .core.secrets import secret_key
from .core.state import MonitorState
from .core.store import Store
from .dashboard import bp as dashboard_bp
from .web import hooks, security
from .web.urls import Urls

#: The monitor's blueprints that need no login (no session, no user): health and static files.
PUBLIC = ("monitor_health", "monitor_static")


class Monitor:
    """Embed the monitoring console in a Flask app."""

    def __init__(self, app=None):
        #: The Flask-Caching cache the host app uses (its hits and misses are counted).
        self.cache = app_cache.AppCache()
        self.role_loader_callback = None
        self.request_user_callback = None
        self.fingerprint_callback = None
        if app is not None:
            self.init_app(app)

    def role_loader(self, callback):
        """Let the host app's own users in: ``callback()`` returns ``(name, role)`` or None.

        It is called, with no arguments, inside a request to a monitor route that carries
        no monitor login or token; the user it names gets ``role`` (viewer, operator or
        admin) and is audited as ``host:<name>``.
        """
        self.role_loader_callback = callback
        return callback

    def request_user(self, callback):
        """Name who made a request: ``callback()``, called inside a host-app request, returns a name or None.

        It is called only for what the monitor keeps one by one (a slow request, a sampled
        exception), which then shows the name.
        """
        self.request_user_callback = callback
        return callback

    def exception_fingerprint(self, callback):
        """Group exceptions your way: ``callback(exc)`` returns a string (the group's fingerprint) or None
        (the default one: the type and the app's frames)."""
        self.fingerprint_callback = callback
        return callback

    def init_app(self, app):
        """Validate config, connect the shared store, register hooks, blueprints, CLI and capabilities."""
        settings.load(app.config, instance_path=app.instance_path)
        app.config["MONITOR_RELEASE"] = release(app.config["MONITOR_RELEASE"], app.root_path)
        instance = app.config["MONITOR_INSTANCE_PATH"]
        os.makedirs(instance, mode=0o700, exist_ok=True)
        capabilities = capability.load(app.config["MONITOR_CAPABILITIES"])
        monitor = MonitorState(app.config, Store.from_config(app.config), self.cache, capabilities)
        monitor.extension = self
        monitor.urls = urls = Urls(app.config["MONITOR_URL_PREFIX"])
        monitor.secret_key = os.environ.get("SECRET_KEY") or secret_key(instance)
        app.extensions["monitor"] = monitor
        if not app.config["MONITOR_REDIS_URL"] and not os.environ.get(MASTER_ENV):
            monitor.flusher.add_task(_keep_embedded_redis(instance, monitor.flusher))
        app_cache.init_app(app, self.cache, monitor.store)

        init_auth(app)
        urls.register(app, Blueprint(
            "monitor_static", __name__, static_folder="static/monitor", static_url_path="/static/monitor",
            template_folder="templates"))
        for blueprint in (health.bp, dashboard_bp, make_blueprint(capabilities), openapi.bp):
            urls.register(app, blueprint)
        app.cli.add_command(group)
        for found in capabilities:
            found.init_app(app, monitor)
            for blueprint in found.blueprints():
                urls.register(app, blueprint)
            for panel in found.panels:
                monitor.panels[panel.name] = panel()
            monitor.features[found.name] = True
        for panel in monitor.panels.values():
            panel.bind(monitor)
        session.init_app(app, urls.blueprints, public=PUBLIC)
        security.init_app(app, urls.blueprints)  # after the session's: its guard runs first
        # The host's CSRFProtect may be set up before the monitor or after it: exempt the
        # monitor's blueprints now, and again once the app is complete.
        session.exempt_from_host_csrf(app)
        monitor.on_start.append(lambda: session.exempt_from_host_csrf(app))
        hooks.init_app(app, monitor)
        return monitor

    def instrument_sqlalchemy(self, engine_or_db):
        """Time every statement of a SQLAlchemy engine, or of every engine of a Flask-SQLAlchemy db.

        Needs the queries capability; see docs/queries.md. Returns the engines instrumented.
        """
        from .capabilities.queries.collect import instrument

        return instrument(engine_or_db)


def _keep_embedded_redis(instance, flusher):
    """Return a flusher task that starts the embedded Redis again when its owner has gone.

    Under gunicorn without the monitor's hooks no master owns it: the worker that started it
    does (the others found it running) and takes it along when it exits. The next worker whose
    flush did not land looks (a flush that landed proves the server alive, so a healthy tick
    opens no connection: probing every second cost a worker 1.1 ms of CPU a tick) and starts it
    again from its data, one per instance folder, as ``embedded.ensure`` locks.
    """
    def keep_embedded_redis(now):
        if flusher.unsent is not None and not embedded.is_running(instance):
            embedded.ensure(instance)
    return keep_embedded_redis
