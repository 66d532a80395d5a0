"""Admin pages: users and their tokens, the audit log, and every user's own password.

Plain HTML forms (each with its CSRF field) that post, then redirect back with a message;
a new API token is the exception: the answer shows it once and it is never stored in clear.
"""
from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user

from ..auth import limits
from ..auth.decorators import role_required
from ..auth.forms import PasswordForm, UserForm, filled
from ..auth.session import log_in, users
from ..auth.users import ROLES, User
from ..core import audit
from ..core.errors import Refused
from ..core.state import state
from ..web import body
from ..web.responses import error_response
from .routes import bp, nav_links

#: Audit entries per page of /admin/audit.
AUDIT_PAGE = 100


def _page(form=None, new_token=None, status=200):
    records = users()
    listed = [{**user, "tokens": records.tokens(user["name"])} for user in records.list()]
    return render_template("monitor/users.html", users=listed, roles=ROLES, form=form or UserForm(),
                           new_token=new_token, links=nav_links(current_user)), status


def _refused(action, exc, **detail):
    audit.record(state().store, action, "refused", reason=str(exc), **detail)
    flash(str(exc), "error")
    return _page(status=400)


def _apply(action, change, message, **detail):
    """Run ``change()``, audit it, and redirect back with ``message`` (or show the refusal)."""
    try:
        change()
    except Refused as exc:
        return _refused(action, exc, **detail)
    audit.record(state().store, action, "ok", **detail)
    flash(message, "ok")
    return redirect(url_for("monitor_dashboard.users_page"), 303)


@bp.get("/users")
@role_required("admin")
def users_page():
    """List users with their roles and tokens."""
    return _page()


@bp.post("/users")
@role_required("admin")
def create_user():
    """Create a user from the form."""
    form = filled(UserForm)
    if not form.validate_on_submit():
        return _page(form=form, status=400)
    name, role = form.username.data, form.role.data
    return _apply("user.create", lambda: users().create(name, role, form.password.data),
                  f"Created {name} ({role}).", name=name, role=role)


@bp.post("/users/<name>/role")
@role_required("admin")
def set_role(name):
    """Change a user's role; their sessions end."""
    role = body.fields(role=body.text()).get("role", "")
    return _apply("user.set_role", lambda: users().set_role(name, role),
                  f"{name} is now {role}; their sessions ended.", name=name, role=role)


@bp.post("/users/<name>/delete")
@role_required("admin")
def delete_user(name):
    """Delete a user with their tokens; their sessions end."""
    body.fields()
    return _apply("user.delete", lambda: users().delete(name), f"Deleted {name}.", name=name)


@bp.post("/users/<name>/tokens")
@role_required("admin")
def create_token(name):
    """Create an API token and show it this once."""
    label = body.fields(label=body.text(64)).get("label", "").strip()
    try:
        token = users().create_token(name, label)
    except Refused as exc:
        return _refused("token.create", exc, name=name)
    audit.record(state().store, "token.create", "ok", name=name, token=token.split("_")[1], label=label)
    return _page(new_token={"user": name, "token": token, "label": label})


@bp.post("/tokens/<token_id>/revoke")
@role_required("admin")
def revoke_token(token_id):
    """Revoke an API token."""
    body.fields()
    owner = users().revoke_token(token_id)
    if owner is None:
        audit.record(state().store, "token.revoke", "refused", token=token_id[:16])
        return error_response(404, "not_found", "no such token (revoked already?)")
    audit.record(state().store, "token.revoke", "ok", name=owner, token=token_id)
    flash(f"Revoked token {token_id} of {owner}.", "ok")
    return redirect(url_for("monitor_dashboard.users_page"), 303)


@bp.get("/audit")
@role_required("admin")
def audit_page():
    """The audit log, newest first, a page at a time."""
    before = request.args.get("before") or None
    try:
        entries = audit.entries(state().store, AUDIT_PAGE, before)
    except ValueError as exc:
        return error_response(400, "bad_request", str(exc))
    older = entries[-1]["id"] if len(entries) == AUDIT_PAGE else None
    return render_template("monitor/audit.html", entries=entries, older=older, cap=audit.AUDIT_CAP,
                           strangers=audit.strangers(state().store), stranger_hours=audit.STRANGER_TTL_S // 3600,
                           links=nav_links(current_user))


@bp.route("/account", methods=["GET", "POST"])
@role_required("viewer")
def account():
    """Change one's own password; every other session of this user ends."""
    if not (current_user.session_id or current_user.token_id):
        return error_response(403, "forbidden", "this account's password is kept by the host app, not here")
    form = filled(PasswordForm)
    if not form.validate_on_submit():
        return render_template("monitor/account.html", form=form, links=nav_links(current_user)), \
            400 if request.method == "POST" else 200
    records, name, role = users(), current_user.name, current_user.role
    try:
        record = limits.check_password(name, form.current.data)
    except Refused:
        audit.record(state().store, "user.password", "rate_limited", name=name)
        raise
    if record is None:
        audit.record(state().store, "user.password", "refused", name=name, reason="wrong current password")
        form.current.errors.append("That is not your current password.")
        return render_template("monitor/account.html", form=form, links=nav_links(current_user)), 400
    records.set_password(name, form.password.data)
    if current_user.session_id:  # the new stamp ended every session; this one goes on as a fresh one
        records.end_session(current_user.session_id)
        session.clear()
        log_in(User(name, role, session_id=records.start_session(name)))
    audit.record(state().store, "user.password", "ok", name=name)
    flash("Password changed; your other sessions were ended.", "ok")
    return redirect(url_for("monitor_dashboard.account"), 303)
