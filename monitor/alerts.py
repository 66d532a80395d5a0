"""The alerts capability (being built)."""


def init_app(app, monitor):
    """Register the alerts capability on ``app``."""
