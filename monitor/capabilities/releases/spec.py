"""The OpenAPI description of the releases capability's route (``api/openapi.py`` assembles it)."""
from ...api.schema import BOOL, INT, NUM, NUMBER_OR_NULL, STR, arr, null, obj, op, ref

FIGURES = null(obj("all", count=INT, errors=INT, error_rate=NUM, p95_ms=NUM))

SCHEMAS = {
    "Releases": obj(
        ("releases",),
        releases=arr(obj(("release", "first_seen", "last_seen", "workers"), release=STR, first_seen=NUMBER_OR_NULL,
                         last_seen=NUMBER_OR_NULL, workers=INT, hosts=arr(STR), current=BOOL)),
        current=null(STR), markers=arr(obj("all", t=NUM, release=STR, previous=STR)),
        comparison={"oneOf": [{"type": "null"}, ref("ReleaseComparison")]}, generated_at=NUM),
    "ReleaseComparison": obj(
        "all", release=STR, previous=STR, deployed_at=NUM, min_requests=INT, p95_change=NUM,
        endpoints=arr(obj("all", endpoint=STR, method=STR, current=FIGURES, previous=FIGURES,
                          p95_change=NUMBER_OR_NULL, marked=BOOL))),
}


def paths(config):
    """Return the operations of this capability's routes for an app with ``config``."""
    return {"/api/admin/releases": {"get": op(
        "The releases the fleet has run, newest first, with the workers running each now, its deploy markers and "
        "the current release's metrics against the previous one's", "viewer", ref("Releases"))}}
