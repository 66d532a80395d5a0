"""The demo host app for ``gunicorn wsgi:app`` and ``flask --app wsgi``."""
from monitor import create_app

app = create_app()
