"""``flask --app wsgi monitor ...``: users and tokens, against the same store as the server."""
import sys

import click
import redis
from flask.cli import AppGroup

from . import audit
from .auth.users import ROLES, UserError, Users
from .extension import state

group = AppGroup("monitor", help="Manage the monitor's users and tokens, and drive demo traffic.")


def _users():
    return Users(state().store)


def _run(action, fn, *args, **detail):
    """Run a user operation and audit it (unless ``action`` is None); errors become one line."""
    try:
        result = fn(*args)
    except UserError as exc:
        audit.record(state().store, action, "refused", user="cli", **detail)
        raise click.ClickException(str(exc)) from None
    except redis.RedisError as exc:
        raise click.ClickException(f"cannot reach Redis ({exc}); check REDIS_URL or start the server") from None
    if action:
        audit.record(state().store, action, "ok", user="cli", **detail)
    return result


@group.command("create-user")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user(name, role, password_stdin):
    """Create a user with a role."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    _run("user.create", _users().create, name, role, password, name=name, role=role)
    click.echo(f"created {name} ({role})")


@group.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
def set_role(name, role):
    """Change a user's role (their sessions end)."""
    _run("user.set_role", _users().set_role, name, role, name=name, role=role)
    click.echo(f"{name} is now {role}")


@group.command("delete-user")
@click.argument("name")
def delete_user(name):
    """Delete a user, their sessions and their tokens."""
    _run("user.delete", _users().delete, name, name=name)
    click.echo(f"deleted {name}")


@group.command("list-users")
def list_users():
    """List users and roles."""
    for user in _run(None, _users().list):
        click.echo(f"{user['name']}\t{user['role']}")


@group.command("create-token")
@click.argument("name")
@click.option("--label", default="cli", help="A note to recognise the token by.")
def create_token(name, label):
    """Print a new API token for a user (shown once)."""
    token = _run("token.create", _users().create_token, name, label, name=name)
    click.echo(token)


@group.command("traffic", with_appcontext=False)
@click.option("--url", required=True, help="Base URL of the running app, e.g. http://127.0.0.1:8000")
@click.option("--seconds", type=click.IntRange(1, 3600), default=60, show_default=True)
@click.option("--rate", type=click.FloatRange(0.5, 500), default=20.0, show_default=True,
              help="Requests per second (all routes together).")
def traffic(url, seconds, rate):
    """Drive a mix of demo routes (fast, slow, errors, cached, logs) for a while."""
    from . import traffic as driver

    stats, latencies, elapsed = driver.run(url, seconds, rate)
    total = sum(stats.values())
    click.echo(f"{total} requests in {elapsed:.1f} s ({total / max(elapsed, 1e-9):.1f}/s)")
    for (route, code), count in sorted(stats.items(), key=lambda item: str(item[0])):
        click.echo(f"  {route:<22} {code!s:>6} {count:>7}")
    if latencies:
        ordered = sorted(latencies)
        click.echo(f"latency ms: p50 {ordered[len(ordered) // 2] * 1000:.1f}, "
                   f"p95 {ordered[int(len(ordered) * 0.95)] * 1000:.1f}, max {ordered[-1] * 1000:.1f}")
