"""The log handler, the capped stream, GET logs and the logs panel (real Redis, real gunicorn)."""
import logging
import socket
import threading
import time
import uuid

import pytest
from bs4 import BeautifulSoup

from monitor.capabilities.logs import query as logs
from monitor.capabilities.logs.handler import stream_key
from monitor.core.secrets import PRIVATE
from monitor.core.state import state
from support import bearer, wait_until


@pytest.fixture
def app_config(app_config):
    return {**app_config, "MONITOR_LOG_MAXLEN": 5000, "MONITOR_LOG_BUFFER": 100_000}


@pytest.fixture
def test_log():
    logger = logging.getLogger("tests.logs")
    logger.setLevel(logging.DEBUG)
    return logger


def ship(app):
    """Run the flusher once in this process, as its thread would."""
    monitor = state(app)
    while monitor.log_handler.buffer:
        monitor.flusher.tick()


def test_records_are_shipped_with_fields_and_filtered(app, store, test_log):
    marker = uuid.uuid4().hex
    test_log.info("first %s", marker)
    test_log.warning("second %s", marker)
    try:
        raise ValueError("boom")
    except ValueError:
        test_log.exception("third %s", marker)
    test_log.debug("below the handler's level %s", marker)
    logging.getLogger("redis.connection").error("never shipped %s", marker)
    ship(app)

    found = logs.query(store, q=marker)
    assert [e["message"] for e in found["entries"]] == [f"third {marker}", f"second {marker}", f"first {marker}"]
    third = found["entries"][0]
    assert third["level"] == "ERROR" and third["logger"] == "tests.logs" and third["host"] == "testhost"
    assert "ValueError: boom" in third["exc_text"] and "request_id" not in third
    assert third["pid"] > 0 and third["ts"] == pytest.approx(time.time(), abs=30)
    assert found["next"] is None

    assert [e["level"] for e in logs.query(store, level="WARNING", q=marker)["entries"]] == ["ERROR", "WARNING"]
    assert logs.query(store, q=marker, host="otherhost")["entries"] == []
    assert len(logs.query(store, q=marker, pid=third["pid"])["entries"]) == 3
    assert logs.query(store, q=marker.upper())["entries"] == found["entries"]


def test_a_record_marked_private_reaches_the_terminal_but_not_the_stream(app, store, test_log, caplog):
    """Issue 13, finding 13: the setup link's token went into the shared stream every viewer reads."""
    marker = uuid.uuid4().hex
    test_log.info("setup link %s", marker, extra=PRIVATE)
    test_log.info("ordinary %s", marker)
    ship(app)
    assert [e["message"] for e in logs.query(store, q=marker)["entries"]] == [f"ordinary {marker}"]
    assert f"setup link {marker}" in caplog.text  # the other handlers (the terminal's) still get it


def test_cursor_pagination_walks_newest_first(app, store, test_log):
    for i in range(25):
        test_log.info("page line %d", i)
    ship(app)
    seen, before = [], None
    while True:
        page = logs.query(store, q="page line", limit=10, before=before)
        seen += [e["message"] for e in page["entries"]]
        before = page["next"]
        if before is None:
            break
    assert seen == [f"page line {i}" for i in reversed(range(25))]


def test_request_id_inside_a_request(app, client, store):
    client.get("/demo/log", query_string={"level": "WARNING", "msg": "with request id"})
    client.get("/demo/log", query_string={"level": "WARNING", "msg": "with request id"})
    ship(app)
    entries = logs.query(store, q="with request id")["entries"]
    ids = [e.get("request_id") for e in entries]
    assert len(ids) == 2 and all(ids) and ids[0] != ids[1]


def test_full_buffer_drops_and_counts(app_config, store, test_log):
    from monitor import create_app

    app = create_app({**app_config, "MONITOR_LOG_BUFFER": 100})
    handler = state(app).log_handler
    for i in range(150):
        test_log.info("flood %d", i)
    assert len(handler.buffer) == 100 and handler.dropped == 50
    ship(app)
    assert logs.stats(store)["dropped"] == 50
    assert len(logs.query(store, q="flood", limit=1000)["entries"]) == 100


