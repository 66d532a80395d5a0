"""A host app on Flask-SQLAlchemy and requests, with the monitor: ``gunicorn examples.sql_app:app``.

Run from the repository root (its ``gunicorn.conf.py`` wires the monitor's server hooks).
Each worker keeps its own SQLite database in memory, seeded with ``ITEMS`` items when the
worker loads the app, outside any request. The queries and outgoing tests serve it with
three workers:

- ``GET /items``: 25 queries, the id list and then each item by id: an N+1 on purpose;
- ``GET /fetch/<n>``: one outgoing call to ``UPSTREAM_URL/users/<n>/orders`` (query
  ``delay_ms`` and ``status`` passed on, plus a ``token`` the monitor must never keep).
"""
import os

import requests
from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from monitor import Monitor

#: Items each worker's database holds: /items runs 1 + ITEMS queries.
ITEMS = 24


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
monitor = Monitor()


class Item(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db.init_app(app)
    monitor.init_app(app)
    monitor.instrument_sqlalchemy(db)
    with app.app_context():
        db.create_all()
        db.session.add_all(Item(name=f"item {i}") for i in range(ITEMS))
        db.session.commit()

    @app.get("/items")
    def items():
        ids = db.session.scalars(select(Item.id).order_by(Item.id)).all()
        names = [db.session.execute(select(Item.name).where(Item.id == i)).scalar_one() for i in ids]
        return jsonify(count=len(names))

    @app.get("/fetch/<int:n>")
    def fetch(n):
        params = {key: request.args[key] for key in ("delay_ms", "status") if key in request.args}
        answer = requests.get(f"{os.environ['UPSTREAM_URL']}/users/{n}/orders",
                              params={**params, "token": os.environ.get("UPSTREAM_TOKEN", "")}, timeout=10)
        return jsonify(status=answer.status_code)

    return app


app = create_app()
