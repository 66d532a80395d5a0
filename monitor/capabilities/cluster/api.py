"""JSON API: the fleet's hosts and workers, and restart operations."""
from flask import jsonify, url_for
from flask_login import current_user

from ...auth.decorators import role_required
from ...core.errors import Refused
from ...core.state import state
from ...web import body
from . import operations, registry


def status(store):
    """Return the body of ``GET cluster/status``: the registry and the running operation."""
    return {**registry.status(store), "operation": operations.current_operation(store)}


def register(bp):
    """Add the cluster routes to the API blueprint."""

    @bp.get("/cluster/status")
    @role_required("viewer")
    def cluster_status():
        """Every host and worker of the fleet, with the running operation."""
        return jsonify(status(state().store))

    @bp.post("/cluster/restart")
    @role_required("operator")
    def cluster_restart():
        """Start a restart operation; answer 202 with its id."""
        mode, host, pid = operations.parse_request(body.fields(**operations.RESTART_FIELDS))
        record = operations.start_operation(state(), mode, host, pid, user=current_user.name)
        response = jsonify({"operation_id": record["id"], "status": record["status"], "hosts": record["hosts"]})
        response.status_code = 202
        response.headers["Location"] = url_for(".cluster_operation", operation_id=record["id"])
        return response

    @bp.get("/cluster/operations/<operation_id>")
    @role_required("viewer")
    def cluster_operation(operation_id):
        """An operation's record and progress."""
        record = operations.operation(state().store, operation_id)
        if record is None:
            raise Refused(f"no operation {operation_id!r}", 404)
        return jsonify(record)
