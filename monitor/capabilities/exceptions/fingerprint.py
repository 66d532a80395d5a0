"""What makes two exceptions one group: their type and the app's own frames, by file and function.

A frame is the app's own unless its file is in the standard library, an installed package
(``site-packages``, ``dist-packages``), frozen or generated code, or the monitor itself
(its demo host, ``monitor/dev``, counts as an app). Line numbers are left out, so an edit
above the failing line keeps the group; library frames are left out, so a library upgrade
does too. An exception with no app frame at all is grouped by its innermost frame.
File names are shown and hashed relative to the ``sys.path`` entry they were found under
(``app/views.py``, ``flask/app.py``), so two hosts with the app in other folders agree.

The stack of a traceback is worked out once per code location: a burst of identical
exceptions costs a walk of the traceback and a dictionary lookup each (``Stacks``). The
host may group its own way (``Monitor.exception_fingerprint``).
"""
import functools
import hashlib
import os
import sys
import sysconfig

MONITOR_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: The monitor's demo host app: its frames are an app's.
DEMO_DIR = os.path.join(MONITOR_DIR, "dev")
_LIBRARY_DIRS = tuple(sorted({os.path.abspath(path) + os.sep for name in ("stdlib", "platstdlib", "purelib", "platlib")
                              if (path := sysconfig.get_paths().get(name))}, key=len, reverse=True))
#: Stacks remembered by code location; past it the memo starts over.
MEMO = 1024
#: Frames a stack keeps (the innermost ones); a deeper one says how many it left out.
MAX_FRAMES = 60


def type_name(exc_type):
    """Return ``RuntimeError`` for a builtin, ``module.Qualified`` for any other exception type."""
    module = exc_type.__module__
    return exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"


@functools.lru_cache(maxsize=4096)
def place(filename):
    """Return ``(shown name, is the app's own)`` of a source file."""
    if filename.startswith("<"):  # <frozen ...>, <string>, <template>
        return filename, False
    path = os.path.abspath(filename)
    in_monitor = path.startswith(MONITOR_DIR + os.sep) and not path.startswith(DEMO_DIR + os.sep)
    library = in_monitor or path.startswith(_LIBRARY_DIRS) or \
        f"{os.sep}site-packages{os.sep}" in path or f"{os.sep}dist-packages{os.sep}" in path
    roots = [os.path.abspath(entry or os.curdir) + os.sep for entry in sys.path]
    root = max((r for r in roots if path.startswith(r)), key=len, default=None)
    return (os.path.relpath(path, root) if root else path), not library


class Stack:
    """A traceback's frames, ``(file, function, line, app)`` innermost last, and its group id."""

    __slots__ = ("type", "frames", "dropped", "gid", "culprit")

    def __init__(self, exc_type, codes):
        self.type = type_name(exc_type)
        frames = []
        for code, line in codes:
            file, app = place(code.co_filename)
            frames.append((file, getattr(code, "co_qualname", code.co_name), line, app, code.co_filename))
        self.dropped = max(0, len(frames) - MAX_FRAMES)
        self.frames = tuple(frames[self.dropped:])
        own = [(file, function) for file, function, _, app, _ in frames if app] or \
            [(file, function) for file, function, *_ in frames[-1:]]
        # a recursion is one frame however deep it goes
        own = [frame for i, frame in enumerate(own) if i == 0 or frame != own[i - 1]]
        self.gid = group_id("\n".join([self.type, *(f"{file}:{function}" for file, function in own)]))
        #: Where it happened: the innermost app frame (or the innermost frame).
        self.culprit = f"{own[-1][0]} in {own[-1][1]}" if own else ""


def group_id(fingerprint):
    """Return the short id of a fingerprint (hex)."""
    return hashlib.blake2b(fingerprint.encode(), digest_size=8).hexdigest()


class Stacks:
    """The stacks seen, by code location: ``(type, (code, line) of each frame)``."""

    def __init__(self):
        self.memo = {}

    def of(self, exc):
        """Return the Stack of ``exc``'s traceback (worked out once per code location)."""
        codes = []
        tb = exc.__traceback__
        while tb is not None:
            codes.append((tb.tb_frame.f_code, tb.tb_lineno))
            tb = tb.tb_next
        key = (type(exc), tuple(codes))
        stack = self.memo.get(key)
        if stack is None:
            stack = Stack(type(exc), codes)
            if len(self.memo) >= MEMO:
                self.memo.clear()
            self.memo[key] = stack
        return stack
