"""The request id: drawn when first asked for (a log line, an error page), so most requests pay nothing."""
import itertools
import os

from flask.globals import _cv_request

#: WSGI environ key of the request id.
REQUEST_ID = "monitor.request_id"

_request_ids = itertools.count(1)


def request_id():
    """Return the id (``<pid hex>-<n hex>``) of the request being served, or None outside one."""
    ctx = _cv_request.get(None)
    if ctx is None:
        return None
    environ = ctx.request.environ
    rid = environ.get(REQUEST_ID)
    if rid is None:
        rid = environ[REQUEST_ID] = f"{os.getpid():x}-{next(_request_ids):x}"
    return rid
