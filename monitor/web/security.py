"""Security headers, a per-request CSP nonce, cross-site refusal and proxy trust.

Only the monitor's own routes get these headers: the host app's pages keep the policy
their authors chose. The CSP forbids inline scripts except the one carrying this
request's nonce; htmx runs with eval and script tags off (see base.html).
The monitor's request hooks (``hooks.py``) call :func:`refuse_cross_site` and
:func:`add_headers` for its own paths only.
"""
import secrets

from flask import g
from werkzeug.middleware.proxy_fix import ProxyFix

from .responses import error_response

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
    """Trust the proxies MONITOR_TRUST_PROXY names; give the blueprints ``names`` the CSP nonce."""
    trusted = app.config["MONITOR_TRUST_PROXY"]
    if trusted:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted, x_proto=trusted, x_host=trusted)
    for name in names:
        app.template_context_processors.setdefault(name, []).append(template_context)
