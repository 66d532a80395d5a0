"""The profiling capability: CPU profiles and heap snapshots taken on demand from live workers.

``collect`` is the request probe and this worker's folded stacks, ``sessions`` the CPU
session lifecycle in the store, ``render`` the report and speedscope files, ``memory`` the
heap summaries and tracemalloc; ``api``, ``panel`` and ``spec`` are its surfaces.
"""
from ...core.capability import Capability
from ...core.config import Setting, number
from . import api, spec
from .collect import Collector
from .memory import MemoryProfiler, heap_summary
from .panel import ProfilingPanel
from .sessions import CpuSessions


class Profiling(Capability):
    name = "profiling"
    settings = (
        Setting("MONITOR_PROFILE_INTERVAL", 0.0005, number(0.0001, 0.1), "seconds, 0.0001 to 0.1",
                "Sampling interval of pyinstrument in CPU sessions; a request shorter than it may "
                "leave no sample (it is still counted)."),
        Setting("MONITOR_PROFILE_KEEP", 5, number(1, 50, int), "a whole number, 1 to 50",
                "CPU profiling sessions kept; starting one more drops the oldest."),
        Setting("MONITOR_PROFILE_TTL", 86400, number(60, 30 * 86400, int), "seconds, 60 to 2592000",
                "How long profiling sessions, results and memory snapshots are kept."),
        Setting("MONITOR_PROFILE_MAX_BYTES", 8 * 2**20, number(2**16, 2**28, int),
                "bytes, 65536 to 268435456",
                "Cap on a merged CPU profile (compressed); past it the least-sampled call stacks are dropped."),
        Setting("MONITOR_TRACEMALLOC_MAX_S", 120, number(1, 3600, int), "seconds, 1 to 3600",
                "Longest a tracemalloc session may run (it slows a worker several-fold); it stops by itself."),
    )
    panels = (ProfilingPanel,)

    def init_app(self, app, monitor):
        collector = Collector(app.config["MONITOR_PROFILE_INTERVAL"])
        cpu = monitor.cpu_profiler = CpuSessions(monitor, collector)
        memory = monitor.memory_profiler = MemoryProfiler(monitor)
        monitor.probe = collector
        monitor.commands.handler("profiler.heap")(heap_summary)
        monitor.commands.handler("profiler.trace_start")(memory.trace_start)
        monitor.commands.handler("profiler.trace_stop")(memory.trace_stop)
        monitor.flusher.add_task(cpu.tick)
        monitor.flusher.add_task(memory.tick)

    def register_api(self, bp):
        api.register(bp)

    def spec(self, config):
        return spec.paths(config), spec.SCHEMAS


capability = Profiling()
