"""``GET /api/admin/audit``: the audit log, newest first, a page at a time (admins)."""
from flask import jsonify, request

from ..auth.decorators import role_required
from ..core import audit
from ..core.state import state
from .args import int_arg


def register(bp):
    """Add the audit route to the API blueprint."""

    @bp.get("/audit")
    @role_required("admin")
    def audit_log():
        """Return ``entries`` newest first and ``next``, the ``before`` cursor of older ones."""
        limit = int_arg("limit", 100, 1, 1000)
        entries = audit.entries(state().store, limit, request.args.get("before") or None)
        return jsonify(entries=entries, next=entries[-1]["id"] if len(entries) == limit else None,
                       cap=audit.AUDIT_CAP)
