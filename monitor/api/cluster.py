"""JSON API: the fleet's hosts and workers, and restart operations."""
from flask import abort, jsonify

from .. import cluster
from ..auth.decorators import role_required
from ..extension import state
from . import bp
from .errors import BadRequest, json_body


@bp.get("/cluster/status")
@role_required("viewer")
def cluster_status():
    """Every host and worker of the fleet, with the running operation."""
    return jsonify(cluster.status(state().store))


@bp.post("/cluster/restart")
@role_required("operator")
def cluster_restart():
    """Start a restart operation; answer 202 with its id."""
    monitor = state()
    try:
        mode, host, pid = cluster.parse_request(json_body())
        record = cluster.start_operation(monitor, mode, host, pid)
    except cluster.Refused as exc:
        if exc.status == 400:
            raise BadRequest(str(exc)) from None
        abort(exc.status, str(exc))
    response = jsonify({"operation_id": record["id"], "status": record["status"], "hosts": record["hosts"]})
    response.status_code = 202
    response.headers["Location"] = f"{bp.url_prefix}/cluster/operations/{record['id']}"
    return response


@bp.get("/cluster/operations/<operation_id>")
@role_required("viewer")
def cluster_operation(operation_id):
    """An operation's record and progress."""
    record = cluster.operation(state().store, operation_id)
    if record is None:
        abort(404, f"no operation {operation_id!r}")
    return jsonify(record)
