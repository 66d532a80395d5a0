"""The monitor's own login: its cookie, its current user and its CSRF token, on its routes only.

A host app owns ``app.session_interface``, ``app.login_manager`` and Flask-Login's
``current_user``; the monitor takes none of them. For a request to one of its blueprints,
:func:`enter` (the blueprint's first ``before_request``) opens the monitor's session from
its own signed cookie (``monitor_session``), finds the user (that session's, a bearer
token's, or the host's current user let in by ``@monitor.role_loader``), then swaps both
in: Flask's ``session`` is the monitor's and ``g._login_user``, which Flask-Login's
``current_user`` reads first, is the monitor's user. :func:`leave` (the blueprint's last
``after_request``) saves the monitor's cookie and puts the host's session and user back,
so the host's own after-request hooks and Flask's save of the host cookie see them untouched.
``log_in``/``log_out`` stand in for Flask-Login's ``login_user``/``logout_user``, which
would need ``app.login_manager`` and would send the host's ``user_logged_in`` signals.
"""
import math

from flask import current_app, g, request, session
from flask.ctx import RequestContext
from flask.globals import _cv_request
from flask.sessions import SecureCookieSessionInterface
from flask_login import AnonymousUserMixin
from flask_wtf.csrf import generate_csrf, validate_csrf
from itsdangerous import URLSafeTimedSerializer

from ..core.state import state
from .users import RANK, ROLES, User, Users

#: The monitor's login cookie (signed; it carries the server-side session id and the CSRF secret).
COOKIE_NAME = "monitor_session"
#: The session and form field that hold the CSRF token.
CSRF_FIELD = "csrf_token"
#: The monitor's CSRF tokens live as long as its session (which ends at logout or after 12 h
#: idle), so they carry no time limit of their own; ``None`` would mean the host's setting.
CSRF_TIME_LIMIT = math.inf
#: Where the user a session logged in is kept, as Flask-Login keeps it.
USER_KEY = "_user_id"
# Flask 3.1.3 keeps the opened session in ``_session`` behind a property that marks it
# accessed; earlier versions in a plain ``session`` attribute.
_SESSION_ATTR = "_session" if isinstance(getattr(RequestContext, "session", None), property) else "session"
_MISSING = object()


class Anonymous(AnonymousUserMixin):
    """Nobody: the current user of a monitor request without a login."""

    name = role = session_id = token_id = None

    def can(self, role):
        return False


class SessionInterface(SecureCookieSessionInterface):
    """The monitor's signed cookie: its own name, salt and flags, whatever the host's session is."""

    salt = "monitor-session"

    def get_signing_serializer(self, app):
        return URLSafeTimedSerializer(secret_key(app), salt=self.salt, serializer=self.serializer, signer_kwargs={
            "key_derivation": self.key_derivation, "digest_method": self.digest_method})

    def get_cookie_name(self, app):
        return COOKIE_NAME

    def get_cookie_domain(self, app):
        return None

    def get_cookie_path(self, app):
        # The whole app, not only MONITOR_URL_PREFIX: ``?_profile=1`` on the host's pages needs it.
        return app.config["APPLICATION_ROOT"]

    def get_cookie_httponly(self, app):
        return True

    def get_cookie_secure(self, app):
        return bool(app.config.get("SESSION_COOKIE_SECURE") or request.is_secure)

    def get_cookie_samesite(self, app):
        return "Lax"

    def get_cookie_partitioned(self, app):
        return False

    def get_expiration_time(self, app, session):
        return None  # a browser-session cookie; the server-side session expires on its own

    def should_set_cookie(self, app, session):
        return session.modified

    def open_session(self, app, request):
        # Without the cookie the session starts empty: skip building the signing serializer,
        # which serializes a probe value on construction.
        if COOKIE_NAME not in request.environ.get("HTTP_COOKIE", ""):
            return self.session_class()
        return super().open_session(app, request)


INTERFACE = SessionInterface()


def users():
    """Return the user records of the current app's store."""
    return Users(state().store)


def secret_key(app=None):
    """Return the key that signs the monitor's cookie and CSRF tokens: the app's, else the instance's."""
    app = app or current_app
    return app.secret_key or state(app).secret_key


