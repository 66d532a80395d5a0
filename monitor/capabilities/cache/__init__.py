"""The cache capability: the app's Flask-Caching cache on the shared Redis, its hit rate, a safe clear.

The cache itself (``monitor.cache``, what the host app uses) lives in ``core/cache.py``; this
capability counts its reads (``ship``), reads the statistics and clears it (``query``), and
shows them (``api``, ``panel``, ``spec``).
"""
from ...core.cache import HitCounter
from ...core.capability import Capability
from ...core.config import Setting, number
from . import api, query, spec
from .panel import CachePanel
from .ship import Shipper


class Cache(Capability):
    name = "cache"
    settings = (
        Setting("MONITOR_CACHE_SCAN_BUDGET", 0.5, number(0.05, 10), "seconds, 0.05 to 10",
                "Time GET cache/stats may spend counting the app cache's keys by SCAN; past it the "
                "count is partial and flagged `approximate`."),
    )
    panels = (CachePanel,)

    def init_app(self, app, monitor):
        """Count ``monitor.cache``'s hits and misses, and ship them."""
        counter = HitCounter()
        app.extensions["cache"][monitor.cache].counter = counter
        monitor.flusher.add_shipper(Shipper(monitor.store, counter))

    def register_api(self, bp):
        api.register(bp)

    def spec(self, config):
        return spec.paths(config), spec.SCHEMAS

    def hit_counts(self, monitor, window_s, now):
        """Return the app cache's (hits, misses) over the last ``window_s`` s before ``now``."""
        return query.hit_counts(monitor, window_s, now)


capability = Cache()
