"""``flask monitor ...``: users and tokens, demo traffic, and ``check`` (is the monitor wired right?)."""
import os
import shlex

import click
import redis
from flask import current_app
from flask.cli import AppGroup, ScriptInfo, with_appcontext

from .auth.cli import COMMANDS as USER_COMMANDS
from .auth.users import Users
from .core import server
from .core.state import state
from .core.store import safe_url
from .dev.traffic import traffic

#: What ``check`` assumes gunicorn loads when no config file is found: the README's way.
DEFAULT_GUNICORN_CONFIG = "python:monitor.gunicorn_conf"


@click.group("monitor", cls=AppGroup,
             help="Manage the monitor's users and tokens, check its wiring, drive demo traffic.")
@click.pass_context
def group(ctx):
    """``flask monitor ...``: the monitor's commands (also the ``flask.commands`` entry point)."""
    require_monitor(ctx)


def require_monitor(ctx):
    """Refuse, in one line, an app that has no ``Monitor(app)``."""
    app = ctx.ensure_object(ScriptInfo).load_app()
    if "monitor" not in app.extensions:
        raise click.ClickException(f"the app {app.name!r} does not use the monitor (no Monitor(app))")


def gunicorn_config_location(environ=os.environ, cwd="."):
    """Return the config gunicorn would load: ``-c`` in GUNICORN_CMD_ARGS, else ./gunicorn.conf.py, else None."""
    args = shlex.split(environ.get("GUNICORN_CMD_ARGS", ""))
    for i, arg in enumerate(args):
        if arg in ("-c", "--config") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.partition("=")[2]
    path = os.path.join(cwd, "gunicorn.conf.py")
    return path if os.path.exists(path) else None


def checks(app, location):
    """Yield ``(status, line)`` for each check: status is "ok", "warn" or "FAIL"."""
    monitor = state(app)
    config = app.config
    yield "ok", (f"settings: valid; routes under {config['MONITOR_URL_PREFIX'] or '/'}, instance folder "
                 f"{config['MONITOR_INSTANCE_PATH']}, capabilities {', '.join(monitor.capabilities)}")
    try:
        # The master finds its instance folder from the module gunicorn loads; here, the app's.
        master = server.master_settings(f"{app.import_name}:app")
    except ValueError as exc:
        yield "FAIL", f"settings: the environment gunicorn's master reads is refused: {exc}"
    else:
        for line in server.disagreements(monitor, master):
            yield "FAIL", f"settings: {line.removeprefix('monitor: ')}"
    try:
        monitor.store.redis.ping()
        users = Users(monitor.store).count()
    except redis.RedisError as exc:
        yield "FAIL", f"redis: no answer at {safe_url(monitor.store.url)}: {exc}"
    else:
        where = "embedded, in the instance folder" if not config["MONITOR_REDIS_URL"] else "REDIS_URL"
        yield "ok", f"redis: answers at {safe_url(monitor.store.url)} ({where}); {users} monitor user(s)"
        if not users and monitor.extension.role_loader_callback is None:
            yield "warn", ("users: none yet and no role_loader; create one with "
                           "`flask monitor create-user NAME --role admin`, or open the setup link the server logs")
    yield from _gunicorn_checks(location)
    collisions = monitor.urls.collisions(app)
    for line in collisions:
        yield "FAIL", f"routes: {line.removeprefix('monitor: ')}"
    if not collisions:
        yield "ok", f"routes: no collision between the monitor's routes and the app's {len(list(app.url_map.iter_rules()))} rules"


def _gunicorn_checks(location):
    shown = location
    if location is None:
        location, shown = DEFAULT_GUNICORN_CONFIG, f"{DEFAULT_GUNICORN_CONFIG} (no gunicorn.conf.py here)"
    try:
        settings = server.load_config(location)
    except (ImportError, OSError, SyntaxError) as exc:
        yield "FAIL", f"gunicorn: cannot read the config {shown}: {exc}"
        return
    problems = server.missing_hooks(settings)
    for name, found in problems:
        if found == "missing":
            yield "FAIL", (f"gunicorn: the config {shown} sets no {name}, so the monitor's server hooks do not run "
                           f"(no embedded Redis owner, cluster agent or setup link); add "
                           f"`from monitor.gunicorn_conf import *` to it, or start gunicorn with -c {DEFAULT_GUNICORN_CONFIG}")
        else:
            yield "warn", (f"gunicorn: the config {shown} sets its own {name}; make sure it calls "
                           f"monitor.core.server.{name}")
    if not problems:
        yield "ok", f"gunicorn: the config {shown} runs the monitor's server hooks"


@group.command("check")
@click.option("--gunicorn-config", "location", metavar="CONFIG",
              help="The gunicorn config to check, as for gunicorn -c (default: -c of GUNICORN_CMD_ARGS, "
                   f"else ./gunicorn.conf.py, else {DEFAULT_GUNICORN_CONFIG}).")
@with_appcontext
def check(location):
    """Check settings, Redis, the gunicorn wiring and route collisions; exit 1 on a problem."""
    failed = 0
    for status, line in checks(current_app, location or gunicorn_config_location()):
        failed += status == "FAIL"
        click.echo(f"{status:<5} {line}")
    if failed:
        click.echo(f"{failed} problem(s)", err=True)
        raise SystemExit(1)


for command in (*USER_COMMANDS, traffic):
    group.add_command(command)
