"""The metrics panel."""
from .base import Panel, register


@register
class MetricsPanel(Panel):
    name = "metrics"
    title = "Metrics"
