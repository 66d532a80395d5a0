"""Notifications: a message per channel for each round's changes, delivered off the request path.

The evaluator hands each channel one message per round (every rule of the round that changed
state and routes there: a burst firing together is one message). A thread of the leader's
process delivers them, each attempt bounded by ``MONITOR_ALERT_WEBHOOK_TIMEOUT``; a failed one
is retried ``MONITOR_ALERT_WEBHOOK_RETRIES`` times with back-off (1, 2, 4 ... s, at most 60),
other channels' messages going out meanwhile. Each channel's last result is stored (see
``channels.record_delivery``). Nothing a delivery logs or records carries the channel's URL or
the SMTP password (``scrub``).

Formats: ``webhook`` POSTs ``{"text", "event", "alert", "alerts", "fleet", "url"}`` (``text`` is
Slack-compatible; ``event`` and ``alert`` are the first alert's, as before groups); ``slack``
``{"text"}``; ``teams`` a message with an Adaptive Card (Teams' Workflows and incoming
webhooks); ``email`` a plain-text mail over SMTP (``MONITOR_ALERT_SMTP_*``).
"""
import heapq
import itertools
import json
import logging
import os
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.request
from email.message import EmailMessage

import redis

from .channels import record_delivery, secrets_of

log = logging.getLogger(__name__)

#: Messages waiting (first tries and retries); past it a new one is dropped and logged.
QUEUE_CAP = 1000
MAX_BACKOFF_S = 60
#: Alerts listed in one message; more are counted.
MAX_LISTED = 20


