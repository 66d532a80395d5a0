"""Notifications: a log line for each, and a webhook POST from a thread of its own."""
import json
import logging
import queue
import threading
import time
import urllib.request

log = logging.getLogger(__name__)


class Notifier:
    """Log each notification and POST it to the webhook from a thread of its own."""

    def __init__(self, url, timeout, retries):
        self.url, self.timeout, self.retries = url, timeout, retries
        self.queue = queue.Queue(maxsize=1000)
        self.thread = None

    def send(self, alert, event):
        text = f"[{event.upper()}] {alert['title']}: {alert['detail']}"
        (log.warning if event == "firing" else log.info)("alert %s", text)
        if not self.url:
            return
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._run, name="monitor-alerts", daemon=True)
            self.thread.start()
        payload = {"text": text, "event": event, "alert": alert}
        try:
            self.queue.put_nowait(payload)
        except queue.Full:
            log.error("alert notification dropped (queue full): %s", text)

    def _run(self):
        while True:
            self.deliver(self.queue.get())

    def deliver(self, payload):
        """POST one payload, retrying with back-off; return whether it was accepted."""
        body = json.dumps(payload, default=str).encode()
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(2 ** (attempt - 1), 30))
            try:
                request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    if response.status < 300:
                        return True
            except OSError as exc:
                log.warning("alert webhook attempt %d failed: %s", attempt + 1, exc)
        log.error("alert webhook gave up after %d attempts", self.retries + 1)
        return False
