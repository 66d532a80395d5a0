"""``flask --app wsgi monitor ...``: users and tokens, against the same store as the server."""
import sys

import click
from flask.cli import AppGroup

from . import audit
from .auth.users import ROLES, UserError, Users
from .extension import state

group = AppGroup("monitor", help="Manage the monitor's users and tokens, and drive demo traffic.")


def _users():
    return Users(state().store)


def _run(action, fn, *args, **detail):
    try:
        result = fn(*args)
    except UserError as exc:
        audit.record(state().store, action, "refused", user="cli", **detail)
        raise click.ClickException(str(exc)) from None
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
    for user in _users().list():
        click.echo(f"{user['name']}\t{user['role']}")


@group.command("create-token")
@click.argument("name")
@click.option("--label", default="cli", help="A note to recognise the token by.")
def create_token(name, label):
    """Print a new API token for a user (shown once)."""
    token = _run("token.create", _users().create_token, name, label, name=name)
    click.echo(token)
