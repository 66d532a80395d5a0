"""Exception messages and paths are the app's text, and render inert in Chromium: markup in them shows as text,
runs no script and loads nothing, in the panel's list and in a group's samples."""
import pytest
import requests
from playwright.sync_api import expect
from test_dashboard_browser import login

from support import bearer, wait_until

#: A host app whose one route fails with its path in the message.
APP = '''
from flask import Flask

from monitor import Monitor

app = Flask(__name__)
Monitor(app)


@app.get("/fail/<path:text>")
def fail(text):
    raise ValueError("cannot handle " + text)
'''
PAYLOAD = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>"><svg onload="window.__xss=3">'


@pytest.mark.slow
def test_markup_in_messages_and_paths_is_inert(page, gunicorn, make_user, tmp_path):
    (tmp_path / "xss_host.py").write_text(APP)
    server = gunicorn(workers=1, app="xss_host:app", cwd=str(tmp_path), args=("-c", "python:monitor.gunicorn_conf"))
    assert requests.get(server.url + "/fail/" + PAYLOAD, timeout=10).status_code == 500
    viewer = make_user("viewer")
    groups = wait_until(lambda: server.get("/api/admin/exceptions", headers=bearer(viewer)).json()["groups"], 15,
                        message="the group")
    gid = groups[0]["id"]
    dialogs, failed = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("requestfailed", lambda request: failed.append(request.url))
    login(page, server, viewer)
    page.goto(f"{server.url}/admin/?exc_group={gid}#panel-exceptions")
    title = page.locator("#exc-detail-title")
    expect(title).to_contain_text("cannot handle " + PAYLOAD)
    expect(page.locator("details.exc-sample summary code").first).to_contain_text("GET /fail/" + PAYLOAD)
    expect(page.locator("table.exceptions-groups .exc-message")).to_contain_text("cannot handle <img src=x")
    page.wait_for_timeout(1500)  # a poll of the panel, morphed in
    assert page.evaluate("() => window.__xss") is None and dialogs == []
    assert page.locator("#panel-exceptions img, #panel-exceptions script, #panel-exceptions svg[onload]").count() == 0
    assert not [url for url in failed if url.endswith("/x")]