def scrub(text, secrets):
    """Return ``text`` (at most 300 characters) with every secret replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text[:300]


def message(changes, fleet, url=None, test=False):
    """Return the message of one round for one channel: ``changes`` are (alert, event) pairs."""
    lines = [f"[{event.upper()}] {alert['title']}: {alert['detail']}" for alert, event in changes[:MAX_LISTED]]
    if len(changes) > MAX_LISTED:
        lines.append(f"… and {len(changes) - MAX_LISTED} more")
    counts = {}
    for _, event in changes:
        counts[event] = counts.get(event, 0) + 1
    head = ", ".join(f"{n} {event}" for event, n in counts.items())
    text = lines[0] if len(changes) == 1 else f"[{fleet}] {head}\n" + "\n".join(f"• {line}" for line in lines)
    alerts = [{**alert, "event": event} for alert, event in changes]
    return {"text": text, "subject": f"[{fleet}] " + (lines[0] if len(changes) == 1 else head),
            "event": changes[0][1], "alert": alerts[0], "alerts": alerts, "fleet": fleet, "url": url, "test": test}


def payload(kind, msg):
    """Return the JSON body a webhook of ``kind`` gets for ``msg``."""
    if kind == "slack":
        return {"text": msg["text"] + (f"\n<{msg['url']}|Open the dashboard>" if msg["url"] else "")}
    if kind == "teams":
        body = [{"type": "TextBlock", "text": line, "wrap": True} for line in msg["text"].split("\n")]
        body[0].update(weight="Bolder", size="Medium")
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": "1.4", "body": body}
        if msg["url"]:
            card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the dashboard", "url": msg["url"]}]
        return {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}
    return {key: msg[key] for key in ("text", "event", "alert", "alerts", "fleet", "url", "test")}


class Notifier:
    """Deliver messages to channels from a thread of this process, retrying with back-off."""

    def __init__(self, store, config):
        self.store, self.config = store, config
        self.timeout, self.retries = config["MONITOR_ALERT_WEBHOOK_TIMEOUT"], config["MONITOR_ALERT_WEBHOOK_RETRIES"]
        self._fresh()
        os.register_at_fork(after_in_child=self._fresh)

    def _fresh(self):
        # A forked child has none of its parent's threads: it starts its own queue when it leads.
        self.queue, self.order = [], itertools.count()
        self.ready = threading.Condition()
        self.thread = None

    def submit(self, channel, msg):
        """Queue ``msg`` for ``channel`` (first attempt as soon as the thread gets to it)."""
        with self.ready:
            if len(self.queue) >= QUEUE_CAP:
                log.error("alert notification to channel %s dropped (queue full): %s", channel["id"], msg["subject"])
                return
            heapq.heappush(self.queue, (time.monotonic(), next(self.order), channel, msg, 1))
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="monitor-alerts", daemon=True)
                self.thread.start()
            self.ready.notify()

    def _run(self):
        while True:
            with self.ready:
                while not self.queue or self.queue[0][0] > time.monotonic():
                    self.ready.wait(self.queue[0][0] - time.monotonic() if self.queue else None)
                _, _, channel, msg, attempt = heapq.heappop(self.queue)
            ok, detail = self.attempt(channel, msg)
            if not ok and attempt <= self.retries:
                log.warning("alert channel %s (%s): attempt %d of %d failed: %s", channel["id"], channel["kind"],
                            attempt, self.retries + 1, detail)
                with self.ready:
                    due = time.monotonic() + min(2 ** (attempt - 1), MAX_BACKOFF_S)
                    heapq.heappush(self.queue, (due, next(self.order), channel, msg, attempt + 1))
                continue
            if not ok:
                log.error("alert channel %s (%s) gave up after %d attempts: %s", channel["id"], channel["kind"],
                          attempt, detail)
            self.record(channel, ok, msg, attempt, detail)

    def send_now(self, channel, msg):
        """Deliver ``msg`` once, now (the test button), record and return the result."""
        ok, detail = self.attempt(channel, msg)
        return self.record(channel, ok, msg, 1, detail)

    def record(self, channel, ok, msg, attempts, detail):
        """Store a channel's last delivery; return it (also when the store is down)."""
        try:
            return record_delivery(self.store, channel["id"], ok, msg["event"], attempts, detail)
        except redis.RedisError as exc:
            log.warning("alert channel %s: delivery result not stored: %s", channel["id"], exc)
            return {"at": round(time.time(), 3), "ok": ok, "event": msg["event"], "attempts": attempts,
                    "detail": detail}

    def attempt(self, channel, msg):
        """Deliver once; return (ok, what happened), the latter scrubbed of the channel's secrets."""
        try:
            if channel["kind"] == "email":
                return True, self._mail(channel, msg)
            return self._post(channel["url"], payload(channel["kind"], msg))
        except (OSError, smtplib.SMTPException, ValueError) as exc:  # URLError, timeouts, SMTP refusals
            return False, scrub(f"{type(exc).__name__}: {exc}", secrets_of(channel, self.config))

    def _post(self, url, body):
        request = urllib.request.Request(url, json.dumps(body, default=str).encode(),
                                         {"Content-Type": "application/json", "User-Agent": "monitor-alerts"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status < 300, f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return False, f"HTTP {exc.code}"

    def _mail(self, channel, msg):
        config = self.config
        mail = EmailMessage()
        mail["Subject"] = msg["subject"]
        mail["From"] = config["MONITOR_ALERT_SMTP_FROM"] or f"monitor@{config['MONITOR_HOST_NAME']}"
        mail["To"] = ", ".join(channel["to"])
        mail.set_content(msg["text"] + (f"\n\n{msg['url']}\n" if msg["url"] else "\n"))
        host, port, tls = config["MONITOR_ALERT_SMTP_HOST"], config["MONITOR_ALERT_SMTP_PORT"], config["MONITOR_ALERT_SMTP_TLS"]
        if not host:
            raise ValueError("MONITOR_ALERT_SMTP_HOST is not set on the host that delivers")
        context = ssl.create_default_context()
        if tls == "SSL":
            server = smtplib.SMTP_SSL(host, port, timeout=self.timeout, context=context)
        else:
            server = smtplib.SMTP(host, port, timeout=self.timeout)
        with server:
            if tls == "STARTTLS":
                server.starttls(context=context)
            if config["MONITOR_ALERT_SMTP_USER"]:
                server.login(config["MONITOR_ALERT_SMTP_USER"], config["MONITOR_ALERT_SMTP_PASSWORD"])
            refused = server.send_message(mail)
        return f"sent to {len(channel['to']) - len(refused)} of {len(channel['to'])} recipients"
