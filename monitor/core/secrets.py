"""Generated secrets in files of mode 0600, and the mark that keeps a secret out of the shared logs.

The files: the SECRET_KEY (unless set) and the embedded Redis's password.
"""
import os
import secrets
import time

FILE_NAME = "secret_key"
#: ``extra=`` of a log record that carries a secret (the setup link): the terminal shows it,
#: the logs capability does not ship it to the stream every viewer reads.
PRIVATE = {"monitor_private": True}


def secret_key(instance_path):
    """Return the instance's secret key, creating it on first use (safe across processes)."""
    return secret_file(os.path.join(instance_path, FILE_NAME))


def secret_file(path):
    """Return the random secret kept in ``path``, creating the file (0600) on first use, safe across processes."""
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
