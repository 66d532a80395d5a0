"""The mergeable latency histogram: log-spaced buckets with ratio ``GAMMA`` = 1.04 (as in DDSketch).

A latency in bucket ``i`` lies in (GAMMA^(i-1), GAMMA^i] ns and is reported as
2·GAMMA^i/(GAMMA+1), so every percentile is within (GAMMA-1)/(GAMMA+1) < 2% of the true
value at its rank. Buckets from 1 µs to 100 s: ~470 of them, kept sparse, merged by adding
counts.
"""
import math

import numpy as np

GAMMA = 1.04
INV_LOG = 1 / math.log(GAMMA)
#: Latencies below 1 µs count as 1 µs; above 100 s as 100 s.
MIN_NS = 1_000
MAX_NS = 100_000_000_000
OFFSET = int(math.log(MIN_NS) * INV_LOG)
NBUCKETS = int(math.log(MAX_NS) * INV_LOG) + 2 - OFFSET
#: Representative value (ms) of each bucket.
BUCKET_MS = np.array([2 * GAMMA ** (i + OFFSET) / (GAMMA + 1) / 1e6 for i in range(NBUCKETS)])


def bucket_index(ns):
    """Return the histogram bucket of a latency in ns."""
    return min(max(int(math.log(max(ns, MIN_NS)) * INV_LOG) - OFFSET + 1, 0), NBUCKETS - 1)


def percentile_rows(hist, qs):
    """Return the ``qs`` percentiles (ms) of each row of a dense histogram matrix."""
    cum = np.cumsum(hist, axis=1)
    total = cum[:, -1]
    out = np.zeros((hist.shape[0], len(qs)))
    for j, q in enumerate(qs):
        target = np.floor(q * np.maximum(total - 1, 0)) + 1
        idx = np.minimum((cum < target[:, None]).sum(axis=1), NBUCKETS - 1)
        out[:, j] = np.where(total > 0, BUCKET_MS[idx], 0.0)
    return out

