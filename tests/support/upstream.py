"""A local HTTP server for outgoing-call tests: known delays and statuses, and a record of what it got."""
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Upstream:
    """Answer ``GET <any path>?delay_ms=N&status=S`` after N ms with status S (default 0 ms, 200).

    ``received`` lists ``(method, path with query, headers)`` of every request, so a test can
    tell that a call it expects the monitor to skip did happen.
    """

    def __init__(self):
        upstream = self
        self.received = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else a kept-alive connection waits out delayed ACKs

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                upstream.received.append((self.command, self.path, dict(self.headers)))
                query = parse_qs(urlsplit(self.path).query)
                time.sleep(int(query.get("delay_ms", ["0"])[0]) / 1000)
                body = b"ok"
                self.send_response(int(query.get("status", ["200"])[0]))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="upstream", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
