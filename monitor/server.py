"""gunicorn server hooks; ``gunicorn.conf.py`` forwards to these.

The master validates the environment's settings, starts the embedded Redis (unless
``REDIS_URL`` is set), logs the one-time setup link while no user exists, and stops the
embedded Redis when it exits. Each worker starts its flusher after it loaded the app and
ships what it holds once more when it exits. The master also runs the cluster agent
(monitor/agent.py) from ``when_ready`` to ``on_exit`` and tells it of every worker exit, and
ships its own log lines to the shared log stream (monitor/logs.py) with a flusher of its own.
"""
import os
import sys

from . import config, embedded, logs
from .process import MASTER_ENV
from .secrets_file import secret_key
from .store import Store, safe_url

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
    os.environ[MASTER_ENV] = str(os.getpid())
    _master.update(settings=settings, store=store)


def when_ready(server):
    """Ship the master's log lines; start the cluster agent; log the setup link while there is no user."""
    from .agent import Agent
    from .auth.users import Users

    settings = _master["settings"]
    # Here rather than at on_starting: after gunicorn daemonised, so the thread is this process's.
    _master["log_flusher"] = logs.install_master(_master["store"], settings, settings["MONITOR_HOST_NAME"])
    _master["agent"] = Agent(server, settings, _master["store"]).start()
    token = Users(_master["store"]).new_setup_token()
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
    """Tell the cluster agent that a worker exited."""
    agent = _master.get("agent")
    if agent is not None:
        agent.child_exit(worker)


def on_exit(server):
    """Stop the cluster agent, then the embedded Redis that this master started."""
    agent = _master.pop("agent", None)
    if agent is not None:
        agent.stop()
    log_flusher = _master.pop("log_flusher", None)
    if log_flusher is not None:
        log_flusher.stop(flush=True)
    redis_server = _master.pop("embedded", None)
    if redis_server is not None:
        redis_server.stop()
