"""The cluster panel: hosts, workers, restart actions and the running operation's progress."""
from flask_login import current_user

from ...web import body
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

    def restart(self, monitor):
        """Start the operation the form names (its fields are those of ``POST cluster/restart``)."""
        mode, host, pid = operations.parse_request(body.fields(**operations.RESTART_FIELDS))
        record = operations.start_operation(monitor, mode, host, pid, user=current_user.name)
        return f"{mode} started (operation {record['id']})"
