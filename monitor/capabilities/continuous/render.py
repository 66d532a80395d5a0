"""A profile's shapes: its call tree (JSON), the flame graph's frames, speedscope's file and collapsed stacks.

Every stack starts with its endpoint's rule label, so a profile of all endpoints is one tree
whose first level is the endpoints. A frame's *share* is the samples under it (its own and
its callees') over all the samples of the view; in a comparison its *delta* is that share
minus the same frame's share in the baseline (same path from the root), in percentage points.
"""
import hashlib
import json
import zlib

#: Frames narrower than this share of the flame graph's width are not drawn (their parent shows their time).
MIN_WIDTH = 0.004
#: JSON nodes below this share of the root are left out (their parent's value still counts them).
MIN_JSON_SHARE = 0.0001
#: A frame whose share grew (shrank) by this many points against the baseline is marked.
MARK_POINTS = 1.0
#: Colour classes of frames, by their file.
COLOURS = 6
ALL = "all endpoints"
SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


class Node:
    """A frame in the call tree: its samples (``value``, callees included) and its callees by name."""

    __slots__ = ("name", "value", "children")

    def __init__(self, name):
        self.name = name
        self.value = 0
        self.children = {}

    @property
    def self_value(self):
        return self.value - sum(child.value for child in self.children.values())


def tree(stacks, endpoint=None):
    """Return the call tree of folded ``stacks``: the Node of ``endpoint``'s frame, or of all endpoints (None)."""
    root = Node(ALL)
    for folded, count in stacks.items():
        root.value += count
        node = root
        for frame in folded.split(";"):
            child = node.children.get(frame)
            if child is None:
                child = node.children[frame] = Node(frame)
            child.value += count
            node = child
    if endpoint is None:
        return root
    return root.children.get(endpoint) or Node(endpoint)


def node_id(parent_id, name):
    """Return the id of a frame: a digest of its path from the root (stable across workers and reads)."""
    return hashlib.blake2b(f"{parent_id}\x00{name}".encode(), digest_size=6).hexdigest()


def find(root, wanted):
    """Return the path ``[(id, Node)]`` from ``root``'s children to the node of id ``wanted``, or []."""
    todo = [(root, "", [])]
    while todo:
        node, nid, path = todo.pop()
        for child in node.children.values():
            cid = node_id(nid, child.name)
            here = path + [(cid, child)]
            if cid == wanted:
                return here
            todo.append((child, cid, here))
    return []


def as_json(node, total, min_value, base=None, base_total=None):
    """Return ``node`` as ``{name, value, self, children}`` (d3-flame-graph's shape), callees by name.

    In a comparison (``base_total`` not None) each node also has ``baseline``, the samples of the
    same frame in the baseline (``base``, the baseline's Node at the same path, or None), and
    ``delta``, its share minus the baseline's share, in points.
    """
    out = {"name": node.name, "value": node.value, "self": node.self_value}
    if base_total is not None:
        before = base.value if base is not None else 0
        out["baseline"] = before
        out["delta"] = round(100 * (node.value / total - (before / base_total if base_total else 0)), 3)
    children = [as_json(child, total, min_value, base.children.get(name) if base is not None else None, base_total)
                for name, child in sorted(node.children.items()) if child.value >= min_value]
    if children:
        out["children"] = children
    return out


def json_tree(root, baseline=None):
    """Return the JSON tree of ``root`` (nodes under ``MIN_JSON_SHARE`` of it left out), compared with the
    ``baseline`` Node if given."""
    return as_json(root, root.value or 1, max(1, int(root.value * MIN_JSON_SHARE)), baseline,
                   baseline.value if baseline is not None else None)


def split_frame(name):
    """Return ``(function, file, line)`` of a frame name ``file:function[:line]`` (file and line may be None)."""
    path, sep, last = name.rpartition(":")
    if not sep:
        return name, None, None
    if last.isdigit():
        head, sep, function = path.rpartition(":")
        if sep:
            return function, head, int(last)
    return last, path, None


