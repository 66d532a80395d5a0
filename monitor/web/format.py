"""Numbers and times as the dashboard shows them: one format everywhere, as Jinja filters.

Every filter is named ``fmt_*`` (the app's Jinja environment is shared with the host app,
whose own filters must stay as they are) and shows ``–`` for a missing value. Times are
rendered as ``<time>`` elements carrying the epoch; ``monitor.js`` turns them into the
viewer's local time with a relative age ("12:01:07 · 3 s ago"); without JavaScript they read
as UTC. The server text never depends on "now", so an unchanged panel renders the same bytes
and its poll can answer 304.
"""
from datetime import datetime, timezone

from markupsafe import Markup, escape

NONE = "–"
IEC = ("B", "KiB", "MiB", "GiB", "TiB")
#: What an outcome word means, for its colour (``outcome-ok``, ``outcome-bad``, ``outcome-warn``).
OUTCOMES = {
    "ok": "ok", "done": "ok", "accepted": "ok", "alive": "ok", "resolved": "ok", "managed": "ok",
    "failed": "bad", "refused": "bad", "forbidden": "bad", "unauthorized": "bad", "error": "bad",
    "lost": "bad", "rate_limited": "bad", "firing": "bad", "stale": "bad", "regression": "bad",
    "conflict": "warn", "not_found": "warn", "pending": "warn", "running": "warn", "stopping": "warn", "open": "warn",
}


def _sig(value, digits=3):
    """Return ``value`` with about ``digits`` significant digits, without a trailing ``.0``."""
    if value == 0:
        return "0"
    places = max(0, digits - len(str(int(abs(value))))) if abs(value) >= 1 else digits
    text = f"{value:,.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_num(value):
    """1234 → "1,234"; 0.1234 → "0.12"."""
    if value is None:
        return NONE
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return _sig(float(value))


def fmt_count(value, noun, plural=None):
    """(1, "request") → "1 request"; (3, "request") → "3 requests"."""
    if value is None:
        return f"{NONE} {plural or noun + 's'}"
    return f"{fmt_num(value)} {noun if value == 1 else (plural or noun + 's')}"


def fmt_ms(value):
    """A latency in ms with 2–3 significant digits and its unit: "0.84 ms", "298 ms", "1.25 s"."""
    if value is None:
        return NONE
    value = float(value)
    if value >= 1000:
        return f"{_sig(value / 1000)} s"
    if value >= 10:
        return f"{value:.0f} ms"
    return f"{_sig(value, 2)} ms"


def fmt_bytes(value):
    """A size in binary units: "512 B", "1.2 KiB", "12.3 MiB"."""
    if value is None:
        return NONE
    value, unit = float(value), 0
    while abs(value) >= 1024 and unit < len(IEC) - 1:
        value, unit = value / 1024, unit + 1
    return f"{int(value)} B" if unit == 0 else f"{_sig(value)} {IEC[unit]}"


def fmt_mb(value):
    """A size given in MiB (psutil readings, RSS), in binary units."""
    return NONE if value is None else fmt_bytes(float(value) * 2**20)


def fmt_percent(value):
    """A percentage (0–100): "57%", "5.3%", "0%"."""
    if value is None:
        return NONE
    value = float(value)
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%"


def fmt_rate(value):
    """Events per second: "0.25/s", "12.3/s", "1,204/s"."""
    return NONE if value is None else f"{_sig(float(value))}/s"


def fmt_duration(seconds):
    """A span: "45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h"."""
    if seconds is None:
        return NONE
    seconds = int(round(float(seconds)))
    for size, unit, smaller, small_unit in ((86400, "d", 3600, "h"), (3600, "h", 60, "min"), (60, "min", 1, "s")):
        if seconds >= size:
            rest = seconds % size // smaller
            return f"{seconds // size} {unit}" + (f" {rest} {small_unit}" if rest else "")
    return f"{seconds} s"


def _epoch(value):
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


def fmt_time(value):
    """A moment as ``<time>``: UTC text, the epoch for ``monitor.js`` to show local time and age."""
    if value is None or value == "":
        return NONE
    ts = _epoch(value)
    moment = datetime.fromtimestamp(ts, timezone.utc)
    return Markup('<time datetime="{}" data-ts="{}">{}</time>').format(
        moment.isoformat(timespec="seconds").replace("+00:00", "Z"), f"{ts:.3f}",
        moment.strftime("%Y-%m-%d %H:%M:%S UTC"))


def fmt_outcome(word):
    """An outcome word as a badge coloured by what it means (done is good, refused is bad)."""
    kind = OUTCOMES.get(str(word), "neutral")
    return Markup('<span class="badge outcome-{}">{}</span>').format(kind, escape(str(word).replace("_", " ")))


FILTERS = {function.__name__: function for function in (
    fmt_num, fmt_count, fmt_ms, fmt_bytes, fmt_mb, fmt_percent, fmt_rate, fmt_duration, fmt_time, fmt_outcome)}


def register(state):
    """Add the filters to the app's Jinja environment (a blueprint's ``record_once`` hook)."""
    state.app.jinja_env.filters.update(FILTERS)
