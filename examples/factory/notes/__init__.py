"""A small app with blueprints, its own Flask-Login users, /login and /health, and the monitor.

Run it (from examples/factory; gunicorn reads ./gunicorn.conf.py, which wires the monitor's hooks)::

    export FLASK_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex())')
    flask --app notes add-user ada@example.com --admin
    gunicorn 'notes:create_app()'

Log in at /login as the admin: the monitor's dashboard is at /_monitor/admin/, no second login.
"""
import os

from flask import Flask

from . import auth, pages, users
from .extensions import csrf, login_manager, monitor


def create_app(test_config=None, monitor_first=False):
    """Build the app; ``monitor_first`` registers the monitor before the app's own extensions
    (either order works; the monitor's tests run both)."""
    app = Flask(__name__)
    app.config.from_mapping(
        # The app has its own /login and /health: the monitor's routes go under a prefix.
        MONITOR_URL_PREFIX="/_monitor",
        USERS_FILE=os.path.join(app.instance_path, "users.json"),
    )
    app.config.from_prefixed_env()  # FLASK_SECRET_KEY, FLASK_USERS_FILE, ...
    app.config.update(test_config or {})
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("set FLASK_SECRET_KEY (see notes/__init__.py)")
    if monitor_first:
        monitor.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.cli.add_command(users.add_user)
    if not monitor_first:
        monitor.init_app(app)
    return app
