"""gunicorn settings and server hooks for an app that embeds the monitor.

Use it as gunicorn's config (``gunicorn -c python:monitor.gunicorn_conf app:app``) or from
the host's own config file (``from monitor.gunicorn_conf import *``, then override what you
like). The hooks start the embedded Redis, the cluster agent and the master's log shipping,
and each worker's flusher; see ``monitor/core/server.py``.
"""
import os

from monitor.core import embedded, server

workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
bind = [f"0.0.0.0:{os.environ['PORT']}"] if os.environ.get("PORT") else ["127.0.0.1:8000"]
# Control socket in the instance folder (gunicorn 27 defaults to $HOME), owner-only.
control_socket = embedded.socket_path(os.environ.get("MONITOR_INSTANCE_PATH") or "instance", "gunicorn.ctl")
control_socket_mode = 0o600
graceful_timeout = 30
timeout = 30
errorlog = "-"
# The log line format; not logconfig_dict, which would build access-log atoms for every request.
logger_class = server.Logger

on_starting = server.on_starting
when_ready = server.when_ready
post_worker_init = server.post_worker_init
worker_exit = server.worker_exit
child_exit = server.child_exit
on_exit = server.on_exit
