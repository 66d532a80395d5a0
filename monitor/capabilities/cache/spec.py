"""The OpenAPI description of the cache capability's routes (``api/openapi.py`` assembles it)."""
from ...api.schema import BOOL, INT, NUMBER_OR_NULL, STR, arr, null, obj, op, query, ref

SCHEMAS = {
    "CacheStats": obj(
        ("backend", "prefix", "keys", "hits", "misses", "hit_rate", "memory_bytes", "namespaces", "redis"),
        backend=STR, prefix=STR, keys=INT, approximate=BOOL, hits=INT, misses=INT,
        hit_rate=NUMBER_OR_NULL, window_s=INT, memory_bytes=INT, memory_sampled_keys=INT,
        namespaces=arr(obj("all", name=STR, keys=INT, hits=INT, misses=INT)),
        redis=obj(("version", "used_memory", "evicted_keys", "connected_clients"),
                  version=null(STR), used_memory=null(INT), evicted_keys=null(INT),
                  connected_clients=null(INT), ops_per_sec=null(INT), keyspace_hits=null(INT),
                  keyspace_misses=null(INT))),
}


def paths(config):
    """Return the operations of this capability's routes for an app with ``config``."""
    return {
        "/api/admin/cache/stats": {"get": op(
            "The app cache's keys, hit rate, memory and Redis figures", "viewer", ref("CacheStats"), params=[
                query("window", {"type": "integer", "minimum": 60, "maximum": 86400, "default": 3600},
                      "hit-rate window, in seconds")])},
        "/api/admin/cache/clear": {"post": op(
            "Delete the app cache's keys (one namespace, or all); never the monitor's own data", "operator",
            obj("all", cleared=INT, namespace=null(STR)),
            body={"oneOf": [
                {"type": "object", "additionalProperties": False, "required": ["namespace"], "properties": {
                    "namespace": {"type": "string", "minLength": 1, "maxLength": 200,
                                  "pattern": r"^[^:/\x00-\x1f\x7f-\x9f]+$",
                                  "description": "printable characters, no ':' or '/'"},
                    "all": {"enum": [False, None]}}},
                {"type": "object", "additionalProperties": False, "required": ["all"], "properties": {
                    "all": {"const": True, "description": "clear the whole app cache"},
                    "namespace": {"type": "null"}}}],
                "description": "One namespace to clear, or `all: true` for the whole app cache. A body with "
                               "neither is refused (400), so a lost field never clears everything."},
            body_required=True)},
    }
