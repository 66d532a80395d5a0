"""The logs panel."""
from .base import Panel, register


@register
class LogsPanel(Panel):
    name = "logs"
    title = "Alerts & logs"
