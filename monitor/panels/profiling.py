"""The profiling panel."""
from .base import Panel, register


@register
class ProfilingPanel(Panel):
    name = "profiling"
    title = "Profiling"
