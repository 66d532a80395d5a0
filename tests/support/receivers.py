"""Where alert notifications land in the tests: a webhook receiver and an SMTP server (aiosmtpd), both local."""
import json
import logging
import threading
from email import message_from_bytes
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from . import free_port


class Hook:
    """A webhook receiver on 127.0.0.1 that records every JSON body; fails the first ``fail`` posts."""

    def __init__(self, fail=0):
        self.received, self.fail, self.attempts, self.paths = [], fail, 0, []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.attempts += 1
                hook.paths.append(self.path)
                if hook.attempts <= hook.fail:
                    self.send_response(500)
                else:
                    hook.received.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, rule):
        """Return the events told about ``rule``, in order (a grouped message tells each of its alerts)."""
        return [alert["event"] for body in self.received for alert in body.get("alerts", []) if alert["rule"] == rule]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """A local SMTP server (aiosmtpd) that takes one login and keeps every message it accepts."""

    def __init__(self, user="alerts", password="smtp-password"):
        self.user, self.password = user, password
        self.messages = []
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command line at INFO
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, authenticator=self._authenticate,
                                     auth_require_tls=False)
        self.controller.start()

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data == (self.user.encode(), self.password.encode())
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=default))
        return "250 OK"

    def settings(self):
        """Return the MONITOR_ALERT_SMTP_* settings (as environment strings) that reach this server."""
        return {"MONITOR_ALERT_SMTP_HOST": "127.0.0.1", "MONITOR_ALERT_SMTP_PORT": str(self.port),
                "MONITOR_ALERT_SMTP_TLS": "NONE", "MONITOR_ALERT_SMTP_USER": self.user,
                "MONITOR_ALERT_SMTP_PASSWORD": self.password, "MONITOR_ALERT_SMTP_FROM": "monitor@example.com"}

    def subjects(self):
        return [message["Subject"] for message in self.messages]

    def close(self):
        self.controller.stop()
