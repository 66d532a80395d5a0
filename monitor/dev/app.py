"""``create_app()``: the small host app of ``wsgi.py``: demo routes plus the monitor."""
from flask import Flask, jsonify

from ..extension import Monitor


def create_app(test_config=None):
    """Build the host app; ``test_config`` overrides settings (tests)."""
    app = Flask("monitor_host")
    app.config.from_mapping(test_config or {})
    Monitor(app)
    if app.config["MONITOR_DEMO"]:
        from . import demo

        demo.init_app(app)

    @app.get("/")
    def index():
        return jsonify(app="monitor demo host", dashboard="/admin/", health="/health")

    return app
