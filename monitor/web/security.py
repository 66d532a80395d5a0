"""Security headers, a per-request CSP nonce, cross-site refusal, the blueprints' guard and proxy trust.

Only the monitor's own routes get these headers: the host app's pages keep the policy
their authors chose. The CSP forbids inline scripts except the one carrying this
request's nonce; htmx runs with eval and script tags off (see base.html).
The monitor's request hooks (``hooks.py``) call :func:`refuse_cross_site` and
:func:`add_headers` for its own paths only; :func:`guard` runs first on each of the
monitor's blueprints, so the host app's requests never pay for it.
"""
import secrets

from flask import current_app, g, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.sansio.utils import host_is_trusted

from ..core.errors import Refused
from .responses import error_response, refused

#: The monitor's own paths, which get the strict headers below and are never counted as app traffic.
OWN_PREFIXES = ("/admin", "/api/admin", "/api/openapi.json", "/health", "/metrics", "/static/monitor",
                "/login", "/logout", "/setup")
CSP = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


#: The first three characters of the own paths: one set lookup tells most host-app paths apart.
_OWN_HEADS = frozenset(prefix[:3] for prefix in OWN_PREFIXES)


def is_own_path(path):
    """Tell whether ``path`` is one of the monitor's own routes."""
    return path[:3] in _OWN_HEADS and path.startswith(OWN_PREFIXES)


def csp_nonce():
    """Return this request's CSP nonce (made on first use)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


class _SessionInterface(SecureCookieSessionInterface):
    """Mark the session cookie Secure over HTTPS; spare a request without a session any work."""

    def open_session(self, app, request):
        # Without the cookie the session starts empty: skip building the signing serializer,
        # which serializes a probe value on construction (more than all the monitor's hooks).
        if app.secret_key and self.get_cookie_name(app) not in request.environ.get("HTTP_COOKIE", ""):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if session or session.modified or session.accessed:  # else Flask would do nothing either
            super().save_session(app, session, response)

    def get_cookie_secure(self, app):
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def refuse_cross_site(req):
    """Refuse an unsafe request to an own route with a foreign Origin or from a cross-site page."""
    if req.method in ("GET", "HEAD", "OPTIONS"):
        return None
    headers = req.headers
    site = headers.get("Sec-Fetch-Site")
    origin = headers.get("Origin")
    if site == "cross-site" or (origin and origin != req.host_url.rstrip("/")):
        # Behind a proxy that terminates HTTPS, Origin is https:// while Flask sees http://
        # unless MONITOR_TRUST_PROXY is set: say so rather than fail mysteriously.
        return error_response(403, "forbidden", "cross-site requests are refused (behind a proxy, "
                              "set MONITOR_TRUST_PROXY so the site's own address is known)")
    return None


def guard():
    """Refuse a Host outside MONITOR_ALLOWED_HOSTS (400) and a body over MONITOR_MAX_BODY (413), unread.

    The cap also bounds a body sent without ``Content-Length`` (chunked): reading past it is a 413.
    """
    config = current_app.config
    allowed = config["MONITOR_ALLOWED_HOSTS"]
    if allowed and not host_is_trusted(request.host, allowed):
        return refused(Refused("this host name is not one of MONITOR_ALLOWED_HOSTS"))
    limit = config["MONITOR_MAX_BODY"]
    # One byte over, so that a chunked body past the cap reads as longer than it (body.py refuses
    # it) rather than silently cut at it.
    request.max_content_length = limit + 1
    if (request.content_length or 0) > limit:
        return refused(Refused(f"the body is larger than {limit} bytes (MONITOR_MAX_BODY)", 413))
    return None


def guard_blueprints(app, blueprints):
    """Run :func:`guard` first of every ``before_request`` of these (registered) blueprints."""
    for blueprint in blueprints:
        app.before_request_funcs.setdefault(blueprint.name, []).insert(0, guard)


def add_headers(response, req):
    """Put the security headers on a response of an own route."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP.format(nonce=csp_nonce()))
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers.setdefault("X-Frame-Options", "DENY")
    if not req.path.startswith("/static/"):
        headers["Cache-Control"] = "no-store"
    return response


def init_app(app):
    trusted = app.config["MONITOR_TRUST_PROXY"]
    if trusted:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted, x_proto=trusted, x_host=trusted)
    app.session_interface = _SessionInterface()
    app.jinja_env.globals["csp_nonce"] = csp_nonce
