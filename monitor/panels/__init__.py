"""The dashboard's panels: one module and one ``panels/_<name>.html`` partial each.

Importing this package registers every panel; ``PANELS`` keeps them in display order.
"""
from .base import PANELS, Panel, register
from . import metrics, profiling, cache, cluster, logs  # noqa: E402,F401  (registration)

__all__ = ["PANELS", "Panel", "register"]
