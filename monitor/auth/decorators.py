"""``role_required(role)``: the one gate for every monitor view."""
from functools import wraps

from flask import request
from flask_login import current_user

from ..core import audit
from ..core.state import state
from ..web.responses import error_response
from .guard import unauthorized


def role_required(role):
    """Let the view run only for a logged-in user whose role is at least ``role``."""
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return unauthorized()
            if not current_user.can(role):
                audit.record(state().store, "access", "forbidden", path=request.path, needs=role)
                return error_response(403, "forbidden", f"this needs the {role} role")
            return view(*args, **kwargs)
        wrapped.required_role = role
        return wrapped
    return decorator
