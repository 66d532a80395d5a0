"""The generated SECRET_KEY, kept once per instance folder with mode 0600."""
import os
import secrets
import time

FILE_NAME = "secret_key"


def secret_key(instance_path):
    """Return the instance's secret key, creating it on first use (safe across processes)."""
    path = os.path.join(instance_path, FILE_NAME)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another worker may be writing it right now: wait until it is complete.
        for _ in range(100):
            with open(path) as handle:
                key = handle.read().strip()
            if key:
                return key
            time.sleep(0.01)
        raise RuntimeError(f"{path} is empty; delete it to generate a new key")
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
