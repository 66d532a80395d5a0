"""gunicorn server hooks; ``monitor/gunicorn_conf.py`` wires them.

The master validates the environment's settings, starts the embedded Redis (unless
``REDIS_URL`` is set) and stops it when it exits. Each worker starts its flusher after it
loaded the app and ships what it holds once more when it exits; the first worker also
reports what it finds wrong with the wiring (route collisions, settings the master sees
otherwise) and logs the one-time setup link while no user exists. From ``when_ready`` to
``on_exit`` the master also runs each capability's master part (``Capability.master_started``:
the cluster agent, the master's own log shipping) and tells them of every worker exit.

The master never imports the app. It reads the monitor's settings from the environment,
and its default instance folder is the one Flask gives an app defined in the module that
gunicorn loads (``app:app`` → ``./instance`` beside ``app.py``), which is where the app's
own default (``app.instance_path``) points in the usual layouts; each worker checks that
they agree (:func:`disagreements`).
"""
import importlib.util
import json
import logging.config
import os
import sys

from flask.sansio.scaffold import find_package
from gunicorn import glogging

from . import capability, config, embedded
from .process import MASTER_ENV
from .secrets import PRIVATE, secret_key
from .store import Store, remember_kind, safe_url

#: What the master exports to its workers: its view of the settings that both sides use.
MASTER_SETTINGS_ENV = "MONITOR_MASTER_SETTINGS"
#: The settings the master and the app must agree on, or the master's parts (embedded Redis,
#: cluster agent, log shipping) serve another store, key space or host than the workers.
SHARED_SETTINGS = ("MONITOR_REDIS_URL", "MONITOR_KEY_PREFIX", "MONITOR_HOST_NAME", "MONITOR_CAPABILITIES")
#: The hooks a gunicorn config must carry, by name (``monitor.gunicorn_conf`` sets them all).
HOOKS = ("on_starting", "when_ready", "post_worker_init", "worker_exit", "child_exit", "on_exit")

_master = {}

#: Every process's log lines, gunicorn's and the app's: one format, on stdout.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "generic",
                             "stream": "ext://sys.stdout"}},
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}


class Logger(glogging.Logger):
    """gunicorn's logger, with :data:`LOGGING` applied after gunicorn's own set-up (start and reload).

    Not through gunicorn's ``logconfig_dict``: any ``logconfig*`` setting makes gunicorn treat the
    access log as enabled (``Logger._compute_access_log_enabled``) and build its atoms for every
    request, though no line is written. Here the access log is on only with ``--access-logfile``
    (or ``--syslog``), exactly as under gunicorn's defaults. The logs capability sees records
    through a record factory, which a reconfiguration leaves in place.
    """

    def setup(self, cfg):
        super().setup(cfg)
        logging.config.dictConfig(LOGGING)


def _fail(server, message):
    server.log.error("monitor: %s", message)
    sys.stderr.write(f"monitor: {message}\n")
    sys.stderr.flush()
    os._exit(1)  # one clear line rather than gunicorn's traceback of a hook


def app_instance_path(app_uri):
    """Return the instance folder Flask gives an app defined in the module of ``app_uri``, unimported.

    ``app_uri`` is gunicorn's ``module:variable`` or ``module:factory(...)``; without one,
    ``./instance``. Like ``Flask.auto_find_instance_path``, it depends only on where the
    module's top-level package is found (beside it, or ``<prefix>/var/<name>-instance``).
    """
    module = (app_uri or "").partition(":")[0].strip()
    if not module:
        return os.path.abspath("instance")
    prefix, package_path = find_package(module)
    if prefix is None:
        return os.path.join(package_path, "instance")
    return os.path.join(prefix, "var", f"{module}-instance")


def master_settings(app_uri, environ=os.environ):
    """Return the settings a master reads: the environment's, its instance folder found by ``app_uri``."""
    return config.check_environment(environ, instance_path=app_instance_path(app_uri))


