"""``/login``, ``/logout`` and the one-time ``/setup`` of the first admin."""
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user

from ..core import audit
from ..core.errors import Refused
from ..core.state import state
from ..web import body
from ..web.responses import register_handlers
from . import limits
from .forms import LoginForm, SetupForm, filled
from .guard import check_csrf
from .session import log_in, log_out, users
from .users import MIN_PASSWORD, User

bp = Blueprint("monitor_auth", __name__)
register_handlers(bp)

TOO_MANY = limits.TOO_MANY


def account_key():
    """Rate-limit key of a login attempt: the account name it tries, from a form or a JSON body alike."""
    return limits.account_key(body.peek("username"))


def login_failed(response):
    """Count an attempt against the limits only when it failed."""
    return response.status_code == 401


def _local_target(target):
    """Return ``target`` if it is a path on this site, else the dashboard."""
    target = target or ""
    parts = urlsplit(target)
    # Browsers drop tabs and newlines and read a backslash as "/": "/\t/evil.com" leaves the site.
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc \
            or "\\" in target or not target.isprintable():
        return url_for("monitor_dashboard.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; on success start a fresh server-side session."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_local_target(request.args.get("next")))
    form = filled(LoginForm)
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("monitor/login.html", form=form), status
    store = state().store
    name = form.username.data.strip()
    record = users().authenticate(name, form.password.data)
    if record is None:
        audit.stranger(store, "login", "failed", account=name)
        flash("Wrong name or password.", "error")
        return render_template("monitor/login.html", form=form), 401
    if current_user.is_authenticated and current_user.session_id:
        users().end_session(current_user.session_id)
    session.clear()  # a fresh session: nothing of the anonymous one (CSRF token included) survives
    log_in(User(record["name"], record["role"], session_id=users().start_session(record["name"])))
    audit.record(store, "login", "ok", user=record["name"])
    return redirect(_local_target(request.args.get("next")))


@bp.post("/logout")
def logout():
    """End this session on the server, so the cookie is dead even if replayed."""
    body.fields()  # logout takes no field but the CSRF token
    if current_user.is_authenticated:
        refused = check_csrf()
        if refused is not None:
            return refused
        name = current_user.name
        users().end_session(current_user.session_id)
        log_out()
        audit.record(state().store, "logout", "ok", user=name)
    session.clear()
    return redirect(url_for("monitor_auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """Create the first admin with the one-time link that the server logged, and log them in."""
    token = request.args.get("token", "")
    records = users()
    if records.count() or not records.setup_token_valid(token):
        return render_template("monitor/setup.html", form=None), 404 if not records.count() else 410
    form = filled(SetupForm)
    if not form.validate_on_submit():
        return render_template("monitor/setup.html", form=form, min_password=MIN_PASSWORD), \
            400 if request.method == "POST" else 200
    name = form.username.data
    try:
        records.complete_setup(token, name, form.password.data)
    except Refused as exc:
        flash(str(exc), "error")
        return render_template("monitor/setup.html", form=None), 410
    audit.record(state().store, "setup", "ok", user=name)
    session.clear()
    log_in(User(name, "admin", session_id=records.start_session(name)))
    flash(f"Welcome, {name}: you are the first admin. Add users from the Users page.", "ok")
    return redirect(url_for("monitor_dashboard.index"))


@bp.errorhandler(429)
def too_many(exc):
    audit.stranger(state().store, "login", "rate_limited", account=body.peek("username"))
    flash(TOO_MANY, "error")
    return render_template("monitor/login.html", form=LoginForm(formdata=None)), 429

