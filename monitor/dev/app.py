"""``create_app()``: the small host app of ``wsgi.py``: demo routes plus the monitor."""
import os

import click
from flask import Flask, jsonify, url_for
from flask.cli import FlaskGroup, ScriptInfo

from ..cli import group, require_monitor
from ..extension import Monitor


def create_app(test_config=None):
    """Build the host app; ``test_config`` overrides settings (tests)."""
    # The contract's instance folder is ./instance, wherever this package is installed.
    app = Flask("monitor_host", instance_path=os.path.abspath("instance"))
    app.config.from_mapping(test_config or {})
    # No Flask secret key: this host keeps nothing in Flask's session, and with a key Flask would
    # open its signed-cookie session on every request (about 30 µs under gunicorn). The monitor
    # signs its own cookie and CSRF tokens with SECRET_KEY, else the instance folder's key.
    Monitor(app)
    if app.config["MONITOR_DEMO"]:
        from . import demo

        demo.init_app(app)

    @app.get("/")
    def index():
        return jsonify(app="monitor demo host", dashboard=url_for("monitor_dashboard.index"),
                       health=url_for("monitor_health.health"))

    return app


class _Standalone(ScriptInfo):
    """The standalone app, unless ``--app`` (or FLASK_APP) names another."""

    def load_app(self):
        if self.app_import_path:
            self.create_app = None
        return super().load_app()


class _Group(FlaskGroup):
    def make_context(self, info_name, args, parent=None, **extra):
        extra.setdefault("obj", _Standalone(create_app=create_app, load_dotenv_defaults=self.load_dotenv))
        return super().make_context(info_name, args, parent=parent, **extra)


@click.group("monitor", cls=_Group, help="The monitor's commands for the standalone app (--app to name another app).")
@click.pass_context
def cli(ctx):
    """The ``monitor`` console command: the monitor's commands against the standalone app
    (``--app`` names another), plus Flask's ``run``, ``routes`` and ``shell``."""
    if ctx.invoked_subcommand in group.commands:
        require_monitor(ctx)


for command in group.commands.values():
    cli.add_command(command)
