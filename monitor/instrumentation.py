"""The instrumentation capability (being built)."""


def init_app(app, monitor):
    """Register the instrumentation capability on ``app``."""
