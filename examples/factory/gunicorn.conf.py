"""gunicorn reads this file by itself: the monitor's settings and hooks, then the app's own choices."""
from monitor.gunicorn_conf import *  # noqa: F401,F403

workers = 2
