"""Sessions, bearer tokens, CSRF and brute-force limits for the monitor's routes.

The monitor's login lives in its own cookie and applies to its own blueprints only
(``session.py``); the host app's login manager, session and CSRF settings stay its own.
"""
from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from ..core.state import state
from ..core.store import limiter_storage
from . import limits, routes


def init_app(app):
    """Register the login limiter and the auth routes."""
    monitor = state(app)
    # Redis down: the limits fall back to each process's memory (still limited, per worker)
    # and the user lookup itself answers 503, so no login gets through unchecked.
    uri, options = limiter_storage(monitor.store.url, monitor.store.kind, app.config["MONITOR_REDIS_TIMEOUT"])
    limiter = Limiter(
        get_remote_address, storage_uri=uri, key_prefix=limits.KEY_PREFIX,
        storage_options={**options, "key_prefix": monitor.store.key("limiter")},
        in_memory_fallback_enabled=True, swallow_errors=True, strategy="moving-window")
    # Only /login is limited: the limiter's request hooks run on the auth routes alone (the
    # decorators below check the limits; its after-request hook counts the failures), so every
    # other request, the host app's included, never reaches it.
    # Flask-Limiter reads RATELIMIT_ENABLED from the app's config (setting it when absent): the
    # host's setting is the host's, and the monitor's limiter stays on whatever it says.
    had_setting = "RATELIMIT_ENABLED" in app.config
    _on_auth_routes_only(app, lambda: limiter.init_app(app))
    if not had_setting:
        del app.config["RATELIMIT_ENABLED"]
    limiter.enabled = True
    limiter.request_filter(lambda: request.endpoint != "monitor_auth.login")
    monitor.urls.register(app, routes.bp)
    view = app.view_functions["monitor_auth.login"]
    failed = routes.login_failed
    # Shared scope: the account page's password check spends from the same bucket (limits.py).
    view = limiter.shared_limit(lambda: app.config["MONITOR_LOGIN_LIMIT_ACCOUNT"], limits.SCOPE,
                                key_func=routes.account_key, methods=["POST"], deduct_when=failed,
                                error_message=routes.TOO_MANY)(view)
    view = limiter.limit(lambda: app.config["MONITOR_LOGIN_LIMIT_IP"], key_func=get_remote_address,
                         methods=["POST"], deduct_when=failed, error_message=routes.TOO_MANY)(view)
    app.view_functions["monitor_auth.login"] = view
    monitor.limiter = limiter


def _on_auth_routes_only(app, init):
    """Run an extension's ``init``, moving the app-wide request hooks it adds to the auth routes."""
    hooks = (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
    counts = [len(funcs.get(None, ())) for funcs in hooks]
    init()
    for funcs, count in zip(hooks, counts):
        app_wide = funcs.get(None, [])
        funcs.setdefault(routes.bp.name, []).extend(app_wide[count:])
        del app_wide[count:]
