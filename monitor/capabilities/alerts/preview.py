"""The preview: how often a rule would have fired in the last 24 h, replayed over stored metrics.

The rule's states are replayed (the evaluator's own ``advance``, its ``for_s`` and resolve
condition included) over a series of the metric's values:

- request rate, 5xx rate and p95 at fleet or host scope: the chart series of the metrics
  query (``GET metrics``'s ``series``: requests, errors, p95 per bucket), read for the last
  24 h, hour and 10 minutes and stitched, so the recent past has the finest resolution the
  store keeps; a window longer than a bucket sums its buckets (its p95 is their
  request-weighted mean, an approximation);
- other metrics kept over time (p50, p99, endpoint scopes, cache hit rate, log lines): the
  metric read as the evaluator reads it, at 48 moments 30 minutes apart, the last one now (a
  sample: a short window at a moment older than the finest tier's retention finds nothing,
  counted in ``with_data``);
- metrics the store does not keep (worker RSS and growth, workers alive, heartbeats, Redis):
  no replay, only the current value.

Each point stands for its span (a bucket; a sample until the next one), so a breach lasting
one point fires when the point is as long as ``for_s``.
"""
import time

from .evaluator import advance
from .metrics import METRICS, Context, NoData, Reading
from .rules import Rule

SPAN_S = 86400
#: The spans whose chart series are stitched, finest first.
SERIES_SPANS = (600, 3600, 86400)
STEPS = 48
#: Transitions answered (the newest).
MAX_EVENTS = 50
SERIES_METRICS = ("request_rate", "error_rate", "latency_p95")


def preview(monitor, data, now=None):
    """Return how rule ``data`` (a validated rule object) would have fared over the last 24 h."""
    now = time.time() if now is None else now
    rule, metric = Rule(data), METRICS[data["metric"]]
    answer = {"span_s": SPAN_S, "current": _current(monitor, rule, now)}
    if not metric.past:
        return {**answer, "supported": False, "fired": None, "points": 0, "with_data": 0, "events": [],
                "firing_at_end": None, "resolution": None,
                "text": f"{metric.title} is not kept over time, so its past cannot be replayed"}
    try:
        if rule.metric in SERIES_METRICS and rule.scope_kind != "endpoint":
            points, resolution = _series(monitor, rule, now)
        else:
            points, resolution = _sampled(monitor, rule, now)
    except NoData as exc:
        return {**answer, "supported": False, "fired": None, "points": 0, "with_data": 0, "events": [],
                "firing_at_end": None, "resolution": None, "text": str(exc)}
    fired, events, alert = _replay(rule, points)
    times = "once" if fired == 1 else f"{fired} times"
    return {**answer, "supported": True, "fired": fired, "points": len(points),
            "with_data": sum(1 for _, _, reading in points if reading.value is not None and reading.count != 0),
            "events": events[-MAX_EVENTS:], "firing_at_end": bool(alert and alert["state"] == "firing"),
            "resolution": resolution, "text": f"would have fired {times} in the last 24 h"}


def _current(monitor, rule, now):
    try:
        breached, value, detail = rule.judge(METRICS[rule.metric].read(Context(monitor, now), rule), False)
    except NoData as exc:
        return {"value": None, "breached": None, "detail": str(exc)}
    return {"value": value, "breached": breached, "detail": detail}


def _replay(rule, points):
    """Replay the rule's states over ``points`` (start, end, reading); return (times fired, events, last alert)."""
    alert, fired, events = None, 0, []
    for start, end, reading in points:
        for moment in (start, end):
            new, event = advance(alert, rule, rule.judge(reading, bool(alert) and alert["state"] == "firing"), moment)
            alert = new or alert
            if event in ("firing", "resolved"):
                fired += event == "firing"
                events.append({"at": moment, "event": event, "value": alert["value"]})
    return fired, events, alert


def _series(monitor, rule, now):
    """Return the stitched chart series as points, and the resolutions used (finest first)."""
    metrics = monitor.capabilities.get("metrics")
    if metrics is None:
        raise NoData("the metrics capability is not running")
    host = rule.scope_value if rule.scope_kind == "host" else None
    buckets, boundary, resolution = [], now, []
    for span in SERIES_SPANS:
        series = metrics.window(monitor, span, host=host, now=now)["series"]
        if len(series) < 2:
            continue
        step = series[1]["t"] - series[0]["t"]
        # The finest series keeps its open bucket (up to now); a coarser one only the buckets wholly
        # before the finer data, so no request is counted twice.
        older = [(p["t"], min(p["t"] + step, now), p) for p in series
                 if p["t"] + step <= boundary or (boundary == now and p["t"] < now)]
        if older:
            buckets = older + buckets
            boundary = older[0][0]
            resolution.append({"seconds": step, "since": boundary})
    points = []
    for i, (start, end, _) in enumerate(buckets):
        window = [b for b in buckets[:i + 1] if b[0] >= end - max(rule.window_s, end - start)]
        requests = sum(b[2]["requests"] for b in window)
        errors = sum(b[2]["errors"] for b in window)
        p95 = sum((b[2]["p95_ms"] or 0.0) * b[2]["requests"] for b in window) / requests if requests else 0.0
        value = {"request_rate": requests / max(end - window[0][0], 1.0),
                 "error_rate": errors / requests if requests else 0.0, "latency_p95": p95}[rule.metric]
        points.append((start, end, Reading(round(value, 4), requests)))
    return points, resolution


def _sampled(monitor, rule, now):
    """Return the metric read at STEPS moments over the last 24 h (the last one now), each standing
    for the span up to the next."""
    step = SPAN_S / STEPS
    points = []
    for i in range(1, STEPS + 1):
        moment = now - SPAN_S + i * step
        points.append((moment, min(moment + step, now), METRICS[rule.metric].read(Context(monitor, moment), rule)))
    return points, [{"seconds": step, "since": now - SPAN_S + step}]