def test_a_log_call_inside_emit_is_dropped_not_recursed(app, store, test_log):
    calls = []

    class Chatty:
        def __str__(self):
            # Formatting this message logs again: from inside our emit, and from pytest's handlers.
            calls.append(1)
            test_log.warning("inner line")
            return "chatty"

    test_log.warning("outer line %s", Chatty())
    ship(app)
    messages = [e["message"] for e in logs.query(store, q="line")["entries"]]
    assert messages.count("outer line chatty") == 1
    assert messages.count("inner line") == len(calls) - 1, "the one logged inside our emit is dropped"


def test_stream_stays_within_its_cap_after_100k_lines(app, store, test_log):
    handler = state(app).log_handler
    for i in range(100_000):
        test_log.info("line %d", i)
    assert handler.dropped == 0
    ship(app)
    length = store.redis.xlen(stream_key(store))
    # Approximate trimming removes whole stream nodes (100 entries each).
    assert 5000 <= length <= 5000 + 100
    assert store.redis.ttl(stream_key(store)) > 0
    newest = logs.query(store, limit=1)["entries"][0]
    assert newest["message"] == "line 99999"


@pytest.mark.parametrize("query, detail", [
    ("level=LOUD", "level must be one of"), ("limit=0", "limit must be between 1 and 1000"),
    ("limit=1001", "limit must be between"), ("before=yesterday", "before is the id"),
    ("pid=abc", "pid must be a whole number"), ("q=" + "x" * 201, "q must be at most 200"),
])
def test_bad_queries_answer_400(client, make_user, query, detail):
    response = client.get(f"/api/admin/logs?{query}", headers=bearer(make_user("viewer")))
    assert response.status_code == 400
    assert response.json["error"] == "bad_request" and detail in response.json["detail"]


def test_panel_renders_log_text_as_text(app, client, auth, make_user, test_log):
    hostile = '<script>window.pwned=1</script><b onmouseover="x()">bold</b> & "quoted"'
    test_log.warning(hostile)
    ship(app)
    auth.login(make_user("viewer"))
    soup = BeautifulSoup(client.get("/admin/panels/logs").get_data(as_text=True), "html.parser")
    panel = soup.select_one("#panel-logs")
    assert panel is not None and panel.select("script") == [] and panel.select(".log-message b") == []
    messages = [cell.get_text().strip() for cell in panel.select(".log-table .log-message")]
    assert hostile in messages
    assert soup.select_one("#log-level") is not None and soup.select_one("#log-q")["type"] == "search"
    filtered = BeautifulSoup(client.get("/admin/panels/logs?level=ERROR").get_data(as_text=True), "html.parser")
    assert hostile not in [c.get_text().strip() for c in filtered.select(".log-table .log-message")]


def _panel(client, query=""):
    return BeautifulSoup(client.get(f"/admin/panels/logs{query}").get_data(as_text=True), "html.parser")


def test_panel_shows_info_and_up_and_keeps_the_good_filters_beside_a_bad_one(app, client, auth, make_user, test_log):
    marker = uuid.uuid4().hex
    state(app).log_handler.setLevel(logging.DEBUG)
    test_log.debug("debug %s", marker)
    test_log.info("info %s", marker)
    test_log.warning("warning %s", marker)
    ship(app)
    auth.login(make_user("viewer"))
    shown = [c.get_text().strip() for c in _panel(client, f"?q={marker}").select(".log-message")]
    assert shown == [f"warning {marker}", f"info {marker}"]  # INFO unless the URL names a level
    assert len(_panel(client, f"?q={marker}&level=DEBUG").select(".log-message")) == 3

    soup = _panel(client, f"?q={marker}&level=WARNING&pid=abc&host=")
    pid = soup.select_one("#log-pid")
    assert pid["value"] == "abc" and pid["aria-invalid"] == "true"
    assert soup.select_one(f"#{pid['aria-describedby']}").text == "pid must be a whole number"
    assert soup.select_one("#log-q")["value"] == marker and not soup.select_one("#log-q").has_attr("aria-invalid")
    assert [c.get_text().strip() for c in soup.select(".log-message")] == [f"warning {marker}"]


