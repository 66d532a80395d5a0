"""``Refused``: the one error type for a request the monitor turns down on purpose.

It carries the HTTP status and the contract's error code. The API maps it to the JSON error
``{"error": code, "detail": text}`` once (``monitor/api``) and the panels map it to a message
once (``monitor/web/panel.py``). Nothing else is caught as a user error: any other exception
is a bug and answers a logged 500 with a request id.
"""

#: The contract's error code of each status.
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
         429: "rate_limited",
         500: "internal_error", 503: "unavailable"}


class Refused(Exception):
    """A request refused with ``status`` (400 by default) and a message saying why."""

    def __init__(self, detail, status=400, headers=None):
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.headers = headers or {}

    @property
    def code(self):
        return CODES.get(self.status, "error")
