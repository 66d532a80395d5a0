"""The bytes of one time bucket in Redis: a worker's summary and its per-series detail."""
import json

import numpy as np

CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def encode_summary(acc):
    """Return the bytes of one bucket's summary: int64 counts by class and sum_us, then int32
    (bucket index, count) pairs of the histogram merged over all series."""
    by_class = dict.fromkeys(CLASSES, 0)
    total_ns = 0
    merged = {}
    for (endpoint, method, cls), (count, ns, buckets) in acc.items():
        by_class[cls] += count
        total_ns += ns
        for idx, n in buckets.items():
            merged[idx] = merged.get(idx, 0) + n
    pairs = [x for item in sorted(merged.items()) for x in item]
    return (np.array([*by_class.values(), total_ns // 1000], dtype=np.int64).tobytes()
            + np.array(pairs, dtype=np.int32).tobytes())


def encode_detail(acc):
    """Return the bytes of one bucket's per-series detail: JSON names, then int64 (count, sum_us)
    per series, then int32 (series, bucket index, count) triples."""
    names = []
    sums = []
    triples = []
    for sid, ((endpoint, method, cls), (count, ns, buckets)) in enumerate(acc.items()):
        names.append([endpoint, method, cls])
        sums += (count, ns // 1000)
        for idx, n in buckets.items():
            triples += (sid, idx, n)
    return (json.dumps(names, separators=(",", ":")).encode() + b"\n"
            + np.array(sums, dtype=np.int64).tobytes() + np.array(triples, dtype=np.int32).tobytes())


#: Bytes per series in a detail blob's int64 (count, sum_us) pairs, and per int32 triple.
PAIR_BYTES, TRIPLE_BYTES = 16, 12


def split_detail(blob):
    """Return a detail blob's JSON head and the numbers after it (a memoryview): PAIR_BYTES per
    series of (count, sum_us) pairs, then the (series, bucket index, count) triples."""
    cut = blob.index(b"\n")
    return blob[:cut], memoryview(blob)[cut + 1:]


def decode_detail(blob):
    """Return (series names, int64 (count, sum_us) rows, int32 (series, index, count) rows) of a blob."""
    head, numbers = split_detail(blob)
    names = json.loads(head)
    cut = PAIR_BYTES * len(names)
    return (names, np.frombuffer(numbers[:cut], dtype=np.int64).reshape(-1, 2),
            np.frombuffer(numbers[cut:], dtype=np.int32).reshape(-1, 3))

