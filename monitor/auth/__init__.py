"""Sessions, bearer tokens, CSRF and brute-force limits for the monitor's routes."""
from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import generate_csrf

from ..core.state import state
from ..core.store import limiter_storage
from . import routes
from .guard import load_session_user, load_token_user, unauthorized


def init_app(app):
    """Register Flask-Login, the login limiter and the auth routes."""
    manager = LoginManager()
    manager.user_loader(load_session_user)
    manager.request_loader(load_token_user)
    manager.unauthorized_handler(unauthorized)
    manager.session_protection = None  # the server-side session id already binds the login
    # Its remember-cookie hook reads the session, which adds "Vary: Cookie" to any response
    # (the host app's too) and costs every request; only login and logout can need it.
    _on_auth_routes_only(app, lambda: manager.init_app(app))

    app.config["SESSION_COOKIE_HTTPONLY"] = True
    # Flask's defaults hold SESSION_COOKIE_SAMESITE=None, so setdefault would never apply.
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # bound to the session, which expires
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.jinja_env.globals["csrf_token"] = generate_csrf
    monitor = state(app)
    # Redis down: the limits fall back to each process's memory (still limited, per worker)
    # and the user lookup itself answers 503, so no login gets through unchecked.
    uri, options = limiter_storage(monitor.store.url, monitor.store.kind, app.config["MONITOR_REDIS_TIMEOUT"])
    limiter = Limiter(
        get_remote_address, storage_uri=uri, storage_options={**options, "key_prefix": monitor.store.key("limiter")},
        in_memory_fallback_enabled=True, swallow_errors=True, strategy="moving-window")
    # Only /login is limited: the limiter's request hooks run on the auth routes alone (the
    # decorators below check the limits; its after-request hook counts the failures), so every
    # other request, the host app's included, never reaches it.
    _on_auth_routes_only(app, lambda: limiter.init_app(app))
    limiter.request_filter(lambda: request.endpoint != "monitor_auth.login")
    app.register_blueprint(routes.bp)
    view = app.view_functions["monitor_auth.login"]
    failed = routes.login_failed
    view = limiter.limit(lambda: app.config["MONITOR_LOGIN_LIMIT_ACCOUNT"], key_func=routes.account_key,
                         methods=["POST"], deduct_when=failed, error_message=routes.TOO_MANY)(view)
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
