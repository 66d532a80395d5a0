"""The audit log: who did what, when, from where, with what result; strangers cannot flush it.

Two records, so that anonymous traffic cannot push security events out:

- **Security events** (:func:`record`): logins, logouts, setup, user and token changes, role
  refusals, CSRF refusals and every admin action. Only a logged-in user, the CLI or a holder
  of the one-time setup link can cause one. A Redis stream, append-only, capped at
  :data:`AUDIT_CAP` entries.
- **Strangers** (:func:`stranger`): what anonymous requests cause (401s, failed and
  rate-limited logins), counted per minute, per source address and kind (and account name
  tried), one hash per minute kept :data:`STRANGER_TTL_S`. A minute holds at most
  :data:`STRANGER_ROWS` rows; past it the minute's further sources are counted together
  under :data:`OTHER`, so a flood from many addresses stays small too.
"""
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

#: Security entries kept (Redis stream MAXLEN, approximate); about 300 bytes each.
AUDIT_CAP = 10_000
#: The shape of an entry id, the cursor of ``entries`` (use ``fullmatch``): ASCII digits, each part
#: below 2**64 and a non-zero time, so Redis never refuses it (``(0-0`` or a 20-digit part would).
CURSOR_RE = re.compile(r"^[1-9][0-9]{0,18}-[0-9]{1,19}$")
#: How long a minute of strangers' counts is kept.
STRANGER_TTL_S = 24 * 3600
#: Rows (source, kind, account) one minute keeps; further sources count under OTHER.
STRANGER_ROWS = 200
#: The source address of the rows past STRANGER_ROWS in a minute.
OTHER = "(other sources)"

# Count one stranger's request in its minute's hash: its own row while the minute has room (or
# the row exists), else the minute's overflow row; the hash expires with the retention.
_COUNT = """
local field = ARGV[1]
if redis.call('HEXISTS', KEYS[1], field) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  field = ARGV[2]
end
redis.call('HINCRBY', KEYS[1], field, 1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
"""


def _source():
    return (request.remote_addr or "-") if has_request_context() else "cli"


def record(store, action, result="ok", user=None, **detail):
    """Append one security entry; a store outage is logged, never raised into the caller."""
    try:
        if user is None and has_request_context() and current_user.is_authenticated:
            user = current_user.name
        entry = {
            "ts": f"{time.time():.3f}", "user": user or "-", "action": action, "result": result,
            "ip": _source(), "detail": json.dumps(detail, default=str, sort_keys=True),
        }
        store.redis.xadd(store.key("audit"), entry, maxlen=AUDIT_CAP, approximate=True)
    except redis.RedisError as exc:
        log.warning("audit entry %s/%s not stored: %s", action, result, exc)


def entries(store, limit=100, before=None):
    """Return up to ``limit`` security entries, newest first, older than the cursor ``before`` (an entry id)."""
    if before and not CURSOR_RE.fullmatch(before):
        raise Refused("before is the id of an entry, such as 1700000000000-0")
    raw = store.redis.xrevrange(store.key("audit"), max=f"({before}" if before else "+", count=limit)
    return [{"id": entry_id, **fields, "ts": float(fields["ts"]),
             "time": datetime.fromtimestamp(float(fields["ts"]), timezone.utc).isoformat(timespec="milliseconds"),
             "detail": json.loads(fields["detail"])}
            for entry_id, fields in raw]


def _minute_key(store, minute):
    return store.key("audit", "strangers", minute)


def stranger(store, action, result, account=""):
    """Count one anonymous request's event in its minute; a store outage is logged, never raised."""
    minute = int(time.time() // 60 * 60)
    row = json.dumps([_source(), action, result, (account or "")[:64]])
    other = json.dumps([OTHER, action, result, ""])
    try:
        store.script(_COUNT)(keys=[_minute_key(store, minute)], args=[row, other, STRANGER_ROWS, STRANGER_TTL_S])
    except redis.RedisError as exc:
        log.warning("stranger count %s/%s not stored: %s", action, result, exc)


def strangers(store, window_s=3600):
    """Return the strangers' rows of the last ``window_s`` seconds, newest minute first, most counted first."""
    now = int(time.time() // 60 * 60)
    minutes = range(now, now - window_s, -60)
    pipe = store.redis.pipeline(transaction=False)
    for minute in minutes:
        pipe.hgetall(_minute_key(store, minute))
    rows = []
    for minute, counts in zip(minutes, pipe.execute()):
        at = datetime.fromtimestamp(minute, timezone.utc).isoformat(timespec="seconds")
        found = []
        for field, count in counts.items():
            ip, action, result, account = json.loads(field)
            found.append({"minute": at, "ts": minute, "ip": ip, "action": action, "result": result,
                          "account": account, "count": int(count)})
        rows.extend(sorted(found, key=lambda row: (-row["count"], row["ip"], row["action"], row["account"])))
    return rows
