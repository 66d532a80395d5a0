"""``flask --app wsgi monitor ...``: users and tokens, against the same store as the server."""
import sys

import click
import redis
from flask.cli import with_appcontext

from ..core import audit
from ..core.errors import Refused
from ..core.state import state
from .users import ROLES, Users


def _users():
    return Users(state().store)


def _run(action, fn, *args, **detail):
    """Run a user operation and audit it (unless ``action`` is None); errors become one line."""
    try:
        result = fn(*args)
    except Refused as exc:
        audit.record(state().store, action, "refused", user="cli", **detail)
        raise click.ClickException(exc.detail) from None
    except redis.RedisError as exc:
        raise click.ClickException(f"cannot reach Redis ({exc}); check REDIS_URL or start the server") from None
    if action:
        audit.record(state().store, action, "ok", user="cli", **detail)
    return result


@click.command("create-user")
@with_appcontext
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


@click.command("set-role")
@with_appcontext
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
def set_role(name, role):
    """Change a user's role (their sessions end)."""
    _run("user.set_role", _users().set_role, name, role, name=name, role=role)
    click.echo(f"{name} is now {role}")


@click.command("delete-user")
@with_appcontext
@click.argument("name")
def delete_user(name):
    """Delete a user, their sessions and their tokens."""
    _run("user.delete", _users().delete, name, name=name)
    click.echo(f"deleted {name}")


@click.command("list-users")
@with_appcontext
def list_users():
    """List users and roles."""
    for user in _run(None, _users().list):
        click.echo(f"{user['name']}\t{user['role']}")


@click.command("create-token")
@with_appcontext
@click.argument("name")
@click.option("--label", default="cli", help="A note to recognise the token by.")
def create_token(name, label):
    """Print a new API token for a user (shown once)."""
    token = _run("token.create", _users().create_token, name, label, name=name)
    click.echo(token)


#: The user and token commands of the ``monitor`` CLI group.
COMMANDS = (create_user, set_role, delete_user, list_users, create_token)
