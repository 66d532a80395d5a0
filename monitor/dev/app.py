"""``create_app()``: the small host app of ``wsgi.py``: demo routes plus the monitor."""
import os

from flask import Flask, jsonify, url_for
from flask.cli import FlaskGroup

from ..cli import group
from ..core.state import state
from ..extension import Monitor


def create_app(test_config=None):
    """Build the host app; ``test_config`` overrides settings (tests)."""
    # The contract's instance folder is ./instance, wherever this package is installed.
    app = Flask("monitor_host", instance_path=os.path.abspath("instance"))
    app.config.from_mapping(test_config or {})
    Monitor(app)
    if not app.secret_key:
        app.secret_key = state(app).secret_key
    if app.config["MONITOR_DEMO"]:
        from . import demo

        demo.init_app(app)

    @app.get("/")
    def index():
        return jsonify(app="monitor demo host", dashboard=url_for("monitor_dashboard.index"),
                       health=url_for("monitor_health.health"))

    return app


#: The ``monitor`` console command: the monitor's commands against the standalone app
#: (``--app`` names another), plus Flask's ``run``, ``routes`` and ``shell``.
cli = FlaskGroup(name="monitor", create_app=create_app,
                 help="The monitor's commands for the standalone app (--app to name another app).")
for command in group.commands.values():
    cli.add_command(command)
