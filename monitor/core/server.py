"""gunicorn server hooks; ``monitor/gunicorn_conf.py`` wires them.

The master validates the environment's settings, starts the embedded Redis (unless
``REDIS_URL`` is set), logs the one-time setup link while no user exists, and stops the
embedded Redis when it exits. Each worker starts its flusher after it loaded the app and
ships what it holds once more when it exits. From ``when_ready`` to ``on_exit`` the master
also runs each capability's master part (``Capability.master_started``: the cluster agent,
the master's own log shipping) and tells them of every worker exit.
"""
import os
import sys

from . import capability, config, embedded
from .process import MASTER_ENV
from .secrets import secret_key
from .store import Store, remember_kind, safe_url

_master = {}


def _fail(server, message):
    server.log.error("monitor: %s", message)
    sys.stderr.write(f"monitor: {message}\n")
    sys.stderr.flush()
    os._exit(1)  # one clear line rather than gunicorn's traceback of a hook


def on_starting(server):
    """Check settings and make sure the shared store answers before any worker starts."""
    try:
        settings = config.check_environment()
    except config.ConfigError as exc:
        _fail(server, str(exc))
    instance = settings["MONITOR_INSTANCE_PATH"]
    os.makedirs(instance, mode=0o700, exist_ok=True)
    if not os.environ.get("SECRET_KEY"):
        secret_key(instance)
    if settings["MONITOR_REDIS_URL"]:
        url = settings["MONITOR_REDIS_URL"]
    else:
        try:
            _master["embedded"] = embedded.EmbeddedRedis(instance).start()
        except (OSError, RuntimeError) as exc:
            _fail(server, f"cannot start the embedded Redis: {exc}")
        url = _master["embedded"].url
    store = Store(url, settings["MONITOR_KEY_PREFIX"], timeout=max(settings["MONITOR_REDIS_TIMEOUT"], 1.0))
    if not store.ok():
        _fail(server, f"cannot reach Redis at {safe_url(url)} (REDIS_URL); is it running?")
    remember_kind(url, store.kind)
    renamed = store.adopt_legacy_keys()
    if renamed:
        server.log.info("monitor: %d keys renamed to the {%s}: form", renamed, store.prefix)
    os.environ[MASTER_ENV] = str(os.getpid())
    _master.update(settings=settings, store=store)


def when_ready(server):
    """Start the capabilities' master parts; log the setup link while there is no user."""
    from ..auth.users import Users

    settings, store = _master["settings"], _master["store"]
    # Here rather than at on_starting: after gunicorn daemonised, so their threads are this process's.
    _master["parts"] = [part for found in capability.load(settings["MONITOR_CAPABILITIES"])
                        if (part := found.master_started(server, settings, store)) is not None]
    token = Users(store).new_setup_token()
    if token:
        base = settings["MONITOR_PUBLIC_URL"] or _bind_url(server)
        server.log.info("monitor: no users yet; create the first admin (link works once, for 24 h): "
                        "%s/setup?token=%s", base.rstrip("/"), token)


def _bind_url(server):
    host, port = (server.cfg.bind[0].rsplit(":", 1) + ["8000"])[:2]
    if host in ("0.0.0.0", "", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def post_worker_init(worker):
    """Start the worker's flusher as soon as the app is loaded."""
    monitor = getattr(worker.wsgi, "extensions", {}).get("monitor")
    if monitor is not None:
        monitor.start_worker()


def worker_exit(server, worker):
    """Ship what the worker still holds before it goes."""
    monitor = getattr(worker.wsgi, "extensions", {}).get("monitor") if worker.wsgi else None
    if monitor is not None:
        monitor.flusher.stop(flush=True)


def child_exit(server, worker):
    """Tell the master parts that a worker exited."""
    for part in _master.get("parts", ()):
        if hasattr(part, "child_exit"):
            part.child_exit(worker)


def on_exit(server):
    """Stop the master parts in capability order (logs after the cluster agent), then the embedded Redis."""
    for part in _master.pop("parts", []):
        part.stop()
    redis_server = _master.pop("embedded", None)
    if redis_server is not None:
        redis_server.stop()
