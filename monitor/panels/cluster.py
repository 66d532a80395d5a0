"""The cluster panel: hosts, workers, restart actions and the running operation's progress."""
from flask_login import current_user

from .. import cluster
from .base import Panel, register


@register
class ClusterPanel(Panel):
    name = "cluster"
    title = "Cluster"
    poll = "3s"
    actions = {"restart": ("operator", "restart")}

    def context(self, monitor, args):
        return {"status": cluster.status(monitor.store),
                "operations": cluster.recent_operations(monitor.store),
                "can_operate": current_user.can("operator")}

    def restart(self, monitor, form):
        """Start the operation the form names (its fields are those of ``POST cluster/restart``)."""
        body = {key: form.get(key) or None for key in ("mode", "host", "pid")}
        try:
            mode, host, pid = cluster.parse_request(body)
            record = cluster.start_operation(monitor, mode, host, pid)
        except cluster.Refused as exc:
            raise ValueError(str(exc)) from None
        return f"{mode} started (operation {record['id']})"
