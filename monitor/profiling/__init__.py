"""On-demand CPU and memory profiling (being built)."""


def init_app(app, monitor):
    """Register the profiling capability on ``app``."""
