"""Per-release figures: each endpoint's requests, errors and latency over a release's whole run.

Every worker's flush also appends its delta, as one record of endpoint rows with histograms
(``codec``), to the list of the release it runs, ``m:r:<release id>``, merged by the open
merges that keep every list short (``compact``); the list lives ``RELEASE_TTL`` past its
last flush. So a release's figures are exact, cover all its run (or the last 31 days of it),
and cost one more record per flush; a comparison reads two lists.

The metrics panel and ``GET /api/admin/releases`` compare the release of the newest deploy
marker with the one it replaced: per endpoint, p95 and error rate side by side; a p95 that
moved by more than ``CHANGE`` with at least ``MIN_REQUESTS`` requests on both sides is marked.
"""
from ...core.process import release_id
from . import codec
from .query import Sums, _endpoints, _key

#: A release's list is kept this long after its last flush.
RELEASE_TTL = 31 * 86400
#: A p95 change past this fraction is marked ...
CHANGE = 0.2
#: ... when both releases served the endpoint at least this many times.
MIN_REQUESTS = 50


def key(store, release):
    """Return the key of a release's list of records."""
    return store.key("m", "r", release_id(release))


def endpoints(store, release):
    """Return ``{(rule, method): {count, errors, error_rate, p95_ms}}`` over a release's run."""
    records = [(0, codec.decode(blob)) for blob in store.raw.lrange(key(store, release), 0, -1)]
    rows = _endpoints(Sums(records, _key("fleet", None, None)))
    return {(row["endpoint"], row["method"]): {
        "count": row["count"], "errors": row["errors"],
        "error_rate": round(row["errors"] / row["count"], 4) if row["count"] else 0.0, "p95_ms": row["p95_ms"]}
        for row in rows}


def compare(store, release, previous, deployed_at):
    """Return ``release`` against ``previous``: per endpoint both figures, the p95 change and whether it is marked."""
    ours, theirs = endpoints(store, release), endpoints(store, previous)
    rows = []
    for rule, method in set(ours) | set(theirs):
        now, before = ours.get((rule, method)), theirs.get((rule, method))
        change = round(now["p95_ms"] / before["p95_ms"] - 1, 4) if now and before and before["p95_ms"] else None
        rows.append({"endpoint": rule, "method": method, "current": now, "previous": before, "p95_change": change,
                     "marked": change is not None and abs(change) > CHANGE and
                     min(now["count"], before["count"]) >= MIN_REQUESTS})
    rows.sort(key=lambda row: (not row["marked"], -(row["current"] or {"count": 0})["count"], row["endpoint"],
                               row["method"]))
    return {"release": release, "previous": previous, "deployed_at": deployed_at, "min_requests": MIN_REQUESTS,
            "p95_change": CHANGE, "endpoints": rows}
