"""The cluster panel: hosts, workers, restart actions and the running operation's progress."""
from flask_login import current_user

from ...web.panel import Panel
from . import operations
from .api import status


class ClusterPanel(Panel):
    name = "cluster"
    title = "Cluster"
    actions = {"restart": ("operator", "restart")}

    def context(self, monitor, args):
        return {"status": status(monitor.store),
                "operations": operations.recent_operations(monitor.store),
                "can_operate": current_user.can("operator")}

    def restart(self, monitor, form):
        """Start the operation the form names (its fields are those of ``POST cluster/restart``)."""
        body = {key: form.get(key) or None for key in ("mode", "host", "pid")}
        mode, host, pid = operations.parse_request(body)
        record = operations.start_operation(monitor, mode, host, pid, user=current_user.name)
        return f"{mode} started (operation {record['id']})"
