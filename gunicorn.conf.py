"""gunicorn settings for the demo host app (gunicorn reads this file by itself): the monitor's own."""
from monitor.gunicorn_conf import *  # noqa: F401,F403
