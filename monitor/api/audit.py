"""``GET /api/admin/audit``: the security log, newest first, a page at a time; ``audit/strangers``:
the counts of anonymous requests per minute and address (admins)."""
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

    @bp.get("/audit/strangers")
    @role_required("admin")
    def audit_strangers():
        """Return ``rows`` of anonymous requests over ``window`` seconds, newest minute first."""
        window = int_arg("window", 3600, 60, audit.STRANGER_TTL_S)
        return jsonify(rows=audit.strangers(state().store, window), window_s=window,
                       retention_s=audit.STRANGER_TTL_S, rows_per_minute=audit.STRANGER_ROWS)
