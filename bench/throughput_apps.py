"""The peer apps of bench_throughput.py (gunicorn factories): the demo host app's own
/demo/hello blueprint on bare Flask, and under prometheus_flask_exporter in multiprocess mode.

The blueprint is the very one ``wsgi:app`` mounts, so bare and monitored differ by the
monitor alone (a route in a blueprint costs Flask a little more than one on the app)."""
from flask import Flask

from monitor.dev.demo import bp as demo_bp


def _hello_app(name):
    app = Flask(name)
    app.register_blueprint(demo_bp)
    return app


def bare():
    """Bare Flask: the baseline."""
    return _hello_app("bare")


def prometheus_exporter():
    """prometheus_flask_exporter's multiprocess mode (needs PROMETHEUS_MULTIPROC_DIR)."""
    from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

    app = _hello_app("pfe")
    GunicornPrometheusMetrics(app)
    return app
