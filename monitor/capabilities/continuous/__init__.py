"""The continuous profiling capability: a low-rate sampler in every worker, a flame graph for any endpoint over any window.

``sampler`` is the thread that samples the running requests' stacks, ``codec`` the bytes of
folded stacks, ``layout`` the Redis keys and tiers, ``ship`` the flusher's writes (merged and
rolled up by the metrics' compactor), ``query`` the read side, ``render`` the tree, the
flame graph's frames and the download formats; ``api``, ``panel`` (a view in the profiling
panel) and ``spec`` are its surfaces.

It adds nothing per request at any rate: the sampler reads ``monitor.requests.running``,
the thread → rule label map of the requests in flight that the timing point keeps anyway.
With ``MONITOR_CONTINUOUS_HZ=0`` it collects nothing: no thread, no shipper. What was stored
can still be read.
"""
import sys

from ...core.capability import Capability
from ...core.config import Setting, boolean, number
from . import api, panel, spec
from .sampler import Sampler
from .ship import Shipper


class Continuous(Capability):
    name = "continuous"
    settings = (
        Setting("MONITOR_CONTINUOUS_HZ", 19, number(0, 1000, int), "a whole number, 0 to 1000",
                "Samples per second of each worker's continuous profiler (an odd rate does not keep in "
                "step with periodic work); 0 turns it off: no sampler thread. It adds no per-request work at any rate."),
        Setting("MONITOR_CONTINUOUS_LINES", False, boolean, "0/1, true/false, on/off",
                "Keep line numbers in continuous profiles' frames (file:function:line): finer, and "
                "more distinct stacks to store."),
        Setting("MONITOR_CONTINUOUS_MAX_STACKS", 5000, number(100, 100000, int), "a whole number, 100 to 100000",
                "Distinct stacks each worker keeps per minute; samples of further stacks count as their "
                "endpoint's `(other)`."),
    )
    #: The query arguments of its view in the profiling panel.
    params = panel.PARAMS

    def init_app(self, app, monitor):
        hz = app.config["MONITOR_CONTINUOUS_HZ"]
        if not hz:
            return
        sampler = monitor.sampler = Sampler(monitor.requests.running, hz, app.config["MONITOR_CONTINUOUS_LINES"],
                                            app.config["MONITOR_CONTINUOUS_MAX_STACKS"])
        monitor.flusher.add_shipper(Shipper(monitor, sampler))

        def start():
            # After the flusher started, and with it the app complete: the timing point is built
            # (stacks start below its frame), and the on-demand profiler's probe is known.
            probe = monitor.probe
            skipped = [sys.modules[type(probe).__module__].__file__] if probe is not None else []
            sampler.start(app.full_dispatch_request.__code__, skipped, monitor.flusher.stopping)
        monitor.on_start.append(start)

    def register_api(self, bp):
        api.register(bp)

    def spec(self, config):
        return spec.paths(config), spec.SCHEMAS

    def view(self, monitor, args, placeholder=False):
        """Return the context of its view in the profiling panel (``placeholder``: the panel's own poll)."""
        return panel.view(monitor, args, placeholder)


capability = Continuous()
