"""The dashboard's blueprint: the page, each panel alone (and its parts), panel actions, the alerts badge."""
from urllib.parse import parse_qsl, urlsplit

import redis
from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user

from ..auth.decorators import role_required
from ..auth.guard import require_login
from ..auth.session import monitor_user
from ..auth.users import MIN_PASSWORD
from ..core.state import state
from ..web import format
from ..web.responses import error_response, register_handlers
from . import transfer

bp = Blueprint("monitor_dashboard", __name__, url_prefix="/admin")
bp.before_request(require_login)
bp.after_request(transfer.finish)
bp.record_once(format.register)
register_handlers(bp)


def nav_links(user):
    """Return the dashboard's links to these pages that ``user`` may open."""
    # A host app's user (let in by role_loader) has no monitor password to change here.
    links = [{"title": "Account", "url": url_for("monitor_dashboard.account")}] if user.session_id or user.token_id \
        else []
    if user.can("admin"):
        links[:0] = [{"title": "Users", "url": url_for("monitor_dashboard.users_page")},
                     {"title": "Audit", "url": url_for("monitor_dashboard.audit_page")}]
    links[:0] = [link for found in state().capabilities.values() for link in found.links(user)]
    return links


def firing_alerts():
    """Return the firing alerts the header badge counts, or None when there is nothing to tell.

    None: no alerts capability, nobody logged in, or the store is down (the page still renders).
    """
    monitor = state()
    alerts = monitor.capabilities.get("alerts")
    if alerts is None or not monitor_user().is_authenticated:
        return None
    try:
        return alerts.firing(monitor)
    except redis.RedisError:
        return None


@bp.context_processor
def _page_context():
    return {"firing_alerts": firing_alerts, "min_password": MIN_PASSWORD}


@bp.get("/")
@role_required("viewer")
def index():
    """The whole dashboard: every panel, rendered in place, each showing the view the URL asks for."""
    monitor = state()
    panels = [panel.render(monitor, request.args) for panel in monitor.panels.values()]
    return render_template("monitor/dashboard.html", panels=panels, panels_meta=monitor.panels.values(),
                           links=nav_links(current_user))


def _view_change(found):
    """Return the page URL for this panel's new view (other panels' views kept), or None if unchanged.

    htmx names the page it runs on in ``HX-Current-URL``; only the panels' declared
    arguments are read from it.
    """
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    shown = dict(parse_qsl(current.query))
    before, after = {}, {}
    for panel in state().panels.values():
        before.update(panel.kept(shown))
        after.update(panel.kept(request.args if panel is found else shown))
    return None if before == after else url_for("monitor_dashboard.index", **after)


@bp.get("/panels/<name>")
@role_required("viewer")
def panel(name):
    """One panel's fragment, as the page includes it; htmx polls this and puts its view in the URL."""
    found = state().panels.get(name)
    if found is None:
        abort(404)
    headers = {}
    if request.headers.get("HX-Request") and (url := _view_change(found)):
        headers["HX-Replace-Url"] = url
    return found.render(state(), request.args), 200, headers


@bp.get("/panels/<name>/<part>")
@role_required("viewer")
def panel_part(name, part):
    """A part of a panel that polls on its own (the log tail); 204 when it has nothing new."""
    found = state().panels.get(name)
    if found is None or part not in found.parts:
        abort(404)
    html = getattr(found, found.parts[part])(state(), request.args)
    return ("", 204) if html is None else html


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


@bp.get("/alerts-badge")
@role_required("viewer")
def alerts_badge():
    """The header's count of firing alerts; every monitor page polls it."""
    return render_template("monitor/_alerts_badge.html", firing=firing_alerts() or [])
