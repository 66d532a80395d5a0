"""The audit log: who did what, when, from where, with what result; append-only and capped."""
import json
import logging
import re
import time
from datetime import datetime, timezone

import redis
from flask import has_request_context, request
from flask_login import current_user

from .errors import Refused

log = logging.getLogger(__name__)

#: Entries kept (Redis stream MAXLEN, approximate); about 300 bytes each.
AUDIT_CAP = 10_000
#: The shape of an entry id, the cursor of ``entries`` (use ``fullmatch``): ASCII digits, each part
#: below 2**64 and a non-zero time, so Redis never refuses it (``(0-0`` or a 20-digit part would).
CURSOR_RE = re.compile(r"^[1-9][0-9]{0,18}-[0-9]{1,19}$")


def record(store, action, result="ok", user=None, **detail):
    """Append one entry; a store outage is logged, never raised into the caller."""
    in_request = has_request_context()
    try:
        if user is None and in_request and current_user.is_authenticated:
            user = current_user.name
        entry = {
            "ts": f"{time.time():.3f}", "user": user or "-", "action": action, "result": result,
            "ip": (request.remote_addr or "-") if in_request else "cli",
            "detail": json.dumps(detail, default=str, sort_keys=True),
        }
        store.redis.xadd(store.key("audit"), entry, maxlen=AUDIT_CAP, approximate=True)
    except redis.RedisError as exc:
        log.warning("audit entry %s/%s not stored: %s", action, result, exc)


def entries(store, limit=100, before=None):
    """Return up to ``limit`` entries, newest first, older than the cursor ``before`` (an entry id)."""
    if before and not CURSOR_RE.fullmatch(before):
        raise Refused("before is the id of an entry, such as 1700000000000-0")
    raw = store.redis.xrevrange(store.key("audit"), max=f"({before}" if before else "+", count=limit)
    return [{"id": entry_id, **fields, "ts": float(fields["ts"]),
             "time": datetime.fromtimestamp(float(fields["ts"]), timezone.utc).isoformat(timespec="milliseconds"),
             "detail": json.loads(fields["detail"])}
            for entry_id, fields in raw]
