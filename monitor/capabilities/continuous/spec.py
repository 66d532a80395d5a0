"""The OpenAPI description of the continuous profiler's route (``api/openapi.py`` assembles it)."""
from ...api.schema import INT, NUM, STR, arr, null, obj, op, query, ref
from . import api
from .query import DEFAULT_WINDOW_S, MAX_ENDPOINT, MAX_WINDOW_S

SCHEMAS = {
    "ContinuousFrame": obj(
        ("name", "value", "self"), name=STR, value=INT, self=INT,
        baseline={**INT, "description": "with compare: the same frame's samples in the baseline window"},
        delta={**NUM, "description": "with compare: its share minus its share in the baseline, in points"},
        children=arr(ref("ContinuousFrame"))),
    "ContinuousProfile": obj(
        ("window_s", "from", "until", "resolution_s", "endpoint", "samples", "stacks", "hz", "endpoints", "root",
         "baseline"),
        window_s=INT, resolution_s=INT, samples=INT, stacks=INT, hz=INT, endpoint=null(STR),
        **{"from": {**NUM, "description": "start of the span read (whole minutes, or hours past a day)"},
           "until": {**NUM, "description": "end of the span read"}},
        endpoints=arr(obj("all", endpoint=STR, samples=INT)),
        root=ref("ContinuousFrame"),
        baseline={"type": ["object", "null"], "properties": {"from": NUM, "until": NUM, "samples": INT}}),
}

SPEEDSCOPE = obj(("$schema", "shared", "profiles"), **{"$schema": STR}, shared=obj(("frames",), frames=arr(
    obj(("name",), name=STR, file=STR, line=INT))), profiles=arr(obj(
        ("type", "unit", "samples", "weights"), type=STR, unit=STR, name=STR, startValue=NUM, endValue=NUM,
        samples=arr(arr(INT)), weights=arr(INT))))


def paths(config):
    """Return the operation of this capability's route."""
    operation = op(
        "The fleet's continuous profile of an endpoint (or of all) over a window: a call tree "
        "(json), speedscope's file, or collapsed stacks (text, one `frame;frame;frame COUNT` line per stack)",
        "admin", {"anyOf": [ref("ContinuousProfile"), SPEEDSCOPE]}, params=[
            query("window", {"type": "integer", "minimum": 60, "maximum": MAX_WINDOW_S, "default": DEFAULT_WINDOW_S},
                  "seconds, ending at until"),
            query("until", {"type": "integer", "minimum": 0, "maximum": api.MAX_UNTIL},
                  "Unix time the window ends at (default: now)"),
            query("endpoint", {"type": "string", "maxLength": MAX_ENDPOINT},
                  "an endpoint's rule label, such as /demo/sleep (default: every endpoint)"),
            query("format", {"type": "string", "enum": list(api.FORMATS), "default": "json"}, "the answer's shape"),
            query("compare", {"type": "integer", "minimum": 60, "maximum": MAX_WINDOW_S},
                  "json: compare with the same window this many seconds earlier (each frame's delta)")])
    operation["responses"]["200"]["content"]["text/plain"] = {"schema": STR}
    return {"/api/admin/profiler/continuous": {"get": operation}}
