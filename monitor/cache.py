"""The cache capability (being built)."""


def init_app(app, monitor):
    """Register the cache capability on ``app``."""