def on_starting(server):
    """Check settings and make sure the shared store answers before any worker starts."""
    try:
        settings = master_settings(getattr(server.app, "app_uri", None))
    except config.ConfigError as exc:
        _fail(server, str(exc))
    instance = settings["MONITOR_INSTANCE_PATH"]
    os.makedirs(instance, mode=0o700, exist_ok=True)
    if not os.environ.get("SECRET_KEY"):
        secret_key(instance)
    url = store_url(settings)
    if not settings["MONITOR_REDIS_URL"]:
        try:
            _master["embedded"] = embedded.EmbeddedRedis(instance).start()
        except (OSError, RuntimeError) as exc:
            _fail(server, f"cannot start the embedded Redis: {exc}")
    store = Store(url, settings["MONITOR_KEY_PREFIX"], timeout=max(settings["MONITOR_REDIS_TIMEOUT"], 1.0))
    if not store.ok():
        _fail(server, f"cannot reach Redis at {safe_url(url)} (REDIS_URL); is it running?")
    remember_kind(url, store.kind)
    renamed = store.adopt_legacy_keys()
    if renamed:
        server.log.info("monitor: %d keys renamed to the {%s}: form", renamed, store.prefix)
    os.environ[MASTER_ENV] = str(os.getpid())
    os.environ[MASTER_SETTINGS_ENV] = json.dumps(_shared({**settings, "MONITOR_REDIS_URL": url}))
    _master.update(settings=settings, store=store)


def when_ready(server):
    """Start the capabilities' master parts."""
    settings, store = _master["settings"], _master["store"]
    # Here rather than at on_starting: after gunicorn daemonised, so their threads are this process's.
    _master["parts"] = [part for found in capability.load(settings["MONITOR_CAPABILITIES"])
                        if (part := found.master_started(server, settings, store)) is not None]


def _shared(settings):
    return {name: list(value) if isinstance(value, tuple) else value
            for name, value in settings.items() if name in SHARED_SETTINGS}


def store_url(settings):
    """Return the Redis URL of these settings: REDIS_URL, else the embedded Redis of their instance folder."""
    return settings["MONITOR_REDIS_URL"] or embedded.url(settings["MONITOR_INSTANCE_PATH"])


def disagreements(monitor, master):
    """Return one line per setting that the master (``master``: its settings) sees otherwise than the app."""
    mine = _shared({**monitor.config, "MONITOR_REDIS_URL": monitor.store.url})
    theirs = _shared({**master, "MONITOR_REDIS_URL": store_url(master)})
    names = {setting.name: setting.env_name for setting in config.SETTINGS}
    lines = []
    for name in SHARED_SETTINGS:
        if mine[name] != theirs[name]:
            shown = [safe_url(v) if name == "MONITOR_REDIS_URL" else v for v in (theirs[name], mine[name])]
            lines.append(f"monitor: the gunicorn master reads {names[name]}={shown[0]!r} from the environment "
                         f"but the app has {shown[1]!r}; set it in the environment (the master does not import "
                         f"the app)")
    return lines


def _bind_url(cfg):
    host, port = (cfg.bind[0].rsplit(":", 1) + ["8000"])[:2]
    if host in ("0.0.0.0", "", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def post_worker_init(worker):
    """Start the worker's flusher as soon as the app is loaded; the first worker reports on the wiring."""
    app = worker.wsgi
    monitor = getattr(app, "extensions", {}).get("monitor")
    if monitor is None:
        return
    monitor.start_worker()
    if worker.age == 1:
        _first_worker_report(worker, app, monitor)


def _first_worker_report(worker, app, monitor):
    """Log route collisions and disagreements with the master; the setup link while there is no user."""
    from ..auth.users import Users

    for line in monitor.urls.collisions(app):
        worker.log.error("%s", line)
    master = os.environ.get(MASTER_SETTINGS_ENV)
    for line in disagreements(monitor, json.loads(master)) if master else ():
        worker.log.error("%s", line)
    token = Users(monitor.store).new_setup_token()
    if token:
        base = app.config["MONITOR_PUBLIC_URL"] or _bind_url(worker.cfg)
        worker.log.info("monitor: no users yet; create the first admin (link works once, for 24 h): "
                        "%s%s/setup?token=%s", base.rstrip("/"), monitor.urls.prefix, token, extra=PRIVATE)


def load_config(location):
    """Return the settings of a gunicorn config (``python:module``, ``file:path`` or a path), as gunicorn reads it."""
    if location.startswith("python:"):
        return vars(importlib.import_module(location[len("python:"):]))
    path = location[len("file:"):] if location.startswith("file:") else location
    spec = importlib.util.spec_from_file_location("monitor_checked_gunicorn_conf", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return vars(module)


def missing_hooks(settings):
    """Return ``(hook, state)`` for each monitor hook a gunicorn config lacks ("missing") or replaces ("other")."""
    found = []
    for name in HOOKS:
        hook = settings.get(name)
        if hook is None:
            found.append((name, "missing"))
        elif hook is not globals()[name]:
            found.append((name, "other"))
    return found


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
