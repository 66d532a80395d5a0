"""The per-account budget of password guesses, one bucket for ``/login`` and the account page.

``/login`` spends from it through Flask-Limiter's shared limit (``auth/__init__.py``), keyed on
the account name however the body sent it; the account page's current-password check spends
from the same bucket through :func:`check_password`, so a stolen session adds no guesses to
those of the login form. Only wrong passwords count.
"""
from flask import current_app
from limits import parse_many

from ..core.errors import Refused
from ..core.state import state
from .users import Users

#: The limiter's key prefix (set, so a host's RATELIMIT_KEY_PREFIX cannot split the bucket) and
#: the shared limit's scope: together the bucket's name in the limiter's store.
KEY_PREFIX = "monitor"
SCOPE = "password"
TOO_MANY = "Too many failed logins; wait a minute and try again."


def account_key(name):
    """Return the rate-limit key of guesses at account ``name``."""
    return "account:" + (name or "").strip().lower()[:64]


def check_password(name, password):
    """Return ``name``'s record when ``password`` is theirs, else None (a guess spent); 429 past the budget."""
    monitor = state()
    limiter = monitor.limiter.limiter  # the limits strategy (in memory while Redis is down)
    items = parse_many(current_app.config["MONITOR_LOGIN_LIMIT_ACCOUNT"])
    key = (KEY_PREFIX, account_key(name), SCOPE)
    if not all(limiter.test(item, *key) for item in items):
        raise Refused(TOO_MANY, 429)
    record = Users(monitor.store).authenticate(name, password)
    if record is None:
        for item in items:
            limiter.hit(item, *key)
    return record
