"""The cache panel."""
from .base import Panel, register


@register
class CachePanel(Panel):
    name = "cache"
    title = "Cache"
