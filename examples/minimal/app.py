"""The smallest app with the monitor: ``gunicorn -c python:monitor.gunicorn_conf app:app``."""
from flask import Flask

from monitor import Monitor

app = Flask(__name__)
Monitor(app)


@app.get("/")
def hello():
    return "Hello from an app with a monitor at /admin/"
