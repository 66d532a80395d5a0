"""The peer apps of bench_throughput.py: the same /demo/hello on bare Flask and under
prometheus_flask_exporter in multiprocess mode (gunicorn factories)."""
from flask import Flask, jsonify


def _hello_app(name):
    app = Flask(name)

    @app.get("/demo/hello")
    def hello():
        return jsonify(message="hello")

    @app.get("/health")
    def health():
        return jsonify(status="healthy")

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
