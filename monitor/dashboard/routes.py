"""The dashboard page, each panel alone, and panel actions."""
from flask import abort, render_template, request
from flask_login import current_user

from ..auth.decorators import role_required
from ..extension import state
from ..panels import PANELS
from ..responses import error_response
from . import bp
from .users import nav_links


@bp.get("/")
@role_required("viewer")
def index():
    """The whole dashboard: every panel, rendered in place."""
    monitor = state()
    panels = [panel.render(monitor, request.args) for panel in PANELS.values()]
    return render_template("monitor/dashboard.html", panels=panels, panels_meta=PANELS.values(),
                           admin_links=nav_links(current_user))


@bp.get("/panels/<name>")
@role_required("viewer")
def panel(name):
    """One panel's fragment, as the page includes it; htmx polls this."""
    if name not in PANELS:
        abort(404)
    return PANELS[name].render(state(), request.args)


@bp.post("/panels/<name>/<action>")
@role_required("viewer")
def panel_action(name, action):
    """Run a panel action (its role checked) and answer the refreshed panel."""
    found = PANELS.get(name)
    if found is None or action not in found.actions:
        abort(404)
    role, method = found.actions[action]
    if not current_user.can(role):
        return error_response(403, "forbidden", f"this needs the {role} role")
    monitor = state()
    try:
        message = getattr(found, method)(monitor, request.form)
    except ValueError as exc:
        return found.render(monitor, request.args, error=str(exc)), 400
    return found.render(monitor, request.args, message=message)
