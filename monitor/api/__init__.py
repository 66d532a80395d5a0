"""The JSON admin API under ``/api/admin``: one blueprint per app, routes from each capability.

The blueprint is made by :func:`make_blueprint` at ``init_app`` time, so only the
capabilities an app runs add routes, and each capability's API module receives the
blueprint rather than importing it.
"""
from flask import Blueprint

from ..auth.guard import require_login
from ..web.responses import register_handlers
from ..web.urls import API
from . import audit


def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


def make_blueprint(capabilities):
    """Return the API blueprint with the core's routes and those of ``capabilities``."""
    bp = Blueprint("monitor_api", __name__, url_prefix=API)
    bp.before_request(require_login)
    bp.after_request(no_store)
    register_handlers(bp)
    audit.register(bp)
    for capability in capabilities:
        capability.register_api(bp)
    return bp
