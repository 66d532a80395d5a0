"""The cluster panel."""
from .base import Panel, register


@register
class ClusterPanel(Panel):
    name = "cluster"
    title = "Cluster"
