"""The logs capability (being built)."""


def init_app(app, monitor):
    """Register the logs capability on ``app``."""
