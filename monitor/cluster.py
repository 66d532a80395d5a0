"""The cluster capability (being built)."""


def init_app(app, monitor):
    """Register the cluster capability on ``app``."""
