"""The HTML dashboard under ``/admin``: the page and its panels (``routes``), the admin pages (``users``)."""
from . import users  # noqa: F401  (its pages join the blueprint)
from .routes import bp

__all__ = ["bp"]
