"""The JSON admin API under ``/api/admin``: one module per capability on one blueprint."""
from flask import Blueprint

from ..auth import require_login

bp = Blueprint("monitor_api", __name__, url_prefix="/api/admin")
bp.before_request(require_login)

from . import errors, audit, cache, cluster, logs, metrics, profiler  # noqa: E402,F401  (routes)
