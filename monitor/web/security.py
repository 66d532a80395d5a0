"""Security headers, a per-request CSP nonce, cross-site refusal, the blueprints' guard and proxy trust.

Only the monitor's own routes get these headers: the host app's pages keep the policy
their authors chose. The CSP forbids inline scripts except the one carrying this
request's nonce; htmx runs with eval and script tags off (see base.html).
:func:`init_app` hangs :func:`guard`, :func:`refuse_cross_site` and :func:`add_headers` on the
monitor's own blueprints (first before and last after their other hooks), so the host app's
requests never pay for them; a routing error under an own path (no blueprint yet) gets them
from the timing point (``hooks.py``).
"""
import secrets

from flask import current_app, g, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.sansio.utils import host_is_trusted

from ..core.errors import Refused
from .responses import error_response, refused

CSP = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
#: The endpoint of the monitor's static files, which browsers may cache.
STATIC_ENDPOINT = "monitor_static.static"


def csp_nonce():
    """Return this request's CSP nonce (made on first use)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


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


def add_headers(response, req):
    """Put the security headers on a response of an own route."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP.format(nonce=csp_nonce()))
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers.setdefault("X-Frame-Options", "DENY")
    if req.endpoint != STATIC_ENDPOINT:
        headers["Cache-Control"] = "no-store"
    return response


def template_context():
    return {"csp_nonce": csp_nonce}


def init_app(app, names):
    """Trust the proxies MONITOR_TRUST_PROXY names; give the blueprints ``names`` the CSP nonce, the
    guard and the cross-site check first of their hooks and the headers last (call it after the others are in)."""
    trusted = app.config["MONITOR_TRUST_PROXY"]
    if trusted:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted, x_proto=trusted, x_host=trusted)
    for name in names:
        app.template_context_processors.setdefault(name, []).append(template_context)
        before = app.before_request_funcs.setdefault(name, [])
        before[:0] = [guard, _refuse_cross_site]
        # after_request functions run in reverse order: first in the list runs last.
        app.after_request_funcs.setdefault(name, []).insert(0, _add_headers)


def _refuse_cross_site():
    return refuse_cross_site(request)


def _add_headers(response):
    return add_headers(response, request)
