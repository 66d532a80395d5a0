"""The gate of the monitor's routes: strangers and forgeries refused (who the user is: ``session.py``)."""
from flask import current_app, g, redirect, request, url_for
from flask_login import current_user
from wtforms.validators import ValidationError

from ..core import audit
from ..core.state import state
from ..web import body
from ..web.responses import error_response, wants_json
from .session import check_csrf_token

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def unauthorized():
    """Answer a stranger: JSON 401, HTMX 401 with HX-Redirect, or a redirect to the login page."""
    audit.stranger(state().store, "access", "unauthorized")
    if request.headers.get("HX-Request"):
        response = error_response(401, "unauthorized", "log in first")
        response = current_app.make_response(response)
        response.headers["HX-Redirect"] = url_for("monitor_auth.login")
        return response
    if wants_json():
        return error_response(401, "unauthorized", "log in or send Authorization: Bearer <token>",
                              {"WWW-Authenticate": 'Bearer realm="monitor"'})
    return redirect(url_for("monitor_auth.login", next=request.full_path.rstrip("?")))


def require_login():
    """``before_request`` of the dashboard and API: nothing there is open to strangers."""
    if not current_user.is_authenticated:
        return unauthorized()
    return check_csrf()


def check_csrf():
    """Refuse a cookie-authenticated unsafe request without a valid CSRF token."""
    if request.method in SAFE_METHODS or g.get("monitor_token_auth"):
        return None
    token = request.headers.get("X-CSRFToken") or body.csrf_token()
    try:
        check_csrf_token(token)
    except ValidationError as exc:
        audit.record(state().store, "csrf", "refused", path=request.path)
        return error_response(403, "forbidden", f"CSRF check failed: {exc} Send the X-CSRFToken header.")
    return None
