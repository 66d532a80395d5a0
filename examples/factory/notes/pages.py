"""The app's pages: a public index, its own /health and /metrics, and each user's notes (in their session)."""
from flask import Blueprint, Response, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    return render_template("notes.html", notes=None)


@bp.get("/health")
def health():
    """The app's own health check (the monitor's is at MONITOR_URL_PREFIX + /health)."""
    return jsonify(status="ok", app="notes")


@bp.get("/metrics")
def metrics():
    """The app's own Prometheus line (the monitor's exposition is at MONITOR_URL_PREFIX + /metrics)."""
    return Response("notes_up 1\n", mimetype="text/plain")


@bp.get("/notes")
@login_required
def notes():
    return render_template("notes.html", notes=session.get("notes", []), user=current_user)


@bp.post("/notes")
@login_required
def add_note():
    text = request.form.get("text", "").strip()[:200]
    if text:
        session["notes"] = [*session.get("notes", []), text]
    return redirect(url_for("pages.notes"), 303)
