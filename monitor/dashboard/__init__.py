"""The HTML dashboard under ``/admin``."""
from flask import Blueprint

from ..auth import require_login
from ..responses import register_store_handler

bp = Blueprint("monitor_dashboard", __name__, url_prefix="/admin")
bp.before_request(require_login)
register_store_handler(bp)

from . import routes, users  # noqa: E402,F401  (route registration)