def _load(app):
    """Open the monitor's session and find its user: the session's, a bearer token's, or the host's."""
    own = INTERFACE.open_session(app, request)
    return own, _session_user(own) or _token_user() or _host_user(state(app))


def request_user():
    """Return the monitor's user of a request to one of the host's routes (``?_profile=1``), or None.

    Nothing is swapped: the host's session and ``current_user`` stay in place.
    """
    return _load(current_app._get_current_object())[1]


def enter():
    """``before_request`` of the monitor's blueprints: swap in its session and its user."""
    app = current_app._get_current_object()
    ctx = _cv_request.get()
    own, user = _load(app)
    g.monitor_host = (getattr(ctx, _SESSION_ATTR), g.pop("_login_user", _MISSING), g.pop(CSRF_FIELD, _MISSING))
    setattr(ctx, _SESSION_ATTR, own)
    g._login_user = user or Anonymous()


def leave(response):
    """``after_request`` of the monitor's blueprints: save its cookie, give the host back its own."""
    host = g.pop("monitor_host", None)
    if host is None:
        return response
    ctx = _cv_request.get()
    INTERFACE.save_session(current_app._get_current_object(), getattr(ctx, _SESSION_ATTR), response)
    host_session, host_user, host_csrf = host
    setattr(ctx, _SESSION_ATTR, host_session)
    for name, value in (("_login_user", host_user), (CSRF_FIELD, host_csrf)):
        g.pop(name, None)
        if value is not _MISSING:
            setattr(g, name, value)
    return response


def _session_user(own):
    session_id = own.get(USER_KEY)
    return users().load_session(session_id) if session_id else None


def _token_user():
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    user = users().load_token(header[7:].strip())
    if user:
        g.monitor_token_auth = True
    return user


def _host_user(monitor):
    """Ask the host app's ``role_loader`` (while the host's session and user are in place)."""
    loader = monitor.extension.role_loader_callback
    if loader is None:
        return None
    answer = loader()
    if answer is None:
        return None
    if not isinstance(answer, tuple) or len(answer) != 2:
        raise TypeError(f"role_loader must return (name, role) or None, not {answer!r}")
    name, role = answer
    if role not in RANK:
        raise ValueError(f"role_loader returned the role {role!r}; a role is one of {', '.join(ROLES)}")
    return User(f"host:{name}", role)


def log_in(user):
    """Log ``user`` (with a server-side session id) into the monitor's session."""
    session[USER_KEY] = user.session_id
    g._login_user = user


def log_out():
    """End the monitor's login in this session (the server-side session is ended by the caller)."""
    session.pop(USER_KEY, None)
    g._login_user = Anonymous()


def csrf_token():
    """Return the monitor's CSRF token for this session (templates call ``csrf_token()``)."""
    return generate_csrf(secret_key=secret_key(), token_key=CSRF_FIELD)


def check_csrf_token(token):
    """Raise wtforms' ValidationError unless ``token`` is this session's CSRF token."""
    validate_csrf(token, secret_key=secret_key(), time_limit=CSRF_TIME_LIMIT, token_key=CSRF_FIELD)


def monitor_user():
    """Return the monitor's user of this request; nobody before :func:`enter` ran or when it failed.

    (Redis down, a failing role_loader, or an answer from the timing point before the monitor's
    blueprint hooks: the error page then renders for nobody.)
    """
    return g._login_user if "monitor_host" in g else Anonymous()


def template_context():
    """What the monitor's templates use: its user, its CSRF token (not the host's)."""
    return {"current_user": monitor_user(), "csrf_token": csrf_token}


def init_app(app, names):
    """Give the monitor's blueprints ``names`` its session and user, first in and last out."""
    for name in names:
        app.before_request_funcs.setdefault(name, []).insert(0, enter)
        # after_request functions run in reverse order: first in the list runs last.
        app.after_request_funcs.setdefault(name, []).insert(0, leave)
        app.template_context_processors.setdefault(name, []).append(template_context)


def exempt_from_host_csrf(app):
    """Exempt the monitor's blueprints from the host app's CSRFProtect: they check their own CSRF."""
    csrf = app.extensions.get("csrf")
    if csrf is None or not hasattr(csrf, "exempt"):
        return
    for name in state(app).urls.blueprints:
        csrf.exempt(app.blueprints[name])
