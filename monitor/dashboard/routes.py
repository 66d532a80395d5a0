"""The dashboard's blueprint: the page, each panel alone, and panel actions."""
from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user

from ..auth.decorators import role_required
from ..auth.guard import require_login
from ..core.state import state
from ..web.responses import error_response, register_handlers

bp = Blueprint("monitor_dashboard", __name__, url_prefix="/admin")
bp.before_request(require_login)
register_handlers(bp)


def nav_links(user):
    """Return the dashboard's links to these pages that ``user`` may open."""
    links = [{"title": "Account", "url": url_for("monitor_dashboard.account")}]
    if user.can("admin"):
        links[:0] = [{"title": "Users", "url": url_for("monitor_dashboard.users_page")},
                     {"title": "Audit", "url": url_for("monitor_dashboard.audit_page")}]
    return links


@bp.get("/")
@role_required("viewer")
def index():
    """The whole dashboard: every panel, rendered in place."""
    monitor = state()
    panels = [panel.render(monitor, request.args) for panel in monitor.panels.values()]
    return render_template("monitor/dashboard.html", panels=panels, panels_meta=monitor.panels.values(),
                           admin_links=nav_links(current_user))


@bp.get("/panels/<name>")
@role_required("viewer")
def panel(name):
    """One panel's fragment, as the page includes it; htmx polls this."""
    found = state().panels.get(name)
    if found is None:
        abort(404)
    return found.render(state(), request.args)


@bp.post("/panels/<name>/<action>")
@role_required("viewer")
def panel_action(name, action):
    """Run a panel action (its role checked) and answer the refreshed panel."""
    found = state().panels.get(name)
    if found is None or action not in found.actions:
        abort(404)
    role, method = found.actions[action]
    if not current_user.can(role):
        return error_response(403, "forbidden", f"this needs the {role} role")
    return found.act(state(), method, request.args)
