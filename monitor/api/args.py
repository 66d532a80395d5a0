"""Query arguments of the JSON API, refused with a clear 400 (bodies: ``monitor/web/body.py``).

Bad input answers 400 ``bad_request`` and changes nothing; never a 500.
"""
from flask import request

from ..web.body import whole


def int_arg(name, default, lo, hi):
    """Return query argument ``name`` as an int within [lo, hi] (absent: ``default``), or refuse."""
    raw = request.args.get(name)
    if raw is None:
        return default
    return whole(lo, hi)(name, raw, True)
