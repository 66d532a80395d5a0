"""``GET /health``: this worker's liveness and the shared store's, revealing no setting."""
from datetime import datetime, timezone

from flask import Blueprint, jsonify

from ..core.state import state

bp = Blueprint("monitor_health", __name__)


@bp.get("/health")
def health():
    """Answer healthy, or degraded when the shared store is unreachable."""
    monitor = state()
    process = monitor.process
    redis_ok = monitor.store.ok()
    body = {
        "status": "healthy" if redis_ok else "degraded",
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "worker": {
            "id": process.id, "pid": process.pid, "host": process.host,
            "clustered": process.clustered, "uptime": round(process.uptime, 3),
            "memory": {"rss": round(process.rss_mb(), 1)},
        },
        "redis": {"ok": redis_ok},
        # gunicorn_hooks: false when no gunicorn master runs the monitor's hooks for this worker,
        # so nothing carries out cluster actions (restarts) and the master's logs are not shipped.
        "monitoring": {"flusher": monitor.flusher.running, "gunicorn_hooks": process.clustered, **monitor.features},
    }
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