def test_the_tail_fetches_only_the_lines_after_its_cursor(app, client, auth, make_user, test_log):
    marker = uuid.uuid4().hex
    test_log.warning("old %s", marker)
    ship(app)
    auth.login(make_user("viewer"))
    cursor = _panel(client, f"?q={marker}").select_one("#log-tail")["hx-get"]
    assert client.get(cursor).status_code == 204  # nothing new: no body at all

    test_log.warning("other line")
    ship(app)
    moved = client.get(cursor)  # a newer line that does not match: the cursor moves past it, no rows
    assert moved.status_code == 200
    soup = BeautifulSoup(moved.get_data(as_text=True), "html.parser")
    assert soup.select(".log-row") == [] and soup.select_one("#log-tail")["hx-get"] != cursor
    cursor = soup.select_one("#log-tail")["hx-get"]

    test_log.warning("new %s", marker)
    test_log.info("newer %s", marker)
    test_log.debug("hidden %s", marker)
    ship(app)
    soup = BeautifulSoup(client.get(cursor).get_data(as_text=True), "html.parser")
    assert [c.get_text().strip() for c in soup.select(".log-message")] == [f"newer {marker}", f"new {marker}"]
    assert "q=" + marker in soup.select_one("#log-tail")["hx-get"]
    assert soup.select_one("template").decode_contents().strip().startswith('<span hx-swap-oob="true" id="log-stats"')
    assert client.get(soup.select_one("#log-tail")["hx-get"]).status_code == 204
    bad = client.get("/admin/panels/logs/tail?after=yesterday")
    assert bad.status_code == 400 and "after is the id" in bad.get_data(as_text=True)


def _hold_a_worker(server, ms):
    """Keep one sync worker busy for ``ms`` so the next request goes to another: it has accepted a
    request whose headers are still arriving (``/demo/sleep`` stops at 1 s)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"GET /demo/hello HTTP/1.1\r\nHost: 127.0.0.1\r\n")

    def finish():
        time.sleep(ms / 1000)
        sock.sendall(b"\r\n")
        sock.recv(4096)
        sock.close()
    thread = threading.Thread(target=finish, daemon=True)
    thread.start()
    time.sleep(0.3)  # let a worker accept it
    return thread


def test_line_logged_in_one_worker_is_found_through_another_within_3s(gunicorn, make_user):
    server = gunicorn(workers=2)
    server.wait_workers(2)
    headers = bearer(make_user("viewer"))
    marker = uuid.uuid4().hex
    first = _hold_a_worker(server, 1500)
    logged_at = time.monotonic()
    assert server.get("/demo/log", params={"level": "WARNING", "msg": marker}).status_code == 200
    second = _hold_a_worker(server, 4000)  # now the worker that logged is busy

    def found():
        return server.get("/api/admin/logs", params={"q": marker}, headers=headers).json()["entries"]

    entries = wait_until(found, timeout=3, message="the line through the API")
    assert time.monotonic() - logged_at < 3
    assert second.is_alive(), "the API answered while the logging worker was still busy"
    assert [e["message"] for e in entries] == [marker]
    assert entries[0]["pid"] in server.worker_pids() and entries[0]["logger"] == "monitor.demo"
    assert entries[0]["request_id"] and entries[0]["level"] == "WARNING"
    first.join(5)
    second.join(5)

    assert server.get("/demo/error").status_code == 500
    error = wait_until(lambda: server.get("/api/admin/logs", params={"q": "demo error", "level": "ERROR"},
                                          headers=headers).json()["entries"], timeout=5)
    assert "RuntimeError: demo error" in error[0]["exc_text"] and error[0]["request_id"]
    master = wait_until(lambda: server.get("/api/admin/logs", params={"pid": server.master_pid, "limit": 5},
                                           headers=headers).json()["entries"], timeout=5,
                        message="the master's own lines")
    assert all(e["pid"] == server.master_pid for e in master)
