"""Commands to a worker or a host's master, carried through the shared store.

A sender pushes ``{"id", "name", "args"}`` onto the target's list; the target picks its
commands up on its next flusher tick, runs the handler registered under that name and
stores the answer under ``cmdresult:<id>``: ``{"ok": true, "result"}``, or ``{"ok": false,
"error", "status"}`` (a handler's ``Refused`` keeps its status; anything else is a logged
500). Targets are ``worker:<host>:<pid>`` and ``host:<host>``, so a command reaches the
right process on any host.
"""
import json
import logging
import secrets
import time

from .errors import Refused

log = logging.getLogger(__name__)

#: How long an unclaimed command or an answer stays in Redis.
COMMAND_TTL_S = 120
#: Commands taken per tick, so a flood cannot stall the flusher.
BATCH = 10


def worker_target(host, pid):
    return f"worker:{host}:{pid}"


def host_target(host):
    return f"host:{host}"


class Commands:
    """Send commands, run the ones addressed to this process, and fetch answers."""

    def __init__(self, store):
        self.store = store
        self.handlers = {}

    def handler(self, name):
        """Register ``fn(**args) -> dict`` as the handler of command ``name``."""
        def register(fn):
            self.handlers[name] = fn
            return fn
        return register

    def send(self, target, name, **args):
        """Queue a command for ``target``; return its id."""
        command_id = secrets.token_hex(8)
        key = self.store.key("cmd", target)
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.rpush(key, json.dumps({"id": command_id, "name": name, "args": args, "ts": time.time()}))
        pipe.expire(key, COMMAND_TTL_S)
        pipe.execute()
        return command_id

    def answer(self, command_id):
        """Return the stored answer of a command, or None while it has none."""
        raw = self.store.redis.get(self.store.key("cmdresult", command_id))
        return json.loads(raw) if raw else None

    def wait(self, command_ids, timeout):
        """Poll for the answers of these commands until all came or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        answers = {}
        while True:
            for command_id in command_ids:
                if command_id not in answers:
                    found = self.answer(command_id)
                    if found is not None:
                        answers[command_id] = found
            if len(answers) == len(command_ids) or time.monotonic() >= deadline:
                return answers
            time.sleep(0.05)

    def run_pending(self, target):
        """Run the commands queued for ``target`` (called from the flusher)."""
        raw = self.store.redis.lpop(self.store.key("cmd", target), BATCH) or []
        for item in raw:
            command = json.loads(item)
            handler = self.handlers.get(command["name"])
            try:
                if handler is None:
                    raise LookupError(f"no handler for {command['name']!r}")
                result = {"ok": True, "result": handler(**command["args"])}
            except Refused as exc:
                result = {"ok": False, "error": exc.detail, "status": exc.status}
            except Exception as exc:
                log.exception("command %s failed", command["name"])
                result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "status": 500}
            self.store.redis.set(self.store.key("cmdresult", command["id"]), json.dumps(result),
                                 ex=COMMAND_TTL_S)