def colour(name):
    """Return the colour class of a frame: by its file, so one module's frames look alike."""
    _, path, _ = split_frame(name)
    return zlib.crc32((path or name).encode()) % COLOURS


def flame(root, focus="", baseline=None, min_width=MIN_WIDTH):
    """Return ``(frames, depth)``: the drawn frames of the flame graph (root at the top) and its rows.

    With ``focus`` (a frame id), the graph zooms into that frame: it and its callers span the
    whole width, its callees are laid out within it. Each frame is a dict: ``id``, ``name``,
    ``function``, ``file``, ``x`` and ``w`` (fractions of the width), ``depth``, ``value``,
    ``share`` and ``self_share`` (percent of all samples), ``focus`` (the zoomed frame or a
    caller of it), and with a ``baseline`` Node ``delta`` (points) and ``mark``.
    """
    total = root.value or 1
    base_total = baseline.value if baseline is not None else 0
    path = find(root, focus) if focus else []
    frames = []

    def add(nid, node, base, x, w, depth, focused=False):
        function, file, _ = split_frame(node.name)
        frame = {"id": nid, "name": node.name, "function": function, "file": file, "x": x, "w": w,
                 "depth": depth, "value": node.value, "share": 100 * node.value / total,
                 "self_share": 100 * node.self_value / total, "focus": focused, "colour": colour(node.name)}
        if baseline is not None:
            frame["delta"] = frame["share"] - (100 * base.value / base_total if base is not None and base_total else 0)
            frame["mark"] = "grew" if frame["delta"] >= MARK_POINTS else (
                "shrank" if frame["delta"] <= -MARK_POINTS else "")
        frames.append(frame)

    def walk(node, nid, base, x, w, depth):
        at = x
        for name, child in sorted(node.children.items()):
            width = w * child.value / node.value
            if width >= min_width:
                cid = node_id(nid, name)
                below = base.children.get(name) if base is not None else None
                add(cid, child, below, at, width, depth)
                walk(child, cid, below, at, width, depth + 1)
            at += width

    base = baseline
    add("", root, base, 0.0, 1.0, 0, focused=bool(path))
    parent_id, top = "", root
    for depth, (nid, node) in enumerate(path, start=1):
        base = base.children.get(node.name) if base is not None else None
        add(nid, node, base, 0.0, 1.0, depth, focused=True)
        parent_id, top = nid, node
    walk(top, parent_id, base, 0.0, 1.0, len(path) + 1)
    return frames, max(frame["depth"] for frame in frames) + 1


def collapsed(stacks):
    """Return Brendan Gregg's collapsed stacks: one ``frame;frame;frame COUNT`` line per stack, root first."""
    return "".join(f"{stack} {count}\n" for stack, count in sorted(stacks.items()))


def speedscope(stacks, name):
    """Return speedscope's file (a sampled profile, weights in samples) of folded ``stacks``."""
    frames, index, samples, weights = [], {}, [], []
    for folded, count in sorted(stacks.items()):
        ids = []
        for depth, frame in enumerate(folded.split(";")):
            key = (depth == 0, frame)  # the first frame is an endpoint's label, not file:function
            found = index.get(key)
            if found is None:
                found = index[key] = len(frames)
                function, file, line = (frame, None, None) if depth == 0 else split_frame(frame)
                frames.append({"name": function, **({"file": file} if file else {}), **({"line": line} if line else {})})
            ids.append(found)
        samples.append(ids)
        weights.append(count)
    return json.dumps({
        "$schema": SPEEDSCOPE_SCHEMA, "exporter": "monitor continuous profiler", "name": name,
        "activeProfileIndex": 0, "shared": {"frames": frames},
        "profiles": [{"type": "sampled", "name": name, "unit": "none", "startValue": 0, "endValue": sum(weights),
                      "samples": samples, "weights": weights}]}, separators=(",", ":"))
