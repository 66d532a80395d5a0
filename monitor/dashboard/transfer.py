"""Cheap polling for the dashboard's own answers: 304 when a fragment is unchanged, gzip when asked.

Registered as the dashboard blueprint's ``after_request`` only, so the host app's responses
are never touched. A poll (an htmx GET) gets a weak ETag over the rendered fragment; the
browser's script sends it back as ``If-None-Match`` (the answers stay ``no-store``, so no
fragment is kept in the browser's cache) and an unchanged fragment costs a 304 with no body.
"""
import gzip

from flask import request

#: Bodies smaller than this are sent as they are: gzip would save less than its own header.
MIN_GZIP = 512
COMPRESSIBLE = ("text/html", "application/json")


def finish(response):
    """Answer 304 to a poll whose fragment did not change; gzip a body the client accepts gzipped."""
    if response.direct_passthrough or response.status_code != 200:
        return response
    if request.method == "GET" and request.headers.get("HX-Request"):
        response.add_etag(weak=True)
        response.make_conditional(request)
        if response.status_code == 304:
            return response
    response.vary.add("Accept-Encoding")
    if response.mimetype in COMPRESSIBLE and request.accept_encodings["gzip"] \
            and "Content-Encoding" not in response.headers:
        body = response.get_data()
        if len(body) >= MIN_GZIP:
            response.set_data(gzip.compress(body, compresslevel=6, mtime=0))
            response.headers["Content-Encoding"] = "gzip"
    return response
