"""``GET /api/admin/audit``: the audit log, newest first, a page at a time (admins)."""
from flask import jsonify, request

from .. import audit
from ..auth.decorators import role_required
from ..extension import state
from . import bp
from .errors import BadRequest, int_arg


@bp.get("/audit")
@role_required("admin")
def audit_log():
    """Return ``entries`` newest first and ``next``, the ``before`` cursor of older ones."""
    limit = int_arg("limit", 100, 1, 1000)
    try:
        entries = audit.entries(state().store, limit, request.args.get("before") or None)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return jsonify(entries=entries, next=entries[-1]["id"] if len(entries) == limit else None,
                   cap=audit.AUDIT_CAP)
