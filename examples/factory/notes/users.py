"""The app's own users (Flask-Login), kept in a JSON file; ``flask --app notes add-user`` adds one."""
import json
import os

import click
from flask import current_app
from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import login_manager


class User(UserMixin):
    def __init__(self, email, record):
        self.id = self.email = email
        self.password_hash = record["password"]
        self.is_admin = record.get("admin", False)


def _records():
    try:
        with open(current_app.config["USERS_FILE"]) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def find(email):
    record = _records().get(email)
    return User(email, record) if record else None


def authenticate(email, password):
    user = find(email)
    return user if user and check_password_hash(user.password_hash, password) else None


@login_manager.user_loader
def load_user(user_id):
    return find(user_id)


@click.command("add-user")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Make the user an admin (also of the monitor).")
@click.password_option()
def add_user(email, admin, password):
    """Add a user of the app."""
    records = _records()
    records[email] = {"password": generate_password_hash(password), "admin": admin}
    path = current_app.config["USERS_FILE"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(records, handle)
    click.echo(f"added {email}{' (admin)' if admin else ''}")
