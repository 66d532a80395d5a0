"""monitor: a monitoring console embedded in a Flask app."""
from .dev.app import create_app
from .extension import Monitor

__all__ = ["Monitor", "create_app"]
